//! The pure planning core: `plan(config, observed, options) -> Plan`.
//!
//! No I/O happens here. The plan lists, in phase order, every step a release
//! takes (build, push version tags, move floating tags, commit VERSION); the
//! executor in `release` carries them out and `relctl plan` prints them.

mod build;
pub mod floating;
mod images;
pub mod labels;
pub mod matrix;
pub mod observed;
#[cfg(test)]
mod platform_tests;
pub mod platforms;
mod render;
#[cfg(test)]
mod tests;
mod version;

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use crate::config::oci::is_tag;
use crate::config::{Config, TagScope};
use crate::version::ReleaseVersion;
pub use build::{artifact_tag, key_of, parent_arg, stage_tag};
pub use observed::{Observed, RegistryView, RemoteTag};
use version::version_decision;

/// Choices the user makes on the command line.
#[derive(Debug, Clone, Default)]
pub struct PlanOptions {
    /// Release only these images (`--only`).
    pub only: Option<BTreeSet<String>>,
    /// Rebuild and overwrite version tags built from another commit (`--force`).
    pub force: bool,
    /// Build without the layer cache (`--no-cache`).
    pub no_cache: bool,
    /// Fan-out: build the selected images and push them under their staging
    /// tags only; no release tag, floating tag or VERSION (`release --stage`).
    pub stage_only: bool,
    /// Fan-out: build nothing; promote every image staged from this commit to
    /// the version tags, then move floating tags and commit VERSION (`finalize`).
    pub finalize: bool,
    /// Fan-out on native runners: with `stage_only`, build this platform of
    /// each selected image only (`release --platform`).
    pub platform: Option<String>,
}

/// A release, step by step.
#[derive(Debug, Clone, Serialize)]
pub struct Plan {
    pub tag: String,
    pub version: String,
    pub prerelease: bool,
    pub commit: String,
    /// One entry per configured image, in dependency order.
    pub images: Vec<ImagePlan>,
    /// In phase order: builds, pushes, floating tag moves, the VERSION commit.
    pub steps: Vec<Step>,
    pub version_file: VersionDecision,
    pub notes: Vec<String>,
    /// Every image of the release is signed (`sign:`).
    pub signed: bool,
}

/// What happens to one image, and why.
#[derive(Debug, Clone, Serialize)]
pub struct ImagePlan {
    pub name: String,
    /// `registry/repository`, without tag.
    pub repository: String,
    pub action: ImageAction,
    /// Immutable tags of this release, primary first.
    pub version_tags: Vec<String>,
    pub floating: Vec<FloatingDecision>,
    /// The platforms it is built for, when configured; several make its
    /// version tag an OCI image index. Empty: the engine's own platform.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub platforms: Vec<String>,
}

