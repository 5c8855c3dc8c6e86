//! The four files' row rules, and the loop that reads a file, checks each row and encodes the
//! accepted ones for COPY. Runs on a blocking thread; the COPY streams from the async side.

use std::fs::File;
use std::path::Path;

use anyhow::Context;
use indicatif::ProgressBar;

use super::copy::{Closed, CopyWriter};
use super::ids::{IdSet, Parent, ParentIndex, Ranks, RatedPairs};
use super::reader::{Next, Records};
use super::rejects::{Reason, ReasonCounts, Reject, RejectLog, printable};
use super::rules;

/// Everything the import remembers about ids while it reads (see [`super::ids`] for the cost).
#[derive(Debug, Default)]
pub struct Catalog {
    pub reviews: ParentIndex,
    pub characteristics: ParentIndex,
    pub ranks: Ranks,
    pub photos: ChildIds,
    pub ratings: ChildIds,
    pub pairs: RatedPairs,
}

impl Catalog {
    pub fn heap_bytes(&self) -> usize {
        self.reviews.heap_bytes()
            + self.characteristics.heap_bytes()
            + self.ranks.heap_bytes()
            + self.photos.heap_bytes()
            + self.ratings.heap_bytes()
            + self.pairs.heap_bytes()
    }
}

/// Ids of a table nothing refers to: claimed by the file (1 bit), already in the database (1 bit).
#[derive(Debug, Default)]
pub struct ChildIds {
    pub claimed: IdSet,
    pub in_db: IdSet,
}

impl ChildIds {
    fn heap_bytes(&self) -> usize {
        self.claimed.heap_bytes() + self.in_db.heap_bytes()
    }
}

/// What one file's rows came to.
#[derive(Debug, Clone, Default)]
pub struct Counts {
    /// Records read, header excluded.
    pub rows: u64,
    /// Rows written (new to the database).
    pub accepted: u64,
    /// Valid rows whose id the database already has.
    pub already_present: u64,
    pub rejected: ReasonCounts,
}

/// One file's rules: its header, and how a row whose id it has claimed is checked and written.
pub trait Table<const N: usize>: Send + 'static {
    const FILE: &'static str;
    const HEADER: [&'static str; N];
    /// The table the rows go to, and the columns the COPY writes (in the rows' order).
    const TABLE: &'static str;
    const COLUMNS: &'static str;
    /// Claims `id` for a row of the file; `false` when an earlier row of the file claimed it.
    fn claim(&self, c: &mut Catalog, id: u64) -> bool;
    /// Checks a row and writes it to `out` when it is new: `Ok(true)` written, `Ok(false)` already
    /// in the database.
    fn check(
        &self,
        c: &mut Catalog,
        id: u64,
        line: u64,
        f: &[&str; N],
        out: &mut CopyWriter,
    ) -> Result<bool, Reject>;
    /// Remembers that the row claiming `id` was rejected (parents only: children point at them).
    fn rejected(&self, _c: &mut Catalog, _id: u64, _reason: Reason) {}
}

/// Reads `path` to the end: every row is either written to `out`, found already present, or
/// written to `rejects`. The COPY stream is finished only when the whole file was read.
pub fn load<const N: usize, T: Table<N>>(
    table: &T,
    catalog: &mut Catalog,
    path: &Path,
    rejects: &mut RejectLog,
    out: CopyWriter,
    progress: &ProgressBar,
) -> anyhow::Result<Counts> {
    let file = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let mut records = Records::new(file, path);
    let mut counts = Counts::default();
    let mut out = out;
    check_header::<N, T>(&mut records, path)?;
    let closed = || anyhow::anyhow!("the COPY of {} stopped", T::FILE);
    let mut since_progress = 0u32;
    while let Some(next) = records.next_record()? {
        counts.rows += 1;
        let (line, id_text, reject) = match next {
            Next::Malformed {
                line,
                first_field,
                detail,
            } => {
                claim_malformed(table, catalog, &first_field);
                (line, first_field, Reject::new(Reason::MalformedRow, detail))
            }
            Next::Record(rec) => {
                let line = rec.line;
                match rec.fields::<N>() {
                    Err(detail) => {
                        let first = String::from_utf8_lossy(rec.field(0)).into_owned();
                        claim_malformed(table, catalog, &first);
                        (line, first, Reject::new(Reason::MalformedRow, detail))
                    }
                    Ok(f) => match check_row(table, catalog, line, &f, &mut out) {
                        Ok(true) => {
                            counts.accepted += 1;
                            continue_row(&mut out, &mut since_progress, &records, progress)
                                .map_err(|Closed| closed())?;
                            continue;
                        }
                        Ok(false) => {
                            counts.already_present += 1;
                            continue;
                        }
                        Err(reject) => (line, f[0].to_owned(), reject),
                    },
                }
            }
        };
        counts.rejected.add(reject.reason, 1);
        rejects.write(T::FILE, line, &id_text, &reject)?;
    }
    progress.set_position(records.bytes_read());
    out.finish().map_err(|Closed| closed())?;
    Ok(counts)
}

