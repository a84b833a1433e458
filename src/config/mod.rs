//! release.yaml: loading (`load`), the validated configuration every other
//! module reads (`Config`), and errors that name the file, line and fix.

#[cfg(test)]
pub(crate) mod corpus;
mod notify;
pub mod oci;
mod platform;
mod raw;
pub mod template;
mod validate;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use notify::{NotifyConfig, NotifyEvent, NotifyFormat, NotifyUrl, url_problem};
pub use platform::{Fanout, platform_name, platform_problem};
pub use template::{RenderError, TagScope, TagTemplate, image_tag_problem};

/// Most retries of a failed build or push (`build.retries`); more only delays a real failure.
pub const MAX_RETRIES: u32 = 10;
/// Most images built at once (`build.parallelism`).
pub const MAX_PARALLELISM: usize = 64;
/// Most release tags `relctl reconcile` keeps converged (`reconcile.max_tags`).
pub const MAX_RECONCILED_TAGS: usize = 10_000;

/// The validated configuration. Built only by [`load`] / [`parse`].
#[derive(Debug, Clone)]
pub struct Config {
    pub source: PathBuf,
    /// `namespace/project`, as notifications and the dashboard name the project.
    pub project: String,
    /// Registry host[:port] as written, e.g. `docker.io` or `127.0.0.1:5000`.
    pub registry: String,
    pub git: GitConfig,
    pub version_file: String,
    pub tags: Vec<TagTemplate>,
    pub build: BuildConfig,
    /// In dependency order: every image comes after the images it depends on.
    pub images: Vec<ImageConfig>,
    pub also_update: Vec<AlsoUpdate>,
    pub commit: CommitConfig,
    pub reconcile: ReconcileConfig,
    /// `github: { release: true }` (default): create or update the GitHub
    /// Release of each released tag when GITHUB_TOKEN is set.
    pub github_release: bool,
    pub timeouts: Timeouts,
    /// `notify:`: the webhooks told about releases.
    pub notify: Vec<NotifyConfig>,
    /// Docker Hub repository pages (`dockerhub:`), on docker.io only.
    pub dockerhub: Option<DockerHubPages>,
    /// cosign signatures of every published image (`sign:`).
    pub sign: Option<SignConfig>,
    /// `platforms:` as written; empty builds for the engine's own platform.
    pub platforms: Vec<String>,
    /// `fanout.runners`: the runner of each platform's build job.
    pub fanout: Fanout,
}

/// Where the signing key is and what is signed (`sign:`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignConfig {
    pub key: KeySource,
    /// The environment variable with the key's password.
    pub password_env: String,
    /// Also a signed SLSA provenance attestation per image.
    pub provenance: bool,
}

/// A signing key's PEM text: a file, or an environment variable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    /// Relative to the repository root (the config file's directory) unless absolute.
    File(PathBuf),
    Env(String),
}

/// What `dockerhub:` keeps up to date on each image's Docker Hub repository.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DockerHubPages {
    /// The short description, at most [`MAX_SHORT_DESCRIPTION`] characters.
    pub description: Option<String>,
    /// The file whose content at the released commit is the full description.
    pub readme: Option<String>,
}

/// Docker Hub's limit on a repository's short description.
pub const MAX_SHORT_DESCRIPTION: usize = 100;

/// When a silent operation counts as stuck (`timeouts:`); each is between 1 s and 24 h.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// A build that reports nothing for this long has stalled.
    pub build_stall: Duration,
    /// A push that moves no byte for this long has stalled.
    pub push_stall: Duration,
    /// One registry request, from connect to the end of its body.
    pub request: Duration,
    /// A git fetch or push that moves no data for this long has stalled.
    pub git: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Self {
            build_stall: Duration::from_secs(600),
            push_stall: Duration::from_secs(120),
            request: Duration::from_secs(60),
            git: Duration::from_secs(120),
        }
    }
}

