//! Per-image progress of a release: the states an image goes through
//! (queued, building step n/m, pushing x MB, retagged, done), the
//! [`Progress`] sink the executor and the Docker adapter report them to, and
//! [`LogProgress`], which writes each change as one plain log line. The
//! terminal renderer (live lines with indicatif) lives in the CLI.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Where one image of a release stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImageState {
    /// Waiting for a build slot or for its parents.
    Queued,
    /// The daemon runs Dockerfile step `step` of `of` (0 of 0: starting).
    Building {
        step: u32,
        of: u32,
    },
    /// Uploading layers: `done` of `total` bytes known so far.
    Pushing {
        done: u64,
        total: u64,
    },
    /// Downloading layers (`relctl pin --pull`, `relctl export`).
    Pulling {
        done: u64,
        total: u64,
    },
    /// Writing its `docker save` tar: `done` bytes so far.
    Saving {
        done: u64,
    },
    /// Uploaded under its staging tag; waits for the other builds.
    Staged {
        digest: String,
    },
    /// Its manifest got this release's tags from an earlier release, by copy.
    Retagged {
        from: String,
    },
    /// Already carries this release; nothing to do.
    Published,
    /// Carries every version tag of the release.
    Done {
        tags: Vec<String>,
        digest: String,
    },
    Failed {
        reason: String,
    },
}

impl ImageState {
    /// Final states: the image will not change again in this release.
    pub fn is_final(&self) -> bool {
        matches!(self, ImageState::Done { .. } | ImageState::Published | ImageState::Failed { .. })
    }
}

/// `sha256:0123456789ab`: enough of a digest to recognise it.
pub fn short_digest(digest: &str) -> &str {
    &digest[..digest.len().min("sha256:".len() + 12)]
}

/// A byte count as people read it: `512 B`, `34 kB`, `12.3 MB`, `1.20 GB`.
fn size(bytes: u64) -> String {
    match bytes {
        0..1_000 => format!("{bytes} B"),
        1_000..1_000_000 => format!("{} kB", bytes / 1_000),
        1_000_000..1_000_000_000 => format!("{:.1} MB", bytes as f64 / 1e6),
        _ => format!("{:.2} GB", bytes as f64 / 1e9),
    }
}

impl fmt::Display for ImageState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ImageState::Queued => write!(f, "queued"),
            ImageState::Building { step: 0, .. } => write!(f, "building"),
            ImageState::Building { step, of } => write!(f, "building step {step}/{of}"),
            ImageState::Pushing { done: 0, total: 0 } => write!(f, "pushing"),
            ImageState::Pushing { done, total: 0 } => write!(f, "pushing {}", size(*done)),
            ImageState::Pushing { done, total } => write!(f, "pushing {} of {}", size(*done), size(*total)),
            ImageState::Pulling { done: 0, total: 0 } => write!(f, "pulling"),
            ImageState::Pulling { done, total } => write!(f, "pulling {} of {}", size(*done), size(*total)),
            ImageState::Saving { done } => write!(f, "saving {}", size(*done)),
            ImageState::Staged { digest } => {
                write!(f, "uploaded {}, waiting for the other builds", short_digest(digest))
            }
            ImageState::Retagged { from } => write!(f, "retagged (unchanged since {from})"),
            ImageState::Published => write!(f, "skip (already released)"),
            ImageState::Done { tags, digest } => write!(f, "done {} {}", tags.join(", "), short_digest(digest)),
            ImageState::Failed { reason } => write!(f, "failed: {reason}"),
        }
    }
}

/// Receives every state change of every image. Implementations must be cheap:
/// the Docker adapter calls this for each progress message of a push.
pub trait Progress: Send + Sync {
    fn update(&self, image: &str, state: &ImageState);
    /// A phase of the release begins (`phase 1/5: build`).
    fn phase(&self, _title: &str) {}
    /// The release ended, done or failed.
    fn finish(&self) {}
    /// Called every [`LOG_EVERY`] while a release runs, whether or not anything changed.
    fn tick(&self) {}
}

/// A shared progress sink.
pub type ProgressSink = Arc<dyn Progress>;

/// Reports nothing.
pub struct NoProgress;

impl Progress for NoProgress {
    fn update(&self, _: &str, _: &ImageState) {}
}

/// How often a long build or push repeats its line in a log.
pub const LOG_EVERY: Duration = Duration::from_secs(5);

/// How often an image whose state has not changed says it is still at it.
const STILL_EVERY: Duration = Duration::from_secs(30);

/// One `info` log line per change of state. Build steps and byte counts are
/// logged when the build or push starts and then at most every 5 s, so a
/// CI log shows a long build moving without a line per Dockerfile step.
#[derive(Default)]
pub struct LogProgress {
    last: Mutex<HashMap<String, (ImageState, Instant)>>,
}

impl LogProgress {
    /// Whether `state` is worth a line, `since` the last line `last`.
    fn worth_a_line(last: Option<&ImageState>, since: Duration, state: &ImageState) -> bool {
        match (last, state) {
            (
                Some(l),
                ImageState::Building { .. }
                | ImageState::Pushing { .. }
                | ImageState::Pulling { .. }
                | ImageState::Saving { .. },
            ) if std::mem::discriminant(l) == std::mem::discriminant(state) => since >= LOG_EVERY && l != state,
            (Some(l), s) => l != s,
            (None, _) => true,
        }
    }
}

