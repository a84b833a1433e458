//! What a notification says: a release published, a release failed, or
//! drift put back, told from a plan and the report of the run that carried
//! it out (or from an error). Pure data; `payload` renders it.

use serde::Serialize;

pub use crate::config::NotifyEvent as Kind;
use crate::plan::{Plan, Step};
use crate::progress::short_digest;
use crate::release::Report;

/// One image of a published release.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EventImage {
    pub image: String,
    /// `registry/repository`, without tag.
    pub repository: String,
    pub digest: String,
    /// The tags it carries after the run: version tags, then floating ones.
    pub tags: Vec<String>,
    /// Built by this run; false when its manifest was copied from an earlier release.
    pub built: bool,
}

/// Something to tell the webhooks about one release tag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub kind: Kind,
    pub tag: String,
    /// The SemVer version, without the tag prefix, when the tag is one.
    pub version: Option<String>,
    pub prerelease: bool,
    /// The tag's commit, when it was resolved.
    pub commit: Option<String>,
    /// Published: every image of the release with its digest.
    pub images: Vec<EventImage>,
    /// The VERSION commit this run made, if any.
    pub version_commit: Option<String>,
    /// Failed: the error with its causes, and what to do.
    pub error: Option<String>,
    pub hint: Option<String>,
    /// Drift: what was out of place and has been put back, one line each.
    pub repaired: Vec<String>,
}

impl Event {
    /// What a finished run of `plan` did worth telling: `published` when it
    /// pushed version tags, `drift` when it only moved floating tags, signed
    /// again or committed VERSION (the release was out already, so they were
    /// out of place or missing), nothing when it had nothing to do.
    pub fn from_release(plan: &Plan, report: &Report) -> Option<Event> {
        let pushed = plan.steps.iter().any(|s| matches!(s, Step::Push(_)));
        let repaired = repairs(plan);
        if !pushed && repaired.is_empty() {
            return None;
        }
        let notes = report.notes(plan);
        let images = notes
            .images
            .into_iter()
            .map(|i| EventImage {
                image: i.image,
                repository: i.repository,
                digest: i.digest,
                tags: i.tags,
                built: i.built,
            })
            .collect();
        Some(Event {
            kind: if pushed { Kind::Published } else { Kind::Drift },
            tag: plan.tag.clone(),
            version: Some(plan.version.clone()),
            prerelease: plan.prerelease,
            commit: Some(plan.commit.clone()),
            images,
            version_commit: report.version_commit.clone(),
            error: None,
            hint: None,
            repaired: if pushed { Vec::new() } else { repaired },
        })
    }

    /// A release of `tag` failed with `error` (its causes included) and `hint`.
    pub fn failed(
        tag: &str,
        version: Option<&crate::version::ReleaseVersion>,
        commit: Option<&str>,
        error: String,
        hint: String,
    ) -> Event {
        Event {
            kind: Kind::Failed,
            tag: tag.to_string(),
            version: version.map(|v| v.version.to_string()),
            prerelease: version.is_some_and(|v| v.is_prerelease()),
            commit: commit.map(str::to_string),
            images: Vec::new(),
            version_commit: None,
            error: Some(error),
            hint: Some(hint),
            repaired: Vec::new(),
        }
    }

    /// A `published` event for a release already announced by this process:
    /// its version tags were missing and have been pushed again, which is drift.
    pub fn into_restored(mut self) -> Event {
        self.kind = Kind::Drift;
        self.repaired = self
            .images
            .iter()
            .map(|i| format!("{} restored as {}", i.image, i.tags.first().map_or(self.tag.as_str(), String::as_str)))
            .collect();
        self
    }
}

/// The floating-tag moves, signatures and VERSION commit of a plan, told as
/// repairs (when the plan pushes no version tag, they put back what was lost).
fn repairs(plan: &Plan) -> Vec<String> {
    let mut out = Vec::new();
    for step in &plan.steps {
        match step {
            Step::MoveTag(m) => {
                let was = m
                    .from_digest
                    .as_deref()
                    .map_or("was missing".to_string(), |d| format!("pointed at {}", short_digest(d)));
                out.push(format!("{}:{} {was}; now {}", m.image, m.tag, m.to));
            }
            Step::CommitVersion(v) => {
                let was = v.from.as_deref().map_or("was missing".to_string(), |f| format!("named {f}"));
                out.push(format!("{} {was}; now {}", v.path, v.to));
            }
            // Signing an image already out: its signature or provenance was missing.
            Step::Sign(sign) => {
                let what = match (sign.signature, sign.attestation) {
                    (true, true) => "signature and provenance",
                    (true, false) => "signature",
                    _ => "provenance",
                };
                let of = sign.digest.as_deref().map(|d| format!(" of {}", short_digest(d))).unwrap_or_default();
                out.push(format!("{}: {what}{of} was missing; signed again", sign.image));
            }
            Step::Build(_) | Step::Index(_) | Step::Push(_) => {}
        }
    }
    out
}
