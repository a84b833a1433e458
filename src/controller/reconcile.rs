//! One reconcile: bring every release tag in scope to its desired state
//! (every image carries the version tag, floating tags on the highest
//! eligible release, VERSION on the highest stable release), oldest first.
//!
//! Registry cost is O(images): each repository is listed once; a tag whose
//! images are all listed is taken as released, and only releases that are a
//! floating-tag or VERSION target are observed in full (digests and labels).

use std::collections::BTreeSet;

use crate::config::{Config, TagScope};
use crate::docker::ImageBuilder;
use crate::git::GitRepo;
use crate::plan::{self, PlanOptions, Step, floating};
use crate::registry::Registry;
use crate::release::observe::{self, RegistryFailure};
use crate::release::{Executor, ReleaseError};
use crate::version::ReleaseVersion;

use super::trigger::Shutdown;

/// What one reconcile did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub in_scope: Vec<String>,
    /// Tags whose plan had steps, in the order they ran.
    pub released: Vec<String>,
    pub builds: u64,
    pub pushes: u64,
    /// Tags that could not be converged, with why (the others still were).
    pub failed: Vec<(String, String)>,
    /// Stopped early by shutdown.
    pub interrupted: bool,
}

/// The tags reconcile looks after: semver tags from `since` on, the newest
/// `max_tags` of them, plus explicitly `requested` ones (from webhooks), oldest first.
pub fn scope(
    config: &Config,
    tags: &[(ReleaseVersion, String)],
    requested: &BTreeSet<String>,
) -> Vec<(ReleaseVersion, String)> {
    let since_ok = |v: &ReleaseVersion| config.reconcile.since.as_ref().is_none_or(|s| v.cmp_release(s).is_ge());
    let mut chosen: Vec<(ReleaseVersion, String)> =
        tags.iter().rev().filter(|(v, _)| since_ok(v)).take(config.reconcile.max_tags).cloned().collect();
    for (v, c) in tags {
        if requested.contains(&v.raw) && since_ok(v) && !chosen.iter().any(|(x, _)| x.raw == v.raw) {
            chosen.push((v.clone(), c.clone()));
        }
    }
    chosen.sort_by(|a, b| a.0.cmp_release(&b.0));
    chosen
}

/// Whether `tag` is where a floating tag or VERSION should point.
fn is_target(config: &Config, tag: &ReleaseVersion, all: &[ReleaseVersion]) -> bool {
    if tag.is_prerelease() {
        return false;
    }
    let floating_scopes: BTreeSet<TagScope> =
        config.tags.iter().map(|t| t.scope()).filter(|s| s.is_floating()).collect();
    floating_scopes.iter().chain(std::iter::once(&TagScope::Global)).any(|s| floating::eligible(tag, *s, all).is_ok())
}

