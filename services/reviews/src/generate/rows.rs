//! One block's rows of the four files, as CSV bytes, and the tally of what was injected.
//!
//! Each file has its own random stream per block, so changing how one file's rows are drawn
//! never changes another file. Dirty rows are rolled only for rows whose parents are accepted
//! (a row that is both dirty and the child of a rejected row could be rejected for either reason);
//! clean rows under a rejected parent are tallied as `review_rejected` / `characteristic_rejected`.

use super::dirt::{DataFile, DirtPlan, KIND_COUNT, Kind};
use super::rng::Rng;
use super::structure::{Block, keeps_id, rejected};
use super::text::{self, ASPECTS, push_u64};

const STREAM_REVIEWS: u64 = 2;
const STREAM_PHOTOS: u64 = 3;
const STREAM_CHARACTERISTICS: u64 = 4;
const STREAM_RATINGS: u64 = 5;

/// Ids that are not positive integers.
const BAD_IDS: &[&str] = &["abc", "-3", "0", "1.5", "12x"];
const BAD_PRODUCT_IDS: &[&str] = &["0", "-7", "abc"];
const BAD_RATINGS: &[&str] = &["0", "6", "4.5", ""];
const BAD_DATES: &[&str] = &["2020-13-45", "yesterday", "2021-02-30"];
const BAD_BOOLEANS: &[&str] = &["maybe", "2", "nope"];
const BAD_HELPFULNESS: &[&str] = &["-1", "many", "2.5"];
const BAD_URLS: &[&str] = &[
    "ftp://files.example.com/photos/1.jpg",
    "not a url",
    "www.photos.example.com/2.jpg",
    "file:///home/user/photo.jpg",
];
const BAD_VALUES: &[&str] = &["0", "7", "2.5", "", "6"];
/// How far above the largest real id a missing reference points.
const MISSING_SPREAD: u64 = 1_000_000;

/// Rows written to one file and what they hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Tally {
    /// Data rows (the header not counted).
    pub rows: u64,
    /// Rows the importer must reject, per [`Kind`].
    pub kinds: [u64; KIND_COUNT],
}

impl Default for Tally {
    fn default() -> Self {
        Self {
            rows: 0,
            kinds: [0; KIND_COUNT],
        }
    }
}

impl Tally {
    fn row(&mut self, kind: Option<Kind>) {
        self.rows += 1;
        if let Some(k) = kind {
            self.kinds[k.index()] += 1;
        }
    }

    pub(crate) fn add(&mut self, other: &Tally) {
        self.rows += other.rows;
        for (a, b) in self.kinds.iter_mut().zip(other.kinds) {
            *a += b;
        }
    }
}

/// Where the block's ids start (each is the id before the block's first), and the totals that
/// tell which ids exist at all.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Ids {
    pub review: u64,
    pub char: u64,
    pub photo: u64,
    pub rating: u64,
    pub total_reviews: u64,
    pub total_chars: u64,
}

/// One block of every file.
#[derive(Debug)]
pub(crate) struct BlockOutput {
    pub bytes: [Vec<u8>; 4],
    pub tallies: [Tally; 4],
    pub reviews: u64,
}

/// The last few accepted rows of a file in this block: where duplicates take their ids from.
struct Recent<T> {
    items: Vec<T>,
    next: usize,
}

impl<T: Copy> Recent<T> {
    const CAPACITY: usize = 64;

    fn new() -> Self {
        Self {
            items: Vec::with_capacity(Self::CAPACITY),
            next: 0,
        }
    }

    fn push(&mut self, item: T) {
        if self.items.len() < Self::CAPACITY {
            self.items.push(item);
        } else {
            self.items[self.next] = item;
            self.next = (self.next + 1) % Self::CAPACITY;
        }
    }

    /// One of them; only called right after a push.
    fn pick(&self, rng: &mut Rng, fallback: T) -> T {
        if self.items.is_empty() {
            fallback
        } else {
            rng.pick(&self.items)
        }
    }
}

/// A CSV writer into memory, quoting only where needed, allowing the malformed rows' field counts.
fn csv_writer(capacity: usize) -> csv::Writer<Vec<u8>> {
    csv::WriterBuilder::new()
        .flexible(true)
        .quote_style(csv::QuoteStyle::Necessary)
        .buffer_capacity(64 * 1024)
        .from_writer(Vec::with_capacity(capacity))
}

