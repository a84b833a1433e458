//! The executor's phases, one method each, in the order they run: build
//! (and stage) every image, sign each (with `sign:`), give each its version tags, move floating tags,
//! commit VERSION, and create the GitHub Release. Each phase only carries out
//! the plan's steps of its kind; a failure stops every later phase.

use futures_util::StreamExt;

use super::build;
use super::version::{self, GitBranch, GitHubBranch, VersionOutcome};
use super::{Executor, Published, ReleaseError, Report, error_chain, retry_registry};
use crate::config::CommitVia;
use crate::docker::ImageBuilder;
use crate::forge::{Forge, ReleaseLink};
use crate::git::GitRepo;
use crate::plan::{BuildStep, ImageAction, IndexStep, MoveStep, Plan, PushSource, PushStep, SignStep, Step};
use crate::progress::ImageState;
use crate::registry::Registry;
use crate::version::ReleaseVersion;

/// The digest signed for each image, by image name.
pub(super) type Signed = std::collections::BTreeMap<String, String>;

/// The platform images of each multi-platform image assembled by this run:
/// (platform, digest) by image name.
pub(super) type Platforms = std::collections::BTreeMap<String, Vec<(String, String)>>;

/// The plan's steps of one kind.
fn steps<'p, T>(plan: &'p Plan, pick: impl Fn(&'p Step) -> Option<&'p T>) -> Vec<&'p T> {
    plan.steps.iter().filter_map(pick).collect()
}

