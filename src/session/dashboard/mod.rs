//! `relctl serve`'s dashboard: `GET /` (the page) and `GET /api/status`
//! (`relctl status --json`'s document plus a `controller` block), on the
//! listener of `/webhook`, `/healthz` and `/metrics`.
//!
//! The status is computed with the status use case after each reconcile and
//! kept in a [`StatusCache`]: a request renders what is kept and never
//! reaches git or the registry, however often the page is loaded. The
//! controller's own state (last reconcile, the run under way, the last
//! webhook, each tag's last error) is read as it is at the request.

pub mod auth;
mod html;

use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use secrecy::SecretString;

pub use html::escape;

use super::status::Status;
use crate::controller::Trigger;
use crate::controller::state::{ControllerState, Snapshot, Time};

/// The last status computed, when, and why the last refresh failed (if it did).
#[derive(Debug, Clone, Default)]
pub struct Cached {
    pub status: Option<Status>,
    pub at: Option<Time>,
    /// The last refresh's error and hint; the status above is older then.
    pub error: Option<(String, String)>,
}

/// The status kept between reconciles.
#[derive(Default)]
pub struct StatusCache {
    inner: RwLock<Cached>,
}

impl StatusCache {
    pub fn set(&self, status: Status) {
        *self.inner.write().unwrap_or_else(std::sync::PoisonError::into_inner) =
            Cached { status: Some(status), at: Some(Time::now()), error: None };
    }

    /// A refresh failed: the status kept so far stays, marked with why.
    pub fn failed(&self, error: String, hint: String) {
        self.inner.write().unwrap_or_else(std::sync::PoisonError::into_inner).error = Some((error, hint));
    }

    pub fn get(&self) -> Cached {
        self.inner.read().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }
}

/// What one page shows.
pub struct View<'a> {
    pub project: &'a str,
    pub registry: &'a str,
    pub status: &'a Cached,
    pub controller: &'a Snapshot,
    pub now: SystemTime,
    /// serve's `--interval`; `None` when off.
    pub interval: Option<Duration>,
}

/// The dashboard's routes and what they read.
pub struct Dashboard {
    pub project: String,
    pub registry: String,
    pub controller: Arc<ControllerState>,
    pub trigger: Arc<Trigger>,
    pub status: Arc<StatusCache>,
    /// `RELCTL_DASHBOARD_TOKEN`: without it, anyone who reaches the listener may read.
    pub token: Option<Arc<SecretString>>,
    pub interval: Option<Duration>,
}

/// Headers of every dashboard answer: never cached, never framed, and no
/// script may run even if something slipped past the escaping.
fn guarded(mut response: Response, content_type: &'static str) -> Response {
    let h = response.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
        ),
    );
    response
}

impl Dashboard {
    /// `GET /` and `GET /api/status`.
    pub fn routes(self: Arc<Self>) -> Router {
        Router::new().route("/", get(page)).route("/api/status", get(api)).with_state(self)
    }

    /// 401 unless the request may read the dashboard.
    fn refused(&self, headers: &HeaderMap) -> Option<Response> {
        let token = self.token.as_ref()?;
        if auth::authorized(headers, token) {
            return None;
        }
        let mut r = (
            StatusCode::UNAUTHORIZED,
            "the dashboard needs RELCTL_DASHBOARD_TOKEN: send it as a bearer token or a basic-auth password\n",
        )
            .into_response();
        r.headers_mut()
            .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Basic realm=\"relctl\", charset=\"UTF-8\""));
        Some(guarded(r, "text/plain; charset=utf-8"))
    }

    fn snapshot(&self) -> Snapshot {
        self.controller.snapshot(self.trigger.next_run())
    }

    /// The page's HTML.
    pub fn page(&self, now: SystemTime) -> String {
        let (status, controller) = (self.status.get(), self.snapshot());
        html::render(&View {
            project: &self.project,
            registry: &self.registry,
            status: &status,
            controller: &controller,
            now,
            interval: self.interval,
        })
    }

    /// `/api/status`: the status document with a `controller` block, or 503
    /// with the controller block alone until the first status is computed.
    pub fn document(&self) -> (StatusCode, serde_json::Value) {
        let cached = self.status.get();
        let mut block = serde_json::to_value(self.snapshot()).unwrap_or_default();
        block["status_at"] = serde_json::to_value(cached.at).unwrap_or_default();
        block["status_error"] =
            cached.error.as_ref().map_or(serde_json::Value::Null, |(e, h)| serde_json::json!({"error": e, "hint": h}));
        match &cached.status {
            Some(status) => {
                let mut doc = serde_json::to_value(status).unwrap_or_default();
                doc["controller"] = block;
                (StatusCode::OK, doc)
            }
            None => {
                let error = "no status yet: the first reconcile is under way";
                (StatusCode::SERVICE_UNAVAILABLE, serde_json::json!({"error": error, "controller": block}))
            }
        }
    }

    fn respond_page(&self, headers: &HeaderMap) -> Response {
        if let Some(refused) = self.refused(headers) {
            return refused;
        }
        guarded(self.page(SystemTime::now()).into_response(), "text/html; charset=utf-8")
    }

    fn respond_api(&self, headers: &HeaderMap) -> Response {
        if let Some(refused) = self.refused(headers) {
            return refused;
        }
        let (code, doc) = self.document();
        let body = serde_json::to_string_pretty(&doc).unwrap_or_default() + "\n";
        let mut r = (code, body).into_response();
        if code == StatusCode::SERVICE_UNAVAILABLE {
            r.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
        }
        guarded(r, "application/json")
    }
}

async fn page(State(d): State<Arc<Dashboard>>, headers: HeaderMap) -> Response {
    d.respond_page(&headers)
}

async fn api(State(d): State<Arc<Dashboard>>, headers: HeaderMap) -> Response {
    d.respond_api(&headers)
}

#[cfg(test)]
mod tests;
