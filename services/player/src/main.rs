use anyhow::Context;
use player::startup::Application;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let settings = player::config::load()
        .map_err(anyhow::Error::msg)
        .context("cannot start the player service")?;
    let _telemetry = shared::telemetry::init("player", &settings.telemetry)
        .map_err(anyhow::Error::msg)
        .context("cannot start telemetry")?;
    let app = Application::build(settings)
        .await
        .context("cannot start the player service")?;
    tracing::info!(port = app.port(), "player service listening");
    app.run_until_stopped().await?;
    tracing::info!("player service stopped");
    Ok(())
}
