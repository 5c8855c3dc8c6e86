//! Builds the proxy: pools, routing table, upstream connections, static files, listener. `main` and the tests
//! both call [`Application::build`].

use std::collections::BTreeMap;
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use tokio::net::TcpListener;

use crate::app::App;
use crate::balancer::Pool;
use crate::config::{Settings, StaticSettings};
use crate::forward::Forwarder;
use crate::health::{self, Policy};
use crate::metrics::Metrics;
use crate::routes::RoutingTable;
use crate::static_files::StaticFiles;
use crate::timer::Timeouts;
use crate::upstream::Connections;
use crate::watchdog::Limits;

/// A bound, not yet serving proxy.
pub struct Application {
    listener: TcpListener,
    addr: SocketAddr,
    app: Arc<App>,
    settings: Settings,
}

impl Application {
    /// Validates the settings, reads the static files, binds (port 0 picks a free port).
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        settings.validate().map_err(anyhow::Error::msg)?;
        let metrics = Arc::new(Metrics::new().context("cannot register metrics")?);
        let pools = settings
            .pools
            .iter()
            .map(|(name, addrs)| Ok((name.clone(), Arc::new(Pool::new(name, &addrs.0, &metrics)?))))
            .collect::<Result<BTreeMap<_, _>, String>>()
            .map_err(anyhow::Error::msg)?;
        let routes =
            RoutingTable::new(&settings.routes, &pools, &metrics).map_err(anyhow::Error::msg)?;
        let static_files = load_static(&settings.static_files).await?;
        let policy = Policy::from_settings(&settings.health);
        let forwarder = Forwarder::new(&settings.upstream, settings.client.body_timeout(), policy);
        let app = Arc::new(App {
            routes,
            pools,
            forwarder,
            static_files,
            trust_forwarded: settings.forwarding.trust_forwarded_headers,
            limits: Limits {
                header: settings.client.header_timeout(),
                send: settings.client.send_timeout(),
            },
            internal: metrics.route("internal"),
            openapi: metrics.route("openapi"),
            static_route: metrics.route("static"),
            unmatched: metrics.route("unmatched"),
            metrics,
        });

        let listener = shared::http::listen(&settings.server).map_err(anyhow::Error::msg)?;
        listener.set_nonblocking(true)?;
        let listener = TcpListener::from_std(listener)?;
        let addr = listener.local_addr()?;
        Ok(Self {
            listener,
            addr,
            app,
            settings,
        })
    }

    /// The port the proxy listens on.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// The shared state (tests look at pools through it).
    pub fn app(&self) -> Arc<App> {
        self.app.clone()
    }

    /// Serves until SIGTERM/SIGINT, then drains in-flight requests.
    pub async fn run_until_stopped(self) {
        self.run_until(shared::shutdown::signal()).await;
    }

    /// Serves until `shutdown` resolves, then stops accepting and lets in-flight requests finish
    /// within `server.shutdown_timeout_secs`. Health probes run while serving.
    pub async fn run_until(self, shutdown: impl Future<Output = ()>) {
        let pools = self.app.pools.values().cloned().collect();
        // Probes get connections of their own so they never queue behind proxied traffic (their
        // timeout is the probe's own, not the response timeout these timeouts would bound).
        let checker = health::spawn_checker(
            pools,
            Connections::new(&self.settings.upstream, Timeouts::start()),
            &self.settings.health,
            Policy::from_settings(&self.settings.health),
        );
        let drain = Duration::from_secs(self.settings.server.shutdown_timeout_secs);
        let workers = match self.settings.server.workers {
            0 => std::thread::available_parallelism().map_or(1, usize::from),
            n => n,
        };
        crate::server::serve(self.listener, self.app, workers, shutdown, drain).await;
        checker.abort();
    }
}

async fn load_static(settings: &StaticSettings) -> anyhow::Result<StaticFiles> {
    let dir = PathBuf::from(&settings.dir);
    if !dir.is_dir() {
        tracing::warn!(
            dir = %dir.display(),
            "static_files.dir is not a directory: the web client is not served (404)"
        );
        return Ok(StaticFiles::empty());
    }
    let index = settings.index.clone();
    let started = std::time::Instant::now();
    let shown = dir.display().to_string();
    let files = tokio::task::spawn_blocking(move || StaticFiles::load(&dir, &index))
        .await
        .context("static file loading panicked")?
        .with_context(|| format!("cannot read static_files.dir `{shown}`"))?;
    if !files.has_index() {
        tracing::warn!(dir = %shown, index = %settings.index, "no index file: client-side routes answer 404");
    }
    tracing::info!(
        dir = %shown,
        files = files.len(),
        ms = started.elapsed().as_millis() as u64,
        "static files loaded"
    );
    Ok(files)
}
