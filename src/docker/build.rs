//! What both builders share: the build context streamed from git objects to
//! the daemon as it is produced (memory stays flat), and the build's output
//! drained into progress ("building step n/m") and into an error that names
//! the image and quotes the last lines the build printed.

use std::io::Write;

use bytes::Bytes;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::DockerError;
use super::trace;
use crate::git::ContextSpec;
use crate::progress::{ImageState, ProgressSink};

pub type Chunk = Result<Bytes, std::io::Error>;

/// Starts writing `context` as a tar on a blocking thread; the receiver yields
/// it in chunks of [`CHUNK`] bytes, at most 4 of them buffered.
pub fn stream_context(context: ContextSpec) -> (mpsc::Receiver<Chunk>, JoinHandle<std::io::Result<u64>>) {
    let (tx, rx) = mpsc::channel(4);
    let producer = tokio::task::spawn_blocking(move || {
        let mut w = ChannelWriter { tx: tx.clone(), buf: Vec::with_capacity(CHUNK) };
        let result = context.write_tar(&mut w).and_then(|files| w.flush().map(|()| files));
        if let Err(e) = &result {
            let _ = tx.blocking_send(Err(std::io::Error::new(e.kind(), e.to_string())));
        }
        result
    });
    (rx, producer)
}

/// Waits for the context writer; a failure there is the build's failure.
pub async fn context_written(image: &str, producer: JoinHandle<std::io::Result<u64>>) -> Result<(), DockerError> {
    let build = |message: String| DockerError::Build { image: image.to_string(), message };
    match producer.await {
        Err(e) => Err(build(format!("context writer stopped: {e}"))),
        Ok(Err(e)) => Err(build(format!("cannot produce the build context from git: {e}"))),
        Ok(Ok(_)) => Ok(()),
    }
}

/// Sends what is written to it down a bounded channel, in chunks, so a tar is
/// streamed to the daemon as it is produced and memory stays flat.
struct ChannelWriter {
    tx: mpsc::Sender<Chunk>,
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

/// `next` unless nothing arrives for `stall` while `held()` is false (a
/// child's build waits silently for its parents); `Err(())` when stalled.
/// `next` must be cancel safe (a stream's `next`, a body's `frame`).
pub async fn within<F: std::future::Future>(
    stall: std::time::Duration,
    held: impl Fn() -> bool,
    next: F,
) -> Result<F::Output, ()> {
    tokio::pin!(next);
    loop {
        match tokio::time::timeout(stall, &mut next).await {
            Ok(item) => return Ok(item),
            Err(_) if held() => continue,
            Err(_) => return Err(()),
        }
    }
}

/// The classic builder's own lines between a step's output: ids of committed
/// layers and containers, which say nothing about why a step failed.
fn classic_chatter(line: &str) -> bool {
    let line = line.trim_start();
    line.starts_with("--->")
        || line.starts_with("Removing intermediate container ")
        || line.starts_with("Successfully built ")
        || line.starts_with("Successfully tagged ")
}

/// What a failed build's message says went wrong.
#[derive(Debug, PartialEq, Eq)]
enum FailureKind {
    /// A COPY/ADD source is not in the context (or .dockerignore excludes it).
    NotInContext,
    /// The Dockerfile itself does not parse.
    Dockerfile,
    Other,
}

/// Reads BuildKit's and the classic builder's messages for those failures.
fn failure_kind(message: &str) -> FailureKind {
    let m = message.to_lowercase();
    let not_in_context = (m.contains("failed to compute cache key") && m.contains("not found"))
        || m.contains("file not found in build context")
        || (m.contains("copy failed") && m.contains("no such file or directory"));
    if not_in_context {
        FailureKind::NotInContext
    } else if m.contains("dockerfile parse error") || m.contains("unknown instruction") {
        FailureKind::Dockerfile
    } else {
        FailureKind::Other
    }
}

/// How many lines of a failed build's output its error quotes.
const LAST_LINES: usize = 5;

/// The drained output of one build, whichever builder ran it.
pub struct BuildLog<'a> {
    image: &'a str,
    progress: &'a ProgressSink,
    context: String,
    last_lines: Vec<String>,
    failure: Option<String>,
    /// Images BuildKit started resolving (`load metadata for REF`), and whether it did.
    bases: std::collections::BTreeMap<String, bool>,
}

