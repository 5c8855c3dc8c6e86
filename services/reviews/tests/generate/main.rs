//! Tests of `reviews generate`: small datasets into temporary directories, read back with the csv
//! crate and checked by a reference classifier that applies the schema's bounds to every row.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;

use clap::Parser;
use reviews::generate::{DataFile, GenerateArgs, Kind, Summary, generate};
use serde_json::Value;

/// The smallest options worth testing with: 2,000 reviews of 300 songs (two blocks).
fn small(dir: &Path) -> GenerateArgs {
    GenerateArgs {
        reviews: 2000,
        songs: Some(300),
        quiet: true,
        ..GenerateArgs::new(dir)
    }
}

/// `reviews generate` options as the command line gives them.
fn parse(args: &[&str]) -> GenerateArgs {
    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: GenerateArgs,
    }
    let mut argv = vec!["generate"];
    argv.extend_from_slice(args);
    Cli::try_parse_from(argv).unwrap().args
}

fn read(dir: &Path, file: DataFile) -> (Vec<String>, Vec<csv::StringRecord>) {
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .from_path(dir.join(file.name()))
        .unwrap();
    let header = reader
        .headers()
        .unwrap()
        .iter()
        .map(str::to_owned)
        .collect();
    let rows = reader.records().map(Result::unwrap).collect();
    (header, rows)
}

fn expected(dir: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(dir.join("expected.json")).unwrap()).unwrap()
}

/// The reject counts expected.json lists for `file`, zeros left out.
fn expected_rejects(dir: &Path, file: DataFile) -> BTreeMap<String, u64> {
    expected(dir)["files"][file.name()]["rejected"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.as_u64().unwrap()))
        .filter(|&(_, n)| n > 0)
        .collect()
}

// ---- The schema's bounds (migrations/V1__reviews.sql) -------------------------------------------

fn positive_id(s: &str) -> Option<u64> {
    (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
        .then(|| s.parse().ok())
        .flatten()
        .filter(|&n| n > 0)
}

fn one_to_five(s: &str) -> bool {
    matches!(s, "1" | "2" | "3" | "4" | "5")
}

fn date(s: &str) -> bool {
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
        return s.len() <= 15;
    }
    let b = s.as_bytes();
    if s.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return false;
    }
    let (Ok(y), Ok(m), Ok(d)) = (s[0..4].parse(), s[5..7].parse::<u8>(), s[8..10].parse()) else {
        return false;
    };
    time::Month::try_from(m)
        .ok()
        .and_then(|m| time::Date::from_calendar_date(y, m, d).ok())
        .is_some()
}

fn boolean(s: &str) -> bool {
    matches!(s, "true" | "false" | "1" | "0")
}

fn len_within(s: &str, lo: usize, hi: usize) -> bool {
    (lo..=hi).contains(&s.chars().count())
}

fn email(s: &str) -> bool {
    if !len_within(s, 3, 60) || s.chars().any(char::is_whitespace) {
        return false;
    }
    match s.split_once('@') {
        Some((local, domain)) => {
            !local.is_empty()
                && !domain.contains('@')
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
        }
        None => false,
    }
}

fn url(s: &str) -> bool {
    (s.starts_with("https://") || s.starts_with("http://")) && s.len() <= 2048
}

// ---- A reference classifier ---------------------------------------------------------------------

/// Every reason the rows of a dataset have to be rejected, found independently of each other so
/// that a row with two problems (which an importer could report either way) is caught.
#[derive(Default)]
struct Classified {
    /// Per file, reason → rows.
    counts: HashMap<DataFile, BTreeMap<String, u64>>,
    /// Rows with more than one reason: (file, line, reasons).
    ambiguous: Vec<(DataFile, usize, Vec<&'static str>)>,
    /// Characteristic ids per accepted song, review → song, characteristic → song.
    chars_of_song: HashMap<u64, Vec<u64>>,
    review_song: HashMap<u64, u64>,
    char_song: HashMap<u64, u64>,
    /// Accepted (review, characteristic) pairs.
    pairs: HashSet<(u64, u64)>,
    /// Accepted photos per review.
    photos: HashMap<u64, u64>,
}

/// Which parent ids were accepted and which were rejected.
#[derive(Default)]
struct Parents {
    accepted: HashSet<u64>,
    rejected: HashSet<u64>,
}

impl Parents {
    fn reason(
        &self,
        id: &str,
        rejected: &'static str,
        missing: &'static str,
    ) -> Option<&'static str> {
        match positive_id(id) {
            Some(id) if self.accepted.contains(&id) => None,
            Some(id) if self.rejected.contains(&id) => Some(rejected),
            _ => Some(missing),
        }
    }
}

