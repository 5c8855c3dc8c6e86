//! The import's SQL: locking, the fast path's schema snapshot (drop, then re-create exactly),
//! reading the ids already present, staging for the incremental path, sequences.

use anyhow::Context;
use futures::StreamExt;
use tokio_postgres::Transaction;
use tokio_postgres::binary_copy::BinaryCopyOutStream;
use tokio_postgres::types::Type;

use super::tables::Catalog;

/// The tables the import fills, parents first.
pub const TABLES: [&str; 4] = [
    "reviews",
    "characteristics",
    "review_photos",
    "characteristic_reviews",
];

/// Session settings for a bulk load: everything here is local to the import's transaction.
pub async fn tune(tx: &Transaction<'_>) -> anyhow::Result<()> {
    tx.batch_execute(
        "SET LOCAL synchronous_commit = off;
         SET LOCAL maintenance_work_mem = '1GB';
         SET LOCAL work_mem = '256MB';
         SET LOCAL temp_buffers = '128MB';",
    )
    .await
    .context("cannot tune the import's session")
}

/// Locks the tables against writers (readers carry on) and tells whether all of them are empty.
/// Empty: the lock is raised to exclusive, as the fast path truncates and re-indexes them.
pub async fn lock(tx: &Transaction<'_>) -> anyhow::Result<bool> {
    let all =
        "reviews, characteristics, review_photos, characteristic_reviews, review_helpful_votes";
    tx.batch_execute(&format!("LOCK TABLE {all} IN SHARE ROW EXCLUSIVE MODE"))
        .await
        .context("cannot lock the reviews tables")?;
    let empty: bool = tx
        .query_one(
            "SELECT NOT EXISTS (SELECT 1 FROM reviews) AND NOT EXISTS (SELECT 1 FROM characteristics)
                AND NOT EXISTS (SELECT 1 FROM review_photos)
                AND NOT EXISTS (SELECT 1 FROM characteristic_reviews)",
            &[],
        )
        .await?
        .get(0);
    if empty {
        tx.batch_execute(&format!("LOCK TABLE {all} IN ACCESS EXCLUSIVE MODE"))
            .await
            .context("cannot lock the reviews tables")?;
    }
    Ok(empty)
}

/// The indexes and constraints the fast path drops, as the statements that drop and re-create
/// them, read from the catalog (so they are exactly the migration's).
#[derive(Debug, Default)]
pub struct Schema {
    /// Primary keys and unique constraints.
    keys: Vec<(String, String)>,
    /// Plain indexes.
    indexes: Vec<(String, String)>,
    /// Foreign keys from or to the tables (review_helpful_votes' too: it points at reviews' key).
    foreign: Vec<(String, String)>,
}

impl Schema {
    pub async fn read(tx: &Transaction<'_>) -> anyhow::Result<Self> {
        let tables: Vec<String> = TABLES.iter().map(|t| t.to_string()).collect();
        let constraints = tx
            .query(
                "SELECT contype::text,
                        format('ALTER TABLE %s DROP CONSTRAINT %I', conrelid::regclass, conname),
                        format('ALTER TABLE %s ADD CONSTRAINT %I %s', conrelid::regclass, conname,
                               pg_get_constraintdef(oid))
                 FROM pg_constraint
                 WHERE contype IN ('p', 'u', 'f')
                   AND (conrelid = ANY($1::text[]::regclass[])
                        OR (contype = 'f' AND confrelid = ANY($1::text[]::regclass[])))
                 ORDER BY conrelid::regclass::text, conname",
                &[&tables],
            )
            .await
            .context("cannot read the tables' constraints")?;
        let mut schema = Schema::default();
        for row in constraints {
            let pair = (row.get(1), row.get(2));
            match row.get::<_, &str>(0) {
                "f" => schema.foreign.push(pair),
                _ => schema.keys.push(pair),
            }
        }
        schema.indexes = tx
            .query(
                "SELECT format('DROP INDEX %s', i.indexrelid::regclass), pg_get_indexdef(i.indexrelid)
                 FROM pg_index i
                 WHERE i.indrelid = ANY($1::text[]::regclass[])
                   AND NOT EXISTS (SELECT 1 FROM pg_constraint c
                                   WHERE c.conindid = i.indexrelid AND c.contype IN ('p', 'u', 'x'))
                 ORDER BY i.indexrelid::regclass::text",
                &[&tables],
            )
            .await
            .context("cannot read the tables' indexes")?
            .into_iter()
            .map(|row| (row.get(0), row.get(1)))
            .collect();
        Ok(schema)
    }

