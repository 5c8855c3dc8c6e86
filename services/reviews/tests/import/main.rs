//! Integration tests of `reviews import` against real PostgreSQL. Each test imports into a
//! database of its own, so they run in parallel.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../common/mod.rs"]
mod common;
mod helpers;

use std::collections::BTreeMap;

use helpers::{TestImport, fixtures, schema_objects, table_counts, write_files};
use reviews::import::{FileSummary, Summary};

fn reasons(f: &FileSummary) -> BTreeMap<&'static str, u64> {
    f.rejected.iter().map(|(r, n)| (r.code(), n)).collect()
}

fn file<'a>(s: &'a Summary, name: &str) -> &'a FileSummary {
    s.file(name)
        .unwrap_or_else(|| panic!("no summary for {name}"))
}

/// A file's rows read, rows accepted, and rows rejected per reason.
type Expected = (&'static str, u64, u64, Vec<(&'static str, u64)>);

/// What the fixture set's files come to.
fn expected_fixture_counts() -> Vec<Expected> {
    vec![
        (
            "reviews.csv",
            31,
            7,
            vec![
                ("malformed_row", 3),
                ("bad_id", 2),
                ("duplicate_id", 2),
                ("bad_product_id", 1),
                ("bad_rating", 2),
                ("bad_date", 1),
                ("bad_boolean", 2),
                ("summary_length", 2),
                ("body_length", 2),
                ("name_length", 2),
                ("bad_email", 2),
                ("response_length", 1),
                ("bad_helpfulness", 2),
            ],
        ),
        (
            "reviews_photos.csv",
            15,
            4,
            vec![
                ("malformed_row", 1),
                ("bad_id", 1),
                ("duplicate_id", 1),
                ("bad_url", 3),
                ("review_missing", 2),
                ("review_rejected", 3),
            ],
        ),
        (
            "characteristics.csv",
            12,
            6,
            vec![
                ("malformed_row", 1),
                ("bad_id", 1),
                ("duplicate_id", 1),
                ("bad_product_id", 1),
                ("name_length", 2),
            ],
        ),
        (
            "characteristic_reviews.csv",
            21,
            6,
            vec![
                ("malformed_row", 1),
                ("bad_id", 1),
                ("duplicate_id", 1),
                ("bad_value", 4),
                ("review_missing", 1),
                ("review_rejected", 1),
                ("characteristic_missing", 1),
                ("characteristic_rejected", 2),
                ("characteristic_other_song", 2),
                ("duplicate_rating", 1),
            ],
        ),
    ]
}

