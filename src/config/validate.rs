//! Turns the raw YAML structs into a [`Config`]: names, paths, templates,
//! the `depends_on` graph (unknown names and cycles) and the image order.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::LazyLock;

use regex::Regex;

use super::raw::{RawConfig, RawImage};
use super::template::TagTemplate;
use super::{AlsoUpdate, BuildConfig, CommitConfig, Config, ConfigError, GitConfig, ImageConfig, ReconcileConfig};
use crate::version::ReleaseVersion;

static REGISTRY: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?(:[0-9]{1,5})?$").unwrap());
// The Distribution spec's path component grammar.
static COMPONENT: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"^[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*$").unwrap());
static BUILD_ARG: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"^[A-Za-z_][A-Za-z0-9_]*$").unwrap());

struct Ctx<'a> {
    text: &'a str,
    path: &'a Path,
}

impl Ctx<'_> {
    /// First line (1-based) where `needle` starts a key, so errors point near the cause.
    fn line_of(&self, needle: &str) -> Option<usize> {
        let key = format!("{needle}:");
        self.text
            .lines()
            .position(|l| {
                l.trim_start().starts_with(&key) || l.contains(&format!(" {key}")) || l.contains(&format!("{{{key}"))
            })
            .map(|i| i + 1)
    }

    fn invalid(
        &self,
        near: &str,
        field: impl Into<String>,
        problem: impl Into<String>,
        hint: impl Into<String>,
    ) -> ConfigError {
        ConfigError::Invalid {
            path: self.path.to_path_buf(),
            line: self.line_of(near),
            field: field.into(),
            problem: problem.into(),
            hint: hint.into(),
        }
    }
}

