//! `relctl init`: the files a repository needs to start releasing with relctl,
//! fitted to the Dockerfiles it finds: a commented release.yaml and a GitHub
//! workflow that runs the Action on tag pushes. No VERSION: an absent VERSION
//! means "nothing released yet", and the first release commits it.
//!
//! How Dockerfiles are found, named and given a context (docs/installers.md,
//! "Generated files", says the same):
//! - files named `Dockerfile` or `Dockerfile.<name>` at the root or up to
//!   [`MAX_DEPTH`] directories below it, skipping hidden directories,
//!   `node_modules`, `target` and `vendor`, symbolic links, and
//!   `*.dockerignore` files;
//! - the name: `./Dockerfile` (and `docker/Dockerfile`) is the project's image;
//!   `<dir>/Dockerfile` is named after the last component of `<dir>`;
//!   `Dockerfile.<name>` at the root or in `docker/` is `<name>`, elsewhere
//!   `<dir>-<name>`; each normalised to the registry's name grammar, and names
//!   that clash are qualified with their whole directory path;
//! - the context: the Dockerfile's directory when every local COPY/ADD source
//!   exists relative to it (or there is none), else the repository root `.`
//!   (with a `dockerfile:` key) when they all exist there; when some source
//!   exists in neither, `.` is a guess, and init says so.
//!
//! The workflow is `examples/workflows/init-release.yml`, included verbatim,
//! so the file `scripts/lint-workflows.sh` lints is the one init writes.

use std::path::{Component, Path, PathBuf};

use crate::config::{SCHEMA_URL, oci};

/// The five images relctl's users start from when no Dockerfile is found.
pub const DEFAULT_IMAGES: [&str; 5] = ["server", "frontend", "nginx", "worker", "agent"];

/// How many directories below the root a Dockerfile is looked for (`a/b/c/Dockerfile`).
pub const MAX_DEPTH: usize = 3;

/// Directories never searched for Dockerfiles (besides hidden ones).
pub const SKIPPED_DIRS: [&str; 3] = ["node_modules", "target", "vendor"];

/// Where init writes the workflow, relative to the repository.
pub const WORKFLOW_PATH: &str = ".github/workflows/release.yml";

/// The release workflow init writes: every action pinned by full commit SHA
/// (relctl's own by a placeholder SHA, marked as such; see [`ACTION_SHA_PLACEHOLDER`]).
pub const WORKFLOW: &str = include_str!("../../examples/workflows/init-release.yml");

/// The SHA relctl/relctl is pinned to in [`WORKFLOW`] until a release of relctl
/// exists to pin to: all zeros, which GitHub cannot resolve, so a workflow
/// nobody edited fails at its first step instead of running an unpinned action.
pub const ACTION_SHA_PLACEHOLDER: &str = "0000000000000000000000000000000000000000";

/// One image init found: its name, Dockerfile and context, and why that context.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FoundImage {
    pub name: String,
    /// The Dockerfile, relative to the repository, `/`-separated.
    pub dockerfile: String,
    /// The build context, relative to the repository (`.` is the root).
    pub context: String,
    /// Why this context, for the line init prints.
    pub why: String,
    /// True when the context is a guess the user should check.
    pub guessed: bool,
}

impl FoundImage {
    /// The `dockerfile:` key release.yaml needs: none when it is `<context>/Dockerfile`.
    pub fn dockerfile_key(&self) -> Option<&str> {
        let default =
            if self.context == "." { "Dockerfile".to_string() } else { format!("{}/Dockerfile", self.context) };
        (self.dockerfile != default).then_some(self.dockerfile.as_str())
    }
}

/// The top of release.yaml: where images go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    pub registry: String,
    pub namespace: String,
    pub project: String,
}

/// What `relctl init` writes: (path relative to the repository, content).
/// No images means no Dockerfile was found: release.yaml then lists the five
/// [`DEFAULT_IMAGES`] as placeholders, under a comment saying so.
pub fn files(settings: &Settings, images: &[FoundImage]) -> Vec<(PathBuf, String)> {
    vec![
        (PathBuf::from("release.yaml"), release_yaml(settings, images)),
        (PathBuf::from(WORKFLOW_PATH), WORKFLOW.to_string()),
    ]
}

