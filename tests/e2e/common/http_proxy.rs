//! An HTTP proxy in front of the test registry that plays Docker Hub's pull
//! quota (`ratelimit-*` headers, 429 with or without `Retry-After`) or a
//! registry that refuses cosign signatures. Blob uploads pass: the registry's
//! `Location` points at itself, so the engine uploads there directly.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode};
use axum::response::Response;

use super::env;

/// What the proxy does to the registry's answers.
#[derive(Clone, Copy)]
pub enum Quota {
    /// Every answer says 5 of 100 pulls are left.
    Low,
    /// The first `n` requests get 429 with `Retry-After: 1`.
    RetryAfter(u32),
    /// Every request gets 429 without `Retry-After`: the quota is gone.
    Exhausted,
    /// Every write of a cosign signature (`PUT .../manifests/sha256-*.sig`) is refused with 403.
    RefuseSignatures,
}

pub struct Proxy {
    upstream: String,
    quota: Quota,
    seen: AtomicU32,
    /// Requests answered 429 (or refused).
    pub throttled: AtomicU32,
    http: reqwest::Client,
}

/// Starts the proxy on a free port; returns its `127.0.0.1:PORT` and the count of 429s it sent.
pub fn start_proxy(quota: Quota) -> (String, Arc<Proxy>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let proxy = Arc::new(Proxy {
        upstream: env("RELCTL_TEST_REGISTRY"),
        quota,
        seen: AtomicU32::new(0),
        throttled: AtomicU32::new(0),
        http: reqwest::Client::new(),
    });
    let state = proxy.clone();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            let app = axum::Router::new().fallback(forward).with_state(state);
            axum::serve(listener, app).await.unwrap();
        });
    });
    (addr, proxy)
}

async fn forward(State(p): State<Arc<Proxy>>, req: Request) -> Response {
    let seen = p.seen.fetch_add(1, Ordering::SeqCst);
    let throttle = match p.quota {
        Quota::RetryAfter(n) => seen < n,
        Quota::Exhausted => true,
        Quota::Low | Quota::RefuseSignatures => false,
    };
    let signature = req.method() == axum::http::Method::PUT
        && req.uri().path().contains("/manifests/sha256-")
        && req.uri().path().ends_with(".sig");
    if matches!(p.quota, Quota::RefuseSignatures) && signature {
        p.throttled.fetch_add(1, Ordering::SeqCst);
        let mut resp = Response::new(Body::from(r#"{"errors":[{"code":"DENIED"}]}"#));
        *resp.status_mut() = StatusCode::FORBIDDEN;
        return resp;
    }
    if throttle {
        p.throttled.fetch_add(1, Ordering::SeqCst);
        let mut resp = Response::new(Body::from(r#"{"errors":[{"code":"TOOMANYREQUESTS"}]}"#));
        *resp.status_mut() = StatusCode::TOO_MANY_REQUESTS;
        if let Quota::RetryAfter(_) = p.quota {
            resp.headers_mut().insert("retry-after", HeaderValue::from_static("1"));
        }
        return resp;
    }
    let (parts, body) = req.into_parts();
    let url = format!("http://{}{}", p.upstream, parts.uri.path_and_query().map_or("/", |q| q.as_str()));
    let body = axum::body::to_bytes(body, 256 << 20).await.unwrap();
    let mut out = p.http.request(parts.method.clone(), url).body(body.to_vec());
    for (k, v) in &parts.headers {
        if k != "host" {
            out = out.header(k.as_str(), v.as_bytes());
        }
    }
    let answer = out.send().await.unwrap();
    let mut resp = Response::builder().status(answer.status().as_u16());
    for (k, v) in answer.headers() {
        resp = resp.header(k.as_str(), v.as_bytes());
    }
    if let Quota::Low = p.quota {
        resp = resp.header("ratelimit-limit", "100;w=21600").header("ratelimit-remaining", "5;w=21600");
    }
    resp.body(Body::from(answer.bytes().await.unwrap())).unwrap()
}
