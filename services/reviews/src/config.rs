//! The reviews service's settings. Every default works on a developer machine.

use serde::Deserialize;
use shared::config::{ServerSettings, TelemetrySettings};
use shared::postgres::PostgresSettings;
use shared::redis::RedisSettings;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    pub server: ServerSettings,
    pub telemetry: TelemetrySettings,
    pub postgres: PostgresSettings,
    pub redis: RedisSettings,
    pub auth: AuthSettings,
    pub cache: CacheSettings,
}

/// How access tokens are verified.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthSettings {
    /// The user service's public keys.
    pub jwks_url: String,
}

/// Cache lifetimes: a song's ratings summary (`/reviews/meta`), a page of its reviews, and a
/// remembered miss. Every write through the service invalidates what it changes, so these only
/// bound how long a change made behind the service's back (an import) can go unseen.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CacheSettings {
    pub meta_ttl_secs: u64,
    pub page_ttl_secs: u64,
    pub missing_ttl_secs: u64,
}

const DEFAULTS: &str = r#"
[server]
port = 8083

[postgres]
host = "127.0.0.1"
port = 5432
user = "postgres"
password = ""
database = "audiostorm_reviews"
pool_size = 16
connect_timeout_secs = 5

[redis]
url = "redis://127.0.0.1:6379/0"
key_prefix = "reviews:"
command_timeout_ms = 250
near_cache_mb = 256

[auth]
jwks_url = "http://127.0.0.1:8081/.well-known/jwks.json"

[cache]
meta_ttl_secs = 3600
page_ttl_secs = 3600
missing_ttl_secs = 10
"#;

/// Defaults → `APP_CONFIG_FILE` → `APP__…` environment variables.
pub fn load() -> Result<Settings, shared::config::ConfigError> {
    shared::config::load(&defaults())
}

/// This service's built-in defaults (TOML), layered over the common ones.
pub fn defaults() -> String {
    DEFAULTS.to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_defaults_load_without_any_configuration() {
        let s: Settings = shared::config::load_from(&defaults(), None, Vec::new()).unwrap();
        assert_eq!(s.server.port, 8083);
        assert_eq!(s.postgres.database, "audiostorm_reviews");
        assert_eq!(s.redis.key_prefix, "reviews:");
        assert_eq!(
            s.auth.jwks_url,
            "http://127.0.0.1:8081/.well-known/jwks.json"
        );
        assert_eq!(
            (
                s.cache.meta_ttl_secs,
                s.cache.page_ttl_secs,
                s.cache.missing_ttl_secs
            ),
            (3600, 3600, 10)
        );
    }

    #[test]
    fn a_bad_value_stops_start_up_naming_the_key() {
        let err = shared::config::load_from::<Settings>(
            &defaults(),
            None,
            vec![("APP__CACHE__META_TTL_SECS".into(), "a minute".into())],
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("cache.meta_ttl_secs"), "{err}");
    }
}