impl Classified {
    fn record(&mut self, file: DataFile, line: usize, reasons: Vec<&'static str>) -> bool {
        if reasons.len() > 1 {
            self.ambiguous.push((file, line, reasons.clone()));
        }
        if let Some(first) = reasons.first() {
            *self
                .counts
                .entry(file)
                .or_default()
                .entry((*first).to_owned())
                .or_default() += 1;
        }
        reasons.is_empty()
    }
}

/// Checks a row's id: the reasons so far, and the id if usable.
fn check_id(field: &str, seen: &mut HashSet<u64>, reasons: &mut Vec<&'static str>) -> Option<u64> {
    match positive_id(field) {
        None => {
            reasons.push("bad_id");
            None
        }
        Some(id) => {
            if !seen.insert(id) {
                reasons.push("duplicate_id");
            }
            Some(id)
        }
    }
}

fn classify(dir: &Path) -> Classified {
    let mut out = Classified::default();

    let mut reviews = Parents::default();
    let mut seen = HashSet::new();
    for (line, r) in read(dir, DataFile::Reviews).1.iter().enumerate() {
        let mut why = Vec::new();
        if r.len() != 12 {
            out.record(DataFile::Reviews, line, vec!["malformed_row"]);
            continue;
        }
        let id = check_id(&r[0], &mut seen, &mut why);
        let song = positive_id(&r[1]);
        let checks = [
            (song.is_some(), "bad_product_id"),
            (one_to_five(&r[2]), "bad_rating"),
            (date(&r[3]), "bad_date"),
            (boolean(&r[6]) && boolean(&r[7]), "bad_boolean"),
            (len_within(&r[4], 1, 60), "summary_length"),
            (len_within(&r[5], 50, 1000), "body_length"),
            (len_within(&r[8], 1, 60), "name_length"),
            (email(&r[9]), "bad_email"),
            (
                &r[10] == "null" || len_within(&r[10], 1, 1000),
                "response_length",
            ),
            (
                positive_id(&r[11]).is_some() || &r[11] == "0",
                "bad_helpfulness",
            ),
        ];
        why.extend(checks.iter().filter(|(ok, _)| !ok).map(|&(_, k)| k));
        let accepted = out.record(DataFile::Reviews, line, why.clone());
        match (id, accepted) {
            (Some(id), true) => {
                reviews.accepted.insert(id);
                out.review_song.insert(id, song.unwrap());
            }
            (Some(id), false) if !why.contains(&"duplicate_id") => {
                reviews.rejected.insert(id);
            }
            _ => {}
        }
    }

    let mut seen = HashSet::new();
    for (line, r) in read(dir, DataFile::Photos).1.iter().enumerate() {
        let mut why = Vec::new();
        if r.len() != 3 {
            out.record(DataFile::Photos, line, vec!["malformed_row"]);
            continue;
        }
        check_id(&r[0], &mut seen, &mut why);
        why.extend(reviews.reason(&r[1], "review_rejected", "review_missing"));
        if !url(&r[2]) {
            why.push("bad_url");
        }
        if out.record(DataFile::Photos, line, why) {
            *out.photos.entry(positive_id(&r[1]).unwrap()).or_default() += 1;
        }
    }

    let mut chars = Parents::default();
    let mut seen = HashSet::new();
    for (line, r) in read(dir, DataFile::Characteristics).1.iter().enumerate() {
        let mut why = Vec::new();
        if r.len() != 3 {
            out.record(DataFile::Characteristics, line, vec!["malformed_row"]);
            continue;
        }
        let id = check_id(&r[0], &mut seen, &mut why);
        let song = positive_id(&r[1]);
        if song.is_none() {
            why.push("bad_product_id");
        }
        if !len_within(&r[2], 1, 60) {
            why.push("name_length");
        }
        let accepted = out.record(DataFile::Characteristics, line, why.clone());
        match (id, accepted) {
            (Some(id), true) => {
                chars.accepted.insert(id);
                out.char_song.insert(id, song.unwrap());
                out.chars_of_song.entry(song.unwrap()).or_default().push(id);
            }
            (Some(id), false) if !why.contains(&"duplicate_id") => {
                chars.rejected.insert(id);
            }
            _ => {}
        }
    }

    let mut seen = HashSet::new();
    for (line, r) in read(dir, DataFile::CharacteristicReviews)
        .1
        .iter()
        .enumerate()
    {
        let mut why = Vec::new();
        if r.len() != 4 {
            out.record(DataFile::CharacteristicReviews, line, vec!["malformed_row"]);
            continue;
        }
        check_id(&r[0], &mut seen, &mut why);
        why.extend(chars.reason(&r[1], "characteristic_rejected", "characteristic_missing"));
        why.extend(reviews.reason(&r[2], "review_rejected", "review_missing"));
        if !one_to_five(&r[3]) {
            why.push("bad_value");
        }
        let (c, rv) = (positive_id(&r[1]), positive_id(&r[2]));
        if let (Some(c), Some(rv)) = (c, rv) {
            if out.pairs.contains(&(rv, c)) {
                why.push("duplicate_rating");
            }
            if let (Some(a), Some(b)) = (out.char_song.get(&c), out.review_song.get(&rv))
                && a != b
            {
                why.push("characteristic_other_song");
            }
        }
        if out.record(DataFile::CharacteristicReviews, line, why) {
            out.pairs.insert((rv.unwrap(), c.unwrap()));
        }
    }
    out
}

