//! Turns the raw YAML structs into a [`Config`]: names, paths, templates,
//! the `depends_on` graph (unknown names and cycles) and the image order.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::LazyLock;

use regex::Regex;

use super::raw::{RawConfig, RawImage};
use super::template::{REPRESENTATIVE_VERSIONS, TagTemplate};
use super::{AlsoUpdate, BuildConfig, CommitConfig, Config, ConfigError, GitConfig, ImageConfig, ReconcileConfig};
use super::{MAX_PARALLELISM, MAX_RECONCILED_TAGS, MAX_RETRIES, oci};
use crate::version::ReleaseVersion;

static BUILD_ARG: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"^[A-Za-z_][A-Za-z0-9_]*$").unwrap());

pub(super) struct Ctx<'a> {
    text: &'a str,
    path: &'a Path,
}

/// How many times `key:` starts a key on `line` (at its start, or after a space, `{` or `,`).
fn keys_on(line: &str, key: &str) -> usize {
    let key = format!("{key}:");
    line.match_indices(&key)
        .filter(|(at, _)| line[..*at].chars().next_back().is_none_or(|c| matches!(c, ' ' | '{' | ',')))
        .count()
}

impl Ctx<'_> {
    /// First line (1-based) where `needle` starts a key, so errors point near the cause.
    pub(super) fn line_of(&self, needle: &str) -> Option<usize> {
        let key = format!("{needle}:");
        self.text
            .lines()
            .position(|l| {
                l.trim_start().starts_with(&key) || l.contains(&format!(" {key}")) || l.contains(&format!("{{{key}"))
            })
            .map(|i| i + 1)
    }

    /// The line, from the line of key `near` on, that holds `value` for the
    /// `nth` time (0-based; the line of `near` when none does).
    pub(super) fn line_of_value(&self, near: &str, value: &str, nth: usize) -> Option<usize> {
        let start = self.line_of(near).unwrap_or(1);
        let found = self.text.lines().enumerate().skip(start - 1).filter(|(_, l)| l.contains(value)).nth(nth);
        Some(found.map_or(start, |(i, _)| i + 1))
    }

    /// The line of `key` in entry `index` of the list under `list` (whose entries
    /// each have a `url` key): the entry's `url` line, or the first `key` after it.
    pub(super) fn line_in_list(&self, list: &str, key: &str, index: usize) -> Option<usize> {
        let start = self.line_of(list)?;
        let lines: Vec<&str> = self.text.lines().collect();
        // The line where the `n`-th (0-based) `url:` from the list on is, if any.
        let nth_url = |n: usize| {
            let mut seen = 0;
            for (i, l) in lines.iter().enumerate().skip(start - 1) {
                seen += keys_on(l, "url");
                if seen > n {
                    return Some(i);
                }
            }
            None
        };
        let Some(entry) = nth_url(index) else { return Some(start) };
        let end = nth_url(index + 1).unwrap_or(lines.len().saturating_sub(1));
        let found = (entry..=end).find(|i| lines.get(*i).is_some_and(|l| keys_on(l, key) > 0));
        Some(found.unwrap_or(entry) + 1)
    }

    pub(super) fn invalid(
        &self,
        near: &str,
        field: impl Into<String>,
        problem: impl Into<String>,
        hint: impl Into<String>,
    ) -> ConfigError {
        self.invalid_at(self.line_of(near), field, problem, hint)
    }

    /// [`Ctx::invalid`] at a line found otherwise.
    pub(super) fn invalid_at(
        &self,
        line: Option<usize>,
        field: impl Into<String>,
        problem: impl Into<String>,
        hint: impl Into<String>,
    ) -> ConfigError {
        ConfigError::Invalid {
            path: self.path.to_path_buf(),
            line,
            field: field.into(),
            problem: problem.into(),
            hint: hint.into(),
        }
    }
}

