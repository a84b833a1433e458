//! The release use cases: `release` (and its `--dry-run`), `finalize` and
//! `matrix`, each an observe-plan-execute through the session's adapters.

use crate::docker::LazyEngine;
use crate::forge::github::GitHub;
use crate::git::GitRepo;
use crate::notify::Event;
use crate::plan::{Plan, PlanOptions};
use crate::progress::ProgressSink;
use crate::registry::{Credentials, RegistryClient};
use crate::release::observe::RegistryFailure;
use crate::release::{Executor, ReleaseError, Report};
use crate::version::ReleaseVersion;

use super::Session;

/// A release observed and planned, with the adapters it will run through.
pub struct Prepared {
    pub target: ReleaseVersion,
    pub plan: Plan,
    pub registry: RegistryClient,
    creds: Option<Credentials>,
}

impl Session {
    /// Fetches, resolves `tag` and plans it with `opts`; `http` is the
    /// registry's HTTP client when one was built ahead (its TLS setup takes
    /// tens of ms, so callers build it on a blocking thread meanwhile).
    /// A failure once `tag` is known to be a release tag is notified (`failed`).
    pub async fn prepare(
        &self,
        tag: &str,
        opts: &PlanOptions,
        http: Option<reqwest::Client>,
    ) -> Result<Prepared, ReleaseError> {
        // Bad input fails before any I/O.
        let version = ReleaseVersion::parse(tag, &self.config.git.tag_prefix)?;
        let result = self.fetch_and_plan(tag, opts, http).await;
        if let Err(e) = &result {
            let commit = self.resolve(Some(tag)).ok().map(|(_, c)| c);
            self.notify_failed(tag, Some(&version), commit.as_deref(), e).await;
        }
        result
    }

    /// Tells the webhooks that the release of `tag` failed with `error`, and waits (boundedly) until they know.
    async fn notify_failed(
        &self,
        tag: &str,
        version: Option<&ReleaseVersion>,
        commit: Option<&str>,
        error: &ReleaseError,
    ) {
        if self.notify.is_empty() {
            return;
        }
        let (text, hint) = (crate::release::error_chain(error), error.hint());
        self.notify.emit(Event::failed(tag, version, commit, text, hint));
        self.notify.flush().await;
    }

    async fn fetch_and_plan(
        &self,
        tag: &str,
        opts: &PlanOptions,
        http: Option<reqwest::Client>,
    ) -> Result<Prepared, ReleaseError> {
        tokio::task::block_in_place(|| self.git.fetch())?;
        let (target, commit) = self.resolve(Some(tag))?;
        self.compare_config(&target, &commit);
        let creds = self.credentials()?;
        let registry = self.registry(creds.clone(), http);
        let (_, plan) = self.observe_and_plan(&registry, &target, &commit, opts, RegistryFailure::Fatal).await?;
        Ok(Prepared { target, plan, registry, creds })
    }

    /// Carries out a prepared release, reporting every image to `progress`;
    /// the GitHub Release and API commit go through `github` when given. What
    /// it did (published, drift put back) or its failure is notified, and the
    /// deliveries are awaited before it returns, within their retry bound.
    pub async fn execute(
        &self,
        prepared: &Prepared,
        progress: ProgressSink,
        github: Option<&GitHub>,
    ) -> Result<Report, ReleaseError> {
        let config = &self.config;
        let builder = LazyEngine::new(&config.registry, prepared.creds.clone(), progress.clone(), config.build.builder)
            .with_timeouts(config.timeouts);
        let dockerhub = self.dockerhub(prepared.creds.as_ref());
        // The key is read (and its password checked) before anything is built, when the plan signs.
        let signs = prepared.plan.steps.iter().any(|s| matches!(s, crate::plan::Step::Sign(_)));
        let signer = match &config.sign {
            Some(cfg) if signs => match crate::sign::Signer::load(cfg) {
                Ok(signer) => Some(signer),
                Err(e) => {
                    let e = ReleaseError::from(e);
                    let (tag, commit) = (&prepared.target.raw, prepared.plan.commit.as_str());
                    self.notify_failed(tag, Some(&prepared.target), Some(commit), &e).await;
                    return Err(e);
                }
            },
            _ => None,
        };
        let executor = Executor {
            config,
            git: &self.git,
            builder: &builder,
            registry: &prepared.registry,
            progress: &*progress,
            github,
            dockerhub: dockerhub.as_ref(),
            signer: signer.as_ref().map(|s| s as &dyn crate::sign::ArtifactSigner),
        };
        let result = executor.execute(&prepared.plan, &prepared.target).await;
        tracing::debug!(requests = prepared.registry.request_count(), "registry requests");
        match &result {
            Ok(report) => {
                if let Some(event) = Event::from_release(&prepared.plan, report) {
                    self.notify.emit(event);
                    self.notify.flush().await;
                }
            }
            Err(e) => {
                let (tag, commit) = (&prepared.target.raw, prepared.plan.commit.as_str());
                self.notify_failed(tag, Some(&prepared.target), Some(commit), e).await;
            }
        }
        result
    }
}