/// `s` in the registry's path component grammar (`[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*`):
/// lower case, any other character a `-`, runs of separators that the grammar
/// refuses become one `-`, none at either end. None when nothing is left.
pub fn normalise_name(s: &str) -> Option<String> {
    let mut out = String::new();
    let mut sep = String::new();
    for c in s.chars() {
        if c.is_ascii_alphanumeric() {
            if !out.is_empty() && !sep.is_empty() {
                let valid = matches!(sep.as_str(), "." | "_" | "__") || sep.chars().all(|c| c == '-');
                out.push_str(if valid { &sep } else { "-" });
            }
            sep.clear();
            out.push(c.to_ascii_lowercase());
        } else {
            sep.push(if matches!(c, '.' | '_' | '-') { c } else { '-' });
        }
    }
    debug_assert!(out.is_empty() || oci::is_path_component(&out), "{out}");
    (!out.is_empty()).then_some(out)
}

/// Every `Dockerfile` and `Dockerfile.<name>` under `root` (see the module
/// docs for where init looks), relative and `/`-separated, sorted.
pub fn find_dockerfiles(root: &Path) -> Vec<String> {
    fn walk(root: &Path, rel: &Path, depth: usize, out: &mut Vec<String>) {
        let Ok(entries) = std::fs::read_dir(root.join(rel)) else { return };
        let mut entries: Vec<_> = entries.flatten().collect();
        entries.sort_by_key(|e| e.file_name());
        for entry in entries {
            let Ok(kind) = entry.file_type() else { continue };
            let name = entry.file_name().to_string_lossy().into_owned();
            if kind.is_dir() {
                if depth < MAX_DEPTH && !name.starts_with('.') && !SKIPPED_DIRS.contains(&name.as_str()) {
                    walk(root, &rel.join(&name), depth + 1, out);
                }
            } else if kind.is_file() && is_dockerfile_name(&name) {
                out.push(slash_path(&rel.join(&name)));
            }
        }
    }
    let mut out = Vec::new();
    walk(root, Path::new(""), 0, &mut out);
    out.sort();
    out
}

fn is_dockerfile_name(name: &str) -> bool {
    match name.strip_prefix("Dockerfile") {
        Some("") => true,
        Some(rest) => {
            let Some(variant) = rest.strip_prefix('.') else { return false };
            !variant.is_empty()
                && ![".dockerignore", ".bak", ".orig", ".swp", ".tmp", "~"].iter().any(|s| rest.ends_with(s))
        }
        None => false,
    }
}

fn slash_path(p: &Path) -> String {
    p.components().map(|c| c.as_os_str().to_string_lossy().into_owned()).collect::<Vec<_>>().join("/")
}

/// The images of the Dockerfiles under `root`, with their contexts; empty when there is none.
pub fn find_images(root: &Path, project: &str) -> Vec<FoundImage> {
    let dockerfiles = find_dockerfiles(root);
    let mut images: Vec<FoundImage> = dockerfiles
        .iter()
        .map(|dockerfile| {
            let (dir, file) = dockerfile.rsplit_once('/').unwrap_or(("", dockerfile.as_str()));
            let text = std::fs::read(root.join(dockerfile)).unwrap_or_default();
            let sources = copy_sources(&String::from_utf8_lossy(&text));
            let (context, why, guessed) = choose_context(root, dir, &sources);
            FoundImage { name: image_name(dir, file, project), dockerfile: dockerfile.clone(), context, why, guessed }
        })
        .collect();
    // Names that clash are qualified with their whole directory path, then numbered.
    let clashing = |images: &[FoundImage], name: &str| images.iter().filter(|i| i.name == name).count() > 1;
    let qualified: Vec<String> = images
        .iter()
        .map(|i| if clashing(&images, &i.name) { qualified_name(&i.dockerfile, project) } else { i.name.clone() })
        .collect();
    for (image, name) in images.iter_mut().zip(qualified) {
        image.name = name;
    }
    for i in 0..images.len() {
        let taken = images[..i].iter().filter(|o| o.name == images[i].name).count();
        if taken > 0 {
            images[i].name = format!("{}-{}", images[i].name, taken + 1);
        }
    }
    images
}

fn image_name(dir: &str, file: &str, project: &str) -> String {
    let last = dir.rsplit('/').next().unwrap_or("");
    let variant = file.strip_prefix("Dockerfile.");
    let name = match (dir, variant) {
        ("" | "docker", None) => project.to_string(),
        ("" | "docker", Some(v)) => v.to_string(),
        (_, None) => last.to_string(),
        (_, Some(v)) => format!("{last}-{v}"),
    };
    normalise_name(&name).unwrap_or_else(|| project.to_string())
}