pub(super) fn validate(raw: RawConfig, text: &str, path: &Path) -> Result<Config, ConfigError> {
    let cx = Ctx { text, path };
    names(&cx, &raw)?;
    let git = GitConfig {
        remote: non_empty(&cx, "remote", "git.remote", raw.git.remote.clone())?,
        branch: non_empty(&cx, "branch", "git.branch", raw.git.branch.clone())?,
        tag_prefix: raw.git.tag_prefix.clone(),
    };
    let version_file = rewritten_path(&cx, "version_file", "version_file", &raw.version_file, "e.g. VERSION")?;
    let tags = tags(&cx, &raw.tags, &git.tag_prefix)?;
    let build = build(&cx, &raw.build)?;
    let platforms = match &raw.platforms {
        Some(list) => super::platform::platforms(&cx, "platforms", "platforms", list)?,
        None => Vec::new(),
    };
    let images = images(&cx, &raw, &platforms)?;
    let fanout = super::platform::fanout(&cx, &raw.fanout)?;
    let also_update = also_update(&cx, &raw.also_update)?;
    let reconcile = reconcile(&cx, &raw.reconcile, &git.tag_prefix)?;
    let timeouts = timeouts(&cx, &raw.timeouts)?;
    let dockerhub = dockerhub(&cx, &raw)?;
    let sign = sign(&cx, &raw, path)?;
    let commit = commit(&cx, raw.commit)?;
    let notify = super::notify::notify(&cx, raw.notify)?;
    Ok(Config {
        platforms,
        fanout,
        sign,
        dockerhub,
        source: path.to_path_buf(),
        project: format!("{}/{}", raw.namespace, raw.project),
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
        notify,
    })
}

/// `dockerhub`: only for docker.io, with something to write, a short
/// description within Docker Hub's limit and a readme path in the repository.
fn dockerhub(cx: &Ctx, raw: &RawConfig) -> Result<Option<super::DockerHubPages>, ConfigError> {
    let Some(hub) = &raw.dockerhub else { return Ok(None) };
    if !oci::is_docker_hub(&raw.registry) {
        return Err(cx.invalid(
            "dockerhub",
            "dockerhub",
            format!("the registry is {}, not Docker Hub", raw.registry),
            "remove the dockerhub section, or set registry: docker.io",
        ));
    }
    if hub.description.is_none() && hub.readme.is_none() {
        return Err(cx.invalid(
            "dockerhub",
            "dockerhub",
            "sets neither description nor readme",
            "set description: \"...\", readme: README.md or both",
        ));
    }
    if let Some(d) = hub.description.as_deref().filter(|d| d.chars().count() > super::MAX_SHORT_DESCRIPTION) {
        return Err(cx.invalid(
            "description",
            "dockerhub.description",
            format!("is {} characters long", d.chars().count()),
            format!("Docker Hub takes at most {} characters; put the rest in the readme", super::MAX_SHORT_DESCRIPTION),
        ));
    }
    let readme = match &hub.readme {
        Some(r) => Some(rewritten_path(cx, "readme", "dockerhub.readme", r, "e.g. README.md")?),
        None => None,
    };
    Ok(Some(super::DockerHubPages { description: hub.description.clone(), readme }))
}

/// `sign`: a key source, a password variable, and staging on, so that every
/// signature is in the registry before the version tag it covers.
fn sign(cx: &Ctx, raw: &RawConfig, path: &Path) -> Result<Option<super::SignConfig>, ConfigError> {
    let Some(s) = &raw.sign else { return Ok(None) };
    let key = match s.key.strip_prefix("env:") {
        Some(name) if super::notify::is_env_name(name) => super::KeySource::Env(name.to_string()),
        Some(name) => {
            return Err(cx.invalid(
                "key",
                "sign.key",
                format!("`{name}` is not an environment variable name"),
                "write env:NAME, e.g. env:COSIGN_PRIVATE_KEY",
            ));
        }
        None if s.key.trim().is_empty() => {
            return Err(cx.invalid(
                "key",
                "sign.key",
                "is empty",
                "name the cosign private key file, e.g. cosign.key, or env:NAME",
            ));
        }
        None => {
            let file = Path::new(&s.key);
            let root = path.parent().unwrap_or(Path::new("."));
            super::KeySource::File(if file.is_absolute() { file.to_path_buf() } else { root.join(file) })
        }
    };
    if !super::notify::is_env_name(&s.password_env) {
        return Err(cx.invalid(
            "password_env",
            "sign.password_env",
            format!("`{}` is not an environment variable name", s.password_env),
            "e.g. COSIGN_PASSWORD",
        ));
    }
    if !raw.build.stage {
        return Err(cx.invalid(
            "sign",
            "sign",
            "needs build.stage: true",
            "relctl signs each image under its staging tag before any version tag exists; remove build.stage: false",
        ));
    }
    Ok(Some(super::SignConfig { key, password_env: s.password_env.clone(), provenance: s.provenance }))
}