fn into_bytes(w: csv::Writer<Vec<u8>>) -> anyhow::Result<Vec<u8>> {
    w.into_inner()
        .map_err(|e| anyhow::anyhow!("cannot finish a block of CSV: {}", e.error()))
}

/// A row's fields, reused from row to row; `fields[..len]` are written.
struct Fields<const N: usize> {
    fields: [String; N],
}

impl<const N: usize> Fields<N> {
    fn new() -> Self {
        Self {
            fields: std::array::from_fn(|_| String::with_capacity(64)),
        }
    }

    fn clear(&mut self) {
        self.fields.iter_mut().for_each(String::clear);
    }

    fn set(&mut self, i: usize, value: &str) {
        self.fields[i].clear();
        self.fields[i].push_str(value);
    }

    fn set_u64(&mut self, i: usize, value: u64) {
        self.fields[i].clear();
        push_u64(&mut self.fields[i], value);
    }

    /// Writes the row. A malformed row loses one field (not the id) or gains one.
    fn write(
        &self,
        out: &mut csv::Writer<Vec<u8>>,
        malformed: bool,
        rng: &mut Rng,
    ) -> csv::Result<()> {
        if !malformed {
            return out.write_record(&self.fields);
        }
        if rng.chance(0.5) {
            let skip = rng.range(1, N as u64 - 1) as usize;
            for (i, f) in self.fields.iter().enumerate() {
                if i != skip {
                    out.write_field(f)?;
                }
            }
        } else {
            for f in &self.fields {
                out.write_field(f)?;
            }
            out.write_field("extra")?;
        }
        out.write_record(None::<&[u8]>)
    }
}

/// Writes block `block` of all four files.
pub(crate) fn write_block(
    block: &Block,
    ids: &Ids,
    plan: &DirtPlan,
    seed: u64,
) -> anyhow::Result<BlockOutput> {
    let mut tallies = [Tally::default(); 4];
    let mut reviews = csv_writer(block.reviews.len() * 450 + 1024);
    write_reviews(block, ids, seed, &mut reviews, &mut tallies[0])?;
    let mut photos = csv_writer(block.reviews.len() * 50 + 1024);
    write_photos(block, ids, plan, seed, &mut photos, &mut tallies[1])?;
    let mut chars = csv_writer(block.chars.len() * 24 + 1024);
    write_characteristics(block, ids, seed, &mut chars, &mut tallies[2])?;
    let mut ratings = csv_writer(block.reviews.len() * 90 + 1024);
    write_ratings(block, ids, plan, seed, &mut ratings, &mut tallies[3])?;
    Ok(BlockOutput {
        bytes: [
            into_bytes(reviews)?,
            into_bytes(photos)?,
            into_bytes(chars)?,
            into_bytes(ratings)?,
        ],
        tallies,
        reviews: block.reviews.len() as u64,
    })
}

// reviews.csv columns.
const R_ID: usize = 0;
const R_PRODUCT: usize = 1;
const R_RATING: usize = 2;
const R_DATE: usize = 3;
const R_SUMMARY: usize = 4;
const R_BODY: usize = 5;
const R_RECOMMEND: usize = 6;
const R_REPORTED: usize = 7;
const R_NAME: usize = 8;
const R_EMAIL: usize = 9;
const R_RESPONSE: usize = 10;
const R_HELPFUL: usize = 11;

/// A clean review row.
fn clean_review(rng: &mut Rng, row: &mut Fields<12>, id: u64, song: u64, stars: u8) {
    row.clear();
    let f = &mut row.fields;
    push_u64(&mut f[R_ID], id);
    push_u64(&mut f[R_PRODUCT], song);
    push_u64(&mut f[R_RATING], u64::from(stars));
    text::date(rng, &mut f[R_DATE]);
    text::summary(rng, &mut f[R_SUMMARY]);
    text::body(rng, &mut f[R_BODY]);
    // Recommending follows the stars; a few rows spell booleans 1/0.
    let recommend = rng.chance(if stars >= 3 { 0.93 } else { 0.2 });
    let reported = rng.chance(0.02);
    let numeric = rng.chance(0.05);
    let spell = |b: bool| match (numeric, b) {
        (false, true) => "true",
        (false, false) => "false",
        (true, true) => "1",
        (true, false) => "0",
    };
    f[R_RECOMMEND].push_str(spell(recommend));
    f[R_REPORTED].push_str(spell(reported));
    let (name, rest) = f[R_NAME..].split_at_mut(1);
    text::reviewer(rng, &mut name[0], &mut rest[0]);
    if rng.chance(0.08) {
        text::response(rng, &mut f[R_RESPONSE]);
    } else {
        f[R_RESPONSE].push_str("null");
    }
    push_u64(&mut f[R_HELPFUL], text::helpfulness(rng));
}

