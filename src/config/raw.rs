//! release.yaml exactly as written: serde structs that refuse unknown keys.
//! Nothing here is checked beyond its YAML shape; see `validate` for that.

use std::collections::BTreeMap;

use serde::Deserialize;

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
/// relctl's release config: which images a release tag becomes, where they go, and how VERSION is committed.
pub struct RawConfig {
    /// Registry host[:port], e.g. docker.io, ghcr.io, 127.0.0.1:5000 or [::1]:5000; images go to REGISTRY/NAMESPACE/PROJECT-IMAGE.
    #[serde(default = "default_registry")]
    pub registry: String,
    /// Registry namespace (Docker Hub user or organisation).
    pub namespace: String,
    /// Prefix of every image repository: PROJECT-IMAGE.
    pub project: String,
    /// The git remote, release branch and tag prefix.
    #[serde(default)]
    pub git: RawGit,
    /// The file installers read the current version from (relative to the repository root, not under .git).
    #[serde(default = "default_version_file")]
    pub version_file: String,
    /// Image tag templates: {{raw}} {{version}} {{major}} {{minor}} {{patch}}, or a fixed tag such as latest.
    #[serde(default = "default_tags")]
    pub tags: Vec<String>,
    /// How images are built.
    #[serde(default)]
    pub build: RawBuild,
    /// The images of a release, by name.
    #[serde(default)]
    pub images: BTreeMap<String, RawImage>,
    /// Files rewritten in the VERSION commit: capture group 1 of `regex` becomes the new tag.
    #[serde(default)]
    pub also_update: Vec<RawAlsoUpdate>,
    /// The VERSION commit.
    #[serde(default)]
    pub commit: RawCommit,
    /// Which tags `relctl reconcile` keeps converged.
    #[serde(default)]
    pub reconcile: RawReconcile,
    /// GitHub integration.
    #[serde(default)]
    pub github: RawGitHub,
    /// How long relctl waits before it calls a silent operation stuck.
    #[serde(default)]
    pub timeouts: RawTimeouts,
    /// Webhooks told when a release is published, fails, or drift is repaired.
    #[serde(default)]
    pub notify: Vec<RawNotify>,
    /// Docker Hub repository pages, updated after each new stable release (registry docker.io only).
    #[serde(default)]
    pub dockerhub: Option<RawDockerHub>,
    /// cosign signatures (and SLSA provenance) for every published image, pushed before its version tags.
    #[serde(default)]
    pub sign: Option<RawSign>,
    /// The platforms every image is built for, os/arch[/variant] (default: the engine's own). Several make each version tag an OCI image index.
    #[serde(default)]
    pub platforms: Option<Vec<String>>,
    /// Fan-out on native runners: the `runs-on` value `relctl matrix` gives each platform's build job.
    #[serde(default)]
    pub fanout: RawFanout,
}

/// The runners of a fan-out release.
#[derive(Debug, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawFanout {
    /// `runs-on` by platform, plus `default` for the others (defaults: linux/arm64: ubuntu-24.04-arm, default: ubuntu-latest).
    #[serde(default)]
    pub runners: BTreeMap<String, String>,
}

/// The signing key and what is signed.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawSign {
    /// A cosign private key file (relative to the repository root), or env:NAME for its PEM text in NAME.
    pub key: String,
    /// The environment variable holding the key's password (default COSIGN_PASSWORD).
    #[serde(default = "default_password_env")]
    pub password_env: String,
    /// Also attach a signed SLSA provenance attestation to every image.
    #[serde(default)]
    pub provenance: bool,
}

fn default_password_env() -> String {
    "COSIGN_PASSWORD".into()
}

/// The short and full description of every image's Docker Hub repository.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawDockerHub {
    /// The short description (at most 100 characters).
    pub description: Option<String>,
    /// A file of the repository, read at the released commit, as the full description (Markdown).
    pub readme: Option<String>,
}

/// One webhook to notify.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawNotify {
    /// The webhook's http or https URL, or `env:NAME` to read it from the environment variable NAME. A secret: never printed or logged.
    pub url: RawSecret,
    /// slack: a Slack-compatible `{"text": ...}` message (Slack, Mattermost, Rocket.Chat, Discord's /slack endpoint); generic: relctl's JSON document.
    pub format: RawNotifyFormat,
    /// The events to send (default: all three).
    #[serde(default = "default_notify_on")]
    pub on: Vec<RawNotifyEvent>,
}

// Its `Debug` shows nothing of it.
/// A secret: relctl never prints or logs it.
#[derive(Deserialize, schemars::JsonSchema)]
#[serde(transparent)]
pub struct RawSecret(pub String);

impl std::fmt::Debug for RawSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("[redacted]")
    }
}

#[derive(Debug, Deserialize, schemars::JsonSchema, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum RawNotifyFormat {
    Slack,
    Generic,
}

#[derive(Debug, Deserialize, schemars::JsonSchema, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum RawNotifyEvent {
    /// A run pushed the release's version tags.
    Published,
    /// A release failed.
    Failed,
    /// A floating tag or VERSION was out of place (or a version tag missing) and was put back.
    Drift,
}

fn default_notify_on() -> Vec<RawNotifyEvent> {
    vec![RawNotifyEvent::Published, RawNotifyEvent::Failed, RawNotifyEvent::Drift]
}

