//! `relctl verify`: is every image of a release in the registry under its
//! version tag, built from the tag's commit? What installers check before
//! pinning, pulling or exporting a version.

use serde::Serialize;

use crate::plan::{ImageAction, Observed, Plan};

/// One image of the release as found in the registry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VerifiedImage {
    pub image: String,
    /// `registry/repository:tag`.
    pub reference: String,
    pub digest: Option<String>,
    pub revision: Option<String>,
    /// Why the image does not carry the release, when it does not.
    pub problem: Option<String>,
}

/// Every image of a release, checked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Verification {
    pub tag: String,
    pub commit: String,
    pub images: Vec<VerifiedImage>,
}

impl Verification {
    pub fn ok(&self) -> bool {
        self.images.iter().all(|i| i.problem.is_none())
    }

    /// The images that fail, by name.
    pub fn failing(&self) -> Vec<&str> {
        self.images.iter().filter(|i| i.problem.is_some()).map(|i| i.image.as_str()).collect()
    }
}

/// Checks each image of the release `plan` was made for, from what was
/// `observed` (plan it with `force`, so a tag from another commit is reported
/// here rather than refused). An image carries the release when its version
/// tag was built from the tag's commit, or holds the same inputs (retagged).
pub fn verify(plan: &Plan, observed: &Observed) -> Verification {
    let images = plan
        .images
        .iter()
        .map(|i| {
            let tag = &i.version_tags[0];
            let reference = format!("{}:{tag}", i.repository);
            let remote = observed.registry.get(&i.name).and_then(|v| v.tag(tag));
            let problem = match (&i.action, remote) {
                (ImageAction::Published { .. }, _) => None,
                (_, None) => Some(format!("{reference} is not in the registry")),
                (_, Some(t)) => Some(format!(
                    "{reference} was built from {}, not from {} (the commit of {})",
                    t.revision.as_deref().unwrap_or("an unknown commit (no revision label)"),
                    plan.commit,
                    plan.tag
                )),
            };
            VerifiedImage {
                image: i.name.clone(),
                reference,
                digest: remote.map(|t| t.digest.clone()),
                revision: remote.and_then(|t| t.revision.clone()),
                problem,
            }
        })
        .collect();
    Verification { tag: plan.tag.clone(), commit: plan.commit.clone(), images }
}
