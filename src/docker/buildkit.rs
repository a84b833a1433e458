//! Builds with BuildKit, the engine's own `version=2` builder, through the
//! Engine API's `POST /build` with the context tar as the request body (no
//! client session). bollard only speaks BuildKit through a gRPC session (its
//! `buildkit` feature: tonic and the generated BuildKit API), so relctl sends
//! this one request itself and reads the JSON lines back.
//!
//! Without a session BuildKit cannot answer a registry's auth challenge (Docker
//! Hub challenges anonymous pulls too): such a build reports [`Outcome::NeedsPull`]
//! with its `FROM` images, which the engine adapter pulls before building again.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::build::{BuildLog, context_written, stream_context};
use super::{DockerError, trace};
use crate::git::ContextSpec;
use crate::plan::BuildStep;
use crate::release::progress::ProgressSink;

/// How a BuildKit build ended, when the engine did not fail it.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    Built,
    /// It could not pull these `FROM` images without a session: pull them
    /// through the engine and build again (BuildKit prefers local images).
    NeedsPull(Vec<String>),
}

/// The engine's `/build` endpoint, reached as bollard reaches the engine.
pub struct BuildKit {
    http: reqwest::Client,
    /// `http://host:port/v1.41` (or `http://docker/v1.41` on a unix socket).
    base: String,
    host: String,
}

impl BuildKit {
    /// The endpoint for `host` (DOCKER_HOST): a `unix://` socket or plain
    /// `tcp://`. `None` for a TLS host (DOCKER_TLS_VERIFY) or another scheme,
    /// which the classic builder still serves through bollard.
    pub fn for_host(host: &str, tls: bool, api_version: &str) -> Option<Self> {
        let (http, authority) = if let Some(path) = host.strip_prefix("unix://") {
            (reqwest::Client::builder().unix_socket(path).build().ok()?, "docker".to_string())
        } else if let Some(addr) = host.strip_prefix("tcp://").filter(|_| !tls) {
            (reqwest::Client::builder().no_proxy().build().ok()?, addr.trim_end_matches('/').to_string())
        } else {
            return None;
        };
        Some(Self { http, base: format!("http://{authority}/v{api_version}"), host: host.to_string() })
    }

    pub async fn build(
        &self,
        step: &BuildStep,
        context: ContextSpec,
        progress: &ProgressSink,
    ) -> Result<Outcome, DockerError> {
        let dockerfile = context.dockerfile_in_tar();
        let (mut rx, producer) = stream_context(context);
        let body = reqwest::Body::wrap_stream(futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx)));
        let json = |map: &BTreeMap<String, String>| serde_json::to_string(map).unwrap_or_default();
        let mut query = vec![
            ("version", "2".to_string()),
            ("t", step.reference.clone()),
            ("dockerfile", dockerfile),
            ("networkmode", step.network.clone()),
            ("buildargs", json(&step.build_args)),
            ("labels", json(&step.labels)),
        ];
        if step.no_cache {
            query.push(("nocache", "1".into()));
        }
        let unreachable =
            |e: reqwest::Error| DockerError::Unreachable { host: self.host.clone(), message: e.to_string() };
        let mut response = self
            .http
            .post(format!("{}/build", self.base))
            .query(&query)
            .header(reqwest::header::CONTENT_TYPE, "application/x-tar")
            .body(body)
            .send()
            .await
            .map_err(unreachable)?;
        let image = step.image.as_str();
        if !response.status().is_success() {
            let status = response.status();
            let text = response.text().await.unwrap_or_default();
            let message = serde_json::from_str::<serde_json::Value>(&text)
                .ok()
                .and_then(|v| v.get("message").and_then(|m| m.as_str()).map(str::to_string))
                .unwrap_or(text);
            return Err(DockerError::Build {
                image: image.to_string(),
                message: format!(
                    "the engine refused the BuildKit build (HTTP {status}): {message}; set build.builder: classic to use the classic builder"
                ),
            });
        }

        let mut log = BuildLog::new(image, progress);
        let mut pending: Vec<u8> = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(unreachable)? {
            pending.extend_from_slice(&chunk);
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
    use super::BuildKit;

    #[test]
    fn reaches_unix_sockets_and_plain_tcp_only() {
        let base = |host: &str, tls: bool| BuildKit::for_host(host, tls, "1.41").map(|b| b.base);
        assert_eq!(base("unix:///run/docker.sock", false).as_deref(), Some("http://docker/v1.41"));
        assert_eq!(base("tcp://127.0.0.1:2375/", false).as_deref(), Some("http://127.0.0.1:2375/v1.41"));
        assert_eq!(base("tcp://127.0.0.1:2376", true), None, "TLS hosts build with the classic builder");
        assert_eq!(base("ssh://builder@host", false), None);
        assert_eq!(base("npipe:////./pipe/docker_engine", false), None);
    }
}
