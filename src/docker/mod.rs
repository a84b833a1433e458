//! The image-builder boundary: the [`ImageBuilder`] trait (build, push) and
//! its Docker Engine API adapter. Builds go to the engine's BuildKit
//! (`buildkit.rs`, chosen by `build.builder`) or to the classic builder
//! through bollard (`build.rs`); pushes go through bollard. Build contexts are
//! streamed to the daemon as they are produced, a child's while its parents
//! still build (`gate.rs`); build and push streams are drained and their
//! `error_detail` turned into errors that name the image.

mod build;
mod buildkit;
pub mod gate;
pub mod store;
pub mod tls;
mod trace;

use std::collections::HashMap;
use std::future::Future;
use std::time::Duration;

use bollard::Docker;
use bollard::auth::DockerCredentials;
use bollard::models::ProgressDetail;
use bollard::query_parameters::PushImageOptionsBuilder;
use futures_util::StreamExt;
use secrecy::ExposeSecret;

use crate::config::{Builder, Timeouts};
use crate::git::ContextSpec;
use crate::plan::BuildStep;
use crate::progress::{ImageState, ProgressSink};
use crate::registry::Credentials;
use gate::Gate;

#[derive(Debug, thiserror::Error)]
pub enum DockerError {
    #[error("cannot reach the Docker daemon at {host}: {message}")]
    Unreachable { host: String, message: String },
    #[error("build.builder: buildkit is not available with the Docker daemon at {host}: {reason}")]
    NoBuildKit { host: String, reason: NoBuildKit },
    #[error("image {image}: build failed: {message}")]
    Build { image: String, message: String },
    #[error("image {image}: a file its Dockerfile copies is not in its build context ({}/): {message}", if context.is_empty() { "." } else { context.as_str() })]
    NotInContext { image: String, context: String, message: String },
    #[error("image {image}: its Dockerfile does not parse: {message}")]
    Dockerfile { image: String, message: String },
    #[error("image {image}: pushing {reference} failed: {message}")]
    Push { image: String, reference: String, message: String },
    #[error("image {image}: not built, because a parent image's build failed")]
    ParentFailed { image: String },
    #[error("image {image}: the engine cannot run programs built for {platform} (exec format error): {message}")]
    ExecFormat { image: String, platform: String, message: String },
    #[error("image {image}: the classic builder cannot build for {platform}")]
    ForeignPlatform { image: String, platform: String },
    #[error("image {image}: {operation} stalled: the engine reported nothing for {}s", .after.as_secs())]
    Stalled { image: String, operation: String, after: Duration, setting: &'static str },
}

impl DockerError {
    /// A build that never started because a parent's build failed.
    pub fn parent_failed(step: &BuildStep) -> Self {
        DockerError::ParentFailed { image: step.id.clone() }
    }

    /// Whether trying again can help: not when the registry refused the
    /// credentials, nor when the engine has no BuildKit, nor for a build
    /// abandoned because its parent failed.
    pub fn retryable(&self) -> bool {
        match self {
            DockerError::Push { message, .. } => !refused(message),
            DockerError::NoBuildKit { .. } | DockerError::ParentFailed { .. } => false,
            DockerError::ExecFormat { .. } | DockerError::ForeignPlatform { .. } => false,
            // No retry mends these: the same inputs fail the same way.
            DockerError::NotInContext { .. } | DockerError::Dockerfile { .. } => false,
            DockerError::Unreachable { .. } | DockerError::Build { .. } | DockerError::Stalled { .. } => true,
        }
    }

