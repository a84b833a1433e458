//! Floating tags never move backwards: a floating tag moves to a release only
//! when it is the highest stable release within the tag's scope.

use crate::config::TagScope;
use crate::version::ReleaseVersion;

/// `Ok(())` if `target` may take a tag of `scope`; otherwise the release that holds it.
pub fn eligible<'a>(
    target: &ReleaseVersion,
    scope: TagScope,
    release_tags: &'a [ReleaseVersion],
) -> Result<(), Option<&'a ReleaseVersion>> {
    if target.is_prerelease() {
        return Err(None);
    }
    let v = &target.version;
    let highest = release_tags
        .iter()
        .filter(|t| !t.is_prerelease())
        .filter(|t| match scope {
            TagScope::Global => true,
            TagScope::Major => t.version.major == v.major,
            TagScope::Minor => t.version.major == v.major && t.version.minor == v.minor,
            TagScope::Version | TagScope::Patch => false,
        })
        .max_by(|a, b| a.cmp_release(b));
    match highest {
        Some(h) if h.cmp_release(target).is_gt() => Err(Some(h)),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tags(ts: &[&str]) -> Vec<ReleaseVersion> {
        ts.iter().map(|t| ReleaseVersion::parse(t, "v").unwrap()).collect()
    }

    #[test]
    fn table() {
        let repo = tags(&["v1.0.0", "v1.0.4", "v1.0.5", "v1.1.0", "v2.0.0-rc.1", "v0.9.9"]);
        // (target, scope, eligible, holder)
        let cases = [
            ("v1.1.0", TagScope::Global, true, None),
            ("v1.0.5", TagScope::Global, false, Some("v1.1.0")),
            ("v1.0.5", TagScope::Major, false, Some("v1.1.0")),
            ("v1.0.5", TagScope::Minor, true, None),
            ("v1.0.4", TagScope::Minor, false, Some("v1.0.5")),
            ("v0.9.9", TagScope::Major, true, None),
            ("v2.0.0-rc.1", TagScope::Global, false, None),
            ("v1.2.0", TagScope::Global, true, None), // not tagged yet: planned hypothetically
        ];
        for (target, scope, ok, holder) in cases {
            let t = ReleaseVersion::parse(target, "v").unwrap();
            let got = eligible(&t, scope, &repo);
            assert_eq!(got.is_ok(), ok, "{target} {scope:?}");
            assert_eq!(got.err().flatten().map(|h| h.raw.as_str()), holder, "{target} {scope:?}");
        }
    }
}
