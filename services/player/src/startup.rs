//! Builds the application: the CQL session (or the embedded engine), the schema, prepared
//! statements, the cache and the routes. `main` and the tests both call [`Application::build`].

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::Server;
use actix_web::web;
use anyhow::Context;
use cql_engine::{CqlEngine, RunningEngine};
use scylla::client::session::Session;
use scylla::client::session_builder::SessionBuilder;
use shared::auth::Verifier;
use shared::redis::{JsonCache, Redis};

use crate::config::Settings;
use crate::ids::IdGenerator;
use crate::store::SongStore;

/// Everything a handler needs, shared by all workers.
pub struct AppState {
    pub store: SongStore,
    pub cache: JsonCache,
    pub ids: IdGenerator,
    pub plays: crate::plays::PlayCounter,
    pub settings: Settings,
    /// Audio processing (and the object store it shares with the handlers).
    pub jobs: Arc<crate::media::jobs::Processor>,
}

/// A bound, not yet running server (and the embedded engine, when there is one).
pub struct Application {
    port: u16,
    server: Server,
    embedded: Option<RunningEngine>,
    state_file: String,
    worker: tokio::task::JoinHandle<()>,
}

/// Starts the embedded engine, from its snapshot file when one is configured and exists.
async fn start_embedded(state_file: &str) -> anyhow::Result<RunningEngine> {
    let engine = match std::fs::read(state_file) {
        Ok(bytes) if !state_file.is_empty() => CqlEngine::from_state(&bytes)
            .with_context(|| format!("cql.embedded_state_file {state_file}"))?,
        _ => CqlEngine::new(),
    };
    let running = engine.start(SocketAddr::from(([127, 0, 0, 1], 0))).await?;
    tracing::info!(addr = %running.local_addr(), "started the embedded CQL engine");
    Ok(running)
}

/// Connects to the cluster and creates the keyspace and tables if missing.
pub async fn connect(
    settings: &Settings,
    nodes: &[String],
    embedded: bool,
) -> anyhow::Result<Session> {
    let session = SessionBuilder::new()
        .known_nodes(nodes)
        // The embedded engine has no peers, so the driver's schema-agreement check would fail.
        .auto_await_schema_agreement(!embedded && settings.cql.await_schema_agreement)
        .connection_timeout(Duration::from_millis(settings.cql.request_timeout_ms))
        .build()
        .await
        .with_context(|| format!("cannot connect to CQL at {}", nodes.join(",")))?;
    let replication = settings.cql.replication().map_err(anyhow::Error::msg)?;
    for ddl in crate::schema::statements(&settings.cql.keyspace, &replication) {
        session
            .query_unpaged(ddl, ())
            .await
            .context("cannot create the schema")?;
    }
    Ok(session)
}

impl Application {
    /// Connects (or starts the embedded engine), prepares, binds (port 0 picks a free port).
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        settings.cql.validate().map_err(anyhow::Error::msg)?;
        let mut nodes = settings.cql.contact_points();
        let embedded = if nodes.is_empty() {
            let running = start_embedded(&settings.cql.embedded_state_file).await?;
            nodes.push(running.local_addr().to_string());
            Some(running)
        } else {
            None
        };
        let session = Arc::new(connect(&settings, &nodes, embedded.is_some()).await?);
        let store = SongStore::prepare(session, &settings.cql.keyspace)
            .await
            .context(
                "cannot prepare the songs statements; tables created by an older version lack the \
                 `state` and `state_reason` columns: on ScyllaDB run `ALTER TABLE <ks>.<t> ADD \
                 (state text, state_reason text)` for songs, public_songs and songs_by_user; an \
                 embedded-engine snapshot must be seeded again",
            )?;

        let redis = Redis::connect_at_startup(&settings.redis)
            .await
            .map_err(anyhow::Error::msg)?;
        let cache = JsonCache::new(
            redis.clone(),
            Duration::from_secs(settings.cache.song_ttl_secs),
            Duration::from_secs(settings.cache.missing_ttl_secs),
        );
        let media =
            crate::media::storage::MediaStore::open(&settings.media).map_err(anyhow::Error::msg)?;
        let jobs = Arc::new(crate::media::jobs::Processor::new(
            store.clone(),
            cache.clone(),
            media,
            redis,
            settings.media.clone(),
        ));
        let worker = tokio::spawn(jobs.clone().run());
        let verifier = web::Data::new(Verifier::from_jwks_url(settings.auth.jwks_url.clone()));
        let state = web::Data::new(AppState {
            ids: IdGenerator::new(settings.ids.worker_id).map_err(anyhow::Error::msg)?,
            plays: crate::plays::PlayCounter::new(settings.ids.worker_id),
            store: store.clone(),
            cache,
            settings: settings.clone(),
            jobs,
        });

        let ready: shared::health::ReadyCheck = Arc::new(move || {
            let store = store.clone();
            Box::pin(async move { store.ping().await.map_err(|e| format!("cql: {e}")) })
        });
        let listener = shared::http::listen(&settings.server).map_err(anyhow::Error::msg)?;
        let port = listener.local_addr()?.port();
        let server =
            shared::http::server(listener, "player", &settings.server, ready, move |cfg| {
                cfg.app_data(state.clone()).app_data(verifier.clone());
                crate::routes::configure(cfg);
            })
            .map_err(anyhow::Error::msg)?;
        Ok(Self {
            port,
            server,
            embedded,
            state_file: settings.cql.embedded_state_file.clone(),
            worker,
        })
    }

    /// The port the server listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The embedded engine, when the player started one.
    pub fn embedded(&self) -> Option<&RunningEngine> {
        self.embedded.as_ref()
    }

    /// Serves until SIGTERM/SIGINT, drains, then saves the embedded engine's snapshot.
    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        shared::shutdown::run_until_stopped(self.server).await?;
        // A job cut short here is taken over (by this replica on restart, or another).
        self.worker.abort();
        if let Some(engine) = self.embedded {
            if !self.state_file.is_empty() {
                let tmp = format!("{}.tmp", self.state_file);
                std::fs::write(&tmp, engine.save_state())
                    .and_then(|()| std::fs::rename(&tmp, &self.state_file))
                    .with_context(|| format!("cannot save {}", self.state_file))?;
                tracing::info!(file = %self.state_file, "saved the embedded CQL engine");
            }
            engine.shutdown().await;
        }
        Ok(())
    }

    /// The server, the engine handle and the job worker (tests spawn the server, keep the
    /// engine alive, and may stop the worker to play a crash).
    pub fn into_parts(self) -> (Server, Option<RunningEngine>, tokio::task::JoinHandle<()>) {
        (self.server, self.embedded, self.worker)
    }
}
