//! Docker Hub's pull quota, played by an HTTP proxy in front of the test
//! registry: it adds `ratelimit-limit` / `ratelimit-remaining` to every
//! answer (serve's /metrics shows them and a warning is logged), or answers
//! 429 to the first requests, with or without `Retry-After`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode};
use axum::response::Response;

use crate::common::serve::{Server, curl};
use crate::common::*;

/// What the proxy does to the registry's answers.
#[derive(Clone, Copy)]
enum Quota {
    /// Every answer says 5 of 100 pulls are left.
    Low,
    /// The first `n` requests get 429 with `Retry-After: 1`.
    RetryAfter(u32),
    /// Every request gets 429 without `Retry-After`: the quota is gone.
    Exhausted,
}

struct Proxy {
    upstream: String,
    quota: Quota,
    seen: AtomicU32,
    throttled: AtomicU32,
    http: reqwest::Client,
}

/// Starts the proxy on a free port; returns its `127.0.0.1:PORT` and the count of 429s it sent.
fn start_proxy(quota: Quota) -> (String, Arc<Proxy>) {
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
        Quota::Low => false,
    };
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
    let body = axum::body::to_bytes(body, 1 << 20).await.unwrap();
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

/// A released [`Fixture::single`] whose working release.yaml reads the registry through `proxy`.
fn released_behind(tag: &str, proxy: &str) -> Fixture {
    let f = Fixture::single(tag);
    f.tag("v1.0.0");
    f.relctl(&["release", "v1.0.0"]).expect(0);
    git(&f.work, &["pull", "-q", "--ff-only", "origin", "main"]);
    let cfg = std::fs::read_to_string(f.work.join("release.yaml")).unwrap().replace(&f.registry, proxy);
    f.write("release.yaml", &cfg);
    f
}

#[test]
fn a_low_quota_shows_in_metrics_and_is_warned_about_once() {
    let (addr, _) = start_proxy(Quota::Low);
    let f = released_behind("quota-low", &addr);
    let server = Server::start(&f, &["--interval", "1s", "--no-webhook"], &[]);
    server.wait_reconciles(2, Duration::from_secs(30));
    let (status, metrics) = curl(&[&format!("{}/metrics", server.base)]);
    assert_eq!(status, 200);
    assert!(metrics.contains("relctl_registry_ratelimit_limit 100"), "{metrics}");
    assert!(metrics.contains("relctl_registry_ratelimit_remaining 5"), "{metrics}");
    let log = server.log();
    assert_eq!(log.matches("5 of 100 pulls left").count(), 1, "one warning: {log}");
}

#[test]
fn a_429_is_waited_out_as_retry_after_says_and_a_gone_quota_is_named() {
    let (addr, proxy) = start_proxy(Quota::RetryAfter(2));
    let f = released_behind("quota-wait", &addr);
    let run = f.relctl(&["verify", "v1.0.0"]).expect(0);
    assert_eq!(proxy.throttled.load(Ordering::SeqCst), 2);
    assert_eq!(run.stderr().matches("registry asked to retry").count(), 2, "{}", run.stderr());
    assert!(run.stderr().contains("wait_ms=1000"), "Retry-After: 1 was waited: {}", run.stderr());

    let (addr, proxy) = start_proxy(Quota::Exhausted);
    let cfg = std::fs::read_to_string(f.work.join("release.yaml")).unwrap();
    let old = cfg.lines().find(|l| l.starts_with("registry: ")).unwrap().to_string();
    f.write("release.yaml", &cfg.replace(&old, &format!("registry: {addr}")));
    let run = f.relctl(&["verify", "v1.0.0"]).expect(1);
    let err = run.stderr();
    assert!(err.contains("the pull quota is used up"), "{err}");
    assert!(err.contains("authenticate"), "the hint says how to raise it: {err}");
    assert!(proxy.throttled.load(Ordering::SeqCst) <= 4, "bounded retries");
}
