//! `relctl status`: where every release tag in the reconcile scope stands,
//! where the floating tags point and what VERSION names, read-only.
//!
//! The registry is read with reconcile's budget: each repository is listed
//! once ([`Registry::tags`]); only the releases floating tags and VERSION
//! should point at are read in full (manifest and config), and each floating
//! tag's digest, in full only when it is not on its release.
//! [`derive`] turns what was observed into rows and drift marks; it is pure.
//!
//! How a release's state is told, from the listings:
//! - `published`: every image's repository lists the release's primary version tag;
//!   `pre-release` when that release is a pre-release;
//! - `partial: k/n`: k of the n images list it; `not built`: none does;
//! - `failed: <reason>`: a release read in full (a floating tag's or VERSION's
//!   target) whose image was built from another commit with other inputs: the
//!   git tag was moved after the release. Releases not read in full are judged
//!   by their listing only.
//!
//! An image read in full was `built` from the tag when its revision label is
//! the tag's commit, and `retagged` when it is another commit but its
//! `io.relctl.inputs` label is the input key of the tag's commit.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use crate::config::{Config, TagScope};
use crate::git::{GitError, GitRepo};
use crate::plan::{self, RemoteTag, floating};
use crate::registry::Registry;
use crate::release::ReleaseError;
use crate::release::observe;
use crate::version::ReleaseVersion;

use super::Session;

/// What status observed, as plain data.
#[derive(Debug, Clone, Default)]
pub struct Observation {
    /// Every release tag with its commit, oldest first.
    pub tags: Vec<(ReleaseVersion, String)>,
    /// The tags in the reconcile scope, oldest first.
    pub scope: Vec<(ReleaseVersion, String)>,
    /// Each image's tags in its repository, by image name.
    pub listings: BTreeMap<String, Vec<String>>,
    /// Tags read in full: (image, tag) -> digest and labels.
    pub read: BTreeMap<(String, String), RemoteTag>,
    /// Input keys by commit, then image: for read images not built from their tag's commit.
    pub keys: BTreeMap<String, BTreeMap<String, String>>,
    /// VERSION at the tip of the release branch.
    pub version_file: Option<String>,
}

/// The state of one release tag.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum State {
    Published,
    PreRelease,
    Partial { published: usize, of: usize },
    NotBuilt,
    Failed { reason: String },
}

impl std::fmt::Display for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            State::Published => write!(f, "published"),
            State::PreRelease => write!(f, "pre-release"),
            State::Partial { published, of } => write!(f, "partial: {published}/{of}"),
            State::NotBuilt => write!(f, "not built"),
            State::Failed { reason } => write!(f, "failed: {reason}"),
        }
    }
}

/// How an image read in full came to carry its version tag.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "how", rename_all = "snake_case")]
pub enum Provenance {
    /// Built from the tag's commit.
    Built,
    /// Copied from the image built from `from_commit` (and `from`, the release there), inputs unchanged.
    Retagged { from_commit: String, from: Option<String> },
    /// Built from another commit with other inputs (the git tag moved).
    OtherCommit { commit: Option<String> },
}

/// One image of one release.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ImageRow {
    pub image: String,
    /// The repository lists the release's primary version tag.
    pub listed: bool,
    /// The manifest digest, when the tag was read in full.
    pub digest: Option<String>,
    pub provenance: Option<Provenance>,
}

/// One release tag in scope.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Row {
    pub tag: String,
    pub commit: String,
    /// The commit's subject line: filled by the dashboard, not by `relctl status`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    #[serde(flatten)]
    pub state: State,
    pub images: Vec<ImageRow>,
}

impl Row {
    /// Published, or a published pre-release.
    pub fn is_converged(&self) -> bool {
        matches!(self.state, State::Published | State::PreRelease)
    }
}

/// Where one floating tag of one image points.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FloatingRow {
    pub image: String,
    pub tag: String,
    /// The digest it points at; `None` when the repository does not list it.
    pub digest: Option<String>,
    /// The release it holds: the expected one when the digests match, else the
    /// release tag of the commit it was built from, if any.
    pub release: Option<String>,
    /// The highest eligible published release: where reconcile puts it.
    pub expected: Option<String>,
    pub drift: bool,
}