impl<'a> BuildLog<'a> {
    pub fn new(image: &'a str, progress: &'a ProgressSink) -> Self {
        Self {
            image,
            progress,
            context: String::new(),
            last_lines: Vec::new(),
            failure: None,
            bases: Default::default(),
        }
    }

    /// The build context directory (repository-relative, `""` the root), for errors.
    pub fn in_context(mut self, context: &str) -> Self {
        self.context = context.to_string();
        self
    }

    /// A line of the classic builder's `stream` (`Step 3/7 : RUN ...`, or output).
    pub fn line(&mut self, line: &str) {
        let line = line.trim_end();
        if line.is_empty() {
            return;
        }
        tracing::debug!(image = %self.image, "{line}");
        if let Some((step, of)) = crate::progress::build_step(line) {
            self.progress.update(self.image, &ImageState::Building { step, of });
        } else if !classic_chatter(line) {
            self.remember(line);
        }
    }

    /// A BuildKit trace message: steps that started, and what steps printed.
    pub fn trace(&mut self, status: trace::Status) {
        for v in &status.vertices {
            tracing::trace!(image = %self.image, started = v.started, completed = v.completed, "vertex {}", v.name);
            if let Some(base) = v.name.strip_prefix("[internal] load metadata for ") {
                let resolved = self.bases.entry(base.to_string()).or_default();
                *resolved |= v.completed && !v.failed;
            }
            if let (Some((step, of)), true, false) = (v.step(), v.started, v.completed) {
                tracing::debug!(image = %self.image, "{}", v.name);
                self.progress.update(self.image, &ImageState::Building { step, of });
            }
        }
        for log in &status.logs {
            for line in String::from_utf8_lossy(log).lines() {
                tracing::debug!(image = %self.image, "{line}");
                self.remember(line.trim_end());
            }
        }
    }

    /// The daemon's `error` / `errorDetail.message`: the build failed.
    pub fn error(&mut self, message: String) {
        self.failure = Some(message);
    }

    /// BuildKit without a client session cannot answer a registry's auth
    /// challenge, which every pull from Docker Hub meets: the build fails with
    /// "no active sessions" while resolving its `FROM` images. Those images.
    pub fn unresolved_bases(&self) -> Vec<String> {
        match &self.failure {
            Some(message) if message.contains("no active sessions") => {
                self.bases.iter().filter(|(_, done)| !**done).map(|(base, _)| base.clone()).collect()
            }
            _ => Vec::new(),
        }
    }

    fn remember(&mut self, line: &str) {
        if line.trim().is_empty() {
            return;
        }
        self.last_lines.push(line.to_string());
        if self.last_lines.len() > LAST_LINES {
            self.last_lines.remove(0);
        }
    }

    /// The build's result: its error, with the last output lines that the
    /// error does not already quote.
    pub fn finish(self) -> Result<(), DockerError> {
        let Some(message) = self.failure else { return Ok(()) };
        let context =
            self.last_lines.iter().filter(|l| !message.contains(l.as_str())).cloned().collect::<Vec<_>>().join(" | ");
        // Classified by the engine's own error, not by what the build printed.
        let kind = failure_kind(&message);
        let message = if context.is_empty() { message } else { format!("{message} (last output: {context})") };
        let image = self.image.to_string();
        Err(match kind {
            FailureKind::NotInContext => DockerError::NotInContext { image, context: self.context, message },
            FailureKind::Dockerfile => DockerError::Dockerfile { image, message },
            FailureKind::Other => DockerError::Build { image, message },
        })
    }
}

