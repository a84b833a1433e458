//! `relctl reconcile` and `relctl serve`: the adapters, the reconcile loop,
//! signals, and the HTTP server wired together.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use relctl::controller::metrics::Metrics;
use relctl::controller::server::{self, AppState};
use relctl::controller::{self, Backoff, Outcome, Shutdown, TagResult, Trigger};
use relctl::docker::LazyEngine;
use relctl::forge::github::GitHub;
use relctl::progress::LogProgress;
use relctl::registry::{RegistryClient, credentials};
use relctl::release::{Executor, ReleaseError};
use secrecy::SecretString;

use super::Global;
use super::commands::{Ctx, load};

/// Raised when a reconcile could not converge some tags (exit 1); the others were.
#[derive(Debug, thiserror::Error)]
#[error("reconcile could not converge {} of {in_scope} release tags: {}", .failed.len(), .failed.join(", "))]
pub struct NotConverged {
    pub failed: Vec<String>,
    pub in_scope: usize,
}

struct Controller {
    ctx: Ctx,
    registry: RegistryClient,
    builder: LazyEngine,
    progress: Arc<LogProgress>,
    github: Option<GitHub>,
    metrics: Arc<Metrics>,
    /// Tags that failed, and when the loop tries them again.
    backoff: tokio::sync::Mutex<Backoff>,
}

impl Controller {
    fn new(global: &Global) -> anyhow::Result<Self> {
        let ctx = load(global)?;
        let creds = credentials::load(&ctx.config.registry).map_err(ReleaseError::from)?;
        let registry =
            RegistryClient::new(&ctx.config.registry, creds.clone()).with_timeout(ctx.config.timeouts.request);
        // A controller's output is a log: per-image progress as plain lines.
        let progress = Arc::new(LogProgress::default());
        let builder = LazyEngine::new(&ctx.config.registry, creds, progress.clone(), ctx.config.build.builder)
            .with_timeouts(ctx.config.timeouts);
        let github = ctx.github()?;
        let metrics = Arc::new(Metrics::new());
        Ok(Self { ctx, registry, builder, progress, github, metrics, backoff: Default::default() })
    }

    /// One reconcile with metrics and a summary line.
    async fn run(&self, requested: &BTreeSet<String>, shutdown: Option<&Shutdown>) -> Result<Outcome, ReleaseError> {
        let executor = Executor {
            config: &self.ctx.config,
            git: &self.ctx.git,
            builder: &self.builder,
            registry: &self.registry,
            progress: &*self.progress,
            github: self.github.as_ref(),
        };
        self.registry.forget_listings();
        let before = self.registry.request_count();
        let started = Instant::now();
        let mut backoff = self.backoff.lock().await;
        let result = controller::reconcile_once(&executor, requested, &mut backoff, shutdown).await;
        let took = started.elapsed();
        self.metrics.registry_requests(self.registry.request_count());
        match &result {
            Ok(o) => {
                self.metrics.reconciled(o.failed().is_empty(), took, o.released().len() as u64, o.builds(), o.pushes());
                for t in &o.tags {
                    self.metrics.tag_outcome(&t.result);
                }
                tracing::info!(
                    tags = o.in_scope.len(),
                    released = o.released().len(),
                    failed = o.failed().len(),
                    registry_requests = self.registry.request_count() - before,
                    ms = took.as_millis() as u64,
                    "reconciled"
                );
            }
            Err(e) => {
                self.metrics.reconciled(false, took, 0, 0, 0);
                tracing::error!("reconcile failed: {e}");
            }
        }
        result
    }

    /// Reconciles at start, every `interval` and on every `trigger` request, one
    /// run at a time, until `shutdown`. Failures are logged and counted; the loop goes on.
    async fn run_until_shutdown(&self, interval: Option<Duration>, trigger: &Trigger, shutdown: Shutdown) {
        let sd = shutdown.clone();
        controller::run_loop(interval, trigger, shutdown, |tags| {
            let sd = sd.clone();
            async move {
                let _ = self.run(&tags, Some(&sd)).await;
            }
        })
        .await;
    }
}