#[tokio::test]
async fn every_kind_of_dirty_row_is_rejected_with_its_reason_and_the_rest_is_loaded() {
    let t = TestImport::new().await;
    let summary = t.import(&fixtures()).await.unwrap();

    assert!(summary.fast_path, "the tables were empty");
    assert_eq!(
        t.summaries_mismatch().await,
        0,
        "the summaries are recounted"
    );
    for (name, rows, accepted, rejected) in expected_fixture_counts() {
        let f = file(&summary, name);
        assert_eq!(
            (f.rows, f.accepted, f.already_present),
            (rows, accepted, 0),
            "{name}"
        );
        assert_eq!(reasons(f), rejected.into_iter().collect(), "{name}");
    }
    assert_eq!(table_counts(&t.sql().await).await, [7, 4, 6, 6]);

    // Every reject, with the physical line its record starts on (the header is line 1; review 2
    // spans lines 3–4; characteristics.csv has CRLF line ends).
    let got: Vec<(String, u64, String, String)> = t
        .rejects()
        .into_iter()
        .map(|[f, line, id, reason, _]| (f, line.parse().unwrap(), id, reason))
        .collect();
    let expected: Vec<(&str, u64, &str, &str)> = vec![
        ("characteristics.csv", 7, "6", "bad_product_id"),
        ("characteristics.csv", 8, "7", "name_length"),
        ("characteristics.csv", 9, "8", "name_length"),
        ("characteristics.csv", 10, "1", "duplicate_id"),
        ("characteristics.csv", 11, "zz", "bad_id"),
        ("characteristics.csv", 12, "9", "malformed_row"),
        ("reviews.csv", 7, "5", "bad_rating"),
        ("reviews.csv", 8, "6", "bad_rating"),
        ("reviews.csv", 9, "7", "malformed_row"),
        ("reviews.csv", 10, "abc", "bad_id"),
        ("reviews.csv", 11, "0", "bad_id"),
        ("reviews.csv", 12, "1", "duplicate_id"),
        ("reviews.csv", 13, "5", "duplicate_id"),
        ("reviews.csv", 14, "8", "bad_product_id"),
        ("reviews.csv", 15, "9", "bad_date"),
        ("reviews.csv", 16, "10", "bad_boolean"),
        ("reviews.csv", 17, "11", "bad_boolean"),
        ("reviews.csv", 18, "12", "summary_length"),
        ("reviews.csv", 19, "13", "summary_length"),
        ("reviews.csv", 20, "14", "body_length"),
        ("reviews.csv", 21, "15", "body_length"),
        ("reviews.csv", 22, "16", "name_length"),
        ("reviews.csv", 23, "17", "name_length"),
        ("reviews.csv", 24, "18", "bad_email"),
        ("reviews.csv", 25, "19", "bad_email"),
        ("reviews.csv", 26, "20", "response_length"),
        ("reviews.csv", 27, "21", "bad_helpfulness"),
        ("reviews.csv", 28, "22", "bad_helpfulness"),
        ("reviews.csv", 29, "23", "malformed_row"),
        ("reviews.csv", 31, "25", "malformed_row"),
        ("reviews_photos.csv", 5, "4", "bad_url"),
        ("reviews_photos.csv", 6, "5", "bad_url"),
        ("reviews_photos.csv", 7, "6", "bad_url"),
        ("reviews_photos.csv", 8, "7", "review_missing"),
        ("reviews_photos.csv", 9, "8", "review_missing"),
        ("reviews_photos.csv", 10, "9", "review_rejected"),
        ("reviews_photos.csv", 11, "10", "review_rejected"),
        ("reviews_photos.csv", 12, "1", "duplicate_id"),
        ("reviews_photos.csv", 13, "x", "bad_id"),
        ("reviews_photos.csv", 14, "11", "malformed_row"),
        ("reviews_photos.csv", 16, "13", "review_rejected"),
        ("characteristic_reviews.csv", 7, "6", "bad_value"),
        ("characteristic_reviews.csv", 8, "7", "bad_value"),
        ("characteristic_reviews.csv", 9, "8", "bad_value"),
        ("characteristic_reviews.csv", 10, "9", "bad_value"),
        ("characteristic_reviews.csv", 11, "10", "review_missing"),
        ("characteristic_reviews.csv", 12, "11", "review_rejected"),
        (
            "characteristic_reviews.csv",
            13,
            "12",
            "characteristic_missing",
        ),
        (
            "characteristic_reviews.csv",
            14,
            "13",
            "characteristic_rejected",
        ),
        (
            "characteristic_reviews.csv",
            15,
            "14",
            "characteristic_other_song",
        ),
        ("characteristic_reviews.csv", 16, "15", "duplicate_rating"),
        ("characteristic_reviews.csv", 17, "1", "duplicate_id"),
        ("characteristic_reviews.csv", 18, "-3", "bad_id"),
        ("characteristic_reviews.csv", 19, "16", "malformed_row"),
        (
            "characteristic_reviews.csv",
            21,
            "18",
            "characteristic_rejected",
        ),
        (
            "characteristic_reviews.csv",
            22,
            "19",
            "characteristic_other_song",
        ),
    ];
    let expected: Vec<(String, u64, String, String)> = expected
        .into_iter()
        .map(|(f, l, id, r)| (f.to_owned(), l, id.to_owned(), r.to_owned()))
        .collect();
    assert_eq!(got, expected);

    // A few details in full: a child names its parent's own reason.
    let details: BTreeMap<(String, String), String> = t
        .rejects()
        .into_iter()
        .map(|[f, line, _, _, detail]| ((f, line), detail))
        .collect();
    let detail = |f: &str, line: &str| details[&(f.to_owned(), line.to_owned())].clone();
    assert_eq!(detail("reviews_photos.csv", "10"), "review 5: bad_rating");
    assert_eq!(
        detail("reviews_photos.csv", "16"),
        "review 7: malformed_row"
    );
    assert_eq!(
        detail("characteristic_reviews.csv", "14"),
        "characteristic 6: bad_product_id"
    );
    assert_eq!(
        detail("characteristic_reviews.csv", "21"),
        "characteristic 9: malformed_row"
    );
    assert_eq!(
        detail("reviews_photos.csv", "8"),
        "review 999 is in neither reviews.csv nor the database"
    );
    assert_eq!(
        detail("characteristic_reviews.csv", "15"),
        "characteristic 3 is of song 2, review 1 of song 1"
    );
    assert_eq!(
        detail("reviews.csv", "7"),
        "rating \"7\" is not an integer 1–5"
    );
    assert_eq!(
        detail("reviews.csv", "31"),
        "unbalanced quotes (a quoted field is never closed)"
    );
    assert_eq!(detail("reviews.csv", "9"), "12 fields expected, found 5");
    assert_eq!(detail("reviews.csv", "29"), "field 5 is not valid UTF-8");
}

