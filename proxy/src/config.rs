//! The proxy's settings. Every default works on a developer machine: the three services on their
//! default ports, the web client's files in `./web`.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Deserializer};
use shared::config::{ServerSettings, TelemetrySettings};

/// Everything the proxy reads at start-up.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// The listener. `workers` is the number of runtime threads (0 = one per core);
    /// `shutdown_timeout_secs` bounds the drain. `max_body_bytes` and `public_url` do not apply:
    /// bodies stream through to the services, which enforce their own limits.
    pub server: ServerSettings,
    pub client: ClientSettings,
    pub telemetry: TelemetrySettings,
    /// Upstream pools: pool name → replica addresses (`host:port`).
    pub pools: BTreeMap<String, List>,
    /// The routing table: pool name → path patterns (see [`crate::routes`]).
    pub routes: BTreeMap<String, List>,
    pub upstream: UpstreamSettings,
    pub health: HealthSettings,
    pub static_files: StaticSettings,
    pub forwarding: ForwardingSettings,
}

/// The callers' connections.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientSettings {
    /// Time allowed for a complete request head, counted from when the proxy starts waiting for
    /// it (the connection opened, or the previous response went out); past it the connection is
    /// closed. It bounds idle keep-alive connections and callers that send a head slowly
    /// ("slowloris") alike. Checked every 50 ms, so it may run up to 50 ms over.
    pub header_timeout_ms: u64,
    /// Time allowed between two pieces of a request body while the proxy waits for the next one
    /// (nginx's `client_body_timeout`): a caller whose upload stalls that long gets 408, and the
    /// request to the replica is cut off. A slow but moving upload is not affected. Checked every
    /// 50 ms, so it may run up to 50 ms over.
    pub body_timeout_ms: u64,
    /// Time a response may go without moving while it is being sent (nginx's `send_timeout` and
    /// `proxy_read_timeout` in one): the caller has stopped reading it, or the replica has stopped
    /// sending more of its body. Past it the connection is closed, and with it the connection to
    /// the replica. The connection is closed between one and one and a half of this after the
    /// response last moved (see `watchdog.rs`).
    pub send_timeout_ms: u64,
}

impl ClientSettings {
    pub fn header_timeout(&self) -> Duration {
        Duration::from_millis(self.header_timeout_ms)
    }

    pub fn body_timeout(&self) -> Duration {
        Duration::from_millis(self.body_timeout_ms)
    }

    pub fn send_timeout(&self) -> Duration {
        Duration::from_millis(self.send_timeout_ms)
    }
}

/// The keep-alive connections to the replicas.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpstreamSettings {
    /// Time allowed to open a TCP connection to a replica; a refused or timed-out connect is
    /// retried on another replica.
    pub connect_timeout_ms: u64,
    /// Time allowed for the response head, counted from the end of the request body (so a long
    /// upload is not cut off by it); past it the answer is 504. Checked every 50 ms, so it may
    /// run up to 50 ms over.
    pub response_timeout_ms: u64,
    /// Replicas tried for one request at most (first try included).
    pub max_attempts: usize,
    /// Idle keep-alive connections kept per replica.
    pub max_idle_per_replica: usize,
    /// How long an idle keep-alive connection is kept. Keep it below the services' own keep-alive
    /// (actix: 5 s), so a connection is never reused just as the service closes it.
    pub idle_timeout_secs: u64,
}

impl UpstreamSettings {
    pub fn connect_timeout(&self) -> Duration {
        Duration::from_millis(self.connect_timeout_ms)
    }

    pub fn response_timeout(&self) -> Duration {
        Duration::from_millis(self.response_timeout_ms)
    }

    pub fn idle_timeout(&self) -> Duration {
        Duration::from_secs(self.idle_timeout_secs)
    }
}

/// Active health checks and passive ejection.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HealthSettings {
    /// The path probed on every replica; 2xx means healthy.
    pub path: String,
    pub interval_ms: u64,
    pub timeout_ms: u64,
    /// Consecutive failures (failed or timed-out requests and failed probes alike) that eject a
    /// replica.
    pub eject_after_failures: u32,
    /// Consecutive successful probes that re-admit an ejected replica.
    pub readmit_after_successes: u32,
}

impl HealthSettings {
    pub fn interval(&self) -> Duration {
        Duration::from_millis(self.interval_ms)
    }

    pub fn timeout(&self) -> Duration {
        Duration::from_millis(self.timeout_ms)
    }
}

/// The web client's files.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StaticSettings {
    /// Directory read once at start-up (relative to the working directory). Missing: a warning,
    /// and every static path answers 404.
    pub dir: String,
    /// The client-side routing entry point, relative to `dir`.
    pub index: String,
}

/// The `X-Forwarded-*` headers.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ForwardingSettings {
    /// `false` (the proxy is the edge): the caller's `X-Forwarded-*` and `Forwarded` headers are
    /// replaced, since anyone can send them. `true` (a trusted load balancer or TLS terminator in
    /// front): they are kept and the peer is appended to `X-Forwarded-For`.
    pub trust_forwarded_headers: bool,
}

/// A list given as a TOML array or as one comma-separated string, which is how an environment
/// variable carries it: `APP__POOLS__PLAYER=player-1:8082,player-2:8082`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct List(pub Vec<String>);

impl<'de> Deserialize<'de> for List {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            One(String),
            Many(Vec<String>),
        }
        let items = match Raw::deserialize(deserializer)? {
            Raw::One(s) => s.split(',').map(str::to_owned).collect(),
            Raw::Many(v) => v,
        };
        Ok(List(
            items
                .into_iter()
                .map(|s| s.trim().to_owned())
                .filter(|s| !s.is_empty())
                .collect(),
        ))
    }
}

