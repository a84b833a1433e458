//! Command-line interface: arguments (clap), and the commands that wire the
//! config, the adapters, the planner and the executor together.

mod commands;
mod controller;
mod install;
mod output;
pub mod progress;
mod release;
mod status;

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

pub use commands::{classify, run};

#[derive(Debug, Parser)]
#[command(
    name = "relctl",
    version = relctl::VERSION_LINE,
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
    /// Print the fan-out matrix for TAG: the images to build, in dependency layers (JSON)
    Matrix {
        /// The release tag, e.g. v1.2.0
        tag: String,
    },
    /// Fan-out: promote every image staged for TAG, move floating tags, commit VERSION; all or nothing
    Finalize {
        /// The release tag, e.g. v1.2.0
        tag: String,
        /// Print the plan and change nothing
        #[arg(long)]
        dry_run: bool,
    },
    /// Show every release tag in scope, the floating tags and VERSION, and what is not converged (exit 1); writes nothing
    Status,
    /// Converge every release tag in scope: missing images, floating tags, VERSION
    Reconcile {
        /// Run once and exit (the default)
        #[arg(long, conflicts_with = "interval")]
        once: bool,
        /// Run forever, every DURATION (e.g. 30s, 5m, 1h) with ±10 % jitter
        #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
        interval: Option<std::time::Duration>,
    },
    /// Check that every image of TAG (default: VERSION) is in the registry, built from TAG's commit
    Verify {
        /// The release tag (default: the tag in VERSION)
        tag: Option<String>,
        /// Also check each image's cosign signature with this public key (cosign.pub)
        #[arg(long, value_name = "FILE")]
        key: Option<std::path::PathBuf>,
        /// With --key: also check each image's signed SLSA provenance names TAG's commit
        #[arg(long, requires = "key")]
        provenance: bool,
    },
    /// Verify TAG, then set IMAGE_TAG in the env file; an older TAG is a rollback
    Pin {
        /// The release tag (default: the tag in VERSION)
        tag: Option<String>,
        /// The env file to edit, relative to the repository
        #[arg(long, default_value = "docker/.env", value_name = "FILE")]
        env: std::path::PathBuf,
        /// Also pull the images through the local Docker engine
        #[arg(long)]
        pull: bool,
        /// Refuse a release with any image not signed with this public key (cosign.pub)
        #[arg(long, value_name = "FILE")]
        key: Option<std::path::PathBuf>,
    },
    /// Write a new cosign key pair (cosign.key encrypted with $COSIGN_PASSWORD, cosign.pub) into DIR
    Keygen {
        /// Directory to write cosign.key and cosign.pub into
        #[arg(long, value_name = "DIR", default_value = ".")]
        out: std::path::PathBuf,
    },
    /// Write an offline bundle of TAG: one docker save tar per image, checksums, info, .env
    Export {
        /// The release tag
        tag: String,
        /// Directory to write the bundle into
        #[arg(long, value_name = "DIR")]
        out: std::path::PathBuf,
        /// The platform of multi-platform images to save, e.g. linux/arm64 (default: the engine's)
        #[arg(long, value_name = "PLATFORM")]
        platform: Option<String>,
    },
    /// Check an offline bundle's checksums, then load its images and check their ids
    Import {
        /// The directory `relctl export` wrote
        dir: std::path::PathBuf,
    },
    /// Write release.yaml (one image per Dockerfile found) and .github/workflows/release.yml
    Init {
        /// Overwrite files that exist
        #[arg(long)]
        force: bool,
        /// The registry host[:port] images go to (default: docker.io)
        #[arg(long, value_name = "HOST")]
        registry: Option<String>,
        /// The repository namespace (default: the GitHub owner of `origin`, else the directory's name)
        #[arg(long, value_name = "NS")]
        namespace: Option<String>,
    },
    /// Print the JSON Schema of release.yaml
    Schema,
    /// Print shell completions
    Completions {
        /// bash, zsh, fish, elvish or powershell
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff)
    Man,
    /// Run the controller: reconcile loop, GitHub webhook, dashboard (/ and /api/status), /healthz and /metrics
    Serve {
        /// Address to listen on
        #[arg(long, default_value = "127.0.0.1:8080")]
        listen: std::net::SocketAddr,
        /// Also reconcile every DURATION (±10 % jitter); 0 turns it off, leaving webhooks and the
        /// start-up run. On by default: GitHub sends no push event when more than three tags are pushed at once
        #[arg(long, value_name = "DURATION", default_value = "5m", value_parser = parse_interval_or_off)]
        interval: std::time::Duration,
        /// Serve no webhook endpoint (then RELCTL_WEBHOOK_SECRET is not needed)
        #[arg(long)]
        no_webhook: bool,
        /// Show the dashboard without RELCTL_DASHBOARD_TOKEN on a non-loopback address (anyone who reaches it may read it)
        #[arg(long)]
        public_dashboard: bool,
    },
}

/// `30s`, `5m`, `1h`, or plain seconds; at least 1 s.
fn parse_duration(s: &str) -> Result<std::time::Duration, String> {
    match relctl::config::parse_duration(s) {
        None => Err(format!("`{}` is not a duration; write e.g. 30s, 5m or 1h", s.trim())),
        Some(d) if d.is_zero() => Err("the interval must be at least 1s".into()),
        Some(d) => Ok(d),
    }
}

/// [`parse_duration`], or 0 for "off" (`serve --interval 0`).
fn parse_interval_or_off(s: &str) -> Result<std::time::Duration, String> {
    match relctl::config::parse_duration(s) {
        Some(d) if d.is_zero() => Ok(d),
        _ => parse_duration(s),
    }
}

/// `serve`'s interval: none when it is 0.
fn serve_interval(d: std::time::Duration) -> Option<std::time::Duration> {
    (!d.is_zero()).then_some(d)
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
    /// Fan-out: build and push under the staging tag only; `relctl finalize` publishes
    #[arg(long, conflicts_with = "force")]
    pub stage: bool,
    /// Fan-out on native runners: with --stage, build only this platform of each image (os/arch[/variant])
    #[arg(long, requires = "stage", value_name = "PLATFORM")]
    pub platform: Option<String>,
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn serve_interval_of(args: &[&str]) -> Result<Option<Duration>, clap::Error> {
        let cli = Cli::try_parse_from(["relctl", "serve"].iter().chain(args))?;
        match cli.command {
            Command::Serve { interval, .. } => Ok(serve_interval(interval)),
            other => panic!("parsed as {other:?}"),
        }
    }

    #[test]
    fn serve_reconciles_every_five_minutes_by_default_and_0_turns_it_off() {
        assert_eq!(serve_interval_of(&[]).unwrap(), Some(Duration::from_secs(300)));
        assert_eq!(serve_interval_of(&["--interval", "30s"]).unwrap(), Some(Duration::from_secs(30)));
        assert_eq!(serve_interval_of(&["--interval", "0"]).unwrap(), None);
        assert_eq!(serve_interval_of(&["--interval", "0s"]).unwrap(), None);
        assert!(serve_interval_of(&["--interval", "soon"]).is_err());
        // reconcile keeps refusing 0: an interval loop with no interval is a busy loop.
        let zero = Cli::try_parse_from(["relctl", "reconcile", "--interval", "0"]).unwrap_err();
        assert!(zero.to_string().contains("at least 1s"), "{zero}");
    }
}
