//! Gathers the [`Observed`] state a plan is computed from: release tags and
//! VERSION from git, build inputs at the tag's commit, and each image's tags
//! in the registry (one listing per image, manifests only for the tags the plan needs).

use std::collections::BTreeMap;

use crate::config::{Config, Inputs};
use crate::context::dockerfile::BuildArgs;
use crate::git::{GitError, GitRepo, PathKind};
use crate::plan::{Observed, RegistryView, ReleaseTags, image_tags, parent_arg};
use crate::registry::{Registry, RegistryError};
use crate::version::ReleaseVersion;

/// Every release tag of the repository, oldest first, with its commit: semver
/// tags whose image tags can be rendered within the registry's limits. Other
/// tags are skipped with a log line each (at info level when `announce`).
pub fn release_tags(
    config: &Config,
    git: &impl GitRepo,
    announce: bool,
) -> Result<Vec<(ReleaseVersion, String)>, GitError> {
    let mut out = Vec::new();
    for (name, commit) in git.tags()? {
        let skipped = match ReleaseVersion::parse(&name, &config.git.tag_prefix) {
            Ok(v) => match image_tags(config, &v) {
                Ok(_) => {
                    out.push((v, commit));
                    continue;
                }
                Err(e) => format!("skipping tag: {e}"),
            },
            Err(e) => format!("skipping non-semver tag: {e}"),
        };
        if announce {
            tracing::info!(tag = %name, "{skipped}");
        } else {
            tracing::debug!(tag = %name, "{skipped}");
        }
    }
    out.sort_by(|a, b| a.0.cmp_release(&b.0));
    Ok(out)
}

/// How to treat a registry that cannot be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RegistryFailure {
    /// Fail: a release must know what is published.
    Fatal,
    /// Note it in the plan and go on (`relctl plan` in a clone without registry access).
    Tolerate,
}

