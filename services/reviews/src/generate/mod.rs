//! `reviews generate <dir>`: a synthetic legacy dataset, in the four files' original formats, with
//! a known number of dirty rows of each kind, for testing and benchmarking the importer.
//!
//! # What it writes
//! `reviews.csv`, `reviews_photos.csv`, `characteristics.csv` and `characteristic_reviews.csv`
//! (headers as in the original export; fields quoted only when needed; `response` an unquoted
//! `null` when there is none; dates as epoch milliseconds or `YYYY-MM-DD`; booleans `true`/`false`
//! or `1`/`0`), then `expected.json`: per file the rows written, how many the importer must accept,
//! and how many it must reject for each reason. `expected.json` is written last and removed first,
//! so its presence means the dataset is complete.
//!
//! # Shape
//! Songs `1..=N` (the player's song ids) each have 3–5 characteristics with consecutive ids
//! (3.35 on average). Reviews go to songs by popularity (a heavy tail, some songs unreviewed), in
//! song order loosely (ids ascending); each has 0–5 photos (0.47 on average) and rates every
//! characteristic of its song once. With the defaults this gives the original export's totals:
//! 5,774,952 reviews, ~2.74 M photos, ~3.35 M characteristics, ~19.3 M ratings.
//!
//! # Dirty rows
//! `--dirty` of each file's rows are made dirty, spread evenly over the file's kinds
//! ([`DataFile::injected_kinds`]); `--dirty-kind` overrides one kind. Every dirty row has exactly
//! one thing wrong, so the importer has exactly one reason to reject it:
//! - a dirty row is never the child of a rejected row, and a song with a dirty characteristic gets
//!   no dirty reviews (else a rating could be rejected for either parent);
//! - a row whose id is unusable (`malformed_row`, `bad_id`) gets no children at all;
//! - `duplicate_id` is an *extra* row after an accepted one, re-using the id of a recent accepted
//!   row with other, valid content (ratings: the same review and its next characteristic, so no
//!   pair repeats); `duplicate_rating` has a fresh id and repeats the review's previous pair;
//! - `review_missing` / `characteristic_missing` point above the largest id in the files.
//!
//! Clean children of a rejected parent are counted as `review_rejected` / `characteristic_rejected`
//! in `expected.json`: an import's reject counts should equal its `rejected` maps exactly.
//!
//! # How it is fast and deterministic
//! Songs are cut into blocks ([`structure`]); every block of every file is drawn from its own
//! random stream derived from `(seed, file, block)`, so worker threads generate whole blocks (all
//! four files) into memory in any order while this thread writes them out in block order. A
//! window bounds how far workers run ahead, so memory stays at a few blocks whatever the size, and
//! the output does not depend on the number of threads.

mod dirt;
mod rng;
mod rows;
mod structure;
mod text;

use std::collections::BTreeMap;
use std::fmt;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Condvar, Mutex, PoisonError, mpsc};
use std::time::{Duration, Instant};

use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};

use dirt::DirtPlan;
pub use dirt::{DataFile, Kind, KindShare};
use rows::{BlockOutput, Ids, Tally};
use structure::{Block, BlockCounts, Layout};

/// Reviews in the original export.
pub const FULL_REVIEWS: u64 = 5_774_952;
/// Songs (products) in the original export.
pub const FULL_SONGS: u64 = 1_000_000;
/// More reviews per song than this on average is refused (one song's reviews share one block).
const MAX_REVIEWS_PER_SONG: u64 = 20_000;
/// Blocks the workers may run ahead of the writer, per worker.
const WINDOW_PER_WORKER: u64 = 4;

/// Options of `reviews generate`.
#[derive(Debug, Clone, clap::Args)]
pub struct GenerateArgs {
    /// Where to write the four CSV files and expected.json (created if missing; files replaced).
    pub dir: PathBuf,
    /// Reviews to generate (distinct ids). Photos and ratings scale with it.
    #[arg(long, default_value_t = FULL_REVIEWS)]
    pub reviews: u64,
    /// Songs: product ids are 1..=N, each with 3–5 characteristics. Default: 1,000,000 scaled
    /// like --reviews (1,000,000 for the full 5,774,952 reviews).
    #[arg(long)]
    pub songs: Option<u64>,
    /// Seed of every random choice: the same options give byte-identical files.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Share of each file's rows made dirty, spread evenly over that file's kinds (0: clean).
    #[arg(long, default_value_t = 0.001, value_name = "SHARE")]
    pub dirty: f64,
    /// Share of rows with one kind, overriding --dirty for it (in every file that has the kind,
    /// or in FILE only), e.g. `bad_rating=0.01` or `reviews_photos.csv:review_missing=0`.
    /// Repeatable.
    #[arg(long = "dirty-kind", value_name = "[FILE:]KIND=SHARE")]
    pub dirty_kind: Vec<KindShare>,
    /// Worker threads (default: one per core). The output does not depend on it.
    #[arg(long)]
    pub threads: Option<usize>,
    /// No progress bar and no summary.
    #[arg(long)]
    pub quiet: bool,
}

