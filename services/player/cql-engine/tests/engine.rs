#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The engine through the real `scylla` driver over TCP, one fresh engine per test, with the
//! driver settings from `shared/notes/cql-portable-subset.md`.

use std::{
    collections::BTreeSet,
    net::SocketAddr,
    path::{Path, PathBuf},
    process::Stdio,
    sync::Arc,
    time::Duration,
};

use cql_engine::RunningEngine;
use futures::TryStreamExt;
use scylla::{
    client::{session::Session, session_builder::SessionBuilder},
    errors::{DbError, ExecutionError, PrepareError, RequestAttemptError},
    response::PagingState,
};
use tokio::{
    io::{AsyncBufReadExt, BufReader},
    process::{Child, Command},
    task::JoinSet,
};
use uuid::Uuid;

const KEYSPACE: &str = "CREATE KEYSPACE IF NOT EXISTS player \
    WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 1}";

async fn engine() -> RunningEngine {
    cql_engine::start("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap()
}

async fn connect(addr: SocketAddr) -> Session {
    SessionBuilder::new()
        .known_node(addr.to_string())
        .auto_await_schema_agreement(false)
        .build()
        .await
        .unwrap()
}

async fn run(session: &Session, statement: &str) {
    session
        .query_unpaged(statement, &[])
        .await
        .unwrap_or_else(|e| panic!("`{statement}` failed: {e}"));
}

fn is_db_error(error: &ExecutionError, wanted: fn(&DbError) -> bool) -> bool {
    matches!(error, ExecutionError::LastAttemptError(RequestAttemptError::DbError(e, _)) if wanted(e))
}

async fn create_songs(session: &Session) {
    run(session, KEYSPACE).await;
    run(
        session,
        "CREATE TABLE IF NOT EXISTS player.songs (song_id uuid, title text, duration_ms int, \
         explicit boolean, PRIMARY KEY ((song_id)))",
    )
    .await;
}

async fn insert_song(session: &Session, id: Uuid, title: &str) {
    let insert = session
        .prepare(
            "INSERT INTO player.songs (song_id, title, duration_ms, explicit) VALUES (?, ?, ?, ?)",
        )
        .await
        .unwrap();
    session
        .execute_unpaged(&insert, (id, title, 215_000_i32, false))
        .await
        .unwrap();
}

async fn song_title(session: &Session, id: Uuid) -> Option<String> {
    let select = session
        .prepare("SELECT title FROM player.songs WHERE song_id = ?")
        .await
        .unwrap();
    session
        .execute_unpaged(&select, (id,))
        .await
        .unwrap()
        .into_rows_result()
        .unwrap()
        .maybe_first_row::<(String,)>()
        .unwrap()
        .map(|(title,)| title)
}

#[tokio::test]
async fn schema_is_idempotent_and_prepared_point_reads_work() {
    let engine = engine().await;
    let session = connect(engine.local_addr()).await;

    // Twice: IF NOT EXISTS must make the second round a no-op, not an error.
    create_songs(&session).await;
    create_songs(&session).await;

    let (first, second) = (Uuid::new_v4(), Uuid::new_v4());
    insert_song(&session, first, "Blue Monday").await;
    insert_song(&session, second, "Ceremony").await;
    // An INSERT is an upsert of the whole row.
    insert_song(&session, second, "Ceremony (remastered)").await;

    assert_eq!(
        song_title(&session, first).await.as_deref(),
        Some("Blue Monday")
    );
    assert_eq!(
        song_title(&session, second).await.as_deref(),
        Some("Ceremony (remastered)")
    );
    assert_eq!(song_title(&session, Uuid::new_v4()).await, None);

    let select = session
        .prepare("SELECT song_id, title, duration_ms, explicit FROM player.songs WHERE song_id = ?")
        .await
        .unwrap();
    let row = session
        .execute_unpaged(&select, (first,))
        .await
        .unwrap()
        .into_rows_result()
        .unwrap()
        .single_row::<(Uuid, String, i32, bool)>()
        .unwrap();
    assert_eq!(row, (first, "Blue Monday".to_owned(), 215_000, false));
}

#[tokio::test]
async fn the_driver_reads_cluster_metadata() {
    let engine = engine().await;
    let session = connect(engine.local_addr()).await;
    // The driver prepares its `system.local … WHERE key='local'`: a literal, no bind variable.
    let local = session
        .prepare("SELECT key FROM system.local WHERE key='local'")
        .await
        .unwrap();
    assert_eq!(local.get_variable_col_specs().len(), 0);
    session.execute_unpaged(&local, ()).await.unwrap();
    session
        .refresh_metadata()
        .await
        .expect("cluster metadata loads (system.local and system.peers)");
    let nodes = session.get_cluster_state().get_nodes_info().len();
    assert_eq!(nodes, 1);
}

#[tokio::test]
async fn clustering_rows_come_back_ascending_and_limit_applies() {
    let engine = engine().await;
    let session = connect(engine.local_addr()).await;
    run(&session, KEYSPACE).await;
    run(
        &session,
        "CREATE TABLE IF NOT EXISTS player.songs_by_artist (artist_id uuid, neg_created_ms bigint, \
         song_id uuid, title text, PRIMARY KEY ((artist_id), neg_created_ms, song_id))",
    )
    .await;

    let insert = session
        .prepare(
            "INSERT INTO player.songs_by_artist (artist_id, neg_created_ms, song_id, title) \
             VALUES (?, ?, ?, ?)",
        )
        .await
        .unwrap();
    let (artist, other_artist) = (Uuid::new_v4(), Uuid::new_v4());
    // Written out of order; newest first means the most negative `neg_created_ms` first.
    for created_ms in [3_000_i64, 1_000, 5_000, 2_000, 4_000] {
        let title = format!("song {created_ms}");
        session
            .execute_unpaged(&insert, (artist, -created_ms, Uuid::new_v4(), &title))
            .await
            .unwrap();
        session
            .execute_unpaged(&insert, (other_artist, -created_ms, Uuid::new_v4(), &title))
            .await
            .unwrap();
    }

    let newest = session
        .prepare(
            "SELECT neg_created_ms, title FROM player.songs_by_artist WHERE artist_id = ? LIMIT 3",
        )
        .await
        .unwrap();
    let rows: Vec<(i64, String)> = session
        .execute_unpaged(&newest, (artist,))
        .await
        .unwrap()
        .into_rows_result()
        .unwrap()
        .rows::<(i64, String)>()
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(
        rows,
        vec![
            (-5_000, "song 5000".to_owned()),
            (-4_000, "song 4000".to_owned()),
            (-3_000, "song 3000".to_owned()),
        ]
    );

    let all = session
        .prepare("SELECT neg_created_ms FROM player.songs_by_artist WHERE artist_id = ?")
        .await
        .unwrap();
    let keys: Vec<i64> = session
        .execute_unpaged(&all, (artist,))
        .await
        .unwrap()
        .into_rows_result()
        .unwrap()
        .rows::<(i64,)>()
        .unwrap()
        .map(|row| row.unwrap().0)
        .collect();
    assert_eq!(keys, vec![-5_000, -4_000, -3_000, -2_000, -1_000]);
}

const BIG_PARTITION_ROWS: i32 = 6_000;
const SMALL_PARTITIONS: i32 = 20;
const SMALL_PARTITION_ROWS: i32 = 30;

/// Reads every page of `statement` one page at a time, as a cursor-based API would.
async fn read_all_pages(
    session: &Session,
    statement: &str,
    values: &[i32],
    page_size: i32,
) -> (Vec<(i32, i32)>, usize) {
    let mut prepared = session.prepare(statement).await.unwrap();
    prepared.set_page_size(page_size);
    let mut rows = Vec::new();
    let mut pages = 0;
    let mut paging_state = PagingState::start();
    loop {
        let (result, paging) = session
            .execute_single_page(&prepared, values, paging_state)
            .await
            .unwrap();
        pages += 1;
        let page: Vec<(i32, i32)> = result
            .into_rows_result()
            .unwrap()
            .rows::<(i32, i32)>()
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert!(page.len() <= page_size as usize, "page larger than asked");
        rows.extend(page);
        match paging.into_paging_control_flow() {
            std::ops::ControlFlow::Continue(next) => paging_state = next,
            std::ops::ControlFlow::Break(()) => break,
        }
        assert!(pages < 1_000, "paging does not end");
    }
    (rows, pages)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn driver_paging_covers_every_row_exactly_once() {
    let engine = engine().await;
    let session = Arc::new(connect(engine.local_addr()).await);
    run(&session, KEYSPACE).await;
    run(
        &session,
        "CREATE TABLE IF NOT EXISTS player.plays (p int, c int, PRIMARY KEY ((p), c))",
    )
    .await;

    let insert = session
        .prepare("INSERT INTO player.plays (p, c) VALUES (?, ?)")
        .await
        .unwrap();
    let mut expected = BTreeSet::new();
    for c in 0..BIG_PARTITION_ROWS {
        expected.insert((0, c));
    }
    for p in 1..=SMALL_PARTITIONS {
        for c in 0..SMALL_PARTITION_ROWS {
            expected.insert((p, c));
        }
    }
    // Many requests in flight, as a service would send them.
    let all: Arc<Vec<(i32, i32)>> = Arc::new(expected.iter().copied().collect());
    let mut writers = JoinSet::new();
    for worker in 0..16 {
        let (session, insert, all) = (Arc::clone(&session), insert.clone(), Arc::clone(&all));
        writers.spawn(async move {
            for row in all.iter().skip(worker).step_by(16) {
                session.execute_unpaged(&insert, row).await.unwrap();
            }
        });
    }
    while let Some(done) = writers.join_next().await {
        done.unwrap();
    }

    // One partition larger than the driver's default page (5,000 rows), page by page.
    let (rows, pages) = read_all_pages(
        &session,
        "SELECT p, c FROM player.plays WHERE p = ?",
        &[0],
        700,
    )
    .await;
    assert_eq!(rows.len(), BIG_PARTITION_ROWS as usize);
    assert!(pages >= 9, "expected real paging, got {pages} page(s)");
    let clustering: Vec<i32> = rows.iter().map(|&(_, c)| c).collect();
    assert_eq!(clustering, (0..BIG_PARTITION_ROWS).collect::<Vec<_>>());

    // The whole table, page by page: every row exactly once.
    let (rows, pages) = read_all_pages(&session, "SELECT p, c FROM player.plays", &[], 1_000).await;
    assert_eq!(rows.len(), expected.len(), "a row was lost or repeated");
    assert!(pages >= 7, "expected real paging, got {pages} page(s)");
    assert_eq!(rows.into_iter().collect::<BTreeSet<_>>(), expected);

    // The driver's own pager with its default page size.
    let select = session
        .prepare("SELECT p, c FROM player.plays WHERE p = ?")
        .await
        .unwrap();
    let streamed: Vec<(i32, i32)> = session
        .execute_iter(select, (0,))
        .await
        .unwrap()
        .rows_stream::<(i32, i32)>()
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    assert_eq!(streamed.len(), BIG_PARTITION_ROWS as usize);
    let whole_table: Vec<(i32, i32)> = session
        .query_iter("SELECT p, c FROM player.plays", &[])
        .await
        .unwrap()
        .rows_stream::<(i32, i32)>()
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    assert_eq!(whole_table.len(), expected.len());
    assert_eq!(whole_table.into_iter().collect::<BTreeSet<_>>(), expected);
}

#[tokio::test]
async fn a_malformed_statement_fails_alone() {
    let engine = engine().await;
    let session = connect(engine.local_addr()).await;
    create_songs(&session).await;

    let error = session
        .query_unpaged("SELEKT title FROM player.songs", &[])
        .await
        .unwrap_err();
    assert!(
        is_db_error(&error, |e| matches!(e, DbError::SyntaxError)),
        "{error:?}"
    );
    // kassandra's own error names the statement.
    assert!(error.to_string().contains("SELEKT title"), "{error}");

    let error = session
        .prepare("INSERT INTO player.songs (song_id title) VALUES (?, ?)")
        .await
        .unwrap_err();
    assert!(
        matches!(error, PrepareError::AllAttemptsFailed { .. }),
        "{error:?}"
    );

    // The same session (same connection) carries on.
    let id = Uuid::new_v4();
    insert_song(&session, id, "Atmosphere").await;
    assert_eq!(
        song_title(&session, id).await.as_deref(),
        Some("Atmosphere")
    );
}

#[tokio::test]
async fn statements_that_break_kassandra_fail_alone() {
    let engine = engine().await;
    let session = connect(engine.local_addr()).await;
    // A second connection, open while the bad statements run.
    let other = connect(engine.local_addr()).await;
    create_songs(&session).await;
    let id = Uuid::new_v4();
    insert_song(&session, id, "Transmission").await;

    // A `counter` column makes kassandra panic (in 0.14.0 already in CREATE TABLE). Each panic
    // poisons the session mutex, so repeating it also shows the poison is recovered every time.
    for _ in 0..3 {
        let error = session
            .query_unpaged(
                "CREATE TABLE IF NOT EXISTS player.play_counts (song_id uuid, plays counter, \
                 PRIMARY KEY ((song_id)))",
                &[],
            )
            .await
            .unwrap_err();
        assert!(
            is_db_error(&error, |e| matches!(e, DbError::ServerError)),
            "{error:?}"
        );
    }

    // Binding a timeuuid panics kassandra at execution time, on a prepared statement.
    run(
        &session,
        "CREATE TABLE IF NOT EXISTS player.events (song_id uuid, at timeuuid, PRIMARY KEY ((song_id)))",
    )
    .await;
    let insert = other
        .prepare("INSERT INTO player.events (song_id, at) VALUES (?, ?)")
        .await
        .unwrap();
    let at = scylla::value::CqlTimeuuid::from(
        Uuid::parse_str("5b6962dd-3f90-11ef-8000-0123456789ab").unwrap(),
    );
    let error = other.execute_unpaged(&insert, (id, at)).await.unwrap_err();
    assert!(
        is_db_error(&error, |e| matches!(e, DbError::ServerError)),
        "{error:?}"
    );

    // `frozen<…>` would overflow kassandra's stack and abort the process; the engine refuses it.
    let error = session
        .query_unpaged(
            "CREATE TABLE IF NOT EXISTS player.tagged (song_id uuid, tags frozen<set<text>>, \
             PRIMARY KEY ((song_id)))",
            &[],
        )
        .await
        .unwrap_err();
    assert!(
        is_db_error(&error, |e| matches!(e, DbError::Invalid)),
        "{error:?}"
    );
    assert!(error.to_string().contains("frozen<set<text>>"), "{error}");

    // Both connections, and a new one, still work, and the data is still there.
    assert_eq!(
        song_title(&session, id).await.as_deref(),
        Some("Transmission")
    );
    assert_eq!(
        song_title(&other, id).await.as_deref(),
        Some("Transmission")
    );
    let third = connect(engine.local_addr()).await;
    let second = Uuid::new_v4();
    insert_song(&third, second, "Dead Souls").await;
    assert_eq!(
        song_title(&session, second).await.as_deref(),
        Some("Dead Souls")
    );
    // A title that merely mentions the word is not a type.
    insert_song(&other, second, "frozen<heart>").await;
    assert_eq!(
        song_title(&third, second).await.as_deref(),
        Some("frozen<heart>")
    );
}

#[tokio::test]
async fn saved_state_starts_an_engine_with_the_same_rows() {
    let engine = engine().await;
    let session = connect(engine.local_addr()).await;
    create_songs(&session).await;
    let ids: Vec<Uuid> = (0..10).map(|_| Uuid::new_v4()).collect();
    for (n, id) in ids.iter().enumerate() {
        insert_song(&session, *id, &format!("track {n}")).await;
    }
    let state = engine.save_state();
    drop(session);
    let old_addr = engine.local_addr();
    engine.shutdown().await;
    // Shut down means the port no longer answers.
    assert!(tokio::net::TcpStream::connect(old_addr).await.is_err());

    let restored = cql_engine::start_with_state("127.0.0.1:0".parse().unwrap(), &state)
        .await
        .unwrap();
    let session = connect(restored.local_addr()).await;
    for (n, id) in ids.iter().enumerate() {
        assert_eq!(
            song_title(&session, *id).await,
            Some(format!("track {n}")),
            "row {n} lost"
        );
    }
    // The restored schema accepts new writes too.
    let id = Uuid::new_v4();
    insert_song(&session, id, "new").await;
    assert_eq!(song_title(&session, id).await.as_deref(), Some("new"));

    let error = cql_engine::start_with_state("127.0.0.1:0".parse().unwrap(), b"not ron")
        .await
        .unwrap_err();
    assert_eq!(error.kind(), std::io::ErrorKind::InvalidData);
}

#[tokio::test]
async fn a_prepared_statement_outlives_an_engine_restart_on_the_same_address() {
    let engine = engine().await;
    let addr = engine.local_addr();
    let session = connect(addr).await;
    create_songs(&session).await;
    let id = Uuid::new_v4();
    insert_song(&session, id, "Atmosphere").await;
    let select = session
        .prepare("SELECT title FROM player.songs WHERE song_id = ?")
        .await
        .unwrap();
    let state = engine.save_state();
    engine.shutdown().await;
    let engine = cql_engine::start_with_state(addr, &state).await.unwrap();

    // The driver reconnects, gets Unprepared, re-prepares, and the id is the same as before.
    let started = std::time::Instant::now();
    let title = loop {
        match session.execute_unpaged(&select, (id,)).await {
            Ok(result) => {
                break result
                    .into_rows_result()
                    .unwrap()
                    .single_row::<(String,)>()
                    .unwrap()
                    .0;
            }
            Err(e) => assert!(
                started.elapsed() < std::time::Duration::from_secs(20),
                "still failing 20 s after the restart: {e}"
            ),
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    assert_eq!(title, "Atmosphere");
    engine.shutdown().await;
}

struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> Self {
        let path = std::env::temp_dir().join(format!(
            "cql-engine-{name}-{}-{}",
            std::process::id(),
            Uuid::new_v4()
        ));
        std::fs::create_dir_all(&path).unwrap();
        Self(path)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Starts the binary and returns it with the address from its ready line.
async fn spawn_binary(state_file: &Path) -> (Child, SocketAddr) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_cql-engine"))
        .args(["--listen", "127.0.0.1:0", "--state-file"])
        .arg(state_file)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let line = tokio::time::timeout(Duration::from_secs(20), async {
        BufReader::new(stdout).lines().next_line().await
    })
    .await
    .expect("no ready line in time")
    .unwrap()
    .expect("stdout closed before the ready line");
    let addr = line
        .strip_prefix("cql-engine listening on ")
        .unwrap_or_else(|| panic!("unexpected ready line `{line}`"))
        .parse()
        .unwrap();
    (child, addr)
}

async fn terminate(mut child: Child) {
    let pid = child.id().unwrap().to_string();
    let status = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    assert!(status.success());
    let exit = tokio::time::timeout(Duration::from_secs(20), child.wait())
        .await
        .expect("did not exit after SIGTERM")
        .unwrap();
    assert!(exit.success(), "exit status {exit}");
}

#[tokio::test]
async fn the_binary_keeps_rows_across_sigterm_and_restart() {
    let dir = TempDir::new("binary");
    let state_file = dir.0.join("state").join("cql-engine.ron");

    let (child, addr) = spawn_binary(&state_file).await;
    let session = connect(addr).await;
    create_songs(&session).await;
    let id = Uuid::new_v4();
    insert_song(&session, id, "Shadowplay").await;
    drop(session);
    terminate(child).await;
    assert!(state_file.exists(), "no state written on SIGTERM");

    let (child, addr) = spawn_binary(&state_file).await;
    let session = connect(addr).await;
    assert_eq!(
        song_title(&session, id).await.as_deref(),
        Some("Shadowplay")
    );
    drop(session);
    terminate(child).await;

    // Only the snapshot is left behind: the temp file was renamed over it.
    let entries: Vec<_> = std::fs::read_dir(state_file.parent().unwrap())
        .unwrap()
        .map(|entry| entry.unwrap().file_name())
        .collect();
    assert_eq!(entries, vec![std::ffi::OsString::from("cql-engine.ron")]);
}