fn qualified_name(dockerfile: &str, project: &str) -> String {
    let name = match dockerfile.rsplit_once('/') {
        Some((dir, file)) => match file.strip_prefix("Dockerfile.") {
            Some(v) => format!("{dir}-{v}"),
            None => dir.to_string(),
        },
        None => dockerfile.strip_prefix("Dockerfile.").unwrap_or(project).to_string(),
    };
    normalise_name(&name).unwrap_or_else(|| project.to_string())
}

/// The local sources of a Dockerfile's COPY and ADD instructions: not those
/// `--from` a stage or image, URLs, heredocs or paths with variables.
pub fn copy_sources(dockerfile: &str) -> Vec<String> {
    let escape = dockerfile
        .lines()
        .take_while(|l| l.trim_start().starts_with('#'))
        .find_map(|l| l.trim_start_matches('#').trim().strip_prefix("escape=").map(str::trim))
        .and_then(|e| e.chars().next())
        .unwrap_or('\\');
    let mut sources = Vec::new();
    let mut logical = String::new();
    for line in dockerfile.lines() {
        let trimmed = line.trim();
        if trimmed.starts_with('#') {
            continue;
        }
        match trimmed.strip_suffix(escape) {
            Some(head) => {
                logical.push_str(head);
                logical.push(' ');
            }
            None => {
                logical.push_str(trimmed);
                sources.extend(instruction_sources(&logical));
                logical.clear();
            }
        }
    }
    sources.extend(instruction_sources(&logical));
    sources
}

fn instruction_sources(line: &str) -> Vec<String> {
    let mut words = line.trim().splitn(2, char::is_whitespace);
    let instruction = words.next().unwrap_or("").to_ascii_uppercase();
    if instruction != "COPY" && instruction != "ADD" {
        return Vec::new();
    }
    let mut rest = words.next().unwrap_or("").trim_start();
    while let Some(flag) = rest.strip_prefix("--") {
        let (word, after) = flag.split_once(char::is_whitespace).unwrap_or((flag, ""));
        if word.starts_with("from=") {
            return Vec::new();
        }
        rest = after.trim_start();
    }
    let args: Vec<String> = if rest.starts_with('[') {
        serde_json::from_str(rest).unwrap_or_default()
    } else {
        rest.split_whitespace().map(str::to_string).collect()
    };
    let Some((_dest, sources)) = args.split_last() else { return Vec::new() };
    sources
        .iter()
        .filter(|s| !s.contains("://") && !s.starts_with("git@") && !s.starts_with("<<") && !s.contains('$'))
        .cloned()
        .collect()
}

/// Whether `source` (as COPY reads it: relative to the context, a leading `/`
/// too, wildcards allowed) names something under `base` without leaving it.
fn source_exists(base: &Path, source: &str) -> bool {
    let mut dir = base.to_path_buf();
    let mut depth = 0usize;
    for component in Path::new(source.trim_start_matches('/')).components() {
        match component {
            Component::CurDir | Component::RootDir | Component::Prefix(_) => {}
            Component::ParentDir => {
                if depth == 0 {
                    return false;
                }
                depth -= 1;
                dir.pop();
            }
            Component::Normal(part) => {
                let part = part.to_string_lossy();
                if part.contains(['*', '?', '[']) {
                    // A wildcard: something in `dir` matches it (a `[` class is not checked).
                    let entries = std::fs::read_dir(&dir).into_iter().flatten().flatten();
                    let class = part.contains('[') && dir.is_dir();
                    return class || entries.into_iter().any(|e| glob_match(&part, &e.file_name().to_string_lossy()));
                }
                depth += 1;
                dir.push(part.as_ref());
            }
        }
    }
    dir.exists()
}

/// `*` and `?` wildcards.
fn glob_match(pattern: &str, name: &str) -> bool {
    let (p, n): (Vec<char>, Vec<char>) = (pattern.chars().collect(), name.chars().collect());
    fn go(p: &[char], n: &[char]) -> bool {
        match p.split_first() {
            None => n.is_empty(),
            Some(('*', rest)) => (0..=n.len()).any(|i| go(rest, &n[i..])),
            Some(('?', rest)) => !n.is_empty() && go(rest, &n[1..]),
            Some((c, rest)) => n.first() == Some(c) && go(rest, &n[1..]),
        }
    }
    go(&p, &n)
}

