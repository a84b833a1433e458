//! `relctl reconcile` and `relctl serve` on the real engine, registry and git
//! remote: convergence, idempotence, drift repair, races, crashes and webhooks.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::serve::*;
use crate::common::*;

fn release_commits(f: &Fixture) -> Vec<String> {
    git(&f.remote, &["log", "--format=%s", "main"])
        .lines()
        .filter(|l| l.starts_with("chore(release)"))
        .map(str::to_string)
        .collect()
}

#[test]
fn reconcile_releases_unreleased_tags_oldest_first_then_does_nothing() {
    let f = Fixture::single("rec");
    f.tag("v1.0.0");
    f.write("app.txt", "two\n");
    f.commit("two");
    f.tag("v1.1.0");
    git(&f.work, &["tag", "nightly"]);
    git(&f.work, &["push", "-q", "origin", "nightly"]);

    let run = f.relctl(&["reconcile", "--once"]).expect(0);
    assert!(run.stdout().contains("released: v1.0.0, v1.1.0"), "{}", run.stdout());
    assert_eq!(run.stderr().matches("skipping non-semver tag").count(), 1, "{}", run.stderr());
    assert_eq!(f.tags("app"), ["latest", "v1.0.0", "v1.1.0"]);
    assert_eq!(f.digest("app", "latest"), f.digest("app", "v1.1.0"));
    assert_eq!(f.remote_file("VERSION").as_deref(), Some("v1.1.0\n"));
    assert_eq!(release_commits(&f), ["chore(release): v1.1.0 [skip ci]", "chore(release): v1.0.0 [skip ci]"]);

    let tip = f.remote_main();
    let offset = registry_log_offset();
    let again = f.relctl(&["reconcile", "--once"]).expect(0);
    assert!(again.stdout().contains("nothing to do: 2 release tags in scope are converged"), "{}", again.stdout());
    assert_eq!(f.remote_main(), tip, "no commit");
    assert_eq!(registry_writes_since(offset, &f.namespace), Vec::<String>::new(), "no push");
    assert!(!again.stderr().contains("phase"), "{}", again.stderr());
}

#[test]
fn reconcile_repairs_a_deleted_tag_and_a_latest_moved_by_hand() {
    let f = Fixture::single("drift");
    f.tag("v1.0.0");
    f.write("app.txt", "two\n");
    f.commit("two");
    f.tag("v1.1.0");
    f.relctl(&["reconcile", "--once"]).expect(0);
    let repo = f.repo("app");

    delete_tag(&f.registry, &repo, "v1.0.0");
    assert_eq!(f.tags("app"), ["latest", "v1.1.0"]);
    let run = f.relctl(&["reconcile", "--once"]).expect(0);
    assert!(run.stderr().contains("drift: app not in the registry for v1.0.0"), "{}", run.stderr());
    assert_eq!(f.tags("app"), ["latest", "v1.0.0", "v1.1.0"]);
    let commit = git(&f.work, &["rev-parse", "v1.0.0"]);
    assert_eq!(
        f.labels("app", "v1.0.0")["org.opencontainers.image.revision"],
        commit.as_str(),
        "rebuilt from the tag's commit"
    );

    // Someone points latest at the older release by hand.
    move_tag(&f.registry, &repo, "v1.0.0", "latest");
    assert_eq!(f.digest("app", "latest"), f.digest("app", "v1.0.0"));

    let run = f.relctl(&["reconcile", "--once"]).expect(0);
    assert!(
        run.stderr().contains(&format!(
            "drift: {}:latest points at {}",
            format_args!("{}/{repo}", f.registry),
            f.digest("app", "v1.0.0").unwrap()
        )),
        "{}",
        run.stderr()
    );
    assert_eq!(f.digest("app", "latest"), f.digest("app", "v1.1.0"), "latest is back on the highest release");
    assert_eq!(release_commits(&f).len(), 2, "VERSION was already right: no new commit");
}

