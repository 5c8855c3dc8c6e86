//! Realistic content for reviews of songs: summaries, bodies, reviewer names and emails, artist
//! responses, photo URLs, characteristic names, dates and numbers.
//!
//! Everything is ASCII, so a length in bytes is a length in characters (what the bounds count).
//! Every function appends to a caller-owned buffer: the generator reuses a handful of strings for
//! millions of rows instead of allocating per field.

use super::rng::Rng;

/// What a song can be rated on besides stars: the characteristic names.
pub(crate) const ASPECTS: [&str; 10] = [
    "Melody",
    "Lyrics",
    "Production",
    "Vocals",
    "Mix",
    "Replay value",
    "Rhythm",
    "Energy",
    "Originality",
    "Mood",
];

/// Summaries, all 1–60 characters; a few carry commas and double quotes.
const SUMMARIES: &[&str] = &[
    "Great bassline",
    "Catchy chorus",
    "Love the vocals",
    "On repeat all week",
    "Not my thing",
    "Overproduced, but fun",
    "The drop is insane",
    "Beautiful melody",
    "A bit too long",
    "Solid track",
    "Instant classic",
    "Mixing could be better",
    "Lyrics hit hard",
    "Perfect for late-night drives",
    "Great production, weak lyrics",
    "Skip the intro",
    "Chills every time",
    "Underrated gem",
    "Meh",
    "Best song on the album",
    "Groovy!",
    "Too repetitive",
    "Summer anthem",
    "Wow, just wow",
    "The \"hook\" is everything",
    "Sounds like the 80s, in a good way",
    "Not as good as the live version",
    "Headphones on, volume up",
    "Could dance to this forever",
    "Vocals are a little buried",
    "Masterpiece",
    "Pretty good",
    "Didn't grab me",
    "That guitar solo, \"yes\"",
    "Bass, drums, perfection",
    "Mellow and warm",
    "Gets better every listen",
    "A little muddy in the low end",
    "Lovely harmonies",
    "My new workout song",
];

const PARTS: &[&str] = &[
    "bassline",
    "chorus",
    "bridge",
    "intro",
    "outro",
    "hook",
    "drum groove",
    "guitar riff",
    "synth pad",
    "vocal harmony",
    "mix",
    "lyrics",
    "melody",
    "beat",
    "drop",
    "production",
    "second verse",
    "piano part",
    "string section",
    "breakdown",
];
const LINKS: &[&str] = &["is", "feels", "sounds", "is honestly", "gets", "is just"];
const ADJECTIVES: &[&str] = &[
    "catchy",
    "gorgeous",
    "muddy",
    "crisp",
    "haunting",
    "infectious",
    "a bit flat",
    "way too loud",
    "perfectly balanced",
    "underwhelming",
    "addictive",
    "warm",
    "punchy",
    "dreamy",
    "raw",
    "polished",
    "forgettable",
    "unforgettable",
    "layered",
    "sparse",
    "tight",
];
const PLAYS: &[&str] = &[
    "listen to",
    "keep coming back to",
    "can't stop playing",
    "blast",
    "play",
    "put on",
];
const TRACKS: &[&str] = &[
    "this track",
    "this song",
    "it",
    "this one",
    "the whole thing",
];
const WHENS: &[&str] = &[
    "on my commute",
    "at the gym",
    "late at night",
    "every morning",
    "while cooking",
    "on long drives",
    "when I need a lift",
    "with my headphones on",
    "at parties",
    "while studying",
];
const OPENERS: &[&str] = &[
    "Honestly",
    "To be fair",
    "From the first listen",
    "After a few plays",
    "Around the two minute mark",
    "On good speakers",
    "Compared to their last release",
    "For me",
];
const VERBS: &[&str] = &["carries", "ruins", "makes", "lifts", "drags down", "saves"];
const OBJECTS: &[&str] = &[
    "the whole song",
    "everything",
    "the track",
    "the mood",
    "the ending",
];
const GENRES: &[&str] = &[
    "old-school house",
    "trip-hop",
    "classic soul",
    "shoegaze",
    "early hip-hop",
    "synthwave",
    "britpop",
    "disco",
    "lo-fi beats",
    "indie folk",
];
const DECADES: &[&str] = &["70s", "80s", "90s", "2000s"];
const MOMENTS: &[&str] = &[
    "whisper",
    "drop",
    "key change",
    "breakdown",
    "na na na",
    "la la",
    "stop",
];
const REACTIONS: &[&str] = &[
    "gives me chills",
    "is the best moment",
    "goes on too long",
    "never gets old",
    "made me laugh",
];
const PERIODS: &[&str] = &["days", "weeks", "months"];
const SHORT: &[&str] = &[
    "Wow.",
    "Not bad at all.",
    "Can't wait for the next release.",
    "Turn it up!",
    "Such a vibe.",
    "Just listen to it.",
    "Meh, it's fine.",
    "Please release the instrumental.",
    "Would love a remix.",
    "The artist deserves more listeners.",
    "Hard to describe, but it works.",
    "Saw them live last year, even better.",
];