#[tokio::test]
async fn values_survive_quotes_commas_newlines_nulls_dates_and_booleans() {
    let t = TestImport::new().await;
    t.import(&fixtures()).await.unwrap();
    let db = t.sql().await;

    let rows = db
        .query(
            "SELECT id, song_id, rating,
                    to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS'),
                    summary, body, recommend, reported, reviewer_name, reviewer_email, response,
                    helpfulness, reviewer_user_id IS NULL
             FROM reviews ORDER BY id",
            &[],
        )
        .await
        .unwrap();
    let ids: Vec<i64> = rows.iter().map(|r| r.get(0)).collect();
    assert_eq!(ids, [1, 2, 3, 4, 24, 26, 27]);
    let body = "A warm driving groove with a chorus that stays with you all day long.";

    // Epoch milliseconds, an unquoted null response.
    let r = &rows[0];
    assert_eq!(r.get::<_, i64>(1), 1);
    assert_eq!(r.get::<_, i16>(2), 5);
    assert_eq!(r.get::<_, &str>(3), "2020-07-30T00:00:00");
    assert_eq!(r.get::<_, &str>(4), "Great song");
    assert_eq!(r.get::<_, &str>(5), body);
    assert!(r.get::<_, bool>(6) && !r.get::<_, bool>(7));
    assert_eq!(r.get::<_, Option<&str>>(10), None);
    assert_eq!(r.get::<_, i32>(11), 3);
    assert!(r.get::<_, bool>(12), "legacy reviews have no user");

    // A date string, quoted commas, doubled quotes and a newline, 1/0 booleans.
    let r = &rows[1];
    assert_eq!(r.get::<_, &str>(3), "2020-07-30T00:00:00");
    assert_eq!(r.get::<_, &str>(4), "Summary, with a comma");
    assert_eq!(
        r.get::<_, &str>(5),
        "Body with \"quotes\", commas, and\na newline inside it, long enough to pass."
    );
    assert!(r.get::<_, bool>(6) && !r.get::<_, bool>(7));
    assert_eq!(r.get::<_, Option<&str>>(10), Some("Thanks, we fixed it"));
    assert_eq!(r.get::<_, &str>(9), "bob@example.com");

    // RFC 3339, upper-case booleans, a quoted "null".
    let r = &rows[2];
    assert_eq!(r.get::<_, &str>(3), "2020-07-30T12:30:00");
    assert!(!r.get::<_, bool>(6) && !r.get::<_, bool>(7));
    assert_eq!(r.get::<_, Option<&str>>(10), None);

    // An empty response, a reported review.
    let r = &rows[3];
    assert_eq!(r.get::<_, Option<&str>>(10), None);
    assert!(r.get::<_, bool>(7));
    assert_eq!(r.get::<_, i32>(11), 7);

    // The rows after an unterminated quote were read again and loaded.
    assert_eq!(rows[5].get::<_, &str>(8), "grace");
    assert_eq!(rows[6].get::<_, &str>(8), "heidi");

    let photo: String = db
        .query_one("SELECT url FROM review_photos WHERE id = 2", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(photo, "https://images.example.com/a,b.jpg");
    // A song with characteristics and no reviews.
    let c = db
        .query_one(
            "SELECT song_id, name FROM characteristics WHERE id = 4",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(
        (c.get::<_, i64>(0), c.get::<_, &str>(1)),
        (9, "Length, overall")
    );
    let ratings: Vec<(i64, i64, i64, i16)> = db
        .query(
            "SELECT id, characteristic_id, review_id, value FROM characteristic_reviews ORDER BY id",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))
        .collect();
    assert_eq!(
        ratings,
        [
            (1, 1, 1, 5),
            (2, 2, 1, 4),
            (3, 3, 3, 3),
            (4, 1, 2, 2),
            (5, 5, 24, 1),
            (17, 10, 26, 4)
        ]
    );
}

#[tokio::test]
async fn a_second_run_adds_nothing_and_reports_every_valid_row_as_already_present() {
    let t = TestImport::new().await;
    let first = t.import(&fixtures()).await.unwrap();
    let first_rejects = t.rejects();
    let db = t.sql().await;
    let before = table_counts(&db).await;

    let second = t.import(&fixtures()).await.unwrap();
    assert!(!second.fast_path);
    for (a, b) in first.files.iter().zip(&second.files) {
        assert_eq!(b.accepted, 0, "{}", b.file);
        assert_eq!(b.already_present, a.accepted, "{}", b.file);
        assert_eq!(b.rows, a.rows, "{}", b.file);
        assert_eq!(reasons(b), reasons(a), "{}", b.file);
    }
    assert_eq!(table_counts(&db).await, before);
    assert_eq!(t.summaries_mismatch().await, 0);
    // The summary triggers are back on after either path.
    db.execute(
        "UPDATE reviews SET reported = NOT reported WHERE id % 3 = 0",
        &[],
    )
    .await
    .unwrap();
    assert_eq!(t.summaries_mismatch().await, 0, "kept by the triggers");
    assert_eq!(
        t.rejects(),
        first_rejects,
        "the same rows are rejected, for the same reasons"
    );
}

#[tokio::test]
async fn sequences_are_moved_past_the_imported_ids() {
    let t = TestImport::new().await;
    t.import(&fixtures()).await.unwrap();
    let db = t.sql().await;
    let next = |sql: &'static str| {
        let db = &db;
        async move { db.query_one(sql, &[]).await.unwrap().get::<_, i64>(0) }
    };
    let review = next(
        "INSERT INTO reviews (song_id, rating, summary, body, recommend, reviewer_name, reviewer_email)
         VALUES (1, 5, 'New', repeat('b', 50), true, 'zoe', 'zoe@example.com') RETURNING id",
    )
    .await;
    assert_eq!(review, 28);
    assert_eq!(
        next("INSERT INTO review_photos (review_id, url) VALUES (1, 'https://x.example/p.jpg') RETURNING id")
            .await,
        13
    );
    assert_eq!(
        next("INSERT INTO characteristics (song_id, name) VALUES (1, 'Mood') RETURNING id").await,
        11
    );
    assert_eq!(
        next("INSERT INTO characteristic_reviews (characteristic_id, review_id, value) VALUES (1, 28, 3) RETURNING id")
            .await,
        18
    );
}

