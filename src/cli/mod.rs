//! Command-line interface: arguments (clap), and the commands that wire the
//! config, the adapters, the planner and the executor together.

mod commands;
mod output;

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

pub use commands::{classify, run};

#[derive(Debug, Parser)]
#[command(
    name = "relctl",
    version,
    about = "GitOps release controller: a semver tag becomes pushed images and a VERSION commit"
)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args)]
pub struct Global {
    /// The git repository to release (default: the current directory)
    #[arg(long, global = true, value_name = "DIR")]
    pub repo: Option<PathBuf>,
    /// The release config (default: release.yaml in the repository)
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Print data as JSON on stdout
    #[arg(long, global = true)]
    pub json: bool,
    /// More log output (-v debug, -vv trace); RELCTL_LOG overrides
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Only warnings and errors in the log
    #[arg(short, long, global = true)]
    pub quiet: bool,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Show what releasing TAG would do, without side effects
    Plan {
        /// The release tag (default: the highest semver tag)
        tag: Option<String>,
    },
    /// Build, push and commit VERSION for TAG
    Release(ReleaseArgs),
}

#[derive(Debug, Args)]
pub struct ReleaseArgs {
    /// The release tag, e.g. v1.2.0
    pub tag: String,
    /// Print the plan and change nothing
    #[arg(long)]
    pub dry_run: bool,
    /// Release only these images (comma-separated)
    #[arg(long, value_delimiter = ',', value_name = "IMAGES")]
    pub only: Vec<String>,
    /// Build without the layer cache
    #[arg(long)]
    pub no_cache: bool,
    /// Rebuild and overwrite a version tag built from another commit
    #[arg(long)]
    pub force: bool,
}
