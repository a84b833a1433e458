//! `relctl release`, `relctl matrix` and `relctl finalize`: observe, plan and
//! execute one tag, with GitHub (Release, API commit) and GitHub Actions
//! (outputs, step summary, log groups) when the environment provides them.

use std::collections::BTreeSet;
use std::sync::Arc;

use relctl::forge::ForgeError;
use relctl::forge::actions;
use relctl::forge::github::GitHub;
use relctl::git::GitRepo;
use relctl::plan::{self, Plan, PlanOptions};
use relctl::registry::{RegistryClient, credentials};
use relctl::release::observe::{self, RegistryFailure};
use relctl::release::{Executor, ReleaseError, Report};
use relctl::version::ReleaseVersion;

use anyhow::Context as _;

use super::commands::{Ctx, load, resolve};
use super::{Global, ReleaseArgs, output};
use relctl::config::CommitVia;
use relctl::docker::LazyEngine;

/// The GitHub client when GITHUB_TOKEN is set. A repository that cannot be
/// told is an error only when VERSION must be written through the API.
pub(super) fn github(ctx: &Ctx) -> Result<Option<GitHub>, ReleaseError> {
    let url = ctx.git.source_url().unwrap_or_default();
    match GitHub::from_env(&url) {
        Ok(gh) => Ok(gh),
        Err(e @ ForgeError::UnknownRepository { .. }) if ctx.config.commit.via == CommitVia::Git => {
            tracing::warn!("no GitHub Release: {e}");
            Ok(None)
        }
        Err(e) => Err(e.into()),
    }
}

/// Builds the registry's HTTP client (its TLS setup takes tens of ms) on a
/// blocking thread while the command opens and fetches the repository.
fn http_client_ahead() -> tokio::task::JoinHandle<reqwest::Client> {
    tokio::task::spawn_blocking(relctl::registry::client::http_client)
}

/// Observes and plans `tag` with `opts`; `http` from [`http_client_ahead`].
async fn prepare(
    ctx: &Ctx,
    tag: &str,
    opts: &PlanOptions,
    http: tokio::task::JoinHandle<reqwest::Client>,
) -> anyhow::Result<(ReleaseVersion, Plan, RegistryClient, Option<relctl::registry::Credentials>)> {
    // Bad input fails before any I/O.
    ReleaseVersion::parse(tag, &ctx.config.git.tag_prefix).map_err(ReleaseError::from)?;
    ctx.git.fetch().map_err(ReleaseError::from)?;
    let (target, commit) = resolve(ctx, Some(tag))?;
    let creds = credentials::load(&ctx.config.registry).map_err(ReleaseError::from)?;
    let http = http.await.context("the HTTP client's setup stopped")?;
    let registry =
        RegistryClient::with_http(&ctx.config.registry, creds.clone(), http).with_timeout(ctx.config.timeouts.request);
    let staged = opts.stage_only || opts.finalize;
    let observed =
        observe::observe(&ctx.config, &ctx.git, &registry, &target, &commit, RegistryFailure::Fatal, staged).await?;
    let plan = plan::plan(&ctx.config, &observed, opts).map_err(ReleaseError::from)?;
    Ok((target, plan, registry, creds))
}

pub async fn release_cmd(global: &Global, args: &ReleaseArgs) -> anyhow::Result<()> {
    let opts = PlanOptions {
        only: (!args.only.is_empty()).then(|| args.only.iter().map(|s| s.trim().to_string()).collect::<BTreeSet<_>>()),
        force: args.force,
        no_cache: args.no_cache,
        stage_only: args.stage,
        finalize: false,
    };
    run(global, &args.tag, &opts, args.dry_run).await
}

pub async fn finalize_cmd(global: &Global, tag: &str, dry_run: bool) -> anyhow::Result<()> {
    run(global, tag, &PlanOptions { finalize: true, ..Default::default() }, dry_run).await
}

async fn run(global: &Global, tag: &str, opts: &PlanOptions, dry_run: bool) -> anyhow::Result<()> {
    let http = http_client_ahead();
    let ctx = load(global)?;
    let (target, plan, registry, creds) = prepare(&ctx, tag, opts, http).await?;
    if dry_run {
        output::plan(&plan, global.json);
        return Ok(());
    }
    let github = if opts.stage_only { None } else { github(&ctx)? };
    let mut progress = super::progress::for_release(global.quiet);
    if actions::active() {
        progress = Arc::new(actions::Grouped::new(progress));
    }
    let builder = LazyEngine::new(&ctx.config.registry, creds, progress.clone(), ctx.config.build.builder)
        .with_timeouts(ctx.config.timeouts);
    let executor = Executor {
        config: &ctx.config,
        git: &ctx.git,
        builder: &builder,
        registry: &registry,
        progress: &*progress,
        github: github.as_ref(),
    };
    let report = executor.execute(&plan, &target).await?;
    tracing::debug!(requests = registry.request_count(), "registry requests");
    if plan.steps.is_empty() {
        output::plan(&plan, global.json);
    } else {
        output::report(&report, &plan, global.json);
    }
    if actions::active() && !opts.stage_only {
        write_actions_outputs(&ctx, &plan, &report)?;
    }
    Ok(())
}

/// GITHUB_OUTPUT and GITHUB_STEP_SUMMARY for a finished release.
fn write_actions_outputs(ctx: &Ctx, plan: &Plan, report: &Report) -> anyhow::Result<()> {
    let notes = report.notes(plan);
    let commit = report.version_commit.as_deref();
    actions::append_to("GITHUB_OUTPUT", &actions::output_text(&actions::release_outputs(&notes, commit)))
        .context("cannot write GITHUB_OUTPUT")?;
    actions::append_to("GITHUB_STEP_SUMMARY", &actions::summary(&notes, commit, &ctx.config.version_file))
        .context("cannot write GITHUB_STEP_SUMMARY")?;
    Ok(())
}

pub async fn matrix_cmd(global: &Global, tag: &str) -> anyhow::Result<()> {
    let http = http_client_ahead();
    let ctx = load(global)?;
    let (_, plan, _, _) = prepare(&ctx, tag, &PlanOptions::default(), http).await?;
    let matrix = plan::matrix::matrix(&plan);
    let json = serde_json::to_string(&matrix).expect("a matrix serializes");
    println!("{json}");
    if actions::active() {
        use anyhow::Context as _;
        let outputs = [("matrix".to_string(), json)];
        actions::append_to("GITHUB_OUTPUT", &actions::output_text(&outputs)).context("cannot write GITHUB_OUTPUT")?;
    }
    Ok(())
}