const FIRST: &[&str] = &[
    "Maria", "James", "Aiko", "Liam", "Sofia", "Noah", "Amara", "Lucas", "Chloe", "Mateo", "Zoe",
    "Ethan", "Priya", "Omar", "Hannah", "Diego", "Leila", "Oscar", "Yuki", "Nina", "Kwame",
    "Elena", "Jonas", "Fatima", "Theo", "Ingrid", "Ravi", "Grace", "Pablo", "Mei", "Samuel", "Ana",
    "Felix", "Lucia", "Arjun", "Emma", "Tomas", "Sara", "Malik", "Olivia",
];
const LAST: &[&str] = &[
    "Lopez",
    "Smith",
    "Tanaka",
    "Murphy",
    "Rossi",
    "Nguyen",
    "Okafor",
    "Silva",
    "Martin",
    "Garcia",
    "Kim",
    "Schmidt",
    "Patel",
    "Haddad",
    "Johansson",
    "Dubois",
    "Kowalski",
    "Sato",
    "Novak",
    "Mensah",
    "Ivanova",
    "Berg",
    "Costa",
    "Ahmed",
    "Moreau",
    "Larsen",
    "Reyes",
    "Chen",
    "Walker",
    "Fischer",
];
const HANDLE_WORDS: &[&str] = &[
    "beat", "bass", "synth", "vinyl", "echo", "groove", "night", "lofi", "drum", "neon", "wave",
    "retro", "sonic", "tempo", "riff", "melody", "chill", "loud", "indie", "dj",
];
const DOMAINS: &[&str] = &[
    "gmail.com",
    "yahoo.com",
    "hotmail.com",
    "outlook.com",
    "proton.me",
    "icloud.com",
    "mail.example.org",
];
const REPLIES: &[&str] = &[
    "Thank you so much for listening!",
    "We're glad the chorus stuck with you.",
    "Thanks for the honest feedback, we'll work on the mix.",
    "The bassline was recorded in one take!",
    "Glad you enjoyed it, more coming soon.",
    "Appreciate you, see you at the next show.",
    "Thanks! The remix drops next month.",
    "That \"whisper\" part was an accident we decided to keep.",
];
const PHOTO_WIDTHS: &[&str] = &["300", "500", "668", "975", "1350"];

/// 2019-01-01T00:00:00Z and 2025-06-01T00:00:00Z in epoch milliseconds: the span of review dates.
const FIRST_DATE_MS: u64 = 1_546_300_800_000;
const LAST_DATE_MS: u64 = 1_748_736_000_000;
const DAY_MS: u64 = 86_400_000;

/// Appends `n` in decimal.
pub(crate) fn push_u64(out: &mut String, mut n: u64) {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    for &b in &buf[i..] {
        out.push(char::from(b));
    }
}

/// Appends `n` as `width` lower-case hex digits.
fn push_hex(out: &mut String, n: u64, width: u32) {
    for shift in (0..width).rev() {
        let d = ((n >> (shift * 4)) & 0xf) as u8;
        out.push(char::from(if d < 10 { b'0' + d } else { b'a' + d - 10 }));
    }
}

/// A valid summary (1–60 characters).
pub(crate) fn summary(rng: &mut Rng, out: &mut String) {
    out.push_str(rng.pick(SUMMARIES));
}

