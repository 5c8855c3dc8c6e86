//! Seeds the songs catalog: N realistic songs (ids 1..N) by deterministic uploaders, bulk-loaded
//! with bounded concurrency and a progress bar.
//!
//! ```text
//! player-seed --count 1000000 [--seed 42] [--concurrency 256] [--state-file data/player/songs.ron]
//! ```
//! The CQL cluster comes from the player's configuration (`APP__CQL__CONTACT_POINTS`, keyspace,
//! replication). With no contact points the seeder fills an embedded engine and writes its snapshot
//! to `--state-file`, which the player (`APP__CQL__EMBEDDED_STATE_FILE`) or the `cql-engine`
//! server (`--state-file`) then loads.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, bail};
use futures::{StreamExt, TryStreamExt};
use indicatif::{ProgressBar, ProgressStyle};
use player::seed;
use player::store::{SongRow, SongStore};
use scylla::value::CqlTimestamp;

struct Args {
    count: i64,
    seed: u64,
    concurrency: usize,
    state_file: Option<String>,
}

fn args() -> anyhow::Result<Args> {
    let mut a = Args {
        count: 1000,
        seed: 42,
        concurrency: 256,
        state_file: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().with_context(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--count" => a.count = value()?.parse().context("--count")?,
            "--seed" => a.seed = value()?.parse().context("--seed")?,
            "--concurrency" => a.concurrency = value()?.parse().context("--concurrency")?,
            "--state-file" => a.state_file = Some(value()?),
            "-h" | "--help" => {
                println!("player-seed --count N [--seed S] [--concurrency C] [--state-file PATH]");
                std::process::exit(0);
            }
            other => bail!("unknown argument {other} (see --help)"),
        }
    }
    if a.count < 1 || a.concurrency < 1 {
        bail!("--count and --concurrency must be at least 1");
    }
    Ok(a)
}

fn row(s: seed::SeedSong) -> SongRow {
    let at = CqlTimestamp(s.created_at_ms);
    SongRow {
        id: s.id,
        title: s.title,
        description: s.description,
        user_id: s.user_id,
        username: s.username,
        genre: s.genre,
        tag_list: serde_json::to_string(&s.tag_list).unwrap_or_else(|_| "[]".into()),
        duration_ms: s.duration_ms,
        artwork_url: String::new(),
        stream_url: String::new(),
        waveform_url: String::new(),
        sharing: if s.public { "public" } else { "private" }.to_owned(),
        created_at: at,
        updated_at: at,
        state: String::new(),
        state_reason: String::new(),
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = args()?;
    let settings = player::config::load().map_err(anyhow::Error::msg)?;
    let mut nodes = settings.cql.contact_points();
    let embedded = if nodes.is_empty() {
        if args.state_file.is_none() {
            bail!("no APP__CQL__CONTACT_POINTS: give --state-file to keep what is seeded");
        }
        let engine = cql_engine::CqlEngine::new()
            .start(SocketAddr::from(([127, 0, 0, 1], 0)))
            .await?;
        nodes.push(engine.local_addr().to_string());
        Some(engine)
    } else {
        None
    };
    let session = player::startup::connect(&settings, &nodes, embedded.is_some()).await?;
    let store = Arc::new(SongStore::prepare(Arc::new(session), &settings.cql.keyspace).await?);

    let bar = ProgressBar::new(args.count as u64);
    bar.set_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} songs {per_sec} eta {eta}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let started = Instant::now();
    let (seed_value, total) = (args.seed, args.count);
    futures::stream::iter(1..=total)
        .map(|id| {
            let store = store.clone();
            async move {
                store
                    .put(&row(seed::song(seed_value, id, total)), None)
                    .await
            }
        })
        .buffer_unordered(args.concurrency)
        .try_for_each(|()| {
            bar.inc(1);
            futures::future::ready(Ok(()))
        })
        .await?;
    bar.finish();
    let secs = started.elapsed().as_secs_f64();
    println!(
        "seeded {total} songs (3 rows each) by {} uploaders in {secs:.1} s: {:.0} songs/s",
        seed::uploader_count(total),
        total as f64 / secs
    );
    if let (Some(engine), Some(path)) = (embedded, args.state_file) {
        let t = Instant::now();
        let state = engine.save_state();
        if let Some(dir) = std::path::Path::new(&path).parent() {
            std::fs::create_dir_all(dir).ok();
        }
        let tmp = format!("{path}.tmp");
        std::fs::write(&tmp, &state).and_then(|()| std::fs::rename(&tmp, &path))?;
        println!(
            "saved {} MB to {path} in {:.1} s",
            state.len() / 1_000_000,
            t.elapsed().as_secs_f64()
        );
    }
    Ok(())
}