    pub fn hint(&self) -> String {
        match self {
            DockerError::Unreachable { host, .. } if std::env::var_os("DOCKER_HOST").is_none() => format!(
                "start the Docker engine at {host}, or point DOCKER_HOST at the one you use (in a clone of relctl, its local test engine: eval \"$(scripts/services.sh env)\")"
            ),
            DockerError::Unreachable { host, .. } => format!(
                "DOCKER_HOST is {host}: start that engine, or set DOCKER_HOST to one that runs (in a clone of relctl, its local test engine: eval \"$(scripts/services.sh env)\")"
            ),
            DockerError::NoBuildKit { .. } => "set build.builder: auto (BuildKit where the engine offers it) or classic".into(),
            DockerError::ParentFailed { .. } => "fix the parent's build first; see its error".into(),
            DockerError::ExecFormat { platform, .. } => format!(
                "a RUN step needs an emulator for {platform}: register QEMU with binfmt_misc on the engine's host (docker run --privileged --rm tonistiigi/binfmt --install all), or build {platform} on a native runner with fan-out (`relctl matrix` gives each platform its runs-on); no release tag was pushed"
            ),
            DockerError::ForeignPlatform { .. } => "build with BuildKit (build.builder: auto or buildkit, on an engine that has it): the classic builder builds only the engine's own platform; no release tag was pushed".into(),
            DockerError::NotInContext { image, context, .. } => format!(
                "set images.{}.context in release.yaml to the directory that holds the file (or fix the COPY, or .dockerignore); relctl uses the release.yaml you run it with, so the same tag can simply be released again afterwards ({} is the context now)",
                // `image@platform` for one platform of a multi-platform image.
                image.split('@').next().unwrap_or(image),
                if context.is_empty() { "." } else { context.as_str() }
            ),
            DockerError::Dockerfile { .. } => {
                "fix the Dockerfile at the tagged commit and tag a new version; no release tag was pushed".into()
            }
            DockerError::Build { message, .. } if lost_connection(message) => {
                "the build lost its connection to a registry or the engine, not a fault of the Dockerfile: check the registry and network, then rerun; no release tag was pushed".into()
            }
            DockerError::Build { .. } => "fix the Dockerfile at the tagged commit and tag a new version; no release tag was pushed".into(),
            DockerError::Push { message, .. } if refused(message) => {
                "the registry refused the push: set RELCTL_REGISTRY_USERNAME / RELCTL_REGISTRY_PASSWORD for an account that may push".into()
            }
            DockerError::Push { .. } => "check the registry and retry; rerunning the release resumes where it stopped".into(),
            DockerError::Stalled { setting, .. } => format!(
                "check the connection between the engine and the registry and rerun (no release tag was pushed); raise {setting} in release.yaml if this step is just slow and silent"
            ),
        }
    }
}

/// Bytes moved per layer of a push or pull, summed into one progress line.
struct LayerBytes<K>(HashMap<K, (i64, i64)>);

impl<K> Default for LayerBytes<K> {
    fn default() -> Self {
        Self(HashMap::new())
    }
}

impl<K: std::hash::Hash + Eq> LayerBytes<K> {
    /// Records `layer` at `current` of `total` bytes; returns (done, total) over all layers.
    fn update(&mut self, layer: K, current: i64, total: i64) -> (u64, u64) {
        self.0.insert(layer, (current, total));
        let (done, total) = self.0.values().fold((0, 0), |(d, t), (c, tot)| (d + c, t + tot));
        (done.max(0) as u64, total.max(0) as u64)
    }
}

/// A build failed on the network (pulling a base, a registry that went
/// away), not on the Dockerfile: the messages Go's net/http and BuildKit give.
fn lost_connection(message: &str) -> bool {
    const SIGNS: [&str; 12] = [
        "connection refused",
        "connection reset",
        "broken pipe",
        "i/o timeout",
        "tls handshake timeout",
        "no such host",
        "server misbehaving",
        "unexpected eof",
        "502 bad gateway",
        "503 service unavailable",
        "504 gateway timeout",
        "network is unreachable",
    ];
    let lower = message.to_lowercase();
    SIGNS.iter().any(|s| lower.contains(s))
}

/// The registry refused the credentials (or their absence).
fn refused(message: &str) -> bool {
    message.contains("unauthorized") || message.contains("authentication required") || message.contains("denied")
}

/// The platform the engine builds for by default: the host's, `linux/<GOARCH>`.
pub fn engine_platform() -> String {
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    };
    format!("linux/{arch}")
}

/// What builds and uploads images.
pub trait ImageBuilder: Sync {
    /// Builds `step` from `context`, tagging the result `step.reference`.
    fn build(&self, step: &BuildStep, context: ContextSpec) -> impl Future<Output = Result<(), DockerError>> + Send;
    /// Builds `step` once `parents` opens (its `FROM` images are built). An
    /// engine that reads the whole context before it resolves `FROM` may take
    /// the context before that; this default waits, then builds.
    fn build_after(
        &self,
        step: &BuildStep,
        context: ContextSpec,
        mut parents: Gate,
    ) -> impl Future<Output = Result<(), DockerError>> + Send {
        async move {
            if !parents.opened().await {
                return Err(DockerError::parent_failed(step));
            }
            self.build(step, context).await
        }
    }
    /// Checks the engine can be reached, before anything is built: a missing
    /// engine fails the release at once instead of after every build's retries.
    fn ready(&self) -> impl Future<Output = Result<(), DockerError>> + Send {
        async { Ok(()) }
    }
    /// Builds that must not run at the same time on this builder share a
    /// key; `None` lets `step` build beside any other. Asked once `ready`.
    fn exclusive(&self, _step: &BuildStep) -> Option<String> {
        None
    }
    /// Pushes the local image `repository:tag`; returns the manifest digest.
    fn push(
        &self,
        image: &str,
        repository: &str,
        tag: &str,
    ) -> impl Future<Output = Result<String, DockerError>> + Send;
}