impl<G: GitRepo, B: ImageBuilder, R: Registry, F: Forge> Executor<'_, G, B, R, F> {
    /// The repository path under the registry of a planned image.
    fn path_of(&self, image: &str) -> String {
        self.config.image(image).map(|i| i.repository.clone()).unwrap_or_default()
    }

    /// Phase 1: build everything, staging each image as soon as it is built.
    /// Any failure and no release tag is pushed.
    pub(super) async fn build_phase(&self, plan: &Plan) -> Result<(), ReleaseError> {
        let builds: Vec<&BuildStep> = steps(plan, |s| if let Step::Build(b) = s { Some(b) } else { None });
        if builds.is_empty() {
            return Ok(());
        }
        self.builder.ready().await?;
        self.phase(&format!("phase 1/5: build {} image(s)", builds.len()));
        let cfg = &self.config.build;
        let context = |b: &BuildStep| self.git.context(&plan.commit, &b.context, &b.dockerfile);
        let staged = build::build_all(self.builder, &builds, context, cfg.parallelism, cfg.retries, self.progress)
            .await
            .map_err(|f| ReleaseError::Build { attempts: f.attempts, error: f.error })?;
        tracing::debug!(count = staged.len(), "staged");
        Ok(())
    }

    /// Phase 2, first: the index of every multi-platform image, assembled from
    /// its platforms' staging tags (no layer moves) and pushed under its own
    /// staging tag. A platform missing publishes nothing.
    pub(super) async fn index_phase(&self, plan: &Plan) -> Result<Platforms, ReleaseError> {
        let indexes: Vec<&IndexStep> = steps(plan, |s| if let Step::Index(x) = s { Some(x) } else { None });
        let mut out = Platforms::new();
        if indexes.is_empty() {
            return Ok(out);
        }
        self.phase(&format!("phase 2/5: image index of {} image(s)", indexes.len()));
        for step in indexes {
            let path = self.path_of(&step.image);
            let mut entries = Vec::new();
            for entry in &step.manifests {
                let missing = || ReleaseError::PlatformNotStaged {
                    image: step.image.clone(),
                    platform: entry.platform.clone(),
                    tag: entry.tag.clone(),
                };
                let reference = entry.digest.as_deref().unwrap_or(&entry.tag);
                let mut d = retry_registry(|| self.registry.describe(&path, reference)).await?.ok_or_else(missing)?;
                // An engine that pushes an index of its own (attestations, the containerd
                // store): its entry for this platform is the image.
                if crate::registry::index::is_index(&d.media_type) {
                    let listed =
                        retry_registry(|| self.registry.platforms(&path, &d.digest)).await?.unwrap_or_default();
                    let digest = listed.into_iter().find(|(p, _)| *p == entry.platform).ok_or_else(missing)?.1;
                    d = retry_registry(|| self.registry.describe(&path, &digest)).await?.ok_or_else(missing)?;
                }
                entries.push((entry.platform.clone(), d));
            }
            let bytes = crate::registry::index::image_index(&entries, &step.annotations);
            let media = crate::registry::index::OCI_INDEX;
            let digest = retry_registry(|| self.registry.put_manifest(&path, &step.tag, media, bytes.clone())).await?;
            tracing::info!(image = %step.image, "index {digest} of {}", entries.iter().map(|(p, _)| p.as_str()).collect::<Vec<_>>().join(", "));
            self.progress.update(&step.image, &ImageState::Staged { digest });
            out.insert(step.image.clone(), entries.into_iter().map(|(p, d)| (p, d.digest)).collect());
        }
        Ok(out)
    }

    /// Phase 2, then: the signatures (and attestations) of every image the
    /// plan signs, before any version tag points at a digest. A failure
    /// publishes nothing. Returns the artifact tags pushed, and the digest
    /// signed for each image, which its version tags are then copied from.
    pub(super) async fn sign_phase(
        &self,
        plan: &Plan,
        platforms: &Platforms,
    ) -> Result<(Vec<String>, Signed), ReleaseError> {
        let signs: Vec<&SignStep> = steps(plan, |s| if let Step::Sign(x) = s { Some(x) } else { None });
        if signs.is_empty() {
            return Ok(Default::default());
        }
        let signer = self.signer.ok_or(ReleaseError::NoSigner)?;
        self.phase(&format!("phase 2/5: sign {} image(s)", signs.len()));
        let source_url = self.git.source_url().unwrap_or_default();
        let started = crate::release::observe::now_rfc3339();
        let mut digests: std::collections::BTreeMap<&str, String> = plan
            .images
            .iter()
            .filter_map(|i| match &i.action {
                ImageAction::Retag { digest, .. }
                | ImageAction::Published { digest }
                | ImageAction::Staged { digest: Some(digest) } => Some((i.name.as_str(), digest.clone())),
                _ => None,
            })
            .collect();
        let (mut pushed, mut signed) = (Vec::new(), Signed::new());
        for step in signs {
            let path = self.path_of(&step.image);
            let digest = match (&step.digest, &step.stage_tag) {
                (Some(d), _) => d.clone(),
                (None, Some(stage)) => match self.registry.inspect_tag(&path, stage).await? {
                    Some(t) => t.digest,
                    None => {
                        return Err(ReleaseError::NotStagedForSigning {
                            image: step.image.clone(),
                            tag: stage.clone(),
                        });
                    }
                },
                (None, None) => return Err(ReleaseError::NoSigner),
            };
            // A platform's manifest is signed; the image's tags come from its index.
            if !step.entry {
                digests.insert(&step.image, digest.clone());
                signed.insert(step.image.clone(), digest.clone());
            }
            let mut artifacts = Vec::new();
            if step.signature {
                artifacts.push(signer.signature(&self.config.registry, &path, &digest));
            }
            if step.attestation {
                let parents = self.config.image(&step.image).map(|i| i.depends_on.clone()).unwrap_or_default();
                // A platform's image names its parent's image of that platform, where this run assembled it.
                let of_platform = |parent: &str| {
                    let listed = platforms.get(parent).filter(|_| step.entry)?;
                    listed.iter().find(|(p, _)| *p == step.platform).map(|(_, d)| d.clone())
                };
                let parents = parents
                    .iter()
                    .filter_map(|p| {
                        let digest = of_platform(p).or_else(|| digests.get(p.as_str()).cloned())?;
                        Some(format!("{}@{digest}", self.config.image_repo(self.config.image(p)?)))
                    })
                    .collect();
                let config_path =
                    self.config.source.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
                let statement = crate::sign::provenance::Provenance {
                    name: &step.repository,
                    digest: &digest,
                    tag: &plan.tag,
                    image: &step.image,
                    platform: &step.platform,
                    config_path: &config_path,
                    source_url: &source_url,
                    commit: &plan.commit,
                    parents,
                    started: &started,
                    finished: &crate::release::observe::now_rfc3339(),
                }
                .statement();
                artifacts.push(signer.attestation(&digest, &statement));
            }
            for artifact in &artifacts {
                retry_registry(|| self.registry.put_artifact(&path, artifact)).await?;
                tracing::info!(image = %step.image, "signed {digest}: {}:{}", step.repository, artifact.tag);
                pushed.push(format!("{}:{}", step.repository, artifact.tag));
            }
        }
        Ok((pushed, signed))
    }

    /// Phase 2, then: every image gets the release's version tags. Every push is
    /// tried; when one fails for good, the error names the images that
    /// already carry the release (complete images; nothing later moves).
    pub(super) async fn version_tag_phase(
        &self,
        plan: &Plan,
        signed: &Signed,
        platforms: &Platforms,
    ) -> Result<Vec<Published>, ReleaseError> {
        let pushes: Vec<&PushStep> = steps(plan, |s| if let Step::Push(p) = s { Some(p) } else { None });
        if !pushes.is_empty() {
            self.phase(&format!("phase 2/5: version tags of {} image(s)", pushes.len()));
        }
        let results: Vec<Result<Published, ReleaseError>> =
            futures_util::stream::iter(pushes.iter().map(|p| self.version_tags(plan, p, signed, platforms)))
                .buffered(self.config.build.parallelism)
                .collect()
                .await;
        let (mut published, mut failure) = (Vec::new(), None);
        for (p, r) in pushes.iter().zip(results) {
            match r {
                Ok(done) => published.push(done),
                Err(e) => {
                    self.progress.update(&p.image, &ImageState::Failed { reason: error_chain(&e) });
                    failure.get_or_insert(e);
                }
            }
        }
        let Some(error) = failure else { return Ok(published) };
        let already = plan.images.iter().filter(|i| matches!(i.action, ImageAction::Published { .. }));
        let mut done: Vec<String> =
            already.map(|i| i.name.clone()).chain(published.into_iter().map(|p| p.image)).collect();
        done.sort();
        done.dedup();
        Err(ReleaseError::Incomplete { tag: plan.tag.clone(), done, error: Box::new(error) })
    }

    /// One image's version tags: its first by upload or manifest copy, the
    /// others copied from it. A signed image's first tag is copied from the
    /// digest that was signed, never from a tag that could have moved since.
    async fn version_tags(
        &self,
        plan: &Plan,
        p: &PushStep,
        signed: &Signed,
        platforms: &Platforms,
    ) -> Result<Published, ReleaseError> {
        let path = self.path_of(&p.image);
        let first = &p.tags[0];
        let signed = signed.get(&p.image);
        let (digest, built) = match &p.source {
            PushSource::Build => {
                let retries = build::push_retries(self.config.build.retries);
                let push = build::with_retries(&p.image, "push", retries, |_| {
                    self.builder.push(&p.image, &p.repository, first)
                });
                (push.await.map_err(|f| f.error)?, true)
            }
            PushSource::Tag(from) => {
                let source = signed.unwrap_or(from);
                let digest = retry_registry(|| self.registry.copy_tag(&path, source, first)).await?;
                let retagged =
                    plan.images.iter().any(|i| i.name == p.image && matches!(i.action, ImageAction::Retag { .. }));
                if retagged {
                    self.progress.update(&p.image, &ImageState::Retagged { from: from.clone() });
                }
                (digest, false)
            }
            PushSource::Staged(stage) => {
                let source = signed.unwrap_or(stage);
                (retry_registry(|| self.registry.copy_tag(&path, source, first)).await?, true)
            }
        };
        for tag in &p.tags[1..] {
            retry_registry(|| self.registry.copy_tag(&path, first, tag)).await?;
        }
        tracing::debug!(image = %p.image, digest = %digest, "pushed {}", p.tags.join(", "));
        self.progress.update(&p.image, &ImageState::Done { tags: p.tags.clone(), digest: digest.clone() });
        let is_index = plan.images.iter().any(|i| i.name == p.image && i.is_index());
        let platforms = match platforms.get(&p.image) {
            Some(assembled) => assembled.clone(),
            None if is_index => retry_registry(|| self.registry.platforms(&path, &digest)).await?.unwrap_or_default(),
            None => Vec::new(),
        };
        let platforms =
            platforms.into_iter().map(|(platform, digest)| crate::forge::PlatformImage { platform, digest }).collect();
        Ok(Published {
            image: p.image.clone(),
            repository: p.repository.clone(),
            tags: p.tags.clone(),
            digest,
            built,
            platforms,
        })
    }

    /// The platforms of each multi-platform image the release holds but this
    /// run pushed nothing for (already published), for the release notes: read
    /// only when notes are written (a GitHub Release, or the Action's outputs),
    /// since each read is a manifest GET, which Docker Hub counts as a pull.
    pub(super) async fn published_platforms(
        &self,
        plan: &Plan,
        pushed: &[Published],
    ) -> Result<std::collections::BTreeMap<String, Vec<crate::forge::PlatformImage>>, ReleaseError> {
        let mut out = std::collections::BTreeMap::new();
        let notes = self.github.is_some() && self.config.github_release || crate::forge::actions::active();
        if !notes {
            return Ok(out);
        }
        for image in plan.images.iter().filter(|i| i.is_index() && !pushed.iter().any(|p| p.image == i.name)) {
            let ImageAction::Published { digest } = &image.action else { continue };
            let path = self.path_of(&image.name);
            let listed = retry_registry(|| self.registry.platforms(&path, digest)).await?;
            let listed = listed.unwrap_or_default().into_iter();
            out.insert(
                image.name.clone(),
                listed.map(|(platform, digest)| crate::forge::PlatformImage { platform, digest }).collect(),
            );
        }
        Ok(out)
    }

    /// Phase 3: floating tags, by manifest copy; images side by side (each
    /// move is a few registry round trips, which add up on Docker Hub).
    /// Returns the moved `repository:tag`s.
    pub(super) async fn floating_tag_phase(
        &self,
        plan: &Plan,
        target: &ReleaseVersion,
    ) -> Result<Vec<String>, ReleaseError> {
        let moves: Vec<&MoveStep> = steps(plan, |s| if let Step::MoveTag(m) = s { Some(m) } else { None });
        if !moves.is_empty() {
            self.phase("phase 3/5: floating tags");
        }
        let moved: Vec<Result<bool, ReleaseError>> =
            futures_util::stream::iter(moves.iter().map(|m| self.move_tag(m, target)))
                .buffered(self.config.build.parallelism)
                .collect()
                .await;
        let mut out = Vec::new();
        for (m, result) in moves.iter().zip(moved) {
            if result? {
                out.push(format!("{}:{}", m.repository, m.tag));
            }
        }
        Ok(out)
    }

    /// Moves one floating tag, unless another release moved it higher meanwhile.
    async fn move_tag(&self, m: &MoveStep, target: &ReleaseVersion) -> Result<bool, ReleaseError> {
        let path = self.path_of(&m.image);
        // Re-checked right before the move: floating tags never move backwards.
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
    }

    /// Phase 4: VERSION, only once every image is published; returns the
    /// commit and the new content when one was made.
    pub(super) async fn version_phase(
        &self,
        plan: &Plan,
        target: &ReleaseVersion,
    ) -> Result<Option<(String, String)>, ReleaseError> {
        let Some(v) = plan.steps.iter().find_map(|s| if let Step::CommitVersion(v) = s { Some(v) } else { None })
        else {
            return Ok(None);
        };
        self.phase(&format!("phase 4/5: commit {} = {}", v.path, v.to));
        let cfg = self.config;
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
                Ok(Some((commit, v.to.clone())))
            }
            VersionOutcome::AlreadyCurrent { current } => {
                tracing::info!("VERSION already names {current}; nothing to commit");
                Ok(None)
            }
        }
    }

    /// Phase 5: the GitHub Release, once the release is complete.
    pub(super) async fn github_phase(&self, plan: &Plan, report: &Report) -> Result<Option<ReleaseLink>, ReleaseError> {
        let Some(gh) = self.github.filter(|_| self.config.github_release) else { return Ok(None) };
        if plan.images.iter().any(|i| i.action == ImageAction::NotSelected) {
            return Ok(None);
        }
        self.phase(&format!("phase 5/5: GitHub Release {} in {}", plan.tag, gh.name()));
        let link = gh.upsert_release(&report.notes(plan)).await?;
        tracing::info!(url = %link.url, "GitHub Release {}", if link.created { "created" } else { "updated" });
        Ok(Some(link))
    }

    /// After a release that made itself the current one (it commits
    /// VERSION), each image's Docker Hub description, where it changed. A
    /// failure is a warning: the release is complete.
    pub(super) async fn dockerhub_phase(&self, plan: &Plan) -> Vec<String> {
        let (Some(pages), Some(hub)) = (&self.config.dockerhub, self.dockerhub) else { return Vec::new() };
        let current = plan.steps.iter().any(|s| matches!(s, Step::CommitVersion(_)));
        if plan.prerelease || !current {
            return Vec::new();
        }
        let full = match &pages.readme {
            Some(path) => match self.git.file_at(&plan.commit, path) {
                Ok(Some(bytes)) => Some(String::from_utf8_lossy(&bytes).into_owned()),
                Ok(None) => {
                    tracing::warn!(
                        "dockerhub.readme: {path} does not exist at {}; the full description is left as it is",
                        plan.commit
                    );
                    None
                }
                Err(e) => {
                    tracing::warn!("dockerhub.readme: cannot read {path}: {e}; the full description is left as it is");
                    None
                }
            },
            None => None,
        };
        let mut updated = Vec::new();
        for image in &self.config.images {
            match hub.sync(&image.repository, pages.description.as_deref(), full.as_deref()).await {
                Ok(crate::forge::dockerhub::PageSync::Updated) => {
                    tracing::info!(image = %image.name, "Docker Hub description of {} updated", image.repository);
                    updated.push(image.repository.clone());
                }
                Ok(crate::forge::dockerhub::PageSync::Unchanged) => {}
                Err(e) => tracing::warn!(image = %image.name, hint = %e.hint(), "{e}; the release itself is complete"),
            }
        }
        updated
    }
}
