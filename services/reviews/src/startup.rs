//! Builds the application: pools, caches, routes. `main` and the tests both call
//! [`Application::build`].

use actix_web::dev::Server;
use actix_web::web;
use anyhow::Context;
use deadpool_postgres::Pool;
use shared::auth::Verifier;
use shared::redis::{JsonCache, Redis};
use std::time::Duration;

use crate::config::Settings;

/// Everything a handler needs, shared by all workers.
pub struct AppState {
    pub pool: Pool,
    /// Songs' ratings summaries (`/reviews/meta`).
    pub meta_cache: JsonCache,
    /// First pages of songs' review listings.
    pub page_cache: JsonCache,
    pub settings: Settings,
}

/// A bound, not yet running server.
pub struct Application {
    port: u16,
    server: Server,
}

impl Application {
    /// Connects, migrates, binds (port 0 picks a free port) and builds the server.
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        shared::postgres::ensure_database(&settings.postgres)
            .await
            .map_err(anyhow::Error::msg)?;
        let pool = settings.postgres.pool().map_err(anyhow::Error::msg)?;
        let mut client = pool.get().await.context("cannot connect to PostgreSQL")?;
        crate::store::migrate(&mut client)
            .await
            .context("cannot migrate the database")?;
        drop(client);

        let redis = Redis::connect_at_startup(&settings.redis)
            .await
            .map_err(anyhow::Error::msg)?;
        // Keys are fetched from the user service on first use, so it need not be up yet.
        let verifier = web::Data::new(Verifier::from_jwks_url(settings.auth.jwks_url.clone()));
        let cache = &settings.cache;
        let missing = Duration::from_secs(cache.missing_ttl_secs);
        let state = web::Data::new(AppState {
            pool: pool.clone(),
            meta_cache: JsonCache::new(
                redis.clone(),
                Duration::from_secs(cache.meta_ttl_secs),
                missing,
            ),
            page_cache: JsonCache::new(redis, Duration::from_secs(cache.page_ttl_secs), missing),
            settings: settings.clone(),
        });

        let ready = shared::postgres::ready_check(pool);
        let listener = shared::http::listen(&settings.server).map_err(anyhow::Error::msg)?;
        let port = listener.local_addr()?.port();
        let server =
            shared::http::server(listener, "reviews", &settings.server, ready, move |cfg| {
                cfg.app_data(state.clone()).app_data(verifier.clone());
                crate::routes::configure(cfg);
            })
            .map_err(anyhow::Error::msg)?;
        Ok(Self { port, server })
    }

    /// The port the server listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Serves until SIGTERM/SIGINT, then drains in-flight requests.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        shared::shutdown::run_until_stopped(self.server).await
    }

    /// The server itself (tests spawn it and stop it through its handle).
    pub fn into_server(self) -> Server {
        self.server
    }
}