pub async fn observe(
    config: &Config,
    git: &impl GitRepo,
    registry: &impl Registry,
    target: &ReleaseVersion,
    commit: &str,
    on_failure: RegistryFailure,
    staged: bool,
) -> Result<Observed, super::ReleaseError> {
    let release_tags: Vec<ReleaseVersion> = release_tags(config, git, false)?.into_iter().map(|(v, _)| v).collect();
    let tip = match git.branch_tip() {
        Ok(tip) => Some(tip),
        Err(GitError::NoBranch { .. }) => None,
        Err(e) => return Err(e.into()),
    };
    let mut version_file = None;
    let mut unwritable = Vec::new();
    if let Some(tip) = &tip {
        for path in config.rewritten_files() {
            match git.path_kind(tip, path)? {
                None | Some(PathKind::File) => {}
                Some(kind) => unwritable.push((path.to_string(), kind.describe().to_string())),
            }
        }
        if unwritable.is_empty() {
            version_file = git.file_at(tip, &config.version_file)?.map(|b| String::from_utf8_lossy(&b).into_owned());
        }
    }
    let mut missing_inputs = Vec::new();
    let mut context_digests = BTreeMap::new();
    let mut rewritten_in_context = BTreeMap::new();
    let mut whole_context = BTreeMap::new();
    let rewritten = config.rewritten_files();
    for image in &config.images {
        if !git.dir_exists(commit, &image.context)? {
            missing_inputs.push((image.name.clone(), format!("context directory {}/", image.context)));
        } else if git.file_at(commit, &image.dockerfile)?.is_none() {
            missing_inputs.push((image.name.clone(), image.dockerfile.clone()));
        } else {
            let args = dockerfile_args(config, image);
            let summary = tokio::task::block_in_place(|| {
                git.context_summary(commit, &image.context, &image.dockerfile, &rewritten, args.as_ref())
            })?;
            context_digests.insert(image.name.clone(), summary.digest);
            if !summary.sent.is_empty() {
                rewritten_in_context.insert(image.name.clone(), summary.sent);
            }
            if let Some(why) = summary.whole {
                whole_context.insert(image.name.clone(), why);
            }
        }
    }

    let ReleaseTags { version: version_tags, floating } = image_tags(config, target)?;
    let mut wanted = version_tags.clone();
    wanted.extend(floating.into_iter().map(|(t, _)| t));
    let engine = crate::docker::engine_platform();
    let stages = match staged {
        // Fan-out: what the build jobs staged from this commit (each platform's
        // image of a multi-platform one), and from which inputs.
        true => {
            let stage = crate::plan::stage_tag(&version_tags[0], commit);
            crate::plan::platforms::stage_tags(config, &stage, &engine)
        }
        false => Vec::new(),
    };
    wanted.extend(stages.iter().cloned());
    let mut labelled = vec![version_tags[0].as_str()];
    labelled.extend(stages.iter().map(String::as_str));
    let lookups = config.images.iter().map(|image| registry.observe(&image.repository, &wanted, &labelled));
    let results: Vec<Result<_, RegistryError>> = futures_util::future::join_all(lookups).await;
    let mut views = BTreeMap::new();
    for (image, result) in config.images.iter().zip(results) {
        let view = match (result, on_failure) {
            (Ok(tags), _) => RegistryView::Known(tags),
            (Err(e), RegistryFailure::Tolerate) => RegistryView::Unknown(e.to_string()),
            (Err(e), RegistryFailure::Fatal) => return Err(e.into()),
        };
        views.insert(image.name.clone(), view);
    }

    // Retag candidates: for images missing this release, the newest earlier release they carry.
    let mut previous = BTreeMap::new();
    if config.build.retag_unchanged {
        // Primary image tags of the earlier releases, oldest first.
        let earlier: Vec<String> = release_tags
            .iter()
            .filter(|v| v.cmp_release(target).is_lt())
            .filter_map(|v| image_tags(config, v).ok().map(|t| t.primary().to_string()))
            .collect();
        for image in &config.images {
            if views
                .get(&image.name)
                .is_none_or(|v| v.tag(&version_tags[0]).is_some() || matches!(v, RegistryView::Unknown(_)))
            {
                continue;
            }
            let listed = registry.tags(&image.repository).await?;
            if let Some(tag) = earlier.iter().rfind(|t| listed.contains(t)) {
                if let Some(remote) = registry.inspect_tag(&image.repository, tag).await? {
                    previous.insert(image.name.clone(), (tag.clone(), remote));
                }
            }
        }
    }

    // With signing: the cosign artifacts each repository lists (this run's listing, no extra request).
    let mut artifacts = BTreeMap::new();
    if config.sign.is_some() {
        for image in &config.images {
            if matches!(views.get(&image.name), Some(RegistryView::Known(_))) {
                let listed = registry.tags(&image.repository).await?;
                let sigs = listed
                    .into_iter()
                    .filter(|t| t.starts_with("sha256-") && (t.ends_with(".sig") || t.ends_with(".att")));
                artifacts.insert(image.name.clone(), sigs.collect());
            }
        }
    }

    // With signing: the platform images of multi-platform images already out, whose signatures are checked too.
    let mut index_platforms = BTreeMap::new();
    if config.sign.is_some() {
        for image in config.images.iter().filter(|i| i.is_multi_platform()) {
            let Some(RegistryView::Known(tags)) = views.get(&image.name) else { continue };
            let published = tags.get(&version_tags[0]).map(|t| t.digest.clone());
            let earlier = previous.get(&image.name).map(|(_, t)| t.digest.clone());
            for digest in published.into_iter().chain(earlier) {
                if let Some(platforms) = registry.platforms(&image.repository, &digest).await? {
                    index_platforms.insert(digest, platforms);
                }
            }
        }
    }

    Ok(Observed {
        index_platforms,
        artifacts,
        target: target.clone(),
        commit: commit.to_string(),
        release_tags,
        version_file,
        unwritable,
        missing_inputs,
        registry: views,
        source_url: git.source_url()?,
        created: now_rfc3339(),
        context_digests,
        rewritten_in_context,
        whole_context,
        previous,
        platform: engine,
    })
}

/// The build arguments the Dockerfile reader resolves sources with, when keys
/// follow the Dockerfile (`build.inputs: dockerfile`); parents' image
/// arguments are known only at build time.
fn dockerfile_args(config: &Config, image: &crate::config::ImageConfig) -> Option<BuildArgs> {
    (config.build.inputs == Inputs::Dockerfile).then(|| BuildArgs {
        values: image.build_args.clone(),
        opaque: image.depends_on.iter().map(|p| parent_arg(p)).collect(),
    })
}

/// Each image's input key at `commit` (see [`crate::plan::input_key`]), as a
/// release of it would compute it; images whose inputs cannot be read are absent.
pub fn input_keys(config: &Config, git: &impl GitRepo, commit: &str) -> Result<BTreeMap<String, String>, GitError> {
    let rewritten = config.rewritten_files();
    let mut contexts = BTreeMap::new();
    for image in &config.images {
        if git.dir_exists(commit, &image.context)? && git.file_at(commit, &image.dockerfile)?.is_some() {
            let args = dockerfile_args(config, image);
            let summary = tokio::task::block_in_place(|| {
                git.context_summary(commit, &image.context, &image.dockerfile, &rewritten, args.as_ref())
            })?;
            contexts.insert(image.name.clone(), summary.digest);
        }
    }
    let keys = crate::plan::platforms::image_keys(config, &contexts, &crate::docker::engine_platform());
    Ok(keys.into_iter().map(|(name, k)| (name, k.image)).collect())
}

pub fn now_rfc3339() -> String {
    time::OffsetDateTime::now_utc()
        .replace_nanosecond(0)
        .expect("0 ns is valid")
        .format(&time::format_description::well_known::Rfc3339)
        .expect("RFC 3339 formats any UTC time")
}
