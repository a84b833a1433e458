//! The HTTP side of `relctl serve`: `POST /webhook`, `GET /healthz` and
//! `GET /metrics` (and the routes the caller adds: the dashboard). A webhook without a well-formed signature header (401) or
//! announcing more than 1 MiB (413) is refused before any of its body is read;
//! otherwise the body is read, a few at a time, within the size limit and a
//! timeout, and its signature checked before it is parsed. The work it asks
//! for runs in the background. Connections are handled in `listener`.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes, HttpBody as _};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use http_body_util::BodyExt as _;
use secrecy::SecretString;
use tokio::sync::Semaphore;

use super::limits::Limits;
use super::listener;
use super::metrics::{Metrics, Webhook};
use super::state::ControllerState;
use super::trigger::{Shutdown, Trigger};
use super::webhook::{self, Event, Signature};

/// How long a webhook waits for one of the few body-reading turns before 503.
const TURN_WAIT: Duration = Duration::from_secs(2);

#[derive(Clone)]
pub struct AppState {
    /// `None` with `--no-webhook`: the endpoint is not served.
    pub secret: Option<Arc<SecretString>>,
    pub tag_prefix: String,
    pub trigger: Arc<Trigger>,
    pub metrics: Arc<Metrics>,
    /// Cleared when the reconcile loop stops.
    pub alive: Arc<AtomicBool>,
    /// Told about every webhook delivery, for the dashboard.
    pub controller: Arc<ControllerState>,
}

impl AppState {
    /// Counts a webhook delivery's outcome and keeps it as the last one seen.
    fn webhook(&self, outcome: Webhook, detail: impl Into<String>) {
        self.metrics.webhook(outcome);
        self.controller.webhook(outcome, detail);
    }
}

/// The handlers' state: the app's, and what bounds the reading of webhook bodies.
struct Shared {
    app: AppState,
    bodies: Semaphore,
    body_timeout: Duration,
    max_body: usize,
}

pub fn router(state: AppState, limits: &Limits) -> Router {
    let webhook = state.secret.is_some();
    let shared = Arc::new(Shared {
        app: state,
        bodies: Semaphore::new(limits.concurrent_bodies.max(1)),
        body_timeout: limits.body_timeout,
        max_body: limits.max_body,
    });
    let mut router = Router::new().route("/healthz", get(healthz)).route("/metrics", get(metrics));
    if webhook {
        router = router.route("/webhook", post(hook));
    }
    router.with_state(shared)
}

async fn healthz(State(s): State<Arc<Shared>>) -> (StatusCode, &'static str) {
    if s.app.alive.load(Ordering::Relaxed) {
        (StatusCode::OK, "ok\n")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "reconcile loop stopped\n")
    }
}

async fn metrics(State(s): State<Arc<Shared>>) -> ([(header::HeaderName, &'static str); 1], String) {
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], s.app.metrics.render())
}

fn reply(status: StatusCode, text: impl Into<String>) -> Response {
    (status, text.into()).into_response()
}