pub(super) fn validate(raw: RawConfig, text: &str, path: &Path) -> Result<Config, ConfigError> {
    let cx = Ctx { text, path };

    if !REGISTRY.is_match(&raw.registry) {
        return Err(cx.invalid(
            "registry",
            "registry",
            format!("`{}` is not a registry host[:port]", raw.registry),
            "write the host only, e.g. docker.io, ghcr.io or 127.0.0.1:5000 (no scheme, no path)",
        ));
    }
    if raw.namespace.split('/').any(|c| !COMPONENT.is_match(c)) {
        return Err(cx.invalid(
            "namespace",
            "namespace",
            format!("`{}` is not a valid repository namespace", raw.namespace),
            "use lowercase letters, digits and single separators (. _ -), e.g. yyhuni",
        ));
    }
    if !COMPONENT.is_match(&raw.project) {
        return Err(cx.invalid(
            "project",
            "project",
            format!("`{}` is not a valid repository name", raw.project),
            "use lowercase letters, digits and single separators (. _ -), e.g. xingrin",
        ));
    }
    let git = GitConfig {
        remote: non_empty(&cx, "remote", "git.remote", raw.git.remote.clone())?,
        branch: non_empty(&cx, "branch", "git.branch", raw.git.branch.clone())?,
        tag_prefix: raw.git.tag_prefix.clone(),
    };
    let version_file = rel_path(&cx, "version_file", "version_file", &raw.version_file)?;
    if version_file.is_empty() {
        return Err(cx.invalid("version_file", "version_file", "is empty", "name a file, e.g. VERSION"));
    }

    let mut tags = Vec::new();
    for t in &raw.tags {
        tags.push(TagTemplate::parse(t).map_err(|e| {
            cx.invalid("tags", "tags", e.to_string(),
                "templates may use {{raw}} {{version}} {{major}} {{minor}} {{patch}} and the characters A-Z a-z 0-9 _ . -")
        })?);
    }
    if !tags.iter().any(|t| t.scope() == super::TagScope::Version) {
        return Err(cx.invalid(
            "tags",
            "tags",
            "no template names the release itself",
            "include \"{{raw}}\" or \"{{version}}\" so every release gets its own immutable tag",
        ));
    }
    let mut seen = BTreeSet::new();
    for t in &tags {
        if !seen.insert(t.source()) {
            return Err(cx.invalid(
                "tags",
                "tags",
                format!("`{}` is listed twice", t.source()),
                "list each template once",
            ));
        }
    }

    if raw.build.parallelism == 0 {
        return Err(cx.invalid(
            "parallelism",
            "build.parallelism",
            "must be at least 1",
            "set build.parallelism: 1 to build one image at a time",
        ));
    }
    if raw.build.network.trim().is_empty() {
        return Err(cx.invalid(
            "network",
            "build.network",
            "is empty",
            "use none (no network during builds), host, or a network name",
        ));
    }
    let build = BuildConfig {
        retries: raw.build.retries,
        parallelism: raw.build.parallelism,
        cache: raw.build.cache,
        network: raw.build.network.clone(),
        retag_unchanged: raw.build.unchanged == super::raw::RawUnchanged::Retag,
        stage: raw.build.stage,
        builder: match raw.build.builder {
            super::raw::RawBuilder::Auto => super::Builder::Auto,
            super::raw::RawBuilder::Buildkit => super::Builder::BuildKit,
            super::raw::RawBuilder::Classic => super::Builder::Classic,
        },
    };

    if raw.images.is_empty() {
        return Err(cx.invalid(
            "images",
            "images",
            "no images are configured",
            "add at least one image, e.g. images: { server: { context: ., dockerfile: docker/server/Dockerfile } }",
        ));
    }
    let mut images = BTreeMap::new();
    for (name, img) in &raw.images {
        images.insert(name.clone(), image(&cx, &raw, name, img)?);
    }
    let images = order(&cx, images)?;

    let mut also_update = Vec::new();
    for (i, a) in raw.also_update.iter().enumerate() {
        let field = format!("also_update[{i}]");
        let regex = Regex::new(&a.regex).map_err(|e| {
            cx.invalid(
                "regex",
                format!("{field}.regex"),
                format!("`{}` is not a valid regex: {e}", a.regex),
                "write a Rust regex with one capture group around the version",
            )
        })?;
        if regex.captures_len() < 2 {
            return Err(cx.invalid(
                "regex",
                format!("{field}.regex"),
                format!("`{}` has no capture group", a.regex),
                "put the version in a group, e.g. 'current version: (v\\S+)'",
            ));
        }
        let path = rel_path(&cx, "path", &format!("{field}.path"), &a.path)?;
        also_update.push(AlsoUpdate { path, regex });
    }

    if raw.commit.message.trim().is_empty() {
        return Err(cx.invalid("message", "commit.message", "is empty", "e.g. chore(release): {{raw}} [skip ci]"));
    }
    let commit = CommitConfig {
        message: raw.commit.message,
        author_name: non_empty(&cx, "author_name", "commit.author_name", raw.commit.author_name)?,
        author_email: non_empty(&cx, "author_email", "commit.author_email", raw.commit.author_email)?,
        via: match raw.commit.via {
            super::raw::RawVia::Git => super::CommitVia::Git,
            super::raw::RawVia::GithubApi => super::CommitVia::GithubApi,
        },
    };

    let since = match &raw.reconcile.since {
        Some(tag) => Some(ReleaseVersion::parse(tag, &git.tag_prefix).map_err(|e| {
            cx.invalid(
                "since",
                "reconcile.since",
                e.to_string(),
                format!("name a release tag, e.g. {}1.0.0", git.tag_prefix),
            )
        })?),
        None => None,
    };
    if raw.reconcile.max_tags == 0 {
        return Err(cx.invalid(
            "max_tags",
            "reconcile.max_tags",
            "must be at least 1",
            "reconcile keeps the newest max_tags releases converged; 10 is the default",
        ));
    }
    let reconcile = ReconcileConfig { since, max_tags: raw.reconcile.max_tags };
    let timeouts = timeouts(&cx, &raw.timeouts)?;

    Ok(Config {
        source: path.to_path_buf(),
        registry: raw.registry,
        git,
        version_file,
        tags,
        build,
        images,
        also_update,
        commit,
        reconcile,
        github_release: raw.github.release,
        timeouts,
    })
}

fn timeouts(cx: &Ctx, raw: &super::raw::RawTimeouts) -> Result<super::Timeouts, ConfigError> {
    let one = |key: &str, value: &str| {
        super::parse_duration(value).filter(|d| (1..=24 * 3600).contains(&d.as_secs())).ok_or_else(|| {
            cx.invalid(
                key,
                format!("timeouts.{key}"),
                format!("`{value}` is not a duration between 1s and 24h"),
                "write e.g. 90s, 10m or 1h",
            )
        })
    };
    Ok(super::Timeouts {
        build_stall: one("build_stall", &raw.build_stall)?,
        push_stall: one("push_stall", &raw.push_stall)?,
        request: one("request", &raw.request)?,
        git: one("git", &raw.git)?,
    })
}

fn non_empty(cx: &Ctx, near: &str, field: &str, value: String) -> Result<String, ConfigError> {
    if value.trim().is_empty() {
        return Err(cx.invalid(
            near,
            field,
            "is empty",
            format!("give {field} a value or remove it to use the default"),
        ));
    }
    Ok(value)
}

