//! The user service's settings. Every default works on a developer machine.

use secrecy::SecretString;
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
    pub signin_limits: SigninLimits,
    pub cache: CacheSettings,
}

/// Token signing and lifetimes.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthSettings {
    /// The Ed25519 signing key as PKCS#8 PEM (`openssl genpkey -algorithm ed25519`). Every replica
    /// must share it. Empty: a development key is generated once at `dev_key_path` and reused.
    #[serde(default = "empty")]
    pub signing_key_pem: SecretString,
    pub dev_key_path: String,
    pub access_token_ttl_secs: i64,
    pub refresh_token_ttl_secs: i64,
    /// Argon2id memory cost in KiB (OWASP: 19456), iterations (2) and lanes (1).
    pub argon2_memory_kib: u32,
    pub argon2_iterations: u32,
    pub argon2_parallelism: u32,
    /// Password hashes computed at once; more wait (bounds memory under a sign-in flood).
    pub max_concurrent_hashes: usize,
}

fn empty() -> SecretString {
    SecretString::from("")
}

/// Sign-in attempts allowed per window, per account and per client address.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SigninLimits {
    pub window_secs: u64,
    pub per_account: u32,
    pub per_address: u32,
    /// Take the client address from the last `X-Forwarded-For` hop (set when behind our proxy).
    pub trust_forwarded_for: bool,
}

/// Profile cache lifetimes.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CacheSettings {
    pub profile_ttl_secs: u64,
    pub missing_ttl_secs: u64,
}

const DEFAULTS: &str = r#"
[server]
port = 8081

[postgres]
host = "127.0.0.1"
port = 5432
user = "postgres"
password = ""
database = "audiostorm_user"
pool_size = 16
connect_timeout_secs = 5

[redis]
url = "redis://127.0.0.1:6379/0"
key_prefix = "user:"
command_timeout_ms = 250
near_cache_mb = 64

[auth]
signing_key_pem = ""
dev_key_path = "data/user/dev-signing-key.pem"
access_token_ttl_secs = 900
refresh_token_ttl_secs = 2592000
argon2_memory_kib = 19456
argon2_iterations = 2
argon2_parallelism = 1
max_concurrent_hashes = 4

[signin_limits]
window_secs = 900
per_account = 10
per_address = 100
trust_forwarded_for = false

[cache]
profile_ttl_secs = 300
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
        assert_eq!(s.server.port, 8081);
        assert_eq!(s.auth.argon2_memory_kib, 19456);
    }

    #[test]
    fn a_bad_value_stops_start_up_naming_the_key() {
        let err = shared::config::load_from::<Settings>(
            &defaults(),
            None,
            vec![("APP__SIGNIN_LIMITS__PER_ACCOUNT".into(), "lots".into())],
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("signin_limits.per_account"), "{err}");
    }
}
