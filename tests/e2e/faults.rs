//! Real repository histories and injected faults on the real engine,
//! registry and git remote: a failing tag among good ones, a moved tag, a
//! stalled or reset upload (through a local proxy), a VERSION path that is a
//! directory, a tag too long for an image tag, and a stale lock on the remote.

mod proxy;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::*;

const BROKEN: &str =
    "FROM scratch\nCOPY bin/busybox /bin/busybox\nRUN [\"/bin/busybox\", \"sh\", \"-c\", \"exit 3\"]\n";

/// A commit changing app.txt to `text` (and the Dockerfile when `dockerfile`), tagged `tag`.
fn tag_with(f: &Fixture, tag: &str, text: &str, dockerfile: Option<&str>) -> String {
    f.write("app.txt", text);
    if let Some(d) = dockerfile {
        f.write("Dockerfile", d);
    }
    f.commit(tag);
    f.tag(tag)
}

fn good_dockerfile(f: &Fixture) -> String {
    std::fs::read_to_string(f.work.join("Dockerfile")).unwrap()
}

#[test]
fn a_failing_tag_and_a_moved_tag_do_not_stop_the_good_ones() {
    let f = Fixture::single("poison");
    let good = good_dockerfile(&f);
    f.tag("v1.0.0");
    f.relctl(&["reconcile", "--once"]).expect(0);
    tag_with(&f, "v1.1.0", "one-one\n", Some(BROKEN));
    tag_with(&f, "v1.2.0", "one-two\n", Some(&good));
    tag_with(&f, "v1.3.0", "one-three\n", Some(BROKEN));

    let run = f.relctl(&["--json", "reconcile", "--once"]).expect(1);
    let out: serde_json::Value = serde_json::from_str(&run.stdout()).expect("--json prints the outcome");
    let results: Vec<(String, String)> = out["tags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| (t["tag"].as_str().unwrap().into(), t["result"].as_str().unwrap().into()))
        .collect();
    let pairs: Vec<(&str, &str)> = results.iter().map(|(t, r)| (t.as_str(), r.as_str())).collect();
    assert_eq!(
        pairs,
        [("v1.0.0", "converged"), ("v1.1.0", "failed"), ("v1.2.0", "released"), ("v1.3.0", "failed")],
        "{}",
        run.stdout()
    );
    assert!(
        run.stderr().contains("reconcile could not converge 2 of 4 release tags: v1.1.0, v1.3.0"),
        "{}",
        run.stderr()
    );
    assert!(run.stderr().contains("cannot reconcile v1.3.0") && run.stderr().contains("hint:"), "{}", run.stderr());
    assert_eq!(f.tags("app"), ["latest", "v1.0.0", "v1.2.0"], "no version tag for the broken releases");
    assert_eq!(f.digest("app", "latest"), f.digest("app", "v1.2.0"), "latest on the highest good release");
    assert_eq!(f.remote_file("VERSION").as_deref(), Some("v1.2.0\n"));

    // v1.2.0 moves to another commit: its published images no longer match it.
    f.write("app.txt", "moved\n");
    f.commit("moved");
    git(&f.work, &["tag", "-f", "v1.2.0"]);
    git(&f.work, &["push", "-q", "-f", "origin", "v1.2.0"]);
    let published = f.digest("app", "v1.2.0");
    let run = f.relctl(&["reconcile", "--once"]).expect(1);
    assert!(
        run.stderr().contains("could not converge 3 of 4 release tags: v1.1.0, v1.2.0, v1.3.0"),
        "{}",
        run.stderr()
    );
    assert!(run.stderr().contains("release tags are immutable"), "{}", run.stderr());
    assert_eq!(f.digest("app", "v1.2.0"), published, "a published version never changes");
    assert_eq!(f.remote_file("VERSION").as_deref(), Some("v1.2.0\n"));
}

#[test]
fn the_loop_waits_out_a_failing_tags_backoff_instead_of_rebuilding_it() {
    let f = Fixture::single("backoff");
    let good = good_dockerfile(&f);
    tag_with(&f, "v1.0.0", "one\n", Some(BROKEN));
    tag_with(&f, "v1.1.0", "two\n", Some(&good));
    let mut child =
        f.command(&["reconcile", "--interval", "1s"]).stdout(Stdio::null()).stderr(Stdio::piped()).spawn().unwrap();
    let stderr = BufReader::new(child.stderr.take().unwrap());
    let (mut runs, mut lines) = (0, Vec::new());
    for line in stderr.lines() {
        let line = line.unwrap();
        if line.contains("reconciled") {
            runs += 1;
            if runs == 3 {
                Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
            }
        }
        lines.push(line);
    }
    child.wait().unwrap();
    let log = lines.join("\n");
    assert_eq!(log.matches("cannot reconcile v1.0.0").count(), 1, "built once, then it backs off:\n{log}");
    assert!(lines.iter().any(|l| l.contains("v1.0.0") && l.contains("not retried for another")), "{log}");
    assert_eq!(f.tags("app"), ["latest", "v1.1.0"]);
    assert_eq!(f.remote_file("VERSION").as_deref(), Some("v1.1.0\n"));
}

#[test]
fn a_stalled_upload_fails_within_the_stall_timeout_and_a_rerun_completes() {
    let f = Fixture::single("stall");
    let proxy = proxy::Proxy::start(&f.registry, proxy::Fault::Stall);
    let cfg = std::fs::read_to_string(f.work.join("release.yaml")).unwrap();
    let cfg = cfg.replace(&format!("registry: {}", f.registry), &format!("registry: {}", proxy.addr));
    f.write("release.yaml", &format!("{cfg}timeouts: {{ push_stall: 3s }}\n"));
    f.commit("through the proxy");
    f.tag("v1.0.0");

    let run = f.relctl(&["release", "v1.0.0"]).expect(1);
    assert!(run.stderr().contains("stalled: the engine reported nothing for 3s"), "{}", run.stderr());
    assert!(run.elapsed < Duration::from_secs(90), "gave up in {:?}, not hung", run.elapsed);
    assert!(proxy.faults() >= 2, "every attempt met the stall: {}", proxy.faults());
    assert_eq!(f.tags("app"), Vec::<String>::new(), "nothing published");
    assert_eq!(f.remote_file("VERSION"), None);

    proxy.heal();
    // Docker 20.10 can keep a stalled layer upload's transfer for the host it
    // went to, and a new push of that layer there joins it: the rerun goes to
    // the same registry through another address, with the default stall timeout
    // (3 s of silence can be a busy machine too).
    let fresh = proxy::Proxy::start(&f.registry, proxy::Fault::Stall);
    fresh.heal();
    f.write("release.yaml", &format!("{}\n", cfg.replace(&proxy.addr, &fresh.addr)));
    f.relctl(&["release", "v1.0.0"]).expect(0);
    assert_eq!(f.tags("app"), ["latest", "v1.0.0"]);
    assert_eq!(f.remote_file("VERSION").as_deref(), Some("v1.0.0\n"));
}

#[test]
fn a_connection_reset_during_an_upload_is_retried() {
    let f = Fixture::single("reset");
    let proxy = proxy::Proxy::start(&f.registry, proxy::Fault::ResetOnce);
    let cfg = std::fs::read_to_string(f.work.join("release.yaml")).unwrap();
    f.write("release.yaml", &cfg.replace(&format!("registry: {}", f.registry), &format!("registry: {}", proxy.addr)));
    f.commit("through the proxy");
    f.tag("v1.0.0");
    let started = Instant::now();
    f.relctl(&["release", "v1.0.0"]).expect(0);
    assert_eq!(proxy.faults(), 1, "the reset happened");
    assert!(started.elapsed() < Duration::from_secs(120));
    assert_eq!(f.tags("app"), ["latest", "v1.0.0"]);
}

#[test]
fn a_version_file_that_is_a_directory_or_in_dot_git_is_refused_before_building() {
    let f = Fixture::single("vfdir");
    f.write("images/readme.txt", "a directory on main\n");
    let cfg = std::fs::read_to_string(f.work.join("release.yaml")).unwrap();
    f.write("release.yaml", &format!("{cfg}version_file: images\n"));
    f.commit("version_file is a directory");
    git(&f.work, &["push", "-q", "origin", "main"]);
    f.tag("v1.0.0");
    let tip = f.remote_main();
    for cmd in [&["plan", "v1.0.0"][..], &["release", "v1.0.0"]] {
        let run = f.relctl(cmd).expect(2);
        assert!(run.stderr().contains("version_file: images is a directory on the release branch"), "{}", run.stderr());
    }
    assert_eq!(f.tags("app"), Vec::<String>::new(), "nothing built or pushed");
    assert_eq!(f.remote_main(), tip);
    assert_eq!(f.remote_file("images/readme.txt").as_deref(), Some("a directory on main\n"));

    f.write("release.yaml", &format!("{cfg}version_file: .git/config\n"));
    f.commit("version_file in .git");
    let run = f.relctl(&["plan", "v1.0.0"]).expect(2);
    assert!(run.stderr().contains(".git"), "{}", run.stderr());
}

#[test]
fn a_tag_too_long_for_an_image_tag_is_refused_and_the_others_release() {
    let f = Fixture::single("longtag");
    let long = format!("v0.9.0-{}", "a".repeat(160));
    f.tag(&long);
    f.tag("v1.0.0");
    let run = f.relctl(&["plan", &long]).expect(2);
    assert!(run.stderr().contains("limit of 128 characters"), "{}", run.stderr());
    f.relctl(&["plan", "v1.0.0"]).expect(0);
    f.relctl(&["release", "v1.0.0"]).expect(0);
    let run = f.relctl(&["reconcile", "--once"]).expect(0);
    assert!(run.stderr().contains("skipping tag"), "{}", run.stderr());
    assert_eq!(f.tags("app"), ["latest", "v1.0.0"]);
}

#[test]
fn a_stale_lock_on_the_remote_branch_is_named_after_a_short_wait() {
    let f = Fixture::single("lock");
    f.tag("v1.0.0");
    let lock = f.remote.join("refs/heads/main.lock");
    std::fs::write(&lock, "").unwrap();
    let run = f.relctl(&["release", "v1.0.0"]).expect(1);
    let err = run.stderr();
    assert!(err.contains("is locked on the remote") && err.contains(lock.to_str().unwrap()), "{err}");
    assert!(err.contains(&format!("delete {}", lock.display())), "{err}");
    assert!(run.elapsed >= Duration::from_secs(3), "backed off, not a tight loop: {:?}", run.elapsed);
    assert_eq!(f.tags("app"), ["latest", "v1.0.0"], "the images are published");
    std::fs::remove_file(&lock).unwrap();
    f.relctl(&["release", "v1.0.0"]).expect(0);
    assert_eq!(f.remote_file("VERSION").as_deref(), Some("v1.0.0\n"));
}

#[test]
fn a_remote_url_with_credentials_never_reaches_the_output() {
    let f = Fixture::single("secrets");
    f.tag("v1.0.0");
    for url in [
        "https://relctl:pa/ss@127.0.0.1:9/o/r.git?access_token=TOPSECRET1",
        "https://x-access-token:TOPSECRET2@127.0.0.1:9/o/r.git",
        "https://127.0.0.1:9/o/r.git?private_token=TOPSECRET3&x=1",
    ] {
        git(&f.work, &["remote", "set-url", "origin", url]);
        for cmd in [&["plan", "v1.0.0"][..], &["release", "v1.0.0"], &["reconcile", "--once"], &["--json", "plan"]] {
            let run = f.relctl_env(cmd, &[("RELCTL_LOG", "debug")]);
            let all = format!("{}{}", run.stdout(), run.stderr());
            for secret in ["TOPSECRET", "pa/ss", "x-access-token:"] {
                assert!(!all.contains(secret), "{cmd:?} with {url} printed {secret}:\n{all}");
            }
        }
    }
}
