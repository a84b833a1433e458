//! The controller's use cases: one reconcile with its metrics, notifications
//! and summary line, the loop (interval, webhooks, shutdown) and `serve` (the
//! loop plus the HTTP listener and its dashboard, whose status is computed
//! after each reconcile), through adapters built once.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime};

use secrecy::SecretString;

use super::Session;
use super::dashboard::{Dashboard, StatusCache};
use crate::controller::metrics::Metrics;
use crate::controller::server::{self, AppState};
use crate::controller::state::{ControllerState, Recording};
use crate::controller::{self, Backoff, Outcome, Shutdown, Trigger};
use crate::docker::LazyEngine;
use crate::forge::github::GitHub;
use crate::notify::Notifications;
use crate::progress::{LogProgress, Progress};
use crate::registry::RegistryClient;
use crate::release::{Executor, ReleaseError};

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
    progress: Arc<dyn Progress>,
    github: Option<GitHub>,
    dockerhub: Option<crate::forge::dockerhub::DockerHub>,
    signer: Option<crate::sign::Signer>,
    pub metrics: Arc<Metrics>,
    /// Tags that failed, and when the loop tries them again.
    backoff: tokio::sync::Mutex<Backoff>,
    /// The session's webhooks, counted in the metrics.
    notify: Notifications,
    /// The last reconcile, the run under way, the last webhook: for the dashboard.
    pub state: Arc<ControllerState>,
    /// The status as of the last reconcile, for the dashboard.
    pub status: Arc<StatusCache>,
}

impl Controller {
    /// The controller over `session`'s adapters; notifications as the session set them up.
    pub fn new(mut session: Session) -> Result<Self, ReleaseError> {
        let creds = session.credentials()?;
        let registry = session.registry(creds.clone(), None);
        let state = Arc::new(ControllerState::default());
        // A controller's output is a log: per-image progress as plain lines, also kept for the dashboard.
        let progress: Arc<dyn Progress> =
            Arc::new(Recording { inner: Arc::new(LogProgress::default()), state: state.clone() });
        let config = &session.config;
        let dockerhub = session.dockerhub(creds.as_ref());
        // An unattended controller finds a bad key at start, not at its first release.
        let signer = session.config.sign.as_ref().map(crate::sign::Signer::load).transpose()?;
        let builder = LazyEngine::new(&config.registry, creds, progress.clone(), config.build.builder)
            .with_timeouts(config.timeouts);
        let github = session.github()?;
        let metrics = Arc::new(Metrics::new());
        let notify = std::mem::take(&mut session.notify).with_counters(metrics.notifications.clone());
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
            notify,
            state,
            status: Default::default(),
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
            signer: self.signer.as_ref().map(|s| s as &dyn crate::sign::ArtifactSigner),
        };
        self.registry.forget_listings();
        let before = self.registry.request_count();
        let (started, at) = (Instant::now(), SystemTime::now());
        self.state.run_started(requested);
        let mut backoff = self.backoff.lock().await;
        let result = controller::reconcile_once(&executor, requested, &mut backoff, shutdown, &self.notify).await;
        let took = started.elapsed();
        self.state.run_finished(at, took, &result);
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

    /// `relctl reconcile --once`: one reconcile, then the notifications it
    /// started are delivered (within their retry bound) before it returns.
    pub async fn once(&self) -> Result<Outcome, ReleaseError> {
        let result = self.reconcile(&BTreeSet::new(), None).await;
        self.notify.flush().await;
        result
    }

    /// Reconciles at start, every `interval` and on every `trigger` request, one
    /// run at a time, until `shutdown`. Failures are logged and counted; the loop goes on.
    pub async fn run_until_shutdown(&self, interval: Option<Duration>, trigger: &Trigger, shutdown: Shutdown) {
        self.run(interval, trigger, shutdown, false).await;
    }

    /// [`Controller::run_until_shutdown`]; with `keep_status`, the status is
    /// computed after each reconcile for the dashboard. Notifications still
    /// under way at shutdown are given their retry bound to finish.
    async fn run(&self, interval: Option<Duration>, trigger: &Trigger, shutdown: Shutdown, keep_status: bool) {
        let sd = shutdown.clone();
        controller::run_loop(interval, trigger, shutdown, |tags| {
            let sd = sd.clone();
            async move {
                let _ = self.reconcile(&tags, Some(&sd)).await;
                if keep_status && !sd.is_set() {
                    self.refresh_status().await;
                }
            }
        })
        .await;
        self.notify.flush().await;
    }

    /// Computes the status with the status use case (on the remote refs the
    /// reconcile just fetched; the registry listed afresh) and keeps it for
    /// the dashboard, with each release's commit subject.
    async fn refresh_status(&self) {
        let config = &self.session.config;
        self.registry.forget_listings();
        let observed = super::status::observe(config, &self.session.git, &self.registry).await;
        match observed {
            Ok(obs) => {
                let mut status = super::status::derive(config, &obs);
                for row in &mut status.releases {
                    row.subject = self.session.git.subject(&row.commit);
                }
                self.status.set(status);
            }
            Err(e) => {
                let error = crate::release::error_chain(&e);
                tracing::warn!("cannot refresh the dashboard's status: {error}");
                self.status.failed(error, e.hint());
            }
        }
    }

    /// `relctl serve`: the loop, and `/webhook` (when a `secret` is given),
    /// `/healthz`, `/metrics` and the dashboard (`/`, `/api/status`; asking
    /// for `dashboard_token` when given) on `listen`, until SIGINT or SIGTERM.
    pub async fn serve(
        &self,
        listen: SocketAddr,
        secret: Option<Arc<SecretString>>,
        interval: Option<Duration>,
        dashboard_token: Option<Arc<SecretString>>,
    ) -> Result<(), ServeError> {
        let listener =
            tokio::net::TcpListener::bind(listen).await.map_err(|source| ServeError::Listen { listen, source })?;
        let webhook = secret.is_some();
        tracing::info!(
            %listen,
            webhook,
            dashboard_token = dashboard_token.is_some(),
            "serving /, /api/status, /healthz, /metrics{}",
            if webhook { " and /webhook" } else { "" }
        );
        let shutdown = Shutdown::on_signals();
        let trigger = Arc::new(Trigger::default());
        let alive = Arc::new(AtomicBool::new(true));
        let state = AppState {
            secret,
            tag_prefix: self.session.config.git.tag_prefix.clone(),
            trigger: trigger.clone(),
            metrics: self.metrics.clone(),
            alive: alive.clone(),
            controller: self.state.clone(),
        };
        let dashboard = Arc::new(Dashboard {
            project: self.session.config.project.clone(),
            registry: self.session.config.registry.clone(),
            controller: self.state.clone(),
            trigger: trigger.clone(),
            status: self.status.clone(),
            token: dashboard_token,
            interval,
        });
        let http = tokio::spawn(server::serve(listener, state, dashboard.routes(), shutdown.clone()));
        self.run(interval, &trigger, shutdown, true).await;
        alive.store(false, Ordering::Relaxed);
        match http.await {
            Ok(result) => result.map_err(ServeError::Http),
            Err(e) => Err(ServeError::Http(std::io::Error::other(e))),
        }
    }
}