/// [`ImageBuilder`] on the Docker Engine API.
pub struct DockerEngine {
    docker: Docker,
    host: String,
    registry: String,
    creds: Option<Credentials>,
    progress: ProgressSink,
    /// Set when builds go to BuildKit; `None` builds with the classic builder.
    buildkit: Option<buildkit::BuildKit>,
    timeouts: Timeouts,
    /// Held from a base pulled through the engine to the build that uses it:
    /// the engine keeps one image per tag, so two platforms' pulls of one
    /// base must not overwrite each other in between.
    engine_pulls: tokio::sync::Mutex<()>,
}

impl DockerEngine {
    /// Connects as the docker CLI does (DOCKER_HOST, else the default socket) and negotiates the API version.
    /// Build steps and push byte counts are reported to `progress`; `builder`
    /// picks the engine's builder (see [`Builder`]).
    pub async fn connect(
        registry: &str,
        creds: Option<Credentials>,
        progress: ProgressSink,
        builder: Builder,
    ) -> Result<Self, DockerError> {
        let host = std::env::var("DOCKER_HOST").unwrap_or_else(|_| "unix:///var/run/docker.sock".into());
        let unreachable =
            |e: bollard::errors::Error| DockerError::Unreachable { host: host.clone(), message: e.to_string() };
        let docker = Docker::connect_with_defaults().map_err(unreachable)?;
        let docker = docker.negotiate_version().await.map_err(unreachable)?;
        docker.ping().await.map_err(unreachable)?;
        let buildkit = match builder {
            Builder::Classic => None,
            Builder::Auto | Builder::BuildKit => {
                let found = buildkit_endpoint(&docker, &host).await;
                match (builder, found) {
                    (_, Ok(endpoint)) => {
                        tracing::debug!(host = %host, "builds go to the engine's BuildKit");
                        Some(endpoint)
                    }
                    (Builder::BuildKit, Err(reason)) => {
                        return Err(DockerError::NoBuildKit { host, reason });
                    }
                    (_, Err(reason)) => {
                        tracing::info!(host = %host, "building with the classic builder: {reason}");
                        None
                    }
                }
            }
        };
        let timeouts = Timeouts::default();
        let engine_pulls = tokio::sync::Mutex::new(());
        Ok(Self { docker, host, registry: registry.to_string(), creds, progress, buildkit, timeouts, engine_pulls })
    }

    /// When builds and pushes count as stalled (`timeouts.build_stall`, `timeouts.push_stall`).
    pub fn with_timeouts(mut self, timeouts: Timeouts) -> Self {
        self.timeouts = timeouts;
        self
    }

    pub fn host(&self) -> &str {
        &self.host
    }

    fn credentials(&self) -> Option<DockerCredentials> {
        self.creds.as_ref().map(|c| match c.is_identity_token() {
            true => DockerCredentials {
                identitytoken: Some(c.password.expose_secret().to_string()),
                serveraddress: Some(self.registry.clone()),
                ..Default::default()
            },
            false => DockerCredentials {
                username: Some(c.username.clone()),
                password: Some(c.password.expose_secret().to_string()),
                serveraddress: Some(self.registry.clone()),
                ..Default::default()
            },
        })
    }
}

impl DockerEngine {
    /// Builds with the chosen builder; with a `gate`, the context's last
    /// chunk waits for it.
    async fn build_gated(&self, step: &BuildStep, context: ContextSpec, gate: Option<Gate>) -> Result<(), DockerError> {
        self.build_on(step, context, gate).await.map_err(|e| match e {
            // A RUN step of a foreign platform without an emulator: say which, and how to fix it.
            DockerError::Build { message, .. } if message.contains("exec format error") => {
                let platform = step.platform.clone().unwrap_or_else(engine_platform);
                DockerError::ExecFormat { image: step.image.clone(), platform, message }
            }
            e => e,
        })
    }

