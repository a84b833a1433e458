//! `relctl serve`'s dashboard on the real services, in Debian's headless
//! Chromium: each tag's state in the DOM, markup from git and the build
//! escaped, screenshots at phone and desktop width; the JSON; the token; the
//! refusal of a public listener without one; and serve's notifications.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::common::receiver::{Receiver, notify_yaml};
use crate::common::serve::{Server, curl};
use crate::common::*;

/// Debian's chromium. Missing is a failure, not a skip: scripts/services.sh installs it.
fn chromium_bin() -> PathBuf {
    let found = ["chromium", "chromium-browser"].iter().find_map(|name| {
        let out = Command::new("sh").args(["-c", &format!("command -v {name}")]).output().ok()?;
        let path = String::from_utf8_lossy(&out.stdout).trim().to_string();
        (out.status.success() && !path.is_empty()).then(|| PathBuf::from(path))
    });
    found
        .expect("chromium is not installed: `scripts/services.sh start` installs it (Debian: apt-get install chromium)")
}

/// Runs headless chromium with `args` and a fresh profile in `dir`; its stdout.
fn chromium(dir: &Path, args: &[&str]) -> String {
    let profile = tempfile::Builder::new().prefix("chromium-").tempdir_in(dir).unwrap();
    let out = Command::new("timeout")
        .arg("120")
        .arg(chromium_bin())
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(args)
        .output()
        .expect("chromium runs");
    assert!(out.status.success(), "chromium {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The PNG's width and height from its IHDR chunk, after checking the signature.
fn png_size(path: &Path) -> (u32, u32, u64) {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "not a PNG");
    assert_eq!(&bytes[12..16], b"IHDR");
    let be = |b: &[u8]| u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
    (be(&bytes[16..20]), be(&bytes[20..24]), bytes.len() as u64)
}

/// `GET /api/status` until it has a status (the first reconcile and its status are done).
fn wait_status(server: &Server) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        let (code, body) = curl(&[&format!("{}/api/status", server.base)]);
        if code == 200 {
            return serde_json::from_str(&body).unwrap();
        }
        assert!(Instant::now() < deadline, "no status after 180 s ({code}):\n{body}\n{}", server.log());
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn metric(server: &Server, name: &str) -> String {
    let (_, text) = curl(&[&format!("{}/metrics", server.base)]);
    text.lines().find(|l| l.starts_with(&format!("{name} "))).unwrap_or("").to_string()
}

#[test]
fn the_dashboard_shows_each_tag_escaped_in_chromium_at_phone_and_desktop_width() {
    let f = Fixture::single("dashboard");
    let hook = Receiver::start(&[]);
    let cfg = std::fs::read_to_string(f.work.join("release.yaml")).unwrap();
    f.write("release.yaml", &format!("{cfg}{}", notify_yaml(&[(&hook.url, "generic", "published, failed, drift")])));
    f.commit("notify");
    git(&f.work, &["push", "-q", "origin", "main"]);
    let c100 = f.tag("v1.0.0");
    let dockerfile = std::fs::read_to_string(f.work.join("Dockerfile")).unwrap();
    f.write("Dockerfile", &format!("{dockerfile}RUN [\"/bin/busybox\", \"false\"]\n"));
    let c110 = f.commit("break the build <script>alert('subject')</script>");
    f.tag("v1.1.0");

    let server = Server::start(&f, &["--no-webhook", "--interval", "0"], &[]);
    let doc = wait_status(&server);
    let states: Vec<(&str, &str)> = doc["releases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["tag"].as_str().unwrap(), r["state"].as_str().unwrap()))
        .collect();
    assert_eq!(states, [("v1.1.0", "not_built"), ("v1.0.0", "published")], "{doc:#}");
    assert_eq!(doc["releases"][0]["subject"], "break the build <script>alert('subject')</script>");
    assert_eq!(doc["releases"][1]["commit"], c100.as_str());
    assert_eq!(doc["releases"][1]["images"][0]["digest"], f.digest("app", "v1.0.0").unwrap().as_str());
    let controller = &doc["controller"];
    assert_eq!(controller["last_reconcile"]["result"], "failed", "{controller:#}");
    assert_eq!(controller["last_reconcile"]["released"], serde_json::json!(["v1.0.0"]));
    assert_eq!(controller["errors"][0]["tag"], "v1.1.0");
    assert!(!controller["errors"][0]["hint"].as_str().unwrap().is_empty());
    assert!(controller["next_run_at"].is_null(), "--interval 0: no scheduled run");

    let dir = f.dir.path();
    let dom = chromium(dir, &["--dump-dom", &format!("{}/", server.base)]);
    assert!(dom.contains("<tr id=\"tag-v1.0.0\" data-state=\"published\">"), "{dom}");
    assert!(dom.contains("<tr id=\"tag-v1.1.0\" data-state=\"failed\">"), "{dom}");
    assert!(dom.contains(">published</span>") && dom.contains(">not built</span>"), "{dom}");
    assert!(dom.contains("last attempt failed"), "{dom}");
    assert!(dom.contains(&c110[..12]) && dom.contains(&c100[..12]), "{dom}");
    // The commit subject is text: the markup shows escaped, and no element came of it.
    assert!(dom.contains("break the build &lt;script&gt;alert('subject')&lt;/script&gt;"), "{dom}");
    assert!(!dom.contains("<script"), "an element was injected:\n{dom}");
    assert!(dom.contains("id=\"error-v1.1.0\""), "the failure with its hint: {dom}");
    assert!(dom.contains("<strong>app:latest</strong>"), "{dom}");

    for (w, h) in [(390, 844), (1280, 800)] {
        let png = dir.join(format!("dashboard-{w}.png"));
        chromium(
            dir,
            &[
                &format!("--screenshot={}", png.display()),
                &format!("--window-size={w},{h}"),
                &format!("{}/", server.base),
            ],
        );
        let (pw, ph, len) = png_size(&png);
        assert_eq!((pw, ph), (w, h), "{}", png.display());
        assert!(len > 10_000, "{} is {len} bytes: an empty page?", png.display());
        // RELCTL_TEST_SCREENSHOTS=DIR keeps them and the DOM, for a person to look at.
        if let Some(keep) = std::env::var_os("RELCTL_TEST_SCREENSHOTS") {
            std::fs::create_dir_all(&keep).unwrap();
            std::fs::copy(&png, Path::new(&keep).join(png.file_name().unwrap())).unwrap();
            std::fs::write(Path::new(&keep).join("dashboard.html"), &dom).unwrap();
        }
    }

    // serve told the release and the failure, once each.
    let told = hook.wait_for(2, Duration::from_secs(30));
    let mut events: Vec<(String, String)> = told
        .iter()
        .map(|b| (b["event"].as_str().unwrap().to_string(), b["tag"].as_str().unwrap().to_string()))
        .collect();
    events.sort();
    assert_eq!(events, [("failed".to_string(), "v1.1.0".to_string()), ("published".to_string(), "v1.0.0".to_string())]);
    assert_eq!(metric(&server, "relctl_notifications_sent_total"), "relctl_notifications_sent_total 2");
    assert_eq!(metric(&server, "relctl_notifications_failed_total"), "relctl_notifications_failed_total 0");
    assert!(!server.log().contains(&hook.secret), "{}", server.log());
}

#[test]
fn the_dashboard_asks_for_the_token_and_a_public_listener_needs_one() {
    let f = Fixture::single("dashboard-token");
    // On an address anyone may reach, without a token: refused before anything starts.
    let run = f.relctl(&["serve", "--listen", "0.0.0.0:1", "--no-webhook"]).expect(2);
    let err = run.stderr();
    assert!(err.contains("0.0.0.0:1") && err.contains("RELCTL_DASHBOARD_TOKEN is not set"), "{err}");
    assert!(err.contains("hint:") && err.contains("--public-dashboard"), "{err}");

    // The token from a file, as compose secrets and systemd credentials give it.
    let token = "dashboard-token-0123456789";
    let file = f.dir.path().join("dashboard-token");
    std::fs::write(&file, format!("{token}\n")).unwrap();
    let server = Server::start(
        &f,
        &["--no-webhook", "--interval", "0"],
        &[("RELCTL_DASHBOARD_TOKEN_FILE", file.to_str().unwrap())],
    );
    let url = format!("{}/", server.base);
    let api = format!("{}/api/status", server.base);
    assert_eq!(curl(&[&url]).0, 401);
    assert_eq!(curl(&[&api]).0, 401);
    assert_eq!(curl(&["-H", "Authorization: Bearer wrong", &url]).0, 401);
    let (code, page) = curl(&["-H", &format!("Authorization: Bearer {token}"), &url]);
    assert_eq!(code, 200, "{page}");
    assert!(page.contains("<!doctype html>"));
    assert_eq!(curl(&["-u", &format!("me:{token}"), &url]).0, 200, "basic auth, any user");
    assert!(matches!(curl(&["-H", &format!("Authorization: Bearer {token}"), &api]).0, 200 | 503));
    // The rest keeps working without it.
    assert_eq!(curl(&[&format!("{}/healthz", server.base)]).0, 200);
    assert_eq!(curl(&[&format!("{}/metrics", server.base)]).0, 200);
    assert!(!server.log().contains(token), "{}", server.log());
}
