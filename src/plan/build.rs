//! What a build of one image reads and is called: its build step (context,
//! Dockerfile, build args with `<PARENT>_IMAGE`, OCI labels), its input key,
//! and its staging tag.

use std::collections::BTreeMap;

use super::{BuildStep, Observed, PlanError, PlanOptions, labels};
use crate::config::{Config, ImageConfig};

pub(super) fn build_step(
    config: &Config,
    observed: &Observed,
    opts: &PlanOptions,
    image: &ImageConfig,
    reference: String,
    parent_refs: &BTreeMap<&str, String>,
    key: Option<String>,
) -> Result<BuildStep, PlanError> {
    for (name, path) in &observed.missing_inputs {
        if *name == image.name {
            return Err(PlanError::MissingInput {
                image: name.clone(),
                path: path.clone(),
                commit: observed.commit.clone(),
            });
        }
    }
    let mut build_args = image.build_args.clone();
    for parent in &image.depends_on {
        let Some(reference) = parent_refs.get(parent.as_str()) else {
            return Err(PlanError::ParentUnavailable {
                image: image.name.clone(),
                parent: parent.clone(),
                tag: observed.target.raw.clone(),
            });
        };
        build_args.insert(parent_arg(parent), reference.clone());
    }
    let labels = release_labels(observed, key);
    let no_cache = opts.no_cache || !config.build.cache;
    Ok(BuildStep {
        cache_from: if no_cache { Vec::new() } else { cache_sources(config, observed, image) },
        image: image.name.clone(),
        id: image.name.clone(),
        platform: None,
        waits_for: Vec::new(),
        reference,
        context: image.context.clone(),
        dockerfile: image.dockerfile.clone(),
        depends_on: image.depends_on.clone(),
        build_args,
        labels,
        no_cache,
        network: config.build.network.clone(),
        stage_tag: None,
    })
}

/// The OCI labels of a release's image (and the annotations of its index):
/// created, revision, version, source and the input key `key`.
pub(super) fn release_labels(observed: &Observed, key: Option<String>) -> BTreeMap<String, String> {
    let mut labels = BTreeMap::from([
        (labels::CREATED.to_string(), observed.created.clone()),
        (labels::REVISION.to_string(), observed.commit.clone()),
        (labels::VERSION.to_string(), observed.target.version.to_string()),
    ]);
    // A local remote has no public address, and a filesystem path is no label.
    if !observed.source_url.is_empty() {
        labels.insert(labels::SOURCE.to_string(), observed.source_url.clone());
    }
    labels.extend(key.map(|k| (labels::INPUTS.to_string(), k)));
    labels
}

/// The layer cache sources of `image`'s build: with `previous`, the image's
/// newest earlier release in the registry and the newest earlier release tag
/// in git (which an engine may hold without the registry, after `relctl
/// import`), then the configured references.
fn cache_sources(config: &Config, observed: &Observed, image: &ImageConfig) -> Vec<String> {
    let repository = config.image_repo(image);
    let mut refs = Vec::new();
    if config.build.cache_from.previous {
        if let Some((tag, _)) = observed.previous.get(&image.name) {
            refs.push(format!("{repository}:{tag}"));
        }
        let target = &observed.target.version;
        let earlier =
            observed.release_tags.iter().filter(|t| t.version < *target).max_by(|a, b| a.version.cmp(&b.version));
        if let Some(tags) = earlier.and_then(|t| super::image_tags(config, t).ok()) {
            refs.push(format!("{repository}:{}", tags.primary()));
        }
    }
    refs.extend(config.build.cache_from.refs.iter().cloned());
    let mut seen = std::collections::BTreeSet::new();
    refs.retain(|r| seen.insert(r.clone()));
    refs
}

/// cosign's tag for the artifact of `digest`: `sha256-<hex>.<suffix>` (`sig`, `att`).
pub fn artifact_tag(digest: &str, suffix: &str) -> String {
    format!("{}.{suffix}", digest.replacen(':', "-", 1))
}

/// The staging tag of a release's image built from `commit`:
/// `relctl-stage-<primary tag>-<commit, 12 hex>`, cut to the 128 characters a tag may have.
pub fn stage_tag(primary: &str, commit: &str) -> String {
    let mut tag = format!("relctl-stage-{primary}-{}", &commit[..commit.len().min(12)]);
    tag.truncate(128);
    tag
}

/// The input key of an image's build for `platform`: SHA-256 over
/// everything its build reads (the context digest: the Dockerfile and the
/// context files it reads after .dockerignore, or every file of the context,
/// see `ContextSpec::summary`; the build arguments from the config, the
/// platform) and its parents' keys for that platform. Parent image references
/// are left out: they name the release, not the content. `None` when a
/// parent's key is unknown.
pub fn key_of(context: &str, platform: &str, image: &ImageConfig, keys: &BTreeMap<&str, String>) -> Option<String> {
    use sha2::Digest;
    let mut h = sha2::Sha256::new();
    h.update(format!(
        "relctl-inputs/v2
context {context}
platform {platform}
"
    ));
    for (k, v) in &image.build_args {
        h.update(format!("arg {k}={v}\n"));
    }
    for parent in &image.depends_on {
        h.update(format!("parent {parent} {}\n", keys.get(parent.as_str())?));
    }
    Some(format!("sha256:{:x}", h.finalize()))
}

/// The build argument a child receives for a parent: `<PARENT>_IMAGE`.
pub fn parent_arg(parent: &str) -> String {
    format!("{}_IMAGE", parent.to_uppercase().replace(['-', '.'], "_"))
}
