//! The dataset's skeleton, one block of songs at a time: which songs have which characteristics,
//! which reviews belong to which song, how many photos each review has, and which parent rows
//! (reviews, characteristics) are made dirty.
//!
//! Songs are cut into blocks of consecutive ids. A block's reviews are a fixed slice of the review
//! ids (block `b` gets `floor(R·s₁/N) − floor(R·s₀/N)` of them for its songs `s₀..s₁`), so review
//! ids never depend on randomness; characteristic, photo and rating ids do, and come from a cheap
//! first pass that builds every block's skeleton once and keeps only its row counts.
//!
//! Everything about a block is drawn from that block's own random stream, so a block can be
//! rebuilt anywhere, in any order, and comes out the same: that is what lets the four files be
//! written by several threads and still be byte-identical from run to run.

use super::dirt::{DataFile, DirtPlan, Kind};
use super::rng::Rng;

/// Songs per block, at most.
const MAX_SONGS_PER_BLOCK: u64 = 256;
/// Reviews per block the block size aims at (bounds a block's memory whatever the ratio).
const TARGET_REVIEWS_PER_BLOCK: u64 = 4096;
/// The stream id of the skeleton (the files' streams are in `rows`).
pub(crate) const STREAM_STRUCTURE: u64 = 1;

/// Characteristics per song: 3, 4 or 5, averaging 3.3477 (3,347,679 for a million songs).
const P_FIVE_CHARACTERISTICS: f64 = 0.05;
const P_FOUR_CHARACTERISTICS: f64 = 0.247_679;
/// Songs nobody reviewed (their characteristics are still listed).
const P_UNREVIEWED_SONG: f64 = 0.08;
/// Songs far more popular than the rest.
const P_HIT_SONG: f64 = 0.01;
/// Photos: 2,742,540 for 5,774,952 reviews is 0.4749 a review; reviews with photos have 1–5,
/// 2.05 on average.
const P_HAS_PHOTOS: f64 = 0.231_661;
const PHOTO_COUNT_WEIGHTS: [u64; 5] = [45, 25, 15, 10, 5];
/// Star ratings 1–5 (percent): reviews skew positive.
const STAR_WEIGHTS: [u64; 5] = [10, 8, 14, 28, 40];

/// How songs and reviews are cut into blocks.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Layout {
    pub songs: u64,
    pub reviews: u64,
    pub songs_per_block: u64,
    pub blocks: u64,
}

impl Layout {
    /// `songs` must be at least 1.
    pub(crate) fn new(reviews: u64, songs: u64) -> Self {
        let songs_per_block = (u128::from(TARGET_REVIEWS_PER_BLOCK) * u128::from(songs)
            / u128::from(reviews.max(1)))
        .clamp(1, u128::from(MAX_SONGS_PER_BLOCK)) as u64;
        Self {
            songs,
            reviews,
            songs_per_block,
            blocks: songs.div_ceil(songs_per_block),
        }
    }

    /// Songs in the blocks before `block`.
    fn songs_before(&self, block: u64) -> u64 {
        (block * self.songs_per_block).min(self.songs)
    }

    /// Reviews in the blocks before `block`.
    pub(crate) fn reviews_before(&self, block: u64) -> u64 {
        (u128::from(self.reviews) * u128::from(self.songs_before(block)) / u128::from(self.songs))
            as u64
    }

    /// Reviews in `block`.
    pub(crate) fn reviews_in(&self, block: u64) -> u64 {
        self.reviews_before(block + 1) - self.reviews_before(block)
    }
}

/// A characteristic of one of the block's songs.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Characteristic {
    /// The song, as an index into the block's songs.
    pub song: u32,
    /// Index into [`super::text::ASPECTS`].
    pub aspect: u8,
    pub dirt: Option<Kind>,
}

/// A review of one of the block's songs.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Review {
    pub song: u32,
    pub stars: u8,
    pub photos: u8,
    pub dirt: Option<Kind>,
}

/// Whether a row made dirty with `dirt` still shows a usable id. Rows that do not (malformed, bad
/// id) get no children: the importer could not tell a child of theirs from an orphan.
pub(crate) fn keeps_id(dirt: Option<Kind>) -> bool {
    !matches!(dirt, Some(Kind::MalformedRow | Kind::BadId))
}

/// Whether a row made dirty with `dirt` is rejected. A duplicate is an extra row after a clean
/// one, so the row itself is accepted.
pub(crate) fn rejected(dirt: Option<Kind>) -> bool {
    !matches!(dirt, None | Some(Kind::DuplicateId))
}

/// The skeleton of one block.
#[derive(Debug, Clone)]
pub(crate) struct Block {
    pub index: u64,
    /// The id of the block's first song.
    pub first_song: u64,
    /// `song_chars[s]..song_chars[s + 1]` are song `s`'s characteristics in `chars`.
    pub song_chars: Vec<u32>,
    pub chars: Vec<Characteristic>,
    pub reviews: Vec<Review>,
}

/// How many rows of each file a block writes (before the child files' extra duplicate rows),
/// i.e. how many ids of each it uses.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct BlockCounts {
    pub chars: u64,
    pub photos: u64,
    pub ratings: u64,
}