impl super::DockerEngine {
    /// Builds with the classic builder through bollard (`version=1`): every
    /// step a container, committed as a layer.
    pub(super) async fn build_classic(
        &self,
        step: &crate::plan::BuildStep,
        context: ContextSpec,
        gate: Option<super::gate::Gate>,
    ) -> Result<(), DockerError> {
        use bollard::query_parameters::BuildImageOptionsBuilder;
        use futures_util::StreamExt;
        use std::collections::HashMap;

        let image = step.image.as_str();
        if let Some(platform) = step.platform.as_deref().filter(|p| *p != super::engine_platform()) {
            return Err(DockerError::ForeignPlatform { image: image.to_string(), platform: platform.to_string() });
        }
        let dockerfile = context.dockerfile_in_tar();
        let (rx, producer) = stream_context(context);
        let parents = gate.clone();
        let body = super::gate::context_body(rx, gate);
        let build_args: HashMap<&str, &str> = step.build_args.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let labels: HashMap<&str, &str> = step.labels.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        // The classic builder reads cache only from images already in the engine.
        let cache_from = if step.no_cache { Vec::new() } else { step.cache_from.clone() };
        let mut options = BuildImageOptionsBuilder::default();
        if let Some(platform) = &step.platform {
            options = options.platform(platform);
        }
        let options = options
            .cachefrom(&cache_from)
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
        let mut log = BuildLog::new(&step.id, &self.progress).in_context(&step.context);
        let stall = self.timeouts.build_stall;
        let held = || parents.as_ref().is_some_and(|g| !g.is_open());
        while let Some(item) = within(stall, held, stream.next()).await.map_err(|()| stalled(image, stall))? {
            match item {
                Ok(info) => {
                    if let Some(line) = info.stream.as_deref() {
                        log.line(line);
                    }
                    if let Some(detail) = info.error_detail.and_then(|d| d.message) {
                        log.error(detail);
                    }
                }
                Err(bollard::errors::Error::DockerStreamError { error }) => log.error(error),
                Err(e) => log.error(e.to_string()),
            }
        }
        context_written(image, producer).await?;
        log.finish()
    }
}

/// A build that printed nothing for `after`.
pub fn stalled(image: &str, after: std::time::Duration) -> DockerError {
    DockerError::Stalled {
        image: image.to_string(),
        operation: "the build".into(),
        after,
        setting: "timeouts.build_stall",
    }
}

impl super::DockerEngine {
    /// Pulls `base` (a `FROM` image) through the engine for `image`'s build,
    /// with the release registry's credentials only when `base` is there.
    pub(super) async fn pull_base(&self, image: &str, base: &str, platform: Option<&str>) -> Result<(), DockerError> {
        let (repository, tag) = split_reference(base);
        let creds = if same_registry(registry_of(repository), &self.registry) { self.credentials() } else { None };
        self.pull_with(image, repository, tag, platform, creds).await.map_err(|e| DockerError::Build {
            image: image.to_string(),
            message: format!("cannot pull its base image {base}: {e}"),
        })
    }
}

impl super::DockerEngine {
    /// Puts `step`'s cache sources into the engine where only the engine can
    /// read them: the classic builder reads no registry, and BuildKit without
    /// a client session cannot log in to one (Docker Hub asks even anonymous
    /// pulls to). Sources already in the engine are left as they are; one
    /// that cannot be pulled (never published, no access) is skipped: the
    /// cache only ever saves time.
    pub(super) async fn fetch_cache_sources(&self, step: &crate::plan::BuildStep) {
        let engine_only = self.buildkit.is_none() || self.creds.is_some();
        if step.no_cache || !engine_only {
            return;
        }
        for source in &step.cache_from {
            if self.docker.inspect_image(source).await.is_ok() {
                continue;
            }
            let (repository, tag) = split_reference(source);
            let creds = if same_registry(registry_of(repository), &self.registry) { self.credentials() } else { None };
            match self.pull_with(&step.image, repository, tag, step.platform.as_deref(), creds).await {
                Ok(()) => tracing::info!(image = %step.image, "cache: pulled {source}"),
                Err(e) => tracing::info!(image = %step.image, "cache: {source} not read, building without it: {e}"),
            }
        }
    }
}

/// `host/path:tag` or `host/path@sha256:...` into repository and tag (or digest).
fn split_reference(reference: &str) -> (&str, &str) {
    if let Some((repository, digest)) = reference.split_once('@') {
        return (repository, digest);
    }
    let name_start = reference.rfind('/').map_or(0, |i| i + 1);
    match reference[name_start..].rfind(':') {
        Some(i) => (&reference[..name_start + i], &reference[name_start + i + 1..]),
        None => (reference, "latest"),
    }
}