/// (context, why, guessed) for a Dockerfile in `dir` (relative; "" is the root).
fn choose_context(root: &Path, dir: &str, sources: &[String]) -> (String, String, bool) {
    if dir.is_empty() {
        return (".".into(), "the Dockerfile is at the repository root".into(), false);
    }
    let own = root.join(dir);
    let Some(missing) = sources.iter().find(|s| !source_exists(&own, s)) else {
        let why = if sources.is_empty() {
            "no COPY/ADD reads local files".to_string()
        } else {
            format!("every COPY/ADD source is in {dir}/")
        };
        return (dir.to_string(), why, false);
    };
    match sources.iter().find(|s| !source_exists(root, s)) {
        None => (".".into(), format!("COPY/ADD reads `{missing}` from the repository root"), false),
        Some(neither) => {
            let hint = match source_exists_from(root, dir, neither) {
                Some(at_root) => format!("; with context `.` write it as `{at_root}`"),
                None => String::new(),
            };
            (
                ".".into(),
                format!("guessed: COPY/ADD source `{neither}` is neither in {dir}/ nor at the root{hint}"),
                true,
            )
        }
    }
}

/// `source` resolved from `dir` (e.g. `../shared`), when that stays in the repository and exists.
fn source_exists_from(root: &Path, dir: &str, source: &str) -> Option<String> {
    let mut parts: Vec<String> = dir.split('/').map(str::to_string).collect();
    for component in Path::new(source.trim_start_matches('/')).components() {
        match component {
            Component::ParentDir => {
                parts.pop()?;
            }
            Component::Normal(p) => parts.push(p.to_string_lossy().into_owned()),
            _ => {}
        }
    }
    let path = parts.join("/");
    (!path.is_empty() && source_exists(root, &path)).then_some(path)
}

/// The file Docker's rules read as `dockerfile`'s .dockerignore in a context at
/// the root: `<dockerfile>.dockerignore`, else `.dockerignore`; None when neither exists.
pub fn effective_dockerignore(root: &Path, dockerfile: &str) -> Option<String> {
    [format!("{dockerfile}.dockerignore"), ".dockerignore".to_string()].into_iter().find(|p| root.join(p).is_file())
}

/// A `.dockerignore` for a Dockerfile built with the root as its context: it
/// keeps VERSION out, which relctl rewrites after every release (else the image
/// would be built again in every release).
pub fn version_dockerignore(dockerfile: &str) -> String {
    format!(
        "# Written by `relctl init`: {dockerfile} is built with the
# repository root as its context. relctl rewrites VERSION after every release,
# and a context that sends it would make this image's inputs change, and the
# image be built again, in every release. Remove the line if the build reads it.
VERSION
"
    )
}

/// Whether a .dockerignore's text keeps VERSION out (a `VERSION` or `/VERSION` line, or `*`).
pub fn ignores_version(dockerignore: &str) -> bool {
    let lines: Vec<&str> = dockerignore.lines().map(str::trim).filter(|l| !l.starts_with('#')).collect();
    let ignored = lines.iter().any(|l| matches!(*l, "VERSION" | "/VERSION" | "*" | "**"));
    ignored && !lines.iter().any(|l| matches!(*l, "!VERSION" | "!/VERSION"))
}

fn yaml_scalar(s: &str) -> String {
    if !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '/')) {
        s.to_string()
    } else {
        serde_json::to_string(s).expect("a string serializes")
    }
}

