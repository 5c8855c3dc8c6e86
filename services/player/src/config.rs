//! The player service's settings. Every default works on a developer machine: with no CQL
//! contact points it starts the embedded engine itself.

use serde::Deserialize;
use shared::config::{ServerSettings, TelemetrySettings};

use crate::schema::Replication;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    pub server: ServerSettings,
    pub telemetry: TelemetrySettings,
    pub cql: CqlSettings,
    pub redis: RedisSettings,
    pub ids: IdSettings,
    pub auth: AuthSettings,
    pub cache: CacheSettings,
    pub media: MediaSettings,
}

/// Where the songs live.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CqlSettings {
    /// Comma-separated `host:port` list of ScyllaDB/Cassandra nodes. Empty: the player starts the
    /// embedded CQL engine in-process.
    pub contact_points: String,
    pub keyspace: String,
    /// `simple` (with `replication_factor`) or `network` (with `datacenters`).
    pub replication: String,
    pub replication_factor: u32,
    /// `dc1:3,dc2:3` for `network`.
    pub datacenters: String,
    /// The embedded engine's snapshot: loaded at start, saved at shutdown (empty: in memory only).
    pub embedded_state_file: String,
    pub request_timeout_ms: u64,
    /// Wait for schema agreement after DDL. A real cluster wants it; the embedded engine served
    /// as its own process (the local stack) has no peers to agree with, so set it to `false` there.
    pub await_schema_agreement: bool,
}

impl CqlSettings {
    /// The configured contact points (empty = embedded engine).
    pub fn contact_points(&self) -> Vec<String> {
        self.contact_points
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect()
    }

    /// The keyspace replication, validated.
    pub fn replication(&self) -> Result<Replication, String> {
        match self.replication.as_str() {
            "simple" if self.replication_factor >= 1 => Ok(Replication::Simple {
                factor: self.replication_factor,
            }),
            "simple" => Err("cql.replication_factor must be at least 1".into()),
            "network" => {
                let mut datacenters = Vec::new();
                for part in self
                    .datacenters
                    .split(',')
                    .map(str::trim)
                    .filter(|p| !p.is_empty())
                {
                    let (dc, n) = part
                        .split_once(':')
                        .and_then(|(dc, n)| Some((dc.trim(), n.trim().parse::<u32>().ok()?)))
                        .filter(|(dc, n)| {
                            *n >= 1
                                && !dc.is_empty()
                                && dc
                                    .chars()
                                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
                        })
                        .ok_or_else(|| format!("cql.datacenters: `{part}` is not `name:factor`"))?;
                    datacenters.push((dc.to_owned(), n));
                }
                if datacenters.is_empty() {
                    return Err(
                        "cql.datacenters must name at least one datacenter for `network`".into(),
                    );
                }
                Ok(Replication::NetworkTopology { datacenters })
            }
            other => Err(format!(
                "cql.replication must be `simple` or `network`, not `{other}`"
            )),
        }
    }

    /// Whether the keyspace name is a plain CQL identifier (it is spliced into statements).
    pub fn validate(&self) -> Result<(), String> {
        let ks = &self.keyspace;
        let ok = !ks.is_empty()
            && ks.len() <= 48
            && ks.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
            && ks
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
        if !ok {
            return Err(format!(
                "cql.keyspace `{ks}` must be 1–48 of a-z, 0-9, _ starting with a letter"
            ));
        }
        self.replication().map(|_| ())
    }
}

pub use shared::redis::RedisSettings;

/// Song id generation.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IdSettings {
    /// Unique per running replica, 0–1023: it keeps generated ids apart and owns this replica's
    /// play-count rows.
    pub worker_id: u16,
}

/// How access tokens are verified.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthSettings {
    /// The user service's public keys.
    pub jwks_url: String,
}

/// Song cache lifetimes.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CacheSettings {
    pub song_ttl_secs: u64,
    pub missing_ttl_secs: u64,
}

