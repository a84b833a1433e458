//! Phase 1: builds every image of the plan, parents before children,
//! independent images in parallel up to `build.parallelism`, each retried up
//! to `build.retries` times with exponential backoff. A child whose parents
//! all build already takes a free slot early: its context goes to the engine
//! while they finish, and its `FROM` waits for them (`docker::gate`). The
//! first failure stops new builds and cancels the children still waiting;
//! the builds in flight finish, then the error is returned. Builds the
//! engine must not run together ([`ImageBuilder::exclusive`]: the platforms
//! of one image on BuildKit) take turns.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;

use crate::docker::gate::{Gate, GateOpener};
use crate::docker::{DockerError, ImageBuilder};
use crate::git::ContextSpec;
use crate::plan::BuildStep;
use crate::progress::{ImageState, Progress};

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

/// Uploads are retried at least this often, whatever `build.retries` says: a
/// push is idempotent (layers already there are skipped), and registries do
/// answer 5xx now and then, e.g. when two releases upload one blob at once.
pub const MIN_PUSH_RETRIES: u32 = 2;

/// Retries for an upload under `build.retries`.
pub fn push_retries(build_retries: u32) -> u32 {
    build_retries.max(MIN_PUSH_RETRIES)
}

/// Runs `attempt` up to `retries + 1` times with [`backoff`] between failures;
/// an error that no retry can mend (a refused login) ends it at once.
pub async fn with_retries<F, Fut, T>(image: &str, what: &str, retries: u32, mut attempt: F) -> Result<T, BuildFailure>
where
    F: FnMut(u32) -> Fut,
    Fut: std::future::Future<Output = Result<T, DockerError>>,
{
    let attempts = retries + 1;
    let mut n = 1;
    loop {
        match attempt(n).await {
            Ok(v) => return Ok(v),
            Err(error) if n >= attempts || !error.retryable() => return Err(BuildFailure { attempts: n, error }),
            Err(error) => {
                let wait = backoff(n);
                tracing::warn!(
                    image,
                    attempt = n,
                    of = attempts,
                    "{what} failed, retrying in {}s: {error}",
                    wait.as_secs()
                );
                tokio::time::sleep(wait).await;
                n += 1;
            }
        }
    }
}

/// Pushes a built step under its staging tag; returns the manifest digest.
async fn stage(builder: &impl ImageBuilder, step: &BuildStep, tag: &str, retries: u32) -> Result<String, BuildFailure> {
    let repository =
        step.reference.strip_suffix(&format!(":{tag}")).expect("a staged build is tagged with its staging tag");
    with_retries(&step.id, "staging push", push_retries(retries), |_| builder.push(&step.id, repository, tag)).await
}

/// What phase 1 produced: the digest of every build pushed under its staging tag, by build id.
pub type Staged = BTreeMap<String, String>;