fn release_yaml(settings: &Settings, images: &[FoundImage]) -> String {
    let placeholders: Vec<FoundImage>;
    let (images, note) = if images.is_empty() {
        placeholders = DEFAULT_IMAGES
            .iter()
            .map(|name| FoundImage {
                name: name.to_string(),
                dockerfile: format!("docker/{name}/Dockerfile"),
                context: ".".into(),
                why: String::new(),
                guessed: true,
            })
            .collect();
        (
            placeholders.as_slice(),
            "# PLACEHOLDERS: relctl init found no Dockerfile in this repository, so the
# five images below are examples, and `relctl plan` fails until each one names
# a Dockerfile that exists. Edit them: one entry per image, `context:` its
# build context, `dockerfile:` when it is not <context>/Dockerfile.
",
        )
    } else {
        (images, "")
    };
    let width = images.iter().map(|i| i.name.len()).max().unwrap_or(0) + 1;
    let mut lines = String::new();
    for image in images {
        let key = format!("{}:", image.name);
        let mut value = format!("context: {}", yaml_scalar(&image.context));
        if let Some(dockerfile) = image.dockerfile_key() {
            value.push_str(&format!(", dockerfile: {}", yaml_scalar(dockerfile)));
        }
        lines.push_str(&format!("  {key:width$} {{ {value} }}\n"));
    }
    let Settings { registry, namespace, project } = settings;
    format!(
        "# yaml-language-server: $schema={SCHEMA_URL}
# relctl release config. A tag vX.Y.Z becomes one image per entry under
# `images`, pushed as REGISTRY/NAMESPACE/PROJECT-NAME:vX.Y.Z (and `latest` for
# the highest stable release); then VERSION is committed on the release branch.
registry: {registry}          # registry host[:port]
namespace: {namespace}          # Docker Hub user or organisation
project: {project}              # images are named PROJECT-NAME
git: {{ remote: origin, branch: main, tag_prefix: v }}
version_file: VERSION        # written by the first release; installers read the current version here
tags: [\"{{{{raw}}}}\", \"latest\"]  # also {{{{major}}}}, {{{{major}}}}.{{{{minor}}}}, {{{{version}}}}
build:
  retries: 3                 # retries of a failed build, with 1 s, 2 s, 4 s ... backoff
  parallelism: 4             # images built at once; lower it for CPU-heavy builds
  builder: auto              # BuildKit where the engine offers it, else classic
  cache: true
  network: none              # build network; `host` if builds download
  unchanged: retag           # an image whose inputs did not change gets the new tag by manifest copy
{note}images:                      # add depends_on: [parent] for an image built FROM ${{PARENT_IMAGE}}
{lines}"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> Settings {
        Settings { registry: "docker.io".into(), namespace: "acme".into(), project: "shop".into() }
    }

    fn write(root: &Path, path: &str, content: &str) {
        let p = root.join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, content).unwrap();
    }

    fn load(yaml: &str) -> crate::config::Config {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("release.yaml");
        std::fs::write(&path, yaml).unwrap();
        crate::config::load(&path).unwrap()
    }

    #[test]
    fn placeholder_release_yaml_is_a_valid_config_that_says_so() {
        let files = files(&settings(), &[]);
        let yaml = &files[0].1;
        assert!(yaml.starts_with(&format!("# yaml-language-server: $schema={SCHEMA_URL}\n")));
        assert!(yaml.contains("# PLACEHOLDERS: relctl init found no Dockerfile"), "{yaml}");
        let cfg = load(yaml);
        assert_eq!(cfg.images.len(), 5);
        assert_eq!(cfg.image("nginx").unwrap().dockerfile, "docker/nginx/Dockerfile");
        assert_eq!(cfg.image_repo(cfg.image("server").unwrap()), "docker.io/acme/shop-server");
        assert_eq!(
            files.iter().map(|(p, _)| p.display().to_string()).collect::<Vec<_>>(),
            ["release.yaml", WORKFLOW_PATH]
        );
    }

    #[test]
    fn found_images_become_entries_with_their_contexts() {
        let images = vec![
            FoundImage {
                name: "api".into(),
                dockerfile: "api/Dockerfile".into(),
                context: "api".into(),
                why: String::new(),
                guessed: false,
            },
            FoundImage {
                name: "tools".into(),
                dockerfile: "docker/tools/Dockerfile".into(),
                context: ".".into(),
                why: String::new(),
                guessed: false,
            },
            FoundImage {
                name: "web-prod".into(),
                dockerfile: "web dir/Dockerfile.prod".into(),
                context: "web dir".into(),
                why: String::new(),
                guessed: false,
            },
        ];
        let yaml = &files(&Settings { registry: "127.0.0.1:5055".into(), ..settings() }, &images)[0].1;
        assert!(!yaml.contains("PLACEHOLDERS"), "{yaml}");
        assert!(yaml.contains("  api:      { context: api }\n"), "{yaml}");
        let cfg = load(yaml);
        assert_eq!(cfg.registry, "127.0.0.1:5055");
        assert_eq!(cfg.image("api").unwrap().dockerfile, "api/Dockerfile");
        assert_eq!(cfg.image("tools").unwrap().dockerfile, "docker/tools/Dockerfile");
        assert_eq!(cfg.image("web-prod").unwrap().dockerfile, "web dir/Dockerfile.prod");
    }

    #[test]
    fn names_are_normalised_to_the_registry_grammar() {
        for (raw, name) in [
            ("api", Some("api")),
            ("My_App", Some("my_app")),
            ("web--ui", Some("web--ui")),
            ("a..b", Some("a-b")),
            ("a._b", Some("a-b")),
            ("a__b", Some("a__b")),
            ("a___b", Some("a-b")),
            ("Front End!", Some("front-end")),
            ("-_x_-", Some("x")),
            ("café", Some("caf")),
            ("", None),
            ("__", None),
        ] {
            assert_eq!(normalise_name(raw).as_deref(), name, "{raw:?}");
        }
    }

    proptest::proptest! {
        #[test]
        fn normalised_names_are_always_valid_path_components(s in "\\PC{0,24}") {
            if let Some(n) = normalise_name(&s) {
                proptest::prop_assert!(oci::is_path_component(&n), "{:?} -> {:?}", s, n);
            }
        }
    }

    #[test]
    fn dockerfiles_are_found_up_to_three_levels_skipping_hidden_and_vendored_dirs() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        assert!(find_dockerfiles(root).is_empty());
        for path in [
            "Dockerfile",
            "Dockerfile.worker",
            "Dockerfile.dockerignore",
            "api/Dockerfile",
            "api/Dockerfile.dockerignore",
            "api/Dockerfile.prod.dockerignore",
            "api/Dockerfile.bak",
            "docker/web/Dockerfile",
            "services/billing/api/Dockerfile",
            "services/billing/api/deep/Dockerfile",
            ".devcontainer/Dockerfile",
            "node_modules/x/Dockerfile",
            "target/Dockerfile",
            "vendor/lib/Dockerfile",
            "notes/Dockerfile.md/readme",
            "docs/MyDockerfile",
            "docs/dockerfile",
        ] {
            write(root, path, "FROM scratch\n");
        }
        assert_eq!(
            find_dockerfiles(root),
            [
                "Dockerfile",
                "Dockerfile.worker",
                "api/Dockerfile",
                "docker/web/Dockerfile",
                "services/billing/api/Dockerfile",
            ]
        );
    }

    #[test]
    fn images_are_named_after_their_directory_or_variant_and_clashes_are_qualified() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        for path in [
            "Dockerfile",
            "Dockerfile.Worker",
            "docker/Dockerfile.cron",
            "api/Dockerfile",
            "api/Dockerfile.prod",
            "docker/Web_UI/Dockerfile",
            "services/billing/Dockerfile",
            "legacy/billing/Dockerfile",
        ] {
            write(root, path, "FROM scratch\n");
        }
        let names: Vec<(String, String)> =
            find_images(root, "shop").into_iter().map(|i| (i.dockerfile, i.name)).collect();
        let expect = [
            ("Dockerfile", "shop"),
            ("Dockerfile.Worker", "worker"),
            ("api/Dockerfile", "api"),
            ("api/Dockerfile.prod", "api-prod"),
            ("docker/Dockerfile.cron", "cron"),
            ("docker/Web_UI/Dockerfile", "web_ui"),
            ("legacy/billing/Dockerfile", "legacy-billing"),
            ("services/billing/Dockerfile", "services-billing"),
        ];
        assert_eq!(names, expect.map(|(d, n)| (d.to_string(), n.to_string())));
    }

    #[test]
    fn copy_and_add_sources_are_read_from_every_form() {
        let dockerfile = r#"# syntax=docker/dockerfile:1
FROM golang AS build
COPY go.mod go.sum ./
COPY --chown=1000:1000 --chmod=644 cmd/ /src/cmd/
COPY --from=build /out/app /app
copy ["with space/x", "/y"]
ADD https://example.invalid/a.tgz /a.tgz
ADD --link vendor.tar \
    conf/*.toml \
    # a comment inside a continuation
    /etc/
COPY <<EOF /etc/motd
hello
EOF
COPY ${SRC} /src
RUN cp a b
"#;
        assert_eq!(copy_sources(dockerfile), ["go.mod", "go.sum", "cmd/", "with space/x", "vendor.tar", "conf/*.toml"]);
        assert_eq!(copy_sources("# escape=`\nFROM x\nCOPY a `\n  b /c\n"), ["a", "b"]);
    }

    #[test]
    fn the_context_is_the_dockerfile_dir_when_it_holds_the_sources_else_the_root() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        write(root, "api/Dockerfile", "FROM scratch\nCOPY main.sh conf/ /app/\nCOPY *.txt /\n");
        write(root, "api/main.sh", "");
        write(root, "api/conf/a", "");
        write(root, "api/notes.txt", "");
        write(root, "web/Dockerfile", "FROM scratch\nCMD [\"x\"]\n");
        write(root, "docker/tool/Dockerfile", "FROM scratch\nCOPY bin/busybox /bin/busybox\nCOPY tool/ /tool/\n");
        write(root, "bin/busybox", "");
        write(root, "tool/run.sh", "");
        write(root, "services/app/Dockerfile", "FROM scratch\nCOPY ../shared/lib /lib\n");
        write(root, "services/shared/lib/x", "");
        write(root, "odd/Dockerfile", "FROM scratch\nCOPY nowhere /x\n");
        write(root, "up/Dockerfile", "FROM scratch\nCOPY ../../../../etc/passwd /x\n");
        let images = find_images(root, "shop");
        let get = |name: &str| images.iter().find(|i| i.name == name).unwrap().clone();

        let api = get("api");
        assert_eq!((api.context.as_str(), api.dockerfile_key(), api.guessed), ("api", None, false));
        assert_eq!(api.why, "every COPY/ADD source is in api/");
        assert_eq!(get("web").context, "web");
        assert_eq!(get("web").why, "no COPY/ADD reads local files");

        let tool = get("tool");
        assert_eq!((tool.context.as_str(), tool.dockerfile_key()), (".", Some("docker/tool/Dockerfile")));
        assert_eq!(tool.why, "COPY/ADD reads `bin/busybox` from the repository root");
        assert!(!tool.guessed);

        let app = get("app");
        assert_eq!((app.context.as_str(), app.guessed), (".", true));
        assert!(app.why.contains("write it as `services/shared/lib`"), "{}", app.why);
        let odd = get("odd");
        assert_eq!((odd.context.as_str(), odd.guessed), (".", true));
        assert_eq!(odd.why, "guessed: COPY/ADD source `nowhere` is neither in odd/ nor at the root");
        assert!(get("up").guessed);
    }

    #[test]
    fn a_dockerignore_keeps_version_out_or_not() {
        assert!(ignores_version(&version_dockerignore("docker/a/Dockerfile")));
        assert!(ignores_version("*\n!bin\n"));
        assert!(ignores_version("/VERSION\n"));
        assert!(!ignores_version("node_modules\n# VERSION\n"));
        assert!(!ignores_version("*\n!VERSION\n"));
    }

    #[test]
    fn the_workflow_pins_every_action_by_full_sha_with_a_version_comment() {
        let uses: Vec<&str> = WORKFLOW.lines().filter_map(|l| l.trim().strip_prefix("- uses: ")).collect();
        assert_eq!(uses.len(), 2, "{WORKFLOW}");
        for line in &uses {
            let (action, comment) = line.split_once(" # ").unwrap_or_else(|| panic!("no version comment: {line}"));
            let (_, sha) = action.split_once('@').unwrap();
            assert!(sha.len() == 40 && sha.bytes().all(|b| b.is_ascii_hexdigit()), "{line}");
            assert!(comment.starts_with('v'), "{line}");
        }
        // The same checkout as this repository's own workflows.
        let ci = include_str!("../../.github/workflows/ci.yml");
        let checkout = ci.lines().find_map(|l| l.trim().strip_prefix("- uses: actions/checkout@")).unwrap();
        assert!(uses.contains(&format!("actions/checkout@{checkout}").as_str()), "{uses:?}");
        // relctl's own: the placeholder, named as such, for this version of relctl.
        let version = concat!("v", env!("CARGO_PKG_VERSION"));
        let relctl = format!("relctl/relctl@{ACTION_SHA_PLACEHOLDER} # {version} (placeholder SHA)");
        assert!(uses.contains(&relctl.as_str()), "{uses:?}");
        // The action finds its binary by its own checkout (version and commit): no `version:` input to forget.
        assert!(!WORKFLOW.contains("version:"), "{WORKFLOW}");
        assert!(!WORKFLOW.contains("@v1"), "{WORKFLOW}");
    }
}