/// One sentence of a review body, without trailing space.
fn sentence(rng: &mut Rng, out: &mut String) {
    match rng.below(20) {
        0..=5 => {
            out.push_str("The ");
            out.push_str(rng.pick(PARTS));
            out.push(' ');
            out.push_str(rng.pick(LINKS));
            out.push(' ');
            out.push_str(rng.pick(ADJECTIVES));
            out.push('.');
        }
        6..=8 => {
            out.push_str("I ");
            out.push_str(rng.pick(PLAYS));
            out.push(' ');
            out.push_str(rng.pick(TRACKS));
            out.push(' ');
            out.push_str(rng.pick(WHENS));
            out.push('.');
        }
        9..=11 => {
            out.push_str(rng.pick(OPENERS));
            out.push_str(", the ");
            out.push_str(rng.pick(PARTS));
            out.push(' ');
            out.push_str(rng.pick(VERBS));
            out.push(' ');
            out.push_str(rng.pick(OBJECTS));
            out.push('.');
        }
        12 | 13 => {
            out.push_str("Reminds me of ");
            out.push_str(rng.pick(GENRES));
            out.push_str(" from the ");
            out.push_str(rng.pick(DECADES));
            out.push('.');
        }
        14 => {
            out.push_str("The \"");
            out.push_str(rng.pick(MOMENTS));
            out.push_str("\" part at ");
            push_u64(out, rng.below(5));
            out.push(':');
            let s = rng.below(60);
            out.push(char::from(b'0' + (s / 10) as u8));
            out.push(char::from(b'0' + (s % 10) as u8));
            out.push(' ');
            out.push_str(rng.pick(REACTIONS));
            out.push('.');
        }
        15 | 16 => {
            out.push_str("Been playing it on repeat for ");
            push_u64(out, rng.range(2, 11));
            out.push(' ');
            out.push_str(rng.pick(PERIODS));
            out.push('.');
        }
        17 => {
            out.push_str("I'd give the ");
            out.push_str(rng.pick(PARTS));
            out.push_str(" a ");
            push_u64(out, rng.range(1, 10));
            out.push_str(" out of 10.");
        }
        _ => out.push_str(rng.pick(SHORT)),
    }
}

/// Sentences appended until the text is at least `min` characters long; a few texts are broken
/// into paragraphs with newlines. May overshoot `min` by one sentence.
pub(crate) fn prose(rng: &mut Rng, out: &mut String, min: usize) {
    let start = out.len();
    let paragraphs = rng.chance(0.03);
    while out.len() - start < min {
        if out.len() > start {
            if paragraphs && rng.chance(0.3) {
                out.push_str("\n\n");
            } else {
                out.push(' ');
            }
        }
        sentence(rng, out);
    }
}

/// Exactly `len` characters of prose (cut mid-word if it must; never ending in a space).
pub(crate) fn prose_of_len(rng: &mut Rng, out: &mut String, len: usize) {
    let start = out.len();
    prose(rng, out, len);
    out.truncate(start + len);
    if out.ends_with(' ') || out.ends_with('\n') {
        out.pop();
        out.push('.');
    }
}

/// A valid body (50–1000 characters), skewed towards short: most reviews are a few sentences.
pub(crate) fn body(rng: &mut Rng, out: &mut String) {
    let u = rng.unit();
    let target = 50 + (950.0 * u * u * u) as usize;
    let start = out.len();
    prose(rng, out, target);
    if out.len() - start > 1000 {
        // Overshot the bound: cut back to the last word that fits.
        let cut = out[start..start + 1000].rfind(' ').map_or(1000, |i| i);
        out.truncate(start + cut.max(50));
    }
}

/// A valid reviewer name (1–60 characters) and a valid email (3–60, one `@`, dotted domain).
pub(crate) fn reviewer(rng: &mut Rng, name: &mut String, email: &mut String) {
    let first = rng.pick(FIRST);
    let last = rng.pick(LAST);
    let domain = rng.pick(DOMAINS);
    match rng.below(20) {
        0..=7 => {
            name.push_str(first);
            name.push(' ');
            name.push_str(last);
            push_lower(email, first);
            email.push('.');
            push_lower(email, last);
            if rng.chance(0.5) {
                push_u64(email, rng.below(100));
            }
        }
        8..=11 => {
            name.push_str(first);
            push_lower(email, first);
            push_u64(email, rng.range(1, 9999));
        }
        12..=16 => {
            let a = rng.pick(HANDLE_WORDS);
            let b = rng.pick(HANDLE_WORDS);
            name.push_str(a);
            if rng.chance(0.4) {
                name.push('_');
            }
            name.push_str(b);
            push_u64(name, rng.below(1000));
            email.push_str(name);
        }
        _ => {
            name.push_str(first);
            name.push(' ');
            name.push_str(&last[..1]);
            name.push('.');
            push_lower(email, first);
            push_lower(email, &last[..1]);
        }
    }
    email.push('@');
    email.push_str(domain);
}