/// Spoils one field of a clean review row the way `kind` says.
fn spoil_review(rng: &mut Rng, row: &mut Fields<12>, kind: Kind) {
    match kind {
        Kind::BadId => row.set(R_ID, rng.pick(BAD_IDS)),
        Kind::BadProductId => row.set(R_PRODUCT, rng.pick(BAD_PRODUCT_IDS)),
        Kind::BadRating => row.set(R_RATING, rng.pick(BAD_RATINGS)),
        Kind::BadDate => row.set(R_DATE, rng.pick(BAD_DATES)),
        Kind::BadBoolean => {
            let field = if rng.chance(0.5) {
                R_RECOMMEND
            } else {
                R_REPORTED
            };
            row.set(field, rng.pick(BAD_BOOLEANS));
        }
        Kind::SummaryLength => {
            row.fields[R_SUMMARY].clear();
            if rng.chance(0.5) {
                let len = rng.range(61, 120) as usize;
                text::prose_of_len(rng, &mut row.fields[R_SUMMARY], len);
            }
        }
        Kind::BodyLength => {
            row.fields[R_BODY].clear();
            let len = if rng.chance(0.5) {
                rng.range(0, 49)
            } else {
                rng.range(1001, 1500)
            } as usize;
            text::prose_of_len(rng, &mut row.fields[R_BODY], len);
        }
        Kind::NameLength => {
            row.fields[R_NAME].clear();
            if rng.chance(0.5) {
                let len = rng.range(61, 80) as usize;
                text::prose_of_len(rng, &mut row.fields[R_NAME], len);
            }
        }
        Kind::BadEmail => {
            let email = std::mem::take(&mut row.fields[R_EMAIL]);
            let bad = match rng.below(3) {
                0 => email.replace('@', "."),
                1 => "a@b".to_owned(),
                _ => email.replacen('@', " at @", 1),
            };
            row.fields[R_EMAIL] = bad;
        }
        Kind::ResponseLength => {
            row.fields[R_RESPONSE].clear();
            let len = rng.range(1001, 1500) as usize;
            text::prose_of_len(rng, &mut row.fields[R_RESPONSE], len);
        }
        Kind::BadHelpfulness => row.set(R_HELPFUL, rng.pick(BAD_HELPFULNESS)),
        // Written by the caller (malformed) or not a field change (duplicates).
        _ => {}
    }
}

fn write_reviews(
    block: &Block,
    ids: &Ids,
    seed: u64,
    out: &mut csv::Writer<Vec<u8>>,
    tally: &mut Tally,
) -> csv::Result<()> {
    let mut rng = Rng::derive(seed, STREAM_REVIEWS, block.index);
    let mut row = Fields::<12>::new();
    let mut recent = Recent::new();
    for (i, r) in block.reviews.iter().enumerate() {
        let id = ids.review + 1 + i as u64;
        let song = block.first_song + u64::from(r.song);
        clean_review(&mut rng, &mut row, id, song, r.stars);
        match r.dirt {
            None | Some(Kind::DuplicateId) => {
                row.write(out, false, &mut rng)?;
                tally.row(None);
                recent.push((id, song));
                if r.dirt.is_some() {
                    let (dup_id, dup_song) = recent.pick(&mut rng, (id, song));
                    let stars = rng.range(1, 5) as u8;
                    clean_review(&mut rng, &mut row, dup_id, dup_song, stars);
                    row.write(out, false, &mut rng)?;
                    tally.row(r.dirt);
                }
            }
            Some(kind) => {
                spoil_review(&mut rng, &mut row, kind);
                row.write(out, kind == Kind::MalformedRow, &mut rng)?;
                tally.row(Some(kind));
            }
        }
    }
    Ok(())
}