/// A repository-relative path: no absolute paths, no `..`; `.` and `./` mean the root.
fn rel_path(cx: &Ctx, near: &str, field: &str, p: &str) -> Result<String, ConfigError> {
    let trimmed = p.trim_end_matches('/');
    if trimmed.starts_with('/') || trimmed.split('/').any(|c| c == "..") {
        return Err(cx.invalid(
            near,
            field,
            format!("`{p}` leaves the repository"),
            "paths are relative to the repository root and may not start with / or contain ..",
        ));
    }
    let parts: Vec<&str> = trimmed.split('/').filter(|c| !c.is_empty() && *c != ".").collect();
    Ok(parts.join("/"))
}

fn image(cx: &Ctx, raw: &RawConfig, name: &str, img: &RawImage) -> Result<ImageConfig, ConfigError> {
    let field = format!("images.{name}");
    if !COMPONENT.is_match(name) {
        return Err(cx.invalid(
            name,
            &field,
            format!("`{name}` is not a valid image name"),
            "image names become repository names: lowercase letters, digits and single separators (. _ -)",
        ));
    }
    let repository = match &img.repository {
        Some(r) => {
            if r.split('/').any(|c| !COMPONENT.is_match(c)) {
                return Err(cx.invalid(
                    "repository",
                    format!("{field}.repository"),
                    format!("`{r}` is not a valid repository"),
                    "write the path under the registry, e.g. myorg/custom-server",
                ));
            }
            r.clone()
        }
        None => format!("{}/{}-{name}", raw.namespace, raw.project),
    };
    let context = rel_path(cx, "context", &format!("{field}.context"), &img.context)?;
    let dockerfile = match &img.dockerfile {
        Some(d) => rel_path(cx, "dockerfile", &format!("{field}.dockerfile"), d)?,
        None if context.is_empty() => "Dockerfile".to_string(),
        None => format!("{context}/Dockerfile"),
    };
    for key in img.build_args.keys() {
        if !BUILD_ARG.is_match(key) {
            return Err(cx.invalid(
                name,
                format!("{field}.build_args"),
                format!("`{key}` is not a valid build argument name"),
                "use letters, digits and _ (not starting with a digit)",
            ));
        }
    }
    let mut deps: Vec<String> = img.depends_on.clone();
    deps.sort();
    deps.dedup();
    if let Some(unknown) = deps.iter().find(|d| !raw.images.contains_key(*d)) {
        let known: Vec<&str> = raw.images.keys().map(String::as_str).collect();
        return Err(cx.invalid(
            name,
            format!("{field}.depends_on"),
            format!("`{unknown}` is not an image in this file"),
            format!("depend on one of: {}", known.join(", ")),
        ));
    }
    if deps.iter().any(|d| d == name) {
        return Err(cx.invalid(
            name,
            format!("{field}.depends_on"),
            format!("`{name}` depends on itself"),
            "remove it from its own depends_on",
        ));
    }
    Ok(ImageConfig {
        name: name.to_string(),
        repository,
        context,
        dockerfile,
        depends_on: deps,
        build_args: img.build_args.clone(),
    })
}

/// Topological order (Kahn), ties broken by name so the order is stable.
fn order(cx: &Ctx, mut images: BTreeMap<String, ImageConfig>) -> Result<Vec<ImageConfig>, ConfigError> {
    let mut done: BTreeSet<String> = BTreeSet::new();
    let mut out = Vec::new();
    while !images.is_empty() {
        let ready: Vec<String> =
            images.values().filter(|i| i.depends_on.iter().all(|d| done.contains(d))).map(|i| i.name.clone()).collect();
        if ready.is_empty() {
            let cycle = find_cycle(&images);
            return Err(cx.invalid(
                &cycle[0],
                "depends_on",
                format!("dependency cycle: {}", cycle.join(" -> ")),
                "images are built parents first; remove one of these depends_on entries",
            ));
        }
        for name in ready {
            done.insert(name.clone());
            out.push(images.remove(&name).expect("ready image is present"));
        }
    }
    Ok(out)
}

/// Walks depends_on edges among the unordered images until a name repeats.
fn find_cycle(images: &BTreeMap<String, ImageConfig>) -> Vec<String> {
    let start = images.keys().next().expect("non-empty").clone();
    let mut path = vec![start];
    loop {
        let last = path.last().expect("non-empty");
        let next = images[last]
            .depends_on
            .iter()
            .find(|d| images.contains_key(*d))
            .expect("an image left after ordering depends on another left image")
            .clone();
        if let Some(pos) = path.iter().position(|p| *p == next) {
            let mut cycle = path[pos..].to_vec();
            cycle.push(next);
            return cycle;
        }
        path.push(next);
    }
}