/// `30s`, `5m`, `1h`, or plain seconds; `None` for anything else (or an overflow).
pub fn parse_duration(s: &str) -> Option<Duration> {
    let s = s.trim();
    let (num, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: u64 = num.parse().ok()?;
    let per = match unit {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        _ => return None,
    };
    n.checked_mul(per).map(Duration::from_secs)
}

/// Which release tags `relctl reconcile` keeps converged.
#[derive(Debug, Clone)]
pub struct ReconcileConfig {
    /// Tags older than this version are left alone.
    pub since: Option<crate::version::ReleaseVersion>,
    /// At most this many of the newest semver tags.
    pub max_tags: usize,
}

#[derive(Debug, Clone)]
pub struct GitConfig {
    pub remote: String,
    pub branch: String,
    pub tag_prefix: String,
}

#[derive(Debug, Clone)]
pub struct BuildConfig {
    pub retries: u32,
    pub parallelism: usize,
    pub cache: bool,
    pub network: String,
    /// `unchanged: retag` (default): an image whose input key equals the previous
    /// release's is retagged by manifest copy instead of rebuilt.
    pub retag_unchanged: bool,
    /// `stage: true` (default): each image is pushed under its staging tag as
    /// soon as it is built, while the others still build; phase 2 then only
    /// copies manifests. `false`: images are uploaded in phase 2.
    pub stage: bool,
    pub builder: Builder,
    /// What an image's input key covers (`build.inputs`).
    pub inputs: Inputs,
    /// Where builds take their layer cache from (`build.cache_from`).
    pub cache_from: CacheFrom,
}

/// Layer cache sources of a build (`build.cache_from`), read only: images
/// built with BuildKit carry their cache metadata inline, so an earlier
/// release's image, in the engine or in the registry, is a cache source.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CacheFrom {
    /// The same image's previous release (`previous`, the default).
    pub previous: bool,
    /// Further image references, as written.
    pub refs: Vec<String>,
}

/// What an image's input key covers (`build.inputs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Inputs {
    /// The Dockerfile and the context files it reads (`COPY`, `ADD`, `RUN
    /// --mount`); the whole context when that cannot be told. The default.
    Dockerfile,
    /// Every file of the context.
    Context,
}

/// Which of the engine's builders runs the builds (`build.builder`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Builder {
    /// BuildKit where the engine offers it (Linux, API 1.39+, reachable over
    /// a unix socket or plain TCP), else the classic builder. The default.
    Auto,
    /// BuildKit, or an error that says why the engine cannot.
    BuildKit,
    /// The classic builder: a container and a committed layer per step.
    Classic,
}

#[derive(Debug, Clone)]
pub struct ImageConfig {
    pub name: String,
    /// Repository path under the registry, e.g. `yyhuni/xingrin-server`.
    pub repository: String,
    /// Context directory relative to the repository root; `""` is the root.
    pub context: String,
    /// Dockerfile path relative to the repository root.
    pub dockerfile: String,
    pub depends_on: Vec<String>,
    pub build_args: BTreeMap<String, String>,
    /// The platforms it is built for (its own `platforms`, else the top
    /// level's); empty builds for the engine's own platform.
    pub platforms: Vec<String>,
}

impl ImageConfig {
    /// Built for several platforms: published as an OCI image index.
    pub fn is_multi_platform(&self) -> bool {
        self.platforms.len() > 1
    }
}

#[derive(Debug, Clone)]
pub struct AlsoUpdate {
    pub path: String,
    pub regex: regex::Regex,
}

#[derive(Debug, Clone)]
pub struct CommitConfig {
    /// `{{raw}}` and `{{version}}` are replaced.
    pub message: String,
    pub author_name: String,
    pub author_email: String,
    pub via: CommitVia,
}

/// How the VERSION commit reaches the release branch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommitVia {
    /// `git push` (non-forced) to the remote.
    Git,
    /// The GitHub Git Data API, with GITHUB_TOKEN (`commit: { via: github-api }`).
    GithubApi,
}

