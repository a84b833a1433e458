//! One reconcile: bring every release tag in scope to its desired state
//! (every image carries the version tag, floating tags on the highest
//! eligible release, VERSION on the highest stable release), oldest first.
//!
//! Each tag is reconciled on its own: a tag that fails (a broken build, a
//! moved tag, a registry refusing a push) is recorded with its reason and
//! the others still converge; floating tags and VERSION then go to the
//! highest release that is fully published. A failed tag waits out its
//! [`Backoff`] before the loop tries it again.
//!
//! Registry cost is O(images): each repository is listed once; a tag whose
//! images are all listed is taken as released, and only releases that are a
//! floating-tag or VERSION target are observed in full (digests and labels).

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use crate::config::{Config, TagScope};
use crate::docker::ImageBuilder;
use crate::forge::Forge;
use crate::git::GitRepo;
use crate::notify::{Event, Kind, Notifications};
use crate::plan::{self, PlanOptions, Step, floating};
use crate::registry::Registry;
use crate::release::observe::{self, RegistryFailure};
use crate::release::{Executor, ReleaseError};
use crate::version::ReleaseVersion;

use super::backoff::Backoff;
use super::trigger::Shutdown;

/// How one tag in scope ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum TagResult {
    /// Already in its desired state.
    Converged,
    /// Its plan ran: `built` images built, `pushed` given version tags.
    Released { built: u64, pushed: u64 },
    /// Could not be converged; the other tags still were.
    Failed { error: String, hint: String, retry_in_secs: Option<u64> },
    /// Failed before and its next try is not due: not attempted.
    BackingOff { error: String, retry_in_secs: u64 },
}

/// One tag's outcome.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TagOutcome {
    pub tag: String,
    #[serde(flatten)]
    pub result: TagResult,
}

/// What one reconcile did.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
pub struct Outcome {
    pub in_scope: Vec<String>,
    /// Every tag in scope that was looked at, oldest first.
    pub tags: Vec<TagOutcome>,
    /// Stopped early by shutdown.
    pub interrupted: bool,
}

impl Outcome {
    /// Tags whose plan had steps, oldest first.
    pub fn released(&self) -> Vec<&str> {
        self.with(|r| matches!(r, TagResult::Released { .. }))
    }

    /// Tags that are not converged: failed now, or waiting out a backoff.
    pub fn failed(&self) -> Vec<&TagOutcome> {
        self.tags
            .iter()
            .filter(|t| matches!(t.result, TagResult::Failed { .. } | TagResult::BackingOff { .. }))
            .collect()
    }

    pub fn builds(&self) -> u64 {
        self.tags.iter().map(|t| if let TagResult::Released { built, .. } = t.result { built } else { 0 }).sum()
    }

    pub fn pushes(&self) -> u64 {
        self.tags.iter().map(|t| if let TagResult::Released { pushed, .. } = t.result { pushed } else { 0 }).sum()
    }

