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
    /// With `--key`: the signature (and with `--provenance`, the attestation) checked and good.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signed: Option<bool>,
    /// Of a multi-platform image (`digest` is its index's): each platform's image found.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub platforms: Vec<VerifiedPlatform>,
}

/// One platform's image of a multi-platform release image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VerifiedPlatform {
    pub platform: String,
    pub digest: String,
    pub revision: Option<String>,
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
                signed: None,
                platforms: Vec::new(),
            }
        })
        .collect();
    Verification { tag: plan.tag.clone(), commit: plan.commit.clone(), images }
}

/// Checks every platform of each multi-platform image of `plan` that `v`
/// found: its index names each platform the release builds, and each
/// platform's image was built from the commit the index says. `repository`
/// maps an image name to its path under the registry.
pub async fn check_platforms(
    v: &mut Verification,
    plan: &Plan,
    registry: &impl crate::registry::Registry,
    repository: impl Fn(&str) -> String,
) -> Result<(), crate::registry::RegistryError> {
    for image in v.images.iter_mut().filter(|i| i.problem.is_none()) {
        let Some(planned) = plan.images.iter().find(|p| p.name == image.image).filter(|p| p.is_index()) else {
            continue;
        };
        let path = repository(&image.image);
        // The index observed (by digest: the one whose revision was checked), else its tag.
        let index = image.digest.as_deref().unwrap_or(&planned.version_tags[0]);
        let found = registry.platforms(&path, index).await?.unwrap_or_default();
        let names: Vec<&str> = found.iter().map(|(p, _)| p.as_str()).collect();
        let missing: Vec<&str> = planned.platforms.iter().map(String::as_str).filter(|p| !names.contains(p)).collect();
        if !missing.is_empty() {
            let holds = if names.is_empty() { "a single-platform image".to_string() } else { names.join(", ") };
            image.problem = Some(format!("{} has no {} image (it holds {holds})", image.reference, missing.join(", ")));
            continue;
        }
        for (platform, digest) in found.iter().filter(|(p, _)| planned.platforms.contains(p)) {
            let revision = registry.inspect_tag(&path, digest).await?.and_then(|t| t.revision);
            if revision != image.revision {
                image.problem.get_or_insert(format!(
                    "{}: its {platform} image {digest} was built from {}, not {}",
                    image.reference,
                    revision.as_deref().unwrap_or("an unknown commit (no revision label)"),
                    image.revision.as_deref().unwrap_or("the commit the index names")
                ));
            }
            image.platforms.push(VerifiedPlatform { platform: platform.clone(), digest: digest.clone(), revision });
        }
    }
    Ok(())
}

/// What `verify --key` checks besides the tags: cosign signatures made with
/// the key whose public half is `key`, and with `provenance`, attestations
/// naming the tag's commit.
pub struct SignatureCheck {
    pub key: p256::ecdsa::VerifyingKey,
    /// The public key file, for messages.
    pub key_name: String,
    pub provenance: bool,
}

/// Checks the signature (and attestation) of every image `v` found, and of
/// each platform's image of a multi-platform one, marking each image
/// `signed` or giving it the problem; `repository` maps an image name to its
/// path under the registry.
pub async fn check_signatures(
    v: &mut Verification,
    check: &SignatureCheck,
    registry: &impl crate::registry::Registry,
    repository: impl Fn(&str) -> String,
) -> Result<(), crate::registry::RegistryError> {
    for image in v.images.iter_mut().filter(|i| i.problem.is_none()) {
        let Some(digest) = image.digest.clone() else { continue };
        let path = repository(&image.image);
        let digests = std::iter::once(digest).chain(image.platforms.iter().map(|p| p.digest.clone()));
        let mut problem = None;
        for digest in digests {
            if let Some(p) = signature_problem(registry, &path, &digest, check, &v.commit).await? {
                problem = Some(format!("{}@{digest}: {p} ({})", image.reference, check.key_name));
                break;
            }
        }
        image.signed = Some(problem.is_none());
        image.problem = problem;
    }
    Ok(())
}

/// Why the signature (or, with provenance, the attestation) of `digest` does not hold.
async fn signature_problem(
    registry: &impl crate::registry::Registry,
    path: &str,
    digest: &str,
    check: &SignatureCheck,
    commit: &str,
) -> Result<Option<String>, crate::registry::RegistryError> {
    use crate::sign::cosign::{self, Invalid};
    let sig_tag = cosign::tag_for(digest, "sig");
    let problem = match registry.get_artifact(path, &sig_tag).await? {
        None => Some(Invalid::Missing { tag: sig_tag }.to_string()),
        Some(layers) => {
            let results: Vec<_> = layers
                .iter()
                .map(|l| {
                    let sig = l.annotations.get(cosign::SIGNATURE_ANNOTATION).and_then(|s| s.as_str()).unwrap_or("");
                    cosign::verify_signature(&check.key, digest, &l.bytes, sig)
                })
                .collect();
            match results.iter().find(|r| r.is_ok()) {
                Some(_) => None,
                None => Some(
                    results.into_iter().find_map(Result::err).map_or("no signature layer".into(), |e| e.to_string()),
                ),
            }
        }
    };
    if problem.is_none() && check.provenance {
        return provenance_problem(registry, path, digest, check, commit).await;
    }
    Ok(problem)
}

/// Why the attestation of `digest` does not hold: missing, signed with
/// another key, or not about this image and `commit`.
async fn provenance_problem(
    registry: &impl crate::registry::Registry,
    path: &str,
    digest: &str,
    check: &SignatureCheck,
    commit: &str,
) -> Result<Option<String>, crate::registry::RegistryError> {
    use crate::sign::cosign::{self, Invalid};
    let tag = cosign::tag_for(digest, "att");
    let Some(layers) = registry.get_artifact(path, &tag).await? else {
        return Ok(Some(format!("no provenance ({tag} is missing)")));
    };
    let hex = digest.strip_prefix("sha256:").unwrap_or(digest);
    let Some(layer) = layers.first() else { return Ok(Some("the provenance artifact has no layer".into())) };
    let statement = match cosign::verify_attestation(&check.key, &layer.bytes) {
        Ok(statement) => statement,
        Err(Invalid::WrongKey) => return Ok(Some("the provenance does not verify with the given key".into())),
        Err(e) => return Ok(Some(format!("provenance: {e}"))),
    };
    let subject = statement.pointer("/subject/0/digest/sha256").and_then(|d| d.as_str());
    let deps = statement.pointer("/predicate/buildDefinition/resolvedDependencies").and_then(|d| d.as_array());
    let names_commit =
        deps.is_some_and(|d| d.iter().any(|x| x.pointer("/digest/gitCommit").and_then(|c| c.as_str()) == Some(commit)));
    Ok(if subject != Some(hex) {
        Some("the provenance is about another image".into())
    } else if !names_commit {
        Some(format!("the provenance does not name commit {commit}"))
    } else {
        None
    })
}
