//! The Action's install step, run as GitHub would run it (bash, its env),
//! against a local HTTP server standing in for the release download: a
//! matching asset is installed; one that does not match SHA256SUMS is not.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Serves the files under `root` over HTTP/1.0 on 127.0.0.1; returns the base URL.
fn serve(root: PathBuf) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut line = String::new();
            if reader.read_line(&mut line).is_err() {
                continue;
            }
            let path = line.split_whitespace().nth(1).unwrap_or("/").trim_start_matches('/').to_string();
            let mut out = stream;
            match std::fs::read(root.join(&path)) {
                Ok(body) if !path.contains("..") => {
                    let head = format!("HTTP/1.0 200 OK\r\nContent-Length: {}\r\n\r\n", body.len());
                    let _ = out.write_all(head.as_bytes()).and_then(|()| out.write_all(&body));
                }
                _ => {
                    let _ = out.write_all(b"HTTP/1.0 404 Not Found\r\nContent-Length: 0\r\n\r\n");
                }
            }
        }
    });
    url
}

/// The install step's script from action.yml.
fn install_script() -> String {
    let text = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("action.yml")).unwrap();
    let action: serde_yaml::Value = serde_yaml::from_str(&text).unwrap();
    let step = &action["runs"]["steps"][0];
    assert_eq!(step["name"].as_str(), Some("Install relctl"));
    step["run"].as_str().unwrap().to_string()
}

/// Publishes relctl as the release `tag`'s asset with a SHA256SUMS (`good` or not) under `root`.
fn publish(root: &Path, tag: &str, good: bool) {
    let dir = root.join(tag);
    std::fs::create_dir_all(&dir).unwrap();
    let bin = tempfile::tempdir().unwrap();
    std::fs::copy(env!("CARGO_BIN_EXE_relctl"), bin.path().join("relctl")).unwrap();
    let arch = String::from_utf8(Command::new("uname").arg("-m").output().unwrap().stdout).unwrap();
    let asset = format!("relctl-{}-unknown-linux-gnu.tar.gz", arch.trim());
    let tar = Command::new("tar").arg("-C").arg(bin.path()).arg("-czf").arg(dir.join(&asset)).arg("relctl").status();
    assert!(tar.unwrap().success());
    let sums = Command::new("sha256sum").arg(&asset).current_dir(&dir).output().unwrap().stdout;
    let mut sums = String::from_utf8(sums).unwrap();
    if !good {
        sums = format!("{}{}", "0".repeat(64), &sums[64..]);
    }
    std::fs::write(dir.join("SHA256SUMS"), sums).unwrap();
}

/// Runs the install step for `tag`; returns (success, output, the runner's temp dir).
fn install(url: &str, tag: &str) -> (bool, String, tempfile::TempDir) {
    let runner = tempfile::tempdir().unwrap();
    let out = Command::new("bash")
        .arg("-c")
        .arg(install_script())
        .env_clear()
        // No cargo on this PATH: the fallback build fails at once instead of compiling.
        .env("PATH", "/usr/local/bin:/usr/bin:/bin")
        .env("ACTION_REPOSITORY", "relctl/relctl")
        .env("ACTION_REF", tag)
        .env("ACTION_PATH", "/nonexistent")
        .env("RELCTL_VERSION", "")
        .env("GH_TOKEN", "test-token")
        .env("RUNNER_TEMP", runner.path())
        .env("GITHUB_PATH", runner.path().join("github_path"))
        .env("RELCTL_RELEASES_URL", url)
        .output()
        .unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.success(), text, runner)
}

#[test]
fn the_action_installs_a_release_asset_that_matches_its_sha256sums_and_refuses_one_that_does_not() {
    let releases = tempfile::tempdir().unwrap();
    publish(releases.path(), "v9.9.9", true);
    publish(releases.path(), "v9.9.8", false);
    let url = serve(releases.path().to_path_buf());

    let (ok, out, runner) = install(&url, "v9.9.9");
    assert!(ok, "{out}");
    let installed = runner.path().join("relctl-bin/relctl");
    let version = Command::new(&installed).arg("--version").output().unwrap();
    assert!(String::from_utf8_lossy(&version.stdout).starts_with("relctl "), "{version:?}");
    let path = std::fs::read_to_string(runner.path().join("github_path")).unwrap();
    assert_eq!(path.trim(), runner.path().join("relctl-bin").to_str().unwrap());

    let (ok, out, runner) = install(&url, "v9.9.8");
    assert!(!ok, "a wrong checksum must not install: {out}");
    assert!(out.contains("with a matching SHA256SUMS for v9.9.8; building relctl from source"), "{out}");
    assert!(!runner.path().join("relctl-bin/relctl").exists());

    let (ok, out, _) = install(&url, "v0.0.0");
    assert!(!ok && out.contains("building relctl from source"), "no asset at all: {out}");
}