/// The registry a repository lives in, as Docker reads a reference: the first
/// component when it looks like a host, else Docker Hub.
fn registry_of(repository: &str) -> &str {
    match repository.split_once('/') {
        Some((first, _)) if first.contains(['.', ':']) || first == "localhost" => first,
        _ => "docker.io",
    }
}

/// Equal hosts, or two of Docker Hub's names.
fn same_registry(a: &str, b: &str) -> bool {
    a == b || (crate::registry::is_docker_hub(a) && crate::registry::is_docker_hub(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_split_and_name_their_registry() {
        assert_eq!(split_reference("docker.io/library/node:20"), ("docker.io/library/node", "20"));
        assert_eq!(split_reference("127.0.0.1:5056/ns/base:v1"), ("127.0.0.1:5056/ns/base", "v1"));
        assert_eq!(split_reference("localhost:5000/base"), ("localhost:5000/base", "latest"));
        assert_eq!(split_reference("ghcr.io/o/b@sha256:abc"), ("ghcr.io/o/b", "sha256:abc"));
        assert_eq!(registry_of("docker.io/library/node"), "docker.io");
        assert_eq!(registry_of("library/node"), "docker.io");
        assert_eq!(registry_of("127.0.0.1:5056/ns/base"), "127.0.0.1:5056");
        assert_eq!(registry_of("localhost/base"), "localhost");
        assert!(same_registry(registry_of("index.docker.io/library/node"), "docker.io"));
        assert!(same_registry(registry_of("library/node"), "registry-1.docker.io"));
        assert!(!same_registry(registry_of("ghcr.io/o/b"), "docker.io"));
        assert!(!same_registry(registry_of("127.0.0.1:5056/ns/base"), "127.0.0.1:5055"));
    }

    #[test]
    fn a_missing_copy_source_and_a_syntax_error_are_told_apart_from_other_failures() {
        let cases = [
            (r#"failed to compute cache key: "/app.txt" not found: not found"#, FailureKind::NotInContext),
            (
                "COPY failed: file not found in build context or excluded by .dockerignore: stat app.txt: file does not exist",
                FailureKind::NotInContext,
            ),
            (
                "failed to create LLB definition: dockerfile parse error line 3: unknown instruction: COPYY",
                FailureKind::Dockerfile,
            ),
            ("The command '/bin/sh -c exit 3' returned a non-zero code: 3", FailureKind::Other),
            ("failed to do request: dial tcp 127.0.0.1:5055: connect: connection refused", FailureKind::Other),
        ];
        for (message, kind) in cases {
            assert_eq!(failure_kind(message), kind, "{message}");
        }
    }

    #[test]
    fn only_a_session_failure_asks_for_a_pull() {
        let progress: ProgressSink = std::sync::Arc::new(crate::progress::NoProgress);
        let mut log = BuildLog::new("app", &progress);
        let started = |name: &str, completed| trace::Status {
            vertices: vec![trace::Vertex { name: name.into(), started: true, completed, failed: false }],
            logs: vec![],
        };
        log.trace(started("[internal] load metadata for docker.io/library/node:20", false));
        log.trace(started("[internal] load metadata for 127.0.0.1:5055/ns/local:1", true));
        let failed = trace::Vertex {
            name: "[internal] load metadata for 127.0.0.1:5056/ns/private:1".into(),
            started: true,
            completed: true,
            failed: true,
        };
        log.trace(trace::Status { vertices: vec![failed], logs: vec![] });
        assert!(log.unresolved_bases().is_empty(), "no failure, nothing to pull");
        log.error("failed to create LLB definition: no active sessions".into());
        assert_eq!(log.unresolved_bases(), ["127.0.0.1:5056/ns/private:1", "docker.io/library/node:20"]);
        log.error("failed to create LLB definition: not found".into());
        assert!(log.unresolved_bases().is_empty(), "other failures are the build's own");
    }
}
