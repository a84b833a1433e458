//! The controller's counters, rendered in the Prometheus text format for
//! `GET /metrics`. A handful of atomics; no metrics framework needed.

use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::notify::Counters;

const BUCKETS: [f64; 10] = [0.1, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0];

#[derive(Debug, Clone, Copy)]
pub enum Webhook {
    Accepted,
    Ignored,
    Unauthorized,
    TooLarge,
    /// The body did not arrive within the body timeout (408).
    Timeout,
    /// Too many bodies were being read already (503).
    Busy,
}

#[derive(Default)]
pub struct Metrics {
    reconciles_ok: AtomicU64,
    reconciles_err: AtomicU64,
    last_success: AtomicU64,
    releases: AtomicU64,
    builds: AtomicU64,
    pushes: AtomicU64,
    registry_requests: AtomicU64,
    webhooks: [AtomicU64; 6],
    /// Tags reconciled, by result: converged, released, failed, backing off.
    tags: [AtomicU64; 4],
    connections_open: AtomicU64,
    /// The registry's pull quota (`u64::MAX` until it reports one).
    ratelimit_limit: AtomicU64,
    ratelimit_remaining: AtomicU64,
    connections_refused: AtomicU64,
    duration: Mutex<(Vec<u64>, f64, u64)>,
    /// Notifications delivered and given up on; shared with the notifier.
    pub notifications: Arc<Counters>,
}

impl Metrics {
    pub fn new() -> Self {
        Self { duration: Mutex::new((vec![0; BUCKETS.len()], 0.0, 0)), ..Default::default() }
    }

    /// Records a finished reconcile and what it did.
    pub fn reconciled(&self, ok: bool, took: Duration, releases: u64, builds: u64, pushes: u64) {
        if ok {
            self.reconciles_ok.fetch_add(1, Ordering::Relaxed);
            let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
            self.last_success.store(now.as_secs(), Ordering::Relaxed);
        } else {
            self.reconciles_err.fetch_add(1, Ordering::Relaxed);
        }
        self.releases.fetch_add(releases, Ordering::Relaxed);
        self.builds.fetch_add(builds, Ordering::Relaxed);
        self.pushes.fetch_add(pushes, Ordering::Relaxed);
        let secs = took.as_secs_f64();
        let mut d = self.duration.lock().expect("histogram");
        for (i, le) in BUCKETS.iter().enumerate() {
            if secs <= *le {
                d.0[i] += 1;
            }
        }
        d.1 += secs;
        d.2 += 1;
    }

    /// Counts one tag's outcome in a reconcile.
    pub fn tag_outcome(&self, result: &super::TagResult) {
        use super::TagResult::*;
        let i = match result {
            Converged => 0,
            Released { .. } => 1,
            Failed { .. } => 2,
            BackingOff { .. } => 3,
        };
        self.tags[i].fetch_add(1, Ordering::Relaxed);
    }

    /// The registry's pull quota, as its last answer told it.
    pub fn rate_limit(&self, limit: u64, remaining: u64) {
        self.ratelimit_limit.store(limit, Ordering::Relaxed);
        self.ratelimit_remaining.store(remaining, Ordering::Relaxed);
    }

    pub fn registry_requests(&self, total: u64) {
        self.registry_requests.store(total, Ordering::Relaxed);
    }

    pub fn webhook(&self, outcome: Webhook) {
        self.webhooks[outcome as usize].fetch_add(1, Ordering::Relaxed);
    }

    /// An HTTP connection was accepted (`true`) or closed (`false`).
    pub fn connection(&self, opened: bool) {
        if opened {
            self.connections_open.fetch_add(1, Ordering::Relaxed);
        } else {
            self.connections_open.fetch_sub(1, Ordering::Relaxed);
        }
    }

    /// An HTTP connection was closed at once because the connection cap was reached.
    pub fn connection_refused(&self) {
        self.connections_refused.fetch_add(1, Ordering::Relaxed);
    }