fn assert_unambiguous_and_as_expected(dir: &Path) -> Classified {
    let c = classify(dir);
    assert!(
        c.ambiguous.is_empty(),
        "rows with more than one reason: {:?}",
        &c.ambiguous[..c.ambiguous.len().min(10)]
    );
    for file in DataFile::ALL {
        assert_eq!(
            c.counts.get(&file).cloned().unwrap_or_default(),
            expected_rejects(dir, file),
            "{}",
            file.name()
        );
    }
    c
}

// ---- Tests ---------------------------------------------------------------------------------------

#[test]
fn a_small_dataset_parses_back_with_the_original_headers_and_row_counts() {
    let dir = tempfile::tempdir().unwrap();
    let summary = generate(&small(dir.path())).unwrap();
    let headers = [
        "id,product_id,rating,date,summary,body,recommend,reported,reviewer_name,reviewer_email,response,helpfulness",
        "id,review_id,url",
        "id,product_id,name",
        "id,characteristic_id,review_id,value",
    ];
    let json = expected(dir.path());
    for (file, header) in DataFile::ALL.into_iter().zip(headers) {
        let (h, rows) = read(dir.path(), file);
        assert_eq!(h.join(","), header);
        let raw = std::fs::read_to_string(dir.path().join(file.name())).unwrap();
        assert!(raw.starts_with(&format!("{header}\n")), "{}", file.name());
        assert_eq!(
            rows.len() as u64,
            summary.file(file).rows,
            "{}",
            file.name()
        );
        assert_eq!(json["files"][file.name()]["rows"], summary.file(file).rows);
        assert_eq!(
            json["files"][file.name()]["accepted"],
            summary.file(file).accepted()
        );
    }
    assert_eq!(json["songs"], 300);
    assert_eq!(json["reviews"], 2000);
}

#[test]
fn the_same_options_give_byte_identical_files_whatever_the_threads_and_another_seed_does_not() {
    let (a, b, c) = (
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
    );
    generate(&GenerateArgs {
        threads: Some(1),
        ..small(a.path())
    })
    .unwrap();
    generate(&GenerateArgs {
        threads: Some(3),
        ..small(b.path())
    })
    .unwrap();
    generate(&GenerateArgs {
        seed: 2,
        ..small(c.path())
    })
    .unwrap();
    for name in DataFile::ALL
        .map(DataFile::name)
        .into_iter()
        .chain(["expected.json"])
    {
        let first = std::fs::read(a.path().join(name)).unwrap();
        assert_eq!(first, std::fs::read(b.path().join(name)).unwrap(), "{name}");
        if name != "expected.json" {
            assert_ne!(first, std::fs::read(c.path().join(name)).unwrap(), "{name}");
        }
    }
}