fn write_photos(
    block: &Block,
    ids: &Ids,
    plan: &DirtPlan,
    seed: u64,
    out: &mut csv::Writer<Vec<u8>>,
    tally: &mut Tally,
) -> csv::Result<()> {
    let mut rng = Rng::derive(seed, STREAM_PHOTOS, block.index);
    let dirt = plan.file(DataFile::Photos);
    let mut row = Fields::<3>::new();
    let mut recent = Recent::new();
    let mut photo_id = ids.photo;
    for (i, r) in block.reviews.iter().enumerate() {
        if !keeps_id(r.dirt) {
            continue;
        }
        let review_id = ids.review + 1 + i as u64;
        for _ in 0..r.photos {
            photo_id += 1;
            row.clear();
            push_u64(&mut row.fields[0], photo_id);
            push_u64(&mut row.fields[1], review_id);
            text::photo_url(&mut rng, review_id, &mut row.fields[2]);
            if rejected(r.dirt) {
                row.write(out, false, &mut rng)?;
                tally.row(Some(Kind::ReviewRejected));
                continue;
            }
            match dirt.roll(&mut rng) {
                None => {
                    row.write(out, false, &mut rng)?;
                    tally.row(None);
                    recent.push((photo_id, review_id));
                }
                Some(Kind::DuplicateId) => {
                    row.write(out, false, &mut rng)?;
                    tally.row(None);
                    recent.push((photo_id, review_id));
                    let (dup_id, dup_review) = recent.pick(&mut rng, (photo_id, review_id));
                    row.set_u64(0, dup_id);
                    row.set_u64(1, dup_review);
                    row.fields[2].clear();
                    text::photo_url(&mut rng, dup_review, &mut row.fields[2]);
                    row.write(out, false, &mut rng)?;
                    tally.row(Some(Kind::DuplicateId));
                }
                Some(kind) => {
                    match kind {
                        Kind::BadId => row.set(0, rng.pick(BAD_IDS)),
                        Kind::BadUrl => row.set(2, rng.pick(BAD_URLS)),
                        Kind::ReviewMissing => {
                            let missing = ids.total_reviews + 1 + rng.below(MISSING_SPREAD);
                            row.set_u64(1, missing);
                        }
                        _ => {}
                    }
                    row.write(out, kind == Kind::MalformedRow, &mut rng)?;
                    tally.row(Some(kind));
                }
            }
        }
    }
    Ok(())
}

fn write_characteristics(
    block: &Block,
    ids: &Ids,
    seed: u64,
    out: &mut csv::Writer<Vec<u8>>,
    tally: &mut Tally,
) -> csv::Result<()> {
    // Which characteristics are dirty is part of the skeleton (ratings must know it).
    let mut rng = Rng::derive(seed, STREAM_CHARACTERISTICS, block.index);
    let mut row = Fields::<3>::new();
    let mut recent = Recent::new();
    for (i, c) in block.chars.iter().enumerate() {
        let id = ids.char + 1 + i as u64;
        let song = block.first_song + u64::from(c.song);
        row.clear();
        push_u64(&mut row.fields[0], id);
        push_u64(&mut row.fields[1], song);
        row.fields[2].push_str(ASPECTS[usize::from(c.aspect)]);
        match c.dirt {
            None | Some(Kind::DuplicateId) => {
                row.write(out, false, &mut rng)?;
                tally.row(None);
                recent.push((id, song, c.aspect));
                if c.dirt.is_some() {
                    let (dup_id, dup_song, aspect) = recent.pick(&mut rng, (id, song, c.aspect));
                    let other = (usize::from(aspect) + 1 + rng.below(9) as usize) % ASPECTS.len();
                    row.set_u64(0, dup_id);
                    row.set_u64(1, dup_song);
                    row.set(2, ASPECTS[other]);
                    row.write(out, false, &mut rng)?;
                    tally.row(c.dirt);
                }
            }
            Some(kind) => {
                match kind {
                    Kind::BadId => row.set(0, rng.pick(BAD_IDS)),
                    Kind::BadProductId => row.set(1, rng.pick(BAD_PRODUCT_IDS)),
                    Kind::NameLength => {
                        row.fields[2].clear();
                        if rng.chance(0.5) {
                            let len = rng.range(61, 90) as usize;
                            text::prose_of_len(&mut rng, &mut row.fields[2], len);
                        }
                    }
                    _ => {}
                }
                row.write(out, kind == Kind::MalformedRow, &mut rng)?;
                tally.row(Some(kind));
            }
        }
    }
    Ok(())
}

