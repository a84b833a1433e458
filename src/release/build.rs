//! Phase 1: builds every image of the plan, parents before children,
//! independent images in parallel up to `build.parallelism`, each retried up
//! to `build.retries` times with exponential backoff. The first failure stops
//! new builds; the ones in flight finish, then the error is returned.

use std::collections::BTreeSet;
use std::time::Duration;

use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;

use crate::docker::{DockerError, ImageBuilder};
use crate::git::ContextSpec;
use crate::plan::BuildStep;

/// A build that failed on every attempt.
#[derive(Debug)]
pub struct BuildFailure {
    pub attempts: u32,
    pub error: DockerError,
}

/// Delay before retry `n` (1-based): 1 s, 2 s, 4 s ... capped at 30 s.
pub fn backoff(n: u32) -> Duration {
    Duration::from_secs(1u64 << (n - 1).min(5)).min(Duration::from_secs(30))
}

async fn build_with_retries(
    builder: &impl ImageBuilder,
    step: &BuildStep,
    context: ContextSpec,
    retries: u32,
) -> Result<(), BuildFailure> {
    let attempts = retries + 1;
    let mut n = 1;
    loop {
        tracing::info!(image = %step.image, attempt = n, of = attempts, "building {}", step.reference);
        match builder.build(step, context.clone()).await {
            Ok(()) => return Ok(()),
            Err(error) if n >= attempts => return Err(BuildFailure { attempts: n, error }),
            Err(error) => {
                let wait = backoff(n);
                tracing::warn!(image = %step.image, attempt = n, of = attempts, "build failed, retrying in {}s: {error}", wait.as_secs());
                tokio::time::sleep(wait).await;
                n += 1;
            }
        }
    }
}

/// Runs all `steps` (in dependency order) respecting `depends_on` and `parallelism`.
/// `context` gives each step's build context.
pub async fn build_all(
    builder: &impl ImageBuilder,
    steps: &[&BuildStep],
    context: impl Fn(&BuildStep) -> ContextSpec,
    parallelism: usize,
    retries: u32,
) -> Result<(), BuildFailure> {
    let planned: BTreeSet<&str> = steps.iter().map(|s| s.image.as_str()).collect();
    let mut done: BTreeSet<&str> = BTreeSet::new();
    let mut started: BTreeSet<&str> = BTreeSet::new();
    let mut running = FuturesUnordered::new();
    let mut failure = None;
    loop {
        if failure.is_none() {
            for step in steps {
                if running.len() >= parallelism {
                    break;
                }
                let ready = step.depends_on.iter().all(|d| !planned.contains(d.as_str()) || done.contains(d.as_str()));
                if ready && !started.contains(step.image.as_str()) {
                    started.insert(&step.image);
                    let ctx = context(step);
                    running.push(async move {
                        (step.image.as_str(), build_with_retries(builder, step, ctx, retries).await)
                    });
                }
            }
        }
        match running.next().await {
            Some((image, Ok(()))) => {
                tracing::info!(image, "built");
                done.insert(image);
            }
            Some((_, Err(e))) => {
                failure.get_or_insert(e);
            }
            None => break,
        }
    }
    match failure {
        Some(f) => Err(f),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::sync::Mutex;

    use super::*;

    /// Records the build order and the highest number of builds at once.
    #[derive(Default)]
    struct Recorder {
        log: Mutex<Vec<String>>,
        running: Mutex<(usize, usize)>,
        fail: BTreeMap<String, u32>,
        attempts: Mutex<BTreeMap<String, u32>>,
    }

    impl ImageBuilder for Recorder {
        async fn build(&self, step: &BuildStep, _: ContextSpec) -> Result<(), DockerError> {
            {
                let mut r = self.running.lock().unwrap();
                r.0 += 1;
                r.1 = r.1.max(r.0);
            }
            self.log.lock().unwrap().push(format!("start {}", step.image));
            tokio::time::sleep(Duration::from_millis(100)).await;
            self.running.lock().unwrap().0 -= 1;
            self.log.lock().unwrap().push(format!("end {}", step.image));
            let n = {
                let mut a = self.attempts.lock().unwrap();
                let n = a.entry(step.image.clone()).or_default();
                *n += 1;
                *n
            };
            match self.fail.get(&step.image) {
                Some(times) if n <= *times => {
                    Err(DockerError::Build { image: step.image.clone(), message: "RUN failed".into() })
                }
                _ => Ok(()),
            }
        }
        async fn push(&self, _: &str, _: &str, _: &str) -> Result<String, DockerError> {
            unreachable!("phase 1 never pushes")
        }
    }

    fn step(name: &str, deps: &[&str]) -> BuildStep {
        BuildStep {
            image: name.into(),
            reference: format!("r/{name}:v1"),
            context: String::new(),
            dockerfile: "Dockerfile".into(),
            depends_on: deps.iter().map(|d| d.to_string()).collect(),
            build_args: BTreeMap::new(),
            labels: BTreeMap::new(),
            no_cache: false,
            network: "none".into(),
        }
    }

    fn ctx(_: &BuildStep) -> ContextSpec {
        ContextSpec { repo: ".".into(), commit: String::new(), context: String::new(), dockerfile: String::new() }
    }

    fn five() -> Vec<BuildStep> {
        vec![
            step("agent", &[]),
            step("frontend", &[]),
            step("server", &[]),
            step("nginx", &["frontend"]),
            step("worker", &["server"]),
        ]
    }

    #[tokio::test(start_paused = true)]
    async fn parents_first_and_parallelism_bounded() {
        for parallelism in [1, 2, 3] {
            let r = Recorder::default();
            let steps = five();
            let refs: Vec<&BuildStep> = steps.iter().collect();
            build_all(&r, &refs, ctx, parallelism, 0).await.unwrap();
            let log = r.log.lock().unwrap().clone();
            let at = |s: &str| log.iter().position(|l| l == s).unwrap();
            assert!(at("end server") < at("start worker"), "{log:?}");
            assert!(at("end frontend") < at("start nginx"), "{log:?}");
            assert_eq!(r.running.lock().unwrap().1, parallelism, "max concurrent builds");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn retries_with_backoff_then_succeeds() {
        let r = Recorder { fail: BTreeMap::from([("server".into(), 2)]), ..Default::default() };
        let steps = five();
        let refs: Vec<&BuildStep> = steps.iter().collect();
        let start = tokio::time::Instant::now();
        build_all(&r, &refs, ctx, 5, 3).await.unwrap();
        assert_eq!(r.attempts.lock().unwrap()["server"], 3);
        // two waits: 1 s + 2 s, plus the builds themselves
        assert!(start.elapsed() >= Duration::from_secs(3));
    }

    #[tokio::test(start_paused = true)]
    async fn failure_stops_dependents_and_reports_attempts() {
        let r = Recorder { fail: BTreeMap::from([("server".into(), 10)]), ..Default::default() };
        let steps = five();
        let refs: Vec<&BuildStep> = steps.iter().collect();
        let err = build_all(&r, &refs, ctx, 1, 2).await.unwrap_err();
        assert_eq!(err.attempts, 3);
        assert!(err.error.to_string().contains("image server"));
        let log = r.log.lock().unwrap().clone();
        assert!(!log.iter().any(|l| l == "start worker"), "a child of a failed build never starts: {log:?}");
    }

    #[test]
    fn backoff_grows_and_caps() {
        let secs: Vec<u64> = (1..=8).map(|n| backoff(n).as_secs()).collect();
        assert_eq!(secs, [1, 2, 4, 8, 16, 30, 30, 30]);
    }
}
