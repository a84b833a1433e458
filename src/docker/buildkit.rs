//! Builds with BuildKit, the engine's own `version=2` builder, through the
//! Engine API's `POST /build` with the context tar as the request body (no
//! client session). bollard only speaks BuildKit through a gRPC session (its
//! `buildkit` feature: tonic and the generated BuildKit API), so relctl sends
//! this one request itself over hyper and reads the JSON lines back.
//!
//! Without a session BuildKit cannot answer a registry's auth challenge (Docker
//! Hub challenges anonymous pulls too): such a build reports [`Outcome::NeedsPull`]
//! with its `FROM` images, which the engine adapter pulls before building again.

use std::collections::BTreeMap;
use std::path::PathBuf;

use futures_util::TryStreamExt;
use http_body_util::{BodyExt, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use serde::Deserialize;
use tokio::io::{AsyncRead, AsyncWrite};

use super::build::{BuildLog, context_written, stalled, stream_context, within};

/// The build argument that makes BuildKit write its cache metadata into the image.
pub const INLINE_CACHE: &str = "BUILDKIT_INLINE_CACHE";

/// The longest line of build output kept while waiting for its end.
const MAX_LINE: usize = 4 << 20;
use super::gate::{Gate, context_body};
use super::{DockerError, trace};
use crate::git::ContextSpec;
use crate::plan::BuildStep;
use crate::progress::ProgressSink;

/// How a BuildKit build ended, when the engine did not fail it.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    Built,
    /// It could not pull these `FROM` images without a session: pull them
    /// through the engine and build again (BuildKit prefers local images).
    NeedsPull(Vec<String>),
}

/// Where the engine listens.
#[derive(Debug)]
enum Endpoint {
    Unix(PathBuf),
    /// `host:port`, plain HTTP.
    Tcp(String),
    /// `host:port` over TLS with a client certificate (DOCKER_TLS_VERIFY).
    Tls {
        addr: String,
        config: std::sync::Arc<tokio_rustls::rustls::ClientConfig>,
    },
}

/// The engine's `/build` endpoint, reached as bollard reaches the engine.
/// One HTTP/1.1 connection per build through hyper: plain HTTP on a unix
/// socket or TCP needs no TLS setup (loading the system's CA certificates
/// for an HTTP client took 75 ms here, on every release that builds).
pub struct BuildKit {
    endpoint: Endpoint,
    /// The `Host` header: `docker` on a unix socket, else `host:port`.
    authority: String,
    api_version: String,
    host: String,
}

impl BuildKit {
    /// The endpoint for `host` (DOCKER_HOST): a `unix://` socket, or
    /// `tcp://` (over TLS with the client certificate in DOCKER_CERT_PATH when
    /// `tls`). `Ok(None)` for another scheme, which the classic builder still
    /// serves through bollard.
    pub fn for_host(host: &str, tls: bool, api_version: &str) -> Result<Option<Self>, super::tls::TlsSetupError> {
        let (endpoint, authority) = if let Some(path) = host.strip_prefix("unix://") {
            (Endpoint::Unix(path.into()), "docker".to_string())
        } else if let Some(addr) = host.strip_prefix("tcp://") {
            let addr = addr.trim_end_matches('/').to_string();
            let endpoint = match tls {
                true => {
                    Endpoint::Tls { addr: addr.clone(), config: super::tls::client_config(&super::tls::cert_path())? }
                }
                false => Endpoint::Tcp(addr.clone()),
            };
            (endpoint, addr)
        } else {
            return Ok(None);
        };
        Ok(Some(Self { endpoint, authority, api_version: api_version.to_string(), host: host.to_string() }))
    }