    /// Drops every index and key constraint of the tables (foreign keys first), then empties them
    /// with TRUNCATE, which is what lets `COPY … FREEZE` write rows already frozen.
    pub async fn drop_all(&self, tx: &Transaction<'_>) -> anyhow::Result<()> {
        for (drop, _) in self.foreign.iter().chain(&self.keys).chain(&self.indexes) {
            tx.batch_execute(drop)
                .await
                .with_context(|| format!("fast path: {drop}"))?;
        }
        tx.batch_execute(&format!("TRUNCATE {}", TABLES.join(", ")))
            .await
            .context("fast path: cannot truncate the tables")?;
        Ok(())
    }

    /// The statements that re-create what [`Schema::drop_all`] dropped, in order: keys, indexes,
    /// foreign keys (validated as they are added).
    pub fn rebuild_statements(&self) -> impl Iterator<Item = &str> {
        self.keys
            .iter()
            .chain(&self.indexes)
            .chain(&self.foreign)
            .map(|(_, create)| create.as_str())
    }
}

/// Reads the ids already in the database into the catalog (the incremental path).
pub async fn read_existing(tx: &Transaction<'_>, catalog: &mut Catalog) -> anyhow::Result<()> {
    let mut rows = id_stream(tx, "SELECT id, song_id FROM reviews", 2).await?;
    while let Some(row) = rows.next().await {
        let row = row?;
        catalog.reviews.add_existing(u(row.get(0)), u(row.get(1)));
    }
    let mut rows = id_stream(tx, "SELECT id, song_id FROM characteristics ORDER BY id", 2).await?;
    while let Some(row) = rows.next().await {
        let row = row?;
        let (id, song) = (u(row.get(0)), u(row.get(1)));
        catalog.characteristics.add_existing(id, song);
        catalog.ranks.assign(id, song);
    }
    let mut rows = id_stream(tx, "SELECT id FROM review_photos", 1).await?;
    while let Some(row) = rows.next().await {
        catalog.photos.in_db.insert(u(row?.get(0)));
    }
    let mut rows = id_stream(tx, "SELECT id FROM characteristic_reviews", 1).await?;
    while let Some(row) = rows.next().await {
        catalog.ratings.in_db.insert(u(row?.get(0)));
    }
    Ok(())
}