    async fn build_on(&self, step: &BuildStep, context: ContextSpec, gate: Option<Gate>) -> Result<(), DockerError> {
        self.fetch_cache_sources(step).await;
        let Some(buildkit) = &self.buildkit else { return self.build_classic(step, context, gate).await };
        let bases = match buildkit.build(step, context.clone(), gate, &self.progress, self.timeouts.build_stall).await?
        {
            buildkit::Outcome::Built => return Ok(()),
            buildkit::Outcome::NeedsPull(bases) => bases,
        };
        // Until the build has read them: another platform's pull of a base would replace it.
        let _pulled = self.engine_pulls.lock().await;
        for base in &bases {
            tracing::info!(image = %step.image, "pulling {base} through the engine: BuildKit cannot without a session");
            self.pull_base(&step.image, base, step.platform.as_deref()).await?;
        }
        match buildkit.build(step, context, None, &self.progress, self.timeouts.build_stall).await? {
            buildkit::Outcome::Built => Ok(()),
            buildkit::Outcome::NeedsPull(bases) => Err(DockerError::Build {
                image: step.image.clone(),
                message: format!("BuildKit still cannot resolve {} after pulling it", bases.join(", ")),
            }),
        }
    }
}

impl ImageBuilder for DockerEngine {
    async fn build(&self, step: &BuildStep, context: ContextSpec) -> Result<(), DockerError> {
        self.build_gated(step, context, None).await
    }

    /// BuildKit (dockerd 20.10's, at least) crashes the whole engine
    /// ("fatal error: concurrent map writes" while exporting inline cache)
    /// when two builds with the same steps run at once: two platforms of a
    /// COPY-only image are such builds, as a COPY's cache key has no platform.
    fn exclusive(&self, step: &BuildStep) -> Option<String> {
        self.buildkit.as_ref().map(|_| buildkit::same_steps(step))
    }

    /// Streams the context at once and holds its last chunk for `parents`:
    /// the engine reads the context while the parents build. A build that
    /// ends before the gate opened (the engine dropped the waiting upload)
    /// is built again, plainly, once it opens.
    async fn build_after(&self, step: &BuildStep, context: ContextSpec, mut parents: Gate) -> Result<(), DockerError> {
        match self.build_gated(step, context.clone(), Some(parents.clone())).await {
            Err(e) if !parents.is_open() => {
                if !parents.opened().await {
                    return Err(DockerError::parent_failed(step));
                }
                tracing::debug!(image = %step.image, "the early context upload ended ({e}); building again now its parents are built");
                self.build(step, context).await
            }
            result => result,
        }
    }

    async fn push(&self, image: &str, repository: &str, tag: &str) -> Result<String, DockerError> {
        let reference = format!("{repository}:{tag}");
        let options = PushImageOptionsBuilder::new().tag(tag).build();
        let mut stream = self.docker.push_image(repository, Some(options), self.credentials());
        let mut digest = None;
        // The API model carries no layer id, so layers are told apart by
        // size: two same-sized layers at once only undercount.
        let mut layers = LayerBytes::default();
        let stall = self.timeouts.push_stall;
        let stalled = || DockerError::Stalled {
            image: image.to_string(),
            operation: format!("pushing {reference}"),
            after: stall,
            setting: "timeouts.push_stall",
        };
        while let Some(item) = build::within(stall, || false, stream.next()).await.map_err(|()| stalled())? {
            let fail =
                |message: String| DockerError::Push { image: image.to_string(), reference: reference.clone(), message };
            match item {
                Ok(info) => {
                    if let Some(message) = info.error_detail.and_then(|d| d.message) {
                        return Err(fail(message));
                    }
                    if let Some(ProgressDetail { current: Some(current), total: Some(total) }) = info.progress_detail {
                        let (done, total) = layers.update(total, current, total);
                        let state = ImageState::Pushing { done, total };
                        self.progress.update(image, &state);
                    }
                    if let Some(status) = info.status.as_deref() {
                        if let Some(d) = status.split_whitespace().find(|w| w.starts_with("sha256:")) {
                            digest = Some(d.to_string());
                        }
                        tracing::debug!(image, "{status}");
                    }
                }
                Err(bollard::errors::Error::DockerStreamError { error }) => {
                    return Err(fail(error));
                }
                Err(e) => return Err(fail(e.to_string())),
            }
        }
        digest.ok_or_else(|| DockerError::Push {
            image: image.to_string(),
            reference,
            message: "the daemon reported no digest".into(),
        })
    }
}

