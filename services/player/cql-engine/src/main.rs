//! `cql-engine`: the embedded CQL engine as a process, for the local stack.
//!
//! Listens on `127.0.0.1:9042` unless told otherwise, loads `--state-file` on start if it exists,
//! and on SIGTERM/SIGINT stops serving, saves the state there (temp file + rename, so a crash
//! while saving never leaves half a snapshot) and exits 0. It prints
//! `cql-engine listening on ADDR` on stdout once it accepts connections; logs go to stderr.

use std::{
    io::{self, IsTerminal, Write},
    net::SocketAddr,
    panic::{AssertUnwindSafe, catch_unwind},
    path::{Path, PathBuf},
    process::ExitCode,
};

use cql_engine::CqlEngine;
use tokio::signal::unix::{SignalKind, signal};
use tracing_subscriber::EnvFilter;

const DEFAULT_LISTEN: &str = "127.0.0.1:9042";
/// kassandra logs every statement it refuses at ERROR, including the driver's routine probes of
/// system tables it lacks; the client gets those errors anyway, so they stay out of the default log.
const DEFAULT_LOG: &str = "info,kassandra=off";
const USAGE: &str = "\
usage: cql-engine [--listen ADDR] [--state-file PATH]

  --listen ADDR       address to serve CQL on (env CQL_ENGINE_LISTEN, default 127.0.0.1:9042;
                      port 0 picks a free port, printed on the ready line)
  --state-file PATH   snapshot loaded on start if it exists and written on SIGTERM/SIGINT
                      (env CQL_ENGINE_STATE_FILE; without it nothing is kept across restarts)

Log filter: RUST_LOG (default info,kassandra=off); logs go to stderr.";

#[derive(Debug)]
struct Options {
    listen: SocketAddr,
    state_file: Option<PathBuf>,
}

/// Flags win over the environment, which wins over the defaults.
fn parse_options(mut args: impl Iterator<Item = String>) -> Result<Option<Options>, String> {
    let mut listen = std::env::var("CQL_ENGINE_LISTEN").ok();
    let mut state_file = std::env::var_os("CQL_ENGINE_STATE_FILE").map(PathBuf::from);

    while let Some(arg) = args.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((flag, value)) if flag.starts_with("--") => (flag.to_owned(), Some(value.into())),
            _ => (arg, None),
        };
        let mut value = |name: &str| {
            inline
                .clone()
                .or_else(|| args.next())
                .ok_or_else(|| format!("{name} needs a value"))
        };
        match flag.as_str() {
            "--listen" => listen = Some(value("--listen")?),
            "--state-file" => state_file = Some(PathBuf::from(value("--state-file")?)),
            "-h" | "--help" => return Ok(None),
            other => return Err(format!("unknown argument `{other}`")),
        }
    }

    let listen = listen.unwrap_or_else(|| DEFAULT_LISTEN.to_owned());
    let listen = listen.parse().map_err(|e| {
        format!("invalid listen address `{listen}`: {e} (expected e.g. 127.0.0.1:9042)")
    })?;
    let state_file = state_file.filter(|path| !path.as_os_str().is_empty());
    Ok(Some(Options { listen, state_file }))
}