fn continue_row<R>(
    out: &mut CopyWriter,
    since_progress: &mut u32,
    records: &Records<R>,
    progress: &ProgressBar,
) -> Result<(), Closed>
where
    R: std::io::Read,
{
    *since_progress += 1;
    if *since_progress == 4096 {
        *since_progress = 0;
        progress.set_position(records.bytes_read());
    }
    out.maybe_flush()
}

/// Checks that `path` starts with `T`'s header (a name may differ in case or surrounding spaces).
pub fn check_header_of<const N: usize, T: Table<N>>(path: &Path) -> anyhow::Result<()> {
    let file = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    check_header::<N, T>(&mut Records::new(file, path), path)
}

fn check_header<const N: usize, T: Table<N>>(
    records: &mut Records<File>,
    path: &Path,
) -> anyhow::Result<()> {
    let expected = T::HEADER.join(",");
    let found = match records.next_record()? {
        None => anyhow::bail!(
            "{} is empty: expected the header {expected}",
            path.display()
        ),
        Some(Next::Malformed { .. }) => String::from("(unreadable)"),
        Some(Next::Record(rec)) => (0..rec.len())
            .map(|i| {
                String::from_utf8_lossy(rec.field(i))
                    .trim()
                    .to_ascii_lowercase()
            })
            .collect::<Vec<_>>()
            .join(","),
    };
    anyhow::ensure!(
        found == expected,
        "{}: line 1: expected the header {expected}, found {}",
        path.display(),
        printable(&found, 200)
    );
    Ok(())
}

/// A malformed row whose first field is still a positive integer claims that id, so that a later
/// row with the same id is a duplicate and the rows pointing at it say what became of it.
fn claim_malformed<const N: usize, T: Table<N>>(table: &T, c: &mut Catalog, first_field: &str) {
    if let Some(id) = rules::positive_id(first_field)
        && table.claim(c, id)
    {
        table.rejected(c, id, Reason::MalformedRow);
    }
}

fn check_row<const N: usize, T: Table<N>>(
    table: &T,
    c: &mut Catalog,
    line: u64,
    f: &[&str; N],
    out: &mut CopyWriter,
) -> Result<bool, Reject> {
    let Some(id) = rules::positive_id(f[0]) else {
        return Err(Reject::new(
            Reason::BadId,
            format!("id \"{}\" is not a positive integer", printable(f[0], 40)),
        ));
    };
    if !table.claim(c, id) {
        return Err(Reject::new(
            Reason::DuplicateId,
            format!("id {id} already appeared earlier in {}", T::FILE),
        ));
    }
    table.check(c, id, line, f, out).inspect_err(|reject| {
        table.rejected(c, id, reject.reason);
    })
}

fn length(
    value: &str,
    what: &str,
    range: std::ops::RangeInclusive<usize>,
    reason: Reason,
) -> Result<(), Reject> {
    let n = rules::char_len(value);
    if range.contains(&n) {
        Ok(())
    } else {
        Err(Reject::new(
            reason,
            format!(
                "{what} has {n} characters ({}–{} allowed)",
                range.start(),
                range.end()
            ),
        ))
    }
}

fn bad(reason: Reason, what: &str, value: &str, expected: &str) -> Reject {
    Reject::new(
        reason,
        format!("{what} \"{}\" is not {expected}", printable(value, 40)),
    )
}

/// `reviews.csv`.
pub struct Reviews;

impl Table<12> for Reviews {
    const FILE: &'static str = "reviews.csv";
    const TABLE: &'static str = "reviews";
    const COLUMNS: &'static str = "id, song_id, rating, created_at, summary, body, recommend, reported, \
                                   reviewer_name, reviewer_email, response, helpfulness";
    const HEADER: [&'static str; 12] = [
        "id",
        "product_id",
        "rating",
        "date",
        "summary",
        "body",
        "recommend",
        "reported",
        "reviewer_name",
        "reviewer_email",
        "response",
        "helpfulness",
    ];