/// The JSON Schema of release.yaml, generated from the config types.
pub fn schema() -> serde_json::Value {
    serde_json::to_value(schemars::schema_for!(raw::RawConfig)).expect("a schema serializes")
}

/// Where the committed schema is published; generated release.yaml files point editors at it.
pub const SCHEMA_URL: &str = "https://raw.githubusercontent.com/relctl/relctl/main/schema/release.schema.json";

impl Config {
    pub fn image(&self, name: &str) -> Option<&ImageConfig> {
        self.images.iter().find(|i| i.name == name)
    }

    /// `registry/repository`, the name images are pushed under (without tag).
    pub fn image_repo(&self, image: &ImageConfig) -> String {
        format!("{}/{}", self.registry, image.repository)
    }

    /// Why `v` cannot be published with the configured tags (a template would
    /// render a tag outside the spec, e.g. over 128 characters), or `None`.
    /// Validation guarantees `None` for [`template::REPRESENTATIVE_VERSIONS`];
    /// any valid SemVer tag can still have a problem here, and then only that
    /// release is refused.
    pub fn image_tag_problem(&self, v: &crate::version::ReleaseVersion) -> Option<RenderError> {
        image_tag_problem(&self.tags, v)
    }

    /// The files relctl's VERSION commit rewrites after every release.
    pub fn rewritten_files(&self) -> Vec<&str> {
        std::iter::once(self.version_file.as_str()).chain(self.also_update.iter().map(|a| a.path.as_str())).collect()
    }
}

/// Everything that can be wrong with release.yaml. All are bad input (exit 2).
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("config file {path} does not exist")]
    NotFound { path: PathBuf },
    #[error("cannot read config file {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{}: {message}", location(path, *line, *column))]
    Parse { path: PathBuf, line: Option<usize>, column: Option<usize>, message: String },
    #[error("{}: {field}: {problem}", location(path, *line, None))]
    Invalid { path: PathBuf, line: Option<usize>, field: String, problem: String, hint: String },
}

fn location(path: &Path, line: Option<usize>, column: Option<usize>) -> String {
    match (line, column) {
        (Some(l), Some(c)) => format!("{}:{l}:{c}", path.display()),
        (Some(l), None) => format!("{}:{l}", path.display()),
        _ => path.display().to_string(),
    }
}

impl ConfigError {
    pub fn hint(&self) -> String {
        match self {
            ConfigError::NotFound { .. } => "pass an existing file with --config FILE, or run relctl in a repository that has release.yaml (--repo DIR)".into(),
            ConfigError::Read { .. } => "check the file's permissions".into(),
            ConfigError::Parse { message, .. } if message.contains("unknown field") => {
                "remove or rename the key; the allowed keys are listed above".into()
            }
            ConfigError::Parse { message, .. } if message.contains("missing field") => {
                "add the missing key; see docs/configuration.md (or examples/app/release.yaml) in the relctl repository for a complete example".into()
            }
            ConfigError::Parse { .. } => "fix the YAML at that position".into(),
            ConfigError::Invalid { hint, .. } => hint.clone(),
        }
    }
}

/// Reads and validates the config at `path`.
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| {
        if source.kind() == std::io::ErrorKind::NotFound {
            ConfigError::NotFound { path: path.to_path_buf() }
        } else {
            ConfigError::Read { path: path.to_path_buf(), source }
        }
    })?;
    parse(&text, path)
}

/// Parses and validates config text; `path` is only used in messages.
pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
    let raw: raw::RawConfig = serde_yaml::from_str(text).map_err(|e| {
        let loc = e.location();
        let mut message = e.to_string();
        if let Some(i) = message.rfind(" at line ") {
            message.truncate(i);
        }
        ConfigError::Parse {
            path: path.to_path_buf(),
            line: loc.as_ref().map(|l| l.line()),
            column: loc.as_ref().map(|l| l.column()),
            message,
        }
    })?;
    validate::validate(raw, text, path)
}

#[cfg(test)]
mod proptests;
#[cfg(test)]
mod tests;