#[tokio::test]
async fn the_fast_path_leaves_every_index_and_constraint_as_the_migration_made_it() {
    let t = TestImport::new().await;
    t.migrate().await;
    let db = t.sql().await;
    let before = schema_objects(&db).await;
    assert!(
        before
            .iter()
            .any(|o| o.contains("characteristic_reviews_by_characteristic")),
        "{before:#?}"
    );
    let summary = t.import(&fixtures()).await.unwrap();
    assert!(summary.fast_path);
    assert_eq!(schema_objects(&db).await, before);
    // The statistics are there.
    let analyzed: i64 = db
        .query_one(
            "SELECT count(*) FROM pg_stat_user_tables
             WHERE relname IN ('reviews', 'review_photos', 'characteristics', 'characteristic_reviews')
               AND last_analyze IS NOT NULL",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(analyzed, 4);
}

#[tokio::test]
async fn an_import_that_fails_half_way_leaves_the_schema_and_the_tables_as_they_were() {
    let t = TestImport::new().await;
    t.migrate().await;
    let db = t.sql().await;
    let before = schema_objects(&db).await;
    // The last file's COPY fails, after the indexes were dropped and three tables loaded.
    db.batch_execute(
        "CREATE FUNCTION fail_import() RETURNS trigger LANGUAGE plpgsql AS
             $$ BEGIN RAISE EXCEPTION 'the disk is on fire'; END $$;
         CREATE TRIGGER fail_import BEFORE INSERT ON characteristic_reviews
             FOR EACH ROW EXECUTE FUNCTION fail_import();",
    )
    .await
    .unwrap();

    let err = format!("{:#}", t.import(&fixtures()).await.unwrap_err());
    assert!(err.contains("characteristic_reviews"), "{err}");
    assert!(err.contains("the disk is on fire"), "{err}");
    assert_eq!(schema_objects(&db).await, before);
    assert_eq!(table_counts(&db).await, [0, 0, 0, 0]);

    // Once the cause is gone the same import goes through.
    db.batch_execute("DROP TRIGGER fail_import ON characteristic_reviews")
        .await
        .unwrap();
    let summary = t.import(&fixtures()).await.unwrap();
    assert!(summary.fast_path);
    assert_eq!(table_counts(&db).await, [7, 4, 6, 6]);
}

#[tokio::test]
async fn rows_already_in_the_database_are_parents_and_a_pair_rated_there_is_a_duplicate() {
    let t = TestImport::new().await;
    t.migrate().await;
    let db = t.sql().await;
    db.batch_execute(
        "INSERT INTO reviews (id, song_id, rating, summary, body, recommend, reviewer_name,
                              reviewer_email)
             VALUES (500, 42, 4, 'Old', repeat('b', 50), true, 'old', 'old@example.com');
         INSERT INTO characteristics (id, song_id, name) VALUES (77, 42, 'Mood'), (78, 42, 'Tempo'),
                                                                (79, 43, 'Other');
         INSERT INTO characteristic_reviews (id, characteristic_id, review_id, value)
             VALUES (900, 78, 500, 5);",
    )
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    write_files(
        dir.path(),
        &[],
        &[
            "1,500,https://x.example/1.jpg",
            "2,501,https://x.example/2.jpg",
        ],
        &[],
        &[
            "1,77,500,4",
            "2,77,500,5",
            "3,78,500,2",
            "4,79,500,2",
            "900,78,500,5",
        ],
    );
    let summary = t.import(dir.path()).await.unwrap();
    assert!(!summary.fast_path);
    let photos = file(&summary, "reviews_photos.csv");
    assert_eq!(photos.accepted, 1);
    assert_eq!(reasons(photos), [("review_missing", 1)].into());
    let ratings = file(&summary, "characteristic_reviews.csv");
    assert_eq!((ratings.accepted, ratings.already_present), (1, 1));
    assert_eq!(
        reasons(ratings),
        [("duplicate_rating", 2), ("characteristic_other_song", 1)].into()
    );
    let rejects = t.rejects();
    let line = |n: &str| {
        rejects
            .iter()
            .find(|r| r[0] == "characteristic_reviews.csv" && r[1] == n)
            .cloned()
    };
    // Line 1 is the header.
    assert_eq!(
        line("4").unwrap()[4],
        "review 500 already rated characteristic 78 in the database"
    );
    assert_eq!(line("4").unwrap()[3], "duplicate_rating");
    assert_eq!(
        line("3").unwrap()[4],
        "review 500 already rated characteristic 77"
    );
    assert_eq!(table_counts(&db).await, [1, 1, 3, 2]);
    assert_eq!(t.summaries_mismatch().await, 0, "the new rating is counted");
}