#[test]
fn a_clean_dataset_satisfies_every_bound_and_is_consistent_across_files() {
    let dir = tempfile::tempdir().unwrap();
    let summary = generate(&GenerateArgs {
        dirty: 0.0,
        ..small(dir.path())
    })
    .unwrap();
    let c = assert_unambiguous_and_as_expected(dir.path());
    assert!(c.counts.values().all(BTreeMap::is_empty), "{:?}", c.counts);
    for file in DataFile::ALL {
        assert_eq!(summary.file(file).rejected_total(), 0);
    }

    // Every song 1..=300 has 3–5 characteristics with consecutive ids.
    assert_eq!(c.chars_of_song.len(), 300);
    for (song, ids) in &c.chars_of_song {
        assert!((1..=300).contains(song));
        assert!((3..=5).contains(&ids.len()), "song {song}: {ids:?}");
        assert!(
            ids.windows(2).all(|w| w[1] == w[0] + 1),
            "song {song}: {ids:?}"
        );
    }
    // Review ids are 1..=2000 in order; each review rates every characteristic of its song once.
    let (_, rows) = read(dir.path(), DataFile::Reviews);
    let ids: Vec<u64> = rows.iter().map(|r| r[0].parse().unwrap()).collect();
    assert_eq!(ids, (1..=2000).collect::<Vec<_>>());
    let mut rated: HashMap<u64, usize> = HashMap::new();
    for (review, _) in &c.pairs {
        *rated.entry(*review).or_default() += 1;
    }
    for (review, song) in &c.review_song {
        assert_eq!(
            rated.get(review).copied().unwrap_or(0),
            c.chars_of_song[song].len()
        );
    }
    assert_eq!(
        c.pairs.len() as u64,
        summary.file(DataFile::CharacteristicReviews).rows
    );
}

#[test]
fn every_dirty_row_has_exactly_one_reason_and_expected_json_counts_them() {
    let dir = tempfile::tempdir().unwrap();
    generate(&GenerateArgs {
        dirty: 0.2,
        ..small(dir.path())
    })
    .unwrap();
    let c = assert_unambiguous_and_as_expected(dir.path());
    // Every injected kind and both derived kinds occur at this share.
    for file in DataFile::ALL {
        let counts = &c.counts[&file];
        for kind in file.injected_kinds().iter().chain(file.derived_kinds()) {
            assert!(
                counts.get(kind.code()).copied().unwrap_or(0) > 0,
                "{} has no {kind}: {counts:?}",
                file.name()
            );
        }
    }
}

#[test]
fn injected_counts_match_a_plain_recount_of_a_few_kinds() {
    let dir = tempfile::tempdir().unwrap();
    let summary = generate(&GenerateArgs {
        dirty: 0.05,
        ..small(dir.path())
    })
    .unwrap();
    let count = |file, pred: &dyn Fn(&csv::StringRecord) -> bool| {
        read(dir.path(), file).1.iter().filter(|r| pred(r)).count() as u64
    };
    let reviews = summary.file(DataFile::Reviews);
    assert_eq!(
        count(DataFile::Reviews, &|r| r.len() == 12 && !one_to_five(&r[2])),
        reviews.get(Kind::BadRating)
    );
    assert_eq!(
        count(DataFile::Reviews, &|r| r.len() != 12),
        reviews.get(Kind::MalformedRow)
    );
    assert_eq!(
        count(DataFile::Photos, &|r| r.len() == 3 && !url(&r[2])),
        summary.file(DataFile::Photos).get(Kind::BadUrl)
    );
    assert_eq!(
        count(DataFile::CharacteristicReviews, &|r| r.len() == 4
            && !one_to_five(&r[3])),
        summary
            .file(DataFile::CharacteristicReviews)
            .get(Kind::BadValue)
    );
    assert_eq!(
        expected_rejects(dir.path(), DataFile::Reviews)
            .get("bad_rating")
            .copied(),
        Some(reviews.get(Kind::BadRating)).filter(|&n| n > 0)
    );
}

#[test]
fn dirty_kind_overrides_one_kind_and_the_command_line_parses_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_str().unwrap();
    let args = parse(&[
        path,
        "--reviews=2000",
        "--songs=300",
        "--quiet",
        "--dirty=0",
        "--dirty-kind=bad_rating=0.05",
        "--dirty-kind",
        "reviews_photos.csv:bad_url=0.1",
    ]);
    let summary = generate(&args).unwrap();
    let reviews = summary.file(DataFile::Reviews);
    let bad_ratings = reviews.get(Kind::BadRating);
    assert!((50..=160).contains(&bad_ratings), "{bad_ratings} of 2000");
    assert_eq!(reviews.rejected_total(), bad_ratings);
    let photos = summary.file(DataFile::Photos);
    assert!(photos.get(Kind::BadUrl) > 0);
    assert_eq!(
        photos.rejected_total(),
        photos.get(Kind::BadUrl) + photos.get(Kind::ReviewRejected)
    );
    assert!(
        photos.get(Kind::ReviewRejected) > 0,
        "photos of bad-rating reviews"
    );
    assert_eq!(summary.file(DataFile::Characteristics).rejected_total(), 0);
    assert_unambiguous_and_as_expected(dir.path());

    for bad in [
        vec![path, "--dirty-kind=review_rejected=0.1"],
        vec![path, "--dirty-kind=characteristics.csv:bad_url=0.1"],
        vec![path, "--dirty-kind=bad_rating=1.5"],
    ] {
        let mut argv = vec!["generate"];
        argv.extend(bad.iter().copied());
        #[derive(Parser)]
        struct Cli {
            #[command(flatten)]
            _args: GenerateArgs,
        }
        assert!(Cli::try_parse_from(&argv).is_err(), "{bad:?}");
    }
}

