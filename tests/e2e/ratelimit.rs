//! Docker Hub's pull quota, played by an HTTP proxy in front of the test
//! registry: it adds `ratelimit-limit` / `ratelimit-remaining` to every
//! answer (serve's /metrics shows them and a warning is logged), or answers
//! 429 to the first requests, with or without `Retry-After`.

use std::sync::atomic::Ordering;
use std::time::Duration;

use crate::common::http_proxy::{Quota, start_proxy};
use crate::common::serve::{Server, curl};
use crate::common::*;

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