#[tokio::test]
async fn the_rejects_file_defaults_to_the_input_directory() {
    let t = TestImport::new().await;
    let dir = tempfile::tempdir().unwrap();
    write_files(dir.path(), &["1,2,3"], &[], &[], &[]);
    let args = reviews::import::ImportArgs {
        dir: dir.path().to_owned(),
        rejects: None,
    };
    let summary = reviews::import::run(&t.settings, &args).await.unwrap();
    assert_eq!(summary.rejects, dir.path().join("import.rejects.csv"));
    let text = std::fs::read_to_string(&summary.rejects).unwrap();
    assert_eq!(
        text,
        "file,line,id,reason,detail\nreviews.csv,2,1,malformed_row,\"12 fields expected, found 3\"\n"
    );
}

#[tokio::test]
async fn a_missing_file_or_a_wrong_header_stops_the_import_before_it_starts() {
    let t = TestImport::new().await;
    let dir = tempfile::tempdir().unwrap();
    let err = t.import(dir.path()).await.unwrap_err().to_string();
    assert!(err.contains("characteristics.csv not found"), "{err}");

    write_files(dir.path(), &[], &[], &[], &[]);
    std::fs::write(dir.path().join("reviews_photos.csv"), "id,url,review_id\n").unwrap();
    let err = format!("{:#}", t.import(dir.path()).await.unwrap_err());
    assert!(
        err.contains("line 1: expected the header id,review_id,url, found id,url,review_id"),
        "{err}"
    );
}