impl ImagePlan {
    /// Published as an OCI image index of several platforms.
    pub fn is_index(&self) -> bool {
        self.platforms.len() > 1
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum ImageAction {
    Build {
        reason: String,
    },
    /// Already published from this commit; only missing version tags are added.
    Published {
        digest: String,
    },
    /// Same inputs as an earlier release: its manifest gets this release's tags.
    Retag {
        from: String,
        digest: String,
    },
    /// Left out by `--only` and not published yet.
    NotSelected,
    /// Already pushed under its staging tag from this commit (fan-out); a
    /// multi-platform image's index is assembled from its platforms' staging
    /// tags by this run, so its digest is not known yet.
    Staged {
        digest: Option<String>,
    },
}

#[derive(Debug, Clone, Serialize)]
pub struct FloatingDecision {
    pub tag: String,
    pub moves: bool,
    /// Points at this release once the plan has run.
    pub carried: bool,
    pub reason: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct VersionDecision {
    pub path: String,
    pub current: Option<String>,
    /// The new content, when this release changes it.
    pub next: Option<String>,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "step", rename_all = "snake_case")]
pub enum Step {
    Build(BuildStep),
    Index(IndexStep),
    Sign(SignStep),
    Push(PushStep),
    MoveTag(MoveStep),
    CommitVersion(VersionStep),
}

impl Step {
    /// 1 build, 2 push version tags, 3 move floating tags, 4 commit VERSION.
    pub fn phase(&self) -> u8 {
        match self {
            Step::Build(_) => 1,
            Step::Index(_) => 2,
            Step::Sign(_) => 2,
            Step::Push(_) => 2,
            Step::MoveTag(_) => 3,
            Step::CommitVersion(_) => 4,
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct BuildStep {
    pub image: String,
    /// What the build is called among the plan's builds: the image's name, or
    /// `image@platform` for one platform of a multi-platform image.
    pub id: String,
    /// The platform passed to the engine (`platforms:`); `None` builds for the engine's own.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub platform: Option<String>,
    /// The ids of this plan's builds whose images it builds `FROM`.
    pub waits_for: Vec<String>,
    /// Local reference the build is tagged as: `registry/repository:primary-tag`.
    pub reference: String,
    /// Context directory relative to the repository root (`""` = root).
    pub context: String,
    /// Dockerfile relative to the repository root.
    pub dockerfile: String,
    pub depends_on: Vec<String>,
    pub build_args: BTreeMap<String, String>,
    pub labels: BTreeMap<String, String>,
    pub no_cache: bool,
    /// Images whose layers the build may reuse (`build.cache_from`): read
    /// from the engine when there, else from the registry; none with `no_cache`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub cache_from: Vec<String>,
    pub network: String,
    /// Pushed under this staging tag as soon as it is built, while other images
    /// still build. A staging tag is never a release tag: installers never see it.
    pub stage_tag: Option<String>,
}

/// A multi-platform image's OCI image index, assembled from its platform
/// images (by reference: no layer moves) and pushed under the image's
/// staging tag before anything is signed or tagged.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IndexStep {
    pub image: String,
    pub repository: String,
    /// The staging tag the index is pushed under.
    pub tag: String,
    /// Its entries, in `platforms` order.
    pub manifests: Vec<IndexEntry>,
    /// Annotations of the index: the revision, version and input key relctl reads back.
    pub annotations: BTreeMap<String, String>,
}

/// One platform of an [`IndexStep`]: the staging tag its image is under.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IndexEntry {
    pub platform: String,
    pub tag: String,
    /// The digest staged under `tag`, when the plan checked it (finalize).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
}

/// The cosign signature (and attestation) of an image's digest, pushed
/// before any version tag points at it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SignStep {
    pub image: String,
    /// `registry/repository`, without tag.
    pub repository: String,
    /// The digest to sign, when known before the release runs.
    pub digest: Option<String>,
    /// Else the staging tag the image is built under in phase 1.
    pub stage_tag: Option<String>,
    pub signature: bool,
    pub attestation: bool,
    /// The platform the image was built for (the attestation names it).
    pub platform: String,
    /// One platform's manifest of a multi-platform image: signed, while
    /// the version tags point at the index.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub entry: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PushStep {
    pub image: String,
    pub repository: String,
    pub tags: Vec<String>,
    pub source: PushSource,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "from", content = "tag", rename_all = "snake_case")]
pub enum PushSource {
    /// Upload the image built in phase 1 (its first tag), then add the others by manifest copy.
    Build,
    /// Copy the manifest of this tag, already in the registry.
    Tag(String),
    /// Copy the manifest the build pushed under this staging tag in phase 1.
    Staged(String),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MoveStep {
    pub image: String,
    pub repository: String,
    pub tag: String,
    /// The version tag whose manifest the floating tag will point at.
    pub to: String,
    /// Digest the floating tag points at now, if it exists.
    pub from_digest: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VersionStep {
    pub path: String,
    pub from: Option<String>,
    pub to: String,
    pub message: String,
    pub also_update: Vec<String>,
}

/// Why a release cannot be planned.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error("--only names `{name}`, which is not an image in the config")]
    UnknownImage { name: String, known: Vec<String> },
    #[error("{field}: {path} is {what} on the release branch; relctl writes only regular files")]
    NotAFile { field: String, path: String, what: String },
    #[error("image {image}: {path} does not exist at commit {commit}")]
    MissingInput { image: String, path: String, commit: String },
    #[error("image {image} depends on {parent}, which is neither selected nor published as {tag}")]
    ParentUnavailable { image: String, parent: String, tag: String },
    #[error("cannot finalize {tag}: not staged from commit {commit}: {}", missing.iter().map(|(i, p)| match p { Some(p) => format!("{i} ({p})"), None => i.clone() }).collect::<Vec<_>>().join(", "))]
    NotStaged { tag: String, commit: String, missing: Vec<(String, Option<String>)> },
    #[error(
        "tag `{tag}` is not a release tag here: no template of `tags` renders an image tag for it within the registry's limit of {MAX_TAG_LEN} characters ([A-Za-z0-9_][A-Za-z0-9._-]*)"
    )]
    UnrenderableTag { tag: String },
    #[error("image {image} is built for {platform}, but its parent {parent} is not (its platforms: {})", parent_platforms.join(", "))]
    ParentPlatform { image: String, parent: String, platform: String, parent_platforms: Vec<String> },
    #[error("image {image} is built for {platform}, which the classic builder cannot build on this {engine} engine")]
    ClassicPlatform { image: String, platform: String, engine: String },
    #[error("--platform {platform}: none of the selected images is built for it")]
    UnknownPlatform { platform: String, known: Vec<String> },
    #[error("image {reference} already exists, built from commit {}, but tag {tag} is commit {tag_commit}; release tags are immutable", registry_commit.as_deref().unwrap_or("unknown (no revision label)"))]
    TagConflict { reference: String, tag: String, registry_commit: Option<String>, tag_commit: String },
}

