//! The executor: carries out a [`Plan`]'s steps phase by phase through the
//! boundary traits. It decides nothing the plan did not say; a failure in a
//! phase stops every later phase, so no half release becomes visible.

pub mod build;
#[cfg(test)]
pub(crate) mod fakes;
pub mod observe;
mod phases;
#[cfg(test)]
mod platform_tests;
#[cfg(test)]
mod tests;
pub mod version;

use serde::Serialize;

use crate::config::{CommitVia, Config};
use crate::docker::{DockerError, ImageBuilder};
use crate::forge::{Forge, ForgeError, ReleaseLink, ReleaseNotes};
use crate::git::{GitError, GitRepo};
use crate::plan::{ImageAction, Plan, PlanError, Step};
use crate::progress::{self, ImageState, Progress};
use crate::registry::credentials::CredentialsError;
use crate::registry::{Registry, RegistryError};
use crate::version::{ReleaseVersion, TagError};
pub use version::VersionOutcome;

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
    #[error("{error} ({}; no release tag was pushed)", attempts_made(*attempts, error))]
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
    #[error(transparent)]
    Key(#[from] crate::sign::KeyError),
    #[error("the plan signs images, but no signing key was loaded")]
    NoSigner,
    #[error("cannot sign {image}: its staging tag {tag} is not in the registry")]
    NotStagedForSigning { image: String, tag: String },
    #[error(
        "cannot assemble the image index of {image}: its {platform} image's staging tag {tag} is not in the registry"
    )]
    PlatformNotStaged { image: String, platform: String, tag: String },
}

pub use crate::chain::error_chain;

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

fn attempts_made(attempts: u32, error: &DockerError) -> String {
    if !error.retryable() {
        return "not retried: a retry cannot mend this".into();
    }
    match attempts {
        1 => "one attempt, build.retries is 0".into(),
        n => format!("gave up after {n} attempts"),
    }
}

impl ReleaseError {
    /// 2 for bad input, 1 for everything that failed at run time.
    pub fn exit_code(&self) -> u8 {
        match self {
            ReleaseError::Tag(_) | ReleaseError::NoGitHubToken | ReleaseError::Key(_) => 2,
            ReleaseError::Credentials(e) => e.exit_code(),
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
            ReleaseError::Key(e) => e.hint(),
            ReleaseError::NoSigner => "set sign.key in release.yaml (a cosign key; relctl keygen makes one)".into(),
            ReleaseError::PlatformNotStaged { image, platform, .. } => format!(
                "rerun the release (its builds stage every platform again), or with fan-out rerun the build job `relctl release TAG --only {image} --platform {platform} --stage` before finalize; nothing was published"
            ),
            ReleaseError::NotStagedForSigning { .. } => {
                "rerun the release: the image is built and staged again; nothing was published".into()
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
    /// Of a multi-platform image (`digest` is its index's): each platform's image.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub platforms: Vec<crate::forge::PlatformImage>,
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
    /// cosign signatures and attestations pushed, `repository:sha256-<hex>.sig`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub signatures: Vec<String>,
    /// Docker Hub repositories whose description this release updated.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub dockerhub_updated: Vec<String>,
    /// The platform images of multi-platform images already published
    /// (nothing pushed for them by this run), by image, for the release notes.
    #[serde(skip)]
    pub published_platforms: std::collections::BTreeMap<String, Vec<crate::forge::PlatformImage>>,
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
                            signature: plan.signed.then(|| crate::plan::artifact_tag(&p.digest, "sig")),
                            platforms: p.platforms.clone(),
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
                            signature: plan.signed.then(|| crate::plan::artifact_tag(digest, "sig")),
                            platforms: self.published_platforms.get(&i.name).cloned().unwrap_or_default(),
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

/// The floating tags an image carries after the plan: those that moved or already point at it.
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
    /// Docker Hub's API, when `dockerhub:` is configured and credentials are at hand.
    pub dockerhub: Option<&'a crate::forge::dockerhub::DockerHub>,
    /// What signs, with `sign:`.
    pub signer: Option<&'a dyn crate::sign::ArtifactSigner>,
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

    /// The phases in order; each one's failure stops the later ones.
    async fn run_phases(&self, plan: &Plan, target: &ReleaseVersion) -> Result<Report, ReleaseError> {
        let mut report = Report { tag: plan.tag.clone(), commit: plan.commit.clone(), ..Default::default() };
        // What can fail for want of input fails before anything is built.
        let commits = plan.steps.iter().any(|s| matches!(s, Step::CommitVersion(_)));
        if commits && self.config.commit.via == CommitVia::GithubApi && self.github.is_none() {
            return Err(ReleaseError::NoGitHubToken);
        }
        for image in &plan.images {
            match image.action {
                ImageAction::Build { .. } => self.progress.update(&image.name, &ImageState::Queued),
                ImageAction::Published { .. } => self.progress.update(&image.name, &ImageState::Published),
                ImageAction::Retag { .. } | ImageAction::Staged { .. } | ImageAction::NotSelected => {}
            }
        }
        self.build_phase(plan).await?;
        let platforms = self.index_phase(plan).await?;
        let (signatures, signed) = self.sign_phase(plan, &platforms).await?;
        report.signatures = signatures;
        report.images = self.version_tag_phase(plan, &signed, &platforms).await?;
        report.published_platforms = self.published_platforms(plan, &report.images).await?;
        report.moved = self.floating_tag_phase(plan, target).await?;
        if let Some((commit, file)) = self.version_phase(plan, target).await? {
            report.version_commit = Some(commit);
            report.version_file = Some(file);
        }
        report.github_release = self.github_phase(plan, &report).await?;
        report.dockerhub_updated = self.dockerhub_phase(plan).await;
        Ok(report)
    }
}
