//! Image tag templates (`{{raw}}`, `{{version}}`, `{{major}}`, `{{minor}}`, `{{patch}}`),
//! their validation, and which of them are immutable version tags and which float.

use serde::Serialize;

use super::oci;
use crate::version::{ReleaseVersion, image_tag_safe};

/// Versions (after the tag prefix) that every configured template must render
/// within the spec: config validation renders each template for each of them.
/// A longer release tag can still render a tag over 128 characters; that
/// release is refused (`plan::image_tags`, through [`TagTemplate::try_render`]),
/// not the whole configuration.
pub const REPRESENTATIVE_VERSIONS: &[&str] =
    &["0.0.0", "1.2.3", "1.2.3-rc.1", "1.2.3+build.7", "123.456.789-alpha.10+sha.5114f85"];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Var {
    Raw,
    Version,
    Major,
    Minor,
    Patch,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Lit(String),
    Var(Var),
}

/// What a rendered tag points at over time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TagScope {
    /// Names one release (`{{raw}}`, `{{version}}`): pushed for every release, never moved.
    Version,
    /// Names one stable MAJOR.MINOR.PATCH (`{{major}}.{{minor}}.{{patch}}`): stable releases only, never moved.
    Patch,
    /// Follows the highest stable release of a MAJOR.MINOR line.
    Minor,
    /// Follows the highest stable release of a MAJOR line.
    Major,
    /// Follows the highest stable release overall (`latest`).
    Global,
}

impl TagScope {
    /// Floating tags move from release to release; the others are written once.
    pub fn is_floating(self) -> bool {
        matches!(self, TagScope::Minor | TagScope::Major | TagScope::Global)
    }
}

/// A validated tag template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TagTemplate {
    source: String,
    parts: Vec<Part>,
}

/// Why a template is not usable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    #[error("tag template `{0}` is empty")]
    Empty(String),
    #[error("tag template `{template}` has an unclosed `{{{{`")]
    Unclosed { template: String },
    #[error("tag template `{template}` uses unknown variable `{{{{{name}}}}}`")]
    UnknownVar { template: String, name: String },
    #[error("tag template `{template}` contains `{ch}`, which is not allowed in an image tag")]
    BadChar { template: String, ch: char },
    #[error("tag template `{template}` would start with `{ch}`; image tags start with a letter, digit or `_`")]
    BadStart { template: String, ch: char },
    #[error("tag template `{template}` has {len} fixed characters; image tags are at most 128 characters")]
    TooLong { template: String, len: usize },
}

/// Why a template cannot name a given release within the spec's tag grammar
/// (`[A-Za-z0-9_][A-Za-z0-9._-]{0,127}`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RenderError {
    /// The rendered tag is longer than 128 characters (a long pre-release or build metadata).
    #[error(
        "tag template `{template}` renders a {len}-character image tag for {release}; image tags are at most 128 characters"
    )]
    TooLong { template: String, release: String, len: usize },
    /// The rendered tag has a character or start the grammar refuses (through the tag prefix in `{{raw}}`).
    #[error("tag template `{template}` renders `{tag}` for {release}, which is not a valid image tag")]
    Invalid { template: String, release: String, tag: String },
}

