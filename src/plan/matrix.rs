//! The fan-out matrix: the images a release must build, in layers a GitHub
//! Actions workflow can run as one matrix job per layer (`relctl matrix`).
//! Layer 0 needs nothing built by this release; layer n needs layer n-1.

use std::collections::BTreeMap;

use serde::Serialize;

use super::{Plan, Step};

/// One image to build on its own runner.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MatrixEntry {
    pub image: String,
    pub layer: usize,
    /// The images of this release it builds on (their staging tags are pulled).
    pub needs: Vec<String>,
}

/// `include` for `strategy.matrix`, and the image names per layer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Matrix {
    pub tag: String,
    pub include: Vec<MatrixEntry>,
    pub layers: Vec<Vec<String>>,
}

/// The build steps of `plan`, layered by their `depends_on` among themselves.
pub fn matrix(plan: &Plan) -> Matrix {
    let builds: Vec<_> =
        plan.steps.iter().filter_map(|s| if let Step::Build(b) = s { Some(b) } else { None }).collect();
    let mut layer_of: BTreeMap<&str, usize> = BTreeMap::new();
    let mut include = Vec::new();
    // Build steps come parents first, so every parent's layer is known.
    for b in &builds {
        let needs: Vec<String> = b.depends_on.iter().filter(|d| layer_of.contains_key(d.as_str())).cloned().collect();
        let layer = needs.iter().map(|d| layer_of[d.as_str()] + 1).max().unwrap_or(0);
        layer_of.insert(&b.image, layer);
        include.push(MatrixEntry { image: b.image.clone(), layer, needs });
    }
    include.sort_by_key(|e| e.layer);
    let depth = include.iter().map(|e| e.layer + 1).max().unwrap_or(0);
    let layers =
        (0..depth).map(|l| include.iter().filter(|e| e.layer == l).map(|e| e.image.clone()).collect()).collect();
    Matrix { tag: plan.tag.clone(), include, layers }
}
