//! `reviews import <dir>`: loads the legacy Ratings & Reviews dataset (`reviews.csv`,
//! `reviews_photos.csv`, `characteristics.csv`, `characteristic_reviews.csv`) into PostgreSQL.
//!
//! # Flow
//! One transaction does everything, so a failure anywhere (a bad disk, a killed process, the
//! server going away) rolls back to the state before the import: no rows, and the schema exactly
//! as the migration made it. The files are read in the order parents first: `characteristics.csv`,
//! `reviews.csv`, `reviews_photos.csv`, `characteristic_reviews.csv`. Each file is parsed on a
//! blocking thread ([`reader`], [`tables`]) while the async side streams the accepted rows to a
//! binary `COPY` ([`copy`]); the parser is at most 16 batches of 64 KiB ahead of the COPY.
//!
//! # Fast path: the tables are empty
//! The tables are locked exclusively and every index, primary key, unique constraint and foreign
//! key on them (and review_helpful_votes' foreign key to reviews) is read from the catalog and
//! dropped ([`db::Schema`]). The tables are truncated, which lets `COPY … (FREEZE)` write rows
//! already frozen and visible to all (no later pass sets hint bits or freezes them). Once all four
//! files are in, the keys, the indexes and the foreign keys are re-created from the statements
//! read at the start (so by name and definition exactly what was there; foreign keys are validated
//! as they are added), with `maintenance_work_mem` raised for the session so the index builds sort
//! in memory, on PostgreSQL's parallel workers. All of it inside the same transaction: the schema
//! is never seen without its indexes, and an import that fails leaves it as it was.
//!
//! # Incremental path: the tables hold rows (a re-run, or data the API wrote)
//! The tables are locked against writers (readers carry on), the ids already present are read into
//! memory, and each file's new rows are copied into a temporary staging table and moved over with
//! `INSERT … SELECT … ON CONFLICT DO NOTHING`. Rows already present (by id) are counted, not
//! copied: running the import twice on the same files adds nothing the second time and reports
//! every valid row as already present (a row present by id counts as present whatever its content:
//! the database wins). Rows of the database count as existing parents. A rating whose id is new
//! but whose (review, characteristic) pair the database already has is turned away by the unique
//! constraint and rejected as `duplicate_rating`.
//!
//! Either path loads with the summary triggers (migration V2) paused and recomputes the per-song
//! and per-characteristic summaries behind `/reviews/meta` once at the end. Every identity
//! sequence is moved past the largest id (`setval`), so the API's next insert does not collide,
//! and the tables are analyzed (after the commit).
//!
//! # Reject rules
//! Every row that is not loaded goes to the rejects file (`file,line,id,reason,detail`; `line` is
//! the physical line the record starts on, the header being line 1) with the first reason that
//! applies, checked in this order:
//! 1. `malformed_row`: wrong number of fields, quotes that never close (the reader then resumes
//!    on the next line, so the rows a runaway quote swallowed are read again), a record over
//!    1 MiB, invalid UTF-8, a NUL byte. If its first field is a positive integer, a malformed row
//!    still claims that id (see `duplicate_id`), and rows pointing at it are `…_rejected`.
//! 2. `bad_id`: the id is not a positive integer (digits only; no sign, no spaces).
//! 3. `duplicate_id`: an earlier row of the same file had this id. The first occurrence claims
//!    the id whether it was accepted or rejected; every later one is rejected.
//! 4. The row's own values, in column order. reviews.csv: `bad_product_id`, `bad_rating` (an
//!    integer 1–5), `bad_date` (epoch milliseconds, `YYYY-MM-DD` taken as midnight UTC, or RFC
//!    3339), `summary_length` (1–60 characters), `body_length` (50–1000), `bad_boolean` (recommend
//!    and reported: `true`/`false`/`1`/`0`, any case), `name_length` (1–60), `bad_email` (3–60
//!    characters, one `@`, a non-empty local part, a domain with an inner dot, no whitespace),
//!    `response_length` (over 1000; the text `null` in any case, quoted or not, and an empty field
//!    mean no response: NULL), `bad_helpfulness` (a non-negative integer). characteristics.csv:
//!    `bad_product_id`, `name_length` (1–60). reviews_photos.csv: `bad_url` (`http://` or
//!    `https://`, at most 2048 characters). characteristic_reviews.csv: `bad_value` (an integer
//!    1–5). Nothing is trimmed or truncated.
//! 5. The row's parents: `review_missing` / `characteristic_missing` when the parent is in neither
//!    its file nor the database (or the reference is not an id), `review_rejected` /
//!    `characteristic_rejected` when the parent's own row was rejected (the detail names the
//!    parent's reason: `review 12: bad_rating`). For a rating, the review is checked before the
//!    characteristic, then `characteristic_other_song` (the characteristic belongs to another
//!    song than the review), then `duplicate_rating` (the review already rated that
//!    characteristic, in an earlier accepted row or in the database).
//!
//! At the end the import prints, per file, the rows read, accepted, already present, and rejected
//! per reason.
//!
//! # Memory
//! Rows are streamed; nothing holds a file. What grows is the per-id memory ([`ids`]), which is
//! proportional to the id *range*, not to the rows: per review id 7 bytes (a state byte, the song
//! in 4 bytes, a 16-bit mask of the characteristics it rated), per characteristic id 6 bytes (state,
//! song, its number within its song), per photo or rating id 2 bits (claimed by the file, already
//! in the database), plus 1 byte per song id. For the full legacy dataset (5.8 M reviews, 3.3 M
//! characteristics, 2.7 M photos, 19.3 M ratings) that is about 65 MB; the buffers add a few MB
//! (a record is capped at 1 MiB, the COPY queue at 18 batches of 64 KiB). Measured peak RSS: see
//! `loadtest/results/reviews-import.md`.

