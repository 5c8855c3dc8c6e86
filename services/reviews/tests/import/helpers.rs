use std::path::{Path, PathBuf};

use reviews::config::Settings;
use reviews::import::{ImportArgs, Summary};
use shared::test_support::TestDatabase;
use tempfile::TempDir;

/// A database of the test's own, and a directory for the rejects file.
pub struct TestImport {
    pub settings: Settings,
    pub db: TestDatabase,
    pub scratch: TempDir,
}

impl TestImport {
    pub async fn new() -> Self {
        shared::telemetry::init_for_tests();
        let mut settings: Settings =
            shared::config::load_from(&reviews::config::defaults(), None, Vec::new())
                .expect("defaults load");
        let db = TestDatabase::create(&settings.postgres).await;
        settings.postgres = db.settings.clone();
        settings.postgres.pool_size = 2;
        Self {
            settings,
            db,
            scratch: tempfile::tempdir().expect("a temporary directory"),
        }
    }

    pub fn rejects_path(&self) -> PathBuf {
        self.scratch.path().join("test.rejects.csv")
    }

    /// Imports `dir`, writing rejects to [`TestImport::rejects_path`].
    pub async fn import(&self, dir: &Path) -> anyhow::Result<Summary> {
        let args = ImportArgs {
            dir: dir.to_owned(),
            rejects: Some(self.rejects_path()),
        };
        reviews::import::run(&self.settings, &args).await
    }

    /// Applies the schema without importing anything.
    pub async fn migrate(&self) {
        let pool = self.settings.postgres.pool().unwrap();
        let mut client = pool.get().await.unwrap();
        reviews::store::migrate(&mut client).await.unwrap();
    }

    /// Rows in which the review summaries differ from a recount of the visible reviews (0: exact).
    pub async fn summaries_mismatch(&self) -> i64 {
        crate::common::summaries_mismatch(&self.sql().await).await
    }

    /// A direct connection to this test's database.
    pub async fn sql(&self) -> tokio_postgres::Client {
        self.db.client().await
    }

    /// The rejects file's rows after the header: `(file, line, id, reason, detail)`.
    pub fn rejects(&self) -> Vec<[String; 5]> {
        let mut reader = csv::Reader::from_path(self.rejects_path()).unwrap();
        assert_eq!(
            reader.headers().unwrap(),
            vec!["file", "line", "id", "reason", "detail"]
        );
        reader
            .records()
            .map(|r| {
                let r = r.unwrap();
                std::array::from_fn(|i| r[i].to_owned())
            })
            .collect()
    }
}

/// The hand-written legacy files with every kind of dirty row.
pub fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/legacy")
}

/// Writes the four files (header lines are added) into a new directory.
pub fn write_files(
    dir: &Path,
    reviews: &[&str],
    photos: &[&str],
    characteristics: &[&str],
    ratings: &[&str],
) {
    let files = [
        (
            "reviews.csv",
            "id,product_id,rating,date,summary,body,recommend,reported,reviewer_name,\
             reviewer_email,response,helpfulness",
            reviews,
        ),
        ("reviews_photos.csv", "id,review_id,url", photos),
        ("characteristics.csv", "id,product_id,name", characteristics),
        (
            "characteristic_reviews.csv",
            "id,characteristic_id,review_id,value",
            ratings,
        ),
    ];
    for (name, header, rows) in files {
        let mut text = format!("{header}\n");
        for row in rows {
            text.push_str(row);
            text.push('\n');
        }
        std::fs::write(dir.join(name), text).unwrap();
    }
}

/// Every index and constraint of the schema, by table and name, with its definition.
pub async fn schema_objects(client: &tokio_postgres::Client) -> Vec<String> {
    client
        .query(
            "SELECT format('index %s %s', indexrelid::regclass, pg_get_indexdef(indexrelid))
             FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid
             WHERE c.relnamespace = 'public'::regnamespace
             UNION ALL
             SELECT format('constraint %s %s %s %s validated=%s', conrelid::regclass, conname,
                           contype, pg_get_constraintdef(oid), convalidated)
             FROM pg_constraint
             WHERE connamespace = 'public'::regnamespace
             ORDER BY 1",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect()
}

/// Row counts of the four tables: reviews, review_photos, characteristics, characteristic_reviews.
pub async fn table_counts(client: &tokio_postgres::Client) -> [i64; 4] {
    let row = client
        .query_one(
            "SELECT (SELECT count(*) FROM reviews), (SELECT count(*) FROM review_photos),
                    (SELECT count(*) FROM characteristics),
                    (SELECT count(*) FROM characteristic_reviews)",
            &[],
        )
        .await
        .unwrap();
    [row.get(0), row.get(1), row.get(2), row.get(3)]
}