/// What VERSION names on the release branch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VersionRow {
    pub path: String,
    pub names: Option<String>,
    /// The highest stable published release.
    pub expected: Option<String>,
    pub drift: bool,
}

/// The whole status: releases newest first, then floating tags and VERSION.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Status {
    pub converged: bool,
    pub releases: Vec<Row>,
    pub floating: Vec<FloatingRow>,
    pub version_file: VersionRow,
}

/// Where floating tags and VERSION should point, from the listings alone.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Targets {
    /// (floating tag, the release it should hold), in the order the tags first appear.
    pub floating: Vec<(String, Option<ReleaseVersion>)>,
    pub version: Option<ReleaseVersion>,
}

fn primary(config: &Config, v: &ReleaseVersion) -> Option<String> {
    plan::image_tags(config, v).ok().map(|t| t.primary().to_string())
}

/// Whether every image's repository lists `v`'s primary tag.
fn published(config: &Config, listings: &BTreeMap<String, Vec<String>>, v: &ReleaseVersion) -> bool {
    let Some(p) = primary(config, v) else { return false };
    config.images.iter().all(|i| listings.get(&i.name).is_some_and(|l| l.contains(&p)))
}

/// The floating tags of the stable releases in scope, and the highest
/// eligible published release for each; VERSION's target is the highest
/// stable published release.
pub fn targets(config: &Config, obs: &Observation) -> Targets {
    let published: Vec<ReleaseVersion> =
        obs.tags.iter().map(|(v, _)| v.clone()).filter(|v| published(config, &obs.listings, v)).collect();
    let mut names: Vec<(String, TagScope)> = Vec::new();
    for (v, _) in obs.scope.iter().rev().filter(|(v, _)| !v.is_prerelease()) {
        for (name, scope) in plan::image_tags(config, v).map(|t| t.floating).unwrap_or_default() {
            if !names.iter().any(|(n, _)| *n == name) {
                names.push((name, scope));
            }
        }
    }
    let floating = names
        .into_iter()
        .map(|(name, scope)| {
            let holder = published.iter().rev().find(|v| {
                floating::eligible(v, scope, &published).is_ok()
                    && plan::image_tags(config, v).is_ok_and(|t| t.floating.iter().any(|(n, _)| *n == name))
            });
            (name, holder.cloned())
        })
        .collect();
    let version = published.iter().rev().find(|v| !v.is_prerelease()).cloned();
    Targets { floating, version }
}

/// The (image, tag, labelled) reads to make: the primary tag of every
/// floating or VERSION target in full (labelled: digest, revision and inputs),
/// and every listed floating tag's digest only (see [`floating_reads`]).
pub fn reads(config: &Config, obs: &Observation) -> Vec<(String, String, bool)> {
    let t = targets(config, obs);
    let mut wanted: Vec<(String, bool)> = Vec::new();
    let releases = t.floating.iter().filter_map(|(_, v)| v.as_ref()).chain(t.version.as_ref());
    for v in releases {
        if let Some(p) = primary(config, v) {
            wanted.push((p, true));
        }
    }
    wanted.extend(t.floating.iter().map(|(n, _)| (n.clone(), false)));
    let mut out: Vec<(String, String, bool)> = Vec::new();
    for image in &config.images {
        let listed = obs.listings.get(&image.name).cloned().unwrap_or_default();
        for (tag, full) in &wanted {
            if listed.contains(tag) && !out.iter().any(|(i, t, _)| *i == image.name && t == tag) {
                out.push((image.name.clone(), tag.clone(), *full));
            }
        }
    }
    out
}