impl TagTemplate {
    pub fn parse(source: &str) -> Result<Self, TemplateError> {
        if source.trim().is_empty() {
            return Err(TemplateError::Empty(source.to_string()));
        }
        let mut parts = Vec::new();
        let mut rest = source;
        while !rest.is_empty() {
            if let Some(after) = rest.strip_prefix("{{") {
                let end = after.find("}}").ok_or_else(|| TemplateError::Unclosed { template: source.to_string() })?;
                let name = after[..end].trim();
                let var = match name {
                    "raw" => Var::Raw,
                    "version" => Var::Version,
                    "major" => Var::Major,
                    "minor" => Var::Minor,
                    "patch" => Var::Patch,
                    other => {
                        return Err(TemplateError::UnknownVar {
                            template: source.to_string(),
                            name: other.to_string(),
                        });
                    }
                };
                parts.push(Part::Var(var));
                rest = &after[end + 2..];
            } else {
                let end = rest.find("{{").unwrap_or(rest.len());
                let lit = &rest[..end];
                if let Some(ch) = lit.chars().find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))) {
                    return Err(TemplateError::BadChar { template: source.to_string(), ch });
                }
                if parts.is_empty() {
                    if let Some(ch) = lit.chars().next().filter(|c| matches!(c, '.' | '-')) {
                        return Err(TemplateError::BadStart { template: source.to_string(), ch });
                    }
                }
                parts.push(Part::Lit(lit.to_string()));
                rest = &rest[end..];
            }
        }
        let fixed: usize = parts.iter().map(|p| if let Part::Lit(s) = p { s.len() } else { 0 }).sum();
        if fixed > oci::MAX_TAG_LEN {
            return Err(TemplateError::TooLong { template: source.to_string(), len: fixed });
        }
        Ok(Self { source: source.to_string(), parts })
    }

    pub fn source(&self) -> &str {
        &self.source
    }

    fn uses(&self, var: Var) -> bool {
        self.parts.contains(&Part::Var(var))
    }

    pub fn scope(&self) -> TagScope {
        if self.uses(Var::Raw) || self.uses(Var::Version) {
            TagScope::Version
        } else if self.uses(Var::Patch) {
            TagScope::Patch
        } else if self.uses(Var::Minor) {
            TagScope::Minor
        } else if self.uses(Var::Major) {
            TagScope::Major
        } else {
            TagScope::Global
        }
    }

    /// The tag for `v`, or `None` where the template does not apply or its tag
    /// would be outside the spec; [`TagTemplate::try_render`] tells the two apart.
    pub fn render(&self, v: &ReleaseVersion) -> Option<String> {
        self.try_render(v).ok().flatten()
    }

    /// The tag for `v`, checked against the spec's tag grammar:
    ///
    /// - `Ok(Some(tag))`: a valid image tag (at most 128 characters of `[A-Za-z0-9_.-]`,
    ///   not starting with `.` or `-`);
    /// - `Ok(None)`: the template does not apply to `v`: only `{{raw}}`/`{{version}}`
    ///   templates apply to pre-releases, as in docker/metadata-action;
    /// - `Err(_)`: the template applies but cannot name `v` within the spec, e.g. a
    ///   valid SemVer tag with a long pre-release (`v0.9.0-` + 160 characters), or a
    ///   tag prefix that is no image tag text in `{{raw}}`. The release cannot be
    ///   published under this template; other releases are unaffected.
    ///
    /// Never panics.
    pub fn try_render(&self, v: &ReleaseVersion) -> Result<Option<String>, RenderError> {
        if v.is_prerelease() && self.scope() != TagScope::Version {
            return Ok(None);
        }
        let mut out = String::new();
        for part in &self.parts {
            match part {
                Part::Lit(s) => out.push_str(s),
                Part::Var(Var::Raw) => out.push_str(&image_tag_safe(&v.raw)),
                Part::Var(Var::Version) => out.push_str(&image_tag_safe(&v.version.to_string())),
                Part::Var(Var::Major) => out.push_str(&v.version.major.to_string()),
                Part::Var(Var::Minor) => out.push_str(&v.version.minor.to_string()),
                Part::Var(Var::Patch) => out.push_str(&v.version.patch.to_string()),
            }
        }
        if out.len() > oci::MAX_TAG_LEN {
            return Err(RenderError::TooLong { template: self.source.clone(), release: v.raw.clone(), len: out.len() });
        }
        if !oci::is_tag(&out) {
            return Err(RenderError::Invalid { template: self.source.clone(), release: v.raw.clone(), tag: out });
        }
        Ok(Some(out))
    }
}