const DEFAULTS: &str = r#"
[server]
host = "0.0.0.0"
port = 8080

[client]
header_timeout_ms = 30000
body_timeout_ms = 60000
send_timeout_ms = 60000

[pools]
user = ["127.0.0.1:8081"]
player = ["127.0.0.1:8082"]
reviews = ["127.0.0.1:8083"]

[routes]
user = ["/auth", "/users", "/.well-known/jwks.json"]
player = ["/songs", "/playlists", "/users/*/songs", "/users/*/likes"]
reviews = ["/reviews"]

[upstream]
connect_timeout_ms = 1000
response_timeout_ms = 30000
max_attempts = 3
max_idle_per_replica = 256
idle_timeout_secs = 4

[health]
path = "/health/ready"
interval_ms = 2000
timeout_ms = 1000
eject_after_failures = 3
readmit_after_successes = 2

[static_files]
dir = "web"
index = "index.html"

[forwarding]
trust_forwarded_headers = false
"#;

/// Defaults → `APP_CONFIG_FILE` → `APP__…` environment variables, then [`Settings::validate`].
pub fn load() -> Result<Settings, String> {
    let settings: Settings = shared::config::load(&defaults()).map_err(|e| e.to_string())?;
    settings.validate()?;
    Ok(settings)
}

/// The proxy's built-in defaults (TOML), layered over the common ones.
pub fn defaults() -> String {
    DEFAULTS.to_owned()
}

impl Settings {
    /// Checks what serde cannot: every route names a pool with replicas, addresses look like
    /// `host:port`, timeouts are non-zero. The message names the key.
    pub fn validate(&self) -> Result<(), String> {
        for (pool, replicas) in &self.pools {
            if replicas.0.is_empty() {
                return Err(format!("pools.{pool}: no replica addresses"));
            }
            if replicas.0.len() > crate::balancer::MAX_REPLICAS {
                return Err(format!(
                    "pools.{pool}: at most {} replicas per pool",
                    crate::balancer::MAX_REPLICAS
                ));
            }
            for addr in &replicas.0 {
                let ok = addr
                    .parse::<http::uri::Authority>()
                    .is_ok_and(|a| a.port_u16().is_some() && !addr.contains('@'));
                if !ok {
                    return Err(format!(
                        "pools.{pool}: `{addr}` is not a `host:port` address"
                    ));
                }
            }
        }
        for pool in self.routes.keys() {
            if !self.pools.contains_key(pool) {
                return Err(format!(
                    "routes.{pool}: no pool named `{pool}` (add pools.{pool})"
                ));
            }
        }
        let positive = [
            ("client.header_timeout_ms", self.client.header_timeout_ms),
            ("client.body_timeout_ms", self.client.body_timeout_ms),
            ("client.send_timeout_ms", self.client.send_timeout_ms),
            (
                "upstream.connect_timeout_ms",
                self.upstream.connect_timeout_ms,
            ),
            (
                "upstream.response_timeout_ms",
                self.upstream.response_timeout_ms,
            ),
            ("upstream.max_attempts", self.upstream.max_attempts as u64),
            ("health.interval_ms", self.health.interval_ms),
            ("health.timeout_ms", self.health.timeout_ms),
            (
                "health.eject_after_failures",
                u64::from(self.health.eject_after_failures),
            ),
            (
                "health.readmit_after_successes",
                u64::from(self.health.readmit_after_successes),
            ),
        ];
        if let Some((key, _)) = positive.iter().find(|(_, v)| *v == 0) {
            return Err(format!("{key} must be greater than 0"));
        }
        if !self.health.path.starts_with('/') {
            return Err("health.path must start with `/`".to_owned());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load_with(vars: &[(&str, &str)]) -> Result<Settings, String> {
        let vars = vars.iter().map(|(k, v)| (k.to_string(), v.to_string()));
        let s: Settings =
            shared::config::load_from(&defaults(), None, vars).map_err(|e| e.to_string())?;
        s.validate()?;
        Ok(s)
    }

    #[test]
    fn the_defaults_load_without_any_configuration() {
        let s = load_with(&[]).unwrap();
        assert_eq!((s.server.host.as_str(), s.server.port), ("0.0.0.0", 8080));
        assert_eq!(s.pools["player"].0, ["127.0.0.1:8082"]);
        assert_eq!(s.routes["reviews"].0, ["/reviews"]);
    }

    #[test]
    fn a_pool_is_set_by_one_comma_separated_variable() {
        let s = load_with(&[("APP__POOLS__PLAYER", "player-1:8082, player-2:8082")]).unwrap();
        assert_eq!(s.pools["player"].0, ["player-1:8082", "player-2:8082"]);
        assert_eq!(s.pools["user"].0, ["127.0.0.1:8081"]);
    }

    #[test]
    fn a_route_to_an_unknown_pool_stops_start_up() {
        let err = load_with(&[("APP__ROUTES__SEARCH", "/search")]).unwrap_err();
        assert!(err.contains("routes.search"), "{err}");
    }

    #[test]
    fn an_address_without_a_port_is_rejected() {
        let err = load_with(&[("APP__POOLS__USER", "user-1")]).unwrap_err();
        assert!(err.contains("pools.user"), "{err}");
    }

    #[test]
    fn a_zero_timeout_is_rejected_naming_the_key() {
        let err = load_with(&[("APP__UPSTREAM__RESPONSE_TIMEOUT_MS", "0")]).unwrap_err();
        assert!(err.contains("upstream.response_timeout_ms"), "{err}");
    }
}