    /// Builds `step`; with a `gate`, the context's last chunk waits for it
    /// (see [`super::gate`]).
    pub async fn build(
        &self,
        step: &BuildStep,
        context: ContextSpec,
        gate: Option<Gate>,
        progress: &ProgressSink,
        stall: std::time::Duration,
    ) -> Result<Outcome, DockerError> {
        let dockerfile = context.dockerfile_in_tar();
        let (rx, producer) = stream_context(context);
        let parents = gate.clone();
        let body = StreamBody::new(context_body(rx, gate).map_ok(Frame::data));
        let json = |map: &BTreeMap<String, String>| serde_json::to_string(map).unwrap_or_default();
        // Every image carries its cache metadata in its config, so a later
        // build on any engine can reuse its layers (`cachefrom`).
        let mut build_args = step.build_args.clone();
        build_args.entry(INLINE_CACHE.into()).or_insert_with(|| "1".into());
        let mut query = vec![
            ("version", "2".to_string()),
            ("t", step.reference.clone()),
            ("dockerfile", dockerfile),
            ("networkmode", step.network.clone()),
            ("buildargs", json(&build_args)),
            ("labels", json(&step.labels)),
        ];
        if let Some(platform) = &step.platform {
            query.push(("platform", platform.clone()));
        }
        if step.no_cache {
            query.push(("nocache", "1".into()));
        } else if !step.cache_from.is_empty() {
            // Read only, and a source that does not exist is skipped by the engine.
            query.push(("cachefrom", serde_json::to_string(&step.cache_from).unwrap_or_default()));
        }
        let query = form_urlencoded::Serializer::new(String::new()).extend_pairs(query).finish();
        let request = Request::post(format!("/v{}/build?{query}", self.api_version))
            .header(hyper::header::HOST, &self.authority)
            .header(hyper::header::CONTENT_TYPE, "application/x-tar")
            .body(body)
            .map_err(|e| self.unreachable(e))?;
        let response = self.send(request).await?;
        let image = step.image.as_str();
        let status = response.status();
        let mut body = response.into_body();
        if !status.is_success() {
            let text = body.collect().await.map(|b| b.to_bytes()).unwrap_or_default();
            let text = String::from_utf8_lossy(&text);
            let message = serde_json::from_str::<serde_json::Value>(&text)
                .ok()
                .and_then(|v| v.get("message").and_then(|m| m.as_str()).map(str::to_string))
                .unwrap_or_else(|| text.to_string());
            return Err(DockerError::Build {
                image: image.to_string(),
                message: format!(
                    "the engine refused the BuildKit build (HTTP {status}): {message}; set build.builder: classic to use the classic builder"
                ),
            });
        }

        let mut log = BuildLog::new(&step.id, progress).in_context(&step.context);
        let mut pending: Vec<u8> = Vec::new();
        let held = || parents.as_ref().is_some_and(|g| !g.is_open());
        while let Some(frame) = within(stall, held, body.frame()).await.map_err(|()| stalled(image, stall))? {
            let Ok(chunk) = frame.map_err(|e| self.unreachable(e))?.into_data() else { continue };
            pending.extend_from_slice(&chunk);
            if pending.len() > MAX_LINE && !pending.contains(&b'\n') {
                tracing::debug!(image, "dropping {} bytes of engine output without a line break", pending.len());
                pending.clear();
            }
            while let Some(end) = pending.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = pending.drain(..=end).collect();
                message(&mut log, &line);
            }
        }
        message(&mut log, &pending);
        let bases = log.unresolved_bases();
        if !bases.is_empty() {
            return Ok(Outcome::NeedsPull(bases));
        }
        context_written(image, producer).await?;
        log.finish().map(|()| Outcome::Built)
    }

    /// Sends `request` on a new connection to the engine.
    async fn send<B>(&self, request: Request<B>) -> Result<Response<Incoming>, DockerError>
    where
        B: hyper::body::Body + Send + 'static,
        B::Data: Send,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let connect = |e: std::io::Error| self.unreachable(e);
        match &self.endpoint {
            Endpoint::Unix(path) => {
                self.exchange(tokio::net::UnixStream::connect(path).await.map_err(connect)?, request).await
            }
            Endpoint::Tcp(addr) => {
                self.exchange(tokio::net::TcpStream::connect(addr).await.map_err(connect)?, request).await
            }
            Endpoint::Tls { addr, config } => {
                let tcp = tokio::net::TcpStream::connect(addr).await.map_err(connect)?;
                let name = super::tls::server_name(addr).map_err(|e| self.unreachable(e))?;
                let connector = tokio_rustls::TlsConnector::from(config.clone());
                let stream = connector.connect(name, tcp).await.map_err(connect)?;
                self.exchange(stream, request).await
            }
        }
    }

    async fn exchange<S, B>(&self, io: S, request: Request<B>) -> Result<Response<Incoming>, DockerError>
    where
        S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
        B: hyper::body::Body + Send + 'static,
        B::Data: Send,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let (mut sender, connection) =
            hyper::client::conn::http1::handshake(TokioIo::new(io)).await.map_err(|e| self.unreachable(e))?;
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!("connection to the engine ended: {e}");
            }
        });
        sender.send_request(request).await.map_err(|e| self.unreachable(e))
    }

    fn unreachable(&self, e: impl std::fmt::Display) -> DockerError {
        DockerError::Unreachable { host: self.host.clone(), message: e.to_string() }
    }
}

