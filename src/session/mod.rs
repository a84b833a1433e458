//! The use cases, in one place: open the repository and its release.yaml,
//! resolve a tag, build the adapters (registry, engine, GitHub) once, and run
//! `plan`, `release`, `finalize`, `matrix`, `verify`, `pin`, `export`, `status`
//! and the controller through them. The CLI parses arguments, calls one of these and
//! prints what it returns; it holds no orchestration of its own.

pub mod controller;
pub mod dashboard;
mod init;
mod install;
mod release;
pub mod status;

use std::path::{Path, PathBuf};

use crate::config::{self, CommitVia, Config, ConfigError};
use crate::forge::ForgeError;
use crate::forge::github::GitHub;
use crate::git::{Git2Repo, GitError, GitRepo};
use crate::notify::{Notifications, NotifyError};
use crate::plan::{self, Observed, Plan, PlanOptions};
use crate::registry::{Credentials, RegistryClient, credentials};
use crate::release::ReleaseError;
use crate::release::observe::{self, RegistryFailure};
use crate::version::ReleaseVersion;

pub use init::{InitError, InitOptions, InitReport, init};
pub use install::{Incomplete, InstallError, Pinned, import};
pub use release::Prepared;

/// Why a session could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Git(#[from] GitError),
    #[error("cannot read the current directory")]
    Cwd(#[source] std::io::Error),
    #[error("{} has no release.yaml", root.display())]
    NoConfig { root: PathBuf, in_repository: bool },
}

impl SessionError {
    pub fn exit_code(&self) -> u8 {
        match self {
            SessionError::Config(_) | SessionError::NoConfig { .. } => 2,
            SessionError::Git(e) => e.exit_code(),
            SessionError::Cwd(_) => 1,
        }
    }

    pub fn hint(&self) -> String {
        match self {
            SessionError::Config(e) => e.hint(),
            SessionError::Git(e) => e.hint(),
            SessionError::Cwd(_) => "run relctl from a directory that exists".into(),
            SessionError::NoConfig { in_repository: true, .. } => {
                "run `relctl init` here to write one for this repository, or pass --config FILE".into()
            }
            SessionError::NoConfig { in_repository: false, .. } => {
                "this directory is not in a git repository: run relctl inside a clone of your project (or pass --repo DIR), then `relctl init` if it has no release.yaml yet".into()
            }
        }
    }
}

/// A repository and its validated config.
pub struct Session {
    pub config: Config,
    pub git: Git2Repo,
    /// The directory relctl was pointed at (`--repo`, else the current one).
    pub root: PathBuf,
    /// The webhooks of `notify:`, once [`Session::notifying`] turned them on; none before.
    pub notify: Notifications,
}

impl Session {
    /// Opens `repo` (default: the current directory) with `config` (default: `release.yaml` in it).
    /// From a subdirectory, the repository is found as git finds it.
    pub fn open(repo: Option<&Path>, config: Option<&Path>) -> Result<Self, SessionError> {
        let cwd = std::env::current_dir().map_err(SessionError::Cwd)?;
        let asked = repo.map(|r| cwd.join(r)).unwrap_or_else(|| cwd.clone());
        let work_tree = crate::git::work_tree_of(&asked);
        let root = work_tree.clone().unwrap_or(asked);
        // --repo DIR's own release.yaml (a project inside a monorepo), else the work tree's.
        let own = repo.map(|r| cwd.join(r).join("release.yaml")).filter(|p| p.is_file());
        let path = config.map(|p| cwd.join(p)).or(own).unwrap_or_else(|| root.join("release.yaml"));
        let config = match config::load(&path) {
            Err(ConfigError::NotFound { .. }) if config.is_none() => {
                return Err(SessionError::NoConfig { root, in_repository: work_tree.is_some() });
            }
            result => result?,
        };
        crate::git::set_network_timeouts(config.timeouts.git);
        let git = Git2Repo::open(&root, &config.git.remote, &config.git.branch)?;
        Ok(Self { config, git, root, notify: Notifications::none() })
    }

    /// Turns on the webhooks of `notify:` for the use cases that release
    /// (release, finalize, reconcile, serve); `env:NAME` URLs are read now, so
    /// a variable that is not set stops relctl before anything is released.
    pub fn notifying(mut self) -> Result<Self, NotifyError> {
        self.notify = Notifications::from_config(&self.config)?;
        Ok(self)
    }

    /// The tag's version and commit; no tag means the highest release tag.
    /// Without any release tag yet, HEAD is planned as if it were tagged
    /// with VERSION's version (or v0.1.0).
    pub fn resolve(&self, tag: Option<&str>) -> Result<(ReleaseVersion, String), ReleaseError> {
        let tags = observe::release_tags(&self.config, &self.git, false)?;
        let prefix = &self.config.git.tag_prefix;
        if let Some(t) = tag {
            let target = ReleaseVersion::parse(t, prefix)?;
            plan::image_tags(&self.config, &target)?;
            let commit = tags.iter().find(|(v, _)| v.raw == t).map(|(_, c)| c.clone());
            let commit = commit
                .ok_or_else(|| GitError::TagNotFound { tag: t.to_string(), remote: self.config.git.remote.clone() })?;
            return Ok((target, commit));
        }
        if let Some((v, c)) = tags.last() {
            return Ok((v.clone(), c.clone()));
        }
        let head = self.git.head_commit()?;
        let from_file = self.git.file_at(&head, &self.config.version_file)?;
        let from_file = from_file.map(|b| String::from_utf8_lossy(&b).trim().to_string());
        let first = ReleaseVersion { raw: format!("{prefix}0.1.0"), version: semver::Version::new(0, 1, 0) };
        let target = from_file.and_then(|v| ReleaseVersion::parse(&v, prefix).ok()).unwrap_or(first);
        tracing::warn!("no release tags yet: planning {} at HEAD as if it were tagged", target.raw);
        Ok((target, head))
    }