mod copy;
mod db;
mod ids;
mod reader;
mod rejects;
mod rules;
mod tables;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Context;
use bytes::Bytes;
use futures::SinkExt;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use tokio::sync::mpsc;
use tokio_postgres::Transaction;

use self::copy::CopyWriter;
pub use self::rejects::{Reason, ReasonCounts};
use self::rejects::{Reject, RejectLog};
use self::tables::{Catalog, Characteristics, Counts, Photos, Ratings, Reviews, Table};
use crate::config::Settings;

#[derive(Debug, Clone, clap::Args)]
pub struct ImportArgs {
    /// The directory holding the four CSV files.
    pub dir: PathBuf,
    /// Where to write the rejected rows (default: <DIR>/import.rejects.csv).
    #[arg(long, value_name = "PATH")]
    pub rejects: Option<PathBuf>,
}

/// What an import did.
#[derive(Debug, Default, Clone)]
pub struct Summary {
    /// The tables were empty: loaded without indexes, which were re-created afterwards.
    pub fast_path: bool,
    /// One per file, in the order they were loaded.
    pub files: Vec<FileSummary>,
    /// The rejects file.
    pub rejects: PathBuf,
    pub elapsed: Duration,
    /// Re-creating the indexes and constraints (fast path only).
    pub rebuild: Duration,
    /// Each statement of the rebuild, with its time.
    pub rebuild_steps: Vec<(String, Duration)>,
    /// Recomputing the per-song and per-characteristic summaries behind `/reviews/meta`.
    pub stats: Duration,
    pub analyze: Duration,
    /// The per-id memory at its largest ([`ids`]).
    pub id_memory_bytes: usize,
}

/// What one file came to.
#[derive(Debug, Default, Clone)]
pub struct FileSummary {
    pub file: &'static str,
    pub table: &'static str,
    /// Records read, the header excluded.
    pub rows: u64,
    /// Rows added to the table.
    pub accepted: u64,
    /// Valid rows the table already had.
    pub already_present: u64,
    pub rejected: ReasonCounts,
    /// Reading, checking and copying the file.
    pub elapsed: Duration,
}

impl Summary {
    /// The summary of `file` (`"reviews.csv"`, …).
    pub fn file(&self, file: &str) -> Option<&FileSummary> {
        self.files.iter().find(|f| f.file == file)
    }
}

/// The four files of `dir`, in load order.
const FILES: [&str; 4] = [
    Characteristics::FILE,
    Reviews::FILE,
    Photos::FILE,
    Ratings::FILE,
];

