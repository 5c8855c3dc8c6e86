//! Builds the application: pools, keys, caches, routes. `main` and the tests both call
//! [`Application::build`].

use std::time::Duration;

use actix_web::dev::Server;
use actix_web::web;
use anyhow::Context;
use deadpool_postgres::Pool;
use shared::auth::Verifier;
use shared::redis::{JsonCache, Redis};

use crate::config::Settings;
use crate::limiter::SigninLimiter;
use crate::password::Hasher;
use crate::tokens::TokenSigner;

/// Everything a handler needs, shared by all workers.
pub struct AppState {
    pub pool: Pool,
    pub cache: JsonCache,
    pub hasher: Hasher,
    pub signer: TokenSigner,
    pub limiter: SigninLimiter,
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
        let cache = JsonCache::new(
            redis.clone(),
            Duration::from_secs(settings.cache.profile_ttl_secs),
            Duration::from_secs(settings.cache.missing_ttl_secs),
        );
        let signer = TokenSigner::from_settings(&settings.auth).map_err(anyhow::Error::msg)?;
        let verifier = web::Data::new(Verifier::from_jwks(signer.jwks())?);
        let state = web::Data::new(AppState {
            hasher: Hasher::new(&settings.auth).map_err(anyhow::Error::msg)?,
            limiter: SigninLimiter::new(redis, settings.signin_limits.clone()),
            pool: pool.clone(),
            cache,
            signer,
            settings: settings.clone(),
        });
        spawn_housekeeping(state.clone());

        let ready = shared::postgres::ready_check(pool);
        let listener = shared::http::listen(&settings.server).map_err(anyhow::Error::msg)?;
        let port = listener.local_addr()?.port();
        let server = shared::http::server(listener, "user", &settings.server, ready, move |cfg| {
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

fn spawn_housekeeping(state: web::Data<AppState>) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(60));
        loop {
            tick.tick().await;
            state.limiter.shrink();
        }
    });
}
