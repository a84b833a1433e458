//! Shipping relctl itself: the self-contained release binary that
//! scripts/build-static.sh builds (as the release workflow does) runs here and
//! needs no shared library; the container image that scripts/build-image.sh
//! builds from it on the test engine (FROM scratch + COPY only, the classic
//! builder, no network) runs `--version`, `plan` of a fixture and of this
//! repository's own release.yaml without a network, and `serve` with the
//! engine's socket mounted, answering /healthz on 127.0.0.1 and releasing a
//! fixture tag to the test registry, as user 65532; and it checks an HTTPS
//! registry's certificate against its trust store (Debian's CA bundle, or
//! SSL_CERT_FILE), which the statically linked OpenSSL finds.
//!
//! The static build takes minutes the first time (release profile, OpenSSL
//! compiled); it runs once per test process, in the same target directory as
//! the tests, so later runs only relink what changed.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use crate::common::{Fixture, env, git};

fn manifest() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn text(out: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

/// The static binary and its tarball, built once by scripts/build-static.sh into the target's tmp dir.
fn static_build() -> &'static PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT.get_or_init(|| {
        let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join("ship-dist");
        let started = Instant::now();
        let run = Command::new("bash")
            .arg(manifest().join("scripts/build-static.sh"))
            .arg("--out")
            .arg(&out)
            .output()
            .expect("bash runs");
        assert!(run.status.success(), "scripts/build-static.sh failed:\n{}", text(&run));
        eprintln!("ship: scripts/build-static.sh took {:.0} s", started.elapsed().as_secs_f64());
        out
    })
}

/// What `relctl --version` of a binary built from this checkout says.
fn expected_version_line() -> String {
    let top = Command::new("git").arg("-C").arg(manifest()).args(["rev-parse", "--show-toplevel"]).output();
    let in_git = top.as_ref().is_ok_and(|o| {
        o.status.success()
            && std::fs::canonicalize(String::from_utf8_lossy(&o.stdout).trim()).ok()
                == std::fs::canonicalize(manifest()).ok()
    });
    let commit = if in_git { git(manifest(), &["rev-parse", "HEAD"]) } else { "unknown".into() };
    format!("relctl {} (commit {commit})", env!("CARGO_PKG_VERSION"))
}

#[test]
fn the_static_release_binary_runs_here_says_its_version_and_commit_and_needs_no_shared_library() {
    let dist = static_build();
    let bin = dist.join("relctl");
    let version = Command::new(&bin).arg("--version").output().unwrap();
    assert!(version.status.success(), "{}", text(&version));
    assert_eq!(String::from_utf8_lossy(&version.stdout).trim(), expected_version_line());

    let ldd = Command::new("ldd").arg(&bin).output().unwrap();
    let ldd = text(&ldd);
    assert!(ldd.contains("statically linked") || ldd.contains("not a dynamic executable"), "ldd: {ldd}");
    eprintln!("ship: ldd {}: {}; {} bytes", bin.display(), ldd.trim(), std::fs::metadata(&bin).unwrap().len());

    // The tarball the release attaches, and its SHA256SUMS line.
    let arch = String::from_utf8(Command::new("uname").arg("-m").output().unwrap().stdout).unwrap();
    let asset = format!("relctl-{}-unknown-linux-gnu.tar.gz", arch.trim());
    let check = Command::new("sha256sum")
        .args(["--check", "--strict"])
        .arg(format!("{asset}.sha256"))
        .current_dir(dist)
        .output()
        .unwrap();
    assert!(check.status.success(), "{asset} matches its sha256 line: {}", text(&check));
    let listing = Command::new("tar").arg("-tzvf").arg(dist.join(&asset)).output().unwrap();
    let listing = String::from_utf8_lossy(&listing.stdout).into_owned();
    assert_eq!(listing.lines().count(), 1, "{listing}");
    assert!(listing.contains(" 0/0 ") && listing.trim_end().ends_with(" relctl"), "owned by 0/0: {listing}");
}

/// A container started with `docker run -d`, removed on drop.
struct Container(String);

impl Drop for Container {
    fn drop(&mut self) {
        let _ = Command::new("docker").args(["rm", "-f", &self.0]).output();
    }
}

/// An image tag, removed from the engine on drop.
struct Image(String);

impl Drop for Image {
    fn drop(&mut self) {
        let _ = Command::new("docker").args(["rmi", "-f", &self.0]).output();
    }
}