/// `registry`, `namespace` and `project`: the parts of every image's name.
fn names(cx: &Ctx, raw: &RawConfig) -> Result<(), ConfigError> {
    if !oci::is_registry_host(&raw.registry) {
        return Err(cx.invalid(
            "registry",
            "registry",
            format!("`{}` is not a registry host[:port]", raw.registry),
            "write the host only, e.g. docker.io, ghcr.io, 127.0.0.1:5000 or [::1]:5000 (no scheme, no path, a port from 1 to 65535)",
        ));
    }
    if !oci::is_repository(&raw.namespace) {
        return Err(cx.invalid(
            "namespace",
            "namespace",
            format!("`{}` is not a valid repository namespace", raw.namespace),
            "use lowercase letters, digits and single separators (. _ -), e.g. yyhuni",
        ));
    }
    if !oci::is_path_component(&raw.project) {
        return Err(cx.invalid(
            "project",
            "project",
            format!("`{}` is not a valid repository name", raw.project),
            "use lowercase letters, digits and single separators (. _ -), e.g. xingrin",
        ));
    }
    Ok(())
}

/// `tags`: valid templates that name every typical release within the spec, one of them immutable.
fn tags(cx: &Ctx, raw: &[String], tag_prefix: &str) -> Result<Vec<TagTemplate>, ConfigError> {
    let mut tags = Vec::new();
    for t in raw {
        tags.push(TagTemplate::parse(t).map_err(|e| {
            cx.invalid("tags", "tags", e.to_string(),
                "templates may use {{raw}} {{version}} {{major}} {{minor}} {{patch}} and the characters A-Z a-z 0-9 _ . -, at most 128 in all")
        })?);
    }
    // Every template names typical releases within the spec; a longer release
    // tag is refused when it is released (`Config::image_tag_problem`).
    for version in REPRESENTATIVE_VERSIONS {
        let release = format!("{}{version}", tag_prefix);
        // Always Ok: the representative versions are SemVer (a unit test checks).
        let Ok(v) = ReleaseVersion::parse(&release, tag_prefix) else { continue };
        if let Some(problem) = super::template::image_tag_problem(&tags, &v) {
            let (near, hint) = match &problem {
                super::RenderError::TooLong { .. } => {
                    ("tags", "shorten the template's fixed text: image tags are at most 128 characters".to_string())
                }
                super::RenderError::Invalid { .. } => (
                    "tag_prefix",
                    format!(
                        "{{{{raw}}}} includes tag_prefix `{}`: use {{{{version}}}} instead, or a prefix of A-Z a-z 0-9 _ . - that starts with a letter or digit",
                        tag_prefix
                    ),
                ),
            };
            return Err(cx.invalid(near, "tags", problem.to_string(), hint));
        }
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

    Ok(tags)
}

/// `build`: bounded numbers and the builder.
fn build(cx: &Ctx, raw: &super::raw::RawBuild) -> Result<BuildConfig, ConfigError> {
    if raw.parallelism == 0 {
        return Err(cx.invalid(
            "parallelism",
            "build.parallelism",
            "must be at least 1",
            "set build.parallelism: 1 to build one image at a time",
        ));
    }
    if raw.parallelism > MAX_PARALLELISM {
        return Err(cx.invalid(
            "parallelism",
            "build.parallelism",
            format!("{} is more than {MAX_PARALLELISM}", raw.parallelism),
            format!("builds share one engine: set build.parallelism between 1 and {MAX_PARALLELISM}"),
        ));
    }
    if raw.retries > MAX_RETRIES {
        return Err(cx.invalid(
            "retries",
            "build.retries",
            format!("{} is more than {MAX_RETRIES}", raw.retries),
            format!("set build.retries between 0 and {MAX_RETRIES}; retries back off exponentially, so more only delays a real failure"),
        ));
    }
    if raw.network.trim().is_empty() {
        return Err(cx.invalid(
            "network",
            "build.network",
            "is empty",
            "use none (no network during builds), host, or a network name",
        ));
    }
    let cache_from = cache_from(cx, &raw.cache_from)?;
    Ok(BuildConfig {
        cache_from,
        retries: raw.retries,
        parallelism: raw.parallelism,
        cache: raw.cache,
        network: raw.network.clone(),
        retag_unchanged: raw.unchanged == super::raw::RawUnchanged::Retag,
        stage: raw.stage,
        builder: match raw.builder {
            super::raw::RawBuilder::Auto => super::Builder::Auto,
            super::raw::RawBuilder::Buildkit => super::Builder::BuildKit,
            super::raw::RawBuilder::Classic => super::Builder::Classic,
        },
        inputs: match raw.inputs {
            super::raw::RawInputs::Dockerfile => super::Inputs::Dockerfile,
            super::raw::RawInputs::Context => super::Inputs::Context,
        },
    })
}

/// `build.cache_from`: `previous`, `none`, or a list of references in which
/// `previous` may appear.
fn cache_from(cx: &Ctx, raw: &super::raw::RawCacheFrom) -> Result<super::CacheFrom, ConfigError> {
    use super::raw::RawCacheFrom;
    const HINT: &str = "use previous (the image's previous release, the default), none, or a list of image references such as [previous, registry.example.com/org/app:buildcache]";
    let mut out = super::CacheFrom::default();
    match raw {
        RawCacheFrom::Keyword(k) if k == "previous" => out.previous = true,
        RawCacheFrom::Keyword(k) if k == "none" => {}
        RawCacheFrom::Keyword(k) => {
            return Err(cx.invalid("cache_from", "build.cache_from", format!("`{k}` is not previous or none"), HINT));
        }
        RawCacheFrom::List(refs) => {
            for r in refs {
                if r == "previous" {
                    out.previous = true;
                } else if !super::oci::is_reference(r) {
                    return Err(cx.invalid(
                        "cache_from",
                        "build.cache_from",
                        format!("`{r}` is not an image reference ([host[:port]/]repository[:tag])"),
                        HINT,
                    ));
                } else if !out.refs.contains(r) {
                    out.refs.push(r.clone());
                }
            }
        }
    }
    Ok(out)
}

/// `images`: each image, then the `depends_on` graph in dependency order.
fn images(cx: &Ctx, raw: &RawConfig, platforms: &[String]) -> Result<Vec<ImageConfig>, ConfigError> {
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
        images.insert(name.clone(), image(cx, raw, name, img, platforms)?);
    }
    order(cx, images)
}