impl GenerateArgs {
    /// The command line's defaults, writing into `dir`.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self {
            dir: dir.into(),
            reviews: FULL_REVIEWS,
            songs: None,
            seed: 1,
            dirty: 0.001,
            dirty_kind: Vec::new(),
            threads: None,
            quiet: false,
        }
    }

    /// `--songs`, or its default for this many reviews.
    pub fn song_count(&self) -> u64 {
        self.songs.unwrap_or_else(|| {
            let scaled = (u128::from(self.reviews) * u128::from(FULL_SONGS)
                + u128::from(FULL_REVIEWS) / 2)
                / u128::from(FULL_REVIEWS);
            (scaled as u64).max(1)
        })
    }
}

impl fmt::Display for KindShare {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(file) = self.file {
            write!(f, "{}:", file.name())?;
        }
        write!(f, "{}={}", self.kind, self.share)
    }
}

/// What was written to one file.
#[derive(Debug, Clone)]
pub struct FileSummary {
    pub file: DataFile,
    /// Data rows (header not counted).
    pub rows: u64,
    /// Bytes, header included.
    pub bytes: u64,
    /// Rows the importer must reject, per kind, for every kind the file can have (zeros too).
    pub rejected: Vec<(Kind, u64)>,
}

impl FileSummary {
    /// Rows the importer must reject.
    pub fn rejected_total(&self) -> u64 {
        self.rejected.iter().map(|(_, n)| n).sum()
    }

    /// Rows the importer must accept.
    pub fn accepted(&self) -> u64 {
        self.rows - self.rejected_total()
    }

    /// The count for `kind` (0 if the file cannot have it).
    pub fn get(&self, kind: Kind) -> u64 {
        self.rejected
            .iter()
            .find(|(k, _)| *k == kind)
            .map_or(0, |&(_, n)| n)
    }
}

/// What a generation wrote.
#[derive(Debug, Clone)]
pub struct Summary {
    pub dir: PathBuf,
    pub songs: u64,
    pub reviews: u64,
    /// In [`DataFile::ALL`] order.
    pub files: Vec<FileSummary>,
    pub elapsed: Duration,
}

impl Summary {
    /// The summary of `file`.
    pub fn file(&self, file: DataFile) -> &FileSummary {
        &self.files[file.index()]
    }
}

/// `reviews generate`: writes the dataset and prints what it wrote.
pub fn run(args: &GenerateArgs) -> anyhow::Result<()> {
    let summary = generate(args)?;
    if !args.quiet {
        print_summary(&summary);
    }
    Ok(())
}

