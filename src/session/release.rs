//! The release use cases: `release` (and its `--dry-run`), `finalize` and
//! `matrix`, each an observe-plan-execute through the session's adapters.

use crate::docker::LazyEngine;
use crate::forge::github::GitHub;
use crate::git::GitRepo;
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
    pub async fn prepare(
        &self,
        tag: &str,
        opts: &PlanOptions,
        http: Option<reqwest::Client>,
    ) -> Result<Prepared, ReleaseError> {
        // Bad input fails before any I/O.
        ReleaseVersion::parse(tag, &self.config.git.tag_prefix)?;
        tokio::task::block_in_place(|| self.git.fetch())?;
        let (target, commit) = self.resolve(Some(tag))?;
        self.compare_config(&target, &commit);
        let creds = self.credentials()?;
        let registry = self.registry(creds.clone(), http);
        let (_, plan) = self.observe_and_plan(&registry, &target, &commit, opts, RegistryFailure::Fatal).await?;
        Ok(Prepared { target, plan, registry, creds })
    }

    /// Carries out a prepared release, reporting every image to `progress`;
    /// the GitHub Release and API commit go through `github` when given.
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
            Some(cfg) if signs => Some(crate::sign::Signer::load(cfg)?),
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
            signer: signer.as_ref(),
        };
        let report = executor.execute(&prepared.plan, &prepared.target).await?;
        tracing::debug!(requests = prepared.registry.request_count(), "registry requests");
        Ok(report)
    }
}
