//! The fan-out matrix: the builds a release needs, one entry per (image,
//! platform), in layers a GitHub Actions workflow can run as one matrix job
//! per layer (`relctl matrix`), each on the runner of its platform. Layer 0
//! needs nothing built by this release; layer n needs layer n-1.
//! `layers` lists each layer's image names (as before platforms);
//! `include_by_layer` each layer's entries, for `strategy.matrix.include`.

use std::collections::BTreeMap;

use serde::Serialize;

use super::{Plan, Step};
use crate::config::Fanout;

/// One build on its own runner: `relctl release TAG --only IMAGE [--platform PLATFORM] --stage`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MatrixEntry {
    pub image: String,
    /// The platform to build (`--platform`); `null` for an image without
    /// `platforms`, built for its runner's own platform.
    pub platform: Option<String>,
    /// The runner label of `platform` (`fanout.runners`), for `runs-on`.
    #[serde(rename = "runs-on")]
    pub runs_on: String,
    pub layer: usize,
    /// The builds of this release it builds on (their staging tags are pulled).
    pub needs: Vec<String>,
}

/// `include` for `strategy.matrix`, and the builds per layer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Matrix {
    pub tag: String,
    pub include: Vec<MatrixEntry>,
    /// The image names of each layer.
    pub layers: Vec<Vec<String>>,
    /// `include` split by layer: `strategy.matrix.include` of each layer's job.
    pub include_by_layer: Vec<Vec<MatrixEntry>>,
}

/// The build steps of `plan`, layered by the builds they wait for.
pub fn matrix(plan: &Plan, fanout: &Fanout) -> Matrix {
    let builds: Vec<_> =
        plan.steps.iter().filter_map(|s| if let Step::Build(b) = s { Some(b) } else { None }).collect();
    let mut layer_of: BTreeMap<&str, usize> = BTreeMap::new();
    let mut include = Vec::new();
    // Build steps come parents first, so every parent's layer is known.
    for b in &builds {
        let needs: Vec<String> = b.waits_for.iter().filter(|d| layer_of.contains_key(d.as_str())).cloned().collect();
        let layer = needs.iter().map(|d| layer_of[d.as_str()] + 1).max().unwrap_or(0);
        layer_of.insert(&b.id, layer);
        let runs_on = b.platform.as_deref().map_or(fanout.default_runner.as_str(), |p| fanout.runner(p)).to_string();
        include.push(MatrixEntry { image: b.image.clone(), platform: b.platform.clone(), runs_on, layer, needs });
    }
    include.sort_by_key(|e| e.layer);
    let depth = include.iter().map(|e| e.layer + 1).max().unwrap_or(0);
    let include_by_layer: Vec<Vec<MatrixEntry>> =
        (0..depth).map(|l| include.iter().filter(|e| e.layer == l).cloned().collect()).collect();
    let layers = include_by_layer
        .iter()
        .map(|entries| {
            let mut names: Vec<String> = entries.iter().map(|e| e.image.clone()).collect();
            names.dedup();
            names
        })
        .collect();
    Matrix { tag: plan.tag.clone(), include, layers, include_by_layer }
}