/// Ids in the database are positive (the columns' checks and identities make them so).
fn u(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

async fn id_stream(
    tx: &Transaction<'_>,
    query: &str,
    columns: usize,
) -> anyhow::Result<
    impl futures::Stream<
        Item = Result<tokio_postgres::binary_copy::BinaryCopyOutRow, tokio_postgres::Error>,
    >,
> {
    let stream = tx
        .copy_out(&format!("COPY ({query}) TO STDOUT (FORMAT binary)"))
        .await
        .with_context(|| format!("cannot read the ids already present ({query})"))?;
    let types = vec![Type::INT8; columns];
    let rows = BinaryCopyOutStream::new(stream, &types);
    Ok(Box::pin(rows))
}

/// The staging table the incremental path copies `table`'s new rows into; it goes at commit.
pub async fn create_staging(
    tx: &Transaction<'_>,
    table: &str,
    with_line: bool,
) -> anyhow::Result<String> {
    let staging = format!("import_{table}");
    let line = if with_line {
        ", line BIGINT NOT NULL"
    } else {
        ""
    };
    tx.batch_execute(&format!(
        "CREATE TEMP TABLE {staging} (LIKE {table}{line}) ON COMMIT DROP"
    ))
    .await
    .with_context(|| format!("cannot create the staging table for {table}"))?;
    Ok(staging)
}

/// Moves the staged rows into `table`, skipping any the database already has; returns how many
/// went in.
pub async fn insert_staged(
    tx: &Transaction<'_>,
    table: &str,
    staging: &str,
    columns: &str,
) -> anyhow::Result<u64> {
    tx.execute(
        &format!(
            "INSERT INTO {table} ({columns}) SELECT {columns} FROM {staging} ON CONFLICT DO NOTHING"
        ),
        &[],
    )
    .await
    .with_context(|| format!("cannot insert the staged rows into {table}"))
}

/// Staged ratings the database turned away: new ids, so the pair (review, characteristic) was
/// already rated by another row of the database. `(line, id, review, characteristic)`.
pub async fn ratings_turned_away(
    tx: &Transaction<'_>,
    staging: &str,
) -> anyhow::Result<Vec<(i64, i64, i64, i64)>> {
    let rows = tx
        .query(
            &format!(
                "SELECT s.line, s.id, s.review_id, s.characteristic_id FROM {staging} s
                 WHERE NOT EXISTS (SELECT 1 FROM characteristic_reviews c WHERE c.id = s.id)
                 ORDER BY s.line"
            ),
            &[],
        )
        .await
        .context("cannot read the ratings the database turned away")?;
    Ok(rows
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))
        .collect())
}

/// Turns the summary triggers of migration V2 off for the load (one aggregate at the end is far
/// cheaper than the triggers' per-statement arrays over millions of rows); [`rebuild_stats`]
/// turns them back on. Both are part of the import's transaction.
pub async fn pause_stats(tx: &Transaction<'_>) -> anyhow::Result<()> {
    tx.batch_execute(&stats_triggers("DISABLE"))
        .await
        .context("cannot pause the review summary triggers")
}

/// Recomputes the per-song and per-characteristic review summaries and turns their triggers on.
pub async fn rebuild_stats(tx: &Transaction<'_>, fast: bool) -> anyhow::Result<()> {
    let truncate = if fast {
        "TRUNCATE song_review_stats, characteristic_stats;"
    } else {
        ""
    };
    tx.batch_execute(&format!(
        "{truncate} SELECT review_stats_rebuild(); {}",
        stats_triggers("ENABLE")
    ))
    .await
    .context("cannot rebuild the review summaries")
}

/// `ALTER TABLE`s that enable or disable the summary triggers, and only them (an operator's own
/// triggers keep firing).
fn stats_triggers(action: &str) -> String {
    let reviews = ["inserted", "updated", "deleted", "deleting"]
        .map(|t| format!("{action} TRIGGER reviews_stats_{t}"))
        .join(", ");
    let ratings = ["inserted", "updated", "deleted"]
        .map(|t| format!("{action} TRIGGER characteristic_reviews_stats_{t}"))
        .join(", ");
    format!("ALTER TABLE reviews {reviews}; ALTER TABLE characteristic_reviews {ratings};")
}

/// Moves each table's identity sequence past its largest id, so the API's next insert gets a
/// fresh one.
pub async fn resync_sequences(tx: &Transaction<'_>) -> anyhow::Result<()> {
    for table in TABLES {
        tx.query_one(
            &format!(
                "SELECT setval(pg_get_serial_sequence('{table}', 'id'), coalesce(max(id), 0) + 1, false)
                 FROM {table}"
            ),
            &[],
        )
        .await
        .with_context(|| format!("cannot resync the id sequence of {table}"))?;
    }
    Ok(())
}
