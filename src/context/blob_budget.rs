//! A process-wide bound on the bytes of file contents held in memory while
//! build contexts are written. Small files (and a large one that cannot be
//! streamed, see `file_contents`) are read whole, and a release writes up to
//! `build.parallelism` contexts side by side: without a bound, each would
//! hold its current file at once (six 20 MB files took relctl's peak RSS to
//! about 155 MiB). A file waits until it fits in the budget; one larger than
//! the whole budget waits until it is alone.
//!
//! A writer holds its part while the engine reads the file; every engine
//! seen reads all contexts at once, even a child's whose parents still
//! build. One that read them one at a time could leave a writer waiting for
//! a part held by a context the engine does not read yet: so a writer waits
//! at most [`MAX_WAIT`], then goes on over the budget.

use std::sync::{Condvar, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// Bytes of blob contents all context writers of the process may hold at once.
pub const BLOB_BYTES: u64 = 48 << 20;

/// How long a writer waits for room before it goes on anyway.
pub const MAX_WAIT: Duration = Duration::from_secs(10);

/// The budget every context writer shares.
pub static BLOBS: Budget = Budget::new(BLOB_BYTES, MAX_WAIT);

/// A number of bytes shared by threads that each take part of it for a while.
pub struct Budget {
    limit: u64,
    max_wait: Duration,
    used: Mutex<u64>,
    freed: Condvar,
}

/// Part of a [`Budget`], given back when dropped.
#[must_use = "the bytes are given back when the permit is dropped"]
pub struct Permit<'a> {
    budget: &'a Budget,
    bytes: u64,
}

impl Budget {
    pub const fn new(limit: u64, max_wait: Duration) -> Self {
        Self { limit, max_wait, used: Mutex::new(0), freed: Condvar::new() }
    }

    /// Blocks until `bytes` (at most the whole budget) are free, and takes
    /// them; after `max_wait`, takes them even so.
    pub fn take(&self, bytes: u64) -> Permit<'_> {
        let bytes = bytes.min(self.limit);
        let deadline = Instant::now() + self.max_wait;
        let mut used = self.used.lock().unwrap_or_else(PoisonError::into_inner);
        while *used + bytes > self.limit {
            let Some(left) = deadline.checked_duration_since(Instant::now()).filter(|d| !d.is_zero()) else {
                tracing::debug!(
                    bytes,
                    used = *used,
                    "no room for a file of a build context after {:?}; reading it anyway",
                    self.max_wait
                );
                break;
            };
            used = self.freed.wait_timeout(used, left).unwrap_or_else(PoisonError::into_inner).0;
        }
        *used += bytes;
        Permit { budget: self, bytes }
    }

    /// Bytes taken now.
    #[cfg(test)]
    pub(super) fn used(&self) -> u64 {
        *self.used.lock().unwrap()
    }
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        let mut used = self.budget.used.lock().unwrap_or_else(PoisonError::into_inner);
        *used -= self.bytes;
        self.budget.freed.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc;
    use std::time::Duration;

    use super::*;

    /// Takes `bytes` of `budget` on another thread, which must still be
    /// waiting after 100 ms; then runs `free` and returns the bytes in use
    /// once the other thread has taken its part.
    fn taken_after(budget: &Budget, bytes: u64, free: impl FnOnce()) -> u64 {
        std::thread::scope(|s| {
            let (tx, rx) = mpsc::channel();
            s.spawn(move || {
                let permit = budget.take(bytes);
                tx.send(budget.used()).unwrap();
                drop(permit);
            });
            assert!(rx.recv_timeout(Duration::from_millis(100)).is_err(), "{bytes} bytes wait for room");
            free();
            rx.recv_timeout(Duration::from_secs(5)).unwrap()
        })
    }

    #[test]
    fn takes_what_fits_and_waits_for_the_rest() {
        let budget = Budget::new(100, Duration::from_secs(60));
        let a = budget.take(60);
        let b = budget.take(40);
        assert_eq!(budget.used(), 100);
        assert_eq!(taken_after(&budget, 30, || drop(b)), 90, "60 held + 30 once 40 are back");
        drop(a);
        assert_eq!(budget.used(), 0, "everything given back");
    }

    #[test]
    fn a_blob_larger_than_the_budget_waits_until_it_is_alone() {
        let budget = Budget::new(100, Duration::from_secs(60));
        let small = budget.take(1);
        assert_eq!(taken_after(&budget, 500, || drop(small)), 100, "takes the whole budget once the 1 byte is back");
    }

    #[test]
    fn a_writer_goes_on_over_the_budget_after_the_longest_wait() {
        let budget = Budget::new(100, Duration::from_millis(200));
        let held = budget.take(100);
        let started = Instant::now();
        let more = budget.take(50);
        assert!(started.elapsed() >= Duration::from_millis(200), "waited {:?}", started.elapsed());
        assert_eq!(budget.used(), 150, "over the budget rather than stuck");
        drop((held, more));
        assert_eq!(budget.used(), 0);
    }
}
