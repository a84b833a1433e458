//! The per-image half of the planner: for each image, in dependency order,
//! what happens to it ([`ImageAction`]: build, retag, already published,
//! staged, not selected) and why, the steps that carries out, and where its
//! floating tags go.

use std::collections::BTreeMap;

use super::build::{build_step, release_labels, stage_tag};
use super::platforms::{ImageKeys, image_keys, platform_stage_tag, platforms_of};
use super::{
    BuildStep, FloatingDecision, ImageAction, ImagePlan, IndexEntry, IndexStep, MoveStep, Observed, PlanError,
    PlanOptions, PushSource, PushStep, RegistryView, ReleaseTags, RemoteTag, SignStep, floating,
};
use crate::config::{Config, ImageConfig, Inputs};

/// The plan as it grows, image by image.
pub(super) struct Planner<'a> {
    config: &'a Config,
    observed: &'a Observed,
    opts: &'a PlanOptions,
    tags: &'a ReleaseTags,
    pub notes: Vec<String>,
    pub images: Vec<ImagePlan>,
    pub builds: Vec<BuildStep>,
    pub indexes: Vec<IndexStep>,
    pub signs: Vec<SignStep>,
    pub pushes: Vec<PushStep>,
    pub moves: Vec<MoveStep>,
    /// Images (and platforms of multi-platform images) `finalize` needs but nobody staged.
    pub not_staged: Vec<(String, Option<String>)>,
    /// Images that carry the release after this plan, and the digest where already known.
    pub released: BTreeMap<&'a str, Option<String>>,
    /// What a child's `<PARENT>_IMAGE` build argument names for each released
    /// parent, by parent and platform.
    parent_refs: BTreeMap<(&'a str, String), String>,
    /// The id of each (image, platform) this plan builds.
    built: BTreeMap<(&'a str, String), String>,
    keys: BTreeMap<String, ImageKeys>,
}

/// What the registry holds of one image, as far as this release is concerned.
struct Seen {
    view: RegistryView,
    repository: String,
    key: Option<String>,
    stage_ref: String,
    /// Staged by a fan-out job from this commit, with the inputs this release has.
    staged: Option<RemoteTag>,
    /// The platforms it is built for; several make an index.
    platforms: Vec<String>,
    /// Of a multi-platform image: the platforms staged from this commit with this release's inputs.
    staged_platforms: BTreeMap<String, RemoteTag>,
}

impl Seen {
    fn is_index(&self) -> bool {
        self.platforms.len() > 1
    }

    fn platform_tag(&self, platform: &str) -> String {
        platform_stage_tag(&self.stage_ref, platform)
    }

    /// The staging tag of its image of `platform`: the platform's own in an index, else the image's.
    fn stage_of(&self, platform: &str) -> String {
        match self.is_index() {
            true => self.platform_tag(platform),
            false => self.stage_ref.clone(),
        }
    }

    /// Whether its image of `platform` was staged from this commit with this release's inputs.
    fn is_staged(&self, platform: &str) -> bool {
        match self.is_index() {
            true => self.staged_platforms.contains_key(platform),
            false => self.staged.is_some(),
        }
    }
}

impl<'a> Planner<'a> {
    pub fn new(config: &'a Config, observed: &'a Observed, opts: &'a PlanOptions, tags: &'a ReleaseTags) -> Self {
        Self {
            config,
            observed,
            opts,
            tags,
            notes: Vec::new(),
            images: Vec::new(),
            builds: Vec::new(),
            indexes: Vec::new(),
            signs: Vec::new(),
            pushes: Vec::new(),
            moves: Vec::new(),
            not_staged: Vec::new(),
            released: BTreeMap::new(),
            parent_refs: BTreeMap::new(),
            built: BTreeMap::new(),
            keys: image_keys(config, &observed.context_digests, &observed.platform),
        }
    }

    fn primary(&self) -> &'a str {
        self.tags.primary()
    }

    /// Plans one image: its action, its steps and its floating tags.
    pub fn image(&mut self, image: &'a ImageConfig) -> Result<(), PlanError> {
        let seen = self.seen(image);
        let action = self.decide(image, &seen)?;
        self.emit(image, &action, &seen)?;
        self.sign(image, &action, &seen);
        let floating = if action == ImageAction::NotSelected { Vec::new() } else { self.floating(image, &seen) };
        self.images.push(ImagePlan {
            name: image.name.clone(),
            repository: seen.repository,
            action,
            version_tags: self.tags.version.clone(),
            floating,
            platforms: image.platforms.clone(),
        });
        Ok(())
    }

    fn seen(&mut self, image: &'a ImageConfig) -> Seen {
        let observed = self.observed;
        let keys = self.keys.get(&image.name);
        let key = keys.map(|k| k.image.clone());
        let view = observed.registry.get(&image.name).cloned().unwrap_or(RegistryView::Known(BTreeMap::new()));
        if let RegistryView::Unknown(why) = &view {
            self.notes.push(format!("{}: registry not read ({why}); assuming nothing is published", image.name));
        }
        let stage_ref = stage_tag(self.primary(), &observed.commit);
        // Staged from this commit, with the inputs this release has.
        let staged_as = |tag: &str, key: Option<&str>| {
            view.tag(tag)
                .filter(|t| {
                    t.revision.as_deref() == Some(observed.commit.as_str())
                        && (t.inputs.is_none() || key.is_none() || t.inputs.as_deref() == key)
                })
                .cloned()
        };
        let platforms = platforms_of(image, &observed.platform);
        let (mut staged, mut staged_platforms) = (None, BTreeMap::new());
        if platforms.len() > 1 {
            for p in &platforms {
                let tag = platform_stage_tag(&stage_ref, p);
                if let Some(t) = staged_as(&tag, keys.and_then(|k| k.of(p))) {
                    staged_platforms.insert(p.clone(), t);
                }
            }
        } else {
            staged = staged_as(&stage_ref, key.as_deref());
        }
        let repository = self.config.image_repo(image);
        Seen { view, repository, key, stage_ref, staged, platforms, staged_platforms }
    }

    /// The platforms of `seen` this plan builds: with `--platform` in a fan-out build job, that one only.
    fn build_platforms(&self, seen: &Seen) -> Vec<String> {
        let only = self.opts.platform.as_ref().filter(|_| self.opts.stage_only);
        seen.platforms.iter().filter(|p| only.is_none_or(|o| o == *p)).cloned().collect()
    }

    /// The action of an image a fan-out job staged (`None` when it is not staged):
    /// a multi-platform image is staged when each platform it needs is.
    fn staged_action(&self, seen: &Seen) -> Option<ImageAction> {
        if !seen.is_index() {
            return seen.staged.as_ref().map(|t| ImageAction::Staged { digest: Some(t.digest.clone()) });
        }
        let all = self.build_platforms(seen).iter().all(|p| seen.staged_platforms.contains_key(p));
        all.then_some(ImageAction::Staged { digest: None })
    }

    /// What happens to `image`, and why.
    fn decide(&mut self, image: &ImageConfig, seen: &Seen) -> Result<ImageAction, PlanError> {
        let (config, observed, opts) = (self.config, self.observed, self.opts);
        let primary = self.primary();
        let existing = seen.view.tag(primary);
        // Published by this release: built from this commit, or retagged from identical inputs.
        let published = existing.filter(|t| {
            t.revision.as_deref() == Some(observed.commit.as_str()) || (t.inputs.is_some() && t.inputs == seen.key)
        });
        let unchanged = observed
            .previous
            .get(&image.name)
            .filter(|(_, prev)| config.build.retag_unchanged && prev.inputs.is_some() && prev.inputs == seen.key);
        // A fan-out job's `--platform` selects the images built for it.
        let on_platform = opts.platform.as_ref().filter(|_| opts.stage_only).is_none_or(|p| seen.platforms.contains(p));
        let selected = opts.only.as_ref().is_none_or(|o| o.contains(&image.name)) && on_platform;
        Ok(match (existing, published) {
            (_, Some(t)) => ImageAction::Published { digest: t.digest.clone() },
            _ if !selected => ImageAction::NotSelected,
            (Some(other), None) if !opts.force => {
                return Err(PlanError::TagConflict {
                    reference: format!("{}:{primary}", seen.repository),
                    tag: observed.target.raw.clone(),
                    registry_commit: other.revision.clone(),
                    tag_commit: observed.commit.clone(),
                });
            }
            (Some(other), None) => ImageAction::Build {
                reason: format!(
                    "--force: {primary} was built from {}",
                    other.revision.as_deref().unwrap_or("an unknown commit")
                ),
            },
            (None, None) => match (unchanged, self.staged_action(seen)) {
                (Some((from, prev)), _) => ImageAction::Retag { from: from.clone(), digest: prev.digest.clone() },
                (None, Some(staged)) if opts.stage_only || opts.finalize => staged,
                (None, _) if opts.finalize => {
                    match seen.is_index() {
                        true => self.not_staged.extend(
                            seen.platforms
                                .iter()
                                .filter(|p| !seen.is_staged(p))
                                .map(|p| (image.name.clone(), Some(p.clone()))),
                        ),
                        false => self.not_staged.push((image.name.clone(), None)),
                    }
                    ImageAction::NotSelected
                }
                (None, _) => {
                    // An earlier release whose key differs: say so when the key took the whole context.
                    let whole =
                        observed.whole_context.get(&image.name).filter(|_| observed.previous.contains_key(&image.name));
                    let reason = match whole {
                        Some(why) => format!("inputs: whole context: {why}"),
                        None => format!("{primary} is not in the registry"),
                    };
                    ImageAction::Build { reason }
                }
            },
        })
    }

    /// The steps that carry out `action`, and what children build from.
    fn emit(&mut self, image: &'a ImageConfig, action: &ImageAction, seen: &Seen) -> Result<(), PlanError> {
        let (config, opts) = (self.config, self.opts);
        let (primary, repository) = (self.primary(), &seen.repository);
        let push = |tags: Vec<String>, source| PushStep {
            image: image.name.clone(),
            repository: repository.clone(),
            tags,
            source,
        };
        let version_tags = self.tags.version.clone();
        let name = image.name.as_str();
        match action {
            ImageAction::Build { .. } if seen.is_index() => {
                self.note_rewritten(image);
                for platform in self.build_platforms(seen) {
                    let tag = seen.platform_tag(&platform);
                    self.build(image, seen, &platform, Some(tag))?;
                }
                if !opts.stage_only {
                    self.index(image, seen);
                }
                self.pushes.push(push(version_tags, PushSource::Staged(seen.stage_ref.clone())));
                self.released.insert(name, None);
            }
            ImageAction::Build { .. } => {
                self.note_rewritten(image);
                let stage = (config.build.stage || opts.stage_only).then(|| seen.stage_ref.clone());
                self.build(image, seen, &seen.platforms[0], stage.clone())?;
                self.pushes.push(push(version_tags, stage.map_or(PushSource::Build, PushSource::Staged)));
                self.released.insert(name, None);
            }
            ImageAction::Retag { from, digest } => {
                self.pushes.push(push(version_tags, PushSource::Tag(from.clone())));
                self.released.insert(name, Some(digest.clone()));
                // Children built in phase 1 use the earlier tag: the version tag appears in phase 2.
                self.parents_at(name, seen, |_| format!("{repository}:{from}"));
            }
            ImageAction::Published { digest } => {
                let view = &seen.view;
                let missing: Vec<String> =
                    version_tags.into_iter().filter(|t| view.tag(t).is_none_or(|r| &r.digest != digest)).collect();
                if !missing.is_empty() {
                    self.pushes.push(push(missing, PushSource::Tag(primary.to_string())));
                }
                self.released.insert(name, Some(digest.clone()));
                self.parents_at(name, seen, |_| format!("{repository}:{primary}"));
            }
            ImageAction::Staged { digest } => {
                if seen.is_index() {
                    self.index(image, seen);
                }
                self.parents_at(name, seen, |p| format!("{repository}:{}", seen.stage_of(p)));
                self.pushes.push(push(version_tags, PushSource::Staged(seen.stage_ref.clone())));
                self.released.insert(name, digest.clone());
            }
            ImageAction::NotSelected => {
                // A parent staged by another fan-out job: the child's build pulls it from the registry.
                if opts.stage_only {
                    for platform in seen.platforms.iter().filter(|p| seen.is_staged(p)) {
                        let reference = format!("{repository}:{}", seen.stage_of(platform));
                        self.parent_refs.insert((name, platform.clone()), reference);
                    }
                }
            }
        }
        Ok(())
    }

    /// The build of `image` for `platform`, under `stage` when staged; its
    /// children's builds of that platform build from it.
    fn build(
        &mut self,
        image: &'a ImageConfig,
        seen: &Seen,
        platform: &str,
        stage: Option<String>,
    ) -> Result<(), PlanError> {
        let reference = format!("{}:{}", seen.repository, stage.as_deref().unwrap_or(self.primary()));
        let parents: BTreeMap<&str, String> = image
            .depends_on
            .iter()
            .filter_map(|p| Some((p.as_str(), self.parent_refs.get(&(p.as_str(), platform.to_string()))?.clone())))
            .collect();
        let key = match seen.is_index() {
            true => self.keys.get(&image.name).and_then(|k| k.of(platform)).map(str::to_string),
            false => seen.key.clone(),
        };
        let mut step = build_step(self.config, self.observed, self.opts, image, reference.clone(), &parents, key)?;
        step.id = match seen.is_index() {
            true => format!("{}@{platform}", image.name),
            false => image.name.clone(),
        };
        step.platform = (!image.platforms.is_empty()).then(|| platform.to_string());
        step.waits_for = image
            .depends_on
            .iter()
            .filter_map(|p| self.built.get(&(p.as_str(), platform.to_string())).cloned())
            .collect();
        step.stage_tag = stage;
        self.built.insert((&image.name, platform.to_string()), step.id.clone());
        self.parent_refs.insert((&image.name, platform.to_string()), reference);
        self.builds.push(step);
        Ok(())
    }

    /// The index of a multi-platform image, from its platforms' staging tags.
    fn index(&mut self, image: &ImageConfig, seen: &Seen) {
        let annotations = release_labels(self.observed, seen.key.clone());
        // Staged by fan-out jobs: the digests finalize checked, not whatever the tags hold later.
        let manifests = seen
            .platforms
            .iter()
            .map(|p| IndexEntry {
                platform: p.clone(),
                tag: seen.platform_tag(p),
                digest: seen.staged_platforms.get(p).map(|t| t.digest.clone()),
            })
            .collect();
        self.indexes.push(IndexStep {
            image: image.name.clone(),
            repository: seen.repository.clone(),
            tag: seen.stage_ref.clone(),
            manifests,
            annotations,
        });
    }

    /// What a child's build of each platform names as `<PARENT>_IMAGE` for `image`.
    fn parents_at(&mut self, image: &'a str, seen: &Seen, reference: impl Fn(&str) -> String) {
        for platform in &seen.platforms {
            self.parent_refs.insert((image, platform.clone()), reference(platform));
        }
    }

    /// With `sign:`, the signature (and attestation) the image's digest lacks:
    /// a built image's always, a known digest's when its repository does not
    /// list them. A multi-platform image built (or assembled) here has its
    /// index and each platform's manifest signed.
    fn sign(&mut self, image: &ImageConfig, action: &ImageAction, seen: &Seen) {
        let Some(sign) = &self.config.sign else { return };
        let (digest, stage_tag) = match action {
            ImageAction::Build { .. } | ImageAction::Staged { digest: None } => (None, Some(seen.stage_ref.clone())),
            ImageAction::Retag { digest, .. }
            | ImageAction::Published { digest }
            | ImageAction::Staged { digest: Some(digest) } => (Some(digest.clone()), None),
            ImageAction::NotSelected => return,
        };
        let listed = self.observed.artifacts.get(&image.name);
        // What `digest` lacks: (signature, attestation); everything when it is not known yet.
        let lacks = |digest: Option<&str>| {
            let lacks = |suffix: &str| {
                digest.is_none_or(|d| listed.is_none_or(|l| !l.contains(&crate::plan::artifact_tag(d, suffix))))
            };
            (lacks("sig"), sign.provenance && lacks("att"))
        };
        let step = |digest: Option<String>, stage_tag, platform: String, entry| {
            let (signature, attestation) = lacks(digest.as_deref());
            (signature || attestation).then(|| SignStep {
                image: image.name.clone(),
                repository: seen.repository.clone(),
                digest,
                stage_tag,
                signature,
                attestation,
                platform,
                entry,
            })
        };
        if seen.is_index() {
            match &digest {
                // Built or assembled here: every platform's manifest, from its staging tag.
                None => {
                    for p in &seen.platforms {
                        self.signs.extend(step(None, Some(seen.platform_tag(p)), p.clone(), true));
                    }
                }
                // Already out: each platform's manifest whose signature is missing.
                Some(index) => {
                    for (p, d) in self.observed.index_platforms.get(index).into_iter().flatten() {
                        self.signs.extend(step(Some(d.clone()), None, p.clone(), true));
                    }
                }
            }
        }
        self.signs.extend(step(digest, stage_tag, seen.platforms.join(","), false));
    }

    /// A note when the image's inputs include a file relctl rewrites after
    /// every release: its whole context, or a file its Dockerfile reads.
    fn note_rewritten(&mut self, image: &ImageConfig) {
        let sent = self.observed.rewritten_in_context.get(&image.name);
        let Some(files) = sent.filter(|_| self.config.build.retag_unchanged) else { return };
        let files = files.join(", ");
        let whole =
            self.config.build.inputs == Inputs::Context || self.observed.whole_context.contains_key(&image.name);
        self.notes.push(if whole {
            format!(
                "{0}: its build context sends {files}, which relctl rewrites after every release, so {0} is built again in every release; list {files} in .dockerignore unless the build reads it",
                image.name
            )
        } else {
            format!(
                "{0}: its Dockerfile reads {files}, which relctl rewrites after every release, so {0} is built again in every release",
                image.name
            )
        });
    }

    /// Where each floating tag of `image` goes: moved here, or why it stays.
    fn floating(&mut self, image: &ImageConfig, seen: &Seen) -> Vec<FloatingDecision> {
        let (target, primary) = (&self.observed.target, self.primary());
        let mut decisions = Vec::new();
        for (tag, scope) in &self.tags.floating {
            let decision = match floating::eligible(target, *scope, &self.observed.release_tags) {
                Err(holder) => FloatingDecision {
                    tag: tag.clone(),
                    moves: false,
                    carried: false,
                    reason: match holder {
                        Some(h) => format!("stays: {} is higher", h.raw),
                        None => "stays: pre-releases never take floating tags".into(),
                    },
                },
                Ok(()) => {
                    let current = seen.view.tag(tag).map(|t| t.digest.clone());
                    let released = self.released.get(image.name.as_str()).cloned().flatten();
                    let up_to_date = current.is_some() && current == released;
                    if !up_to_date {
                        self.moves.push(MoveStep {
                            image: image.name.clone(),
                            repository: seen.repository.clone(),
                            tag: tag.clone(),
                            to: primary.to_string(),
                            from_digest: current,
                        });
                    }
                    let reason =
                        if up_to_date { format!("already at {primary}") } else { format!("moves to {primary}") };
                    FloatingDecision { tag: tag.clone(), moves: !up_to_date, carried: true, reason }
                }
            };
            decisions.push(decision);
        }
        decisions
    }
}
