//! The image-builder boundary: the [`ImageBuilder`] trait (build, push) and
//! its Docker Engine API adapter on bollard. Build contexts are streamed to
//! the daemon as they are produced; build and push streams are drained and
//! their `error_detail` turned into errors that name the image.

pub mod store;

use std::collections::HashMap;
use std::future::Future;
use std::io::Write;

use bollard::Docker;
use bollard::auth::DockerCredentials;
use bollard::models::ProgressDetail;
use bollard::query_parameters::{BuildImageOptionsBuilder, PushImageOptionsBuilder};
use bytes::Bytes;
use futures_util::StreamExt;
use secrecy::ExposeSecret;

use crate::git::ContextSpec;
use crate::plan::BuildStep;
use crate::registry::Credentials;
use crate::release::progress::{self, ImageState, ProgressSink};

#[derive(Debug, thiserror::Error)]
pub enum DockerError {
    #[error("cannot reach the Docker daemon at {host}: {message}")]
    Unreachable { host: String, message: String },
    #[error("image {image}: build failed: {message}")]
    Build { image: String, message: String },
    #[error("image {image}: pushing {reference} failed: {message}")]
    Push { image: String, reference: String, message: String },
}

impl DockerError {
    pub fn hint(&self) -> String {
        match self {
            DockerError::Unreachable { .. } => "start the Docker daemon, or point DOCKER_HOST at it (e.g. unix:///var/run/docker.sock)".into(),
            DockerError::Build { .. } => "fix the Dockerfile at the tagged commit and tag a new version; no release tag was pushed".into(),
            DockerError::Push { message, .. } if message.contains("unauthorized") || message.contains("authentication required") || message.contains("denied") => {
                "the registry refused the push: set RELCTL_REGISTRY_USERNAME / RELCTL_REGISTRY_PASSWORD for an account that may push".into()
            }
            DockerError::Push { .. } => "check the registry and retry; rerunning the release resumes where it stopped".into(),
        }
    }
}

/// What builds and uploads images.
pub trait ImageBuilder: Sync {
    /// Builds `step` from `context`, tagging the result `step.reference`.
    fn build(&self, step: &BuildStep, context: ContextSpec) -> impl Future<Output = Result<(), DockerError>> + Send;
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
}

impl DockerEngine {
    /// Connects as the docker CLI does (DOCKER_HOST, else the default socket) and negotiates the API version.
    /// Build steps and push byte counts are reported to `progress`.
    pub async fn connect(
        registry: &str,
        creds: Option<Credentials>,
        progress: ProgressSink,
    ) -> Result<Self, DockerError> {
        let host = std::env::var("DOCKER_HOST").unwrap_or_else(|_| "unix:///var/run/docker.sock".into());
        let unreachable =
            |e: bollard::errors::Error| DockerError::Unreachable { host: host.clone(), message: e.to_string() };
        let docker = Docker::connect_with_defaults().map_err(unreachable)?;
        let docker = docker.negotiate_version().await.map_err(unreachable)?;
        docker.ping().await.map_err(unreachable)?;
        Ok(Self { docker, host, registry: registry.to_string(), creds, progress })
    }

    pub fn host(&self) -> &str {
        &self.host
    }

    fn credentials(&self) -> Option<DockerCredentials> {
        self.creds.as_ref().map(|c| DockerCredentials {
            username: Some(c.username.clone()),
            password: Some(c.password.expose_secret().to_string()),
            serveraddress: Some(self.registry.clone()),
            ..Default::default()
        })
    }
}

/// Sends what is written to it down a bounded channel, in chunks, so a tar is
/// streamed to the daemon as it is produced and memory stays flat.
struct ChannelWriter {
    tx: tokio::sync::mpsc::Sender<Result<Bytes, std::io::Error>>,
    buf: Vec<u8>,
}

const CHUNK: usize = 256 * 1024;

impl Write for ChannelWriter {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= CHUNK {
            self.flush()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = Bytes::from(std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK)));
        self.tx.blocking_send(Ok(chunk)).map_err(|_| {
            std::io::Error::new(std::io::ErrorKind::BrokenPipe, "the daemon stopped reading the build context")
        })
    }
}