pub async fn reconcile_cmd(global: &Global, interval: Option<Duration>) -> anyhow::Result<()> {
    let c = Controller::new(global)?;
    let Some(interval) = interval else {
        let outcome = c.run(&BTreeSet::new(), None).await?;
        print_outcome(&outcome, global.json);
        let failed: Vec<String> = outcome.failed().iter().map(|t| t.tag.clone()).collect();
        if !failed.is_empty() {
            return Err(NotConverged { failed, in_scope: outcome.in_scope.len() }.into());
        }
        return Ok(());
    };
    c.run_until_shutdown(Some(interval), &Trigger::default(), Shutdown::on_signals()).await;
    Ok(())
}

pub async fn serve_cmd(
    global: &Global,
    listen: SocketAddr,
    interval: Duration,
    no_webhook: bool,
) -> anyhow::Result<()> {
    let interval = super::serve_interval(interval);
    let secret = match (std::env::var("RELCTL_WEBHOOK_SECRET").ok().filter(|s| !s.is_empty()), no_webhook) {
        (_, true) => None,
        (Some(s), false) => Some(Arc::new(SecretString::from(s))),
        (None, false) => return Err(MissingSecret.into()),
    };
    let c = Controller::new(global)?;
    let listener = tokio::net::TcpListener::bind(listen).await.with_context(|| format!("cannot listen on {listen}"))?;
    tracing::info!(%listen, webhook = secret.is_some(), "serving /healthz, /metrics{}", if secret.is_some() { " and /webhook" } else { "" });
    let shutdown = Shutdown::on_signals();
    let trigger = Arc::new(Trigger::default());
    let alive = Arc::new(AtomicBool::new(true));
    let state = AppState {
        secret,
        tag_prefix: c.ctx.config.git.tag_prefix.clone(),
        trigger: trigger.clone(),
        metrics: c.metrics.clone(),
        alive: alive.clone(),
    };
    let http = tokio::spawn(server::serve(listener, state, shutdown.clone()));
    c.run_until_shutdown(interval, &trigger, shutdown).await;
    alive.store(false, Ordering::Relaxed);
    http.await.context("the HTTP server task failed")?.context("the HTTP server failed")?;
    Ok(())
}

/// `relctl serve` without a webhook secret (exit 2).
#[derive(Debug, thiserror::Error)]
#[error("RELCTL_WEBHOOK_SECRET is not set, so webhooks could not be verified")]
pub struct MissingSecret;

fn print_outcome(o: &Outcome, json: bool) {
    if json {
        let failed: Vec<_> = o
            .tags
            .iter()
            .filter_map(|t| match &t.result {
                TagResult::Failed { error, hint, .. } => {
                    Some(serde_json::json!({"tag": t.tag, "error": error, "hint": hint}))
                }
                TagResult::BackingOff { error, .. } => Some(serde_json::json!({"tag": t.tag, "error": error})),
                _ => None,
            })
            .collect();
        let v = serde_json::json!({
            "in_scope": o.in_scope, "tags": o.tags, "released": o.released(), "builds": o.builds(),
            "pushes": o.pushes(), "failed": failed, "interrupted": o.interrupted,
        });
        println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
        return;
    }
    let (released, failed) = (o.released(), o.failed());
    if released.is_empty() && failed.is_empty() {
        println!("nothing to do: {} release tags in scope are converged", o.in_scope.len());
        return;
    }
    println!("reconciled {} release tags in scope; released: {}", o.in_scope.len(), released.join(", "));
    for t in failed {
        match &t.result {
            TagResult::Failed { error, hint, .. } => println!("failed: {}: {error}\n  hint: {hint}", t.tag),
            TagResult::BackingOff { error, retry_in_secs } => {
                println!("waiting: {}: failed before ({error}); tried again in {retry_in_secs}s", t.tag)
            }
            _ => {}
        }
    }
}
