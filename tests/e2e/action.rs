//! The Action's install step (scripts/action-install.sh, which action.yml runs)
//! run as GitHub would run it (bash, its env), against a local HTTP server
//! standing in for the release download: the asset of the checkout's version
//! is installed when SHA256SUMS and its `--version` (version, and commit for a
//! SHA pin) agree; otherwise the step says why in one notice and builds from
//! source. The build is observed through a fake `cargo` first on PATH (test
//! only: it records its arguments and writes a stub binary), so no test
//! compiles relctl.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};

const SHA: &str = "0123456789abcdef0123456789abcdef01234567";
const OTHER_SHA: &str = "89abcdef0123456789abcdef0123456789abcdef";

/// A static file server on 127.0.0.1 (HTTP/1.0) that remembers each request's
/// path and whether it carried `Authorization: Bearer test-token`.
struct Releases {
    root: tempfile::TempDir,
    url: String,
    requests: Arc<Mutex<Vec<(String, bool)>>>,
}

impl Releases {
    fn start() -> Self {
        let root = tempfile::tempdir().unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let requests = Arc::new(Mutex::new(Vec::new()));
        let (dir, seen) = (root.path().to_path_buf(), requests.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                answer(&dir, &seen, stream);
            }
        });
        Releases { root, url, requests }
    }

    /// Publishes `binary` (a file, or a stub printing `version_line`) as the
    /// asset of release `tag`, with a SHA256SUMS that matches it or not.
    fn publish(&self, tag: &str, binary: Binary, sums_match: bool) {
        let dir = self.root.path().join(tag);
        std::fs::create_dir_all(&dir).unwrap();
        let staging = tempfile::tempdir().unwrap();
        let bin = staging.path().join("relctl");
        match binary {
            Binary::File(path) => {
                std::fs::copy(path, &bin).unwrap();
            }
            Binary::Says(line) => executable(&bin, &format!("#!/bin/sh\necho '{line}'\n")),
        }
        let asset = asset_name();
        let tar =
            Command::new("tar").arg("-C").arg(staging.path()).arg("-czf").arg(dir.join(&asset)).arg("relctl").status();
        assert!(tar.unwrap().success());
        let sums = Command::new("sha256sum").arg(&asset).current_dir(&dir).output().unwrap().stdout;
        let mut sums = String::from_utf8(sums).unwrap();
        if !sums_match {
            sums = format!("{}{}", "0".repeat(64), &sums[64..]);
        }
        // Another architecture's line first, as in the real file.
        let other = format!("{}  relctl-riscv64-unknown-linux-gnu.tar.gz\n", "1".repeat(64));
        std::fs::write(dir.join("SHA256SUMS"), format!("{other}{sums}")).unwrap();
    }

    fn requested(&self) -> Vec<(String, bool)> {
        self.requests.lock().unwrap().clone()
    }
}