pub async fn run(settings: &Settings, args: &ImportArgs) -> anyhow::Result<Summary> {
    let started = Instant::now();
    for file in FILES {
        let path = args.dir.join(file);
        anyhow::ensure!(path.is_file(), "{} not found", path.display());
    }
    // A wrong file stops the import before it touches the database.
    let dir = &args.dir;
    tables::check_header_of::<3, Characteristics>(&dir.join(Characteristics::FILE))?;
    tables::check_header_of::<12, Reviews>(&dir.join(Reviews::FILE))?;
    tables::check_header_of::<3, Photos>(&dir.join(Photos::FILE))?;
    tables::check_header_of::<4, Ratings>(&dir.join(Ratings::FILE))?;
    let rejects_path = args
        .rejects
        .clone()
        .unwrap_or_else(|| args.dir.join("import.rejects.csv"));

    shared::postgres::ensure_database(&settings.postgres)
        .await
        .map_err(anyhow::Error::msg)?;
    let pool = settings.postgres.pool().map_err(anyhow::Error::msg)?;
    let mut client = pool.get().await.context("cannot connect to PostgreSQL")?;
    crate::store::migrate(&mut client)
        .await
        .context("cannot apply the schema migrations")?;

    let mut summary = Summary::default();
    let mut job = Job {
        catalog: Catalog::default(),
        rejects: RejectLog::create(&rejects_path)?,
    };
    let tx = client
        .transaction()
        .await
        .context("cannot start the import's transaction")?;
    db::tune(&tx).await?;
    summary.fast_path = db::lock(&tx).await?;
    db::pause_stats(&tx).await?;
    let schema = if summary.fast_path {
        let schema = db::Schema::read(&tx).await?;
        schema.drop_all(&tx).await?;
        Some(schema)
    } else {
        db::read_existing(&tx, &mut job.catalog).await?;
        None
    };

    let fast = summary.fast_path;
    for file in FILES {
        let path = args.dir.join(file);
        let (next, loaded) = match file {
            Characteristics::FILE => load_file(&tx, &path, Characteristics, job, fast).await?,
            Reviews::FILE => load_file(&tx, &path, Reviews, job, fast).await?,
            Photos::FILE => load_file(&tx, &path, Photos, job, fast).await?,
            _ => {
                let ratings = Ratings { with_line: !fast };
                load_file(&tx, &path, ratings, job, fast).await?
            }
        };
        job = next;
        summary.files.push(loaded);
    }
    summary.id_memory_bytes = job.catalog.heap_bytes();
    drop(job.catalog);

    if let Some(schema) = &schema {
        let rebuild = Instant::now();
        let spinner = spinner();
        for statement in schema.rebuild_statements() {
            spinner.set_message(statement.to_owned());
            let step = Instant::now();
            tx.batch_execute(statement)
                .await
                .with_context(|| format!("fast path: cannot re-create the schema: {statement}"))?;
            summary
                .rebuild_steps
                .push((statement.to_owned(), step.elapsed()));
        }
        spinner.finish_and_clear();
        summary.rebuild = rebuild.elapsed();
    }
    let stats = Instant::now();
    db::rebuild_stats(&tx, summary.fast_path).await?;
    summary.stats = stats.elapsed();
    db::resync_sequences(&tx).await?;
    tx.commit()
        .await
        .context("cannot commit the import's transaction")?;

    let analyze = Instant::now();
    let vacuum = if fast { "" } else { "VACUUM " };
    client
        .batch_execute(&format!(
            "{vacuum}ANALYZE {}, song_review_stats, characteristic_stats",
            db::TABLES.join(", ")
        ))
        .await
        .context("cannot analyze the tables")?;
    summary.analyze = analyze.elapsed();
    summary.rejects = job.rejects.finish()?;
    summary.elapsed = started.elapsed();
    print_summary(&summary, &args.dir);
    Ok(summary)
}

/// What moves from one file's parsing thread to the next.
struct Job {
    catalog: Catalog,
    rejects: RejectLog,
}