    /// Says so when the release.yaml in use is not the one committed at the
    /// tag's commit: relctl releases with the file it is run with (so a fixed
    /// context path applies when the same tag is released again), which the
    /// user should know when the two differ.
    pub fn compare_config(&self, target: &ReleaseVersion, commit: &str) {
        let Ok(rel) = self.config.source.strip_prefix(&self.root) else { return };
        let Some(rel) = rel.to_str() else { return };
        let used = std::fs::read(&self.config.source).unwrap_or_default();
        let short = &commit[..commit.len().min(12)];
        match self.git.file_at(commit, rel) {
            Ok(Some(at_tag)) if at_tag == used => {}
            Ok(Some(_)) => tracing::warn!(
                "{rel} differs from the one at {} ({short}): using the working tree's, as for every release run from here; commit it to keep them alike",
                target.raw
            ),
            Ok(None) => tracing::warn!("{rel} is not committed at {} ({short}): using the working tree's", target.raw),
            Err(e) => tracing::debug!("cannot read {rel} at {short}: {e}"),
        }
    }

    /// Registry credentials from the environment or the docker config.
    pub fn credentials(&self) -> Result<Option<Credentials>, ReleaseError> {
        Ok(credentials::load(&self.config.registry)?)
    }

    /// The registry client, on `http` when one was built ahead (see [`crate::registry::client::http_client`]).
    pub fn registry(&self, creds: Option<Credentials>, http: Option<reqwest::Client>) -> RegistryClient {
        let client = match http {
            Some(http) => RegistryClient::with_http(&self.config.registry, creds, http),
            None => RegistryClient::new(&self.config.registry, creds),
        };
        client.with_timeout(self.config.timeouts.request)
    }

    /// Docker Hub's API for `dockerhub:`, as the registry's `creds`; `None`
    /// (with a warning saying why) when there is nothing to write or no way to log in.
    pub fn dockerhub(&self, creds: Option<&Credentials>) -> Option<crate::forge::dockerhub::DockerHub> {
        use crate::forge::dockerhub::{API, DockerHub};
        self.config.dockerhub.as_ref()?;
        let Some(creds) = creds else {
            tracing::warn!(
                "dockerhub: no registry credentials, so the Docker Hub descriptions are not updated; set RELCTL_REGISTRY_USERNAME and RELCTL_REGISTRY_PASSWORD"
            );
            return None;
        };
        let api = std::env::var("RELCTL_DOCKERHUB_API").unwrap_or_else(|_| API.to_string());
        match DockerHub::new(&api, creds, crate::registry::client::http_client()) {
            Ok(hub) => Some(hub),
            Err(e) => {
                tracing::warn!(hint = %e.hint(), "{e}; the Docker Hub descriptions are not updated");
                None
            }
        }
    }

    /// The GitHub client when GITHUB_TOKEN is set. A repository that cannot be
    /// told is an error only when VERSION must be written through the API.
    pub fn github(&self) -> Result<Option<GitHub>, ReleaseError> {
        let url = self.git.source_url().unwrap_or_default();
        match GitHub::from_env(&url) {
            Ok(gh) => Ok(gh),
            Err(e @ ForgeError::UnknownRepository { .. }) if self.config.commit.via == CommitVia::Git => {
                tracing::warn!("no GitHub Release: {e}");
                Ok(None)
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Observes `target` at `commit` and plans it with `opts`.
    pub async fn observe_and_plan(
        &self,
        registry: &RegistryClient,
        target: &ReleaseVersion,
        commit: &str,
        opts: &PlanOptions,
        on_failure: RegistryFailure,
    ) -> Result<(Observed, Plan), ReleaseError> {
        let staged = opts.stage_only || opts.finalize;
        let observed = observe::observe(&self.config, &self.git, registry, target, commit, on_failure, staged).await?;
        let plan = plan::plan(&self.config, &observed, opts)?;
        Ok((observed, plan))
    }

    /// `relctl plan`: what releasing `tag` would do; a remote or registry that
    /// cannot be read is noted, not fatal.
    pub async fn plan(&self, tag: Option<&str>) -> Result<Plan, ReleaseError> {
        if let Err(e) = self.git.fetch() {
            tracing::warn!("{e}; planning from the local refs");
        }
        let (target, commit) = self.resolve(tag)?;
        self.compare_config(&target, &commit);
        let registry = self.registry(self.credentials()?, None);
        let opts = PlanOptions::default();
        Ok(self.observe_and_plan(&registry, &target, &commit, &opts, RegistryFailure::Tolerate).await?.1)
    }
}
