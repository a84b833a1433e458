//! The limits `relctl serve` puts on its HTTP clients: how many webhook bodies
//! of what size are read at once, and how long one may take.

use std::time::Duration;

/// Largest webhook body read (GitHub caps payloads at 25 MB, but push and create events are a few KB).
pub const MAX_BODY: usize = 1024 * 1024;

/// What `serve` allows its clients.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Time for a webhook body to arrive, counted from when its reading starts.
    pub body_timeout: Duration,
    /// Webhook bodies read at the same time; more wait a little, then get 503.
    pub concurrent_bodies: usize,
    pub max_body: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self { body_timeout: Duration::from_secs(10), concurrent_bodies: 4, max_body: MAX_BODY }
    }
}

impl Limits {
    /// The defaults, with a hidden override for tests: `RELCTL_SERVE_BODY_TIMEOUT_MS`.
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
        if let Some(ms) = var("RELCTL_SERVE_BODY_TIMEOUT_MS") {
            limits.body_timeout = Duration::from_millis(ms);
        }
        limits
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_default_to_a_ten_second_body_timeout_and_a_one_mib_body() {
        let l = Limits::default();
        assert_eq!((l.body_timeout, l.max_body, l.concurrent_bodies), (Duration::from_secs(10), 1024 * 1024, 4));
    }
}