/// The floating tags to read in full after [`reads`]: those not on their
/// expected release's digest, to tell from their revision label which
/// release they hold.
pub fn floating_reads(config: &Config, obs: &Observation) -> Vec<(String, String)> {
    let t = targets(config, obs);
    let mut out = Vec::new();
    for (name, expected) in &t.floating {
        for image in &config.images {
            let Some(read) = obs.read.get(&(image.name.clone(), name.clone())) else { continue };
            let want = expected.as_ref().and_then(|v| obs.read.get(&(image.name.clone(), primary(config, v)?)));
            if read.revision.is_none() && want.is_none_or(|w| w.digest != read.digest) {
                out.push((image.name.clone(), name.clone()));
            }
        }
    }
    out
}

/// The commits whose input keys [`derive`] needs: those of read releases
/// whose image was built from another commit.
pub fn commits_needing_keys(config: &Config, obs: &Observation) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for (v, commit) in &obs.scope {
        let Some(p) = primary(config, v) else { continue };
        for image in &config.images {
            if let Some(r) = obs.read.get(&(image.name.clone(), p.clone())) {
                if r.revision.as_deref() != Some(commit.as_str()) {
                    out.insert(commit.clone());
                }
            }
        }
    }
    out
}

/// The rows and drift marks: see the module docs for the rules.
pub fn derive(config: &Config, obs: &Observation) -> Status {
    let t = targets(config, obs);
    let release_at = |commit: &str| obs.tags.iter().rev().find(|(_, c)| c == commit).map(|(v, _)| v.raw.clone());
    let mut releases = Vec::new();
    for (v, commit) in obs.scope.iter().rev() {
        let p = primary(config, v).unwrap_or_default();
        let mut images = Vec::new();
        let mut moved = Vec::new();
        for image in &config.images {
            let listed = obs.listings.get(&image.name).is_some_and(|l| l.contains(&p));
            let read = obs.read.get(&(image.name.clone(), p.clone())).filter(|_| listed);
            let provenance = read.map(|r| {
                if r.revision.as_deref() == Some(commit.as_str()) {
                    return Provenance::Built;
                }
                let key = obs.keys.get(commit).and_then(|k| k.get(&image.name));
                match (&r.revision, &r.inputs) {
                    (Some(from), Some(inputs)) if Some(inputs) == key => {
                        Provenance::Retagged { from_commit: from.clone(), from: release_at(from) }
                    }
                    _ => Provenance::OtherCommit { commit: r.revision.clone() },
                }
            });
            if let Some(Provenance::OtherCommit { commit: other }) = &provenance {
                let from = other.as_deref().map_or("an unknown commit".to_string(), |c| short(c).to_string());
                moved.push(format!("{} was built from {from}", image.name));
            }
            images.push(ImageRow {
                image: image.name.clone(),
                listed,
                digest: read.map(|r| r.digest.clone()),
                provenance,
            });
        }
        let n = images.iter().filter(|i| i.listed).count();
        let state = if !moved.is_empty() {
            State::Failed { reason: format!("tag moved: {}, not {}", moved.join(", "), short(commit)) }
        } else if n == 0 {
            State::NotBuilt
        } else if n < images.len() {
            State::Partial { published: n, of: images.len() }
        } else if v.is_prerelease() {
            State::PreRelease
        } else {
            State::Published
        };
        releases.push(Row { tag: v.raw.clone(), commit: commit.clone(), subject: None, state, images });
    }

    let mut floating_rows = Vec::new();
    for (name, expected) in &t.floating {
        for image in &config.images {
            let listed = obs.listings.get(&image.name).is_some_and(|l| l.contains(name));
            let read = obs.read.get(&(image.name.clone(), name.clone())).filter(|_| listed);
            let want = expected.as_ref().and_then(|v| {
                let p = primary(config, v)?;
                obs.read.get(&(image.name.clone(), p)).map(|r| r.digest.clone())
            });
            let on_expected = read.is_some_and(|r| want.as_deref() == Some(r.digest.as_str()));
            let release = if on_expected {
                expected.as_ref().map(|v| v.raw.clone())
            } else {
                read.and_then(|r| r.revision.as_deref()).and_then(release_at)
            };
            // Nothing published for its line yet: nowhere it should be.
            let drift = expected.is_some() && !on_expected;
            floating_rows.push(FloatingRow {
                image: image.name.clone(),
                tag: name.clone(),
                digest: read.map(|r| r.digest.clone()),
                release,
                expected: expected.as_ref().map(|v| v.raw.clone()),
                drift,
            });
        }
    }

    let names = obs.version_file.as_deref().map(str::trim).filter(|s| !s.is_empty()).map(str::to_string);
    let expected = t.version.as_ref().map(|v| v.raw.clone());
    let version_drift = expected.is_some() && names != expected;
    let version_file = VersionRow { path: config.version_file.clone(), names, expected, drift: version_drift };

    let converged =
        releases.iter().all(Row::is_converged) && floating_rows.iter().all(|f| !f.drift) && !version_file.drift;
    Status { converged, releases, floating: floating_rows, version_file }
}

