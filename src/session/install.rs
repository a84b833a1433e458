//! The installer's use cases: `verify` a release, `pin` it in an env file
//! (a rollback when older than VERSION), pull its images, and `export` /
//! `import` offline bundles.

use std::path::Path;

use crate::config::Builder;
use crate::docker::DockerEngine;
use crate::git::GitRepo;
use crate::install::bundle::{self, BundleError, BundleImage, ExportItem};
use crate::install::envfile;
use crate::install::verify::{Verification, verify};
use crate::plan::PlanOptions;
use crate::progress::ProgressSink;
use crate::release::ReleaseError;
use crate::release::observe::RegistryFailure;
use crate::version::ReleaseVersion;

use super::Session;

/// A version that is not completely published (exit 1).
#[derive(Debug, thiserror::Error)]
#[error("{tag} is not completely published: {}", .problems.join("; "))]
pub struct Incomplete {
    pub tag: String,
    pub problems: Vec<String>,
}

/// What `pin` changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pinned {
    pub target: ReleaseVersion,
    pub verification: Verification,
    /// IMAGE_TAG before, if it was set.
    pub previous: Option<String>,
    /// VERSION's release when the pinned one is older: a rollback.
    pub rollback_from: Option<String>,
}

/// Why an installer's use case failed.
#[derive(Debug, thiserror::Error)]
pub enum InstallError {
    #[error(transparent)]
    Release(#[from] ReleaseError),
    #[error(transparent)]
    Incomplete(#[from] Incomplete),
    #[error(transparent)]
    Bundle(#[from] BundleError),
    #[error("no TAG given and {path} cannot be read; pass a tag, e.g. v1.2.0")]
    NoVersion { path: String, source: std::io::Error },
    #[error("cannot write {path}")]
    Write { path: String, source: std::io::Error },
    #[error("--platform {platform}: image {image} of the release is not built for it (it is built for {})", available.join(", "))]
    NoPlatform { image: String, platform: String, available: Vec<String> },
}

impl InstallError {
    pub fn exit_code(&self) -> u8 {
        match self {
            InstallError::Release(e) => e.exit_code(),
            InstallError::Bundle(e) => e.exit_code(),
            InstallError::NoVersion { .. } | InstallError::NoPlatform { .. } => 2,
            InstallError::Incomplete(_) | InstallError::Write { .. } => 1,
        }
    }

    pub fn hint(&self) -> Option<String> {
        match self {
            InstallError::Release(e) => Some(e.hint()),
            InstallError::Bundle(e) => Some(e.hint()),
            InstallError::Incomplete(e) => {
                Some(format!("release {} again (relctl release {0}) or pin a complete version", e.tag))
            }
            InstallError::NoVersion { .. } => Some("pass the tag to use, e.g. relctl verify v1.2.0".into()),
            InstallError::Write { .. } => Some("check the file's directory and permissions".into()),
            InstallError::NoPlatform { available, .. } => Some(format!("choose one of: {}", available.join(", "))),
        }
    }
}

impl Session {
    /// `tag`, or the tag VERSION names in the working tree.
    pub fn tag_or_version(&self, tag: Option<&str>) -> Result<String, InstallError> {
        if let Some(t) = tag {
            return Ok(t.to_string());
        }
        let path = self.root.join(&self.config.version_file);
        let text = std::fs::read_to_string(&path)
            .map_err(|source| InstallError::NoVersion { path: path.display().to_string(), source })?;
        Ok(text.trim().to_string())
    }

    /// Observes `tag` and checks every image (`relctl verify`).
    pub async fn verify(
        &self,
        tag: &str,
        signatures: Option<&crate::install::verify::SignatureCheck>,
    ) -> Result<(ReleaseVersion, Verification), ReleaseError> {
        ReleaseVersion::parse(tag, &self.config.git.tag_prefix)?;
        if let Err(e) = tokio::task::block_in_place(|| self.git.fetch()) {
            tracing::warn!("{e}; using the local tags");
        }
        let (target, commit) = self.resolve(Some(tag))?;
        let registry = self.registry(self.credentials()?, None);
        // Planned with force, so a tag from another commit is reported here rather than refused.
        let opts = PlanOptions { force: true, ..Default::default() };
        let (observed, plan) =
            self.observe_and_plan(&registry, &target, &commit, &opts, RegistryFailure::Fatal).await?;
        let mut v = verify(&plan, &observed);
        let repository = |name: &str| self.config.image(name).map(|i| i.repository.clone()).unwrap_or_default();
        crate::install::verify::check_platforms(&mut v, &plan, &registry, repository).await?;
        if let Some(check) = signatures {
            crate::install::verify::check_signatures(&mut v, check, &registry, repository).await?;
        }
        Ok((target, v))
    }

    /// [`Self::verify`], where an incomplete release is an error.
    pub async fn verified(
        &self,
        tag: &str,
        signatures: Option<&crate::install::verify::SignatureCheck>,
    ) -> Result<(ReleaseVersion, Verification), InstallError> {
        let (target, v) = self.verify(tag, signatures).await?;
        if !v.ok() {
            let problems = v.images.iter().filter_map(|i| i.problem.clone()).collect();
            return Err(Incomplete { tag: v.tag.clone(), problems }.into());
        }
        Ok((target, v))
    }

    /// `relctl pin`: a verified `tag` into IMAGE_TAG of `env` (relative to the repository).
    pub async fn pin(
        &self,
        tag: &str,
        env: &Path,
        signatures: Option<&crate::install::verify::SignatureCheck>,
    ) -> Result<Pinned, InstallError> {
        let (target, verification) = self.verified(tag, signatures).await?;
        let path = self.root.join(env);
        let before = std::fs::read_to_string(&path).unwrap_or_default();
        let previous = envfile::get_var(&before, "IMAGE_TAG");
        let after = envfile::set_var(&before, "IMAGE_TAG", &target.raw);
        if after != before {
            envfile::write_atomically(&path, after.as_bytes())
                .map_err(|source| InstallError::Write { path: path.display().to_string(), source })?;
        }
        let version = std::fs::read_to_string(self.root.join(&self.config.version_file)).ok();
        let prefix = &self.config.git.tag_prefix;
        let current = version.as_deref().and_then(|t| ReleaseVersion::parse(t.trim(), prefix).ok());
        let rollback_from = current.filter(|c| c.cmp_release(&target).is_gt()).map(|c| c.raw);
        Ok(Pinned { target, verification, previous, rollback_from })
    }

    /// The Docker engine for pulls and saves, reporting to `progress`.
    pub async fn engine(&self, progress: ProgressSink) -> Result<DockerEngine, ReleaseError> {
        let creds = self.credentials()?;
        let engine = DockerEngine::connect(&self.config.registry, creds, progress, Builder::Classic).await?;
        Ok(engine.with_timeouts(self.config.timeouts))
    }

    /// Pulls every image of a verified release (`pin --pull`).
    pub async fn pull(&self, v: &Verification, progress: ProgressSink) -> Result<(), InstallError> {
        let engine = self.engine(progress).await?;
        for image in &v.images {
            let Some((repository, tag)) = image.reference.rsplit_once(':') else { continue };
            engine.pull(&image.image, repository, tag).await.map_err(BundleError::from)?;
        }
        Ok(())
    }

    /// `relctl export`: the offline bundle of a verified `tag` in `out`.
    /// Multi-platform images are saved for `platform` (default: the engine's);
    /// the others for the one platform they are built for.
    pub async fn export(
        &self,
        tag: &str,
        out: &Path,
        platform: Option<&str>,
        progress: ProgressSink,
    ) -> Result<(ReleaseVersion, Vec<BundleImage>), InstallError> {
        let (target, v) = self.verified(tag, None).await?;
        let wanted = platform.map_or_else(crate::docker::engine_platform, str::to_string);
        let mut items = Vec::new();
        for i in &v.images {
            let available: Vec<String> = i.platforms.iter().map(|p| p.platform.clone()).collect();
            if !available.is_empty() && !available.contains(&wanted) {
                return Err(InstallError::NoPlatform { image: i.image.clone(), platform: wanted, available });
            }
            items.push(ExportItem {
                image: i.image.clone(),
                reference: i.reference.clone(),
                digest: i.digest.clone().unwrap_or_default(),
                revision: i.revision.clone().unwrap_or_default(),
                platform: (!available.is_empty()).then(|| wanted.clone()),
            });
        }
        // One sink for pulls and saves, so each image keeps one progress line.
        let engine = self.engine(progress.clone()).await?;
        let images = bundle::export(&engine, &items, &target.raw, out, &*progress).await?;
        progress.finish();
        Ok((target, images))
    }
}

/// `relctl import`: loads a bundle into the engine; needs no release.yaml.
pub async fn import(dir: &Path, progress: ProgressSink) -> Result<Vec<BundleImage>, InstallError> {
    let engine =
        DockerEngine::connect("", None, progress.clone(), Builder::Classic).await.map_err(ReleaseError::from)?;
    Ok(bundle::import(&engine, dir, &*progress).await?)
}