impl Block {
    pub(crate) fn build(layout: &Layout, plan: &DirtPlan, seed: u64, index: u64) -> Self {
        let mut rng = Rng::derive(seed, STREAM_STRUCTURE, index);
        let first = layout.songs_before(index);
        let songs = (layout.songs_before(index + 1) - first) as usize;

        // Characteristics: 3–5 distinct aspects per song.
        let char_dirt = plan.file(DataFile::Characteristics);
        let mut song_chars = Vec::with_capacity(songs + 1);
        let mut chars = Vec::with_capacity(songs * 4);
        let mut tainted = vec![false; songs];
        for (song, tainted) in tainted.iter_mut().enumerate() {
            song_chars.push(chars.len() as u32);
            let u = rng.unit();
            let n = if u < P_FIVE_CHARACTERISTICS {
                5
            } else if u < P_FIVE_CHARACTERISTICS + P_FOUR_CHARACTERISTICS {
                4
            } else {
                3
            };
            let mut aspects: [u8; 10] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9];
            for k in 0..n {
                let j = k + rng.below((aspects.len() - k) as u64) as usize;
                aspects.swap(k, j);
                let dirt = char_dirt.roll(&mut rng);
                *tainted |= dirt.is_some_and(|d| d != Kind::DuplicateId);
                chars.push(Characteristic {
                    song: song as u32,
                    aspect: aspects[k],
                    dirt,
                });
            }
        }
        song_chars.push(chars.len() as u32);

        // Popularity: a heavy-ish tail (1/(u+0.02) spans 1–50), a few hits, some songs unreviewed.
        let mut cumulative = Vec::with_capacity(songs);
        let mut total = 0.0;
        for _ in 0..songs {
            let unreviewed = rng.chance(P_UNREVIEWED_SONG);
            let mut w = 1.0 / (rng.unit() + 0.02);
            if rng.chance(P_HIT_SONG) {
                w *= 8.0;
            }
            if !unreviewed {
                total += w;
            }
            cumulative.push(total);
        }
        if total == 0.0 {
            // Every song drew "unreviewed": spread the block's reviews evenly instead.
            cumulative = (1..=songs).map(|i| i as f64).collect();
            total = songs as f64;
        }
        let n_reviews = layout.reviews_in(index) as usize;
        let mut per_song = vec![0u32; songs];
        for _ in 0..n_reviews {
            let x = rng.unit() * total;
            let s = cumulative.partition_point(|&c| c <= x).min(songs - 1);
            per_song[s] += 1;
        }
        let mut order: Vec<u32> = Vec::with_capacity(n_reviews);
        for (s, &n) in per_song.iter().enumerate() {
            order.extend(std::iter::repeat_n(s as u32, n as usize));
        }
        // Grouped by song, loosely: some reviews trade places with one a little further on.
        for i in 0..order.len() {
            if rng.chance(0.05) {
                let j = i + rng.below((order.len() - i).min(64) as u64) as usize;
                order.swap(i, j);
            }
        }

        let review_dirt = plan.file(DataFile::Reviews);
        let reviews = order
            .into_iter()
            .map(|song| {
                let stars = weighted(&mut rng, &STAR_WEIGHTS) as u8 + 1;
                let photos = if rng.chance(P_HAS_PHOTOS) {
                    weighted(&mut rng, &PHOTO_COUNT_WEIGHTS) as u8 + 1
                } else {
                    0
                };
                let mut dirt = review_dirt.roll(&mut rng);
                // A rating of a dirty review of a song with a dirty characteristic could be
                // rejected for either parent; keep such songs' reviews clean so it cannot happen.
                if tainted[song as usize] {
                    dirt = None;
                }
                Review {
                    song,
                    stars,
                    photos,
                    dirt,
                }
            })
            .collect();

        Self {
            index,
            first_song: first + 1,
            song_chars,
            chars,
            reviews,
        }
    }

    /// The characteristics of song `song` (a block index), with their indexes in `chars`.
    pub(crate) fn chars_of(&self, song: u32) -> impl Iterator<Item = (usize, Characteristic)> + '_ {
        let s = song as usize;
        let range = self.song_chars[s] as usize..self.song_chars[s + 1] as usize;
        range.map(|i| (i, self.chars[i]))
    }

    /// How many ids of each file the block uses.
    pub(crate) fn counts(&self) -> BlockCounts {
        let rated: Vec<u64> = (0..self.song_chars.len() - 1)
            .map(|s| {
                self.chars_of(s as u32)
                    .filter(|(_, c)| keeps_id(c.dirt))
                    .count() as u64
            })
            .collect();
        let mut counts = BlockCounts {
            chars: self.chars.len() as u64,
            ..BlockCounts::default()
        };
        for r in self.reviews.iter().filter(|r| keeps_id(r.dirt)) {
            counts.photos += u64::from(r.photos);
            counts.ratings += rated[r.song as usize];
        }
        counts
    }
}

/// An index drawn with the given integer weights.
fn weighted(rng: &mut Rng, weights: &[u64]) -> usize {
    let mut x = rng.below(weights.iter().sum());
    for (i, &w) in weights.iter().enumerate() {
        if x < w {
            return i;
        }
        x -= w;
    }
    weights.len() - 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_share_out_every_song_and_every_review() {
        for (reviews, songs) in [
            (5_774_952, 1_000_000),
            (2000, 300),
            (10, 1),
            (0, 5),
            (7, 1000),
        ] {
            let l = Layout::new(reviews, songs);
            assert_eq!(l.reviews_before(l.blocks), reviews);
            assert_eq!(l.songs_before(l.blocks), songs);
            let sum: u64 = (0..l.blocks).map(|b| l.reviews_in(b)).sum();
            assert_eq!(sum, reviews);
        }
    }

    #[test]
    fn a_block_is_the_same_every_time_it_is_built() {
        let l = Layout::new(20_000, 3_000);
        let plan = DirtPlan::new(0.05, &[]).unwrap();
        let a = Block::build(&l, &plan, 9, 3);
        let b = Block::build(&l, &plan, 9, 3);
        assert_eq!(a.counts(), b.counts());
        assert_eq!(format!("{a:?}"), format!("{b:?}"));
        assert_eq!(a.reviews.len() as u64, l.reviews_in(3));
    }
}
