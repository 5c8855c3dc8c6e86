//! Why a row was rejected, and the rejects file (`file,line,id,reason,detail`).

use std::fmt;
use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};

use anyhow::Context;

/// A reason code, as written to the rejects file and counted in the summary.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(u8)]
pub enum Reason {
    /// Wrong number of fields, an unbalanced quote, invalid UTF-8 or a NUL byte.
    MalformedRow = 1,
    /// The id is not a positive integer.
    BadId,
    /// An earlier row of the same file has this id.
    DuplicateId,
    BadProductId,
    BadRating,
    BadDate,
    BadBoolean,
    SummaryLength,
    BodyLength,
    NameLength,
    BadEmail,
    ResponseLength,
    BadHelpfulness,
    BadUrl,
    /// The review is in neither reviews.csv nor the database.
    ReviewMissing,
    /// The review's own row was rejected.
    ReviewRejected,
    BadValue,
    CharacteristicMissing,
    CharacteristicRejected,
    /// The characteristic belongs to another song than the review.
    CharacteristicOtherSong,
    /// The review already rated this characteristic.
    DuplicateRating,
}

impl Reason {
    pub const ALL: [Reason; 21] = [
        Reason::MalformedRow,
        Reason::BadId,
        Reason::DuplicateId,
        Reason::BadProductId,
        Reason::BadRating,
        Reason::BadDate,
        Reason::BadBoolean,
        Reason::SummaryLength,
        Reason::BodyLength,
        Reason::NameLength,
        Reason::BadEmail,
        Reason::ResponseLength,
        Reason::BadHelpfulness,
        Reason::BadUrl,
        Reason::ReviewMissing,
        Reason::ReviewRejected,
        Reason::BadValue,
        Reason::CharacteristicMissing,
        Reason::CharacteristicRejected,
        Reason::CharacteristicOtherSong,
        Reason::DuplicateRating,
    ];

    /// The code written to the rejects file.
    pub fn code(self) -> &'static str {
        match self {
            Reason::MalformedRow => "malformed_row",
            Reason::BadId => "bad_id",
            Reason::DuplicateId => "duplicate_id",
            Reason::BadProductId => "bad_product_id",
            Reason::BadRating => "bad_rating",
            Reason::BadDate => "bad_date",
            Reason::BadBoolean => "bad_boolean",
            Reason::SummaryLength => "summary_length",
            Reason::BodyLength => "body_length",
            Reason::NameLength => "name_length",
            Reason::BadEmail => "bad_email",
            Reason::ResponseLength => "response_length",
            Reason::BadHelpfulness => "bad_helpfulness",
            Reason::BadUrl => "bad_url",
            Reason::ReviewMissing => "review_missing",
            Reason::ReviewRejected => "review_rejected",
            Reason::BadValue => "bad_value",
            Reason::CharacteristicMissing => "characteristic_missing",
            Reason::CharacteristicRejected => "characteristic_rejected",
            Reason::CharacteristicOtherSong => "characteristic_other_song",
            Reason::DuplicateRating => "duplicate_rating",
        }
    }

    /// The reason with this code.
    pub fn from_code(code: &str) -> Option<Reason> {
        Reason::ALL.into_iter().find(|r| r.code() == code)
    }

    /// A dense index from 0, for per-reason arrays.
    pub(crate) fn index(self) -> usize {
        usize::from(self as u8 - 1)
    }

    pub fn from_u8(value: u8) -> Option<Reason> {
        Reason::ALL.get(usize::from(value).checked_sub(1)?).copied()
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// A rejected row: why, and a human-readable detail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reject {
    pub reason: Reason,
    pub detail: String,
}

impl Reject {
    pub fn new(reason: Reason, detail: impl Into<String>) -> Self {
        Self {
            reason,
            detail: detail.into(),
        }
    }
}

/// Rejected-row counts per reason.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReasonCounts([u64; Reason::ALL.len()]);

impl ReasonCounts {
    pub fn add(&mut self, reason: Reason, n: u64) {
        self.0[reason as usize - 1] += n;
    }

    pub fn get(&self, reason: Reason) -> u64 {
        self.0[reason as usize - 1]
    }

    pub fn total(&self) -> u64 {
        self.0.iter().sum()
    }

    /// The reasons that occurred, with their counts, in code order.
    pub fn iter(&self) -> impl Iterator<Item = (Reason, u64)> + '_ {
        Reason::ALL
            .iter()
            .map(|&r| (r, self.get(r)))
            .filter(|&(_, n)| n > 0)
    }
}

/// The rejects file, written as rows are rejected (buffered; flushed at the end).
pub struct RejectLog {
    path: PathBuf,
    out: csv::Writer<BufWriter<File>>,
}

impl RejectLog {
    pub fn create(path: &Path) -> anyhow::Result<Self> {
        let file = File::create(path)
            .with_context(|| format!("cannot create the rejects file {}", path.display()))?;
        let mut out = csv::Writer::from_writer(BufWriter::with_capacity(64 * 1024, file));
        out.write_record(["file", "line", "id", "reason", "detail"])
            .with_context(|| format!("cannot write to {}", path.display()))?;
        Ok(Self {
            path: path.to_owned(),
            out,
        })
    }

    pub fn write(
        &mut self,
        file: &str,
        line: u64,
        id: &str,
        reject: &Reject,
    ) -> anyhow::Result<()> {
        let line = line.to_string();
        self.out
            .write_record([
                file,
                &line,
                &printable(id, 40),
                reject.reason.code(),
                &reject.detail,
            ])
            .with_context(|| format!("cannot write to {}", self.path.display()))
    }

    pub fn finish(mut self) -> anyhow::Result<PathBuf> {
        self.out
            .flush()
            .with_context(|| format!("cannot write to {}", self.path.display()))?;
        Ok(self.path)
    }
}

/// `text` cut to `max` characters with control characters shown as `?`, for quoting a bad value
/// in a detail.
pub fn printable(text: &str, max: usize) -> String {
    let mut out: String = text
        .chars()
        .take(max)
        .map(|c| if c.is_control() { '?' } else { c })
        .collect();
    if text.chars().nth(max).is_some() {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_reason_round_trips_through_its_byte() {
        for r in Reason::ALL {
            assert_eq!(Reason::from_u8(r as u8), Some(r));
        }
        assert_eq!(Reason::from_u8(0), None);
        assert_eq!(Reason::from_u8(Reason::ALL.len() as u8 + 1), None);
        assert!(
            Reason::ALL.len() < 64,
            "a reason must fit the state byte's six bits"
        );
    }

    #[test]
    fn a_quoted_value_is_cut_and_made_printable() {
        assert_eq!(printable("a\nb", 10), "a?b");
        assert_eq!(printable("abcdef", 3), "abc…");
    }
}