/// One JSON line of the `/build` response.
#[derive(Deserialize)]
struct Message {
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    aux: Option<serde_json::Value>,
    #[serde(default)]
    stream: Option<String>,
    #[serde(default)]
    error: Option<String>,
    #[serde(default, rename = "errorDetail")]
    error_detail: Option<ErrorDetail>,
}

#[derive(Deserialize)]
struct ErrorDetail {
    #[serde(default)]
    message: Option<String>,
}

/// What two builds share when they run the same steps whatever their
/// platform: context, Dockerfile and build arguments (which name the parents'
/// images, so the platforms of a child of a multi-platform image differ).
pub fn same_steps(step: &BuildStep) -> String {
    serde_json::json!([step.context, step.dockerfile, step.build_args, step.no_cache]).to_string()
}

fn message(log: &mut BuildLog<'_>, line: &[u8]) {
    if line.iter().all(u8::is_ascii_whitespace) {
        return;
    }
    let Ok(m) = serde_json::from_slice::<Message>(line) else {
        tracing::debug!("unreadable line from the engine: {}", String::from_utf8_lossy(line));
        return;
    };
    if m.id.as_deref() == Some("moby.buildkit.trace")
        && let Some(status) = m.aux.as_ref().and_then(|a| a.as_str()).and_then(trace::decode)
    {
        log.trace(status);
    }
    if let Some(line) = m.stream.as_deref() {
        log.line(line);
    }
    if let Some(error) = m.error_detail.and_then(|d| d.message).or(m.error) {
        log.error(error);
    }
}

#[cfg(test)]
mod tests {
    use super::{BuildKit, Endpoint, same_steps};
    use crate::plan::BuildStep;

    #[test]
    fn the_platforms_of_one_image_run_the_same_steps_and_other_builds_do_not() {
        let step = |platform: &str, context: &str, parent: &str| BuildStep {
            platform: Some(platform.into()),
            context: context.into(),
            dockerfile: format!("{context}/Dockerfile"),
            build_args: [("BASE_IMAGE".to_string(), format!("r/base:stage-{parent}"))].into(),
            ..BuildStep::default()
        };
        let amd64 = same_steps(&step("linux/amd64", "app", "x"));
        assert_eq!(amd64, same_steps(&step("linux/arm64", "app", "x")), "the platform is not a step");
        assert_ne!(amd64, same_steps(&step("linux/amd64", "web", "x")), "another context");
        assert_ne!(amd64, same_steps(&step("linux/arm64", "app", "y")), "FROM another parent image");
        let mut fresh = step("linux/amd64", "app", "x");
        fresh.no_cache = true;
        assert_ne!(amd64, same_steps(&fresh));
    }

    #[test]
    fn reaches_unix_sockets_plain_tcp_and_tls() {
        let reach = |host: &str| BuildKit::for_host(host, false, "1.41").unwrap().map(|b| (b.endpoint, b.authority));
        let unix = reach("unix:///run/docker.sock").unwrap();
        assert!(
            matches!(unix.0, Endpoint::Unix(ref p) if p.to_str() == Some("/run/docker.sock")) && unix.1 == "docker"
        );
        let tcp = reach("tcp://127.0.0.1:2375/").unwrap();
        assert!(matches!(tcp.0, Endpoint::Tcp(ref a) if a == "127.0.0.1:2375") && tcp.1 == "127.0.0.1:2375");
        assert!(reach("ssh://builder@host").is_none());
        assert!(reach("npipe:////./pipe/docker_engine").is_none());
        // TLS needs the client certificate: none in an empty DOCKER_CERT_PATH-like directory.
        let empty = tempfile::tempdir().unwrap();
        let err = crate::docker::tls::client_config(empty.path()).unwrap_err();
        assert!(err.to_string().contains("ca.pem"), "{err}");
    }
}