fn docker(args: &[&str]) -> Output {
    Command::new("docker").args(args).output().expect("docker CLI runs")
}

/// Builds the image from the static binary with scripts/build-image.sh.
fn build_image() -> Image {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos();
    let image = Image(format!("relctl-ship-test:{}-{nanos}", std::process::id()));
    let run = Command::new("bash")
        .arg(manifest().join("scripts/build-image.sh"))
        .args(["--binary", static_build().join("relctl").to_str().unwrap(), "--tag", &image.0])
        .output()
        .unwrap();
    assert!(run.status.success(), "scripts/build-image.sh:\n{}", text(&run));
    image
}

/// `docker image inspect` of `image`.
fn inspect(image: &str) -> serde_json::Value {
    let out = docker(&["image", "inspect", image]);
    assert!(out.status.success(), "{}", text(&out));
    serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()[0].clone()
}

/// Gives the fixture to user 65532, as a volume for the image's user would be.
fn chown_to_image_user(dir: &Path) {
    let out = Command::new("chown").args(["-R", "65532:65532"]).arg(dir).output().unwrap();
    assert!(out.status.success(), "{}", text(&out));
}

/// `docker run --rm --network none` of `image` with `dir` mounted at the same path, in `workdir`.
fn run_offline(image: &str, dir: &Path, workdir: &Path, args: &[&str]) -> Output {
    let mount = format!("{0}:{0}", dir.display());
    let mut cmd = Command::new("docker");
    cmd.args(["run", "--rm", "--network", "none", "-v", &mount, "-w", workdir.to_str().unwrap(), image]);
    cmd.args(args).output().unwrap()
}

/// A clone of this repository (its HEAD as `main` of a bare remote beside it),
/// so relctl can plan the repository's own release.yaml.
fn clone_of_this_repository(dir: &Path) -> Option<PathBuf> {
    let inside = Command::new("git").arg("-C").arg(manifest()).args(["rev-parse", "HEAD"]).output().ok()?;
    if !inside.status.success() {
        return None;
    }
    let (remote, work) = (dir.join("relctl.git"), dir.join("relctl"));
    git(dir, &["init", "-q", "--bare", remote.to_str().unwrap()]);
    git(dir, &["clone", "-q", manifest().to_str().unwrap(), work.to_str().unwrap()]);
    git(&work, &["push", "-q", remote.to_str().unwrap(), "HEAD:refs/heads/main"]);
    git(&work, &["remote", "set-url", "origin", remote.to_str().unwrap()]);
    Some(work)
}

