//! Release tags: the configured tag prefix followed by a SemVer 2.0.0 version,
//! and the image-tag-safe spellings derived from it.

use std::cmp::Ordering;

use serde::Serialize;

/// A git tag that resolved to a semantic version, e.g. `v1.2.0-rc.1`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReleaseVersion {
    /// The tag exactly as in git, prefix included.
    pub raw: String,
    /// The version after the prefix.
    #[serde(serialize_with = "serialize_display")]
    pub version: semver::Version,
}

fn serialize_display<S: serde::Serializer>(v: &semver::Version, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(v)
}

/// Why a tag is not a release tag.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TagError {
    #[error("tag `{tag}` is not a release tag: it does not start with the tag prefix `{prefix}`")]
    MissingPrefix { tag: String, prefix: String },
    #[error("tag `{tag}` is not a release tag: `{rest}` is not a SemVer 2.0.0 version ({reason})")]
    NotSemver { tag: String, rest: String, reason: String },
}

impl TagError {
    pub fn hint(&self) -> String {
        match self {
            TagError::MissingPrefix { prefix, .. } => format!(
                "release tags are `{prefix}` + MAJOR.MINOR.PATCH, e.g. {prefix}1.2.0 or {prefix}1.2.0-rc.1; set git.tag_prefix in release.yaml if your tags use another prefix"
            ),
            TagError::NotSemver { .. } => "use MAJOR.MINOR.PATCH without leading zeros, optionally with -PRERELEASE or +BUILD, e.g. v1.2.0, v1.2.0-rc.1, v1.2.0+build.7".to_string(),
        }
    }
}

impl ReleaseVersion {
    /// Resolves `tag` as `prefix` + SemVer 2.0.0.
    pub fn parse(tag: &str, prefix: &str) -> Result<Self, TagError> {
        let rest = tag
            .strip_prefix(prefix)
            .ok_or_else(|| TagError::MissingPrefix { tag: tag.to_string(), prefix: prefix.to_string() })?;
        let version = semver::Version::parse(rest).map_err(|e| TagError::NotSemver {
            tag: tag.to_string(),
            rest: rest.to_string(),
            reason: e.to_string(),
        })?;
        Ok(Self { raw: tag.to_string(), version })
    }

    pub fn is_prerelease(&self) -> bool {
        !self.version.pre.is_empty()
    }

    /// SemVer precedence, build metadata breaking ties so the order is total.
    pub fn cmp_release(&self, other: &Self) -> Ordering {
        self.version.cmp_precedence(&other.version).then_with(|| self.version.build.cmp(&other.version.build))
    }
}

/// Image tags cannot hold `+`; build metadata is joined with `-` instead, as
/// docker/metadata-action does.
pub fn image_tag_safe(s: &str) -> String {
    s.replace('+', "-")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn release_tags_resolve() {
        for (tag, version, pre) in [
            ("v1.2.0", "1.2.0", false),
            ("v1.2.0-rc.1", "1.2.0-rc.1", true),
            ("v1.2.0-dev.3", "1.2.0-dev.3", true),
            ("v1.2.0+build.7", "1.2.0+build.7", false),
            ("v0.0.1", "0.0.1", false),
        ] {
            let v = ReleaseVersion::parse(tag, "v").unwrap();
            assert_eq!(v.version.to_string(), version, "{tag}");
            assert_eq!(v.is_prerelease(), pre, "{tag}");
            assert_eq!(v.raw, tag);
        }
    }

    #[test]
    fn non_release_tags_say_why() {
        let cases = [
            ("v1.2", "unexpected end of input while parsing minor version number"),
            ("release-5", "does not start with the tag prefix `v`"),
            ("latest", "does not start with the tag prefix `v`"),
            ("v01.2.3", "invalid leading zero in major version number"),
            ("v1.2.3.4", "unexpected character '.' after patch version number"),
        ];
        for (tag, why) in cases {
            let err = ReleaseVersion::parse(tag, "v").unwrap_err().to_string();
            assert!(err.contains(why), "{tag}: {err}");
            assert!(err.contains(tag), "{tag}: {err}");
        }
    }

    #[test]
    fn custom_prefix() {
        assert!(ReleaseVersion::parse("release-1.0.0", "release-").is_ok());
        assert!(ReleaseVersion::parse("1.0.0", "").is_ok());
        assert!(ReleaseVersion::parse("v1.0.0", "release-").is_err());
    }

    #[test]
    fn build_metadata_becomes_dash() {
        assert_eq!(image_tag_safe("v1.2.0+build.7"), "v1.2.0-build.7");
    }

    #[test]
    fn ordering_is_semver_precedence() {
        let p = |t| ReleaseVersion::parse(t, "v").unwrap();
        assert_eq!(p("v1.2.0-rc.1").cmp_release(&p("v1.2.0")), Ordering::Less);
        assert_eq!(p("v1.10.0").cmp_release(&p("v1.9.0")), Ordering::Greater);
        assert_eq!(p("v1.0.0-alpha.10").cmp_release(&p("v1.0.0-alpha.9")), Ordering::Greater);
    }
}
