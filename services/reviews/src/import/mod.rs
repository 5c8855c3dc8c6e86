//! `reviews import <dir>`: loads the legacy dataset. (Being written.)

use std::path::PathBuf;

use crate::config::Settings;

#[derive(Debug, Clone, clap::Args)]
pub struct ImportArgs {
    /// The directory holding the four CSV files.
    pub dir: PathBuf,
}

/// What an import did.
#[derive(Debug, Default, Clone)]
pub struct Summary {}

pub async fn run(_settings: &Settings, _args: &ImportArgs) -> anyhow::Result<Summary> {
    anyhow::bail!("not yet")
}
