//! The reconcile loop's error policy: a tag whose reconcile failed is tried
//! again after a delay that doubles with every failure (1 min, 2 min, ... up
//! to 6 h), instead of on every tick, and is forgotten once it converges.
//! Kept in memory by the loop: a new `reconcile --once` process tries every tag.

use std::collections::BTreeMap;
use std::time::Duration;

use tokio::time::Instant;

/// One failing tag.
#[derive(Debug, Clone)]
pub struct Failing {
    pub failures: u32,
    pub retry_at: Instant,
    /// Why it failed last.
    pub error: String,
}

/// Per-tag backoff.
#[derive(Debug)]
pub struct Backoff {
    base: Duration,
    max: Duration,
    failing: BTreeMap<String, Failing>,
}

impl Default for Backoff {
    fn default() -> Self {
        Self::new(Duration::from_secs(60), Duration::from_secs(6 * 3600))
    }
}

impl Backoff {
    pub fn new(base: Duration, max: Duration) -> Self {
        Self { base, max, failing: BTreeMap::new() }
    }

    /// The delay after the `failures`-th failure in a row.
    pub fn delay(&self, failures: u32) -> Duration {
        let doubled = self.base.saturating_mul(1u32 << failures.saturating_sub(1).min(20));
        doubled.min(self.max)
    }

    /// `None` when `tag` may be tried now; else why and when it failed last.
    pub fn waiting(&self, tag: &str, now: Instant) -> Option<&Failing> {
        self.failing.get(tag).filter(|f| f.retry_at > now)
    }

    /// Records a failure of `tag`; returns how long until its next try.
    pub fn failed(&mut self, tag: &str, error: String, now: Instant) -> Duration {
        let failures = self.failing.get(tag).map_or(0, |f| f.failures) + 1;
        let delay = self.delay(failures);
        self.failing.insert(tag.to_string(), Failing { failures, retry_at: now + delay, error });
        delay
    }

    /// `tag` converged: its next failure starts from the base delay again.
    pub fn succeeded(&mut self, tag: &str) {
        self.failing.remove(tag);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_from_one_minute_up_to_six_hours() {
        let b = Backoff::default();
        let mins: Vec<u64> = (1..=12).map(|n| b.delay(n).as_secs() / 60).collect();
        assert_eq!(mins, [1, 2, 4, 8, 16, 32, 64, 128, 256, 360, 360, 360]);
        assert_eq!(b.delay(u32::MAX), Duration::from_secs(6 * 3600), "no overflow");
    }

    #[tokio::test(start_paused = true)]
    async fn a_failing_tag_waits_and_a_converged_one_is_forgotten() {
        let mut b = Backoff::default();
        let t0 = Instant::now();
        assert!(b.waiting("v1.1.0", t0).is_none());
        assert_eq!(b.failed("v1.1.0", "build failed".into(), t0), Duration::from_secs(60));
        assert_eq!(b.waiting("v1.1.0", t0 + Duration::from_secs(59)).map(|f| f.error.as_str()), Some("build failed"));
        assert!(b.waiting("v1.1.0", t0 + Duration::from_secs(60)).is_none(), "due after a minute");
        assert!(b.waiting("v1.2.0", t0).is_none(), "other tags are not held back");
        let t1 = t0 + Duration::from_secs(60);
        assert_eq!(b.failed("v1.1.0", "again".into(), t1), Duration::from_secs(120), "doubles");
        b.succeeded("v1.1.0");
        assert!(b.waiting("v1.1.0", t1).is_none());
        assert_eq!(b.failed("v1.1.0", "new".into(), t1), Duration::from_secs(60), "starts over");
    }
}