impl ImageBuilder for DockerEngine {
    async fn build(&self, step: &BuildStep, context: ContextSpec) -> Result<(), DockerError> {
        let image = step.image.clone();
        let dockerfile = context.dockerfile_in_tar();
        let (tx, mut rx) = tokio::sync::mpsc::channel(4);
        let producer = tokio::task::spawn_blocking(move || {
            let mut w = ChannelWriter { tx: tx.clone(), buf: Vec::with_capacity(CHUNK) };
            let result = context.write_tar(&mut w).and_then(|files| w.flush().map(|()| files));
            if let Err(e) = &result {
                let _ = tx.blocking_send(Err(std::io::Error::new(e.kind(), e.to_string())));
            }
            result
        });
        let body = futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx));

        let build_args: HashMap<&str, &str> = step.build_args.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let labels: HashMap<&str, &str> = step.labels.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let options = BuildImageOptionsBuilder::default()
            .dockerfile(&dockerfile)
            .t(&step.reference)
            .nocache(step.no_cache)
            .rm(true)
            .forcerm(true)
            .networkmode(&step.network)
            .buildargs(&build_args)
            .labels(&labels)
            .build();
        let creds = self.credentials().map(|c| HashMap::from([(self.registry.clone(), c)]));
        let mut stream = self.docker.build_image(options, creds, Some(bollard::body_try_stream(body)));
        let mut last_lines: Vec<String> = Vec::new();
        let mut failure = None;
        while let Some(item) = stream.next().await {
            match item {
                Ok(info) => {
                    if let Some(line) = info.stream.as_deref().map(str::trim_end).filter(|l| !l.is_empty()) {
                        tracing::debug!(image = %image, "{line}");
                        if let Some((n, of)) = progress::build_step(line) {
                            self.progress.update(&image, &ImageState::Building { step: n, of });
                        }
                        last_lines.push(line.to_string());
                        if last_lines.len() > 5 {
                            last_lines.remove(0);
                        }
                    }
                    if let Some(detail) = info.error_detail.and_then(|d| d.message) {
                        failure = Some(detail);
                    }
                }
                Err(bollard::errors::Error::DockerStreamError { error }) => failure = Some(error),
                Err(e) => failure = Some(e.to_string()),
            }
        }
        let produced = producer.await.map_err(|e| DockerError::Build {
            image: image.clone(),
            message: format!("context writer stopped: {e}"),
        })?;
        if let Err(e) = produced {
            return Err(DockerError::Build {
                image,
                message: format!("cannot produce the build context from git: {e}"),
            });
        }
        if let Some(message) = failure {
            let context =
                last_lines.iter().filter(|l| !message.contains(l.as_str())).cloned().collect::<Vec<_>>().join(" | ");
            let message = if context.is_empty() { message } else { format!("{message} (last output: {context})") };
            return Err(DockerError::Build { image, message });
        }
        Ok(())
    }

    async fn push(&self, image: &str, repository: &str, tag: &str) -> Result<String, DockerError> {
        let reference = format!("{repository}:{tag}");
        let options = PushImageOptionsBuilder::new().tag(tag).build();
        let mut stream = self.docker.push_image(repository, Some(options), self.credentials());
        let mut digest = None;
        // Bytes sent per layer. The API model carries no layer id, so layers are
        // told apart by size: two same-sized layers at once only undercount.
        let mut layers: HashMap<i64, i64> = HashMap::new();
        while let Some(item) = stream.next().await {
            let fail =
                |message: String| DockerError::Push { image: image.to_string(), reference: reference.clone(), message };
            match item {
                Ok(info) => {
                    if let Some(message) = info.error_detail.and_then(|d| d.message) {
                        return Err(fail(message));
                    }
                    if let Some(ProgressDetail { current: Some(current), total: Some(total) }) = info.progress_detail {
                        layers.insert(total, current);
                        let (done, total) = layers.iter().fold((0, 0), |(d, t), (total, cur)| (d + cur, t + total));
                        let state = ImageState::Pushing { done: done.max(0) as u64, total: total.max(0) as u64 };
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

/// Connects to the daemon on first use: releases that only add tags, and
/// reconciles with nothing to build, never need one.
pub struct LazyEngine {
    registry: String,
    creds: Option<Credentials>,
    progress: ProgressSink,
    engine: tokio::sync::OnceCell<DockerEngine>,
}

impl LazyEngine {
    pub fn new(registry: &str, creds: Option<Credentials>, progress: ProgressSink) -> Self {
        Self { registry: registry.to_string(), creds, progress, engine: tokio::sync::OnceCell::new() }
    }

    async fn get(&self) -> Result<&DockerEngine, DockerError> {
        self.engine
            .get_or_try_init(|| DockerEngine::connect(&self.registry, self.creds.clone(), self.progress.clone()))
            .await
    }
}

impl ImageBuilder for LazyEngine {
    async fn build(&self, step: &BuildStep, context: ContextSpec) -> Result<(), DockerError> {
        self.get().await?.build(step, context).await
    }

    async fn push(&self, image: &str, repository: &str, tag: &str) -> Result<String, DockerError> {
        self.get().await?.push(image, repository, tag).await
    }
}
