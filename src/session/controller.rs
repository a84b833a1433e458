//! The controller's use cases: one reconcile with its metrics and summary
//! line, the loop (interval, webhooks, shutdown) and `serve` (the loop plus
//! the HTTP listener), through adapters built once.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use secrecy::SecretString;

use crate::controller::metrics::Metrics;
use crate::controller::server::{self, AppState};
use crate::controller::{self, Backoff, Outcome, Shutdown, Trigger};
use crate::docker::LazyEngine;
use crate::forge::github::GitHub;
use crate::progress::LogProgress;
use crate::registry::RegistryClient;
use crate::release::{Executor, ReleaseError};

use super::Session;

/// Why `serve` stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("cannot listen on {listen}")]
    Listen {
        listen: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("the HTTP server failed")]
    Http(#[source] std::io::Error),
}

/// The adapters a controller reconciles through, built once.
pub struct Controller {
    pub session: Session,
    registry: RegistryClient,
    builder: LazyEngine,
    progress: Arc<LogProgress>,
    github: Option<GitHub>,
    dockerhub: Option<crate::forge::dockerhub::DockerHub>,
    signer: Option<crate::sign::Signer>,
    pub metrics: Arc<Metrics>,
    /// Tags that failed, and when the loop tries them again.
    backoff: tokio::sync::Mutex<Backoff>,
}

impl Controller {
    pub fn new(session: Session) -> Result<Self, ReleaseError> {
        let creds = session.credentials()?;
        let registry = session.registry(creds.clone(), None);
        // A controller's output is a log: per-image progress as plain lines.
        let progress = Arc::new(LogProgress::default());
        let config = &session.config;
        let dockerhub = session.dockerhub(creds.as_ref());
        // An unattended controller finds a bad key at start, not at its first release.
        let signer = session.config.sign.as_ref().map(crate::sign::Signer::load).transpose()?;
        let builder = LazyEngine::new(&config.registry, creds, progress.clone(), config.build.builder)
            .with_timeouts(config.timeouts);
        let github = session.github()?;
        let metrics = Arc::new(Metrics::new());
        Ok(Self {
            session,
            registry,
            builder,
            progress,
            github,
            dockerhub,
            signer,
            metrics,
            backoff: Default::default(),
        })
    }

    /// One reconcile with metrics and a summary line.
    pub async fn reconcile(
        &self,
        requested: &BTreeSet<String>,
        shutdown: Option<&Shutdown>,
    ) -> Result<Outcome, ReleaseError> {
        let executor = Executor {
            config: &self.session.config,
            git: &self.session.git,
            builder: &self.builder,
            registry: &self.registry,
            progress: &*self.progress,
            github: self.github.as_ref(),
            dockerhub: self.dockerhub.as_ref(),
            signer: self.signer.as_ref(),
        };
        self.registry.forget_listings();
        let before = self.registry.request_count();
        let started = Instant::now();
        let mut backoff = self.backoff.lock().await;
        let result = controller::reconcile_once(&executor, requested, &mut backoff, shutdown).await;
        let took = started.elapsed();
        self.metrics.registry_requests(self.registry.request_count());
        if let Some((limit, remaining)) = self.registry.rate_limit.get() {
            self.metrics.rate_limit(limit, remaining);
        }
        match &result {
            Ok(o) => {
                // A tag waiting out its backoff was counted when it failed; it does not fail every later run.
                let failed_now = o.tags.iter().any(|t| matches!(t.result, controller::TagResult::Failed { .. }));
                self.metrics.reconciled(!failed_now, took, o.released().len() as u64, o.builds(), o.pushes());
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
                tracing::error!("reconcile failed: {}", crate::release::error_chain(e));
            }
        }
        result
    }

    /// Reconciles at start, every `interval` and on every `trigger` request, one
    /// run at a time, until `shutdown`. Failures are logged and counted; the loop goes on.
    pub async fn run_until_shutdown(&self, interval: Option<Duration>, trigger: &Trigger, shutdown: Shutdown) {
        let sd = shutdown.clone();
        controller::run_loop(interval, trigger, shutdown, |tags| {
            let sd = sd.clone();
            async move {
                let _ = self.reconcile(&tags, Some(&sd)).await;
            }
        })
        .await;
    }

    /// `relctl serve`: the loop, and `/webhook` (when a `secret` is given),
    /// `/healthz` and `/metrics` on `listen`, until SIGINT or SIGTERM.
    pub async fn serve(
        &self,
        listen: SocketAddr,
        secret: Option<Arc<SecretString>>,
        interval: Option<Duration>,
    ) -> Result<(), ServeError> {
        let listener =
            tokio::net::TcpListener::bind(listen).await.map_err(|source| ServeError::Listen { listen, source })?;
        let webhook = secret.is_some();
        tracing::info!(%listen, webhook, "serving /healthz, /metrics{}", if webhook { " and /webhook" } else { "" });
        let shutdown = Shutdown::on_signals();
        let trigger = Arc::new(Trigger::default());
        let alive = Arc::new(AtomicBool::new(true));
        let state = AppState {
            secret,
            tag_prefix: self.session.config.git.tag_prefix.clone(),
            trigger: trigger.clone(),
            metrics: self.metrics.clone(),
            alive: alive.clone(),
        };
        let http = tokio::spawn(server::serve(listener, state, shutdown.clone()));
        self.run_until_shutdown(interval, &trigger, shutdown).await;
        alive.store(false, Ordering::Relaxed);
        match http.await {
            Ok(result) => result.map_err(ServeError::Http),
            Err(e) => Err(ServeError::Http(std::io::Error::other(e))),
        }
    }
}