/// The first of `templates` that cannot name `v` within the spec, or `None`
/// when every template renders a valid tag for `v` (or does not apply to it).
/// A release with a problem cannot be published as configured; the others can.
pub fn image_tag_problem(templates: &[TagTemplate], v: &ReleaseVersion) -> Option<RenderError> {
    templates.iter().find_map(|t| t.try_render(v).err())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(t: &str) -> ReleaseVersion {
        ReleaseVersion::parse(t, "v").unwrap()
    }

    #[test]
    fn renders_and_scopes() {
        let cases = [
            ("{{raw}}", "v1.2.3", Some("v1.2.3"), TagScope::Version),
            ("{{version}}", "v1.2.3", Some("1.2.3"), TagScope::Version),
            ("{{raw}}", "v1.2.3+build.7", Some("v1.2.3-build.7"), TagScope::Version),
            ("{{version}}", "v1.2.3-rc.1", Some("1.2.3-rc.1"), TagScope::Version),
            ("latest", "v1.2.3", Some("latest"), TagScope::Global),
            ("latest", "v1.2.3-rc.1", None, TagScope::Global),
            ("{{major}}", "v1.2.3", Some("1"), TagScope::Major),
            ("v{{major}}.{{minor}}", "v1.2.3", Some("v1.2"), TagScope::Minor),
            ("{{major}}.{{minor}}", "v1.2.3-rc.1", None, TagScope::Minor),
            ("{{major}}.{{minor}}.{{patch}}", "v1.2.3", Some("1.2.3"), TagScope::Patch),
            ("stable-{{major}}", "v2.0.0", Some("stable-2"), TagScope::Major),
        ];
        for (tpl, tag, want, scope) in cases {
            let t = TagTemplate::parse(tpl).unwrap();
            assert_eq!(t.render(&v(tag)).as_deref(), want, "{tpl} {tag}");
            assert_eq!(t.scope(), scope, "{tpl}");
        }
    }

    #[test]
    fn bad_templates_are_refused() {
        let cases = [
            ("", "is empty"),
            ("{{raw", "unclosed"),
            ("{{sha}}", "unknown variable `{{sha}}`"),
            ("v {{raw}}", "contains ` `"),
            ("{{raw}}/x", "contains `/`"),
            ("-{{raw}}", "would start with `-`"),
            (&format!("{}{{{{raw}}}}", "a".repeat(129)), "has 129 fixed characters"),
            (&"a".repeat(129), "has 129 fixed characters"),
        ];
        for (tpl, want) in cases {
            let err = TagTemplate::parse(tpl).unwrap_err().to_string();
            assert!(err.contains(want), "{tpl:?}: {err}");
        }
        assert!(TagTemplate::parse(&"a".repeat(128)).is_ok());
    }

    #[test]
    fn tags_outside_the_spec_are_errors_not_panics() {
        #[derive(Debug)]
        enum Want {
            Tag(String),
            NotApplicable,
            TooLong(usize),
            Invalid,
        }
        use Want::*;
        let long_pre = format!("v0.9.0-{}", "a".repeat(160));
        let long_build = format!("v1.0.0+{}", "b".repeat(200));
        let at_limit = format!("v1.0.0-{}", "c".repeat(121)); // 128 characters
        let max = "v18446744073709551615.18446744073709551615.18446744073709551615";
        let cases = [
            ("{{raw}}", long_pre.as_str(), "v", TooLong(167)),
            ("{{version}}", &long_pre, "v", TooLong(166)),
            ("latest", &long_pre, "v", NotApplicable),
            ("{{major}}.{{minor}}", &long_pre, "v", NotApplicable),
            ("{{raw}}", &long_build, "v", TooLong(207)),
            ("latest", &long_build, "v", Tag("latest".into())),
            ("{{major}}", &long_build, "v", Tag("1".into())),
            ("{{raw}}", &at_limit, "v", Tag(at_limit.clone())),
            ("x{{raw}}", &at_limit, "v", TooLong(129)),
            ("{{raw}}", "release/1.0.0", "release/", Invalid),
            ("{{version}}", "release/1.0.0", "release/", Tag("1.0.0".into())),
            ("{{raw}}", "-1.0.0", "-", Invalid),
            ("{{raw}}", ".1.0.0", ".", Invalid),
            ("_{{raw}}", "-1.0.0", "-", Tag("_-1.0.0".into())),
            ("{{raw}}", "1.0.0", "", Tag("1.0.0".into())),
            ("{{major}}.{{minor}}.{{patch}}", max, "v", Tag(max[1..].into())),
        ];
        for (template, tag, prefix, want) in cases {
            let v = ReleaseVersion::parse(tag, prefix).unwrap();
            let t = TagTemplate::parse(template).unwrap();
            let got = t.try_render(&v);
            let ok = match (&want, &got) {
                (Tag(w), Ok(Some(g))) => w == g,
                (NotApplicable, Ok(None)) => true,
                (TooLong(w), Err(RenderError::TooLong { len, .. })) => w == len,
                (Invalid, Err(RenderError::Invalid { .. })) => true,
                _ => false,
            };
            assert!(ok, "{template} {tag}: {got:?}, wanted {want:?}");
            assert_eq!(t.render(&v), got.clone().ok().flatten(), "{template} {tag}");
            assert_eq!(image_tag_problem(std::slice::from_ref(&t), &v), got.err(), "{template} {tag}");
        }
        let err = TagTemplate::parse("{{raw}}").unwrap().try_render(&v(&long_pre)).unwrap_err().to_string();
        assert!(err.contains("renders a 167-character image tag") && err.contains("at most 128"), "{err}");
    }

    #[test]
    fn representative_versions_are_semver() {
        for version in REPRESENTATIVE_VERSIONS {
            assert!(ReleaseVersion::parse(&format!("v{version}"), "v").is_ok(), "{version}");
        }
    }
}