#[test]
fn two_concurrent_releases_of_one_tag_make_one_version_commit() {
    let f = Fixture::single("concurrent");
    f.tag("v1.0.0");
    let spawn = || f.command(&["release", "v1.0.0"]).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let (a, b) = (spawn(), spawn());
    let (a, b) = (a.wait_with_output().unwrap(), b.wait_with_output().unwrap());
    assert!(a.status.success(), "{}", String::from_utf8_lossy(&a.stderr));
    assert!(b.status.success(), "{}", String::from_utf8_lossy(&b.stderr));
    assert_eq!(release_commits(&f), ["chore(release): v1.0.0 [skip ci]"], "exactly one VERSION commit");
    assert_eq!(f.remote_file("VERSION").as_deref(), Some("v1.0.0\n"));
    assert_eq!(f.digest("app", "latest"), f.digest("app", "v1.0.0"));
}

/// The example with 16 MiB of random data in three images, built one at a
/// time, so uploads take a while; `extra` is added to the build settings.
fn big_example(name: &str, extra: &str) -> Fixture {
    let f = Fixture::example(name);
    let cfg = std::fs::read_to_string(f.work.join("release.yaml")).unwrap();
    f.write("release.yaml", &cfg.replace("parallelism: 2", &format!("parallelism: 1{extra}")));
    let random = Command::new("head").args(["-c", "16777216", "/dev/urandom"]).output().unwrap().stdout;
    std::fs::write(f.work.join("server/blob.bin"), &random).unwrap();
    for (dir, df) in [("frontend", "docker/frontend/Dockerfile"), ("agent", "docker/agent/Dockerfile")] {
        std::fs::write(f.work.join(format!("{dir}/blob.bin")), &random[..random.len() - 1]).unwrap();
        let text = std::fs::read_to_string(f.work.join(df)).unwrap();
        std::fs::write(f.work.join(df), format!("{text}COPY {dir}/blob.bin /blob.bin\n")).unwrap();
    }
    f.commit("big images");
    git(&f.work, &["push", "-q", "origin", "main"]);
    f.tag("v1.0.0");
    f
}

/// SIGKILLs `relctl release v1.0.0` at its first log line containing `kill_at`;
/// returns the images that carry v1.0.0 afterwards.
fn kill_release_at(f: &Fixture, kill_at: &str) -> Vec<&'static str> {
    let mut child = f.command(&["release", "v1.0.0"]).stdout(Stdio::null()).stderr(Stdio::piped()).spawn().unwrap();
    let stderr = BufReader::new(child.stderr.take().unwrap());
    let mut seen = Vec::new();
    for line in stderr.lines() {
        let line = line.unwrap();
        let hit = line.contains(kill_at);
        seen.push(line);
        if hit {
            child.kill().unwrap(); // SIGKILL
            break;
        }
    }
    child.wait().unwrap();
    assert!(seen.iter().any(|l| l.contains(kill_at)), "killed at `{kill_at}`: {seen:#?}");
    assert_eq!(f.remote_file("VERSION"), None, "VERSION never names a version with missing images");
    IMAGES.into_iter().filter(|i| f.tags(i).contains(&"v1.0.0".to_string())).collect()
}

fn reconcile_completes(f: &Fixture) {
    f.relctl(&["reconcile", "--once"]).expect(0);
    for image in IMAGES {
        assert_eq!(f.tags(image), ["latest", "v1.0.0"], "{image}");
    }
    assert_eq!(f.remote_file("VERSION").as_deref(), Some("v1.0.0\n"));
}

#[test]
fn sigkill_while_images_upload_beside_builds_publishes_no_release_tag_and_reconcile_completes() {
    let f = big_example("crash-stage", "");
    let published = kill_release_at(&f, ": uploaded sha256:");
    assert!(published.is_empty(), "phase 1 writes staging tags only: {published:?}");
    assert!(IMAGES.iter().any(|i| !f.staging_tags(i).is_empty()), "the first image was uploaded");
    reconcile_completes(&f);
}

#[test]
fn sigkill_during_the_push_phase_then_reconcile_completes_the_release() {
    // Without staging every upload happens in phase 2, so the kill lands between version tags.
    let f = big_example("crash", ", stage: false");
    let published = kill_release_at(&f, ": done v1.0.0");
    assert!(!published.is_empty() && published.len() < 5, "the kill left the release half published: {published:?}");
    reconcile_completes(&f);
}

pub(crate) fn sign(secret: &str, body: &[u8]) -> String {
    use hmac::Mac;
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(body);
    let hex: String = mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256={hex}")
}