    fn claim(&self, c: &mut Catalog, id: u64) -> bool {
        c.reviews.claim(id)
    }

    fn rejected(&self, c: &mut Catalog, id: u64, reason: Reason) {
        c.reviews.settle(id, Err(reason));
    }

    fn check(
        &self,
        c: &mut Catalog,
        id: u64,
        _line: u64,
        f: &[&str; 12],
        out: &mut CopyWriter,
    ) -> Result<bool, Reject> {
        let [
            _,
            product,
            rating,
            date,
            summary,
            body,
            recommend,
            reported,
            name,
            email,
            response,
            helpful,
        ] = *f;
        let song = rules::positive_id(product).ok_or_else(|| {
            bad(
                Reason::BadProductId,
                "product_id",
                product,
                "a positive integer",
            )
        })?;
        let rating = rules::one_to_five(rating)
            .ok_or_else(|| bad(Reason::BadRating, "rating", rating, "an integer 1–5"))?;
        let created = rules::date(date).ok_or_else(|| {
            bad(
                Reason::BadDate,
                "date",
                date,
                "epoch milliseconds, YYYY-MM-DD or RFC 3339",
            )
        })?;
        length(summary, "summary", 1..=60, Reason::SummaryLength)?;
        length(body, "body", 50..=1000, Reason::BodyLength)?;
        let recommend = rules::boolean(recommend)
            .ok_or_else(|| bad(Reason::BadBoolean, "recommend", recommend, "true/false/1/0"))?;
        let reported = rules::boolean(reported)
            .ok_or_else(|| bad(Reason::BadBoolean, "reported", reported, "true/false/1/0"))?;
        length(name, "reviewer_name", 1..=60, Reason::NameLength)?;
        if !rules::email(email) {
            return Err(bad(
                Reason::BadEmail,
                "reviewer_email",
                email,
                "an email address",
            ));
        }
        let response = if rules::is_null(response) {
            None
        } else {
            length(response, "response", 0..=1000, Reason::ResponseLength)?;
            Some(response)
        };
        let helpfulness = rules::helpfulness(helpful).ok_or_else(|| {
            bad(
                Reason::BadHelpfulness,
                "helpfulness",
                helpful,
                "a non-negative integer",
            )
        })?;
        c.reviews.settle(id, Ok(song));
        if c.reviews.in_db(id) {
            return Ok(false);
        }
        // Both fit a BIGINT: positive_id checks.
        out.row(12)
            .int8(id as i64)
            .int8(song as i64)
            .int2(rating)
            .timestamptz(created)
            .text(summary)
            .text(body)
            .boolean(recommend)
            .boolean(reported)
            .text(name)
            .text(email);
        match response {
            Some(r) => out.text(r),
            None => out.null(),
        }
        .int4(helpfulness);
        Ok(true)
    }
}

/// `characteristics.csv`.
pub struct Characteristics;