/// BuildKit through the Engine API needs a Linux engine of API 1.39 (Docker
/// 18.09) or later, reached over a unix socket or plain TCP.
async fn buildkit_endpoint(docker: &Docker, host: &str) -> Result<buildkit::BuildKit, NoBuildKit> {
    let version = docker.version().await.map_err(NoBuildKit::Version)?;
    let os = version.os.unwrap_or_default();
    if os != "linux" {
        return Err(NoBuildKit::Os(os));
    }
    let api = docker.client_version();
    if (api.major_version, api.minor_version) < (1, 39) {
        return Err(NoBuildKit::Api(api.to_string()));
    }
    let tls = std::env::var("DOCKER_TLS_VERIFY").is_ok_and(|v| !v.is_empty());
    match buildkit::BuildKit::for_host(host, tls, &api.to_string()) {
        Ok(Some(endpoint)) => Ok(endpoint),
        Ok(None) => Err(NoBuildKit::Transport(host.to_string())),
        Err(e) => Err(NoBuildKit::Tls(e)),
    }
}

/// Why an engine offers no BuildKit to relctl.
#[derive(Debug, thiserror::Error)]
pub enum NoBuildKit {
    #[error("cannot read the engine's version: {0}")]
    Version(bollard::errors::Error),
    #[error("the engine runs on {0}, BuildKit needs linux")]
    Os(String),
    #[error("the engine speaks API {0}, BuildKit needs 1.39 (Docker 18.09) or later")]
    Api(String),
    #[error("relctl sends BuildKit builds over unix:// or tcp://, not to {0}")]
    Transport(String),
    #[error("the engine is reached over TLS, but its client certificate cannot be used: {}", crate::chain::error_chain(.0))]
    Tls(tls::TlsSetupError),
}

/// Connects to the daemon on first use: releases that only add tags, and
/// reconciles with nothing to build, never need one.
pub struct LazyEngine {
    builder: Builder,
    registry: String,
    creds: Option<Credentials>,
    progress: ProgressSink,
    timeouts: Timeouts,
    engine: tokio::sync::OnceCell<DockerEngine>,
}

impl LazyEngine {
    pub fn new(registry: &str, creds: Option<Credentials>, progress: ProgressSink, builder: Builder) -> Self {
        let timeouts = Timeouts::default();
        Self {
            builder,
            registry: registry.to_string(),
            creds,
            progress,
            timeouts,
            engine: tokio::sync::OnceCell::new(),
        }
    }

    /// See [`DockerEngine::with_timeouts`].
    pub fn with_timeouts(mut self, timeouts: Timeouts) -> Self {
        self.timeouts = timeouts;
        self
    }

    async fn get(&self) -> Result<&DockerEngine, DockerError> {
        self.engine
            .get_or_try_init(|| async {
                let engine =
                    DockerEngine::connect(&self.registry, self.creds.clone(), self.progress.clone(), self.builder)
                        .await?;
                Ok(engine.with_timeouts(self.timeouts))
            })
            .await
    }
}

impl ImageBuilder for LazyEngine {
    async fn ready(&self) -> Result<(), DockerError> {
        self.get().await.map(|_| ())
    }

    async fn build(&self, step: &BuildStep, context: ContextSpec) -> Result<(), DockerError> {
        self.get().await?.build(step, context).await
    }

    async fn build_after(&self, step: &BuildStep, context: ContextSpec, parents: Gate) -> Result<(), DockerError> {
        self.get().await?.build_after(step, context, parents).await
    }

    fn exclusive(&self, step: &BuildStep) -> Option<String> {
        self.engine.get().and_then(|engine| engine.exclusive(step))
    }

    async fn push(&self, image: &str, repository: &str, tag: &str) -> Result<String, DockerError> {
        self.get().await?.push(image, repository, tag).await
    }
}

#[cfg(test)]
mod tests {
    use super::{DockerError, LayerBytes};

    #[test]
    fn network_failures_of_a_build_say_rerun_and_dockerfile_failures_say_fix() {
        let hint = |message: &str| DockerError::Build { image: "app".into(), message: message.into() }.hint();
        for net in [
            "failed to do request: Head \"http://127.0.0.1:5055/v2/a/manifests/v1\": dial tcp 127.0.0.1:5055: connect: connection refused",
            "failed to copy: read tcp 127.0.0.1:1->127.0.0.1:2: read: connection reset by peer",
            "unexpected EOF",
        ] {
            assert!(hint(net).contains("rerun") && !hint(net).contains("fix the Dockerfile"), "{net}");
        }
        let run = "The command '/bin/sh -c exit 3' returned a non-zero code: 3";
        assert!(hint(run).contains("fix the Dockerfile"), "{run}");
    }

    #[test]
    fn layer_bytes_sum_the_latest_count_of_each_layer() {
        let mut layers = LayerBytes::default();
        assert_eq!(layers.update("a", 5, 10), (5, 10));
        assert_eq!(layers.update("b", 1, 20), (6, 30));
        assert_eq!(layers.update("a", 10, 10), (11, 30), "a layer's newer count replaces its older one");
    }
}
