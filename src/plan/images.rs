//! The per-image half of the planner: for each image, in dependency order,
//! what happens to it ([`ImageAction`]: build, retag, already published,
//! staged, not selected) and why, the steps that carries out, and where its
//! floating tags go.

use std::collections::BTreeMap;

use super::build::{build_step, input_key, stage_tag};
use super::{
    BuildStep, FloatingDecision, ImageAction, ImagePlan, MoveStep, Observed, PlanError, PlanOptions, PushSource,
    PushStep, RegistryView, ReleaseTags, RemoteTag, SignStep, floating,
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
    pub signs: Vec<SignStep>,
    pub pushes: Vec<PushStep>,
    pub moves: Vec<MoveStep>,
    /// Images `finalize` needs but nobody staged.
    pub not_staged: Vec<String>,
    /// Images that carry the release after this plan, and the digest where already known.
    pub released: BTreeMap<&'a str, Option<String>>,
    /// What a child's `<PARENT>_IMAGE` build argument names for each released parent.
    parent_refs: BTreeMap<&'a str, String>,
    keys: BTreeMap<&'a str, String>,
}

/// What the registry holds of one image, as far as this release is concerned.
struct Seen {
    view: RegistryView,
    repository: String,
    key: Option<String>,
    stage_ref: String,
    /// Staged by a fan-out job from this commit, with the inputs this release has.
    staged: Option<RemoteTag>,
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
            signs: Vec::new(),
            pushes: Vec::new(),
            moves: Vec::new(),
            not_staged: Vec::new(),
            released: BTreeMap::new(),
            parent_refs: BTreeMap::new(),
            keys: BTreeMap::new(),
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
        });
        Ok(())
    }

    fn seen(&mut self, image: &'a ImageConfig) -> Seen {
        let observed = self.observed;
        let key = input_key(observed, image, &self.keys);
        if let Some(k) = &key {
            self.keys.insert(&image.name, k.clone());
        }
        let view = observed.registry.get(&image.name).cloned().unwrap_or(RegistryView::Known(BTreeMap::new()));
        if let RegistryView::Unknown(why) = &view {
            self.notes.push(format!("{}: registry not read ({why}); assuming nothing is published", image.name));
        }
        let stage_ref = stage_tag(self.primary(), &observed.commit);
        let staged = view
            .tag(&stage_ref)
            .filter(|t| {
                t.revision.as_deref() == Some(observed.commit.as_str())
                    && (t.inputs.is_none() || key.is_none() || t.inputs == key)
            })
            .cloned();
        let repository = self.config.image_repo(image);
        Seen { view, repository, key, stage_ref, staged }
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
        let selected = opts.only.as_ref().is_none_or(|o| o.contains(&image.name));
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
            (None, None) => match (unchanged, &seen.staged) {
                (Some((from, prev)), _) => ImageAction::Retag { from: from.clone(), digest: prev.digest.clone() },
                (None, Some(t)) if opts.stage_only || opts.finalize => ImageAction::Staged { digest: t.digest.clone() },
                (None, _) if opts.finalize => {
                    self.not_staged.push(image.name.clone());
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
        match action {
            ImageAction::Build { .. } => {
                self.note_rewritten(image);
                let stage = (config.build.stage || opts.stage_only).then(|| seen.stage_ref.clone());
                let reference = format!("{repository}:{}", stage.as_deref().unwrap_or(primary));
                let mut step = build_step(
                    config,
                    self.observed,
                    opts,
                    image,
                    reference.clone(),
                    &self.parent_refs,
                    seen.key.clone(),
                )?;
                step.stage_tag = stage.clone();
                self.builds.push(step);
                self.pushes.push(push(version_tags, stage.map_or(PushSource::Build, PushSource::Staged)));
                self.released.insert(&image.name, None);
                // Children build from the local image, under the name it was built as.
                self.parent_refs.insert(&image.name, reference);
            }
            ImageAction::Retag { from, digest } => {
                self.pushes.push(push(version_tags, PushSource::Tag(from.clone())));
                self.released.insert(&image.name, Some(digest.clone()));
                // Children built in phase 1 use the earlier tag: the version tag appears in phase 2.
                self.parent_refs.insert(&image.name, format!("{repository}:{from}"));
            }
            ImageAction::Published { digest } => {
                let view = &seen.view;
                let missing: Vec<String> =
                    version_tags.into_iter().filter(|t| view.tag(t).is_none_or(|r| &r.digest != digest)).collect();
                if !missing.is_empty() {
                    self.pushes.push(push(missing, PushSource::Tag(primary.to_string())));
                }
                self.released.insert(&image.name, Some(digest.clone()));
                self.parent_refs.insert(&image.name, format!("{repository}:{primary}"));
            }
            ImageAction::Staged { digest } => {
                self.pushes.push(push(version_tags, PushSource::Staged(seen.stage_ref.clone())));
                self.released.insert(&image.name, Some(digest.clone()));
                self.parent_refs.insert(&image.name, format!("{repository}:{}", seen.stage_ref));
            }
            ImageAction::NotSelected => {
                // A parent staged by another fan-out job: the child's build pulls it from the registry.
                if opts.stage_only && seen.staged.is_some() {
                    self.parent_refs.insert(&image.name, format!("{repository}:{}", seen.stage_ref));
                }
            }
        }
        Ok(())
    }

    /// With `sign:`, the signature (and attestation) the image's digest lacks:
    /// a built image's always, a known digest's when its repository does not list them.
    fn sign(&mut self, image: &ImageConfig, action: &ImageAction, seen: &Seen) {
        let Some(sign) = &self.config.sign else { return };
        let (digest, stage_tag) = match action {
            ImageAction::Build { .. } => (None, Some(seen.stage_ref.clone())),
            ImageAction::Retag { digest, .. } | ImageAction::Published { digest } | ImageAction::Staged { digest } => {
                (Some(digest.clone()), None)
            }
            ImageAction::NotSelected => return,
        };
        let listed = self.observed.artifacts.get(&image.name);
        let lacks = |suffix: &str| {
            digest.as_deref().is_none_or(|d| listed.is_none_or(|l| !l.contains(&crate::plan::artifact_tag(d, suffix))))
        };
        let (signature, attestation) = (lacks("sig"), sign.provenance && lacks("att"));
        if signature || attestation {
            self.signs.push(SignStep {
                image: image.name.clone(),
                repository: seen.repository.clone(),
                digest,
                stage_tag,
                signature,
                attestation,
                platform: self.observed.platform.clone(),
            });
        }
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
