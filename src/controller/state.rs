//! What the controller knows about itself, for `relctl serve`'s dashboard:
//! the last reconcile (when, how long, what it did), the run under way with
//! each image's progress, the last webhook delivery, and each tag's last
//! error with its hint. Plain data behind one mutex, updated as things happen.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use serde::{Serialize, Serializer};

use super::metrics::Webhook;
use super::reconcile::{Outcome, TagResult};
use crate::progress::{ImageState, Progress};
use crate::release::ReleaseError;

/// A wall-clock time; serialized as RFC 3339 in UTC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Time(pub SystemTime);

impl Time {
    pub fn now() -> Self {
        Self(SystemTime::now())
    }

    fn utc(self) -> time::OffsetDateTime {
        let secs = self.0.duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_secs());
        time::OffsetDateTime::from_unix_timestamp(i64::try_from(secs).unwrap_or(0))
            .unwrap_or(time::OffsetDateTime::UNIX_EPOCH)
    }

    /// `2026-01-02T09:41:07Z`.
    pub fn rfc3339(self) -> String {
        let t = self.utc();
        format!(
            "{}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
            t.year(),
            t.month() as u8,
            t.day(),
            t.hour(),
            t.minute(),
            t.second()
        )
    }

    /// `2026-01-02 09:41:07 UTC`.
    pub fn readable(self) -> String {
        self.rfc3339().replacen('T', " ", 1).replace('Z', " UTC")
    }

    /// How far from `now`, as a person says it: `12 s ago`, `in 4 min`.
    pub fn relative(self, now: SystemTime) -> String {
        let (d, past) = match now.duration_since(self.0) {
            Ok(d) => (d, true),
            Err(e) => (e.duration(), false),
        };
        let s = d.as_secs();
        let amount = match s {
            0..120 => format!("{s} s"),
            120..7200 => format!("{} min", s / 60),
            7200..172_800 => format!("{} h", s / 3600),
            _ => format!("{} days", s / 86_400),
        };
        if past { format!("{amount} ago") } else { format!("in {amount}") }
    }
}

impl Serialize for Time {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.rfc3339())
    }
}

/// The last reconcile.
#[derive(Debug, Clone, Serialize)]
pub struct Reconciled {
    pub started_at: Time,
    pub finished_at: Time,
    pub duration_ms: u64,
    /// `success`, `failed` (some tags failed; the others converged) or `error` (the run itself failed).
    pub result: &'static str,
    pub in_scope: usize,
    pub released: Vec<String>,
    pub failed: Vec<String>,
    /// Why the run itself failed.
    pub error: Option<String>,
    pub hint: Option<String>,
}

/// One image of the run under way.
#[derive(Debug, Clone, Serialize)]
pub struct ImageProgress {
    pub image: String,
    pub state: String,
}

/// The reconcile under way.
#[derive(Debug, Clone, Serialize)]
pub struct Running {
    pub since: Time,
    /// Tags a webhook asked for.
    pub requested: Vec<String>,
    /// Each image's latest state in this run, in the order they first moved.
    pub images: Vec<ImageProgress>,
}

/// The last webhook delivery.
#[derive(Debug, Clone, Serialize)]
pub struct WebhookSeen {
    pub at: Time,
    /// As counted in `relctl_webhooks_total`: accepted, ignored, unauthorized, too_large, timeout, busy.
    pub outcome: &'static str,
    pub detail: String,
}

/// A tag's last failure.
#[derive(Debug, Clone, Serialize)]
pub struct TagError {
    pub tag: String,
    pub error: String,
    pub hint: Option<String>,
    pub at: Time,
}

/// The controller block of the dashboard and `/api/status`.
#[derive(Debug, Clone, Serialize)]
pub struct Snapshot {
    pub started_at: Time,
    pub last_reconcile: Option<Reconciled>,
    pub running: Option<Running>,
    pub next_run_at: Option<Time>,
    pub last_webhook: Option<WebhookSeen>,
    /// Tags whose last attempt failed, oldest first.
    pub errors: Vec<TagError>,
}

