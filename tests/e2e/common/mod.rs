//! Test fixtures on the real services started by scripts/services.sh: a git
//! repository with a bare remote (set up with the git CLI), the relctl binary,
//! and registry/engine checks through curl and the docker CLI.

pub mod github;
pub mod http_proxy;
pub mod receiver;
pub mod serve;
pub mod token;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

use tempfile::TempDir;

pub fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!(
            "{name} is not set: run the tests through scripts/test.sh, which starts the Docker engine and registries"
        )
    })
}

static COUNTER: AtomicU32 = AtomicU32::new(0);

pub struct Fixture {
    pub dir: TempDir,
    pub work: PathBuf,
    pub remote: PathBuf,
    pub namespace: String,
    pub registry: String,
}

/// The five images of examples/app.
pub const IMAGES: [&str; 5] = ["server", "frontend", "agent", "worker", "nginx"];

pub fn git(dir: &Path, args: &[&str]) -> String {
    git_env(dir, args, &[])
}

/// [`git`] with extra environment variables, e.g. a commit's dates.
pub fn git_env(dir: &Path, args: &[&str], envs: &[(&str, &str)]) -> String {
    let out = Command::new("git")
        .current_dir(dir)
        .envs(envs.iter().copied())
        .args([
            "-c",
            "user.name=test",
            "-c",
            "user.email=test@example.invalid",
            "-c",
            "init.defaultBranch=main",
            "-c",
            "advice.detachedHead=false",
        ])
        .args(args)
        .output()
        .expect("git runs");
    assert!(out.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

const SINGLE_CONFIG: &str = r#"registry: REGISTRY
namespace: NAMESPACE
project: single
build: { retries: 0 }
images:
  app: { context: . }
"#;

const SINGLE_DOCKERFILE: &str = "FROM scratch\nCOPY bin/busybox /bin/busybox\nRUN [\"/bin/busybox\", \"--install\", \"-s\", \"/bin\"]\nCOPY app.txt /app.txt\n";

/// `dockerfile` with an `ARG` of the test's own after its first `FROM`: the
/// tests share one engine, whose BuildKit (dockerd 20.10) crashes when two
/// builds with the same steps run at once; the argument reaches every `RUN`
/// step's environment, so no two tests' builds are the same.
fn of_its_own(dockerfile: &str, namespace: &str) -> String {
    match dockerfile.split_once('\n') {
        Some((from, rest)) if from.starts_with("FROM ") => format!("{from}\nARG RELCTL_TEST={namespace}\n{rest}"),
        _ => dockerfile.to_string(),
    }
}

impl Fixture {
    pub fn empty(tag: &str) -> Self {
        let dir = tempfile::Builder::new().prefix("relctl-test-").tempdir().unwrap();
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let namespace = format!(
            "t{}-{tag}-{n}-{}",
            std::process::id(),
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos()
        );
        let work = dir.path().join("work");
        let remote = dir.path().join("remote.git");
        std::fs::create_dir_all(&work).unwrap();
        git(dir.path(), &["init", "-q", "--bare", "remote.git"]);
        git(&work, &["init", "-q"]);
        git(&work, &["remote", "add", "origin", remote.to_str().unwrap()]);
        std::fs::create_dir_all(work.join("bin")).unwrap();
        std::fs::copy(env("RELCTL_TEST_BUSYBOX"), work.join("bin/busybox")).unwrap();
        Fixture { dir, work, remote, namespace, registry: env("RELCTL_TEST_REGISTRY") }
    }

    /// examples/app with the local registry and a namespace of its own, pushed to main.
    pub fn example(tag: &str) -> Self {
        let f = Self::empty(tag);
        copy_dir(&Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/app"), &f.work);
        for image in ["server", "frontend", "agent"] {
            let path = format!("docker/{image}/Dockerfile");
            let dockerfile = std::fs::read_to_string(f.work.join(&path)).unwrap();
            f.write(&path, &of_its_own(&dockerfile, &f.namespace));
        }
        let cfg = std::fs::read_to_string(f.work.join("release.yaml")).unwrap();
        let cfg = cfg
            .replace("registry: docker.io", &format!("registry: {}", f.registry))
            .replace("namespace: relctl", &format!("namespace: {}", f.namespace));
        f.write("release.yaml", &cfg);
        f.commit("example app");
        git(&f.work, &["push", "-q", "origin", "main"]);
        f
    }

    /// One image `app` (context `.`), for tests about one behaviour.
    pub fn single(tag: &str) -> Self {
        let f = Self::empty(tag);
        f.write("release.yaml", &SINGLE_CONFIG.replace("REGISTRY", &f.registry).replace("NAMESPACE", &f.namespace));
        f.write("Dockerfile", &of_its_own(SINGLE_DOCKERFILE, &f.namespace));
        f.write("app.txt", "one\n");
        f.commit("single app");
        git(&f.work, &["push", "-q", "origin", "main"]);
        f
    }

    /// [`Fixture::single`] releasing to the htpasswd-protected registry, tagged `v1.0.0`.
    pub fn single_on_auth_registry(tag: &str) -> Self {
        Self::single_on(tag, &env("RELCTL_TEST_AUTH_REGISTRY"))
    }

    /// [`Fixture::single`] releasing to `registry`, tagged `v1.0.0`.
    pub fn single_on(tag: &str, registry: &str) -> Self {
        let mut f = Self::single(tag);
        let cfg = std::fs::read_to_string(f.work.join("release.yaml")).unwrap().replace(&f.registry, registry);
        f.write("release.yaml", &cfg);
        f.commit(&format!("release to {registry}"));
        git(&f.work, &["push", "-q", "origin", "main"]);
        f.tag("v1.0.0");
        f.registry = registry.to_string();
        f
    }

    pub fn write(&self, path: &str, content: &str) {
        let p = self.work.join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, content).unwrap();
    }

    pub fn commit(&self, msg: &str) -> String {
        self.commit_with(msg, &[])
    }

    /// [`Fixture::commit`] with author and committer date `date` (ISO 8601).
    pub fn commit_dated(&self, msg: &str, date: &str) -> String {
        self.commit_with(msg, &[("GIT_AUTHOR_DATE", date), ("GIT_COMMITTER_DATE", date)])
    }

    fn commit_with(&self, msg: &str, envs: &[(&str, &str)]) -> String {
        git(&self.work, &["add", "-A"]);
        git_env(&self.work, &["commit", "-q", "--allow-empty", "-m", msg], envs);
        git(&self.work, &["rev-parse", "HEAD"])
    }

    /// Tags HEAD and pushes the tag; returns the commit.
    pub fn tag(&self, name: &str) -> String {
        git(&self.work, &["tag", name]);
        git(&self.work, &["push", "-q", "origin", name]);
        git(&self.work, &["rev-parse", "HEAD"])
    }

    /// The commit a tag (or any revision) names in the work tree.
    pub fn commit_of(&self, rev: &str) -> String {
        git(&self.work, &["rev-parse", &format!("{rev}^{{commit}}")])
    }

    pub fn relctl(&self, args: &[&str]) -> Run {
        self.relctl_env(args, &[])
    }

    /// The relctl command for this fixture: run in the work tree, with a HOME of
    /// its own and no credentials, tokens or GitHub Actions files from the outer environment.
    pub fn command(&self, args: &[&str]) -> Command {
        let home = self.dir.path().join("home");
        std::fs::create_dir_all(&home).unwrap();
        // RELCTL_TEST_BIN: a copy of the binary under test, for when a shared target directory's
        // target/debug/relctl may be replaced mid-run by another checkout's build.
        let bin = std::env::var_os("RELCTL_TEST_BIN").unwrap_or_else(|| env!("CARGO_BIN_EXE_relctl").into());
        let mut cmd = Command::new(bin);
        cmd.current_dir(&self.work)
            .args(args)
            .env_remove("RELCTL_REGISTRY_USERNAME")
            .env_remove("RELCTL_REGISTRY_PASSWORD")
            .env_remove("RELCTL_WEBHOOK_SECRET")
            .env_remove("RELCTL_DASHBOARD_TOKEN")
            .env_remove("GITHUB_TOKEN")
            .env_remove("GITHUB_ACTIONS")
            .env_remove("GITHUB_OUTPUT")
            .env_remove("GITHUB_STEP_SUMMARY")
            .env_remove("GITHUB_REPOSITORY")
            .env_remove("GITHUB_API_URL")
            .env_remove("DOCKER_CONFIG")
            .env("HOME", &home)
            .env("NO_COLOR", "1")
            .env("RELCTL_LOG", "info");
        for name in relctl::secrets::NAMES {
            cmd.env_remove(format!("{name}_FILE"));
        }
        cmd
    }

    /// Runs relctl as [`Fixture::command`] would, but on a pseudo-terminal
    /// (util-linux `script`) and without NO_COLOR unless `envs` sets it;
    /// returns everything it drew, escapes included.
    pub fn relctl_on_terminal(&self, args: &[&str], envs: &[(&str, &str)]) -> (bool, String) {
        let mut inner = self.command(args);
        inner.env_remove("NO_COLOR");
        for (k, v) in envs {
            inner.env(k, v);
        }
        let line = std::iter::once(inner.get_program())
            .chain(inner.get_args())
            .map(|a| format!("'{}'", a.to_str().unwrap().replace('\'', r"'\''")))
            .collect::<Vec<_>>()
            .join(" ");
        let typescript = self.dir.path().join("typescript");
        let mut cmd = Command::new("script");
        cmd.args(["-qec", &line]).arg(&typescript).current_dir(&self.work);
        for (k, v) in inner.get_envs() {
            match v {
                Some(v) => cmd.env(k, v),
                None => cmd.env_remove(k),
            };
        }
        let status = cmd.stdin(std::process::Stdio::null()).output().expect("script runs").status;
        (status.success(), std::fs::read_to_string(typescript).unwrap())
    }

    pub fn relctl_env(&self, args: &[&str], envs: &[(&str, &str)]) -> Run {
        let mut cmd = self.command(args);
        for (k, v) in envs {
            cmd.env(k, v);
        }
        let started = std::time::Instant::now();
        let out = cmd.output().expect("relctl runs");
        Run { out, elapsed: started.elapsed() }
    }

    pub fn remote_main(&self) -> String {
        git(&self.remote, &["rev-parse", "main"])
    }

    pub fn remote_file(&self, path: &str) -> Option<String> {
        let out =
            Command::new("git").current_dir(&self.remote).args(["show", &format!("main:{path}")]).output().unwrap();
        out.status.success().then(|| String::from_utf8_lossy(&out.stdout).into_owned())
    }

    pub fn repo(&self, image: &str) -> String {
        format!("{}/{}-{image}", self.namespace, self.project())
    }

    fn project(&self) -> String {
        let cfg = std::fs::read_to_string(self.work.join("release.yaml")).unwrap();
        cfg.lines().find_map(|l| l.strip_prefix("project: ")).unwrap().split_whitespace().next().unwrap().to_string()
    }

    /// The tags installers see: every tag but relctl's staging tags.
    pub fn tags(&self, image: &str) -> Vec<String> {
        tags_at(&self.registry, &self.repo(image)).into_iter().filter(|t| !t.starts_with("relctl-stage-")).collect()
    }

    /// relctl's staging tags of `image` (`relctl-stage-<tag>-<commit>`).
    pub fn staging_tags(&self, image: &str) -> Vec<String> {
        tags_at(&self.registry, &self.repo(image)).into_iter().filter(|t| t.starts_with("relctl-stage-")).collect()
    }

    pub fn digest(&self, image: &str, tag: &str) -> Option<String> {
        digest_at(&self.registry, &self.repo(image), tag)
    }

    /// The image config's labels of `image:tag`.
    pub fn labels(&self, image: &str, tag: &str) -> serde_json::Value {
        self.image_config(image, tag)["config"]["Labels"].clone()
    }

    /// The image manifest of `image:tag`.
    pub fn manifest(&self, image: &str, tag: &str) -> serde_json::Value {
        curl_json(
            &format!("http://{}/v2/{}/manifests/{tag}", self.registry, self.repo(image)),
            &["-H", "Accept: application/vnd.docker.distribution.manifest.v2+json"],
        )
    }

    /// The layer digests of `image:tag`, base first.
    pub fn layers(&self, image: &str, tag: &str) -> Vec<String> {
        let manifest = self.manifest(image, tag);
        let layers = manifest["layers"].as_array().expect("manifest has layers");
        layers.iter().map(|l| l["digest"].as_str().unwrap().to_string()).collect()
    }

    /// The image config blob of `image:tag`, as the registry holds it.
    pub fn image_config(&self, image: &str, tag: &str) -> serde_json::Value {
        let manifest = self.manifest(image, tag);
        let config = manifest["config"]["digest"].as_str().expect("manifest has a config").to_string();
        curl_json(&format!("http://{}/v2/{}/blobs/{config}", self.registry, self.repo(image)), &["-L"])
    }

    /// `registry/namespace/project-image`, as relctl names the image.
    pub fn repository(&self, image: &str) -> String {
        format!("{}/{}", self.registry, self.repo(image))
    }

    pub fn reference(&self, image: &str, tag: &str) -> String {
        format!("{}/{}:{tag}", self.registry, self.repo(image))
    }
}

/// The registry access log's length once it has been quiet for 300 ms: the
/// registry logs a request after answering it, so a client can finish first.
pub fn registry_log_offset() -> u64 {
    let len = || std::fs::metadata(env("RELCTL_TEST_REGISTRY_LOG")).map(|m| m.len()).unwrap_or(0);
    let mut last = len();
    loop {
        std::thread::sleep(std::time::Duration::from_millis(300));
        let now = len();
        if now == last {
            return now;
        }
        last = now;
    }
}

/// Write requests (PUT, POST, PATCH) to repositories under `namespace` logged since `offset`
/// (not other repositories' blob mounts that merely name it as their source).
pub fn registry_writes_since(offset: u64, namespace: &str) -> Vec<String> {
    registry_log_offset();
    let log = std::fs::read(env("RELCTL_TEST_REGISTRY_LOG")).unwrap();
    String::from_utf8_lossy(&log[offset as usize..])
        .lines()
        .filter(|l| ["PUT", "POST", "PATCH"].iter().any(|m| l.contains(&format!("\"{m} /v2/{namespace}/"))))
        .map(str::to_string)
        .collect()
}

pub fn curl_json(url: &str, extra: &[&str]) -> serde_json::Value {
    let out = Command::new("curl").args(["-sf"]).args(extra).arg(url).output().expect("curl runs");
    if !out.status.success() {
        return serde_json::Value::Null;
    }
    serde_json::from_slice(&out.stdout).unwrap_or(serde_json::Value::Null)
}

pub fn tags_at(registry: &str, repo: &str) -> Vec<String> {
    let v = curl_json(&format!("http://{registry}/v2/{repo}/tags/list"), &[]);
    let mut tags: Vec<String> = v["tags"]
        .as_array()
        .map(|a| a.iter().filter_map(|t| t.as_str().map(str::to_string)).collect())
        .unwrap_or_default();
    tags.sort();
    tags
}

pub fn digest_at(registry: &str, repo: &str, tag: &str) -> Option<String> {
    let url = format!("http://{registry}/v2/{repo}/manifests/{tag}");
    head_digest(&url, &["-H", "Accept: application/vnd.docker.distribution.manifest.v2+json"])
}

/// The `Docker-Content-Digest` a `HEAD` of `url` answers (curl also gets `args`), or `None`.
pub fn head_digest(url: &str, args: &[&str]) -> Option<String> {
    let out = Command::new("curl").arg("-sfI").args(args).arg(url).output().unwrap();
    if !out.status.success() {
        return None;
    }
    String::from_utf8_lossy(&out.stdout).lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.eq_ignore_ascii_case("docker-content-digest").then(|| v.trim().to_string())
    })
}

