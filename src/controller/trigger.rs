//! The reconcile loop: one reconcile at a time, on an interval with jitter
//! and on request (webhooks), requests that arrive during a run coalesced into
//! one follow-up run, and a clean stop on shutdown after the run in flight.

use std::collections::BTreeSet;
use std::future::Future;
use std::hash::{BuildHasher, Hasher};
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use tokio::sync::{Notify, watch};

/// Requests for a reconcile, with the tags they name.
#[derive(Default)]
pub struct Trigger {
    pending: Mutex<Option<BTreeSet<String>>>,
    notify: Notify,
    /// When the loop, idle, runs next on its interval.
    next: Mutex<Option<SystemTime>>,
}

impl Trigger {
    /// Asks for a reconcile, of `tag` in particular when given.
    pub fn request(&self, tag: Option<String>) {
        self.pending.lock().expect("trigger").get_or_insert_default().extend(tag);
        self.notify.notify_waiters();
    }

    fn take(&self) -> Option<BTreeSet<String>> {
        self.pending.lock().expect("trigger").take()
    }

    /// When the next scheduled run is due; `None` while a run is under way or without an interval.
    pub fn next_run(&self) -> Option<SystemTime> {
        *self.next.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn set_next(&self, at: Option<SystemTime>) {
        *self.next.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = at;
    }
}

/// A shutdown flag set once by a signal (or a test).
#[derive(Clone)]
pub struct Shutdown(watch::Receiver<bool>);

impl Shutdown {
    pub fn new() -> (watch::Sender<bool>, Self) {
        let (tx, rx) = watch::channel(false);
        (tx, Self(rx))
    }

    /// Set on SIGINT or SIGTERM.
    pub fn on_signals() -> Self {
        let (tx, shutdown) = Self::new();
        tokio::spawn(async move {
            let mut term =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).expect("SIGTERM handler");
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            tracing::info!("shutting down after the work in flight");
            let _ = tx.send(true);
        });
        shutdown
    }

    pub fn is_set(&self) -> bool {
        *self.0.borrow()
    }

    pub async fn wait(&mut self) {
        let _ = self.0.wait_for(|set| *set).await;
    }
}

/// `d` ± 10 %, so many controllers started together do not hit the registry together.
pub fn jitter(d: Duration) -> Duration {
    let r = std::collections::hash_map::RandomState::new().build_hasher().finish();
    let factor = 0.9 + (r % 10_000) as f64 / 10_000.0 * 0.2;
    d.mul_f64(factor)
}

