//! Registry credentials the way users have them after `docker login`: a
//! `credsStore` and `credHelpers` naming Debian's docker-credential-pass,
//! over `pass` and a throwaway gpg key, in front of the htpasswd registry.

use std::path::PathBuf;
use std::process::{Command, Stdio};

use crate::common::*;

/// A gpg home, a pass store holding the registry's password through
/// docker-credential-pass, and a Docker config dir; the gpg agent is stopped on drop.
struct Keyring {
    dir: tempfile::TempDir,
}

impl Keyring {
    fn gnupg(&self) -> PathBuf {
        self.dir.path().join("g")
    }
    fn store(&self) -> PathBuf {
        self.dir.path().join("pass")
    }
    fn docker(&self) -> PathBuf {
        self.dir.path().join("docker")
    }
    fn bin(&self) -> PathBuf {
        self.dir.path().join("bin")
    }

    fn command(&self, program: &str) -> Command {
        let mut cmd = Command::new(program);
        cmd.env("GNUPGHOME", self.gnupg()).env("PASSWORD_STORE_DIR", self.store());
        cmd
    }

    fn new(registry: &str, user: &str, password: &str) -> Self {
        // Short paths: gpg-agent's socket lives under GNUPGHOME.
        let dir = tempfile::Builder::new().prefix("rk").tempdir_in("/tmp").unwrap();
        let k = Keyring { dir };
        std::fs::create_dir_all(k.gnupg()).unwrap();
        std::fs::set_permissions(k.gnupg(), std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
        let params = "%no-protection\nKey-Type: default\nSubkey-Type: default\nName-Real: relctl test\nName-Email: relctl@example.invalid\nExpire-Date: 0\n%commit\n";
        let mut gpg = k.command("gpg").args(["--batch", "--gen-key"]).stdin(Stdio::piped()).spawn().unwrap();
        std::io::Write::write_all(gpg.stdin.as_mut().unwrap(), params.as_bytes()).unwrap();
        drop(gpg.stdin.take());
        assert!(gpg.wait().unwrap().success(), "gpg key");
        assert!(k.command("pass").args(["init", "relctl@example.invalid"]).output().unwrap().status.success());
        let entry = serde_json::json!({"ServerURL": registry, "Username": user, "Secret": password}).to_string();
        let mut store = k.command("docker-credential-pass").arg("store").stdin(Stdio::piped()).spawn().unwrap();
        std::io::Write::write_all(store.stdin.as_mut().unwrap(), entry.as_bytes()).unwrap();
        drop(store.stdin.take());
        assert!(store.wait().unwrap().success(), "docker-credential-pass store");
        std::fs::create_dir_all(k.docker()).unwrap();
        std::fs::create_dir_all(k.bin()).unwrap();
        k
    }

    /// Writes the Docker config.
    fn config(&self, json: serde_json::Value) {
        std::fs::write(self.docker().join("config.json"), json.to_string()).unwrap();
    }

    /// A helper script `docker-credential-<name>` on the test PATH.
    fn helper(&self, name: &str, script: &str) {
        let path = self.bin().join(format!("docker-credential-{name}"));
        std::fs::write(&path, format!("#!/bin/sh\n{script}\n")).unwrap();
        std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    }

    fn env(&self) -> Vec<(&'static str, String)> {
        let path = format!("{}:{}", self.bin().display(), std::env::var("PATH").unwrap_or_default());
        vec![
            ("DOCKER_CONFIG", self.docker().display().to_string()),
            ("GNUPGHOME", self.gnupg().display().to_string()),
            ("PASSWORD_STORE_DIR", self.store().display().to_string()),
            ("PATH", path),
        ]
    }
}

impl Drop for Keyring {
    fn drop(&mut self) {
        let _ = self.command("gpgconf").args(["--kill", "gpg-agent"]).output();
    }
}

fn run(f: &Fixture, k: &Keyring, args: &[&str]) -> Run {
    let env = k.env();
    let env: Vec<(&str, &str)> = env.iter().map(|(a, b)| (*a, b.as_str())).collect();
    f.relctl_env(args, &env)
}

fn no_secret(run: &Run, password: &str) {
    let all = format!("{}{}", run.stdout(), run.stderr());
    assert!(!all.contains(password), "the password leaked:\n{all}");
}

#[test]
fn a_creds_store_and_cred_helpers_give_the_password_and_failures_name_the_helper() {
    let f = Fixture::single_on_auth_registry("credhelper");
    let password = env("RELCTL_TEST_AUTH_PASSWORD");
    let k = Keyring::new(&f.registry, &env("RELCTL_TEST_AUTH_USER"), &password);

    // credsStore: pass, as `docker login` leaves it on a server with pass.
    k.config(serde_json::json!({"credsStore": "pass"}));
    let r = run(&f, &k, &["release", "v1.0.0"]).expect(0);
    no_secret(&r, &password);
    assert_eq!(tags_at_auth(&f), ["latest", "v1.0.0"]);

    // credHelpers for the host wins over a credsStore that would fail.
    k.helper("broken", "echo 'keyring is locked' >&2; exit 1");
    k.config(serde_json::json!({"credsStore": "broken", "credHelpers": {f.registry.clone(): "pass"}}));
    f.write("app.txt", "two\n");
    f.commit("two");
    f.tag("v1.1.0");
    let r = run(&f, &k, &["release", "v1.1.0"]).expect(0);
    no_secret(&r, &password);

    // A helper that fails, and one that is not installed: exit 1, named, nothing pushed.
    f.write("app.txt", "three\n");
    f.commit("three");
    f.tag("v1.2.0");
    k.config(serde_json::json!({"credsStore": "broken"}));
    let r = run(&f, &k, &["release", "v1.2.0"]).expect(1);
    assert!(
        r.stderr().contains(&format!("docker-credential-broken failed for {}: keyring is locked", f.registry)),
        "{}",
        r.stderr()
    );
    k.config(serde_json::json!({"credHelpers": {f.registry.clone(): "nowhere"}}));
    let r = run(&f, &k, &["release", "v1.2.0"]).expect(1);
    assert!(r.stderr().contains("docker-credential-nowhere is not on PATH"), "{}", r.stderr());
    assert!(r.stderr().contains("golang-docker-credential-helpers"), "{}", r.stderr());
    k.helper("chatty", &format!("echo 'the password is {password}'"));
    k.config(serde_json::json!({"credsStore": "chatty"}));
    let r = run(&f, &k, &["release", "v1.2.0"]).expect(1);
    assert!(r.stderr().contains("docker-credential-chatty answered"), "{}", r.stderr());
    no_secret(&r, &password);
    assert!(!tags_at_auth(&f).contains(&"v1.2.0".to_string()));
}

/// The tags of the fixture's image on the htpasswd registry.
fn tags_at_auth(f: &Fixture) -> Vec<String> {
    let user = format!("{}:{}", env("RELCTL_TEST_AUTH_USER"), env("RELCTL_TEST_AUTH_PASSWORD"));
    let v = curl_json(&format!("http://{}/v2/{}/tags/list", f.registry, f.repo("app")), &["-u", &user]);
    let mut tags: Vec<String> = v["tags"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|t| t.as_str().map(str::to_string))
                .filter(|t| !t.starts_with("relctl-stage-"))
                .collect()
        })
        .unwrap_or_default();
    tags.sort();
    tags
}
