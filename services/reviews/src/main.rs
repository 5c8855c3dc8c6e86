//! `reviews` serves the API; `reviews import <dir>` loads the legacy CSV files; `reviews generate
//! <dir>` writes a synthetic dataset in their formats.

use anyhow::Context;
use clap::{Parser, Subcommand};
use reviews::startup::Application;

#[derive(Parser)]
#[command(name = "reviews", version, about = "AudioStorm ratings and reviews")]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Serves the API (the default).
    Serve,
    /// Loads reviews.csv, reviews_photos.csv, characteristics.csv and characteristic_reviews.csv.
    Import(reviews::import::ImportArgs),
    /// Writes a synthetic dataset in the legacy files' formats.
    Generate(reviews::generate::GenerateArgs),
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => serve().await,
        Command::Import(args) => {
            let settings = reviews::config::load().context("cannot read the configuration")?;
            reviews::import::run(&settings, &args).await.map(|_| ())
        }
        Command::Generate(args) => reviews::generate::run(&args),
    }
}

async fn serve() -> anyhow::Result<()> {
    let settings = reviews::config::load().context("cannot start the reviews service")?;
    let _telemetry = shared::telemetry::init("reviews", &settings.telemetry)
        .map_err(anyhow::Error::msg)
        .context("cannot start telemetry")?;
    let app = Application::build(settings)
        .await
        .context("cannot start the reviews service")?;
    tracing::info!(port = app.port(), "reviews service listening");
    app.run_until_stopped().await?;
    tracing::info!("reviews service stopped");
    Ok(())
}