/// `also_update`: a regex with a capture group and a file to rewrite, each.
fn also_update(cx: &Ctx, raw: &[super::raw::RawAlsoUpdate]) -> Result<Vec<AlsoUpdate>, ConfigError> {
    let mut also_update = Vec::new();
    for (i, a) in raw.iter().enumerate() {
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
        let path = rewritten_path(cx, "path", &format!("{field}.path"), &a.path, "e.g. README.md")?;
        also_update.push(AlsoUpdate { path, regex });
    }

    Ok(also_update)
}

/// `commit`: the VERSION commit's message, author and route.
fn commit(cx: &Ctx, raw: super::raw::RawCommit) -> Result<CommitConfig, ConfigError> {
    if raw.message.trim().is_empty() {
        return Err(cx.invalid("message", "commit.message", "is empty", "e.g. chore(release): {{raw}} [skip ci]"));
    }
    Ok(CommitConfig {
        message: raw.message,
        author_name: non_empty(cx, "author_name", "commit.author_name", raw.author_name)?,
        author_email: non_empty(cx, "author_email", "commit.author_email", raw.author_email)?,
        via: match raw.via {
            super::raw::RawVia::Git => super::CommitVia::Git,
            super::raw::RawVia::GithubApi => super::CommitVia::GithubApi,
        },
    })
}

