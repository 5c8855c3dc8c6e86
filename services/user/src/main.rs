use anyhow::Context;
use user::startup::Application;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let settings = user::config::load().context("cannot start the user service")?;
    let _telemetry = shared::telemetry::init("user", &settings.telemetry)
        .map_err(anyhow::Error::msg)
        .context("cannot start telemetry")?;
    let app = Application::build(settings)
        .await
        .context("cannot start the user service")?;
    tracing::info!(port = app.port(), "user service listening");
    app.run_until_stopped().await?;
    tracing::info!("user service stopped");
    Ok(())
}
