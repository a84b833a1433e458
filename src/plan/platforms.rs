//! Multi-platform images, as the planner sees them: each image's platforms,
//! its input keys (one per platform, and the index's over all of them), the
//! staging tag of each platform's image, and the checks a plan refuses on.

use std::collections::BTreeMap;

use super::BuildStep;
use super::{PlanError, PlanOptions, key_of};
use crate::config::{Builder, Config, ImageConfig};

/// The platforms `image` is built for: its configured ones, else the engine's.
pub fn platforms_of(image: &ImageConfig, engine: &str) -> Vec<String> {
    match image.platforms.is_empty() {
        true => vec![engine.to_string()],
        false => image.platforms.clone(),
    }
}

/// An image's input keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageKeys {
    /// The key of each platform's build, in the image's platform order.
    pub platforms: Vec<(String, String)>,
    /// The image's key: its one platform's, or the index's over every platform's.
    pub image: String,
}

impl ImageKeys {
    pub fn of(&self, platform: &str) -> Option<&str> {
        self.platforms.iter().find(|(p, _)| p == platform).map(|(_, k)| k.as_str())
    }
}

/// The input keys of every image whose inputs could be read: `contexts` are
/// the context digests by image, `engine` the engine's platform. A child's key
/// for a platform takes its parent's key for that platform.
pub fn image_keys(config: &Config, contexts: &BTreeMap<String, String>, engine: &str) -> BTreeMap<String, ImageKeys> {
    let mut out: BTreeMap<String, ImageKeys> = BTreeMap::new();
    // Images come parents first.
    for image in &config.images {
        let Some(context) = contexts.get(&image.name) else { continue };
        let mut platforms = Vec::new();
        for platform in platforms_of(image, engine) {
            let parents: Option<BTreeMap<&str, String>> =
                image.depends_on.iter().map(|p| Some((p.as_str(), out.get(p)?.of(&platform)?.to_string()))).collect();
            let Some(key) = parents.and_then(|parents| key_of(context, &platform, image, &parents)) else {
                break;
            };
            platforms.push((platform, key));
        }
        if platforms.len() != platforms_of(image, engine).len() {
            continue;
        }
        let image_key = match &platforms[..] {
            [(_, only)] => only.clone(),
            all => index_key(all),
        };
        out.insert(image.name.clone(), ImageKeys { platforms, image: image_key });
    }
    out
}

/// The key of a multi-platform image: SHA-256 over its platforms' keys in order.
pub fn index_key(platforms: &[(String, String)]) -> String {
    use sha2::Digest;
    let mut h = sha2::Sha256::new();
    h.update("relctl-inputs/v2 index\n");
    for (platform, key) in platforms {
        h.update(format!("platform {platform} {key}\n"));
    }
    format!("sha256:{:x}", h.finalize())
}

/// The staging tag of one platform's image of a multi-platform image:
/// the image's staging tag, then the platform (`linux-arm64`), within 128 characters.
pub fn platform_stage_tag(stage: &str, platform: &str) -> String {
    let suffix = platform.replace('/', "-");
    let keep = 128usize.saturating_sub(suffix.len() + 1).min(stage.len());
    format!("{}-{suffix}", &stage[..keep])
}

/// Every staging tag a fan-out of the release staged as `stage` may have
/// pushed: `stage` itself, and each platform's of every multi-platform image.
pub fn stage_tags(config: &Config, stage: &str, engine: &str) -> Vec<String> {
    let mut tags = vec![stage.to_string()];
    for image in config.images.iter().filter(|i| i.is_multi_platform()) {
        for platform in platforms_of(image, engine) {
            let tag = platform_stage_tag(stage, &platform);
            if !tags.contains(&tag) {
                tags.push(tag);
            }
        }
    }
    tags
}

/// What a plan refuses before it looks at any image: a child built for a
/// platform its parent is not, and `--platform` naming no selected image's platform.
pub fn check(config: &Config, engine: &str, opts: &PlanOptions) -> Result<(), PlanError> {
    for image in &config.images {
        let mine = platforms_of(image, engine);
        for parent in image.depends_on.iter().filter_map(|p| config.image(p)) {
            let theirs = platforms_of(parent, engine);
            if let Some(platform) = mine.iter().find(|p| !theirs.contains(p)) {
                return Err(PlanError::ParentPlatform {
                    image: image.name.clone(),
                    parent: parent.name.clone(),
                    platform: platform.clone(),
                    parent_platforms: theirs,
                });
            }
        }
    }
    if let Some(platform) = &opts.platform {
        let selected = config.images.iter().filter(|i| opts.only.as_ref().is_none_or(|o| o.contains(&i.name)));
        let mut known: Vec<String> = selected.flat_map(|i| platforms_of(i, engine)).collect();
        known.sort();
        known.dedup();
        if !known.contains(platform) {
            return Err(PlanError::UnknownPlatform { platform: platform.clone(), known });
        }
    }
    Ok(())
}

/// A build for a platform other than the engine's, which the classic builder
/// cannot make: only what this plan builds counts (verify, pin or a retag
/// build nothing, and a fan-out job builds its own platform only).
pub fn check_builds(config: &Config, engine: &str, builds: &[BuildStep]) -> Result<(), PlanError> {
    if config.build.builder != Builder::Classic {
        return Ok(());
    }
    match builds.iter().find_map(|b| Some((b, b.platform.as_deref().filter(|p| *p != engine)?))) {
        Some((b, platform)) => Err(PlanError::ClassicPlatform {
            image: b.image.clone(),
            platform: platform.to_string(),
            engine: engine.to_string(),
        }),
        None => Ok(()),
    }
}