/// `reconcile`: which tags the controller keeps converged.
fn reconcile(cx: &Ctx, raw: &super::raw::RawReconcile, tag_prefix: &str) -> Result<ReconcileConfig, ConfigError> {
    let since = match &raw.since {
        Some(tag) => Some(ReleaseVersion::parse(tag, tag_prefix).map_err(|e| {
            cx.invalid(
                "since",
                "reconcile.since",
                e.to_string(),
                format!("name a release tag, e.g. {}1.0.0", tag_prefix),
            )
        })?),
        None => None,
    };
    if raw.max_tags == 0 {
        return Err(cx.invalid(
            "max_tags",
            "reconcile.max_tags",
            "must be at least 1",
            "reconcile keeps the newest max_tags releases converged; 10 is the default",
        ));
    }
    if raw.max_tags > MAX_RECONCILED_TAGS {
        return Err(cx.invalid(
            "max_tags",
            "reconcile.max_tags",
            format!("{} is more than {MAX_RECONCILED_TAGS}", raw.max_tags),
            format!("set reconcile.max_tags between 1 and {MAX_RECONCILED_TAGS}, or use reconcile.since to skip old releases"),
        ));
    }
    Ok(ReconcileConfig { since, max_tags: raw.max_tags })
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

/// A file the VERSION commit writes: a [`rel_path`] that names a file outside `.git`.
fn rewritten_path(cx: &Ctx, near: &str, field: &str, p: &str, example: &str) -> Result<String, ConfigError> {
    let path = rel_path(cx, near, field, p)?;
    if path.is_empty() {
        return Err(cx.invalid(near, field, format!("`{p}` names no file"), format!("name a file, {example}")));
    }
    // Case-insensitive, as git itself refuses `.GIT` on case-insensitive file systems.
    if path.split('/').any(|c| c.eq_ignore_ascii_case(".git")) {
        return Err(cx.invalid(
            near,
            field,
            format!("`{p}` is inside .git"),
            format!("relctl commits this file, and git keeps its own data in .git: name a tracked file, {example}"),
        ));
    }
    Ok(path)
}

fn image(
    cx: &Ctx,
    raw: &RawConfig,
    name: &str,
    img: &RawImage,
    platforms: &[String],
) -> Result<ImageConfig, ConfigError> {
    let field = format!("images.{name}");
    if !oci::is_path_component(name) {
        return Err(cx.invalid(
            name,
            &field,
            format!("`{name}` is not a valid image name"),
            "image names become repository names: lowercase letters, digits and single separators (. _ -)",
        ));
    }
    let repository = match &img.repository {
        Some(r) => {
            if !oci::is_repository(r) {
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
    if !oci::name_fits(&raw.registry, &repository) {
        let (near, which) = if img.repository.is_some() {
            ("repository", format!("{field}.repository"))
        } else {
            (name, field.clone())
        };
        return Err(cx.invalid(
            near,
            which,
            format!(
                "`{}/{repository}` has {} characters; image names are at most {}",
                raw.registry,
                raw.registry.len() + 1 + repository.len(),
                oci::MAX_NAME_LEN
            ),
            "shorten the registry/repository name (namespace, project, image name or repository)",
        ));
    }
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
    let platforms = match &img.platforms {
        Some(list) => super::platform::platforms(cx, &format!("{field}.platforms"), name, list)?,
        None => platforms.to_vec(),
    };
    Ok(ImageConfig {
        platforms,
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