fn write_ratings(
    block: &Block,
    ids: &Ids,
    plan: &DirtPlan,
    seed: u64,
    out: &mut csv::Writer<Vec<u8>>,
    tally: &mut Tally,
) -> csv::Result<()> {
    let mut rng = Rng::derive(seed, STREAM_RATINGS, block.index);
    let dirt = plan.file(DataFile::CharacteristicReviews);
    let mut row = Fields::<4>::new();
    let mut rating_id = ids.rating;
    // A duplicate rolled where it cannot go (no earlier or later pair to use) waits for a row
    // where it can, so the injected share stays close to the configured one.
    let mut pending_dup_rating = false;
    let mut pending_dup_id = false;
    for (i, r) in block.reviews.iter().enumerate() {
        if !keeps_id(r.dirt) {
            continue;
        }
        let review_id = ids.review + 1 + i as u64;
        let rated: Vec<(usize, bool)> = block
            .chars_of(r.song)
            .filter(|(_, c)| keeps_id(c.dirt))
            .map(|(j, c)| (j, rejected(c.dirt)))
            .collect();
        // The characteristic of the last accepted rating of this review.
        let mut previous: Option<u64> = None;
        for (k, &(j, char_rejected)) in rated.iter().enumerate() {
            rating_id += 1;
            let char_id = ids.char + 1 + j as u64;
            let value = rating_value(&mut rng, r.stars);
            row.clear();
            push_u64(&mut row.fields[0], rating_id);
            push_u64(&mut row.fields[1], char_id);
            push_u64(&mut row.fields[2], review_id);
            push_u64(&mut row.fields[3], value);
            if rejected(r.dirt) || char_rejected {
                row.write(out, false, &mut rng)?;
                let reason = if rejected(r.dirt) {
                    Kind::ReviewRejected
                } else {
                    Kind::CharacteristicRejected
                };
                tally.row(Some(reason));
                continue;
            }
            let mut kind = dirt.roll(&mut rng);
            if kind == Some(Kind::DuplicateRating) || (kind.is_none() && pending_dup_rating) {
                pending_dup_rating = previous.is_none();
                kind = previous.map(|_| Kind::DuplicateRating);
            }
            // A duplicate id re-uses this row's id for the review's *next* characteristic, so the
            // extra row repeats no pair: it can only be rejected for its id.
            let next_char = rated
                .get(k + 1)
                .filter(|(_, rej)| !rej)
                .map(|&(j, _)| ids.char + 1 + j as u64);
            if kind == Some(Kind::DuplicateId) || (kind.is_none() && pending_dup_id) {
                pending_dup_id = next_char.is_none();
                kind = None;
                if let Some(next) = next_char {
                    row.write(out, false, &mut rng)?;
                    tally.row(None);
                    previous = Some(char_id);
                    row.set_u64(1, next);
                    row.set_u64(3, rating_value(&mut rng, r.stars));
                    row.write(out, false, &mut rng)?;
                    tally.row(Some(Kind::DuplicateId));
                    continue;
                }
            }
            match kind {
                None => {
                    row.write(out, false, &mut rng)?;
                    tally.row(None);
                    previous = Some(char_id);
                }
                Some(kind) => {
                    match kind {
                        Kind::BadId => row.set(0, rng.pick(BAD_IDS)),
                        Kind::BadValue => row.set(3, rng.pick(BAD_VALUES)),
                        Kind::ReviewMissing => {
                            let missing = ids.total_reviews + 1 + rng.below(MISSING_SPREAD);
                            row.set_u64(2, missing);
                        }
                        Kind::CharacteristicMissing => {
                            let missing = ids.total_chars + 1 + rng.below(MISSING_SPREAD);
                            row.set_u64(1, missing);
                        }
                        Kind::DuplicateRating => {
                            if let Some(prev) = previous {
                                row.set_u64(1, prev);
                            }
                        }
                        _ => {}
                    }
                    row.write(out, kind == Kind::MalformedRow, &mut rng)?;
                    tally.row(Some(kind));
                }
            }
        }
    }
    Ok(())
}

/// A characteristic value 1–5 close to the review's stars.
fn rating_value(rng: &mut Rng, stars: u8) -> u64 {
    let v = i64::from(stars) + rng.pick(&[-1i64, 0, 0, 0, 1]);
    v.clamp(1, 5) as u64
}