/// Runs `run` now, then after every `interval` (if any) and every request,
/// until shutdown. `run` gets the tags requested since the last run.
pub async fn run_loop<F, Fut>(interval: Option<Duration>, trigger: &Trigger, mut shutdown: Shutdown, mut run: F)
where
    F: FnMut(BTreeSet<String>) -> Fut,
    Fut: Future<Output = ()>,
{
    let mut tags = trigger.take().unwrap_or_default();
    loop {
        run(tags).await;
        if shutdown.is_set() {
            return;
        }
        let notified = trigger.notify.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        // Everything requested while that run was under way becomes one follow-up run.
        if let Some(pending) = trigger.take() {
            tags = pending;
            continue;
        }
        let wait = interval.map(jitter);
        trigger.set_next(wait.map(|w| SystemTime::now() + w));
        let tick = async {
            match wait {
                Some(w) => tokio::time::sleep(w).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = tick => {}
            _ = &mut notified => {}
            _ = shutdown.wait() => return,
        }
        trigger.set_next(None);
        tags = trigger.take().unwrap_or_default();
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use tokio::time::{Instant, advance};

    use super::*;

    #[test]
    fn jitter_stays_within_ten_percent() {
        for _ in 0..1000 {
            let j = jitter(Duration::from_secs(300)).as_secs_f64();
            assert!((270.0..=330.0).contains(&j), "{j}");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn runs_at_start_and_on_the_interval() {
        let (_tx, shutdown) = Shutdown::new();
        let trigger = Trigger::default();
        let runs = Arc::new(Mutex::new(Vec::new()));
        let start = Instant::now();
        let r = runs.clone();
        let looped = run_loop(Some(Duration::from_secs(300)), &trigger, shutdown, move |_| {
            r.lock().unwrap().push(start.elapsed());
            async {}
        });
        tokio::select! {
            _ = looped => panic!("the loop ended"),
            _ = tokio::time::sleep(Duration::from_secs(1000)) => {}
        }
        let runs = runs.lock().unwrap().clone();
        assert_eq!(runs[0], Duration::ZERO);
        assert!(runs.len() >= 3 && runs.len() <= 4, "{runs:?}");
        for w in runs.windows(2) {
            let gap = (w[1] - w[0]).as_secs_f64();
            assert!((270.0..=330.0).contains(&gap), "{gap}");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn requests_during_a_run_coalesce_into_one_follow_up() {
        let (_tx, shutdown) = Shutdown::new();
        let trigger = Arc::new(Trigger::default());
        let runs: Arc<Mutex<Vec<BTreeSet<String>>>> = Arc::default();
        let (t, r) = (trigger.clone(), runs.clone());
        let looped = run_loop(None, &trigger, shutdown, move |tags| {
            r.lock().unwrap().push(tags);
            let first = r.lock().unwrap().len() == 1;
            let t = t.clone();
            async move {
                if first {
                    // Ten webhooks arrive while the first reconcile runs.
                    for i in 0..10 {
                        t.request(Some(format!("v1.0.{i}")));
                        tokio::time::sleep(Duration::from_secs(1)).await;
                    }
                }
            }
        });
        tokio::select! {
            _ = looped => panic!("the loop ended"),
            _ = tokio::time::sleep(Duration::from_secs(3600)) => {}
        }
        let runs = runs.lock().unwrap().clone();
        assert_eq!(runs.len(), 2, "one follow-up run, not ten: {runs:?}");
        assert!(runs[0].is_empty());
        assert_eq!(runs[1].len(), 10);
        // And a request after the loop went idle wakes it at once.
    }

    #[tokio::test(start_paused = true)]
    async fn an_idle_loop_wakes_on_request_and_stops_on_shutdown() {
        let (tx, shutdown) = Shutdown::new();
        let trigger = Arc::new(Trigger::default());
        let runs: Arc<Mutex<Vec<BTreeSet<String>>>> = Arc::default();
        let r = runs.clone();
        let t = trigger.clone();
        let driver = async move {
            advance(Duration::from_secs(10)).await;
            t.request(Some("v2.0.0".into()));
            tokio::time::sleep(Duration::from_secs(10)).await;
            tx.send(true).unwrap();
        };
        let looped = run_loop(None, &trigger, shutdown, move |tags| {
            r.lock().unwrap().push(tags);
            async {}
        });
        tokio::join!(looped, driver);
        let runs = runs.lock().unwrap().clone();
        assert_eq!(runs, [BTreeSet::new(), BTreeSet::from(["v2.0.0".to_string()])]);
    }

    #[tokio::test(start_paused = true)]
    async fn shutdown_during_a_run_lets_it_finish() {
        let (tx, shutdown) = Shutdown::new();
        let trigger = Trigger::default();
        let finished = Arc::new(Mutex::new(0));
        let f = finished.clone();
        let tx = Arc::new(tx);
        let looped = run_loop(Some(Duration::from_secs(60)), &trigger, shutdown, move |_| {
            let (f, tx) = (f.clone(), tx.clone());
            async move {
                tx.send(true).unwrap();
                tokio::time::sleep(Duration::from_secs(30)).await;
                *f.lock().unwrap() += 1;
            }
        });
        tokio::time::timeout(Duration::from_secs(120), looped).await.expect("the loop stops");
        assert_eq!(*finished.lock().unwrap(), 1, "the run in flight finished; no new one started");
    }
}
