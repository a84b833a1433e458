//! The fan-out matrix: the builds a release needs, one entry per (image,
//! platform), in layers a GitHub Actions workflow can run as one matrix job
//! per layer (`relctl matrix`), each on the runner of its platform. Layer 0
//! needs nothing built by this release; layer n needs layer n-1.

use std::collections::BTreeMap;

use serde::Serialize;

use super::{Plan, Step};
use crate::config::Fanout;

/// One build on its own runner: `relctl release TAG --only IMAGE --platform PLATFORM --stage`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MatrixEntry {
    pub image: String,
    pub platform: String,
    /// The runner label of `platform` (`fanout.runners`), for `runs-on`.
    #[serde(rename = "runs-on")]
    pub runs_on: String,
    pub layer: usize,
    /// The builds of this release it builds on (their staging tags are pulled).
    pub needs: Vec<String>,
}

/// `include` for `strategy.matrix`, and the entries per layer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Matrix {
    pub tag: String,
    pub include: Vec<MatrixEntry>,
    /// `include` split by layer: `strategy.matrix.include` of each layer's job.
    pub layers: Vec<Vec<MatrixEntry>>,
}

/// The build steps of `plan`, layered by the builds they wait for; `engine`
/// is the platform of builds that name none.
pub fn matrix(plan: &Plan, fanout: &Fanout, engine: &str) -> Matrix {
    let builds: Vec<_> =
        plan.steps.iter().filter_map(|s| if let Step::Build(b) = s { Some(b) } else { None }).collect();
    let mut layer_of: BTreeMap<&str, usize> = BTreeMap::new();
    let mut include = Vec::new();
    // Build steps come parents first, so every parent's layer is known.
    for b in &builds {
        let needs: Vec<String> = b.waits_for.iter().filter(|d| layer_of.contains_key(d.as_str())).cloned().collect();
        let layer = needs.iter().map(|d| layer_of[d.as_str()] + 1).max().unwrap_or(0);
        layer_of.insert(&b.id, layer);
        let platform = b.platform.clone().unwrap_or_else(|| engine.to_string());
        let runs_on = fanout.runner(&platform).to_string();
        include.push(MatrixEntry { image: b.image.clone(), platform, runs_on, layer, needs });
    }
    include.sort_by_key(|e| e.layer);
    let depth = include.iter().map(|e| e.layer + 1).max().unwrap_or(0);
    let layers = (0..depth).map(|l| include.iter().filter(|e| e.layer == l).cloned().collect()).collect();
    Matrix { tag: plan.tag.clone(), include, layers }
}
