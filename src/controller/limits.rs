//! The limits `relctl serve` puts on its HTTP clients: how many connections,
//! how long a request head, a webhook body or a response write may take, and
//! how many webhook bodies of what size are read at once.

use std::time::Duration;

/// Largest webhook body read (GitHub caps payloads at 25 MB, but push and create events are a few KB).
pub const MAX_BODY: usize = 1024 * 1024;

/// What `serve` allows its clients.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Open connections; one more is closed as soon as it is accepted.
    pub max_connections: usize,
    /// Time for a request's head to arrive, also between keep-alive requests.
    pub header_timeout: Duration,
    /// Time for a webhook body to arrive, counted from when its reading starts.
    pub body_timeout: Duration,
    /// Time a response write may wait for the client to read.
    pub write_timeout: Duration,
    /// Webhook bodies read at the same time; more wait a little, then get 503.
    pub concurrent_bodies: usize,
    pub max_body: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            // An open connection costs ~14 KiB (1,100 slow-header connections: +15 MB RSS), so the
            // cap is generous (~56 MB at worst): slow clients are cut by the timeouts before it fills.
            max_connections: 4096,
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(10),
            write_timeout: Duration::from_secs(10),
            concurrent_bodies: 4,
            max_body: MAX_BODY,
        }
    }
}

impl Limits {
    /// The defaults, with hidden overrides for tests: `RELCTL_SERVE_HEADER_TIMEOUT_MS`,
    /// `RELCTL_SERVE_BODY_TIMEOUT_MS`, `RELCTL_SERVE_WRITE_TIMEOUT_MS` and `RELCTL_SERVE_MAX_CONNECTIONS`.
    pub fn from_env() -> Self {
        let var = |name: &str| -> Option<u64> {
            let value = std::env::var(name).ok()?;
            let parsed = value.trim().parse().ok().filter(|n| *n > 0);
            if parsed.is_none() {
                tracing::warn!("ignoring {name}={value:?}: not a positive whole number");
            }
            parsed
        };
        let mut limits = Self::default();
        if let Some(ms) = var("RELCTL_SERVE_HEADER_TIMEOUT_MS") {
            limits.header_timeout = Duration::from_millis(ms);
        }
        if let Some(ms) = var("RELCTL_SERVE_BODY_TIMEOUT_MS") {
            limits.body_timeout = Duration::from_millis(ms);
        }
        if let Some(ms) = var("RELCTL_SERVE_WRITE_TIMEOUT_MS") {
            limits.write_timeout = Duration::from_millis(ms);
        }
        if let Some(n) = var("RELCTL_SERVE_MAX_CONNECTIONS") {
            limits.max_connections = n.min(1 << 20) as usize;
        }
        limits
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_default_to_ten_second_timeouts_and_a_one_mib_body() {
        let l = Limits::default();
        assert_eq!(
            (l.header_timeout, l.body_timeout, l.write_timeout),
            (Duration::from_secs(10), Duration::from_secs(10), Duration::from_secs(10))
        );
        assert_eq!((l.max_body, l.concurrent_bodies, l.max_connections), (1024 * 1024, 4, 4096));
    }
}
