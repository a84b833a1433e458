//! `relctl plan` and `relctl release`: load config and repository, observe,
//! plan, and (for release) execute.

use std::path::PathBuf;

use anyhow::Context as _;
use relctl::config::{self, Config, ConfigError};
use relctl::git::{Git2Repo, GitError, GitRepo};
use relctl::plan::{self, PlanOptions};
use relctl::registry::{RegistryClient, credentials};
use relctl::release::ReleaseError;
use relctl::release::observe::{self, RegistryFailure};
use relctl::version::ReleaseVersion;

use super::{Cli, Command, Global, output};

pub(super) struct Ctx {
    pub config: Config,
    pub git: Git2Repo,
}

pub(super) fn load(global: &Global) -> anyhow::Result<Ctx> {
    let cwd = std::env::current_dir().context("cannot read the current directory")?;
    let repo = global.repo.clone().map(|r| cwd.join(r)).unwrap_or_else(|| cwd.clone());
    let path: PathBuf = match &global.config {
        Some(p) => cwd.join(p),
        None => repo.join("release.yaml"),
    };
    let config = config::load(&path)?;
    relctl::git::set_network_timeouts(config.timeouts.git);
    let git = Git2Repo::open(&repo, &config.git.remote, &config.git.branch)?;
    Ok(Ctx { config, git })
}

pub async fn run(cli: Cli) -> anyhow::Result<()> {
    match &cli.command {
        Command::Plan { tag } => plan_cmd(&cli.global, tag.as_deref()).await,
        Command::Release(args) => super::release::release_cmd(&cli.global, args).await,
        Command::Verify { tag } => super::install::verify_cmd(&cli.global, tag.as_deref()).await,
        Command::Pin { tag, env, pull } => super::install::pin_cmd(&cli.global, tag.as_deref(), env, *pull).await,
        Command::Export { tag, out } => super::install::export_cmd(&cli.global, tag, out).await,
        Command::Import { dir } => super::install::import_cmd(&cli.global, dir).await,
        Command::Init { force } => super::install::init_cmd(&cli.global, *force),
        Command::Schema => {
            super::install::schema_cmd();
            Ok(())
        }
        Command::Completions { shell } => {
            super::install::completions_cmd(*shell);
            Ok(())
        }
        Command::Man => super::install::man_cmd(),
        Command::Matrix { tag } => super::release::matrix_cmd(&cli.global, tag).await,
        Command::Finalize { tag, dry_run } => super::release::finalize_cmd(&cli.global, tag, *dry_run).await,
        Command::Reconcile { interval, .. } => super::controller::reconcile_cmd(&cli.global, *interval).await,
        Command::Serve { listen, interval, no_webhook } => {
            super::controller::serve_cmd(&cli.global, *listen, *interval, *no_webhook).await
        }
    }
}

/// The tag's version and commit; `None` tag means the highest semver tag.
pub(super) fn resolve(ctx: &Ctx, tag: Option<&str>) -> Result<(ReleaseVersion, String), ReleaseError> {
    let tags = observe::release_tags(&ctx.config, &ctx.git, false)?;
    match tag {
        Some(t) => {
            let target = ReleaseVersion::parse(t, &ctx.config.git.tag_prefix)?;
            plan::image_tags(&ctx.config, &target)?;
            let commit = tags.iter().find(|(v, _)| v.raw == t).map(|(_, c)| c.clone());
            let commit = commit
                .ok_or_else(|| GitError::TagNotFound { tag: t.to_string(), remote: ctx.config.git.remote.clone() })?;
            Ok((target, commit))
        }
        None => match tags.last() {
            Some((v, c)) => Ok((v.clone(), c.clone())),
            None => {
                // No release yet: show what tagging HEAD with VERSION's version (or v0.1.0) would do.
                let head = ctx.git.head_commit()?;
                let from_file = ctx
                    .git
                    .file_at(&head, &ctx.config.version_file)?
                    .map(|b| String::from_utf8_lossy(&b).trim().to_string());
                let prefix = &ctx.config.git.tag_prefix;
                let target = from_file
                    .and_then(|v| ReleaseVersion::parse(&v, prefix).ok())
                    .unwrap_or_else(|| ReleaseVersion::parse(&format!("{prefix}0.1.0"), prefix).expect("valid"));
                tracing::warn!("no release tags yet: planning {} at HEAD as if it were tagged", target.raw);
                Ok((target, head))
            }
        },
    }
}

pub(super) async fn plan_cmd(global: &Global, tag: Option<&str>) -> anyhow::Result<()> {
    let ctx = load(global)?;
    if let Err(e) = ctx.git.fetch() {
        tracing::warn!("{e}; planning from the local refs");
    }
    let (target, commit) = resolve(&ctx, tag)?;
    let creds = credentials::load(&ctx.config.registry).map_err(ReleaseError::from)?;
    let registry = RegistryClient::new(&ctx.config.registry, creds).with_timeout(ctx.config.timeouts.request);
    let observed =
        observe::observe(&ctx.config, &ctx.git, &registry, &target, &commit, RegistryFailure::Tolerate, false).await?;
    let plan = plan::plan(&ctx.config, &observed, &PlanOptions::default()).map_err(ReleaseError::from)?;
    output::plan(&plan, global.json);
    Ok(())
}

/// Exit code and hint for an error: 2 for bad input, 1 otherwise.
pub fn classify(err: &anyhow::Error) -> (u8, Option<String>) {
    for cause in err.chain() {
        if let Some(found) = super::install::classify(cause) {
            return found;
        }
        if let Some(e) = cause.downcast_ref::<ConfigError>() {
            return (2, Some(e.hint()));
        }
        if let Some(e) = cause.downcast_ref::<ReleaseError>() {
            return (e.exit_code(), Some(e.hint()));
        }
        if let Some(e) = cause.downcast_ref::<GitError>() {
            return (e.exit_code(), Some(e.hint()));
        }
        if cause.downcast_ref::<super::controller::MissingSecret>().is_some() {
            return (
                2,
                Some("set RELCTL_WEBHOOK_SECRET to the webhook's secret in GitHub, or pass --no-webhook".into()),
            );
        }
        if cause.downcast_ref::<super::controller::NotConverged>().is_some() {
            return (1, Some("fix the named tags (see the log); the other tags were converged".into()));
        }
    }
    (1, None)
}
