//! `relctl release`, `relctl matrix` and `relctl finalize`: arguments, one
//! use case of the session, and the output (GitHub Actions outputs and step
//! summary when running in an Action).

use std::collections::BTreeSet;
use std::sync::Arc;

use anyhow::Context as _;
use relctl::forge::actions;
use relctl::plan::{self, Plan, PlanOptions};
use relctl::release::Report;

use super::commands::{Ctx, load};
use super::{Global, ReleaseArgs, output};

/// Builds the registry's HTTP client (its TLS setup takes tens of ms) on a
/// blocking thread while the command opens and fetches the repository.
fn http_client_ahead() -> tokio::task::JoinHandle<reqwest::Client> {
    tokio::task::spawn_blocking(relctl::registry::client::http_client)
}

pub async fn release_cmd(global: &Global, args: &ReleaseArgs) -> anyhow::Result<()> {
    let opts = PlanOptions {
        only: (!args.only.is_empty()).then(|| args.only.iter().map(|s| s.trim().to_string()).collect::<BTreeSet<_>>()),
        force: args.force,
        no_cache: args.no_cache,
        stage_only: args.stage,
        finalize: false,
        platform: args.platform.clone(),
    };
    run(global, &args.tag, &opts, args.dry_run).await
}

pub async fn finalize_cmd(global: &Global, tag: &str, dry_run: bool) -> anyhow::Result<()> {
    run(global, tag, &PlanOptions { finalize: true, ..Default::default() }, dry_run).await
}

async fn run(global: &Global, tag: &str, opts: &PlanOptions, dry_run: bool) -> anyhow::Result<()> {
    let http = http_client_ahead();
    let session = if dry_run { load(global)? } else { load(global)?.notifying()? };
    let http = http.await.context("the HTTP client's setup stopped")?;
    let prepared = session.prepare(tag, opts, Some(http)).await?;
    if dry_run {
        output::plan(&prepared.plan, global.json);
        return Ok(());
    }
    let github = if opts.stage_only { None } else { session.github()? };
    let mut progress = super::progress::for_release(global.quiet);
    if actions::active() {
        progress = Arc::new(actions::Grouped::new(progress));
    }
    let report = session.execute(&prepared, progress, github.as_ref()).await?;
    let plan = &prepared.plan;
    if plan.steps.is_empty() {
        output::plan(plan, global.json);
    } else {
        output::report(&report, plan, global.json);
    }
    if actions::active() && !opts.stage_only {
        write_actions_outputs(&session, plan, &report)?;
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
    let session = load(global)?;
    let http = http.await.context("the HTTP client's setup stopped")?;
    let prepared = session.prepare(tag, &PlanOptions::default(), Some(http)).await?;
    let json = serde_json::to_string(&plan::matrix::matrix(&prepared.plan, &session.config.fanout))?;
    println!("{json}");
    if actions::active() {
        let outputs = [("matrix".to_string(), json)];
        actions::append_to("GITHUB_OUTPUT", &actions::output_text(&outputs)).context("cannot write GITHUB_OUTPUT")?;
    }
    Ok(())
}
