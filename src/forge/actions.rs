//! GitHub Actions integration, active when `GITHUB_ACTIONS=true`: step
//! outputs appended to `GITHUB_OUTPUT`, a Markdown table appended to
//! `GITHUB_STEP_SUMMARY`, `::group::` around each phase, and `::error::`
//! annotations. Workflow commands go to stderr, which the runner reads like stdout,
//! so `--json` output on stdout stays clean.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::Path;
use std::sync::Mutex;

use super::ReleaseNotes;
use crate::progress::{ImageState, Progress, ProgressSink};

/// Whether relctl runs as a GitHub Actions step.
pub fn active() -> bool {
    std::env::var("GITHUB_ACTIONS").is_ok_and(|v| v == "true")
}

/// Escapes a workflow command's message (`%`, CR, LF).
pub fn escape_data(s: &str) -> String {
    s.replace('%', "%25").replace('\r', "%0D").replace('\n', "%0A")
}

/// Escapes a workflow command's property value (also `:` and `,`).
pub fn escape_property(s: &str) -> String {
    escape_data(s).replace(':', "%3A").replace(',', "%2C")
}

/// An `::error` annotation.
pub fn error_command(title: &str, message: &str) -> String {
    format!("::error title={}::{}", escape_property(title), escape_data(message))
}

/// The step outputs of a release: version, prerelease, images (JSON with
/// digests) and version-commit (empty when VERSION did not change).
pub fn release_outputs(notes: &ReleaseNotes, version_commit: Option<&str>) -> Vec<(String, String)> {
    vec![
        ("version".into(), notes.tag.clone()),
        ("prerelease".into(), notes.prerelease.to_string()),
        ("images".into(), serde_json::to_string(&notes.images).expect("images serialize")),
        ("version-commit".into(), version_commit.unwrap_or_default().to_string()),
    ]
}

/// The `GITHUB_OUTPUT` text for `outputs`, in the multi-line form
/// (`name<<DELIMITER`), with a delimiter that occurs in no value.
pub fn output_text(outputs: &[(String, String)]) -> String {
    let mut delimiter = format!("relctl_{}", std::process::id());
    while outputs.iter().any(|(_, v)| v.contains(&delimiter)) {
        delimiter.push('_');
    }
    let mut s = String::new();
    for (name, value) in outputs {
        let _ = writeln!(s, "{name}<<{delimiter}\n{value}\n{delimiter}");
    }
    s
}

/// The Markdown appended to the job summary.
pub fn summary(notes: &ReleaseNotes, version_commit: Option<&str>, version_file: &str) -> String {
    let mut s = String::new();
    let kind = if notes.prerelease { "pre-release" } else { "release" };
    let _ = writeln!(s, "### relctl: {kind} {}\n", notes.tag);
    let _ = writeln!(s, "| image | tags | digest | |");
    let _ = writeln!(s, "|---|---|---|---|");
    for i in &notes.images {
        let tags = i.tags.iter().map(|t| format!("`{t}`")).collect::<Vec<_>>().join(" ");
        let how = if i.built { "built" } else { "retagged" };
        let _ = writeln!(s, "| `{}` | {tags} | {} | {how} |", i.repository, i.digest_cell());
    }
    match version_commit {
        Some(c) => {
            let _ = writeln!(s, "\n{version_file} = {} committed as `{c}`.", notes.tag);
        }
        None => {
            let _ = writeln!(s, "\n{version_file} unchanged.");
        }
    }
    s
}

/// Appends `text` to the file an environment variable names (GITHUB_OUTPUT,
/// GITHUB_STEP_SUMMARY). Does nothing when the variable is unset.
pub fn append_to(variable: &str, text: &str) -> std::io::Result<()> {
    let Some(path) = std::env::var_os(variable) else { return Ok(()) };
    let mut file = std::fs::OpenOptions::new().create(true).append(true).open(Path::new(&path))?;
    file.write_all(text.as_bytes())
}

/// Wraps a progress sink: each phase becomes a collapsible `::group::` in the
/// job log. Image states pass through unchanged.
pub struct Grouped {
    inner: ProgressSink,
    open: Mutex<bool>,
}

impl Grouped {
    pub fn new(inner: ProgressSink) -> Self {
        Self { inner, open: Mutex::new(false) }
    }
}

impl Progress for Grouped {
    fn update(&self, image: &str, state: &ImageState) {
        self.inner.update(image, state);
    }

    fn tick(&self) {
        self.inner.tick();
    }

    fn phase(&self, title: &str) {
        let mut open = self.open.lock().expect("group lock");
        let mut err = std::io::stderr().lock();
        if *open {
            let _ = writeln!(err, "::endgroup::");
        }
        let _ = writeln!(err, "::group::{}", escape_data(title));
        *open = true;
    }

    fn finish(&self) {
        let mut open = self.open.lock().expect("group lock");
        if *open {
            let _ = writeln!(std::io::stderr(), "::endgroup::");
            *open = false;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::forge::ReleasedImage;

    fn notes() -> ReleaseNotes {
        ReleaseNotes {
            tag: "v1.2.0".into(),
            prerelease: false,
            commit: "c0ffee".into(),
            images: vec![
                ReleasedImage {
                    image: "server".into(),
                    repository: "docker.io/acme/app-server".into(),
                    tags: vec!["v1.2.0".into(), "latest".into()],
                    digest: "sha256:aa".into(),
                    built: true,
                    signature: None,
                    platforms: Vec::new(),
                },
                ReleasedImage {
                    image: "agent".into(),
                    repository: "docker.io/acme/app-agent".into(),
                    tags: vec!["v1.2.0".into()],
                    digest: "sha256:bb".into(),
                    built: false,
                    signature: None,
                    platforms: Vec::new(),
                },
            ],
        }
    }

    #[test]
    fn commands_escape_what_would_end_them() {
        assert_eq!(
            error_command("image server: build", "50% done\nthen: failed"),
            "::error title=image server%3A build::50%25 done%0Athen: failed"
        );
    }

    #[test]
    fn outputs_use_a_delimiter_no_value_contains() {
        let mut outputs = release_outputs(&notes(), Some("abc123"));
        let text = output_text(&outputs);
        assert!(text.starts_with(&format!("version<<relctl_{0}\nv1.2.0\nrelctl_{0}\n", std::process::id())), "{text}");
        assert!(text.contains("prerelease<<"));
        assert!(text.contains("\"digest\":\"sha256:aa\""));
        assert!(text.contains("version-commit<<") && text.contains("\nabc123\n"));

        outputs.push(("evil".into(), format!("x\nrelctl_{}\ny", std::process::id())));
        let text = output_text(&outputs);
        assert!(text.contains(&format!("evil<<relctl_{}_\n", std::process::id())), "{text}");
    }

    #[test]
    fn summary_is_a_table_of_images() {
        let s = summary(&notes(), None, "VERSION");
        assert!(s.contains("| `docker.io/acme/app-server` | `v1.2.0` `latest` | `sha256:aa` | built |"), "{s}");
        assert!(s.contains("| `docker.io/acme/app-agent` | `v1.2.0` | `sha256:bb` | retagged |"), "{s}");
        assert!(s.ends_with("VERSION unchanged.\n"), "{s}");
    }
}