struct Inner {
    started_at: Time,
    last_reconcile: Option<Reconciled>,
    running: Option<Running>,
    last_webhook: Option<WebhookSeen>,
    errors: BTreeMap<String, TagError>,
}

/// Shared between the reconcile loop and the HTTP handlers.
pub struct ControllerState {
    inner: Mutex<Inner>,
}

impl Default for ControllerState {
    fn default() -> Self {
        Self {
            inner: Mutex::new(Inner {
                started_at: Time::now(),
                last_reconcile: None,
                running: None,
                last_webhook: None,
                errors: BTreeMap::new(),
            }),
        }
    }
}

pub fn webhook_outcome(w: Webhook) -> &'static str {
    match w {
        Webhook::Accepted => "accepted",
        Webhook::Ignored => "ignored",
        Webhook::Unauthorized => "unauthorized",
        Webhook::TooLarge => "too_large",
        Webhook::Timeout => "timeout",
        Webhook::Busy => "busy",
    }
}

impl ControllerState {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// A reconcile starts, for the tags `requested` by webhooks (if any).
    pub fn run_started(&self, requested: &BTreeSet<String>) {
        self.lock().running =
            Some(Running { since: Time::now(), requested: requested.iter().cloned().collect(), images: Vec::new() });
    }

    /// An image of the run under way changed state.
    pub fn progress(&self, image: &str, state: &ImageState) {
        let mut inner = self.lock();
        let Some(running) = inner.running.as_mut() else { return };
        let text = state.to_string();
        match running.images.iter_mut().find(|i| i.image == image) {
            Some(i) => i.state = text,
            None => running.images.push(ImageProgress { image: image.to_string(), state: text }),
        }
    }

    /// The reconcile that started at `started` ended after `took` with `result`.
    pub fn run_finished(&self, started: SystemTime, took: Duration, result: &Result<Outcome, ReleaseError>) {
        let mut inner = self.lock();
        inner.running = None;
        let now = Time::now();
        let mut done = Reconciled {
            started_at: Time(started),
            finished_at: now,
            duration_ms: u64::try_from(took.as_millis()).unwrap_or(u64::MAX),
            result: "success",
            in_scope: 0,
            released: Vec::new(),
            failed: Vec::new(),
            error: None,
            hint: None,
        };
        match result {
            Ok(o) => {
                done.in_scope = o.in_scope.len();
                done.released = o.released().iter().map(|t| t.to_string()).collect();
                done.failed = o.failed().iter().map(|t| t.tag.clone()).collect();
                if o.tags.iter().any(|t| matches!(t.result, TagResult::Failed { .. })) {
                    done.result = "failed";
                }
                for t in &o.tags {
                    match &t.result {
                        TagResult::Failed { error, hint, .. } => {
                            let e = TagError {
                                tag: t.tag.clone(),
                                error: error.clone(),
                                hint: Some(hint.clone()),
                                at: now,
                            };
                            inner.errors.insert(t.tag.clone(), e);
                        }
                        TagResult::Converged | TagResult::Released { .. } => {
                            inner.errors.remove(&t.tag);
                        }
                        TagResult::BackingOff { .. } => {}
                    }
                }
                // Tags that left the scope are no one's concern here any more.
                inner.errors.retain(|tag, _| o.in_scope.contains(tag));
            }
            Err(e) => {
                done.result = "error";
                done.error = Some(crate::chain::error_chain(e));
                done.hint = Some(e.hint());
            }
        }
        inner.last_reconcile = Some(done);
    }

    /// A webhook delivery was answered with `outcome`; `detail` says about what.
    pub fn webhook(&self, outcome: Webhook, detail: impl Into<String>) {
        let mut detail: String = detail.into();
        if detail.len() > 300 {
            let mut cut = 300;
            while !detail.is_char_boundary(cut) {
                cut -= 1;
            }
            detail.truncate(cut);
            detail.push('…');
        }
        self.lock().last_webhook = Some(WebhookSeen { at: Time::now(), outcome: webhook_outcome(outcome), detail });
    }