fn wait_for(what: &str, within: Duration, mut done: impl FnMut() -> bool, log: impl Fn() -> String) {
    let deadline = Instant::now() + within;
    while !done() {
        assert!(Instant::now() < deadline, "{what} did not happen within {within:?}:\n{}", log());
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn the_image_is_scratch_plus_copies_runs_as_65532_plans_offline_and_serves_a_release() {
    let image = build_image();
    let config = inspect(&image.0);
    assert_eq!(config["Config"]["User"], "65532:65532");
    assert_eq!(config["Config"]["Entrypoint"], serde_json::json!(["relctl"]));
    let labels = &config["Config"]["Labels"];
    assert_eq!(labels["org.opencontainers.image.title"], "relctl");
    assert_eq!(labels["org.opencontainers.image.licenses"], "Apache-2.0");
    assert_eq!(labels["org.opencontainers.image.version"], env!("CARGO_PKG_VERSION"));
    eprintln!("ship: image {} is {} bytes", image.0, config["Size"]);
    // FROM scratch + COPY (and metadata): no step ran a command.
    let history = docker(&["history", "--no-trunc", "--format", "{{.CreatedBy}}", &image.0]);
    let history = String::from_utf8_lossy(&history.stdout).into_owned();
    assert!(history.lines().all(|l| l.contains("#(nop)")), "a step ran a command:\n{history}");
    assert_eq!(history.lines().filter(|l| l.contains(" COPY ")).count(), 2, "{history}");

    let version = docker(&["run", "--rm", "--network", "none", &image.0, "--version"]);
    assert_eq!(String::from_utf8_lossy(&version.stdout).trim(), expected_version_line(), "{}", text(&version));

    // plan of a fixture, and of this repository's own release.yaml (the relctl image), with no network.
    let f = Fixture::single("ship");
    let commit = f.tag("v1.0.0");
    // The webhook secret from a file, as a compose or Docker secret gives it.
    let secret = f.dir.path().join("webhook-secret");
    std::fs::write(&secret, "ship test secret\n").unwrap();
    let own = clone_of_this_repository(f.dir.path());
    chown_to_image_user(f.dir.path());
    let plan = run_offline(&image.0, f.dir.path(), &f.work, &["plan", "v1.0.0"]);
    assert!(plan.status.success(), "{}", text(&plan));
    let stdout = String::from_utf8_lossy(&plan.stdout);
    assert!(stdout.starts_with("release v1.0.0 (stable, version 1.0.0)"), "{}", text(&plan));
    assert!(stdout.contains(&format!("{}  build", f.repository("app"))), "{}", text(&plan));
    if let Some(own) = own {
        let plan = run_offline(&image.0, f.dir.path(), &own, &["plan"]);
        assert!(plan.status.success(), "{}", text(&plan));
        let stdout = String::from_utf8_lossy(&plan.stdout);
        assert!(stdout.contains("relctl  docker.io/relctl/relctl  build"), "{}", text(&plan));
        assert!(stdout.contains("latest: moves to"), "{}", text(&plan));
    }

    // serve on the host's network with the engine's socket: /healthz, then the release of v1.0.0.
    let socket = env("DOCKER_HOST");
    let socket = socket.strip_prefix("unix://").expect("the test engine is reached over a unix socket");
    let group = Command::new("stat").args(["-c", "%g", socket]).output().unwrap();
    let group = String::from_utf8_lossy(&group.stdout).trim().to_string();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mount = format!("{0}:{0}", f.dir.path().display());
    let sock = format!("{socket}:/var/run/docker.sock");
    let listen = format!("127.0.0.1:{port}");
    let started = docker(&[
        "run",
        "-d",
        "--network",
        "host",
        "--group-add",
        &group,
        "-v",
        &sock,
        "-v",
        &mount,
        "-w",
        f.work.to_str().unwrap(),
        "-e",
        &format!("RELCTL_WEBHOOK_SECRET_FILE={}", secret.display()),
        &image.0,
        "serve",
        "--listen",
        &listen,
    ]);
    assert!(started.status.success(), "{}", text(&started));
    let container = Container(String::from_utf8_lossy(&started.stdout).trim().to_string());
    let logs = || text(&docker(&["logs", &container.0]));
    let get = |path: &str| crate::common::serve::curl(&["--max-time", "5", &format!("http://{listen}{path}")]);
    wait_for("/healthz answering 200", Duration::from_secs(60), || get("/healthz").0 == 200, logs);
    wait_for(
        "the release of v1.0.0",
        Duration::from_secs(120),
        || {
            f.tags("app") == ["latest", "v1.0.0"]
                && get("/metrics").1.contains("relctl_reconciles_total{result=\"success\"} 1")
        },
        logs,
    );
    let version = Command::new("git")
        .args(["-c", "safe.directory=*", "show", "main:VERSION"])
        .current_dir(&f.remote)
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&version.stdout), "v1.0.0\n", "{}", logs());
    let labels = f.labels("app", "v1.0.0");
    assert_eq!(labels["org.opencontainers.image.revision"], commit, "{labels}");
    // The secret from the file verifies webhooks: a signed ping is taken, a wrongly signed one refused.
    let (base, body) = (format!("http://{listen}"), br#"{"zen":"ship"}"#);
    let signed = crate::reconcile::sign("ship test secret", body);
    assert_eq!(crate::reconcile::post(&base, "ping", body, Some(&signed), f.dir.path()).0, 202, "{}", logs());
    let wrong = crate::reconcile::sign("another secret", body);
    assert_eq!(crate::reconcile::post(&base, "ping", body, Some(&wrong), f.dir.path()).0, 401, "{}", logs());
    let user = docker(&["inspect", "--format", "{{.Config.User}}", &container.0]);
    assert_eq!(String::from_utf8_lossy(&user.stdout).trim(), "65532:65532");
}

#[test]
fn a_secret_file_that_cannot_be_read_is_bad_input_named_without_its_value() {
    let dir = tempfile::tempdir().unwrap();
    let run = |envs: &[(&str, &std::ffi::OsStr)]| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_relctl"));
        cmd.arg("schema").env_remove("GITHUB_TOKEN").env_remove("RELCTL_GIT_TOKEN");
        cmd.envs(envs.iter().copied()).output().unwrap()
    };
    let missing = dir.path().join("missing");
    let out = run(&[("RELCTL_GIT_TOKEN_FILE", missing.as_os_str())]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains(&format!("error: RELCTL_GIT_TOKEN_FILE: cannot read {}", missing.display())), "{stderr}");
    assert!(stderr.contains("hint: point RELCTL_GIT_TOKEN_FILE at a file"), "{stderr}");

    let token = dir.path().join("token");
    std::fs::write(&token, "never-shown-token\n").unwrap();
    let both = [("RELCTL_GIT_TOKEN_FILE", token.as_os_str()), ("RELCTL_GIT_TOKEN", "other".as_ref())];
    let out = run(&both);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(!text(&out).contains("never-shown-token"), "{}", text(&out));
    let out = run(&[("RELCTL_GIT_TOKEN_FILE", token.as_os_str())]);
    assert_eq!(out.status.code(), Some(0), "a readable file is fine: {}", text(&out));
}