impl LogProgress {
    /// Whether an image `quiet` since its last line should say it is still at `state`.
    fn still_at_it(state: &ImageState, quiet: Duration) -> bool {
        let busy = matches!(
            state,
            ImageState::Building { .. }
                | ImageState::Pushing { .. }
                | ImageState::Pulling { .. }
                | ImageState::Saving { .. }
        );
        busy && quiet >= STILL_EVERY
    }
}

impl Progress for LogProgress {
    fn update(&self, image: &str, state: &ImageState) {
        let mut last = self.last.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let now = Instant::now();
        let previous = last.get(image);
        let since = previous.map_or(Duration::MAX, |(_, at)| now.duration_since(*at));
        if Self::worth_a_line(previous.map(|(s, _)| s), since, state) {
            match state {
                ImageState::Failed { .. } => tracing::warn!("{image}: {state}"),
                _ => tracing::info!("{image}: {state}"),
            }
            last.insert(image.to_string(), (state.clone(), now));
        }
    }

    /// A build or push that reports nothing (a silent `RUN`, a stuck upload)
    /// still gets a line every 30 s, so a log never looks hung.
    fn tick(&self) {
        let mut last = self.last.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let now = Instant::now();
        for (image, (state, at)) in last.iter_mut() {
            let quiet = now.duration_since(*at);
            if Self::still_at_it(state, quiet) {
                tracing::info!("{image}: {state} (no news for {}s)", quiet.as_secs());
                *at = now;
            }
        }
    }
}

/// Parses the classic builder's `Step 3/7 : RUN ...` line into (3, 7).
pub fn build_step(line: &str) -> Option<(u32, u32)> {
    let rest = line.strip_prefix("Step ")?;
    let (fraction, _) = rest.split_once(' ')?;
    let (n, of) = fraction.split_once('/')?;
    Some((n.parse().ok()?, of.parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_read_as_the_user_sees_them() {
        let d = "sha256:0123456789abcdef0123";
        let cases = [
            (ImageState::Queued, "queued"),
            (ImageState::Building { step: 0, of: 0 }, "building"),
            (ImageState::Building { step: 3, of: 7 }, "building step 3/7"),
            (ImageState::Pushing { done: 12_345_678, total: 20_971_520 }, "pushing 12.3 MB of 21.0 MB"),
            (ImageState::Pushing { done: 1_000_000, total: 0 }, "pushing 1.0 MB"),
            (ImageState::Pushing { done: 0, total: 32_000 }, "pushing 0 B of 32 kB"),
            (ImageState::Pulling { done: 0, total: 0 }, "pulling"),
            (ImageState::Staged { digest: d.into() }, "uploaded sha256:0123456789ab, waiting for the other builds"),
            (ImageState::Retagged { from: "v1.1.0".into() }, "retagged (unchanged since v1.1.0)"),
            (ImageState::Published, "skip (already released)"),
            (
                ImageState::Done { tags: vec!["v1.2.0".into(), "1.2".into()], digest: d.into() },
                "done v1.2.0, 1.2 sha256:0123456789ab",
            ),
            (ImageState::Failed { reason: "exit 3".into() }, "failed: exit 3"),
        ];
        for (state, text) in cases {
            assert_eq!(state.to_string(), text);
        }
    }

    #[test]
    fn log_lines_on_changes_and_every_5_s_during_builds_and_pushes() {
        let push = |mb: u64| ImageState::Pushing { done: mb * 1_000_000, total: 10_000_000 };
        let step = |step| ImageState::Building { step, of: 3 };
        // (state, seconds since the previous update)
        let seq = [
            (ImageState::Queued, 0),
            (step(0), 1),
            (step(1), 1),
            (step(2), 6),
            (step(3), 1),
            (push(0), 1),
            (push(5), 1),
            (push(9), 7),
            (ImageState::Staged { digest: "sha256:1".into() }, 0),
        ];
        let (mut last, mut since) = (None::<ImageState>, Duration::ZERO);
        let mut logged = Vec::new();
        for (s, secs) in seq {
            since += Duration::from_secs(secs);
            if LogProgress::worth_a_line(last.as_ref(), since, &s) {
                logged.push(s.to_string());
                (last, since) = (Some(s), Duration::ZERO);
            }
        }
        let expected = [
            "queued",
            "building",
            "building step 2/3",
            "pushing 0 B of 10.0 MB",
            "pushing 9.0 MB of 10.0 MB",
            "uploaded sha256:1, waiting for the other builds",
        ];
        assert_eq!(logged, expected);
    }

    #[test]
    fn a_silent_build_or_push_still_gets_a_line_every_30_s() {
        let secs = Duration::from_secs;
        let pushing = ImageState::Pushing { done: 1, total: 2 };
        assert!(!LogProgress::still_at_it(&pushing, secs(29)));
        assert!(LogProgress::still_at_it(&pushing, secs(30)));
        assert!(LogProgress::still_at_it(&ImageState::Building { step: 2, of: 3 }, secs(31)));
        for settled in [ImageState::Queued, ImageState::Published, ImageState::Staged { digest: "d".into() }] {
            assert!(!LogProgress::still_at_it(&settled, secs(3600)), "{settled}");
        }
    }

    #[test]
    fn classic_builder_steps_are_parsed() {
        assert_eq!(build_step("Step 3/7 : RUN make"), Some((3, 7)));
        assert_eq!(build_step("Step 12/12 : LABEL a=b"), Some((12, 12)));
        assert_eq!(build_step(" ---> Running in 5f"), None);
        assert_eq!(build_step("Step x/7 : RUN"), None);
    }
}