    /// Everything, with the next scheduled run as the loop last set it.
    pub fn snapshot(&self, next_run: Option<SystemTime>) -> Snapshot {
        let inner = self.lock();
        let mut errors: Vec<TagError> = inner.errors.values().cloned().collect();
        errors.sort_by_key(|e| e.at);
        Snapshot {
            started_at: inner.started_at,
            last_reconcile: inner.last_reconcile.clone(),
            running: inner.running.clone(),
            next_run_at: next_run.map(Time),
            last_webhook: inner.last_webhook.clone(),
            errors,
        }
    }
}

/// A [`Progress`] that also records each image's state in the controller's state.
pub struct Recording {
    pub inner: Arc<dyn Progress>,
    pub state: Arc<ControllerState>,
}

impl Progress for Recording {
    fn update(&self, image: &str, state: &ImageState) {
        self.inner.update(image, state);
        self.state.progress(image, state);
    }

    fn phase(&self, title: &str) {
        self.inner.phase(title);
    }

    fn finish(&self) {
        self.inner.finish();
    }

    fn tick(&self) {
        self.inner.tick();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_read_as_rfc3339_and_relative() {
        let t = Time(SystemTime::UNIX_EPOCH + Duration::from_secs(1_767_346_867));
        assert_eq!(t.rfc3339(), "2026-01-02T09:41:07Z");
        assert_eq!(t.readable(), "2026-01-02 09:41:07 UTC");
        let now = t.0 + Duration::from_secs(42);
        assert_eq!(t.relative(now), "42 s ago");
        assert_eq!(Time(t.0 + Duration::from_secs(300)).relative(t.0), "in 5 min");
        assert_eq!(t.relative(t.0 + Duration::from_secs(3 * 86_400)), "3 days ago");
    }

    #[test]
    fn a_failed_tag_is_kept_until_it_converges_and_progress_shows_while_running() {
        let state = ControllerState::default();
        state.run_started(&BTreeSet::from(["v1.1.0".to_string()]));
        state.progress("app", &ImageState::Building { step: 2, of: 3 });
        state.progress("app", &ImageState::Pushing { done: 0, total: 0 });
        let running = state.snapshot(None).running.unwrap();
        assert_eq!(running.requested, ["v1.1.0"]);
        assert_eq!((running.images[0].image.as_str(), running.images[0].state.as_str()), ("app", "pushing"));

        let failed = TagResult::Failed { error: "boom <b>".into(), hint: "fix it".into(), retry_in_secs: Some(60) };
        let outcome = |r: TagResult| Outcome {
            in_scope: vec!["v1.0.0".into(), "v1.1.0".into()],
            tags: vec![
                super::super::TagOutcome { tag: "v1.0.0".into(), result: TagResult::Converged },
                super::super::TagOutcome { tag: "v1.1.0".into(), result: r },
            ],
            interrupted: false,
        };
        state.run_finished(SystemTime::now(), Duration::from_millis(1500), &Ok(outcome(failed)));
        let s = state.snapshot(None);
        assert!(s.running.is_none());
        let last = s.last_reconcile.unwrap();
        assert_eq!(
            (last.result, last.duration_ms, last.failed.as_slice()),
            ("failed", 1500, &["v1.1.0".to_string()][..])
        );
        assert_eq!(s.errors.len(), 1);
        assert_eq!((s.errors[0].tag.as_str(), s.errors[0].hint.as_deref()), ("v1.1.0", Some("fix it")));

        let waiting = TagResult::BackingOff { error: "boom <b>".into(), retry_in_secs: 30 };
        state.run_finished(SystemTime::now(), Duration::ZERO, &Ok(outcome(waiting)));
        assert_eq!(state.snapshot(None).errors.len(), 1, "still failing while it backs off");
        assert_eq!(state.snapshot(None).last_reconcile.unwrap().result, "success");
        state.run_finished(
            SystemTime::now(),
            Duration::ZERO,
            &Ok(outcome(TagResult::Released { built: 1, pushed: 1 })),
        );
        assert!(state.snapshot(None).errors.is_empty());

        let err = ReleaseError::NoGitHubToken;
        state.run_finished(SystemTime::now(), Duration::ZERO, &Err(err));
        let last = state.snapshot(None).last_reconcile.unwrap();
        assert_eq!(last.result, "error");
        assert!(last.hint.is_some());
    }
}
