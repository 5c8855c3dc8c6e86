//! Dirty rows: the kinds the generator injects (named exactly as the importer's reject reasons),
//! the files they belong to, and how often each is injected.

use std::str::FromStr;

use super::rng::Rng;

/// A kind of dirty row: the importer's reject reason it must be rejected with (one type, so the
/// generator and the importer cannot drift apart). Each file injects some kinds and derives
/// others (`review_rejected`, `characteristic_rejected`: clean children of dirty parents); see
/// [`DataFile`].
pub use crate::import::Reason as Kind;

/// How many [`Kind`]s there are.
pub const KIND_COUNT: usize = Kind::ALL.len();

/// One of the four legacy files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DataFile {
    Reviews,
    Photos,
    Characteristics,
    CharacteristicReviews,
}

impl DataFile {
    /// The four files, parents before children.
    pub const ALL: [DataFile; 4] = [
        DataFile::Reviews,
        DataFile::Photos,
        DataFile::Characteristics,
        DataFile::CharacteristicReviews,
    ];

    /// The file's name in the dataset directory.
    pub fn name(self) -> &'static str {
        match self {
            DataFile::Reviews => "reviews.csv",
            DataFile::Photos => "reviews_photos.csv",
            DataFile::Characteristics => "characteristics.csv",
            DataFile::CharacteristicReviews => "characteristic_reviews.csv",
        }
    }

    /// The header line's fields.
    pub fn header(self) -> &'static [&'static str] {
        match self {
            DataFile::Reviews => &[
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
            ],
            DataFile::Photos => &["id", "review_id", "url"],
            DataFile::Characteristics => &["id", "product_id", "name"],
            DataFile::CharacteristicReviews => &["id", "characteristic_id", "review_id", "value"],
        }
    }

    /// The kinds injected into this file.
    pub fn injected_kinds(self) -> &'static [Kind] {
        use Kind::*;
        match self {
            DataFile::Reviews => &[
                MalformedRow,
                BadId,
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
            ],
            DataFile::Photos => &[MalformedRow, BadId, DuplicateId, BadUrl, ReviewMissing],
            DataFile::Characteristics => {
                &[MalformedRow, BadId, DuplicateId, BadProductId, NameLength]
            }
            DataFile::CharacteristicReviews => &[
                MalformedRow,
                BadId,
                DuplicateId,
                BadValue,
                ReviewMissing,
                CharacteristicMissing,
                DuplicateRating,
            ],
        }
    }

    /// The kinds that follow from dirty parents (children of rejected rows).
    pub fn derived_kinds(self) -> &'static [Kind] {
        match self {
            DataFile::Reviews | DataFile::Characteristics => &[],
            DataFile::Photos => &[Kind::ReviewRejected],
            DataFile::CharacteristicReviews => {
                &[Kind::ReviewRejected, Kind::CharacteristicRejected]
            }
        }
    }

    /// The file named `name` (`reviews.csv` or just `reviews`).
    pub fn from_name(name: &str) -> Option<DataFile> {
        DataFile::ALL
            .into_iter()
            .find(|f| f.name() == name || f.name().strip_suffix(".csv") == Some(name))
    }

    pub(crate) fn index(self) -> usize {
        self as usize
    }
}

/// One `--dirty-kind [FILE:]KIND=SHARE` option: the share of a file's rows that get `kind`.
#[derive(Debug, Clone, PartialEq)]
pub struct KindShare {
    /// The file it applies to; `None`: every file that has this kind.
    pub file: Option<DataFile>,
    pub kind: Kind,
    pub share: f64,
}

impl FromStr for KindShare {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (target, share) = s
            .split_once('=')
            .ok_or_else(|| format!("expected [FILE:]KIND=SHARE, got `{s}`"))?;
        let share: f64 = share
            .trim()
            .parse()
            .map_err(|_| format!("`{share}` is not a number"))?;
        if !(0.0..=1.0).contains(&share) {
            return Err(format!("the share {share} is not between 0 and 1"));
        }
        let (file, code) = match target.split_once(':') {
            Some((file, code)) => {
                let file = DataFile::from_name(file.trim()).ok_or_else(|| {
                    format!(
                        "unknown file `{file}` (one of: {})",
                        DataFile::ALL.map(DataFile::name).join(", ")
                    )
                })?;
                (Some(file), code.trim())
            }
            None => (None, target.trim()),
        };
        let kind = Kind::from_code(code).ok_or_else(|| format!("unknown kind `{code}`"))?;
        let files: Vec<DataFile> = match file {
            Some(f) => vec![f],
            None => DataFile::ALL.to_vec(),
        };
        if !files.iter().any(|f| f.injected_kinds().contains(&kind)) {
            return Err(match file {
                Some(f) => format!("`{kind}` is not injected into {}", f.name()),
                None if DataFile::ALL
                    .iter()
                    .any(|f| f.derived_kinds().contains(&kind)) =>
                {
                    format!("`{kind}` is not injected: it follows from dirty parent rows")
                }
                None => format!("`{kind}` is not injected into any file"),
            });
        }
        Ok(KindShare { file, kind, share })
    }
}