#[test]
fn proportions_follow_the_original_export() {
    let dir = tempfile::tempdir().unwrap();
    let args = GenerateArgs {
        reviews: 20_000,
        quiet: true,
        ..GenerateArgs::new(dir.path())
    };
    // Songs scale with reviews: 1,000,000 × 20,000 / 5,774,952.
    assert_eq!(args.song_count(), 3463);
    let s: Summary = generate(&args).unwrap();
    let per_review = |f| s.file(f).rows as f64 / 20_000.0;
    let per_song = s.file(DataFile::Characteristics).rows as f64 / 3463.0;
    assert!(
        (3.25..3.45).contains(&per_song),
        "{per_song} characteristics a song"
    );
    assert!(
        (0.43..0.52).contains(&per_review(DataFile::Photos)),
        "photos"
    );
    let ratings = per_review(DataFile::CharacteristicReviews);
    assert!((3.2..3.5).contains(&ratings), "{ratings} ratings a review");
    // About 0.1% of each file's rows are injected dirty (children of rejected rows come on top).
    for file in DataFile::ALL {
        let f = s.file(file);
        let injected: u64 = file.injected_kinds().iter().map(|&k| f.get(k)).sum();
        let share = injected as f64 / f.rows as f64;
        assert!(share < 0.004, "{}: {share}", file.name());
    }

    let (_, rows) = read(dir.path(), DataFile::Reviews);
    let n = rows.len() as f64;
    let share = |pred: &dyn Fn(&csv::StringRecord) -> bool| {
        rows.iter().filter(|r| pred(r)).count() as f64 / n
    };
    let day_dates = share(&|r| r.len() == 12 && r[3].contains('-'));
    assert!(
        (0.12..0.18).contains(&day_dates),
        "{day_dates} YYYY-MM-DD dates"
    );
    let numeric_booleans = share(&|r| r.len() == 12 && matches!(&r[6], "0" | "1"));
    assert!(
        (0.03..0.07).contains(&numeric_booleans),
        "{numeric_booleans} 0/1 booleans"
    );
    let nulls = share(&|r| r.len() == 12 && &r[10] == "null");
    assert!((0.88..0.96).contains(&nulls), "{nulls} without response");
    assert!(
        share(&|r| r.len() == 12 && r[5].contains('\n')) > 0.005,
        "bodies with newlines"
    );
    assert!(
        share(&|r| r.len() == 12 && r[5].contains('"')) > 0.05,
        "bodies with quotes"
    );
    assert!(
        share(&|r| r.len() == 12 && r[4].contains(',')) > 0.02,
        "summaries with commas"
    );
    let small_helpfulness = share(&|r| r.len() == 12 && r[11].len() == 1);
    assert!(
        small_helpfulness > 0.75,
        "{small_helpfulness} helpfulness under 10"
    );
    // Some songs have characteristics but no reviews.
    let reviewed: HashSet<&str> = rows
        .iter()
        .filter(|r| r.len() == 12)
        .map(|r| r.get(1).unwrap())
        .collect();
    let unreviewed = 3463 - reviewed.len();
    assert!(
        (100..800).contains(&unreviewed),
        "{unreviewed} songs without reviews"
    );
}

/// Checks a dataset generated elsewhere (e.g. `reviews generate /tmp/reviews-small --reviews
/// 577495 --songs 100000`) against its expected.json: `REVIEWS_DATASET=/tmp/reviews-small cargo
/// test --release -p reviews --test generate -- --ignored`. Memory grows with the dataset (it
/// keeps every accepted id and rating pair), so use it on the smaller sets.
#[test]
#[ignore = "needs REVIEWS_DATASET=<dir> of a generated dataset"]
fn a_generated_directory_matches_its_expected_json() {
    let dir = std::env::var("REVIEWS_DATASET").expect("REVIEWS_DATASET=<dir>");
    assert_unambiguous_and_as_expected(Path::new(&dir));
}