    pub fn render(&self) -> String {
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let mut out = String::new();
        let mut metric = |name: &str, kind: &str, help: &str, samples: &[(&str, u64)]| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
            for (labels, v) in samples {
                let _ = writeln!(out, "{name}{labels} {v}");
            }
        };
        metric(
            "relctl_reconciles_total",
            "counter",
            "Reconcile runs by result.",
            &[("{result=\"success\"}", get(&self.reconciles_ok)), ("{result=\"error\"}", get(&self.reconciles_err))],
        );
        if get(&self.ratelimit_limit) > 0 && get(&self.ratelimit_limit) != u64::MAX {
            metric(
                "relctl_registry_ratelimit_limit",
                "gauge",
                "Pulls the registry allows in its quota window (Docker Hub's ratelimit-limit).",
                &[("", get(&self.ratelimit_limit))],
            );
            metric(
                "relctl_registry_ratelimit_remaining",
                "gauge",
                "Pulls left in the registry's quota window (ratelimit-remaining).",
                &[("", get(&self.ratelimit_remaining))],
            );
        }
        metric(
            "relctl_reconcile_tags_total",
            "counter",
            "Release tags looked at by reconciles, by result.",
            &[
                ("{result=\"converged\"}", get(&self.tags[0])),
                ("{result=\"released\"}", get(&self.tags[1])),
                ("{result=\"failed\"}", get(&self.tags[2])),
                ("{result=\"backing_off\"}", get(&self.tags[3])),
            ],
        );
        metric(
            "relctl_last_success_timestamp_seconds",
            "gauge",
            "Unix time of the last successful reconcile.",
            &[("", get(&self.last_success))],
        );
        metric("relctl_releases_total", "counter", "Releases that changed something.", &[("", get(&self.releases))]);
        metric("relctl_image_builds_total", "counter", "Images built.", &[("", get(&self.builds))]);
        metric("relctl_image_pushes_total", "counter", "Images given version tags.", &[("", get(&self.pushes))]);
        metric(
            "relctl_registry_requests_total",
            "counter",
            "HTTP requests sent to the registry API.",
            &[("", get(&self.registry_requests))],
        );
        metric(
            "relctl_webhooks_total",
            "counter",
            "Webhook deliveries by outcome.",
            &[
                ("{outcome=\"accepted\"}", get(&self.webhooks[0])),
                ("{outcome=\"ignored\"}", get(&self.webhooks[1])),
                ("{outcome=\"unauthorized\"}", get(&self.webhooks[2])),
                ("{outcome=\"too_large\"}", get(&self.webhooks[3])),
                ("{outcome=\"timeout\"}", get(&self.webhooks[4])),
                ("{outcome=\"busy\"}", get(&self.webhooks[5])),
            ],
        );
        metric(
            "relctl_notifications_sent_total",
            "counter",
            "Notifications delivered to a notify: webhook.",
            &[("", get(&self.notifications.sent))],
        );
        metric(
            "relctl_notifications_failed_total",
            "counter",
            "Notifications given up on after their retries.",
            &[("", get(&self.notifications.failed))],
        );
        metric("relctl_http_connections", "gauge", "Open HTTP connections.", &[("", get(&self.connections_open))]);
        metric(
            "relctl_http_connections_refused_total",
            "counter",
            "HTTP connections closed at once because the connection cap was reached.",
            &[("", get(&self.connections_refused))],
        );
        let d = self.duration.lock().expect("histogram");
        let name = "relctl_reconcile_duration_seconds";
        let _ = writeln!(out, "# HELP {name} Reconcile duration.\n# TYPE {name} histogram");
        for (i, le) in BUCKETS.iter().enumerate() {
            let _ = writeln!(out, "{name}_bucket{{le=\"{le}\"}} {}", d.0[i]);
        }
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {}\n{name}_sum {}\n{name}_count {}", d.2, d.1, d.2);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counts_and_histogram() {
        let m = Metrics::new();
        m.reconciled(true, Duration::from_millis(300), 1, 5, 5);
        m.reconciled(false, Duration::from_secs(20), 0, 0, 0);
        m.webhook(Webhook::Unauthorized);
        m.webhook(Webhook::Busy);
        m.connection(true);
        m.connection(true);
        m.connection(false);
        m.connection_refused();
        m.notifications.failed.fetch_add(2, Ordering::Relaxed);
        let text = m.render();
        for line in [
            "relctl_reconciles_total{result=\"success\"} 1",
            "relctl_reconciles_total{result=\"error\"} 1",
            "relctl_image_builds_total 5",
            "relctl_webhooks_total{outcome=\"unauthorized\"} 1",
            "relctl_webhooks_total{outcome=\"timeout\"} 0",
            "relctl_webhooks_total{outcome=\"busy\"} 1",
            "relctl_http_connections 1",
            "relctl_http_connections_refused_total 1",
            "relctl_notifications_sent_total 0",
            "relctl_notifications_failed_total 2",
            "relctl_reconcile_duration_seconds_bucket{le=\"0.5\"} 1",
            "relctl_reconcile_duration_seconds_bucket{le=\"30\"} 2",
            "relctl_reconcile_duration_seconds_count 2",
        ] {
            assert!(text.lines().any(|l| l == line), "missing {line}:\n{text}");
        }
    }
}
