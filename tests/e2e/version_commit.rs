//! The VERSION commit against a real bare remote: a compare-and-swap that
//! survives the branch moving between fetch and push.

use std::path::Path;

use crate::common::*;
use relctl::config;
use relctl::git::{Git2Repo, GitRepo};
use relctl::plan::VersionStep;
use relctl::release::ReleaseError;
use relctl::release::version::{GitBranch, VersionOutcome, publish_version};
use relctl::version::ReleaseVersion;

/// Writes VERSION through git (push), as the executor does, on a runtime of its own.
fn publish(
    cfg: &config::Config,
    repo: &Git2Repo,
    step: &VersionStep,
    target: &ReleaseVersion,
) -> Result<VersionOutcome, ReleaseError> {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_time().build().unwrap();
    rt.block_on(publish_version(cfg, &GitBranch(repo), step, target))
}

fn setup() -> (Fixture, config::Config) {
    let f = Fixture::single("race");
    let cfg = config::load(&f.work.join("release.yaml")).unwrap();
    (f, cfg)
}

fn step(to: &str) -> VersionStep {
    VersionStep {
        path: "VERSION".into(),
        from: None,
        to: to.into(),
        message: format!("chore(release): {to} [skip ci]"),
        also_update: vec![],
    }
}

/// Another clone pushes a commit to main.
fn push_other_commit(f: &Fixture, file: &str) -> String {
    let other = f.dir.path().join(format!("other-{file}"));
    git(f.dir.path(), &["clone", "-q", f.remote.to_str().unwrap(), other.to_str().unwrap()]);
    std::fs::write(other.join(file), "someone else's work\n").unwrap();
    git(&other, &["add", "-A"]);
    git(&other, &["commit", "-q", "-m", "someone else's commit"]);
    git(&other, &["push", "-q", "origin", "main"]);
    git(&other, &["rev-parse", "HEAD"])
}

#[test]
fn remote_moving_between_fetch_and_push_keeps_the_other_commit() {
    let (f, cfg) = setup();
    let repo = Git2Repo::open(&f.work, "origin", "main").unwrap();
    repo.fetch().unwrap();
    // After relctl fetched, someone pushes to main.
    let theirs = push_other_commit(&f, "theirs.txt");
    let target = ReleaseVersion::parse("v1.0.0", "v").unwrap();
    let outcome = publish(&cfg, &repo, &step("v1.0.0"), &target).unwrap();
    let VersionOutcome::Committed { commit, attempts } = outcome else { panic!("{outcome:?}") };
    assert_eq!(attempts, 2, "the first push was rejected, the second landed");
    assert_eq!(f.remote_main(), commit);
    assert_eq!(git(&f.remote, &["rev-parse", "main^"]), theirs, "the other commit survives as the parent");
    assert_eq!(f.remote_file("theirs.txt").as_deref(), Some("someone else's work\n"));
    assert_eq!(f.remote_file("VERSION").as_deref(), Some("v1.0.0\n"));
    assert_eq!(git(&f.remote, &["rev-list", "--count", "main"]), "3", "no force push dropped history");
}

#[test]
fn a_newer_version_committed_meanwhile_wins() {
    let (f, cfg) = setup();
    let repo = Git2Repo::open(&f.work, "origin", "main").unwrap();
    repo.fetch().unwrap();
    let newer = ReleaseVersion::parse("v2.0.0", "v").unwrap();
    publish(&cfg, &repo, &step("v2.0.0"), &newer).unwrap();
    let tip = f.remote_main();
    let older = ReleaseVersion::parse("v1.5.0", "v").unwrap();
    let outcome = publish(&cfg, &repo, &step("v1.5.0"), &older).unwrap();
    assert_eq!(outcome, VersionOutcome::AlreadyCurrent { current: "v2.0.0".into() });
    assert_eq!(f.remote_main(), tip);
}

#[test]
fn files_in_subdirectories_are_rewritten_in_place() {
    let f = Fixture::single("subdir");
    f.write("docs/install.md", "# Install\n\ncurrent version: v0.0.1\n");
    f.write("scripts/run.sh", "#!/bin/sh\necho hi\n");
    std::fs::set_permissions(f.work.join("scripts/run.sh"), std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .unwrap();
    let yaml = std::fs::read_to_string(f.work.join("release.yaml")).unwrap()
        + "also_update: [{ path: docs/install.md, regex: 'current version: (v\\S+)' }]\n";
    f.write("release.yaml", &yaml);
    f.commit("docs");
    git(&f.work, &["push", "-q", "origin", "main"]);
    let cfg = config::load(Path::new(&f.work.join("release.yaml"))).unwrap();
    let repo = Git2Repo::open(&f.work, "origin", "main").unwrap();
    repo.fetch().unwrap();
    let target = ReleaseVersion::parse("v1.0.0", "v").unwrap();
    publish(&cfg, &repo, &step("v1.0.0"), &target).unwrap();
    assert_eq!(f.remote_file("docs/install.md").as_deref(), Some("# Install\n\ncurrent version: v1.0.0\n"));
    assert_eq!(git(&f.remote, &["diff", "--name-only", "main^", "main"]), "VERSION\ndocs/install.md");
    assert!(
        git(&f.remote, &["ls-tree", "main", "scripts/run.sh"]).starts_with("100755"),
        "other files keep their mode"
    );
}

/// `git daemon` on 127.0.0.1 serving the fixture's remote with push enabled, stopped on drop.
struct Daemon(std::process::Child);

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn serve(f: &Fixture) -> (Daemon, String) {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    // The daemon binary itself: `git daemon` runs it as a child that would outlive a kill of `git`.
    let exec_path = git(f.dir.path(), &["--exec-path"]);
    let child = std::process::Command::new(Path::new(&exec_path).join("git-daemon"))
        .args(["--reuseaddr", "--export-all", "--enable=receive-pack", "--listen=127.0.0.1", &format!("--port={port}")])
        .arg(format!("--base-path={}", f.dir.path().display()))
        .arg(f.dir.path())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("git daemon starts");
    let daemon = Daemon(child);
    for _ in 0..100 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    (daemon, format!("git://127.0.0.1:{port}/remote.git"))
}

#[test]
fn protected_branch_rejection_is_explained_and_the_images_stay_published() {
    let f = Fixture::single("protected");
    let hook = f.remote.join("hooks/pre-receive");
    std::fs::write(&hook, "#!/bin/sh\nwhile read old new ref; do\n  if [ \"$ref\" = refs/heads/main ]; then\n    echo \"GH006: Protected branch update failed for refs/heads/main.\" >&2\n    exit 1\n  fi\ndone\n").unwrap();
    std::fs::set_permissions(&hook, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let (_daemon, url) = serve(&f);
    git(&f.work, &["remote", "set-url", "origin", &url]);
    f.tag("v1.0.0");
    let tip = f.remote_main();

    let run = f.relctl(&["release", "v1.0.0"]).expect(1);
    let err = run.stderr();
    assert!(err.contains("pushing main to remote `origin` failed"), "{err}");
    assert!(err.contains("GH006: Protected branch update failed"), "the remote's own words are shown: {err}");
    assert!(err.contains("hint: the branch is protected: set `commit: { via: github-api }`"), "{err}");
    assert_eq!(f.remote_main(), tip, "main is unchanged");
    assert_eq!(f.tags("app"), ["latest", "v1.0.0"], "images were published before the VERSION commit");
}
