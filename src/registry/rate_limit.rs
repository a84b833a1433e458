//! Docker Hub's pull quota in sight: the `ratelimit-limit` and
//! `ratelimit-remaining` headers (`100;w=3600`: 100 pulls an hour) of every
//! answer, kept for `/metrics`, with one warning when less than 10 % is left.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use reqwest::header::HeaderMap;

/// The last quota a registry reported; `u64::MAX` while none was.
pub struct RateLimit {
    limit: AtomicU64,
    remaining: AtomicU64,
    warned: AtomicBool,
}

impl Default for RateLimit {
    fn default() -> Self {
        Self { limit: AtomicU64::new(u64::MAX), remaining: AtomicU64::new(u64::MAX), warned: AtomicBool::new(false) }
    }
}

/// `100;w=3600` -> 100.
fn count(headers: &HeaderMap, name: &str) -> Option<u64> {
    headers.get(name)?.to_str().ok()?.split(';').next()?.trim().parse().ok()
}

impl RateLimit {
    /// Reads an answer's headers; warns once when under 10 % of the quota is left.
    pub fn observe(&self, headers: &HeaderMap, registry: &str) {
        let (Some(limit), Some(remaining)) = (count(headers, "ratelimit-limit"), count(headers, "ratelimit-remaining"))
        else {
            return;
        };
        self.limit.store(limit, Ordering::Relaxed);
        self.remaining.store(remaining, Ordering::Relaxed);
        if remaining * 10 < limit && !self.warned.swap(true, Ordering::Relaxed) {
            tracing::warn!(
                "registry {registry}: {remaining} of {limit} pulls left in the quota's window; authenticate or raise the plan before it runs out"
            );
        }
    }

    /// (limit, remaining), once the registry reported them.
    pub fn get(&self) -> Option<(u64, u64)> {
        let (limit, remaining) = (self.limit.load(Ordering::Relaxed), self.remaining.load(Ordering::Relaxed));
        (limit != u64::MAX).then_some((limit, remaining))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_hub_headers_are_read_and_absent_ones_leave_it_unknown() {
        let r = RateLimit::default();
        assert_eq!(r.get(), None);
        let mut h = HeaderMap::new();
        h.insert("ratelimit-limit", "100;w=21600".parse().unwrap());
        h.insert("ratelimit-remaining", "7;w=21600".parse().unwrap());
        r.observe(&h, "docker.io");
        assert_eq!(r.get(), Some((100, 7)));
        r.observe(&HeaderMap::new(), "docker.io");
        assert_eq!(r.get(), Some((100, 7)), "an answer without the headers changes nothing");
    }
}
