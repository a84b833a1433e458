//! What the world looks like, as the planner sees it: gathered by the
//! adapters (git, registry), handed to [`super::plan`] as plain data.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::version::ReleaseVersion;

/// Everything the planner needs to know, observed before planning.
#[derive(Debug, Clone)]
pub struct Observed {
    /// The release being planned.
    pub target: ReleaseVersion,
    /// Full id of the commit the tag points at (or HEAD for an untagged plan).
    pub commit: String,
    /// Every semver tag in the repository, the target included when it exists.
    pub release_tags: Vec<ReleaseVersion>,
    /// VERSION at the tip of the release branch, as read from the remote.
    pub version_file: Option<String>,
    /// Build inputs (Dockerfile, context directory) absent at `commit`: (image, path).
    pub missing_inputs: Vec<(String, String)>,
    /// Files the VERSION commit writes (VERSION, `also_update`) that are not
    /// regular files on the release branch: (path, what is there instead).
    pub unwritable: Vec<(String, String)>,
    /// Registry state per image name.
    pub registry: BTreeMap<String, RegistryView>,
    /// `org.opencontainers.image.source`: the repository URL, without credentials.
    pub source_url: String,
    /// `org.opencontainers.image.created`, RFC 3339.
    pub created: String,
    /// Digest of each image's build inputs at `commit`: the Dockerfile and the
    /// context files it reads, or the whole context (see `ContextSpec::summary`).
    pub context_digests: BTreeMap<String, String>,
    /// Files relctl rewrites after every release (VERSION, `also_update`)
    /// that an image's build context sends, by image; images without any are absent.
    pub rewritten_in_context: BTreeMap<String, Vec<String>>,
    /// With `build.inputs: dockerfile`: images whose inputs could not be told
    /// from their Dockerfile, so their key covers the whole context, and why.
    pub whole_context: BTreeMap<String, String>,
    /// For images whose version tag is missing: the newest earlier release in
    /// the registry (tag and what it holds), a candidate to retag when unchanged.
    pub previous: BTreeMap<String, (String, RemoteTag)>,
    /// The platform images are built for, e.g. `linux/amd64`.
    pub platform: String,
    /// With `sign:`, the cosign artifact tags (`sha256-<hex>.sig`, `.att`)
    /// each image's repository lists.
    pub artifacts: BTreeMap<String, std::collections::BTreeSet<String>>,
    /// With `sign:`, the platform images (platform, digest) of the indexes of
    /// multi-platform images already out (version tag, retag candidate), by index digest.
    pub index_platforms: BTreeMap<String, Vec<(String, String)>>,
}

/// What the registry holds for one image repository.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RegistryView {
    /// The tags relctl cares about that exist, with their digest and revision label.
    Known(BTreeMap<String, RemoteTag>),
    /// The registry could not be read (only tolerated by `relctl plan`); why.
    Unknown(String),
}

/// One tag in the registry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RemoteTag {
    pub digest: String,
    /// `org.opencontainers.image.revision` of the image's config, when read.
    pub revision: Option<String>,
    /// `io.relctl.inputs`: the input key the image was built from, when read.
    pub inputs: Option<String>,
}

impl RegistryView {
    pub fn tag(&self, tag: &str) -> Option<&RemoteTag> {
        match self {
            RegistryView::Known(tags) => tags.get(tag),
            RegistryView::Unknown(_) => None,
        }
    }
}