async fn hook(State(s): State<Arc<Shared>>, headers: HeaderMap, body: Body) -> Response {
    let Some(secret) = s.app.secret.as_ref() else {
        return reply(StatusCode::NOT_FOUND, "no webhook endpoint\n");
    };
    let app = &s.app;
    // Refusals from the headers alone come first: no body byte is read for them.
    let Some(signature) = headers.get("x-hub-signature-256").and_then(|v| Signature::parse(v.as_bytes())) else {
        app.webhook(Webhook::Unauthorized, "missing or malformed X-Hub-Signature-256");
        tracing::warn!("webhook refused: missing or malformed X-Hub-Signature-256");
        return reply(StatusCode::UNAUTHORIZED, "missing or malformed X-Hub-Signature-256\n");
    };
    let too_large = || {
        app.webhook(Webhook::TooLarge, format!("body over {} bytes", s.max_body));
        reply(StatusCode::PAYLOAD_TOO_LARGE, format!("body over {} bytes\n", s.max_body))
    };
    if body.size_hint().lower() > s.max_body as u64 {
        return too_large();
    }
    // A few bodies at a time, so a flood costs at most that many times the limit. A delivery
    // waits briefly for its turn (GitHub gives up after 10 s); a flood is turned away fast.
    let Ok(Ok(_reading)) = tokio::time::timeout(TURN_WAIT, s.bodies.acquire()).await else {
        app.webhook(Webhook::Busy, "too many bodies being read already");
        tracing::warn!("webhook refused: too many bodies being read already");
        return (StatusCode::SERVICE_UNAVAILABLE, [(header::RETRY_AFTER, "10")], "busy\n").into_response();
    };
    let chunks = match read_body(body, s.max_body, s.body_timeout).await {
        Ok(chunks) => chunks,
        Err(BodyError::TooLarge) => return too_large(),
        Err(BodyError::Timeout) => {
            app.webhook(Webhook::Timeout, "body not received in time");
            tracing::warn!("webhook refused: body not received within {:?}", s.body_timeout);
            return reply(StatusCode::REQUEST_TIMEOUT, "body too slow\n");
        }
        Err(BodyError::Broken(e)) => {
            tracing::debug!("webhook body broken off: {e}");
            return reply(StatusCode::BAD_REQUEST, "body broken off\n");
        }
    };
    if !webhook::verify(secret, chunks.iter().map(|c| c.as_ref()), &signature) {
        app.webhook(Webhook::Unauthorized, "wrong X-Hub-Signature-256");
        tracing::warn!("webhook refused: wrong X-Hub-Signature-256");
        return reply(StatusCode::UNAUTHORIZED, "bad signature\n");
    }
    // Contiguous only once authentic.
    let bytes = chunks.concat();
    let kind = headers.get("x-github-event").and_then(|v| v.to_str().ok()).unwrap_or("");
    match webhook::classify(kind, &bytes, &s.app.tag_prefix) {
        Event::Tag(tag) => {
            app.webhook(Webhook::Accepted, format!("reconciling {tag}"));
            tracing::info!(tag = %tag, "webhook: reconciling tag");
            s.app.trigger.request(Some(tag.clone()));
            reply(StatusCode::ACCEPTED, format!("reconciling {tag}\n"))
        }
        Event::Ignored(why) => {
            app.webhook(Webhook::Ignored, why.clone());
            tracing::info!("webhook ignored: {why}");
            reply(StatusCode::ACCEPTED, format!("ignored: {why}\n"))
        }
    }
}

enum BodyError {
    TooLarge,
    Timeout,
    Broken(axum::Error),
}

/// Reads `body` whole, if it is at most `limit` bytes and arrives within `timeout`. The
/// chunks are kept as they came (at most hyper's 16 KiB read buffer each), not copied into
/// one MiB-sized block per body: after 8 bursts of 200 held 1 MiB bodies, RSS settled
/// 11 MB above its start this way, 13 to 18 MB with a block per body.
async fn read_body(mut body: Body, limit: usize, timeout: Duration) -> Result<Vec<Bytes>, BodyError> {
    let read = async {
        let (mut chunks, mut len) = (Vec::new(), 0);
        while let Some(frame) = body.frame().await {
            let Ok(data) = frame.map_err(BodyError::Broken)?.into_data() else { continue };
            len += data.len();
            if len > limit {
                return Err(BodyError::TooLarge);
            }
            chunks.push(data);
        }
        Ok(chunks)
    };
    tokio::time::timeout(timeout, read).await.unwrap_or(Err(BodyError::Timeout))
}

/// Serves the webhook, health and metrics routes and `extra` until `shutdown`, within [`Limits::from_env`].
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    extra: Router,
    shutdown: Shutdown,
) -> std::io::Result<()> {
    let limits = Limits::from_env();
    let metrics = state.metrics.clone();
    listener::serve(listener, router(state, &limits).merge(extra), &limits, metrics, shutdown).await
}

#[cfg(test)]
mod tests {
    use futures_util::StreamExt as _;

    use super::*;

    fn body(chunks: Vec<&'static [u8]>) -> Body {
        let stream = futures_util::stream::iter(chunks.into_iter().map(Ok::<_, std::io::Error>));
        Body::from_stream(stream)
    }

    #[tokio::test]
    async fn a_body_is_read_within_the_limit() {
        let read = read_body(body(vec![b"hello, ", b"world"]), 12, Duration::from_secs(1)).await;
        assert_eq!(read.ok().map(|c| c.concat()).as_deref(), Some(&b"hello, world"[..]));
        let read = read_body(body(vec![b"hello, ", b"world!"]), 12, Duration::from_secs(1)).await;
        assert!(matches!(read, Err(BodyError::TooLarge)));
    }

    #[tokio::test(start_paused = true)]
    async fn a_stalled_body_times_out() {
        let stalled =
            futures_util::stream::iter([Ok::<_, std::io::Error>(&b"{"[..])]).chain(futures_util::stream::pending());
        let read = read_body(Body::from_stream(stalled), 100, Duration::from_secs(10)).await;
        assert!(matches!(read, Err(BodyError::Timeout)));
    }
}
