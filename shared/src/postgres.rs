//! PostgreSQL connection settings and the pool built from them.

use std::time::Duration;

use deadpool_postgres::{ManagerConfig, Pool, RecyclingMethod, Runtime};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use tokio_postgres::NoTls;

/// `[postgres]` settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PostgresSettings {
    pub host: String,
    pub port: u16,
    pub user: String,
    #[serde(default = "empty_secret")]
    pub password: SecretString,
    pub database: String,
    pub pool_size: usize,
    pub connect_timeout_secs: u64,
}

fn empty_secret() -> SecretString {
    SecretString::from("")
}

impl PostgresSettings {
    /// The same server, another database.
    pub fn with_database(&self, database: &str) -> Self {
        Self {
            database: database.to_owned(),
            ..self.clone()
        }
    }

    /// A `tokio_postgres` configuration for these settings.
    pub fn pg_config(&self) -> tokio_postgres::Config {
        let mut cfg = tokio_postgres::Config::new();
        cfg.host(&self.host)
            .port(self.port)
            .user(&self.user)
            .dbname(&self.database)
            .application_name("audiostorm")
            .connect_timeout(Duration::from_secs(self.connect_timeout_secs));
        let password = self.password.expose_secret();
        if !password.is_empty() {
            cfg.password(password);
        }
        cfg
    }

    /// A connection pool. Connections are opened lazily, so this succeeds with the database down.
    pub fn pool(&self) -> Result<Pool, String> {
        let mgr = deadpool_postgres::Manager::from_config(
            self.pg_config(),
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        Pool::builder(mgr)
            .max_size(self.pool_size)
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(Duration::from_secs(self.connect_timeout_secs)))
            .create_timeout(Some(Duration::from_secs(self.connect_timeout_secs)))
            .build()
            .map_err(|e| format!("postgres pool: {e}"))
    }
}

/// A readiness check: the pool hands out a connection that answers `SELECT 1`.
pub fn ready_check(pool: Pool) -> crate::health::ReadyCheck {
    std::sync::Arc::new(move || {
        let pool = pool.clone();
        Box::pin(async move {
            let client = pool.get().await.map_err(|e| format!("postgres: {e}"))?;
            client
                .simple_query("SELECT 1")
                .await
                .map_err(|e| format!("postgres: {e}"))?;
            Ok(())
        })
    })
}

/// Creates the configured database if the server does not have it yet, so a service starts on a
/// bare PostgreSQL with no setup. Waits for the server for up to `connect_timeout_secs × 6`.
pub async fn ensure_database(settings: &PostgresSettings) -> Result<(), String> {
    let attempts = 6;
    for attempt in 1..=attempts {
        match settings.pg_config().connect(NoTls).await {
            Ok(_) => return Ok(()),
            Err(e) if e.code() == Some(&tokio_postgres::error::SqlState::INVALID_CATALOG_NAME) => {
                let admin = settings.with_database("postgres");
                let (client, conn) =
                    admin.pg_config().connect(NoTls).await.map_err(|e| {
                        format!("postgres: cannot connect to create the database: {e}")
                    })?;
                tokio::spawn(conn);
                let name = settings.database.replace('"', "\"\"");
                match client
                    .simple_query(&format!("CREATE DATABASE \"{name}\""))
                    .await
                {
                    Ok(_) => tracing::info!(database = %settings.database, "created the database"),
                    // Another replica created it first.
                    Err(e)
                        if e.code()
                            == Some(&tokio_postgres::error::SqlState::DUPLICATE_DATABASE) => {}
                    Err(e) => {
                        return Err(format!(
                            "postgres: cannot create {}: {e}",
                            settings.database
                        ));
                    }
                }
                return Ok(());
            }
            Err(e) if attempt < attempts => {
                tracing::warn!(error = %e, attempt, "PostgreSQL not reachable yet");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            Err(e) => {
                return Err(format!(
                    "postgres: cannot connect to {}:{}/{}: {e}",
                    settings.host, settings.port, settings.database
                ));
            }
        }
    }
    Ok(())
}
