//! The HTTP side of `relctl serve`: `POST /webhook` (signature checked before
//! the body is read as JSON, at most 1 MiB, work done in the background),
//! `GET /healthz` and `GET /metrics`.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use secrecy::SecretString;

use super::metrics::{Metrics, Webhook};
use super::trigger::{Shutdown, Trigger};
use super::webhook::{self, Event};

pub const MAX_BODY: usize = 1024 * 1024;

#[derive(Clone)]
pub struct AppState {
    /// `None` with `--no-webhook`: the endpoint is not served.
    pub secret: Option<Arc<SecretString>>,
    pub tag_prefix: String,
    pub trigger: Arc<Trigger>,
    pub metrics: Arc<Metrics>,
    /// Cleared when the reconcile loop stops.
    pub alive: Arc<AtomicBool>,
}

pub fn router(state: AppState) -> Router {
    let mut router = Router::new().route("/healthz", get(healthz)).route("/metrics", get(metrics));
    if state.secret.is_some() {
        router = router.route("/webhook", post(hook));
    }
    router.with_state(state)
}

async fn healthz(State(s): State<AppState>) -> (StatusCode, &'static str) {
    if s.alive.load(Ordering::Relaxed) {
        (StatusCode::OK, "ok\n")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "reconcile loop stopped\n")
    }
}

async fn metrics(State(s): State<AppState>) -> ([(axum::http::HeaderName, &'static str); 1], String) {
    ([(axum::http::header::CONTENT_TYPE, "text/plain; version=0.0.4")], s.metrics.render())
}

async fn hook(State(s): State<AppState>, headers: HeaderMap, body: Body) -> (StatusCode, String) {
    let secret = s.secret.as_ref().expect("route exists only with a secret");
    let Ok(bytes) = axum::body::to_bytes(body, MAX_BODY).await else {
        s.metrics.webhook(Webhook::TooLarge);
        return (StatusCode::PAYLOAD_TOO_LARGE, "body over 1 MiB\n".into());
    };
    let signature = headers.get("x-hub-signature-256").and_then(|v| v.to_str().ok());
    if !webhook::verify(secret, &bytes, signature) {
        s.metrics.webhook(Webhook::Unauthorized);
        tracing::warn!("webhook refused: missing or wrong X-Hub-Signature-256");
        return (StatusCode::UNAUTHORIZED, "bad signature\n".into());
    }
    let kind = headers.get("x-github-event").and_then(|v| v.to_str().ok()).unwrap_or("");
    match webhook::classify(kind, &bytes, &s.tag_prefix) {
        Event::Tag(tag) => {
            s.metrics.webhook(Webhook::Accepted);
            tracing::info!(tag = %tag, "webhook: reconciling tag");
            s.trigger.request(Some(tag.clone()));
            (StatusCode::ACCEPTED, format!("reconciling {tag}\n"))
        }
        Event::Ignored(why) => {
            s.metrics.webhook(Webhook::Ignored);
            tracing::info!("webhook ignored: {why}");
            (StatusCode::ACCEPTED, format!("ignored: {why}\n"))
        }
    }
}

/// Serves until `shutdown`.
pub async fn serve(listener: tokio::net::TcpListener, state: AppState, mut shutdown: Shutdown) -> std::io::Result<()> {
    axum::serve(listener, router(state)).with_graceful_shutdown(async move { shutdown.wait().await }).await
}