/// A commit's first 12 hex digits.
pub fn short(commit: &str) -> &str {
    &commit[..commit.len().min(12)]
}

/// Observes what [`derive`] needs through `git` (already fetched) and `registry`.
pub async fn observe<G: GitRepo, R: Registry>(
    config: &Config,
    git: &G,
    registry: &R,
) -> Result<Observation, ReleaseError> {
    let tags = observe::release_tags(config, git, false)?;
    let scope = crate::controller::reconcile::scope(config, &tags, &BTreeSet::new());
    let mut listings = BTreeMap::new();
    for image in &config.images {
        listings.insert(image.name.clone(), registry.tags(&image.repository).await?);
    }
    let version_file = match git.branch_tip() {
        Ok(tip) => git.file_at(&tip, &config.version_file)?.map(|b| String::from_utf8_lossy(&b).into_owned()),
        Err(GitError::NoBranch { .. }) => None,
        Err(e) => return Err(e.into()),
    };
    let mut obs = Observation { tags, scope, listings, version_file, ..Default::default() };
    let reads = reads(config, &obs);
    for image in &config.images {
        let tags: Vec<String> = reads.iter().filter(|(i, ..)| *i == image.name).map(|(_, t, _)| t.clone()).collect();
        let labelled: Vec<&str> =
            reads.iter().filter(|(i, _, full)| *i == image.name && *full).map(|(_, t, _)| t.as_str()).collect();
        if tags.is_empty() {
            continue;
        }
        for (tag, remote) in registry.observe(&image.repository, &tags, &labelled).await? {
            obs.read.insert((image.name.clone(), tag), remote);
        }
    }
    for (image, tag) in floating_reads(config, &obs) {
        let repository = config.image(&image).map(|i| i.repository.clone()).unwrap_or_default();
        if let Some(remote) = registry.inspect_tag(&repository, &tag).await? {
            obs.read.insert((image, tag), remote);
        }
    }
    for commit in commits_needing_keys(config, &obs) {
        let keys = observe::input_keys(config, git, &commit)?;
        obs.keys.insert(commit, keys);
    }
    Ok(obs)
}