pub(crate) fn post(
    base: &str,
    event: &str,
    body: &[u8],
    signature: Option<&str>,
    dir: &std::path::Path,
) -> (u16, String) {
    let file = dir.join("body.json");
    std::fs::write(&file, body).unwrap();
    let event_header = format!("X-GitHub-Event: {event}");
    let mut args = vec!["-X", "POST", "-H", event_header.as_str(), "--data-binary"];
    let data = format!("@{}", file.display());
    args.push(&data);
    let sig_header;
    if let Some(s) = signature {
        sig_header = format!("X-Hub-Signature-256: {s}");
        args.extend(["-H", sig_header.as_str()]);
    }
    let url = format!("{base}/webhook");
    args.push(&url);
    curl(&args)
}

#[test]
fn serve_verifies_webhooks_and_releases_a_signed_tag_push() {
    let f = Fixture::single("serve");
    let secret = "It's a Secret to Everybody";
    // Without a secret, serve refuses to start.
    f.relctl(&["serve", "--listen", "127.0.0.1:0"]).expect(2);

    let server = Server::start(&f, &[], &[("RELCTL_WEBHOOK_SECRET", secret)]);

    // GitHub's documented test vector verifies; one changed byte does not.
    let sig = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";
    assert_eq!(post(&server.base, "ping", b"Hello, World!", Some(sig), f.dir.path()).0, 202);
    assert_eq!(post(&server.base, "ping", b"Hello, World?", Some(sig), f.dir.path()).0, 401);
    assert_eq!(post(&server.base, "push", br#"{"ref":"refs/tags/v1.0.0"}"#, None, f.dir.path()).0, 401, "unsigned");
    let big = vec![b' '; 1024 * 1024 + 1];
    assert_eq!(post(&server.base, "push", &big, Some(&sign(secret, &big)), f.dir.path()).0, 413);
    let branch = br#"{"ref":"refs/heads/main","head_commit":{"message":"chore(release): v0.9.0 [skip ci]\n\nRelease-By: relctl"}}"#;
    let (code, text) = post(&server.base, "push", branch, Some(&sign(secret, branch)), f.dir.path());
    assert_eq!((code, text.trim()), (202, "ignored: push to refs/heads/main is relctl's own VERSION commit"));
    assert!(f.tags("app").is_empty(), "nothing was released by rejected or ignored events");

    // A maintainer pushes a tag; GitHub delivers the signed event.
    f.tag("v1.0.0");
    let body = br#"{"ref":"refs/tags/v1.0.0","deleted":false}"#;
    let started = Instant::now();
    let (code, text) = post(&server.base, "push", body, Some(&sign(secret, body)), f.dir.path());
    assert_eq!((code, text.trim()), (202, "reconciling v1.0.0"));
    assert!(started.elapsed() < Duration::from_secs(2), "the webhook answers at once; the work runs in the background");
    let deadline = Instant::now() + Duration::from_secs(120);
    while f.remote_file("VERSION").as_deref() != Some("v1.0.0\n") {
        assert!(Instant::now() < deadline, "serve did not release v1.0.0; registry has {:?}", f.tags("app"));
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(f.tags("app"), ["latest", "v1.0.0"]);

    let (code, text) = curl(&[&format!("{}/metrics", server.base)]);
    assert_eq!(code, 200);
    let lines = text.lines().map(|l| Ok(l.to_string()));
    let scrape = prometheus_parse::Scrape::parse(lines).expect("valid Prometheus text");
    let value = |name: &str, label: Option<(&str, &str)>| -> f64 {
        scrape
            .samples
            .iter()
            .find(|s| s.metric == name && label.is_none_or(|(k, v)| s.labels.get(k) == Some(v)))
            .map(|s| match s.value {
                prometheus_parse::Value::Counter(v)
                | prometheus_parse::Value::Gauge(v)
                | prometheus_parse::Value::Untyped(v) => v,
                _ => f64::NAN,
            })
            .unwrap_or_else(|| panic!("no sample {name}:\n{text}"))
    };
    assert!(
        value("relctl_reconciles_total", Some(("result", "success"))) >= 2.0,
        "start-up run plus the webhook run:\n{text}"
    );
    assert_eq!(value("relctl_webhooks_total", Some(("outcome", "accepted"))), 1.0);
    assert_eq!(value("relctl_webhooks_total", Some(("outcome", "unauthorized"))), 2.0);
    assert_eq!(value("relctl_webhooks_total", Some(("outcome", "too_large"))), 1.0);
    assert_eq!(value("relctl_image_builds_total", None), 1.0);
    assert!(value("relctl_registry_requests_total", None) > 0.0);
    assert!(value("relctl_last_success_timestamp_seconds", None) > 1.7e9);
    assert!(scrape.samples.iter().any(|s| s.metric == "relctl_reconcile_duration_seconds_count"), "histogram present");

    // SIGTERM: finish what is in flight and exit 0.
    let mut server = server;
    Command::new("kill").args(["-TERM", &server.child.id().to_string()]).status().unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(status) = server.child.try_wait().unwrap() {
            assert_eq!(status.code(), Some(0));
            break;
        }
        assert!(Instant::now() < deadline, "serve did not stop on SIGTERM");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn reconcile_interval_stops_cleanly_on_sigterm() {
    let f = Fixture::single("interval");
    let mut child =
        f.command(&["reconcile", "--interval", "1s"]).stdout(Stdio::null()).stderr(Stdio::piped()).spawn().unwrap();
    let stderr = BufReader::new(child.stderr.take().unwrap());
    let mut runs = 0;
    for line in stderr.lines() {
        if line.unwrap().contains("reconciled") {
            runs += 1;
            if runs == 2 {
                Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
            }
        }
    }
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(0));
    assert!(runs >= 2);
}

const MIB: usize = 1024 * 1024;

/// Opens `n` connections that send a webhook head announcing 1 MiB (with
/// `signature`, if any), then as much of the body as the server takes within
/// 3 s, one byte short of 1 MiB, and hold.
fn held_bodies(server: &Server, n: usize, signature: Option<&str>) -> (Vec<std::net::TcpStream>, usize) {
    let mut streams: Vec<_> = (0..n)
        .map(|_| {
            let mut s = server.connect();
            s.write_all(webhook_head(MIB, signature).as_bytes()).unwrap();
            s
        })
        .collect();
    let sent = feed(&mut streams, MIB - 1, Duration::from_secs(3));
    (streams, sent.iter().sum())
}

/// Checks that /healthz answers within a second while `what` is going on.
fn healthz_during(server: &Server, what: &str) {
    let (code, took) = server.healthz();
    eprintln!("{what}: /healthz {code} in {} ms", took.as_millis());
    assert_eq!(code, 200, "/healthz answers during {what}:\n{}", server.log());
    assert!(took < Duration::from_secs(1), "/healthz took {took:?} during {what}");
}

/// Waits until serve has no HTTP connection open but the one asking.
fn wait_connections_closed(server: &Server) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (_, text) = curl(&[&format!("{}/metrics", server.base)]);
        if text.lines().any(|l| l == "relctl_http_connections 1") {
            return;
        }
        assert!(Instant::now() < deadline, "connections still open:\n{text}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn serve_keeps_memory_flat_and_answers_healthz_under_200_held_open_webhook_bodies() {
    let f = Fixture::single("flood");
    let server = Server::start(&f, &[], &[("RELCTL_WEBHOOK_SECRET", "flood secret")]);
    server.wait_reconciles(1, Duration::from_secs(60));
    // Warm up: one refused webhook of each kind, so lazily built state is in the baseline.
    let fake = format!("sha256={}", "0".repeat(64));
    for sig in [None, Some(fake.as_str())] {
        drop(held_bodies(&server, 1, sig));
    }
    std::thread::sleep(Duration::from_millis(500));
    let before = server.rss_kib();

    // The peak RSS, sampled every 10 ms while the bodies arrive and are held.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let sampler = {
        let (stop, status) = (stop.clone(), format!("/proc/{}/status", server.child.id()));
        std::thread::spawn(move || {
            let mut peak = 0u64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let text = std::fs::read_to_string(&status).unwrap_or_default();
                let rss = text.lines().find_map(|l| l.strip_prefix("VmRSS:")).map(|v| v.trim_end_matches("kB").trim());
                peak = peak.max(rss.and_then(|v| v.parse().ok()).unwrap_or(0));
                std::thread::sleep(Duration::from_millis(10));
            }
            peak
        })
    };

    // 200 unsigned bodies: refused from their headers, before any body is read.
    let (unsigned, sent) = held_bodies(&server, 200, None);
    healthz_during(&server, "200 held unsigned bodies");
    // 200 bodies with a well-formed (wrong) signature: read a few at a time, within the limit.
    let (signed, sent_signed) = held_bodies(&server, 200, Some(&fake));
    healthz_during(&server, "200 unsigned + 200 signature-shaped held bodies");
    std::thread::sleep(Duration::from_millis(500));
    let during = server.rss_kib();
    drop((unsigned, signed));
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let peak = sampler.join().unwrap();
    wait_connections_closed(&server);
    std::thread::sleep(Duration::from_millis(500));
    let after = server.rss_kib();

    let grew = |rss: u64| rss.saturating_sub(before);
    eprintln!(
        "RSS KiB: before {before}, peak {peak} (+{}), while held {during} (+{}), after {after} (+{}); \
         bodies taken by the server's end: {} KiB unsigned, {} KiB signature-shaped, of 200 MiB each",
        grew(peak),
        grew(during),
        grew(after),
        sent / 1024,
        sent_signed / 1024
    );
    assert!(grew(peak) < 12 * 1024, "a flood of held bodies raised RSS by {} KiB at its peak", grew(peak));
    assert!(grew(after) < 12 * 1024, "RSS after the burst: {after} KiB, was {before} KiB");
}

#[test]
fn serve_closes_slow_header_connections_after_the_header_timeout_and_keeps_answering_healthz() {
    let f = Fixture::single("slowloris");
    // Started with systemd's default soft limit of 1,024 open files, which 1,100 connections
    // exceed (then accept fails and nothing answers): serve raises it to fit its connection cap.
    let envs = [("RELCTL_SERVE_HEADER_TIMEOUT_MS", "3000")];
    let server = Server::start_with_open_files(&f, Some(1024), &["--no-webhook"], &envs);
    server.wait_reconciles(1, Duration::from_secs(60));
    assert!(server.open_files_limit() > 1100, "soft open-file limit {}", server.open_files_limit());
    let before = server.rss_kib();

    // 1,100 connections: most send half a request line and wait, some send nothing at all.
    let opened = Instant::now();
    let mut slowest_connect = Duration::ZERO;
    let mut slow: Vec<_> = (0..1100)
        .map(|i| {
            let started = Instant::now();
            let mut s = server.connect();
            slowest_connect = slowest_connect.max(started.elapsed());
            if i % 10 != 0 {
                s.write_all(b"GET /heal").unwrap();
            }
            s
        })
        .collect();
    eprintln!("1,100 connections opened in {} ms", opened.elapsed().as_millis());
    // A full accept queue drops the SYN; the client retries a second later.
    assert!(slowest_connect < Duration::from_millis(500), "a connect took {slowest_connect:?}");
    healthz_during(&server, "1,100 slow-header connections");
    let grew = server.rss_kib().saturating_sub(before);
    eprintln!("1,100 slow-header connections: RSS +{grew} KiB");
    assert!(grew < 40 * 1024, "1,100 idle connections raised RSS by {grew} KiB");

    // Each is closed by the server once the header timeout has passed, not before.
    wait_closed(&mut slow[0], Duration::from_secs(10)).expect("the first slow connection is closed");
    let first = opened.elapsed();
    eprintln!("the first slow connection was closed {} ms after it opened", first.as_millis());
    assert!(first >= Duration::from_millis(2500) && first < Duration::from_secs(5), "closed after {first:?}");
    for (i, s) in slow.iter_mut().enumerate() {
        assert!(wait_closed(s, Duration::from_secs(5)).is_some(), "slow connection {i} still open");
    }
    assert!(opened.elapsed() < Duration::from_secs(8), "all closed {:?} after the first opened", opened.elapsed());
    assert_eq!(server.healthz().0, 200);
}

#[test]
fn serve_times_out_a_stalled_body_and_a_stalled_reader_and_closes_connections_over_the_cap() {
    let f = Fixture::single("stall");
    let server = Server::start(
        &f,
        &[],
        &[
            ("RELCTL_WEBHOOK_SECRET", "stall secret"),
            ("RELCTL_SERVE_BODY_TIMEOUT_MS", "1000"),
            ("RELCTL_SERVE_WRITE_TIMEOUT_MS", "1000"),
            ("RELCTL_SERVE_MAX_CONNECTIONS", "20"),
        ],
    );

    // A well-formed signature, 100 bytes announced, 10 sent, then nothing.
    let mut stalled = server.connect();
    let fake = format!("sha256={}", "0".repeat(64));
    stalled.write_all(format!("{}{{\"ref\":\"v", webhook_head(100, Some(&fake))).as_bytes()).unwrap();
    let (took, answer) = wait_closed(&mut stalled, Duration::from_secs(5)).expect("the stalled body is answered");
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(took >= Duration::from_millis(900) && took < Duration::from_secs(3), "{took:?}");

    // An unsigned one is refused from its headers alone, before its body arrives.
    let mut unsigned = server.connect();
    unsigned.write_all(webhook_head(100, None).as_bytes()).unwrap();
    let (took, answer) = wait_closed(&mut unsigned, Duration::from_secs(5)).expect("answered");
    assert!(answer.starts_with("HTTP/1.1 401"), "{answer}");
    assert!(took < Duration::from_millis(500), "{took:?}");

    // A client that pipelines 10,000 requests for /metrics and reads none of the answers:
    // once the socket buffers are full, the server's writes stall, and it closes the connection.
    let mut greedy = server.connect();
    let requests = b"GET /metrics HTTP/1.1\r\nHost: relctl\r\n\r\n".repeat(10_000);
    greedy.set_write_timeout(Some(Duration::from_secs(3))).unwrap();
    let _ = greedy.write_all(&requests); // may stall too, once the server stops reading
    std::thread::sleep(Duration::from_millis(2500));
    let (_, text) = curl(&[&format!("{}/metrics", server.base)]);
    assert!(text.lines().any(|l| l == "relctl_http_connections 1"), "the stalled connection is closed:\n{text}");
    drop(greedy);

    // With a cap of 20, of 21 idle connections one is closed at once, unanswered; once they go,
    // service resumes. (Which one depends on when the server saw the last request's client leave.)
    let conns: Vec<_> = (0..21).map(|_| server.connect()).collect();
    let opened = Instant::now();
    let closed = |conns: &[std::net::TcpStream]| {
        let gone = |s: &std::net::TcpStream| {
            s.set_nonblocking(true).unwrap();
            !matches!(s.peek(&mut [0u8; 1]), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock)
        };
        conns.iter().filter(|s| gone(s)).count()
    };
    while closed(&conns) == 0 {
        assert!(opened.elapsed() < Duration::from_secs(1), "none closed over the cap:\n{}", server.log());
        std::thread::sleep(Duration::from_millis(10));
    }
    std::thread::sleep(Duration::from_millis(200));
    let refused = closed(&conns);
    drop(conns);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(server.healthz().0, 200);
    let (code, text) = curl(&[&format!("{}/metrics", server.base)]);
    assert_eq!(code, 200);
    let line = format!("relctl_http_connections_refused_total {refused}");
    assert!(text.lines().any(|l| l == line), "{line}:\n{text}");
    assert!(text.lines().any(|l| l == "relctl_webhooks_total{outcome=\"timeout\"} 1"), "{text}");
}

#[test]
fn serve_on_an_interval_releases_four_tags_pushed_at_once_without_a_webhook() {
    // GitHub sends no push event when more than three tags are pushed at once.
    let f = Fixture::single("fourtags");
    let server = Server::start(&f, &["--no-webhook", "--interval", "2s"], &[]);
    server.wait_reconciles(1, Duration::from_secs(60));

    for (i, tag) in ["v1.0.0", "v1.1.0", "v1.2.0", "v1.3.0"].iter().enumerate() {
        f.write("app.txt", &format!("{i}\n"));
        f.commit(tag);
        git(&f.work, &["tag", tag]);
    }
    git(&f.work, &["push", "-q", "origin", "main", "--tags"]);

    let deadline = Instant::now() + Duration::from_secs(240);
    while f.remote_file("VERSION").as_deref() != Some("v1.3.0\n") {
        assert!(Instant::now() < deadline, "serve did not release the four tags; registry has {:?}", f.tags("app"));
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(f.tags("app"), ["latest", "v1.0.0", "v1.1.0", "v1.2.0", "v1.3.0"]);
    assert_eq!(f.digest("app", "latest"), f.digest("app", "v1.3.0"));
    assert!(server.log().matches(" reconciled ").count() >= 2, "released by a run after the first:\n{}", server.log());
}