impl Table<3> for Characteristics {
    const FILE: &'static str = "characteristics.csv";
    const TABLE: &'static str = "characteristics";
    const COLUMNS: &'static str = "id, song_id, name";
    const HEADER: [&'static str; 3] = ["id", "product_id", "name"];

    fn claim(&self, c: &mut Catalog, id: u64) -> bool {
        c.characteristics.claim(id)
    }

    fn rejected(&self, c: &mut Catalog, id: u64, reason: Reason) {
        c.characteristics.settle(id, Err(reason));
    }

    fn check(
        &self,
        c: &mut Catalog,
        id: u64,
        _line: u64,
        f: &[&str; 3],
        out: &mut CopyWriter,
    ) -> Result<bool, Reject> {
        let [_, product, name] = *f;
        let song = rules::positive_id(product).ok_or_else(|| {
            bad(
                Reason::BadProductId,
                "product_id",
                product,
                "a positive integer",
            )
        })?;
        length(name, "name", 1..=60, Reason::NameLength)?;
        c.characteristics.settle(id, Ok(song));
        if c.characteristics.in_db(id) {
            return Ok(false);
        }
        c.ranks.assign(id, song);
        out.row(3).int8(id as i64).int8(song as i64).text(name);
        Ok(true)
    }
}

/// Looks a parent up for a child row: the parent's song, or why the child is rejected.
fn parent(
    index: &ParentIndex,
    column: &str,
    value: &str,
    noun: &str,
    source: &str,
    missing: Reason,
    rejected: Reason,
) -> Result<(u64, u64), Reject> {
    let Some(id) = rules::positive_id(value) else {
        return Err(Reject::new(
            missing,
            format!("{column} \"{}\" is not an id", printable(value, 40)),
        ));
    };
    match index.lookup(id) {
        Parent::Present { song } => Ok((id, song)),
        Parent::Rejected(reason) => Err(Reject::new(rejected, format!("{noun} {id}: {reason}"))),
        Parent::Missing => Err(Reject::new(
            missing,
            format!("{noun} {id} is in neither {source} nor the database"),
        )),
    }
}

/// `reviews_photos.csv`.
pub struct Photos;

impl Table<3> for Photos {
    const FILE: &'static str = "reviews_photos.csv";
    const TABLE: &'static str = "review_photos";
    const COLUMNS: &'static str = "id, review_id, url";
    const HEADER: [&'static str; 3] = ["id", "review_id", "url"];

    fn claim(&self, c: &mut Catalog, id: u64) -> bool {
        c.photos.claimed.insert(id)
    }

    fn check(
        &self,
        c: &mut Catalog,
        id: u64,
        _line: u64,
        f: &[&str; 3],
        out: &mut CopyWriter,
    ) -> Result<bool, Reject> {
        let [_, review, url] = *f;
        if !rules::url(url) {
            return Err(if rules::char_len(url) > 2048 {
                Reject::new(
                    Reason::BadUrl,
                    format!("url has {} characters (2048 allowed)", rules::char_len(url)),
                )
            } else {
                bad(Reason::BadUrl, "url", url, "http:// or https://")
            });
        }
        let (review, _) = parent(
            &c.reviews,
            "review_id",
            review,
            "review",
            "reviews.csv",
            Reason::ReviewMissing,
            Reason::ReviewRejected,
        )?;
        if c.photos.in_db.contains(id) {
            return Ok(false);
        }
        out.row(3).int8(id as i64).int8(review as i64).text(url);
        Ok(true)
    }
}

/// `characteristic_reviews.csv`. With `line`, each row also carries its line number (the staging
/// table's extra column, to name the rows the database turns away).
pub struct Ratings {
    pub with_line: bool,
}

impl Table<4> for Ratings {
    const FILE: &'static str = "characteristic_reviews.csv";
    const TABLE: &'static str = "characteristic_reviews";
    const COLUMNS: &'static str = "id, characteristic_id, review_id, value";
    const HEADER: [&'static str; 4] = ["id", "characteristic_id", "review_id", "value"];

    fn claim(&self, c: &mut Catalog, id: u64) -> bool {
        c.ratings.claimed.insert(id)
    }

    fn check(
        &self,
        c: &mut Catalog,
        id: u64,
        line: u64,
        f: &[&str; 4],
        out: &mut CopyWriter,
    ) -> Result<bool, Reject> {
        let [_, characteristic, review, value] = *f;
        let value = rules::one_to_five(value)
            .ok_or_else(|| bad(Reason::BadValue, "value", value, "an integer 1–5"))?;
        let (review, review_song) = parent(
            &c.reviews,
            "review_id",
            review,
            "review",
            "reviews.csv",
            Reason::ReviewMissing,
            Reason::ReviewRejected,
        )?;
        let (characteristic, song) = parent(
            &c.characteristics,
            "characteristic_id",
            characteristic,
            "characteristic",
            "characteristics.csv",
            Reason::CharacteristicMissing,
            Reason::CharacteristicRejected,
        )?;
        if song != review_song {
            return Err(Reject::new(
                Reason::CharacteristicOtherSong,
                format!(
                    "characteristic {characteristic} is of song {song}, \
                     review {review} of song {review_song}"
                ),
            ));
        }
        // A row already in the database claims its pair too (so a second run rejects the same
        // rows), but is never a duplicate of a row the file has before it: it is the pair's owner.
        let new_pair = c
            .pairs
            .insert(review, characteristic, c.ranks.get(characteristic));
        if c.ratings.in_db.contains(id) {
            return Ok(false);
        }
        if !new_pair {
            return Err(Reject::new(
                Reason::DuplicateRating,
                format!("review {review} already rated characteristic {characteristic}"),
            ));
        }
        out.row(if self.with_line { 5 } else { 4 })
            .int8(id as i64)
            .int8(characteristic as i64)
            .int8(review as i64)
            .int2(value);
        if self.with_line {
            out.int8(i64::try_from(line).unwrap_or(i64::MAX));
        }
        Ok(true)
    }
}