impl PlanError {
    /// 2 for bad input, 1 for a state of the world the user must resolve.
    pub fn exit_code(&self) -> u8 {
        match self {
            PlanError::TagConflict { .. } | PlanError::NotStaged { .. } => 1,
            _ => 2,
        }
    }

    pub fn hint(&self) -> String {
        match self {
            PlanError::UnknownImage { known, .. } => format!("choose from: {}", known.join(", ")),
            PlanError::ParentPlatform { image, parent, platform, .. } => format!(
                "add {platform} to images.{parent}.platforms in release.yaml, or remove it from images.{image}.platforms: each platform of an image builds FROM its parent's image of that platform"
            ),
            PlanError::ClassicPlatform { .. } => {
                "set build.builder: buildkit (or auto) in release.yaml: BuildKit builds any platform's image; nothing was built".into()
            }
            PlanError::UnknownPlatform { known, .. } => format!("choose from: {}", known.join(", ")),
            PlanError::MissingInput { .. } => {
                "fix images.<name>.context/dockerfile in release.yaml, or tag a commit that has the file".into()
            }
            PlanError::ParentUnavailable { parent, .. } => {
                format!("add {parent} to --only, or release or stage (`release --only {parent} --stage`) it first")
            }
            PlanError::NotStaged { tag, missing, .. } => {
                let jobs: Vec<String> = missing
                    .iter()
                    .map(|(image, platform)| match platform {
                        Some(p) => format!("`relctl release {tag} --only {image} --platform {p} --stage`"),
                        None => format!("`relctl release {tag} --only {image} --stage`"),
                    })
                    .collect();
                format!("run {} (the fan-out build jobs) before finalizing; nothing was published", jobs.join(", "))
            }
            PlanError::NotAFile { field, .. } => {
                format!("set {field} in release.yaml to a regular file (or a path that does not exist yet); nothing was built")
            }
            PlanError::UnrenderableTag { .. } => {
                "tag a shorter version (a shorter pre-release or build suffix); the repository's other tags are not affected".into()
            }
            PlanError::TagConflict { .. } => {
                "a published version must not change; tag a new version, or pass --force to rebuild and overwrite it"
                    .into()
            }
        }
    }
}