impl Session {
    /// `relctl status`: fetches, reads the registry with reconcile's budget and writes nothing.
    pub async fn status(&self) -> Result<Status, ReleaseError> {
        tokio::task::block_in_place(|| self.git.fetch())?;
        let registry = self.registry(self.credentials()?, None);
        let obs = observe(&self.config, &self.git, &registry).await?;
        tracing::debug!(requests = registry.request_count(), "registry requests");
        Ok(derive(&self.config, &obs))
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    fn cfg() -> Config {
        crate::config::parse(
            "namespace: n\nproject: p\nimages: { a: { context: . }, b: { context: . } }\n",
            Path::new("r.yaml"),
        )
        .unwrap()
    }

    fn remote(tag: &str) -> RemoteTag {
        RemoteTag {
            digest: format!("sha256:d-{tag}"),
            revision: Some(format!("c-{tag}")),
            inputs: Some(format!("k-{tag}")),
        }
    }

    /// Release tags (commit `c-<tag>`), what each image lists, where `latest`
    /// points (a release whose image it copies) and VERSION; the tags
    /// [`reads`] asks for are read as built from their own tag.
    fn world(tags: &[&str], listed: &[(&str, &[&str])], latest: Option<&str>, version: &str) -> Observation {
        let config = cfg();
        let mut all: Vec<_> = tags.iter().map(|t| (ReleaseVersion::parse(t, "v").unwrap(), format!("c-{t}"))).collect();
        all.sort_by(|a, b| a.0.cmp_release(&b.0));
        let scope = crate::controller::reconcile::scope(&config, &all, &BTreeSet::new());
        let mut listings: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (image, tags) in listed {
            let l = listings.entry(image.to_string()).or_default();
            l.extend(tags.iter().map(|t| t.to_string()));
            if latest.is_some() {
                l.push("latest".into());
            }
        }
        let mut obs = Observation {
            tags: all,
            scope,
            listings,
            version_file: Some(format!("{version}\n")),
            ..Default::default()
        };
        for (image, tag, full) in reads(&config, &obs) {
            let r = if tag == "latest" { remote(latest.unwrap()) } else { remote(&tag) };
            let r = if full { r } else { RemoteTag { revision: None, inputs: None, ..r } };
            obs.read.insert((image, tag), r);
        }
        for (image, tag) in floating_reads(&config, &obs) {
            obs.read.insert((image, tag), remote(latest.unwrap()));
        }
        obs
    }

    fn states(s: &Status) -> Vec<String> {
        s.releases.iter().map(|r| format!("{} {}", r.tag, r.state)).collect()
    }

    fn latest_drift(s: &Status) -> Vec<(String, Option<String>, bool)> {
        s.floating.iter().map(|f| (f.image.clone(), f.release.clone(), f.drift)).collect()
    }

    #[test]
    fn rows_and_drift_table() {
        let c = cfg();
        let both: &[&str] = &["v1.0.0", "v1.1.0"];
        let on = |img: &str, r: &str, drift| (img.to_string(), Some(r.to_string()), drift);

        // Published, latest and VERSION on the highest release: converged.
        let s = derive(&c, &world(both, &[("a", both), ("b", both)], Some("v1.1.0"), "v1.1.0"));
        assert_eq!(states(&s), ["v1.1.0 published", "v1.0.0 published"]);
        assert_eq!(latest_drift(&s), [on("a", "v1.1.0", false), on("b", "v1.1.0", false)]);
        assert!(!s.version_file.drift && s.converged);
        assert_eq!(s.releases[0].images[0].provenance, Some(Provenance::Built));
        assert_eq!(s.releases[0].images[0].digest.as_deref(), Some("sha256:d-v1.1.0"));
        assert_eq!(s.releases[1].images[0].digest, None, "not a target: listing only");

        // Partial and not built: neither is a target, latest stays on v1.0.0.
        let s = derive(
            &c,
            &world(&["v1.0.0", "v1.1.0", "v1.2.0"], &[("a", both), ("b", &["v1.0.0"])], Some("v1.0.0"), "v1.0.0"),
        );
        assert_eq!(states(&s), ["v1.2.0 not built", "v1.1.0 partial: 1/2", "v1.0.0 published"]);
        let row = serde_json::to_value(&s.releases[1]).unwrap();
        assert_eq!((&row["state"], &row["published"], &row["of"]), (&"partial".into(), &1.into(), &2.into()));
        assert_eq!(row["images"].as_array().map(Vec::len), Some(2));
        assert_eq!(latest_drift(&s), [on("a", "v1.0.0", false), on("b", "v1.0.0", false)]);
        assert!(!s.version_file.drift && !s.converged);

        // A published pre-release is converged and holds no floating tag nor VERSION.
        let three: &[&str] = &["v1.0.0", "v1.1.0", "v1.2.0-rc.1"];
        let s = derive(&c, &world(three, &[("a", three), ("b", three)], Some("v1.1.0"), "v1.1.0"));
        assert_eq!(states(&s), ["v1.2.0-rc.1 pre-release", "v1.1.0 published", "v1.0.0 published"]);
        assert!(s.converged, "{s:?}");
        // ...and an unbuilt one is not built.
        let s = derive(&c, &world(three, &[("a", both), ("b", both)], Some("v1.1.0"), "v1.1.0"));
        assert_eq!(states(&s)[0], "v1.2.0-rc.1 not built");

        // latest moved by hand to v1.0.0; VERSION naming an older release.
        let s = derive(&c, &world(both, &[("a", both), ("b", both)], Some("v1.0.0"), "v1.0.0"));
        assert_eq!(latest_drift(&s), [on("a", "v1.0.0", true), on("b", "v1.0.0", true)]);
        assert_eq!(s.floating[0].expected.as_deref(), Some("v1.1.0"));
        assert!(s.version_file.drift && !s.converged);
        assert_eq!(s.version_file.expected.as_deref(), Some("v1.1.0"));
        // latest missing altogether is drift too.
        let s = derive(&c, &world(both, &[("a", both), ("b", both)], None, "v1.1.0"));
        assert_eq!(latest_drift(&s), [("a".into(), None, true), ("b".into(), None, true)]);

        // Moved tag: v1.1.0's image a was built from another commit with other inputs.
        let mut obs = world(both, &[("a", both), ("b", both)], Some("v1.1.0"), "v1.1.0");
        let other =
            RemoteTag { digest: "sha256:d-x".into(), revision: Some("c-old".into()), inputs: Some("k-old".into()) };
        obs.read.insert(("a".into(), "v1.1.0".into()), other);
        assert_eq!(commits_needing_keys(&c, &obs), BTreeSet::from(["c-v1.1.0".to_string()]));
        obs.keys.insert("c-v1.1.0".into(), BTreeMap::from([("a".to_string(), "k-new".to_string())]));
        let s = derive(&c, &obs);
        assert_eq!(states(&s)[0], "v1.1.0 failed: tag moved: a was built from c-old, not c-v1.1.0");
        assert!(!s.converged);

        // Retagged: built from v1.0.0's commit with the inputs v1.1.0 has.
        let mut obs = world(both, &[("a", both), ("b", both)], Some("v1.1.0"), "v1.1.0");
        obs.read.insert(("a".into(), "v1.1.0".into()), remote("v1.0.0"));
        obs.keys.insert("c-v1.1.0".into(), BTreeMap::from([("a".to_string(), "k-v1.0.0".to_string())]));
        let s = derive(&c, &obs);
        assert_eq!(states(&s)[0], "v1.1.0 published");
        assert_eq!(
            s.releases[0].images[0].provenance,
            Some(Provenance::Retagged { from_commit: "c-v1.0.0".into(), from: Some("v1.0.0".into()) })
        );
    }

    #[test]
    fn reads_only_floating_tags_and_their_targets() {
        let c = cfg();
        let tags: Vec<String> = (0..20).map(|i| format!("v1.{i}.0")).collect();
        let t: Vec<&str> = tags.iter().map(String::as_str).collect();
        let obs = world(&t, &[("a", &t), ("b", &t)], Some("v1.19.0"), "v1.19.0");
        let r = reads(&c, &obs);
        assert_eq!(
            r,
            [("a", "v1.19.0", true), ("a", "latest", false), ("b", "v1.19.0", true), ("b", "latest", false)]
                .map(|(i, t, full)| (i.to_string(), t.to_string(), full))
        );
        assert_eq!(floating_reads(&c, &obs), [], "latest on its target: its digest says so");
        let moved = world(&t, &[("a", &t), ("b", &t)], Some("v1.3.0"), "v1.19.0");
        assert_eq!(floating_reads(&c, &moved), [], "read already");
        let mut obs = obs;
        obs.read.insert(
            ("b".into(), "latest".into()),
            RemoteTag { digest: "sha256:x".into(), revision: None, inputs: None },
        );
        assert_eq!(floating_reads(&c, &obs), [("b".to_string(), "latest".to_string())]);
    }
}
