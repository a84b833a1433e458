//! The Docker adapter on the real engine, with both builders: a child image's
//! context goes to the engine while its parent still builds, its `FROM` waits
//! for the gate, and a gate closed by a failed parent abandons the build.

use std::collections::BTreeMap;
use std::process::Command;
use std::sync::{Arc, Mutex, OnceLock};

use crate::common::{Fixture, docker_run, env};
use relctl::config::Builder;
use relctl::docker::gate::Gate;
use relctl::docker::{DockerEngine, DockerError, ImageBuilder};
use relctl::git::ContextSpec;
use relctl::plan::BuildStep;
use relctl::progress::NoProgress;

/// A parent with busybox and a file, and a child `FROM` it, committed.
fn parent_and_child() -> (Fixture, String) {
    let f = Fixture::empty("gate");
    std::fs::create_dir_all(f.work.join("parent")).unwrap();
    std::fs::copy(env("RELCTL_TEST_BUSYBOX"), f.work.join("parent/busybox")).unwrap();
    f.write("parent/Dockerfile", "FROM scratch\nCOPY busybox /bin/busybox\nCOPY parent.txt /parent.txt\n");
    f.write("parent/parent.txt", "parent of this commit\n");
    f.write("child/Dockerfile", "ARG PARENT\nFROM ${PARENT}\nCOPY child.txt /child.txt\n");
    // A context big enough to take several chunks, so most of it goes out early.
    f.write("child/child.txt", &"child\n".repeat(200_000));
    let commit = f.commit("parent and child");
    (f, commit)
}

fn step(image: &str, reference: &str, args: &[(&str, &str)]) -> BuildStep {
    BuildStep {
        image: image.into(),
        id: image.into(),
        platform: None,
        waits_for: Vec::new(),
        reference: reference.into(),
        context: image.into(),
        dockerfile: format!("{image}/Dockerfile"),
        depends_on: Vec::new(),
        build_args: args.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect::<BTreeMap<_, _>>(),
        labels: BTreeMap::new(),
        no_cache: false,
        cache_from: Vec::new(),
        network: "none".into(),
        stage_tag: None,
    }
}

fn context(f: &Fixture, commit: &str, image: &str) -> ContextSpec {
    ContextSpec {
        repo: f.work.clone(),
        commit: commit.into(),
        context: image.into(),
        dockerfile: format!("{image}/Dockerfile"),
    }
}

/// The layer diff ids of a local image, or `None` when there is no such image.
fn layers(reference: &str) -> Option<Vec<String>> {
    let out = Command::new("docker")
        .args(["image", "inspect", "-f", "{{json .RootFS.Layers}}", reference])
        .output()
        .expect("docker CLI runs");
    out.status.success().then(|| serde_json::from_slice(&out.stdout).expect("a JSON list"))
}

/// relctl's debug log of this test binary, captured from the first call on.
fn debug_log() -> Arc<Mutex<Vec<u8>>> {
    static LOG: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    LOG.get_or_init(|| {
        let log = Arc::new(Mutex::new(Vec::new()));
        let sink = log.clone();
        tracing_subscriber::fmt()
            .with_env_filter("relctl=debug")
            .with_writer(move || LogWriter(sink.clone()))
            .with_ansi(false)
            .init();
        log
    })
    .clone()
}

struct LogWriter(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

async fn engine(builder: Builder) -> DockerEngine {
    DockerEngine::connect(&env("RELCTL_TEST_REGISTRY"), None, Arc::new(NoProgress), builder).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_waiting_child_builds_from_the_parent_built_while_its_context_was_sent() {
    let (f, commit) = parent_and_child();
    let log = debug_log();
    for builder in [Builder::BuildKit, Builder::Classic] {
        let engine = engine(builder).await;
        let parent_ref = format!("{}/{}/parent:{builder:?}", f.registry, f.namespace).to_lowercase();
        let child_ref = format!("{}/{}/child:{builder:?}", f.registry, f.namespace).to_lowercase();
        let parent = step("parent", &parent_ref, &[]);
        let child = step("child", &child_ref, &[("PARENT", &parent_ref)]);
        assert_eq!(layers(&parent_ref), None, "the parent does not exist before the child's build starts");

        let (opener, gate) = Gate::new();
        let parent_then_open = async {
            engine.build(&parent, context(&f, &commit, "parent")).await.unwrap();
            opener.open();
        };
        let (built, ()) =
            tokio::join!(engine.build_after(&child, context(&f, &commit, "child"), gate), parent_then_open);
        built.unwrap_or_else(|e| panic!("{builder:?}: {e}"));
        let log = String::from_utf8_lossy(&log.lock().unwrap()).into_owned();
        assert!(
            !log.contains("early context upload ended"),
            "{builder:?}: the first build ended before the gate opened and was redone: {log}"
        );

        let (parent_layers, child_layers) = (layers(&parent_ref).unwrap(), layers(&child_ref).unwrap());
        assert_eq!(child_layers[..parent_layers.len()], parent_layers[..], "{builder:?}: the child is FROM the parent");
        assert_eq!(docker_run(&child_ref, &["/bin/busybox", "cat", "/parent.txt"]), "parent of this commit\n");
        assert_eq!(docker_run(&child_ref, &["/bin/busybox", "wc", "-l", "/child.txt"]).trim(), "200000 /child.txt");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gate_closed_by_a_failed_parent_abandons_the_child_and_tags_nothing() {
    let (f, commit) = parent_and_child();
    for builder in [Builder::BuildKit, Builder::Classic] {
        let engine = engine(builder).await;
        let parent_ref = format!("{}/{}/never:{builder:?}", f.registry, f.namespace).to_lowercase();
        let child_ref = format!("{}/{}/orphan:{builder:?}", f.registry, f.namespace).to_lowercase();
        let child = step("child", &child_ref, &[("PARENT", &parent_ref)]);

        let (opener, gate) = Gate::new();
        let fail_parent = async {
            tokio::time::sleep(std::time::Duration::from_millis(500)).await;
            drop(opener);
        };
        let (built, ()) = tokio::join!(engine.build_after(&child, context(&f, &commit, "child"), gate), fail_parent);
        assert!(
            matches!(built, Err(DockerError::ParentFailed { ref image }) if image == "child"),
            "{builder:?}: {built:?}"
        );
        assert_eq!(layers(&child_ref), None, "{builder:?}: no image is tagged");
    }
}