pub async fn reconcile_once<G: GitRepo, B: ImageBuilder, R: Registry>(
    executor: &Executor<'_, G, B, R>,
    requested: &BTreeSet<String>,
    shutdown: Option<&Shutdown>,
) -> Result<Outcome, ReleaseError> {
    let (config, git, registry) = (executor.config, executor.git, executor.registry);
    tokio::task::block_in_place(|| git.fetch())?;
    let tags = observe::release_tags(config, git, true)?;
    for r in requested {
        if !tags.iter().any(|(v, _)| &v.raw == r) {
            tracing::warn!(tag = %r, "requested tag is not a semver tag of the remote; ignored");
        }
    }
    let all: Vec<ReleaseVersion> = tags.iter().map(|(v, _)| v.clone()).collect();
    let in_scope = scope(config, &tags, requested);
    let mut outcome = Outcome { in_scope: in_scope.iter().map(|(v, _)| v.raw.clone()).collect(), ..Default::default() };

    let mut listings = Vec::new();
    for image in &config.images {
        listings.push((image.name.as_str(), registry.tags(&image.repository).await?));
    }

    for (tag, commit) in &in_scope {
        if shutdown.is_some_and(Shutdown::is_set) {
            outcome.interrupted = true;
            break;
        }
        let (version_tags, _) = plan::image_tags(config, tag);
        let missing: Vec<&str> =
            listings.iter().filter(|(_, listed)| !listed.contains(&version_tags[0])).map(|(name, _)| *name).collect();
        if missing.is_empty() && !is_target(config, tag, &all) {
            continue;
        }
        if !missing.is_empty() {
            tracing::info!(tag = %tag.raw, "drift: {} not in the registry for {}", missing.join(", "), version_tags[0]);
        }
        let observed = observe::observe(config, git, registry, tag, commit, RegistryFailure::Fatal, false).await?;
        let plan = match plan::plan(config, &observed, &PlanOptions::default()) {
            Ok(p) => p,
            Err(e) => {
                tracing::error!(tag = %tag.raw, "cannot reconcile: {e}");
                outcome.failed.push((tag.raw.clone(), e.to_string()));
                continue;
            }
        };
        if plan.steps.is_empty() {
            continue;
        }
        // Drift: the release was already out, yet a floating tag points elsewhere.
        for step in &plan.steps {
            if let Step::MoveTag(m) = step {
                let released_before = !plan.steps.iter().any(|s| matches!(s, Step::Push(p) if p.image == m.image));
                if let (Some(from), true) = (&m.from_digest, released_before) {
                    tracing::info!(tag = %tag.raw, "drift: {}:{} points at {from}, not {}", m.repository, m.tag, m.to);
                }
            }
        }
        let report = executor.execute(&plan, tag).await?;
        outcome.builds += report.images.iter().filter(|i| i.built).count() as u64;
        outcome.pushes += report.images.len() as u64;
        outcome.released.push(tag.raw.clone());
    }
    Ok(outcome)
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    fn tags(names: &[&str]) -> Vec<(ReleaseVersion, String)> {
        let mut t: Vec<_> = names.iter().map(|n| (ReleaseVersion::parse(n, "v").unwrap(), format!("c-{n}"))).collect();
        t.sort_by(|a, b| a.0.cmp_release(&b.0));
        t
    }

    fn cfg(extra: &str) -> Config {
        crate::config::parse(
            &format!("namespace: n\nproject: p\nimages: {{ a: {{ context: . }} }}\n{extra}"),
            Path::new("r.yaml"),
        )
        .unwrap()
    }

    fn names(s: &[(ReleaseVersion, String)]) -> Vec<&str> {
        s.iter().map(|(v, _)| v.raw.as_str()).collect()
    }

    #[test]
    fn scope_is_the_newest_max_tags_from_since_oldest_first() {
        let all = tags(&["v0.9.0", "v1.0.0", "v1.1.0", "v1.2.0-rc.1", "v1.2.0", "v2.0.0"]);
        let none = BTreeSet::new();
        assert_eq!(
            names(&scope(&cfg(""), &all, &none)),
            ["v0.9.0", "v1.0.0", "v1.1.0", "v1.2.0-rc.1", "v1.2.0", "v2.0.0"]
        );
        assert_eq!(names(&scope(&cfg("reconcile: { max_tags: 2 }"), &all, &none)), ["v1.2.0", "v2.0.0"]);
        assert_eq!(
            names(&scope(&cfg("reconcile: { since: v1.1.0 }"), &all, &none)),
            ["v1.1.0", "v1.2.0-rc.1", "v1.2.0", "v2.0.0"]
        );
        let asked = BTreeSet::from(["v1.0.0".to_string(), "v0.9.0".to_string()]);
        assert_eq!(
            names(&scope(&cfg("reconcile: { since: v1.0.0, max_tags: 1 }"), &all, &asked)),
            ["v1.0.0", "v2.0.0"],
            "a requested tag joins the scope, but never below since"
        );
    }

    #[test]
    fn targets_are_the_highest_release_per_floating_line() {
        let all: Vec<ReleaseVersion> =
            tags(&["v1.0.4", "v1.0.5", "v1.1.0", "v2.0.0-rc.1"]).into_iter().map(|(v, _)| v).collect();
        let target = |c: &Config, t: &str| is_target(c, &ReleaseVersion::parse(t, "v").unwrap(), &all);
        let plain = cfg("");
        assert!(target(&plain, "v1.1.0"));
        assert!(!target(&plain, "v1.0.5"));
        assert!(!target(&plain, "v2.0.0-rc.1"));
        let lines = cfg("tags: ['{{raw}}', '{{major}}.{{minor}}']");
        assert!(target(&lines, "v1.0.5"), "highest of the 1.0 line");
        assert!(!target(&lines, "v1.0.4"));
    }
}
