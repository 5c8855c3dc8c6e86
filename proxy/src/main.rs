use anyhow::Context;
use proxy::startup::Application;

// Many small allocations per request (headers, buffers, futures); mimalloc serves them faster
// than glibc's malloc. Its 2.x series (the crate's `v2` feature): the 3.x series the crate builds
// by default took 2 % more instructions per proxied request (loadtest/results/proxy.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> anyhow::Result<()> {
    let settings = proxy::config::load()
        .map_err(anyhow::Error::msg)
        .context("cannot start the proxy")?;
    // The acceptor, the probes and the signal handler need little; requests are served by
    // `server.workers` threads of their own (see `proxy::server`).
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the runtime")?
        .block_on(run(settings))
}

async fn run(settings: proxy::config::Settings) -> anyhow::Result<()> {
    let _telemetry = shared::telemetry::init("proxy", &settings.telemetry)
        .map_err(anyhow::Error::msg)
        .context("cannot start telemetry")?;
    let app = Application::build(settings)
        .await
        .context("cannot start the proxy")?;
    tracing::info!(port = app.port(), "proxy listening");
    app.run_until_stopped().await;
    tracing::info!("proxy stopped");
    Ok(())
}