/// The dirty kinds of one file with their shares, and the roll that picks one for a row.
#[derive(Debug, Clone)]
pub(crate) struct FileDirt {
    shares: Vec<(Kind, f64)>,
    total: f64,
}

impl FileDirt {
    /// One draw: `None` for a clean row (most), otherwise the kind to inject. Always consumes
    /// exactly one number, so the rest of the stream does not depend on the shares.
    pub(crate) fn roll(&self, rng: &mut Rng) -> Option<Kind> {
        let u = rng.unit();
        if u >= self.total {
            return None;
        }
        let mut acc = 0.0;
        for &(kind, share) in &self.shares {
            acc += share;
            if u < acc {
                return Some(kind);
            }
        }
        self.shares.last().map(|&(k, _)| k)
    }

    /// The share configured for `kind` (0 when the file does not have it).
    #[cfg(test)]
    pub(crate) fn share(&self, kind: Kind) -> f64 {
        self.shares
            .iter()
            .find(|(k, _)| *k == kind)
            .map_or(0.0, |&(_, s)| s)
    }
}

/// Shares for every file.
#[derive(Debug, Clone)]
pub(crate) struct DirtPlan {
    files: [FileDirt; 4],
}

impl DirtPlan {
    /// `dirty` spread evenly over each file's kinds, then the overrides applied in order.
    pub(crate) fn new(dirty: f64, overrides: &[KindShare]) -> anyhow::Result<Self> {
        anyhow::ensure!(
            (0.0..=1.0).contains(&dirty),
            "--dirty {dirty} is not between 0 and 1"
        );
        let files = DataFile::ALL.map(|file| {
            let kinds = file.injected_kinds();
            let each = dirty / kinds.len() as f64;
            let shares: Vec<(Kind, f64)> = kinds
                .iter()
                .map(|&kind| {
                    let share = overrides
                        .iter()
                        .rev()
                        .find(|o| o.kind == kind && o.file.is_none_or(|f| f == file))
                        .map_or(each, |o| o.share);
                    (kind, share)
                })
                .collect();
            let total = shares.iter().map(|(_, s)| s).sum();
            FileDirt { shares, total }
        });
        for (file, dirt) in DataFile::ALL.iter().zip(&files) {
            anyhow::ensure!(
                dirt.total <= 1.0,
                "the dirty shares of {} add up to {} (more than 1)",
                file.name(),
                dirt.total
            );
        }
        Ok(Self { files })
    }

    pub(crate) fn file(&self, file: DataFile) -> &FileDirt {
        &self.files[file.index()]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_kind_share_names_a_kind_and_optionally_a_file() {
        let k: KindShare = "bad_rating=0.01".parse().unwrap();
        assert_eq!((k.file, k.kind, k.share), (None, Kind::BadRating, 0.01));
        let k: KindShare = "reviews_photos.csv:review_missing=0.5".parse().unwrap();
        assert_eq!(k.file, Some(DataFile::Photos));
        let k: KindShare = "characteristics:bad_product_id=0".parse().unwrap();
        assert_eq!(k.file, Some(DataFile::Characteristics));
    }

    #[test]
    fn unknown_or_derived_kinds_and_bad_shares_are_refused() {
        for bad in [
            "bad_rating",
            "nonsense=0.1",
            "bad_rating=2",
            "bad_rating=-0.1",
            "bad_rating=x",
            "review_rejected=0.1",
            "reviews.csv:bad_url=0.1",
            "nofile.csv:bad_id=0.1",
        ] {
            assert!(bad.parse::<KindShare>().is_err(), "{bad}");
        }
    }

    #[test]
    fn the_dirty_share_is_spread_over_a_files_kinds_and_overrides_win() {
        let plan = DirtPlan::new(
            0.01,
            &[
                "bad_id=0.2".parse().unwrap(),
                "reviews.csv:bad_id=0.3".parse().unwrap(),
            ],
        )
        .unwrap();
        let photos = plan.file(DataFile::Photos);
        assert!((photos.share(Kind::BadUrl) - 0.002).abs() < 1e-12);
        assert!((photos.share(Kind::BadId) - 0.2).abs() < 1e-12);
        assert!((plan.file(DataFile::Reviews).share(Kind::BadId) - 0.3).abs() < 1e-12);
        assert!(
            DirtPlan::new(
                0.0,
                &[
                    "bad_id=0.6".parse().unwrap(),
                    "malformed_row=0.6".parse().unwrap()
                ]
            )
            .is_err()
        );
    }

    #[test]
    fn a_zero_share_never_rolls_dirty() {
        let plan = DirtPlan::new(0.0, &[]).unwrap();
        let mut rng = Rng::derive(1, 1, 1);
        assert!((0..10_000).all(|_| plan.file(DataFile::Reviews).roll(&mut rng).is_none()));
    }
}
