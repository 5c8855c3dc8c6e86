//! `reviews generate <dir>`: a synthetic dataset in the legacy files' formats. (Being written.)

use std::path::PathBuf;

#[derive(Debug, Clone, clap::Args)]
pub struct GenerateArgs {
    /// Where to write the four CSV files.
    pub dir: PathBuf,
}

pub fn run(_args: &GenerateArgs) -> anyhow::Result<()> {
    anyhow::bail!("not yet")
}