/// Deletes the manifest `digest` of `repo`, and so every tag on it.
pub fn delete_manifest(registry: &str, repo: &str, digest: &str) {
    let out = Command::new("curl")
        .args(["-sf", "-X", "DELETE"])
        .arg(format!("http://{registry}/v2/{repo}/manifests/{digest}"))
        .output()
        .unwrap();
    assert!(out.status.success(), "delete {repo}@{digest}");
}

/// Deletes `repo:tag` from the registry (by its digest: the registry deletes manifests, not tags).
pub fn delete_tag(registry: &str, repo: &str, tag: &str) {
    let digest = digest_at(registry, repo, tag).expect("tag exists");
    delete_manifest(registry, repo, &digest);
}

/// Points `tag` of `repo` at the manifest of `from`, by hand.
pub fn move_tag(registry: &str, repo: &str, from: &str, tag: &str) {
    let accept = "Accept: application/vnd.docker.distribution.manifest.v2+json";
    let manifest = Command::new("curl")
        .args(["-sf", "-H", accept])
        .arg(format!("http://{registry}/v2/{repo}/manifests/{from}"))
        .output()
        .unwrap()
        .stdout;
    let put = Command::new("curl")
        .args([
            "-sf",
            "-X",
            "PUT",
            "-H",
            "Content-Type: application/vnd.docker.distribution.manifest.v2+json",
            "--data-binary",
            "@-",
        ])
        .arg(format!("http://{registry}/v2/{repo}/manifests/{tag}"))
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    put.stdin.as_ref().unwrap().write_all(&manifest).unwrap();
    assert!(put.wait_with_output().unwrap().status.success());
}