/// Writes the dataset described by `args`.
pub fn generate(args: &GenerateArgs) -> anyhow::Result<Summary> {
    let started = Instant::now();
    let songs = args.song_count();
    anyhow::ensure!(songs >= 1, "--songs must be at least 1");
    anyhow::ensure!(
        args.reviews / songs <= MAX_REVIEWS_PER_SONG,
        "{} reviews over {songs} songs is more than {MAX_REVIEWS_PER_SONG} a song; raise --songs",
        args.reviews
    );
    let threads = args
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()));
    anyhow::ensure!(threads >= 1, "--threads must be at least 1");
    let plan = DirtPlan::new(args.dirty, &args.dirty_kind)?;
    let layout = Layout::new(args.reviews, songs);

    std::fs::create_dir_all(&args.dir)
        .with_context(|| format!("cannot create {}", args.dir.display()))?;
    let expected_path = args.dir.join("expected.json");
    match std::fs::remove_file(&expected_path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            return Err(e).with_context(|| format!("cannot remove {}", expected_path.display()));
        }
        _ => {}
    }

    let ids = block_ids(&layout, &plan, args.seed, threads)?;

    let mut outputs = Vec::with_capacity(4);
    for file in DataFile::ALL {
        let path = args.dir.join(file.name());
        let f = File::create(&path).with_context(|| format!("cannot create {}", path.display()))?;
        let mut w = BufWriter::with_capacity(1 << 20, f);
        let header = format!("{}\n", file.header().join(","));
        w.write_all(header.as_bytes())
            .with_context(|| format!("cannot write {}", path.display()))?;
        outputs.push(Output {
            path,
            writer: w,
            bytes: header.len() as u64,
            tally: Tally::default(),
        });
    }

    let progress = if args.quiet {
        ProgressBar::hidden()
    } else {
        let style = ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {wide_bar} {human_pos}/{human_len} reviews ({per_sec}, {eta} left)",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar());
        ProgressBar::new(args.reviews).with_style(style)
    };
    generate_blocks(
        &layout,
        &plan,
        args.seed,
        threads,
        &ids,
        &mut outputs,
        &progress,
    )?;
    progress.finish_and_clear();

    let mut files = Vec::with_capacity(4);
    for (file, out) in DataFile::ALL.into_iter().zip(outputs) {
        out.writer
            .into_inner()
            .map_err(|e| e.into_error())
            .with_context(|| format!("cannot write {}", out.path.display()))?;
        let rejected = file
            .injected_kinds()
            .iter()
            .chain(file.derived_kinds())
            .map(|&k| (k, out.tally.kinds[k.index()]))
            .collect();
        files.push(FileSummary {
            file,
            rows: out.tally.rows,
            bytes: out.bytes,
            rejected,
        });
    }
    let summary = Summary {
        dir: args.dir.clone(),
        songs,
        reviews: args.reviews,
        files,
        elapsed: started.elapsed(),
    };
    write_expected(&expected_path, args, &summary)?;
    Ok(summary)
}

/// One file being written.
struct Output {
    path: PathBuf,
    writer: BufWriter<File>,
    bytes: u64,
    tally: Tally,
}