    fn with(&self, f: impl Fn(&TagResult) -> bool) -> Vec<&str> {
        self.tags.iter().filter(|t| f(&t.result)).map(|t| t.tag.as_str()).collect()
    }
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

/// Reconciles every tag in scope, each on its own (see the module docs).
/// `backoff` holds the tags that failed in earlier runs; tags in `requested`
/// (a webhook named them) are tried even while they back off. An `Err` is a
/// failure of the whole run (the remote or the registry listing cannot be read).
/// Failures are told to `notify` as they happen; releases and repairs once
/// the reconcile ends, so a release's event carries the floating tags and
/// VERSION commit a later pass gave it.
pub async fn reconcile_once<G: GitRepo, B: ImageBuilder, R: Registry, F: Forge>(
    executor: &Executor<'_, G, B, R, F>,
    requested: &BTreeSet<String>,
    backoff: &mut Backoff,
    shutdown: Option<&Shutdown>,
    notify: &Notifications,
) -> Result<Outcome, ReleaseError> {
    let (config, git, registry) = (executor.config, executor.git, executor.registry);
    tokio::task::block_in_place(|| git.fetch())?;
    let tags = observe::release_tags(config, git, true)?;
    for r in requested {
        if !tags.iter().any(|(v, _)| &v.raw == r) {
            tracing::warn!(tag = %r, "requested tag is not a release tag of the remote; ignored");
        }
    }
    let in_scope = scope(config, &tags, requested);
    let mut listings = Vec::new();
    for image in &config.images {
        listings.push((image.name.as_str(), registry.tags(&image.repository).await?));
    }
    let mut run = Run {
        config,
        executor,
        listings,
        results: BTreeMap::new(),
        unpublished: BTreeSet::new(),
        notify,
        events: BTreeMap::new(),
    };

    // Tags that wait out a backoff and are not published never hold a floating tag.
    let now = tokio::time::Instant::now();
    for (tag, _) in &in_scope {
        if let Some(f) = backoff.waiting(&tag.raw, now).filter(|_| !requested.contains(&tag.raw)) {
            let retry_in_secs = f.retry_at.saturating_duration_since(now).as_secs();
            tracing::info!(tag = %tag.raw, "not retried for another {retry_in_secs}s after failing: {}", f.error);
            run.results.insert(tag.raw.clone(), TagResult::BackingOff { error: f.error.clone(), retry_in_secs });
            if !run.missing(tag).is_empty() {
                run.unpublished.insert(tag.raw.clone());
            }
        }
    }

    // A tag failing can make a lower tag the target of a floating tag or
    // VERSION: go again over the tags until no new failure appears.
    let mut interrupted = false;
    loop {
        let failures = run.unpublished.len();
        for (tag, commit) in &in_scope {
            if shutdown.is_some_and(Shutdown::is_set) {
                interrupted = true;
                break;
            }
            let busy =
                matches!(run.results.get(&tag.raw), Some(TagResult::Failed { .. } | TagResult::BackingOff { .. }));
            if busy {
                continue;
            }
            let all: Vec<ReleaseVersion> =
                tags.iter().map(|(v, _)| v.clone()).filter(|v| !run.unpublished.contains(&v.raw)).collect();
            match run.tag(tag, commit, &all).await {
                Ok(None) => {
                    backoff.succeeded(&tag.raw);
                    notify.converged(&tag.raw);
                    run.results.entry(tag.raw.clone()).or_insert(TagResult::Converged);
                }
                Ok(Some((built, pushed))) => {
                    backoff.succeeded(&tag.raw);
                    let entry =
                        run.results.entry(tag.raw.clone()).or_insert(TagResult::Released { built: 0, pushed: 0 });
                    *entry = match entry {
                        TagResult::Released { built: b, pushed: p } => {
                            TagResult::Released { built: *b + built, pushed: *p + pushed }
                        }
                        _ => TagResult::Released { built, pushed },
                    };
                }
                Err(e) => {
                    let (error, hint) = (crate::release::error_chain(&e), e.hint());
                    tracing::error!(tag = %tag.raw, "cannot reconcile {}: {error}; hint: {hint}", tag.raw);
                    notify.emit(Event::failed(&tag.raw, Some(tag), Some(commit), error.clone(), hint.clone()));
                    let delay = backoff.failed(&tag.raw, error.clone(), tokio::time::Instant::now());
                    let retry_in_secs = shutdown.is_some().then_some(delay.as_secs());
                    run.results.insert(tag.raw.clone(), TagResult::Failed { error, hint, retry_in_secs });
                    // Whether it failed before or after its version tags went out: ask the registry.
                    if let Err(e) = run.relist().await {
                        run.emit_events(&in_scope);
                        return Err(e);
                    }
                    if !run.missing(tag).is_empty() {
                        run.unpublished.insert(tag.raw.clone());
                    }
                }
            }
        }
        if interrupted || run.unpublished.len() == failures {
            break;
        }
        if let Err(e) = run.relist().await {
            run.emit_events(&in_scope);
            return Err(e);
        }
    }
    run.emit_events(&in_scope);

    let mut results = run.results;
    let tags = in_scope
        .iter()
        .filter_map(|(v, _)| results.remove(&v.raw).map(|result| TagOutcome { tag: v.raw.clone(), result }))
        .collect();
    Ok(Outcome { in_scope: in_scope.iter().map(|(v, _)| v.raw.clone()).collect(), tags, interrupted })
}

/// The state of one reconcile across its tags.
struct Run<'r, 'e, G, B, R, F> {
    config: &'r Config,
    executor: &'r Executor<'e, G, B, R, F>,
    /// Each image's tags in the registry, as listed at the start (or the last pass).
    listings: Vec<(&'r str, Vec<String>)>,
    results: BTreeMap<String, TagResult>,
    /// Tags whose images are not all published and that failed (now or before).
    unpublished: BTreeSet<String>,
    notify: &'r Notifications,
    /// What each tag's runs did worth telling, told when the reconcile ends.
    events: BTreeMap<String, Event>,
}

impl<G: GitRepo, B: ImageBuilder, R: Registry, F: Forge> Run<'_, '_, G, B, R, F> {
    /// Images whose repository does not list `tag`'s primary image tag.
    fn missing(&self, tag: &ReleaseVersion) -> Vec<&str> {
        let Ok(tags) = plan::image_tags(self.config, tag) else {
            return self.listings.iter().map(|(name, _)| *name).collect();
        };
        self.listings
            .iter()
            .filter(|(_, listed)| !listed.iter().any(|t| t == tags.primary()))
            .map(|(n, _)| *n)
            .collect()
    }