/// relctl's requests to `namespace`'s repositories since `offset`, as the registry logged them.
pub fn registry_requests_since(offset: u64, namespace: &str) -> Vec<String> {
    registry_log_offset();
    let log = std::fs::read(env("RELCTL_TEST_REGISTRY_LOG")).unwrap();
    String::from_utf8_lossy(&log[offset as usize..])
        .lines()
        .filter(|l| l.contains(&format!(" /v2/{namespace}/")) && l.contains("\"relctl/"))
        .map(str::to_string)
        .collect()
}

/// The images a release's `--json` report says were built, sorted.
pub fn built(run: &Run) -> Vec<String> {
    let json: serde_json::Value = serde_json::from_str(&run.stdout()).unwrap();
    let mut b: Vec<String> = json["report"]["images"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["built"] == true)
        .map(|i| i["image"].as_str().unwrap().to_string())
        .collect();
    b.sort();
    b
}

/// Runs a command in `reference` (no network) and returns its stdout.
pub fn docker_run(reference: &str, cmd: &[&str]) -> String {
    let out = Command::new("docker")
        .args(["run", "--rm", "--network", "none", reference])
        .args(cmd)
        .output()
        .expect("docker CLI runs");
    assert!(out.status.success(), "docker run {reference} {cmd:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub struct Run {
    pub out: Output,
    pub elapsed: std::time::Duration,
}

impl Run {
    pub fn code(&self) -> i32 {
        self.out.status.code().unwrap_or(-1)
    }
    pub fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.out.stdout).into_owned()
    }
    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.out.stderr).into_owned()
    }
    /// Asserts the exit code, showing the output when it differs.
    pub fn expect(self, code: i32) -> Self {
        assert_eq!(self.code(), code, "exit code\n--- stdout\n{}\n--- stderr\n{}", self.stdout(), self.stderr());
        self
    }
}
