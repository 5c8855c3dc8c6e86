//! Deterministic generation of realistic songs and uploaders for seeding.
//!
//! Each song is generated from `(seed, id)` alone, so any range of ids can be generated in any order
//! or in parallel and always comes out the same.

use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};

const ADJECTIVES: &[&str] = &[
    "Midnight", "Golden", "Electric", "Silent", "Neon", "Broken", "Endless", "Velvet", "Crimson",
    "Distant", "Frozen", "Wild", "Hollow", "Lucid", "Paper", "Restless", "Summer", "Winter",
    "Quiet", "Burning", "Falling", "Secret", "Lonely", "Bright", "Hidden", "Electric", "Ocean",
];
const NOUNS: &[&str] = &[
    "Dreams",
    "Highway",
    "Heart",
    "Skyline",
    "River",
    "Echoes",
    "Signals",
    "Shadows",
    "Lights",
    "Waves",
    "Garden",
    "Machine",
    "Horizon",
    "Fire",
    "Memories",
    "City",
    "Rain",
    "Stars",
    "Tides",
    "Mirrors",
    "Streets",
    "Ghosts",
    "Satellites",
    "Parade",
    "Letters",
    "Avenue",
    "Season",
];
const SUFFIXES: &[&str] = &[
    "",
    "",
    "",
    "",
    " (Remix)",
    " (Live)",
    " (Acoustic)",
    " (Radio Edit)",
    " Pt. II",
    " (Demo)",
];
/// Genres with rough popularity weights.
const GENRES: &[(&str, u32)] = &[
    ("Electronic", 14),
    ("Hip-hop & Rap", 14),
    ("Pop", 12),
    ("Rock", 9),
    ("House", 7),
    ("Ambient", 5),
    ("Techno", 6),
    ("R&B & Soul", 6),
    ("Indie", 6),
    ("Jazz & Blues", 3),
    ("Classical", 2),
    ("Folk & Singer-Songwriter", 4),
    ("Drum & Bass", 4),
    ("Metal", 3),
    ("Country", 2),
    ("Reggae", 2),
    ("Lo-fi", 5),
    ("Soundtrack", 2),
];
const TAGS: &[&str] = &[
    "chill",
    "summer",
    "night drive",
    "study",
    "workout",
    "love",
    "party",
    "dark",
    "uplifting",
    "instrumental",
    "vocal",
    "bass",
    "guitar",
    "piano",
    "synth",
    "vinyl",
    "90s",
    "80s",
    "remix",
    "original",
    "live",
    "acoustic",
    "dance",
    "deep",
    "melodic",
    "experimental",
    "mellow",
    "epic",
];
const FIRST: &[&str] = &[
    "dj", "mc", "lil", "the", "young", "big", "saint", "sister", "brother", "captain", "doctor",
    "silver", "lunar", "cosmic", "urban", "analog",
];
const SECOND: &[&str] = &[
    "nova", "echo", "river", "fox", "wave", "pulse", "orbit", "ember", "moth", "atlas", "comet",
    "violet", "harbor", "sparrow", "static", "willow", "cipher", "mango", "vortex", "basil",
];

/// A generated song, ready to insert.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeedSong {
    pub id: i64,
    pub title: String,
    pub description: String,
    pub user_id: i64,
    pub username: String,
    pub genre: String,
    pub tag_list: Vec<String>,
    pub duration_ms: i64,
    pub public: bool,
    /// Milliseconds since the Unix epoch, spread over the five years before 2026-01-01.
    pub created_at_ms: i64,
}

/// How many uploaders `songs` songs are spread over (about 12 songs each, at least one).
pub fn uploader_count(songs: i64) -> i64 {
    (songs / 12).max(1)
}

/// The deterministic username of uploader `user_id` (unique for ids up to 10^9).
pub fn username(user_id: i64) -> String {
    let mut rng = StdRng::seed_from_u64(0x5eed_0000 ^ user_id as u64);
    let a = FIRST.choose(&mut rng).copied().unwrap_or("dj");
    let b = SECOND.choose(&mut rng).copied().unwrap_or("nova");
    format!("{a}_{b}_{user_id}")
}

fn pick_genre(rng: &mut StdRng) -> &'static str {
    let total: u32 = GENRES.iter().map(|(_, w)| w).sum();
    let mut roll = rng.gen_range(0..total);
    for (g, w) in GENRES {
        if roll < *w {
            return g;
        }
        roll -= w;
    }
    "Electronic"
}

/// Song `id` (1-based) of a catalogue of `total` songs generated from `seed`.
pub fn song(seed: u64, id: i64, total: i64) -> SeedSong {
    let mut rng = StdRng::seed_from_u64(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ id as u64);
    let title = format!(
        "{} {}{}",
        ADJECTIVES.choose(&mut rng).copied().unwrap_or("Golden"),
        NOUNS.choose(&mut rng).copied().unwrap_or("Dreams"),
        SUFFIXES.choose(&mut rng).copied().unwrap_or("")
    );
    let genre = pick_genre(&mut rng).to_owned();
    let tag_count = rng.gen_range(0..=5);
    let mut tag_list: Vec<String> = TAGS
        .choose_multiple(&mut rng, tag_count)
        .map(|t| (*t).to_owned())
        .collect();
    tag_list.sort();
    // Mostly 2–6 minutes, a few short sketches and long mixes.
    let duration_ms = match rng.gen_range(0..100) {
        0..=4 => rng.gen_range(30_000..120_000),
        5..=94 => rng.gen_range(120_000..390_000),
        _ => rng.gen_range(390_000..3_600_000),
    };
    let user_id = rng.gen_range(1..=uploader_count(total));
    let created_at_ms = rng.gen_range(1_609_459_200_000..1_767_225_600_000);
    SeedSong {
        id,
        description: format!(
            "{title} — a {} track by {}.",
            genre.to_lowercase(),
            username(user_id)
        ),
        title,
        username: username(user_id),
        user_id,
        genre,
        tag_list,
        duration_ms,
        public: rng.gen_range(0..100) < 95,
        created_at_ms,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_and_id_give_the_same_song() {
        assert_eq!(song(42, 7, 1000), song(42, 7, 1000));
        assert_ne!(song(42, 7, 1000), song(43, 7, 1000));
    }

    #[test]
    fn songs_look_realistic() {
        for id in 1..=500 {
            let s = song(1, id, 500);
            assert!(!s.title.is_empty() && s.title.chars().count() <= 200);
            assert!((30_000..3_600_000).contains(&s.duration_ms));
            assert!((1..=uploader_count(500)).contains(&s.user_id));
            assert!(s.tag_list.len() <= 5);
            assert_eq!(s.username, username(s.user_id));
        }
    }

    #[test]
    fn usernames_are_valid_user_service_names() {
        for id in [1, 99, 123_456_789] {
            let u = username(id);
            assert!(
                u.len() <= 30
                    && u.chars()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'),
                "{u}"
            );
        }
    }
}