/// Audio and artwork: storage, upload limits, processing.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MediaSettings {
    /// `local` (a directory) or `s3` (any S3-compatible store).
    pub store: String,
    /// The directory of the `local` store (created if missing).
    pub local_dir: String,
    pub s3: S3Settings,
    /// Uploads larger than this are refused with 413.
    pub max_upload_mb: u64,
    /// Where uploads are spooled while they are checked, and jobs work (empty: the system's).
    pub work_dir: String,
    /// The ffmpeg binary that makes streaming renditions.
    pub ffmpeg: String,
    /// Jobs this replica runs at once (0: this replica processes none).
    pub workers: usize,
    /// How long a replica's claim on a job lasts without renewal (a crashed replica's jobs are
    /// taken over after this).
    pub job_lease_secs: u64,
    /// How often every replica looks for jobs nobody is running.
    pub job_poll_ms: u64,
    /// A job that takes longer fails.
    pub job_timeout_secs: u64,
    /// Attempts before a job that keeps failing for transient reasons is marked failed.
    pub job_attempts: u32,
    /// Prefix of the URLs in songs (`stream_url`, …); empty: paths relative to this service.
    pub public_base_url: String,
}

/// An S3-compatible store.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct S3Settings {
    /// Empty: AWS itself; otherwise e.g. `http://127.0.0.1:9000` (path-style requests).
    pub endpoint: String,
    pub bucket: String,
    pub region: String,
    /// Empty: credentials from the environment (AWS_ACCESS_KEY_ID, …, or instance metadata).
    pub access_key_id: String,
    pub secret_access_key: String,
}

const DEFAULTS: &str = r#"
[server]
port = 8082

[telemetry]
# The driver's metadata refresh complains about the embedded engine's missing peers every minute.
log_level = "info,scylla::cluster::metadata=off,kassandra=off"

[cql]
contact_points = ""
keyspace = "audiostorm"
replication = "simple"
replication_factor = 1
datacenters = ""
embedded_state_file = ""
request_timeout_ms = 2000
await_schema_agreement = true

[redis]
url = "redis://127.0.0.1:6379/0"
key_prefix = "player:"
command_timeout_ms = 250
near_cache_mb = 128

[ids]
worker_id = 0

[auth]
jwks_url = "http://127.0.0.1:8081/.well-known/jwks.json"

[cache]
song_ttl_secs = 300
missing_ttl_secs = 10

[media]
store = "local"
local_dir = "data/player/media"
max_upload_mb = 200
work_dir = ""
ffmpeg = "ffmpeg"
workers = 1
job_lease_secs = 30
job_poll_ms = 2000
job_timeout_secs = 900
job_attempts = 5
public_base_url = ""

[media.s3]
endpoint = ""
bucket = ""
region = "us-east-1"
access_key_id = ""
secret_access_key = ""
"#;

/// This service's built-in defaults (TOML), layered over the common ones.
pub fn defaults() -> String {
    DEFAULTS.to_owned()
}

/// Defaults → `APP_CONFIG_FILE` → `APP__…` environment variables, then cross-field checks.
pub fn load() -> Result<Settings, String> {
    let settings: Settings = shared::config::load(&defaults()).map_err(|e| e.to_string())?;
    settings.cql.validate()?;
    Ok(settings)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(vars: &[(&str, &str)]) -> Settings {
        let vars = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect::<Vec<_>>();
        shared::config::load_from(&defaults(), None, vars).unwrap()
    }

    #[test]
    fn the_defaults_use_the_embedded_engine() {
        let s = with(&[]);
        assert!(s.cql.contact_points().is_empty());
        assert_eq!(
            s.cql.replication().unwrap(),
            Replication::Simple { factor: 1 }
        );
        assert_eq!(s.server.port, 8082);
    }

    #[test]
    fn a_production_cluster_uses_network_topology() {
        let s = with(&[
            (
                "APP__CQL__CONTACT_POINTS",
                "scylla-1:9042, scylla-2:9042,scylla-3:9042",
            ),
            ("APP__CQL__REPLICATION", "network"),
            ("APP__CQL__DATACENTERS", "dc1:3"),
        ]);
        assert_eq!(s.cql.contact_points().len(), 3);
        assert_eq!(
            s.cql.replication().unwrap(),
            Replication::NetworkTopology {
                datacenters: vec![("dc1".into(), 3)]
            }
        );
    }

    #[test]
    fn bad_replication_and_keyspace_name_the_key() {
        assert!(
            with(&[("APP__CQL__REPLICATION", "weird")])
                .cql
                .validate()
                .unwrap_err()
                .contains("cql.replication")
        );
        let s = with(&[
            ("APP__CQL__REPLICATION", "network"),
            ("APP__CQL__DATACENTERS", "dc1"),
        ]);
        assert!(s.cql.validate().unwrap_err().contains("cql.datacenters"));
        assert!(
            with(&[("APP__CQL__KEYSPACE", "x; DROP")])
                .cql
                .validate()
                .unwrap_err()
                .contains("cql.keyspace")
        );
    }
}