/// First pass: every block's skeleton, kept only as row counts, turned into each block's first
/// ids. Cheap next to writing (no text), and spread over the threads too.
fn block_ids(
    layout: &Layout,
    plan: &DirtPlan,
    seed: u64,
    threads: usize,
) -> anyhow::Result<Vec<Ids>> {
    let blocks = layout.blocks;
    let mut counts = vec![BlockCounts::default(); blocks as usize];
    std::thread::scope(|s| -> anyhow::Result<()> {
        let handles: Vec<_> = (0..threads as u64)
            .map(|t| {
                s.spawn(move || {
                    (t..blocks)
                        .step_by(threads)
                        .map(|b| (b, Block::build(layout, plan, seed, b).counts()))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        for h in handles {
            let part = h
                .join()
                .map_err(|_| anyhow::anyhow!("a generator thread panicked"))?;
            for (b, c) in part {
                counts[b as usize] = c;
            }
        }
        Ok(())
    })?;
    let total_chars = counts.iter().map(|c| c.chars).sum();
    let mut ids = Vec::with_capacity(counts.len());
    let (mut char, mut photo, mut rating) = (0, 0, 0);
    for (b, c) in counts.iter().enumerate() {
        ids.push(Ids {
            review: layout.reviews_before(b as u64),
            char,
            photo,
            rating,
            total_reviews: layout.reviews,
            total_chars,
        });
        char += c.chars;
        photo += c.photos;
        rating += c.ratings;
    }
    Ok(ids)
}

/// How far the workers may run ahead of the writer, and the way to stop them.
struct Window {
    written: Mutex<u64>,
    moved: Condvar,
    abort: AtomicBool,
}

impl Window {
    /// Blocks until block `b` is within `size` blocks of the writer; false if aborted.
    fn wait_for(&self, b: u64, size: u64) -> bool {
        let mut written = self.written.lock().unwrap_or_else(PoisonError::into_inner);
        while b >= *written + size && !self.abort.load(Ordering::Acquire) {
            written = self
                .moved
                .wait(written)
                .unwrap_or_else(PoisonError::into_inner);
        }
        !self.abort.load(Ordering::Acquire)
    }

    fn advance(&self, written: u64) {
        *self.written.lock().unwrap_or_else(PoisonError::into_inner) = written;
        self.moved.notify_all();
    }

    fn abort(&self) {
        self.abort.store(true, Ordering::Release);
        let _guard = self.written.lock().unwrap_or_else(PoisonError::into_inner);
        self.moved.notify_all();
    }
}

/// Second pass: workers generate blocks (all four files each) while this thread writes them out
/// in block order.
fn generate_blocks(
    layout: &Layout,
    plan: &DirtPlan,
    seed: u64,
    threads: usize,
    ids: &[Ids],
    outputs: &mut [Output],
    progress: &ProgressBar,
) -> anyhow::Result<()> {
    let blocks = layout.blocks;
    let next = AtomicU64::new(0);
    let window = Window {
        written: Mutex::new(0),
        moved: Condvar::new(),
        abort: AtomicBool::new(false),
    };
    let size = WINDOW_PER_WORKER * threads as u64;
    let (tx, rx) = mpsc::channel::<(u64, anyhow::Result<BlockOutput>)>();
    std::thread::scope(|s| {
        for _ in 0..threads {
            let tx = tx.clone();
            let (next, window) = (&next, &window);
            s.spawn(move || {
                loop {
                    let b = next.fetch_add(1, Ordering::Relaxed);
                    if b >= blocks || !window.wait_for(b, size) {
                        break;
                    }
                    let block = Block::build(layout, plan, seed, b);
                    let out = rows::write_block(&block, &ids[b as usize], plan, seed);
                    if tx.send((b, out)).is_err() {
                        break;
                    }
                }
            });
        }
        drop(tx);
        let written = write_in_order(rx, blocks, outputs, progress, &window);
        if written.is_err() {
            window.abort();
        }
        written
    })
}

/// Receives blocks in any order and writes them in block order.
fn write_in_order(
    rx: mpsc::Receiver<(u64, anyhow::Result<BlockOutput>)>,
    blocks: u64,
    outputs: &mut [Output],
    progress: &ProgressBar,
    window: &Window,
) -> anyhow::Result<()> {
    let mut pending = BTreeMap::new();
    let mut next = 0;
    for (b, out) in rx {
        pending.insert(b, out?);
        while let Some(out) = pending.remove(&next) {
            for (o, bytes) in outputs.iter_mut().zip(&out.bytes) {
                o.writer
                    .write_all(bytes)
                    .with_context(|| format!("cannot write {}", o.path.display()))?;
                o.bytes += bytes.len() as u64;
            }
            for (o, t) in outputs.iter_mut().zip(&out.tallies) {
                o.tally.add(t);
            }
            progress.inc(out.reviews);
            next += 1;
            window.advance(next);
        }
    }
    anyhow::ensure!(next == blocks, "a generator thread stopped early");
    Ok(())
}

/// `expected.json`: what an import of the directory must report.
fn write_expected(path: &Path, args: &GenerateArgs, summary: &Summary) -> anyhow::Result<()> {
    let files: serde_json::Map<String, serde_json::Value> = summary
        .files
        .iter()
        .map(|f| {
            let rejected: serde_json::Map<String, serde_json::Value> = f
                .rejected
                .iter()
                .map(|(k, n)| (k.code().to_owned(), (*n).into()))
                .collect();
            let value = serde_json::json!({
                "rows": f.rows,
                "accepted": f.accepted(),
                "rejected_total": f.rejected_total(),
                "rejected": rejected,
            });
            (f.file.name().to_owned(), value)
        })
        .collect();
    let doc = serde_json::json!({
        "seed": args.seed,
        "songs": summary.songs,
        "reviews": summary.reviews,
        "dirty": args.dirty,
        "dirty_kind": args.dirty_kind.iter().map(ToString::to_string).collect::<Vec<_>>(),
        "files": files,
    });
    let mut text = serde_json::to_string_pretty(&doc)?;
    text.push('\n');
    std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))
}

fn print_summary(s: &Summary) {
    println!(
        "wrote {} in {:.1} s: {} songs, {} reviews",
        s.dir.display(),
        s.elapsed.as_secs_f64(),
        thousands(s.songs),
        thousands(s.reviews)
    );
    for f in &s.files {
        println!(
            "  {:<28} {:>12} rows {:>9.1} MB  {:>8} to reject",
            f.file.name(),
            thousands(f.rows),
            f.bytes as f64 / 1e6,
            thousands(f.rejected_total())
        );
    }
    println!(
        "  expected reject counts: {}",
        s.dir.join("expected.json").display()
    );
}

/// `1234567` as `1,234,567`.
fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}
