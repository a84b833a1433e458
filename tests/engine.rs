//! The Docker adapter on the real engine, with both builders: a child image's
//! context goes to the engine while its parent still builds, its `FROM` waits
//! for the gate, and a gate closed by a failed parent abandons the build.
//! Pushes go through relctl's uploader: what it pushes pulls back on another
//! engine as the image built, and a layer already sent is never sent again.

mod common;

use std::collections::BTreeMap;
use std::process::Command;
use std::sync::{Arc, Mutex, OnceLock};

use common::{Fixture, digest_at, docker_run, env, registry_log_offset, registry_writes_since};
use relctl::config::Builder;
use relctl::docker::gate::Gate;
use relctl::docker::{DockerEngine, DockerError, ImageBuilder};
use relctl::git::ContextSpec;
use relctl::plan::BuildStep;
use relctl::release::progress::NoProgress;

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
        reference: reference.into(),
        context: image.into(),
        dockerfile: format!("{image}/Dockerfile"),
        depends_on: Vec::new(),
        build_args: args.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect::<BTreeMap<_, _>>(),
        labels: BTreeMap::new(),
        no_cache: false,
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

/// Bytes deflate cannot shrink (xorshift), the same for every run.
fn noise(len: usize) -> Vec<u8> {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// `docker` on the second engine, which has never seen the images.
fn docker2(args: &[&str]) -> std::process::Output {
    Command::new("docker").arg("-H").arg(env("RELCTL_TEST_DOCKER2_HOST")).args(args).output().unwrap()
}

fn image_id(docker: impl Fn(&[&str]) -> std::process::Output, reference: &str) -> String {
    let out = docker(&["image", "inspect", "-f", "{{.Id}}", reference]);
    assert!(out.status.success(), "inspect {reference}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Blob uploads (the PUT that completes one) to `repo` among `writes`.
fn uploads(writes: &[String], repo: &str) -> usize {
    writes.iter().filter(|l| l.contains(&format!("\"PUT /v2/{repo}/blobs/uploads/"))).count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pushed_image_pulls_back_elsewhere_as_built_and_no_layer_is_sent_twice() {
    let (f, _) = parent_and_child();
    std::fs::write(f.work.join("parent/noise.bin"), noise(3 << 20)).unwrap();
    f.write("parent/text.txt", &"a line of text that deflate shrinks\n".repeat(60_000));
    f.write(
        "parent/Dockerfile",
        "FROM scratch\nCOPY busybox /bin/busybox\nCOPY noise.bin /noise.bin\nCOPY text.txt /text.txt\n",
    );
    let commit = f.commit("a parent with a noise layer and a text layer");
    let first = engine(Builder::Classic).await;
    let (parent_repo, child_repo) = (format!("{}/parent", f.namespace), format!("{}/child", f.namespace));
    let parent_ref = format!("{}/{parent_repo}:built", f.registry);
    let child_ref = format!("{}/{child_repo}:built", f.registry);
    first.build(&step("parent", &parent_ref, &[]), context(&f, &commit, "parent")).await.unwrap();
    let child = step("child", &child_ref, &[("PARENT", &parent_ref)]);
    first.build(&child, context(&f, &commit, "child")).await.unwrap();

    let before = registry_log_offset();
    let parent_digest = first.push("parent", &format!("{}/{parent_repo}", f.registry), "built").await.unwrap();
    let child_digest = first.push("child", &format!("{}/{child_repo}", f.registry), "built").await.unwrap();
    assert_eq!(digest_at(&f.registry, &parent_repo, "built").as_ref(), Some(&parent_digest));
    assert_eq!(digest_at(&f.registry, &child_repo, "built").as_ref(), Some(&child_digest));
    let writes = registry_writes_since(before, &f.namespace);
    assert_eq!(uploads(&writes, &parent_repo), 4, "three layers and the config: {writes:#?}");
    assert_eq!(uploads(&writes, &child_repo), 2, "its own layer and its config: {writes:#?}");
    let mounts = writes.iter().filter(|l| l.contains(&format!("POST /v2/{child_repo}/")) && l.contains("mount="));
    assert_eq!(mounts.count(), 3, "the parent's layers are mounted from its repository: {writes:#?}");

    // Noise is stored whole, text deflated.
    let manifest = common::curl_json(
        &format!("http://{}/v2/{parent_repo}/manifests/built", f.registry),
        &["-H", "Accept: application/vnd.docker.distribution.manifest.v2+json"],
    );
    let sizes: Vec<u64> = manifest["layers"].as_array().unwrap().iter().map(|l| l["size"].as_u64().unwrap()).collect();
    assert!((3 << 20..(3 << 20) + 20_000).contains(&sizes[1]), "the noise layer is stored: {sizes:?}");
    assert!(sizes[2] < 50_000, "2.2 MB of text deflated: {sizes:?}");

    // Another engine pulls it (checking every layer against the config) and runs it.
    let pulled = docker2(&["pull", &child_ref]);
    assert!(pulled.status.success(), "pull: {}", String::from_utf8_lossy(&pulled.stderr));
    assert_eq!(
        image_id(docker2, &child_ref),
        image_id(|a| Command::new("docker").args(a).output().unwrap(), &child_ref)
    );
    let run = docker2(&["run", "--rm", "--network", "none", &child_ref, "/bin/busybox", "md5sum", "/noise.bin"]);
    let local = docker_run(&child_ref, &["/bin/busybox", "md5sum", "/noise.bin"]);
    assert_eq!(String::from_utf8_lossy(&run.stdout), local);
    docker2(&["rmi", &child_ref]);

    // Pushed again, by this engine or a new one: the same digest, and no blob moves.
    let again = registry_log_offset();
    let retagged = first.push("child", &format!("{}/{child_repo}", f.registry), "built").await.unwrap();
    let fresh = engine(Builder::Classic).await;
    let parent_again = fresh.push("parent", &format!("{}/{parent_repo}", f.registry), "built").await.unwrap();
    assert_eq!((retagged, parent_again), (child_digest, parent_digest), "the same bytes give the same blobs");
    let writes = registry_writes_since(again, &f.namespace);
    assert_eq!(uploads(&writes, &parent_repo) + uploads(&writes, &child_repo), 0, "{writes:#?}");
}