/// Durations such as 30s, 5m, 1h, or plain seconds.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct RawTimeouts {
    /// A build step that prints nothing for this long fails and is retried (default 10m).
    pub build_stall: String,
    /// A push that moves no byte for this long fails and is retried (default 2m).
    pub push_stall: String,
    /// One registry request, body included (default 60s).
    pub request: String,
    /// A git fetch or push that moves no data for this long fails (default 2m).
    pub git: String,
}

impl Default for RawTimeouts {
    fn default() -> Self {
        Self { build_stall: "10m".into(), push_stall: "2m".into(), request: "60s".into(), git: "2m".into() }
    }
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct RawGitHub {
    /// Create or update the GitHub Release of each released tag (needs GITHUB_TOKEN).
    pub release: bool,
}

impl Default for RawGitHub {
    fn default() -> Self {
        Self { release: true }
    }
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct RawReconcile {
    pub since: Option<String>,
    /// The newest this many release tags are kept converged (1 to 10000).
    #[schemars(range(min = 1, max = super::MAX_RECONCILED_TAGS))]
    pub max_tags: usize,
}

impl Default for RawReconcile {
    fn default() -> Self {
        Self { since: None, max_tags: 10 }
    }
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct RawGit {
    pub remote: String,
    pub branch: String,
    pub tag_prefix: String,
}

impl Default for RawGit {
    fn default() -> Self {
        Self { remote: "origin".into(), branch: "main".into(), tag_prefix: "v".into() }
    }
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct RawBuild {
    /// Retries of a failed build or push (0 to 10).
    #[schemars(range(max = super::MAX_RETRIES))]
    pub retries: u32,
    /// Images built at once (1 to 64).
    #[schemars(range(min = 1, max = super::MAX_PARALLELISM))]
    pub parallelism: usize,
    pub cache: bool,
    pub network: String,
    pub unchanged: RawUnchanged,
    pub stage: bool,
    /// The engine's builder: auto (BuildKit where the engine offers it), buildkit, or classic.
    pub builder: RawBuilder,
    /// What an image's input key covers: dockerfile (the Dockerfile and only the context files its COPY, ADD and RUN --mount read; the whole context when that cannot be told) or context (every file of the context).
    pub inputs: RawInputs,
    /// Layer cache sources of each build: previous (the image's previous release, in the engine or the registry; the default), none, or a list of image references (`previous` may be one of them).
    pub cache_from: RawCacheFrom,
}

/// `build.cache_from`: a keyword or a list of references.
#[derive(Debug, Deserialize, schemars::JsonSchema, Clone, PartialEq, Eq)]
#[serde(untagged)]
pub enum RawCacheFrom {
    Keyword(String),
    List(Vec<String>),
}

#[derive(Debug, Deserialize, schemars::JsonSchema, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum RawInputs {
    Dockerfile,
    Context,
}

#[derive(Debug, Deserialize, schemars::JsonSchema, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum RawBuilder {
    Auto,
    Buildkit,
    Classic,
}

#[derive(Debug, Deserialize, schemars::JsonSchema, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum RawUnchanged {
    Retag,
    Rebuild,
}

impl Default for RawBuild {
    fn default() -> Self {
        Self {
            retries: 3,
            parallelism: 4,
            cache: true,
            network: "none".into(),
            unchanged: RawUnchanged::Retag,
            stage: true,
            builder: RawBuilder::Auto,
            inputs: RawInputs::Dockerfile,
            cache_from: RawCacheFrom::Keyword("previous".into()),
        }
    }
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
/// One image of the release.
pub struct RawImage {
    /// Build context directory, relative to the repository root.
    pub context: String,
    /// Dockerfile path relative to the repository root (default: CONTEXT/Dockerfile).
    #[serde(default)]
    pub dockerfile: Option<String>,
    /// Images this one builds FROM; each parent is passed as build arg PARENT_IMAGE.
    #[serde(default)]
    pub depends_on: Vec<String>,
    /// Build arguments.
    #[serde(default)]
    pub build_args: BTreeMap<String, String>,
    /// Repository path under the registry (default: NAMESPACE/PROJECT-NAME).
    #[serde(default)]
    pub repository: Option<String>,
    /// The platforms this image is built for (default: the top-level `platforms`).
    #[serde(default)]
    pub platforms: Option<Vec<String>>,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawAlsoUpdate {
    /// A file relative to the repository root, not under .git.
    pub path: String,
    pub regex: String,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct RawCommit {
    pub message: String,
    pub author_name: String,
    pub author_email: String,
    pub via: RawVia,
}

#[derive(Debug, Deserialize, schemars::JsonSchema, Clone, Copy, PartialEq, Eq, Default)]
#[serde(rename_all = "kebab-case")]
pub enum RawVia {
    #[default]
    Git,
    GithubApi,
}

impl Default for RawCommit {
    fn default() -> Self {
        Self {
            message: "chore(release): {{raw}} [skip ci]".into(),
            author_name: "relctl".into(),
            author_email: "relctl@users.noreply.github.com".into(),
            via: RawVia::Git,
        }
    }
}

fn default_registry() -> String {
    "docker.io".into()
}

fn default_version_file() -> String {
    "VERSION".into()
}

fn default_tags() -> Vec<String> {
    vec!["{{raw}}".into(), "latest".into()]
}
