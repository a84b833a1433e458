//! Image tag templates (`{{raw}}`, `{{version}}`, `{{major}}`, `{{minor}}`, `{{patch}}`),
//! their validation, and which of them are immutable version tags and which float.

use serde::Serialize;

use crate::version::{ReleaseVersion, image_tag_safe};

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

    /// The tag for `v`, or `None` where the template does not apply: only
    /// `{{raw}}`/`{{version}}` templates apply to pre-releases, as in docker/metadata-action.
    pub fn render(&self, v: &ReleaseVersion) -> Option<String> {
        if v.is_prerelease() && self.scope() != TagScope::Version {
            return None;
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
        // Docker limits tags to 128 characters; longer ones are cut as metadata-action does not, so refuse quietly.
        (out.len() <= 128).then_some(out)
    }
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
        ];
        for (tpl, want) in cases {
            let err = TagTemplate::parse(tpl).unwrap_err().to_string();
            assert!(err.contains(want), "{tpl:?}: {err}");
        }
    }
}