fn push_lower(out: &mut String, s: &str) {
    out.extend(s.chars().map(|c| c.to_ascii_lowercase()));
}

/// An artist's response (1–3 replies; well under 1000 characters, never `null`).
pub(crate) fn response(rng: &mut Rng, out: &mut String) {
    let n = rng.range(1, 3);
    for i in 0..n {
        if i > 0 {
            out.push(' ');
        }
        out.push_str(rng.pick(REPLIES));
    }
}

/// A photo URL (`https://`), in one of the two shapes the original files have.
pub(crate) fn photo_url(rng: &mut Rng, review_id: u64, out: &mut String) {
    if rng.chance(0.6) {
        out.push_str("https://images.unsplash.com/photo-");
        push_u64(out, rng.range(1_400_000_000_000, 1_620_000_000_000));
        out.push('-');
        push_hex(out, rng.next_u64(), 12);
        out.push_str("?ixlib=rb-1.2.1&auto=format&fit=crop&w=");
        out.push_str(rng.pick(PHOTO_WIDTHS));
        out.push_str("&q=80");
    } else {
        out.push_str("https://cdn.audiostorm.example/review-photos/");
        push_u64(out, review_id);
        out.push('/');
        push_hex(out, rng.next_u64(), 16);
        out.push_str(".jpg");
    }
}

/// A review date: epoch milliseconds for most rows, `YYYY-MM-DD` (the older exports) for some.
pub(crate) fn date(rng: &mut Rng, out: &mut String) {
    let ms = rng.range(FIRST_DATE_MS, LAST_DATE_MS);
    if rng.chance(0.15) {
        let (y, m, d) = civil_from_days(ms / DAY_MS);
        push_u64(out, y);
        out.push('-');
        push_2(out, m);
        out.push('-');
        push_2(out, d);
    } else {
        push_u64(out, ms);
    }
}

fn push_2(out: &mut String, n: u64) {
    out.push(char::from(b'0' + (n / 10) as u8));
    out.push(char::from(b'0' + (n % 10) as u8));
}

/// (year, month, day) of a day count since 1970-01-01 (Howard Hinnant's `civil_from_days`,
/// for days on or after the epoch).
pub(crate) fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + u64::from(m <= 2);
    (y, m, d)
}

/// The helpful count: mostly 0–5, a long thin tail.
pub(crate) fn helpfulness(rng: &mut Rng) -> u64 {
    if rng.chance(0.01) {
        return rng.range(25, 500);
    }
    let u = rng.unit();
    (u * u * u * u * 25.0) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_become_the_calendar_dates_the_time_crate_agrees_on() {
        let epoch = time::Date::from_calendar_date(1970, time::Month::January, 1).unwrap();
        for days in (0..30_000u64).step_by(7).chain([18_322, 19_000, 20_089]) {
            let (y, m, d) = civil_from_days(days);
            let expected = epoch + time::Duration::days(days as i64);
            assert_eq!(
                (y as i32, m as u8, d as u8),
                (expected.year(), expected.month() as u8, expected.day()),
                "{days}"
            );
        }
    }

    #[test]
    fn generated_text_stays_within_the_bounds() {
        let mut rng = Rng::derive(3, 3, 3);
        let (mut a, mut b) = (String::new(), String::new());
        for _ in 0..5_000 {
            a.clear();
            body(&mut rng, &mut a);
            assert!((50..=1000).contains(&a.len()), "{}: {a}", a.len());
            a.clear();
            summary(&mut rng, &mut a);
            assert!((1..=60).contains(&a.len()));
            a.clear();
            b.clear();
            reviewer(&mut rng, &mut a, &mut b);
            assert!(
                (1..=60).contains(&a.len()) && (3..=60).contains(&b.len()),
                "{a} {b}"
            );
            assert_eq!(b.matches('@').count(), 1);
            a.clear();
            prose_of_len(&mut rng, &mut a, 77);
            assert_eq!(a.len(), 77);
        }
    }

    #[test]
    fn numbers_are_written_in_decimal_and_hex() {
        let mut s = String::new();
        push_u64(&mut s, 0);
        s.push(' ');
        push_u64(&mut s, u64::MAX);
        s.push(' ');
        push_hex(&mut s, 0xabc, 4);
        assert_eq!(s, "0 18446744073709551615 0abc");
    }
}