/// Reads one file on a blocking thread while its accepted rows stream into a COPY: straight into
/// the table on the fast path (`FREEZE`), into a staging table otherwise.
async fn load_file<const N: usize, T: Table<N>>(
    tx: &Transaction<'_>,
    path: &Path,
    table: T,
    job: Job,
    fast: bool,
) -> anyhow::Result<(Job, FileSummary)> {
    let started = Instant::now();
    let with_line = !fast && T::TABLE == Ratings::TABLE;
    let columns = if with_line {
        format!("{}, line", T::COLUMNS)
    } else {
        T::COLUMNS.to_owned()
    };
    let (target, options) = if fast {
        (T::TABLE.to_owned(), "FORMAT binary, FREEZE")
    } else {
        (
            db::create_staging(tx, T::TABLE, with_line).await?,
            "FORMAT binary",
        )
    };
    let sink = tx
        .copy_in::<_, Bytes>(&format!("COPY {target} ({columns}) FROM STDIN ({options})"))
        .await
        .with_context(|| format!("cannot start the COPY into {target}"))?;
    let progress = file_progress(path, T::FILE);

    let (batches, mut queue) = mpsc::channel::<Bytes>(copy::IN_FLIGHT);
    let parser = {
        let path = path.to_owned();
        let progress = progress.clone();
        tokio::task::spawn_blocking(move || {
            let mut job = job;
            let out = CopyWriter::new(batches);
            let counts = tables::load(
                &table,
                &mut job.catalog,
                &path,
                &mut job.rejects,
                out,
                &progress,
            );
            (job, counts)
        })
    };
    futures::pin_mut!(sink);
    let mut sent = Ok(());
    while let Some(batch) = queue.recv().await {
        if let Err(e) = sink.send(batch).await {
            sent = Err(e);
            break;
        }
    }
    // Unblocks the parser if the COPY failed.
    drop(queue);
    let (mut job, counts) = parser.await.context("the parser thread panicked")?;
    sent.with_context(|| format!("the COPY into {target} failed"))?;
    let mut counts: Counts = counts?;
    let copied = sink
        .finish()
        .await
        .with_context(|| format!("the COPY into {target} failed"))?;
    progress.finish();

    if !fast {
        let inserted = db::insert_staged(tx, T::TABLE, &target, T::COLUMNS).await?;
        let mut turned_away = 0;
        if with_line {
            for (line, id, review, characteristic) in db::ratings_turned_away(tx, &target).await? {
                let reject = Reject::new(
                    Reason::DuplicateRating,
                    format!(
                        "review {review} already rated characteristic {characteristic} in the database"
                    ),
                );
                let line = u64::try_from(line).unwrap_or_default();
                job.rejects.write(T::FILE, line, &id.to_string(), &reject)?;
                counts.rejected.add(Reason::DuplicateRating, 1);
                turned_away += 1;
            }
        }
        counts.accepted = inserted;
        counts.already_present += copied.saturating_sub(inserted + turned_away);
        tx.batch_execute(&format!("DROP TABLE {target}"))
            .await
            .with_context(|| format!("cannot drop {target}"))?;
    }
    Ok((
        job,
        FileSummary {
            file: T::FILE,
            table: T::TABLE,
            rows: counts.rows,
            accepted: counts.accepted,
            already_present: counts.already_present,
            rejected: counts.rejected,
            elapsed: started.elapsed(),
        },
    ))
}

/// Bytes read of one file (drawn only when stderr is a terminal).
fn file_progress(path: &Path, file: &'static str) -> ProgressBar {
    let size = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
    let bar = ProgressBar::with_draw_target(Some(size), ProgressDrawTarget::stderr());
    let style = ProgressStyle::with_template(
        "{prefix:>27} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} {eta}",
    )
    .unwrap_or_else(|_| ProgressStyle::default_bar())
    .progress_chars("=> ");
    bar.set_style(style);
    bar.set_prefix(file);
    bar
}

fn spinner() -> ProgressBar {
    let spinner = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
    spinner.set_style(
        ProgressStyle::with_template("{spinner} {elapsed} re-creating: {wide_msg}")
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    spinner.enable_steady_tick(Duration::from_millis(200));
    spinner
}

fn print_summary(s: &Summary, dir: &Path) {
    let path = if s.fast_path {
        "fast path: the tables were empty"
    } else {
        "incremental: the tables had rows"
    };
    println!(
        "Imported {} in {:.1} s ({path}).",
        dir.display(),
        s.elapsed.as_secs_f64()
    );
    println!(
        "{:<28} {:>11} {:>11} {:>11} {:>11} {:>9} {:>10}",
        "file", "rows", "accepted", "present", "rejected", "seconds", "rows/s"
    );
    for f in &s.files {
        let secs = f.elapsed.as_secs_f64();
        println!(
            "{:<28} {:>11} {:>11} {:>11} {:>11} {:>9.1} {:>10.0}",
            f.file,
            f.rows,
            f.accepted,
            f.already_present,
            f.rejected.total(),
            secs,
            f.rows as f64 / secs.max(1e-9)
        );
        for (reason, n) in f.rejected.iter() {
            println!("  {:<26} {:>11}", reason.code(), n);
        }
    }
    if s.fast_path {
        println!(
            "Indexes and constraints re-created in {:.1} s:",
            s.rebuild.as_secs_f64()
        );
        for (statement, took) in &s.rebuild_steps {
            println!("  {:>6.1} s  {statement}", took.as_secs_f64());
        }
    }
    println!(
        "Review summaries recomputed in {:.1} s.",
        s.stats.as_secs_f64()
    );
    println!(
        "Analyzed in {:.1} s. Per-id memory: {:.1} MiB. Rejected rows: {}",
        s.analyze.as_secs_f64(),
        s.id_memory_bytes as f64 / (1024.0 * 1024.0),
        s.rejects.display()
    );
}
