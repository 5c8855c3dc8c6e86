//! Typed, layered configuration: built-in defaults → optional file → `APP__SECTION__KEY` variables.
//!
//! Each service describes its settings as a `serde` struct and its defaults as TOML text; [`load`]
//! layers the sources and deserialises once, failing with a message that names the bad key.

use std::path::PathBuf;

use config::{Config, Environment, File, FileFormat};
use serde::Deserialize;
use serde::de::DeserializeOwned;

/// The environment variable that names an optional configuration file (TOML).
pub const CONFIG_FILE_VAR: &str = "APP_CONFIG_FILE";

/// Configuration could not be loaded; the message names the offending key where there is one.
#[derive(Debug, thiserror::Error)]
#[error("configuration error: {0}")]
pub struct ConfigError(String);

/// Loads settings: [`COMMON_DEFAULTS`], then the service's `defaults` (TOML; its tables merge
/// into the common ones key by key), then the file named by `APP_CONFIG_FILE` if set, then
/// environment variables such as `APP__SERVER__PORT=8081` (double underscore between levels).
pub fn load<T: DeserializeOwned>(defaults: &str) -> Result<T, ConfigError> {
    let file = std::env::var_os(CONFIG_FILE_VAR).map(PathBuf::from);
    load_from(defaults, file, std::env::vars())
}

/// [`load`] with explicit sources, for tests and tools.
pub fn load_from<T: DeserializeOwned>(
    defaults: &str,
    file: Option<PathBuf>,
    vars: impl IntoIterator<Item = (String, String)>,
) -> Result<T, ConfigError> {
    let mut builder = Config::builder()
        .add_source(File::from_str(COMMON_DEFAULTS, FileFormat::Toml))
        .add_source(File::from_str(defaults, FileFormat::Toml));
    if let Some(path) = file {
        if !path.exists() {
            return Err(ConfigError(format!(
                "{CONFIG_FILE_VAR} names {} which does not exist",
                path.display()
            )));
        }
        builder = builder.add_source(File::from(path).format(FileFormat::Toml).required(true));
    }
    let env: config::Map<String, String> = vars
        .into_iter()
        .filter(|(k, _)| k.starts_with("APP__"))
        .collect();
    builder = builder.add_source(
        Environment::with_prefix("APP")
            .prefix_separator("__")
            .separator("__")
            .try_parsing(true)
            .source(Some(env)),
    );
    let cfg = builder.build().map_err(|e| ConfigError(e.to_string()))?;
    cfg.try_deserialize::<T>()
        .map_err(|e| ConfigError(describe(e)))
}

fn describe(e: config::ConfigError) -> String {
    // The config crate reports keys as `server.port`; say which variable sets it too.
    let text = e.to_string();
    match text.rsplit_once("for key `") {
        Some((_, rest)) => {
            let key = rest.trim_end_matches('`');
            let var = format!("APP__{}", key.replace('.', "__").to_uppercase());
            format!("{text} (set by {var} or the config file)")
        }
        None => text,
    }
}

/// The HTTP listener every service has.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerSettings {
    pub host: String,
    pub port: u16,
    /// Actix worker threads; 0 means one per core.
    #[serde(default)]
    pub workers: usize,
    /// How long in-flight requests may run after a shutdown signal.
    pub shutdown_timeout_secs: u64,
    /// Largest accepted JSON body, in bytes.
    pub max_body_bytes: usize,
    /// The externally visible base URL (used for `next_href` links); empty = from the request.
    #[serde(default)]
    pub public_url: String,
}

/// Logs and traces.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TelemetrySettings {
    /// `tracing` filter directive, e.g. `info,user=debug`.
    pub log_level: String,
    /// `json` (structured, the default) or `pretty`.
    pub log_format: LogFormat,
    /// OTLP/HTTP endpoint such as `http://localhost:4318`; traces are exported only when set.
    #[serde(default)]
    pub otlp_endpoint: String,
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Json,
    Pretty,
}

/// The defaults for `[server]` and `[telemetry]` that every service shares; each service's own
/// defaults add `server.port` and its own sections.
pub const COMMON_DEFAULTS: &str = r#"
[server]
host = "127.0.0.1"
workers = 0
shutdown_timeout_secs = 20
max_body_bytes = 65536
public_url = ""

[telemetry]
log_level = "info"
log_format = "json"
otlp_endpoint = ""
"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize)]
    struct Settings {
        server: ServerSettings,
    }

    fn defaults() -> String {
        "[server]\nport = 8000\n".to_owned()
    }

    fn vars(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn defaults_alone_load() {
        let s: Settings = load_from(&defaults(), None, vars(&[])).unwrap();
        assert_eq!(s.server.port, 8000);
    }

    #[test]
    fn an_environment_variable_overrides_a_default() {
        let s: Settings =
            load_from(&defaults(), None, vars(&[("APP__SERVER__PORT", "9123")])).unwrap();
        assert_eq!(s.server.port, 9123);
    }

    #[test]
    fn a_file_overrides_defaults_and_the_environment_overrides_the_file() {
        let dir = std::env::temp_dir().join(format!("cfg-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("app.toml");
        std::fs::write(&path, "[server]\nport = 7000\nhost = \"0.0.0.0\"\n").unwrap();
        let s: Settings = load_from(&defaults(), Some(path.clone()), vars(&[])).unwrap();
        assert_eq!((s.server.port, s.server.host.as_str()), (7000, "0.0.0.0"));
        let s: Settings = load_from(
            &defaults(),
            Some(path),
            vars(&[("APP__SERVER__PORT", "7001")]),
        )
        .unwrap();
        assert_eq!((s.server.port, s.server.host.as_str()), (7001, "0.0.0.0"));
    }

    #[test]
    fn a_bad_value_names_the_key_and_the_variable() {
        let err =
            load_from::<Settings>(&defaults(), None, vars(&[("APP__SERVER__PORT", "eighty")]))
                .unwrap_err()
                .to_string();
        assert!(err.contains("server.port"), "{err}");
        assert!(err.contains("APP__SERVER__PORT"), "{err}");
    }

    #[test]
    fn a_missing_file_is_an_error() {
        let err = load_from::<Settings>(&defaults(), Some("/nonexistent/x.toml".into()), vars(&[]))
            .unwrap_err();
        assert!(err.to_string().contains("does not exist"));
    }
}