    /// Keeps what a run of `tag`'s plan did worth telling. A release's floating
    /// tags and VERSION can move in a later pass (once a higher tag failed):
    /// that completes the release, so it joins its `published` event.
    fn record(&mut self, event: Event) {
        match self.events.get_mut(&event.tag) {
            Some(earlier) if earlier.kind == Kind::Published => {
                earlier.images = event.images;
                earlier.version_commit = event.version_commit.or(earlier.version_commit.take());
            }
            Some(earlier) if event.kind == Kind::Drift => earlier.repaired.extend(event.repaired),
            _ => {
                self.events.insert(event.tag.clone(), event);
            }
        }
    }

    /// Tells what was recorded, in the order of `in_scope` (oldest first).
    fn emit_events(&mut self, in_scope: &[(ReleaseVersion, String)]) {
        for (tag, _) in in_scope {
            if let Some(event) = self.events.remove(&tag.raw) {
                self.notify.emit(event);
            }
        }
    }

    /// Lists every repository again: pushes by the engine do not show in a listing taken before them.
    async fn relist(&mut self) -> Result<(), ReleaseError> {
        self.executor.registry.forget_listings();
        for (name, listed) in &mut self.listings {
            let image = self.config.image(name).map(|i| i.repository.clone()).unwrap_or_default();
            *listed = self.executor.registry.tags(&image).await?;
        }
        Ok(())
    }

    /// Reconciles one tag: `None` when nothing was to do, else (built, pushed).
    /// `all` is every release tag that is or may be published.
    async fn tag(
        &mut self,
        tag: &ReleaseVersion,
        commit: &str,
        all: &[ReleaseVersion],
    ) -> Result<Option<(u64, u64)>, ReleaseError> {
        let (config, executor) = (self.config, self.executor);
        let missing = self.missing(tag);
        if missing.is_empty() && !is_target(config, tag, all) {
            return Ok(None);
        }
        if !missing.is_empty() {
            let primary = plan::image_tags(config, tag)?.primary().to_string();
            tracing::info!(tag = %tag.raw, "drift: {} not in the registry for {primary}", missing.join(", "));
        }
        let mut observed =
            observe::observe(config, executor.git, executor.registry, tag, commit, RegistryFailure::Fatal, false)
                .await?;
        // A release that failed is no reason to keep a floating tag back.
        observed.release_tags.retain(|v| all.iter().any(|a| a.raw == v.raw) || v.raw == tag.raw);
        let plan = plan::plan(config, &observed, &PlanOptions::default())?;
        if plan.steps.is_empty() {
            return Ok(None);
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
        if let Some(event) = Event::from_release(&plan, &report) {
            self.record(event);
        }
        Ok(Some((report.images.iter().filter(|i| i.built).count() as u64, report.images.len() as u64)))
    }
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