#[tokio::main]
async fn main() -> ExitCode {
    let options = match parse_options(std::env::args().skip(1)) {
        Ok(Some(options)) => options,
        Ok(None) => {
            // `cql-engine --help | head` must not panic on the closed pipe.
            let _ = writeln!(io::stdout(), "{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(message) => {
            eprintln!("cql-engine: {message}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(DEFAULT_LOG)),
        )
        .with_writer(io::stderr)
        .with_ansi(io::stderr().is_terminal())
        .init();

    match run(options).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("cql-engine: {message}");
            ExitCode::FAILURE
        }
    }
}

async fn run(options: Options) -> Result<(), String> {
    let engine = match &options.state_file {
        Some(path) => load(path)?,
        None => CqlEngine::new(),
    };

    // Installed before the ready line, so a supervisor that signals right after it is heard.
    let mut terminate =
        signal(SignalKind::terminate()).map_err(|e| format!("cannot handle SIGTERM: {e}"))?;
    let mut interrupt =
        signal(SignalKind::interrupt()).map_err(|e| format!("cannot handle SIGINT: {e}"))?;

    let running = engine
        .start(options.listen)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", options.listen))?;
    let mut stdout = io::stdout().lock();
    // Tests and scripts wait for this exact line (and read the port from it).
    writeln!(stdout, "cql-engine listening on {}", running.local_addr())
        .and_then(|()| stdout.flush())
        .map_err(|e| format!("cannot write to stdout: {e}"))?;
    drop(stdout);

    tokio::select! {
        _ = terminate.recv() => tracing::info!("SIGTERM received, stopping"),
        _ = interrupt.recv() => tracing::info!("SIGINT received, stopping"),
    }
    // Stop serving first, so nothing changes after the snapshot is taken.
    let engine = running.engine().clone();
    running.shutdown().await;

    if let Some(path) = &options.state_file {
        save(&engine, path)?;
        tracing::info!(path = %path.display(), "state saved");
    }
    Ok(())
}

fn load(path: &Path) -> Result<CqlEngine, String> {
    match std::fs::read(path) {
        Ok(state) => {
            let engine = CqlEngine::from_state(&state)
                .map_err(|e| format!("cannot load state file {}: {e}", path.display()))?;
            tracing::info!(path = %path.display(), bytes = state.len(), "state loaded");
            Ok(engine)
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            tracing::info!(path = %path.display(), "no state file yet, starting empty");
            Ok(CqlEngine::new())
        }
        // Starting empty here would overwrite the data on the next shutdown.
        Err(e) => Err(format!("cannot read state file {}: {e}", path.display())),
    }
}

fn save(engine: &CqlEngine, path: &Path) -> Result<(), String> {
    // kassandra unwraps its RON serialisation; a panic must not lose the old snapshot as well.
    let state = catch_unwind(AssertUnwindSafe(|| engine.save_state()))
        .map_err(|_| "serialising the state panicked; the state file is unchanged".to_owned())?;
    write_atomically(path, &state)
        .map_err(|e| format!("cannot write state file {}: {e}", path.display()))
}

/// Writes a temp file beside `path` and renames it over `path`: readers (and the next start) see
/// either the old snapshot or the new one, never a torn one.
fn write_atomically(path: &Path, data: &[u8]) -> io::Result<()> {
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    std::fs::create_dir_all(dir)?;
    let file_name = path
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "the path names no file"))?;
    let mut temp_name = std::ffi::OsString::from(".");
    temp_name.push(file_name);
    temp_name.push(format!(".tmp-{}", std::process::id()));
    let temp = dir.join(temp_name);

    let result = (|| {
        let mut file = std::fs::File::create(&temp)?;
        file.write_all(data)?;
        file.sync_all()?;
        std::fs::rename(&temp, path)?;
        // Make the rename itself durable; not every filesystem allows syncing a directory.
        if let Ok(dir) = std::fs::File::open(dir) {
            let _ = dir.sync_all();
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&temp);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Option<Options>, String> {
        parse_options(args.iter().map(|a| (*a).to_owned()))
    }

    #[test]
    fn flags_in_both_spellings() {
        let options = parse(&["--listen", "127.0.0.1:0", "--state-file=/tmp/x.ron"])
            .unwrap()
            .unwrap();
        assert_eq!(options.listen, "127.0.0.1:0".parse().unwrap());
        assert_eq!(options.state_file, Some(PathBuf::from("/tmp/x.ron")));
    }

    #[test]
    fn bad_arguments_are_errors() {
        assert!(parse(&["--listen", "nowhere"]).is_err());
        assert!(parse(&["--listen"]).is_err());
        assert!(parse(&["--bogus"]).is_err());
        assert!(parse(&["--help"]).unwrap().is_none());
    }
}
