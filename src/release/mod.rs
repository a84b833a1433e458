//! The executor: carries out a [`Plan`]'s steps phase by phase through the
//! boundary traits. It decides nothing the plan did not say; a failure in a
//! phase stops every later phase, so no half release becomes visible.

pub mod build;
#[cfg(test)]
pub(crate) mod fakes;
pub mod observe;
#[cfg(test)]
mod tests;
pub mod version;

use futures_util::StreamExt;
use serde::Serialize;

use crate::config::{CommitVia, Config};
use crate::docker::{DockerError, ImageBuilder};
use crate::forge::{Forge, ForgeError, ReleaseLink, ReleaseNotes};
use crate::git::{GitError, GitRepo};
use crate::plan::{BuildStep, ImageAction, Plan, PlanError, PushSource, Step};
use crate::progress::{self, ImageState, Progress};
use crate::registry::credentials::CredentialsError;
use crate::registry::{Registry, RegistryError};
use crate::version::{ReleaseVersion, TagError};
pub use version::VersionOutcome;
use version::{GitBranch, GitHubBranch};

#[derive(Debug, thiserror::Error)]
pub enum ReleaseError {
    #[error(transparent)]
    Tag(#[from] TagError),
    #[error(transparent)]
    Plan(#[from] PlanError),
    #[error(transparent)]
    Git(#[from] GitError),
    #[error(transparent)]
    Registry(#[from] RegistryError),
    #[error(transparent)]
    Credentials(#[from] CredentialsError),
    #[error(transparent)]
    Docker(#[from] DockerError),
    #[error("{error} ({}; no release tag was pushed)", attempts_made(*attempts))]
    Build { attempts: u32, error: DockerError },
    #[error("the release branch kept moving: the VERSION commit was rejected {attempts} times")]
    VersionRace { attempts: u32 },
    #[error("the release branch {branch} is locked on the remote: {lock} was still there after {waited:.0}s")]
    BranchLocked { branch: String, lock: String, waited: f32 },
    #[error("{error}; {} of the release's images already carry {tag}: {}", done.len(), if done.is_empty() { "none".to_string() } else { done.join(", ") })]
    Incomplete { tag: String, done: Vec<String>, error: Box<ReleaseError> },
    #[error(transparent)]
    Forge(#[from] ForgeError),
    #[error("commit.via is github-api, but GITHUB_TOKEN is not set")]
    NoGitHubToken,
}

/// A registry write of phase 2 tried 3 times, 1 s and 2 s apart, on top of
/// the client's own retries: a version tag that could not be written leaves
/// the release incomplete. A refusal of the credentials is not retried.
async fn retry_registry<T, F, Fut>(mut op: F) -> Result<T, RegistryError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, RegistryError>>,
{
    let mut attempt = 1;
    loop {
        match op().await {
            Err(e) if attempt < 3 && !matches!(e, RegistryError::Unauthorized { .. }) => {
                tracing::warn!(attempt, "registry write failed, retrying: {e}");
                tokio::time::sleep(std::time::Duration::from_secs(1 << (attempt - 1))).await;
                attempt += 1;
            }
            result => return result,
        }
    }
}

fn attempts_made(attempts: u32) -> String {
    match attempts {
        1 => "one attempt, build.retries is 0".into(),
        n => format!("gave up after {n} attempts"),
    }
}

impl ReleaseError {
    /// 2 for bad input, 1 for everything that failed at run time.
    pub fn exit_code(&self) -> u8 {
        match self {
            ReleaseError::Tag(_) | ReleaseError::Credentials(_) | ReleaseError::NoGitHubToken => 2,
            ReleaseError::Forge(ForgeError::UnknownRepository { .. }) => 2,
            ReleaseError::Plan(e) => e.exit_code(),
            ReleaseError::Git(e) => e.exit_code(),
            _ => 1,
        }
    }

    pub fn hint(&self) -> String {
        match self {
            ReleaseError::Tag(e) => e.hint(),
            ReleaseError::Plan(e) => e.hint(),
            ReleaseError::Git(e) => e.hint(),
            ReleaseError::Registry(e) => e.hint(),
            ReleaseError::Credentials(e) => e.hint(),
            ReleaseError::Docker(e) | ReleaseError::Build { error: e, .. } => e.hint(),
            ReleaseError::Forge(e) => e.hint(),
            ReleaseError::NoGitHubToken => {
                "set GITHUB_TOKEN to a token that may write contents, or use commit.via: git".into()
            }
            ReleaseError::VersionRace { .. } => {
                "rerun the release: the images are published and only the VERSION commit is left".into()
            }
            ReleaseError::BranchLocked { lock, .. } => format!(
                "a git process that died left the lock behind: if none is writing to the remote now, delete {lock} there and rerun (the images are published; only the VERSION commit is left)"
            ),
            ReleaseError::Incomplete { tag, .. } => format!(
                "rerun the release (or relctl reconcile): it adds {tag} to the images that lack it; those that carry it are complete images, and VERSION and floating tags were left alone"
            ),
        }
    }
}

/// One image as published by a release.
#[derive(Debug, Clone, Serialize)]
pub struct Published {
    pub image: String,
    pub repository: String,
    pub tags: Vec<String>,
    pub digest: String,
    pub built: bool,
}

/// What a release did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Report {
    pub tag: String,
    pub commit: String,
    pub images: Vec<Published>,
    pub moved: Vec<String>,
    pub version_commit: Option<String>,
    pub version_file: Option<String>,
    /// The GitHub Release created or updated for the tag.
    pub github_release: Option<ReleaseLink>,
}

impl Report {
    /// The release's images from the executor's report; images the run did not
    /// touch (already published) come from the plan with their digest.
    pub fn notes(&self, plan: &Plan) -> ReleaseNotes {
        let images =
            plan.images
                .iter()
                .filter_map(|i| {
                    if let Some(p) = self.images.iter().find(|p| p.image == i.name) {
                        return Some(crate::forge::ReleasedImage {
                            image: i.name.clone(),
                            repository: i.repository.clone(),
                            tags: i.version_tags.clone(),
                            digest: p.digest.clone(),
                            built: p.built,
                        });
                    }
                    match &i.action {
                        crate::plan::ImageAction::Published { digest }
                        | crate::plan::ImageAction::Retag { digest, .. } => Some(crate::forge::ReleasedImage {
                            image: i.name.clone(),
                            repository: i.repository.clone(),
                            tags: i.version_tags.clone(),
                            digest: digest.clone(),
                            built: false,
                        }),
                        _ => None,
                    }
                })
                .map(|mut r| {
                    let floating = carried_floating(plan, &r.image);
                    r.tags.extend(floating);
                    r
                })
                .collect();
        ReleaseNotes { tag: plan.tag.clone(), prerelease: plan.prerelease, commit: plan.commit.clone(), images }
    }
}

fn carried_floating(plan: &crate::plan::Plan, image: &str) -> Vec<String> {
    plan.images
        .iter()
        .find(|i| i.name == image)
        .map(|i| i.floating.iter().filter(|d| d.carried).map(|d| d.tag.clone()).collect())
        .unwrap_or_default()
}

/// The adapters a release runs through.
pub struct Executor<'a, G, B, R, F> {
    pub config: &'a Config,
    pub git: &'a G,
    pub builder: &'a B,
    pub registry: &'a R,
    /// Told every image's state as it changes.
    pub progress: &'a dyn Progress,
    /// The GitHub repository, when a token is at hand: phase 5 creates the
    /// GitHub Release, and `commit.via: github-api` writes VERSION through it.
    pub github: Option<&'a F>,
}

impl<G: GitRepo, B: ImageBuilder, R: Registry, F: Forge> Executor<'_, G, B, R, F> {
    /// Carries out `plan` for `target`. Steps run in phase order; an error ends the release.
    pub async fn execute(&self, plan: &Plan, target: &ReleaseVersion) -> Result<Report, ReleaseError> {
        let run = self.run_phases(plan, target);
        tokio::pin!(run);
        let mut ticks = tokio::time::interval(progress::LOG_EVERY);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let result = loop {
            tokio::select! {
                result = &mut run => break result,
                _ = ticks.tick() => self.progress.tick(),
            }
        };
        self.progress.finish();
        result
    }

    fn phase(&self, title: &str) {
        tracing::info!("{title}");
        self.progress.phase(title);
    }

    async fn run_phases(&self, plan: &Plan, target: &ReleaseVersion) -> Result<Report, ReleaseError> {
        let mut report = Report { tag: plan.tag.clone(), commit: plan.commit.clone(), ..Default::default() };
        let cfg = self.config;
        // What can fail for want of input fails before anything is built.
        let commits = plan.steps.iter().any(|s| matches!(s, Step::CommitVersion(_)));
        if commits && cfg.commit.via == CommitVia::GithubApi && self.github.is_none() {
            return Err(ReleaseError::NoGitHubToken);
        }
        let path_of = |image: &str| cfg.image(image).expect("plan names configured images").repository.clone();
        for image in &plan.images {
            match image.action {
                ImageAction::Build { .. } => self.progress.update(&image.name, &ImageState::Queued),
                ImageAction::Published { .. } => self.progress.update(&image.name, &ImageState::Published),
                ImageAction::Retag { .. } | ImageAction::Staged { .. } | ImageAction::NotSelected => {}
            }
        }

        // Phase 1: build everything, staging each image as soon as it is built.
        // Any failure and no release tag is pushed.
        let builds: Vec<&BuildStep> =
            plan.steps.iter().filter_map(|s| if let Step::Build(b) = s { Some(b) } else { None }).collect();
        if !builds.is_empty() {
            self.phase(&format!("phase 1/4: build {} image(s)", builds.len()));
            let staged = build::build_all(
                self.builder,
                &builds,
                |b| self.git.context(&plan.commit, &b.context, &b.dockerfile),
                cfg.build.parallelism,
                cfg.build.retries,
                self.progress,
            )
            .await
            .map_err(|f| ReleaseError::Build { attempts: f.attempts, error: f.error })?;
            tracing::debug!(count = staged.len(), "staged");
        }

        // Phase 2: version tags.
        let pushes: Vec<_> =
            plan.steps.iter().filter_map(|s| if let Step::Push(p) = s { Some(p) } else { None }).collect();
        if !pushes.is_empty() {
            self.phase(&format!("phase 2/4: push version tags of {} image(s)", pushes.len()));
        }
        let retagged: std::collections::BTreeSet<&str> = plan
            .images
            .iter()
            .filter(|i| matches!(i.action, ImageAction::Retag { .. }))
            .map(|i| i.name.as_str())
            .collect();
        let retagged = &retagged;
        let results: Vec<Result<Published, ReleaseError>> =
            futures_util::stream::iter(pushes.iter().map(|p| async move {
                let path = path_of(&p.image);
                let (digest, rest, built) = match &p.source {
                    PushSource::Build => {
                        let retries = build::push_retries(cfg.build.retries);
                        let push = build::with_retries(&p.image, "push", retries, |_| {
                            self.builder.push(&p.image, &p.repository, &p.tags[0])
                        });
                        (push.await.map_err(|f| f.error)?, &p.tags[1..], true)
                    }
                    PushSource::Tag(from) => {
                        let digest = retry_registry(|| self.registry.copy_tag(&path, from, &p.tags[0])).await?;
                        if retagged.contains(p.image.as_str()) {
                            self.progress.update(&p.image, &ImageState::Retagged { from: from.clone() });
                        }
                        (digest, &p.tags[1..], false)
                    }
                    PushSource::Staged(stage) => {
                        (retry_registry(|| self.registry.copy_tag(&path, stage, &p.tags[0])).await?, &p.tags[1..], true)
                    }
                };
                for tag in rest {
                    retry_registry(|| self.registry.copy_tag(&path, &p.tags[0], tag)).await?;
                }
                tracing::debug!(image = %p.image, digest = %digest, "pushed {}", p.tags.join(", "));
                self.progress.update(&p.image, &ImageState::Done { tags: p.tags.clone(), digest: digest.clone() });
                Ok(Published {
                    image: p.image.clone(),
                    repository: p.repository.clone(),
                    tags: p.tags.clone(),
                    digest,
                    built,
                })
            }))
            .buffered(cfg.build.parallelism)
            .collect()
            .await;
        // Every push was tried; on a failure, say which images are complete.
        let mut failure = None;
        for (p, r) in pushes.iter().zip(results) {
            match r {
                Ok(published) => report.images.push(published),
                Err(e) => {
                    self.progress.update(&p.image, &ImageState::Failed { reason: e.to_string() });
                    failure.get_or_insert(e);
                }
            }
        }
        if let Some(error) = failure {
            let mut done: Vec<String> = plan
                .images
                .iter()
                .filter(|i| matches!(i.action, ImageAction::Published { .. }))
                .map(|i| i.name.clone())
                .collect();
            done.extend(report.images.iter().map(|i| i.image.clone()));
            done.sort();
            done.dedup();
            return Err(ReleaseError::Incomplete { tag: plan.tag.clone(), done, error: Box::new(error) });
        }

        // Phase 3: floating tags, by manifest copy; images side by side (each
        // move is a few registry round trips, which add up on Docker Hub).
        let moves: Vec<_> =
            plan.steps.iter().filter_map(|s| if let Step::MoveTag(m) = s { Some(m) } else { None }).collect();
        if !moves.is_empty() {
            self.phase("phase 3/4: move floating tags");
        }
        let moved: Vec<Result<bool, ReleaseError>> = futures_util::stream::iter(moves.iter().map(|m| async move {
            let path = path_of(&m.image);
            // Re-checked right before the move: another release may have moved it higher meanwhile.
            let holder = self.registry.tag_version(&path, &m.tag).await?;
            if let Some(newer) = holder.as_deref().and_then(|v| semver::Version::parse(v).ok())
                && newer.cmp_precedence(&target.version).is_gt()
            {
                tracing::info!(image = %m.image, "{} now points at {newer}, newer than {}; left as is", m.tag, target.version);
                return Ok(false);
            }
            tracing::info!(image = %m.image, "{} -> {}", m.tag, m.to);
            self.registry.copy_tag(&path, &m.to, &m.tag).await?;
            Ok(true)
        }))
        .buffered(cfg.build.parallelism)
        .collect()
        .await;
        for (m, result) in moves.iter().zip(moved) {
            if result? {
                report.moved.push(format!("{}:{}", m.repository, m.tag));
            }
        }

        // Phase 4: VERSION, only once every image is published.
        for step in &plan.steps {
            if let Step::CommitVersion(v) = step {
                self.phase(&format!("phase 4/4: commit {} = {}", v.path, v.to));
                let outcome = match (cfg.commit.via, self.github) {
                    (CommitVia::Git, _) => version::publish_version(cfg, &GitBranch(self.git), v, target).await?,
                    (CommitVia::GithubApi, Some(gh)) => {
                        let branch = GitHubBranch { github: gh, branch: &cfg.git.branch };
                        version::publish_version(cfg, &branch, v, target).await?
                    }
                    (CommitVia::GithubApi, None) => return Err(ReleaseError::NoGitHubToken),
                };
                match outcome {
                    VersionOutcome::Committed { commit, attempts } => {
                        tracing::info!(commit = %commit, attempts, "VERSION committed and pushed");
                        report.version_commit = Some(commit);
                        report.version_file = Some(v.to.clone());
                    }
                    VersionOutcome::AlreadyCurrent { current } => {
                        tracing::info!("VERSION already names {current}; nothing to commit")
                    }
                }
            }
        }

        // Phase 5: the GitHub Release, once the release is complete.
        if let Some(gh) = self.github.filter(|_| cfg.github_release) {
            if plan.images.iter().all(|i| i.action != ImageAction::NotSelected) {
                self.phase(&format!("phase 5: GitHub Release {} in {}", plan.tag, gh.name()));
                let link = gh.upsert_release(&report.notes(plan)).await?;
                tracing::info!(url = %link.url, "GitHub Release {}", if link.created { "created" } else { "updated" });
                report.github_release = Some(link);
            }
        }
        Ok(report)
    }
}