/// An `openssl s_server -www` on 127.0.0.1 with a self-signed certificate for
/// `reg.test`, killed on drop; its directory holds `cert.pem`.
struct TlsServer {
    child: std::process::Child,
    port: u16,
}

impl Drop for TlsServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn tls_server(dir: &Path) -> TlsServer {
    let cert = Command::new("openssl")
        .args(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=reg.test"])
        .args(["-addext", "subjectAltName=DNS:reg.test", "-keyout", "key.pem", "-out", "cert.pem"])
        .current_dir(dir)
        .output()
        .expect("openssl runs");
    assert!(cert.status.success(), "{}", text(&cert));
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let child = Command::new("openssl")
        .args(["s_server", "-quiet", "-www", "-cert", "cert.pem", "-key", "key.pem", "-accept"])
        .arg(format!("127.0.0.1:{port}"))
        .current_dir(dir)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("openssl s_server starts");
    let server = TlsServer { child, port };
    wait_for(
        "s_server listening",
        Duration::from_secs(10),
        || std::net::TcpStream::connect(("127.0.0.1", port)).is_ok(),
        String::new,
    );
    server
}

#[test]
fn the_image_verifies_https_registries_against_its_trust_store() {
    let image = build_image();
    let f = Fixture::single("shiptls");
    let server = tls_server(f.dir.path());
    let registry = format!("reg.test:{}", server.port); // not loopback by name: relctl speaks HTTPS to it
    let cfg = std::fs::read_to_string(f.work.join("release.yaml")).unwrap().replace(&f.registry, &registry);
    f.write("release.yaml", &cfg);
    f.commit("a registry over https");
    f.tag("v1.0.0");
    chown_to_image_user(f.dir.path());
    let plan = |envs: &[&str]| {
        let mount = format!("{0}:{0}", f.dir.path().display());
        let mut cmd = Command::new("docker");
        cmd.args(["run", "--rm", "--network", "host", "--add-host", "reg.test:127.0.0.1", "-v", &mount]);
        cmd.args(["-w", f.work.to_str().unwrap()]);
        for e in envs {
            cmd.args(["-e", e]);
        }
        let out = cmd.args([image.0.as_str(), "plan", "v1.0.0"]).output().unwrap();
        assert!(out.status.success(), "{}", text(&out));
        text(&out)
    };
    // The image's own trust store (Debian's CA bundle) does not trust a self-signed certificate...
    let out = plan(&[]);
    assert!(out.contains("certificate verify failed"), "{out}");
    // ...and one that does gets through TLS to the server (whose answer is no registry's).
    let trusted = format!("SSL_CERT_FILE={}", f.dir.path().join("cert.pem").display());
    let out = plan(&[&trusted]);
    assert!(!out.contains("certificate verify failed") && out.contains("error decoding response body"), "{out}");
}

#[test]
fn the_release_build_refuses_a_tag_that_is_not_the_cargo_toml_version_before_compiling() {
    let out = tempfile::tempdir().unwrap();
    let run = Command::new("bash")
        .arg(manifest().join("scripts/build-static.sh"))
        .args(["--out", out.path().to_str().unwrap(), "--tag", "v0.0.0-not-this"])
        .output()
        .unwrap();
    assert_eq!(run.status.code(), Some(2), "{}", text(&run));
    let expected = format!("expected v{}", env!("CARGO_PKG_VERSION"));
    assert!(text(&run).contains(&expected), "{}", text(&run));
    assert!(!text(&run).contains("Compiling") && std::fs::read_dir(out.path()).unwrap().next().is_none());
}