/// Runs all `steps` (in dependency order) respecting `depends_on` and `parallelism`.
/// `context` gives each step's build context. A step with a staging tag is
/// pushed under it as soon as it is built, while the remaining builds go on;
/// staging pushes do not count against `parallelism` and do not hold back children.
pub async fn build_all<'s>(
    builder: &impl ImageBuilder,
    steps: &[&'s BuildStep],
    context: impl Fn(&BuildStep) -> ContextSpec,
    parallelism: usize,
    retries: u32,
    progress: &dyn Progress,
) -> Result<Staged, BuildFailure> {
    let planned: BTreeSet<&str> = steps.iter().map(|s| s.id.as_str()).collect();
    let parents = |step: &'s BuildStep| -> Vec<&'s str> {
        step.waits_for.iter().map(String::as_str).filter(|d| planned.contains(d)).collect()
    };
    let mut done: BTreeSet<&str> = BTreeSet::new();
    let mut started: BTreeSet<&str> = BTreeSet::new();
    // Children started early, and the gates that let their builds go on.
    let mut waiting: BTreeMap<&str, (&BuildStep, GateOpener)> = BTreeMap::new();
    let mut running = FuturesUnordered::new();
    let mut staging = FuturesUnordered::new();
    let mut staged = Staged::new();
    let mut failure = None;
    // The keys of the running builds that the builder runs one at a time.
    let mut exclusive: BTreeSet<String> = BTreeSet::new();
    loop {
        if failure.is_none() {
            // Ready steps first; then children whose parents all build already.
            for early in [false, true] {
                for step in steps {
                    if running.len() >= parallelism {
                        break;
                    }
                    let of = parents(step);
                    let built = of.iter().all(|d| done.contains(d));
                    let building = of.iter().all(|d| started.contains(d));
                    if started.contains(step.id.as_str()) || built == early || !building {
                        continue;
                    }
                    let key = builder.exclusive(step);
                    if key.as_ref().is_some_and(|k| exclusive.contains(k)) {
                        continue;
                    }
                    exclusive.extend(key);
                    started.insert(&step.id);
                    let gate = early.then(|| {
                        let (opener, gate) = Gate::new();
                        waiting.insert(&step.id, (*step, opener));
                        tracing::debug!(image = %step.id, "its context goes to the engine while its parents build: {}", of.join(", "));
                        gate
                    });
                    let ctx = context(step);
                    running.push(async move {
                        let result = with_retries(&step.id, "build", retries, |n| {
                            let (ctx, gate) = (ctx.clone(), gate.clone().filter(|_| n == 1));
                            async move {
                                tracing::debug!(image = %step.id, attempt = n, of = retries + 1, "building {}", step.reference);
                                match gate {
                                    Some(gate) => builder.build_after(step, ctx, gate).await,
                                    None => {
                                        progress.update(&step.id, &ImageState::Building { step: 0, of: 0 });
                                        builder.build(step, ctx).await
                                    }
                                }
                            }
                        })
                        .await;
                        (*step, result)
                    });
                }
            }
        }
        tokio::select! {
            Some((step, result)) = running.next() => {
                if let Some(key) = builder.exclusive(step) {
                    exclusive.remove(&key);
                }
                match result {
                    Ok(()) => {
                        tracing::debug!(image = %step.id, "built");
                        done.insert(&step.id);
                        waiting.retain(|image, (child, opener)| {
                            let ready = parents(child).iter().all(|d| done.contains(d));
                            if ready {
                                progress.update(image, &ImageState::Building { step: 0, of: 0 });
                                opener.open();
                            }
                            !ready
                        });
                        if let Some(tag) = &step.stage_tag {
                            staging.push(async move { (step.id.as_str(), stage(builder, step, tag, retries).await) });
                        }
                    }
                    // A waiting child, cancelled (below) because a build failed first.
                    Err(BuildFailure { error: DockerError::ParentFailed { .. }, .. }) => {}
                    Err(e) => {
                        progress.update(&step.id, &ImageState::Failed { reason: e.error.to_string() });
                        failure.get_or_insert(e);
                        // Children waiting for a parent never build now.
                        waiting.clear();
                    }
                }
            }
            Some((image, result)) = staging.next() => match result {
                Ok(digest) => {
                    progress.update(image, &ImageState::Staged { digest: digest.clone() });
                    staged.insert(image.to_string(), digest);
                }
                Err(e) => {
                    progress.update(image, &ImageState::Failed { reason: e.error.to_string() });
                    failure.get_or_insert(e);
                }
            },
            else => break,
        }
    }
    match failure {
        Some(f) => Err(f),
        None => Ok(staged),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::sync::Mutex;

    use super::*;
    use crate::progress::NoProgress;

    /// Records the build order and the highest number of builds at once.
    #[derive(Default)]
    struct Recorder {
        log: Mutex<Vec<String>>,
        running: Mutex<(usize, usize)>,
        fail: BTreeMap<String, u32>,
        attempts: Mutex<BTreeMap<String, u32>>,
        fail_push: BTreeSet<String>,
        /// Build ids the builder runs one at a time, by key.
        exclusive: BTreeMap<String, String>,
    }

    impl ImageBuilder for Recorder {
        async fn build(&self, step: &BuildStep, _: ContextSpec) -> Result<(), DockerError> {
            {
                let mut r = self.running.lock().unwrap();
                r.0 += 1;
                r.1 = r.1.max(r.0);
            }
            self.log.lock().unwrap().push(format!("start {}", step.id));
            tokio::time::sleep(Duration::from_millis(100)).await;
            self.running.lock().unwrap().0 -= 1;
            self.log.lock().unwrap().push(format!("end {}", step.id));
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
        /// Logs when the context would go out, then builds once the gate opens.
        async fn build_after(&self, step: &BuildStep, ctx: ContextSpec, mut parents: Gate) -> Result<(), DockerError> {
            self.log.lock().unwrap().push(format!("send {}", step.id));
            if !parents.opened().await {
                self.log.lock().unwrap().push(format!("cancel {}", step.id));
                return Err(DockerError::parent_failed(step));
            }
            self.build(step, ctx).await
        }
        fn exclusive(&self, step: &BuildStep) -> Option<String> {
            self.exclusive.get(&step.id).cloned()
        }
        async fn push(&self, image: &str, repository: &str, tag: &str) -> Result<String, DockerError> {
            self.log.lock().unwrap().push(format!("stage {image}"));
            tokio::time::sleep(Duration::from_millis(250)).await;
            self.log.lock().unwrap().push(format!("staged {image}"));
            if self.fail_push.contains(image) {
                let reference = format!("{repository}:{tag}");
                return Err(DockerError::Push {
                    image: image.into(),
                    reference,
                    message: "blob upload unknown".into(),
                });
            }
            Ok(format!("sha256:{image}"))
        }
    }

    fn step(name: &str, deps: &[&str]) -> BuildStep {
        BuildStep {
            image: name.into(),
            id: name.into(),
            platform: None,
            waits_for: deps.iter().map(|d| d.to_string()).collect(),
            reference: format!("r/{name}:v1"),
            context: String::new(),
            dockerfile: "Dockerfile".into(),
            depends_on: deps.iter().map(|d| d.to_string()).collect(),
            build_args: BTreeMap::new(),
            labels: BTreeMap::new(),
            no_cache: false,
            cache_from: Vec::new(),
            network: "none".into(),
            stage_tag: None,
        }
    }

    fn staged(steps: Vec<BuildStep>) -> Vec<BuildStep> {
        steps
            .into_iter()
            .map(|mut s| {
                s.reference = format!("r/{}:relctl-stage-v1", s.image);
                s.stage_tag = Some("relctl-stage-v1".into());
                s
            })
            .collect()
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
            build_all(&r, &refs, ctx, parallelism, 0, &NoProgress).await.unwrap();
            let log = r.log.lock().unwrap().clone();
            let at = |s: &str| log.iter().position(|l| l == s).unwrap();
            assert!(at("end server") < at("start worker"), "{log:?}");
            assert!(at("end frontend") < at("start nginx"), "{log:?}");
            assert_eq!(r.running.lock().unwrap().1, parallelism, "max concurrent builds");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_child_sends_its_context_while_its_parent_builds_and_builds_after_it() {
        let r = Recorder::default();
        let steps = five();
        let refs: Vec<&BuildStep> = steps.iter().collect();
        let start = tokio::time::Instant::now();
        build_all(&r, &refs, ctx, 5, 0, &NoProgress).await.unwrap();
        let log = r.log.lock().unwrap().clone();
        let at = |s: &str| log.iter().position(|l| l == s).unwrap_or_else(|| panic!("no {s:?} in {log:?}"));
        for (parent, child) in [("frontend", "nginx"), ("server", "worker")] {
            assert!(at(&format!("send {child}")) < at(&format!("end {parent}")), "{log:?}");
            assert!(at(&format!("end {parent}")) < at(&format!("start {child}")), "{log:?}");
        }
        assert!(!log.iter().any(|l| l == "send agent"), "a step without parents builds at once: {log:?}");
        assert_eq!(start.elapsed(), Duration::from_millis(200), "two levels of 100 ms builds");
    }

    #[tokio::test(start_paused = true)]
    async fn early_children_take_build_slots_and_never_before_their_parents_start() {
        let r = Recorder::default();
        let steps = five();
        let refs: Vec<&BuildStep> = steps.iter().collect();
        build_all(&r, &refs, ctx, 3, 0, &NoProgress).await.unwrap();
        let log = r.log.lock().unwrap().clone();
        // agent, frontend and server fill the 3 slots; nginx and worker wait for one.
        assert_eq!(log[..3], ["start agent", "start frontend", "start server"], "{log:?}");
        let at = |s: &str| log.iter().position(|l| l == s).unwrap();
        assert!(at("end agent") < at("send nginx"), "{log:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_failed_parent_cancels_its_waiting_child_which_is_not_reported_failed() {
        let r = Recorder { fail: BTreeMap::from([("frontend".into(), 10)]), ..Default::default() };
        let steps = five();
        let refs: Vec<&BuildStep> = steps.iter().collect();
        let err = build_all(&r, &refs, ctx, 5, 2, &NoProgress).await.unwrap_err();
        assert!(err.error.to_string().contains("image frontend: build failed"), "{}", err.error);
        let log = r.log.lock().unwrap().clone();
        assert!(log.iter().any(|l| l == "send nginx"), "{log:?}");
        assert!(log.iter().any(|l| l == "cancel nginx"), "{log:?}");
        assert!(!log.iter().any(|l| l == "start nginx"), "nginx never builds: {log:?}");
        assert_eq!(r.attempts.lock().unwrap().get("nginx"), None);
    }

    #[tokio::test(start_paused = true)]
    async fn retries_with_backoff_then_succeeds() {
        let r = Recorder { fail: BTreeMap::from([("server".into(), 2)]), ..Default::default() };
        let steps = five();
        let refs: Vec<&BuildStep> = steps.iter().collect();
        let start = tokio::time::Instant::now();
        build_all(&r, &refs, ctx, 5, 3, &NoProgress).await.unwrap();
        assert_eq!(r.attempts.lock().unwrap()["server"], 3);
        // two waits: 1 s + 2 s, plus the builds themselves
        assert!(start.elapsed() >= Duration::from_secs(3));
    }

    #[tokio::test(start_paused = true)]
    async fn failure_stops_dependents_and_reports_attempts() {
        let r = Recorder { fail: BTreeMap::from([("server".into(), 10)]), ..Default::default() };
        let steps = five();
        let refs: Vec<&BuildStep> = steps.iter().collect();
        let err = build_all(&r, &refs, ctx, 1, 2, &NoProgress).await.unwrap_err();
        assert_eq!(err.attempts, 3);
        assert!(err.error.to_string().contains("image server"));
        let log = r.log.lock().unwrap().clone();
        assert!(!log.iter().any(|l| l == "start worker"), "a child of a failed build never starts: {log:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn staging_pushes_overlap_later_builds_and_never_hold_back_children() {
        let r = Recorder::default();
        let steps = staged(five());
        let refs: Vec<&BuildStep> = steps.iter().collect();
        let start = tokio::time::Instant::now();
        let digests = build_all(&r, &refs, ctx, 1, 0, &NoProgress).await.unwrap();
        assert_eq!(digests.len(), 5, "every image staged: {digests:?}");
        assert_eq!(digests["server"], "sha256:server");
        let log = r.log.lock().unwrap().clone();
        let at = |s: &str| log.iter().position(|l| l == s).unwrap();
        assert!(at("stage agent") < at("end frontend"), "agent uploads while frontend builds: {log:?}");
        assert!(at("start worker") < at("staged server"), "worker needs server built, not uploaded: {log:?}");
        // 5 sequential builds of 100 ms; the 250 ms uploads run beside them, so only the last one adds.
        assert_eq!(start.elapsed(), Duration::from_millis(5 * 100 + 250));
    }

    #[tokio::test(start_paused = true)]
    async fn a_failed_staging_push_fails_the_phase_after_retries() {
        let r = Recorder { fail_push: BTreeSet::from(["frontend".to_string()]), ..Default::default() };
        let steps = staged(five());
        let refs: Vec<&BuildStep> = steps.iter().collect();
        let err = build_all(&r, &refs, ctx, 2, 0, &NoProgress).await.unwrap_err();
        assert_eq!(err.attempts, 3, "an upload is retried twice even with build.retries: 0");
        assert!(
            err.error.to_string().contains("image frontend: pushing r/frontend:relctl-stage-v1 failed"),
            "{}",
            err.error
        );
        let log = r.log.lock().unwrap().clone();
        assert_eq!(log.iter().filter(|l| *l == "stage frontend").count(), 3, "retried twice: {log:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn builds_the_builder_runs_one_at_a_time_take_turns_while_others_build_beside_them() {
        // app's three platforms share a key, as do its child web's two; tool has none.
        let mut steps = vec![step("tool", &[])];
        let mut keys = BTreeMap::new();
        for platform in ["amd64", "arm64", "arm"] {
            steps.push(BuildStep { id: format!("app@{platform}"), ..step("app", &[]) });
            keys.insert(format!("app@{platform}"), "app".to_string());
        }
        for platform in ["amd64", "arm64"] {
            let parent = format!("app@{platform}");
            steps.push(BuildStep { id: format!("web@{platform}"), waits_for: vec![parent], ..step("web", &["app"]) });
            keys.insert(format!("web@{platform}"), "web".to_string());
        }
        let r = Recorder { exclusive: keys, ..Default::default() };
        let refs: Vec<&BuildStep> = steps.iter().collect();
        let start = tokio::time::Instant::now();
        build_all(&r, &refs, ctx, 6, 0, &NoProgress).await.unwrap();
        let log = r.log.lock().unwrap().clone();
        let at = |s: &str| log.iter().position(|l| l == s).unwrap_or_else(|| panic!("no {s:?} in {log:?}"));
        assert!(at("start tool") < at("end app@amd64"), "tool builds beside app: {log:?}");
        assert!(at("end app@amd64") < at("start app@arm64"), "{log:?}");
        assert!(at("end app@arm64") < at("start app@arm"), "{log:?}");
        assert!(at("send web@amd64") < at("end app@amd64"), "web's context goes out early: {log:?}");
        assert!(at("end web@amd64") < at("send web@arm64"), "{log:?}");
        // app's platforms one after another (300 ms); web@arm64 builds beside app@arm.
        assert_eq!(start.elapsed(), Duration::from_millis(300));
    }

    #[test]
    fn backoff_grows_and_caps() {
        let secs: Vec<u64> = (1..=8).map(|n| backoff(n).as_secs()).collect();
        assert_eq!(secs, [1, 2, 4, 8, 16, 30, 30, 30]);
    }
}