/// Builds the plan for releasing `observed.target`. Pure: same input, same plan.
pub fn plan(config: &Config, observed: &Observed, opts: &PlanOptions) -> Result<Plan, PlanError> {
    let target = &observed.target;
    let known: Vec<String> = config.images.iter().map(|i| i.name.clone()).collect();
    if let Some(name) = opts.only.iter().flatten().find(|n| !known.contains(n)) {
        return Err(PlanError::UnknownImage { name: name.clone(), known });
    }
    if let Some((path, what)) = observed.unwritable.first() {
        let field = if *path == config.version_file { "version_file" } else { "also_update" };
        return Err(PlanError::NotAFile { field: field.into(), path: path.clone(), what: what.clone() });
    }

    platforms::check(config, &observed.platform, opts)?;
    let tags = image_tags(config, target)?;
    let mut planner = images::Planner::new(config, observed, opts, &tags);
    for image in &config.images {
        planner.image(image)?;
    }
    let images::Planner {
        mut notes,
        mut images,
        builds,
        mut indexes,
        mut signs,
        mut pushes,
        mut moves,
        not_staged,
        released,
        ..
    } = planner;
    platforms::check_builds(config, &observed.platform, &builds)?;
    if config.build.builder == crate::config::Builder::Classic && builds.iter().any(|b| !b.cache_from.is_empty()) {
        notes.push("build.builder: classic reads layer cache only from images already in the engine (`relctl import` leaves them there); BuildKit also reads the registry".into());
    }
    if !not_staged.is_empty() {
        return Err(PlanError::NotStaged {
            tag: target.raw.clone(),
            commit: observed.commit.clone(),
            missing: not_staged,
        });
    }
    if opts.stage_only {
        // Fan-out build job: the staging pushes are the whole job; finalize signs.
        signs.clear();
        indexes.clear();
        pushes.clear();
        moves.clear();
        for image in &mut images {
            image.floating.clear();
        }
    }

    let unreleased: Vec<&str> =
        config.images.iter().map(|i| i.name.as_str()).filter(|n| !released.contains_key(n)).collect();
    let (version_file, commit) = version_decision(config, observed, &unreleased);

    let mut steps: Vec<Step> = builds.into_iter().map(Step::Build).collect();
    steps.extend(indexes.into_iter().map(Step::Index));
    steps.extend(signs.into_iter().map(Step::Sign));
    steps.extend(pushes.into_iter().map(Step::Push));
    steps.extend(moves.into_iter().map(Step::MoveTag));
    steps.extend(commit.filter(|_| !opts.stage_only).map(Step::CommitVersion));

    Ok(Plan {
        tag: target.raw.clone(),
        version: target.version.to_string(),
        prerelease: target.is_prerelease(),
        commit: observed.commit.clone(),
        images,
        steps,
        version_file,
        notes,
        signed: config.sign.is_some(),
    })
}

pub use crate::config::oci::MAX_TAG_LEN;

/// The image tags of one release.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReleaseTags {
    /// Immutable version tags, primary first; never empty.
    pub version: Vec<String>,
    /// Floating tags with their scope.
    pub floating: Vec<(String, TagScope)>,
}

impl ReleaseTags {
    /// The version tag installers pull: the first of [`Self::version`].
    pub fn primary(&self) -> &str {
        &self.version[0]
    }
}

/// The image tags of a release, or [`PlanError::UnrenderableTag`] when no
/// version template renders a tag within the spec for it (e.g. a pre-release
/// suffix of 160 characters): such a tag is not a release tag.
pub fn image_tags(config: &Config, target: &ReleaseVersion) -> Result<ReleaseTags, PlanError> {
    let mut version = Vec::new();
    let mut floating = Vec::new();
    for t in &config.tags {
        // A template that applies but cannot name this release within the spec
        // refuses the release: no other template silently becomes its tag.
        match t.try_render(target) {
            Ok(Some(tag)) if is_tag(&tag) => match t.scope().is_floating() {
                true => floating.push((tag, t.scope())),
                false => version.push(tag),
            },
            Ok(None) => {}
            Ok(Some(_)) | Err(_) => return Err(PlanError::UnrenderableTag { tag: target.raw.clone() }),
        }
    }
    let version = dedup(version.into_iter());
    if version.is_empty() {
        return Err(PlanError::UnrenderableTag { tag: target.raw.clone() });
    }
    Ok(ReleaseTags { version, floating })
}

fn dedup(tags: impl Iterator<Item = String>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for t in tags {
        if !out.contains(&t) {
            out.push(t);
        }
    }
    out
}
