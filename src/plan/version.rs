//! Whether a release changes VERSION, and the commit step when it does.

use super::{Observed, VersionDecision, VersionStep};
use crate::config::Config;
use crate::version::ReleaseVersion;

pub(super) fn version_decision(
    config: &Config,
    observed: &Observed,
    unreleased: &[&str],
) -> (VersionDecision, Option<VersionStep>) {
    let target = &observed.target;
    let current_raw = observed.version_file.as_ref().map(|s| s.trim().to_string()).filter(|s| !s.is_empty());
    let current = current_raw.as_deref().and_then(|c| ReleaseVersion::parse(c, &config.git.tag_prefix).ok());
    let decide = |next: Option<String>, reason: String| VersionDecision {
        path: config.version_file.clone(),
        current: current_raw.clone(),
        next,
        reason,
    };
    if target.is_prerelease() {
        return (decide(None, "stays: pre-releases never change VERSION".into()), None);
    }
    if let Some(cur) = &current {
        if cur.cmp_release(target).is_ge() {
            let reason = if cur.cmp_release(target).is_eq() {
                "already current".to_string()
            } else {
                format!("stays: {} is higher", cur.raw)
            };
            return (decide(None, reason), None);
        }
    }
    if !unreleased.is_empty() {
        return (
            decide(
                None,
                format!("stays: not every image carries {} yet (missing: {})", target.raw, unreleased.join(", ")),
            ),
            None,
        );
    }
    let message =
        config.commit.message.replace("{{raw}}", &target.raw).replace("{{version}}", &target.version.to_string());
    let step = VersionStep {
        path: config.version_file.clone(),
        from: current_raw.clone(),
        to: target.raw.clone(),
        message,
        also_update: config.also_update.iter().map(|a| a.path.clone()).collect(),
    };
    let reason = match &current_raw {
        Some(c) if current.is_none() => format!("`{c}` is not a release version; replaced"),
        _ => "newest stable release".into(),
    };
    (decide(Some(target.raw.clone()), reason), Some(step))
}