enum Binary<'a> {
    File(&'a Path),
    Says(&'a str),
}

fn answer(root: &Path, seen: &Mutex<Vec<(String, bool)>>, stream: std::net::TcpStream) {
    let Ok(clone) = stream.try_clone() else { return };
    let mut reader = BufReader::new(clone);
    let mut line = String::new();
    if reader.read_line(&mut line).is_err() {
        return;
    }
    let path = line.split_whitespace().nth(1).unwrap_or("/").trim_start_matches('/').to_string();
    let mut authorized = false;
    let mut header = String::new();
    while reader.read_line(&mut header).is_ok_and(|n| n > 2) {
        authorized |= header.trim().eq_ignore_ascii_case("authorization: bearer test-token");
        header.clear();
    }
    seen.lock().unwrap().push((path.clone(), authorized));
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

fn executable(path: &Path, content: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, content).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

fn asset_name() -> String {
    let arch = String::from_utf8(Command::new("uname").arg("-m").output().unwrap().stdout).unwrap();
    format!("relctl-{}-unknown-linux-gnu.tar.gz", arch.trim())
}

/// A runner: its temp dir, GITHUB_PATH, and a fake `cargo` that records its
/// arguments and RELCTL_BUILD_COMMIT and installs a stub relctl under `--root`.
struct Runner {
    dir: tempfile::TempDir,
}

const FAKE_CARGO: &str = r#"#!/bin/sh
# Test-only stand-in for cargo (tests/e2e/action.rs): records how it was called, installs a stub.
echo "$*" >"$(dirname "$0")/cargo.args"
echo "${RELCTL_BUILD_COMMIT:-}" >"$(dirname "$0")/cargo.commit"
while [ $# -gt 0 ]; do [ "$1" = --root ] && root=$2; shift; done
mkdir -p "$root/bin"
printf '#!/bin/sh\necho "relctl 0.0.0 (commit unknown)"\n' >"$root/bin/relctl"
chmod +x "$root/bin/relctl"
"#;

/// What one run of the install step did.
struct Outcome {
    ok: bool,
    output: String,
    runner: Runner,
}

impl Outcome {
    /// The installed relctl's `--version` line, if one was installed.
    fn installed(&self) -> Option<String> {
        let bin = self.runner.dir.path().join("temp/relctl-bin/relctl");
        let out = Command::new(bin).arg("--version").output().ok()?;
        Some(String::from_utf8_lossy(&out.stdout).trim().to_string())
    }

    /// The fake cargo's arguments, if it ran.
    fn cargo(&self) -> Option<String> {
        std::fs::read_to_string(self.runner.dir.path().join("bin/cargo.args")).ok().map(|s| s.trim().to_string())
    }

    fn cargo_commit(&self) -> String {
        std::fs::read_to_string(self.runner.dir.path().join("bin/cargo.commit")).unwrap().trim().to_string()
    }

    fn notices(&self) -> Vec<&str> {
        self.output.lines().filter(|l| l.starts_with("::notice")).collect()
    }
}

/// An action checkout at `<tmp>/_actions/relctl/relctl/<reference>` whose Cargo.toml says `version`.
fn checkout(parent: &Path, reference: &str, version: &str) -> PathBuf {
    let path = parent.join("_actions/relctl/relctl").join(reference);
    std::fs::create_dir_all(&path).unwrap();
    std::fs::write(
        path.join("Cargo.toml"),
        format!(
            "[package]\nname = \"relctl\"\nversion = \"{version}\"\n\n[dependencies.semver]\nversion = \"0.0.9\"\n"
        ),
    )
    .unwrap();
    path
}

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/action-install.sh")
}

/// Runs the install step with the action checkout at `action_path` and `envs` on top.
fn install(releases: &Releases, action_path: &Path, envs: &[(&str, &str)]) -> Outcome {
    let runner = Runner { dir: tempfile::tempdir().unwrap() };
    let temp = runner.dir.path().join("temp");
    std::fs::create_dir_all(&temp).unwrap();
    executable(&runner.dir.path().join("bin/cargo"), FAKE_CARGO);
    let path = format!("{}:/usr/local/bin:/usr/bin:/bin", runner.dir.path().join("bin").display());
    let out = Command::new("bash")
        .arg(script())
        .env_clear()
        .env("PATH", path)
        .env("GITHUB_ACTION_PATH", action_path)
        .env("ACTION_REPOSITORY", "")
        .env("RELCTL_VERSION", "")
        .env("GH_TOKEN", "test-token")
        .env("RUNNER_TEMP", &temp)
        .env("GITHUB_PATH", runner.dir.path().join("github_path"))
        .env("RELCTL_RELEASES_URL", &releases.url)
        .envs(envs.iter().copied())
        .output()
        .unwrap();
    let output = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    Outcome { ok: out.status.success(), output, runner }
}

#[test]
fn action_yml_runs_the_install_script_with_values_only_through_env() {
    let text = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("action.yml")).unwrap();
    let action: serde_yaml::Value = serde_yaml::from_str(&text).unwrap();
    let step = &action["runs"]["steps"][0];
    assert_eq!(step["name"].as_str(), Some("Install relctl"));
    assert_eq!(step["run"].as_str(), Some(r#"bash "$GITHUB_ACTION_PATH/scripts/action-install.sh""#));
    for (name, value) in step["env"].as_mapping().unwrap() {
        let value = value.as_str().unwrap();
        assert!(value.starts_with("${{ ") && value.ends_with(" }}"), "{name:?}: {value}");
    }
    assert!(!text.contains("action_ref"), "github.action_ref is unreliable in composite actions");
}

#[test]
fn a_sha_pin_installs_the_release_asset_of_the_checkout_version_built_from_that_very_commit() {
    let releases = Releases::start();
    let actions = tempfile::tempdir().unwrap();
    // The real binary under test: its version and the commit it was built from.
    let commit = relctl::BUILD_COMMIT;
    let version = env!("CARGO_PKG_VERSION");
    let tag = format!("v{version}");
    releases.publish(&tag, Binary::File(Path::new(env!("CARGO_BIN_EXE_relctl"))), true);
    let sha = if commit == "unknown" { SHA } else { commit }; // not built from git: the commit check refuses below
    let action = checkout(actions.path(), sha, version);

    let run = install(&releases, &action, &[]);
    assert!(run.ok, "{}", run.output);
    if commit == "unknown" {
        assert!(run.output.contains("not the action's commit"), "{}", run.output);
        return;
    }
    assert_eq!(run.installed().unwrap(), format!("relctl {version} (commit {commit})"));
    assert_eq!(run.cargo(), None, "nothing built: {}", run.output);
    assert!(run.notices().is_empty(), "{}", run.output);
    let github_path = std::fs::read_to_string(run.runner.dir.path().join("github_path")).unwrap();
    assert_eq!(github_path.trim(), run.runner.dir.path().join("temp/relctl-bin").to_str().unwrap());
    // The SHA resolved to the release of the checkout's version; the token went along.
    let requested = releases.requested();
    assert_eq!(
        requested,
        vec![(format!("{tag}/{}", asset_name()), true), (format!("{tag}/SHA256SUMS"), true)],
        "{}",
        run.output
    );
}

#[test]
fn a_sha_pin_refuses_a_binary_of_another_commit_and_builds_that_commit_from_source() {
    let releases = Releases::start();
    let actions = tempfile::tempdir().unwrap();
    releases.publish("v9.9.9", Binary::Says(&format!("relctl 9.9.9 (commit {OTHER_SHA})")), true);
    let action = checkout(actions.path(), SHA, "9.9.9");

    let run = install(&releases, &action, &[]);
    assert!(run.ok, "{}", run.output);
    assert_eq!(
        run.notices(),
        [format!(
            "::notice title=relctl::building relctl from source: relctl of v9.9.9 was built from commit {OTHER_SHA}, not the action's commit {SHA}"
        )],
        "{}",
        run.output
    );
    let cargo = run.cargo().expect("cargo ran");
    let root = run.runner.dir.path().join("temp/relctl-cargo");
    assert_eq!(cargo, format!("install --locked --root {} --path {}", root.display(), action.display()));
    assert_eq!(run.cargo_commit(), SHA, "the source build embeds the pinned commit");
    assert_eq!(run.installed().unwrap(), "relctl 0.0.0 (commit unknown)", "the stub the fake cargo wrote");
}

#[test]
fn a_wrong_checksum_or_a_missing_asset_is_refused_and_relctl_is_built_from_source() {
    let releases = Releases::start();
    let actions = tempfile::tempdir().unwrap();
    releases.publish("v9.9.8", Binary::Says(&format!("relctl 9.9.8 (commit {SHA})")), false);

    let run = install(&releases, &checkout(actions.path(), SHA, "9.9.8"), &[]);
    assert!(run.ok, "{}", run.output);
    let asset = asset_name();
    let expected =
        format!("::notice title=relctl::building relctl from source: {asset} of v9.9.8 does not match its SHA256SUMS");
    assert_eq!(run.notices(), [expected], "{}", run.output);
    assert!(run.cargo().is_some());

    let run = install(&releases, &checkout(actions.path(), OTHER_SHA, "0.0.1"), &[]);
    assert!(run.ok, "{}", run.output);
    let expected = format!("::notice title=relctl::building relctl from source: release v0.0.1 has no asset {asset}");
    assert_eq!(run.notices(), [expected], "{}", run.output);
}

#[test]
fn a_tag_ref_compares_versions_and_a_checkout_used_as_dot_slash_compares_its_git_head() {
    let releases = Releases::start();
    let actions = tempfile::tempdir().unwrap();
    releases.publish("v9.9.9", Binary::Says(&format!("relctl 9.9.9 (commit {OTHER_SHA})")), true);
    releases.publish("v9.9.7", Binary::Says(&format!("relctl 9.9.6 (commit {SHA})")), true);

    // @v9.9.9 (or @v9): no commit in the path, so the version decides.
    let run = install(&releases, &checkout(actions.path(), "v9", "9.9.9"), &[]);
    assert!(run.ok && run.cargo().is_none(), "{}", run.output);
    assert_eq!(run.installed().unwrap(), format!("relctl 9.9.9 (commit {OTHER_SHA})"));

    let run = install(&releases, &checkout(actions.path(), "v9.9.7", "9.9.7"), &[]);
    assert_eq!(
        run.notices(),
        ["::notice title=relctl::building relctl from source: relctl of v9.9.7 is version 9.9.6, not 9.9.7"],
        "{}",
        run.output
    );

    // `uses: ./`: the workflow's own checkout, a git work tree; its HEAD is the commit.
    let work = actions.path().join("workspace");
    std::fs::create_dir_all(&work).unwrap();
    std::fs::copy(checkout(actions.path(), "scratch", "9.9.9").join("Cargo.toml"), work.join("Cargo.toml")).unwrap();
    crate::common::git(&work, &["init", "-q"]);
    crate::common::git(&work, &["add", "-A"]);
    crate::common::git(&work, &["commit", "-q", "-m", "action"]);
    let head = crate::common::git(&work, &["rev-parse", "HEAD"]);
    let run = install(&releases, &work, &[]);
    let expected = format!(
        "::notice title=relctl::building relctl from source: relctl of v9.9.9 was built from commit {OTHER_SHA}, not the action's commit {head}"
    );
    assert_eq!(run.notices(), [expected], "{}", run.output);
    assert_eq!(run.cargo_commit(), head);
}

#[test]
fn the_version_input_names_the_release_and_a_broken_checkout_fails_clearly() {
    let releases = Releases::start();
    let actions = tempfile::tempdir().unwrap();
    releases.publish("v9.9.5", Binary::Says("relctl 9.9.5 (commit unknown)"), true);
    let run = install(&releases, &checkout(actions.path(), "main", "9.9.9"), &[("RELCTL_VERSION", "9.9.5")]);
    assert!(run.ok && run.cargo().is_none(), "{}", run.output);
    assert_eq!(run.installed().unwrap(), "relctl 9.9.5 (commit unknown)");

    let run = install(&releases, &actions.path().join("nowhere"), &[]);
    assert!(!run.ok, "{}", run.output);
    assert!(run.output.contains("::error title=relctl install::"), "{}", run.output);
    assert!(run.output.contains("Cargo.toml is missing"), "{}", run.output);
    assert!(!run.output.contains("test-token"), "the token never shows: {}", run.output);
}
