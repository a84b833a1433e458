//! ssh git remotes against the test sshd that scripts/services.sh starts on
//! 127.0.0.1: a release fetches and pushes VERSION over ssh with a key file
//! and with ssh-agent; an unknown host key is refused with its fingerprint;
//! a key the server does not know gives a clear error.

use std::process::Command;

use crate::common::*;

/// The fixture's remote, reached over ssh as root on the test sshd.
fn over_ssh(f: &Fixture) -> String {
    let url = format!("ssh://root@127.0.0.1:{}{}", env("RELCTL_TEST_SSH_PORT"), f.remote.display());
    git(&f.work, &["remote", "set-url", "origin", &url]);
    url
}

/// A known_hosts file that lists the test sshd's host key (or not).
fn known_hosts(f: &Fixture, listed: bool) -> String {
    let path = f.dir.path().join(if listed { "known_hosts" } else { "empty_known_hosts" });
    let key = std::fs::read_to_string(env("RELCTL_TEST_SSH_HOST_KEY")).unwrap();
    let key: Vec<&str> = key.split_whitespace().take(2).collect();
    let line = format!("[127.0.0.1]:{} {}\n", env("RELCTL_TEST_SSH_PORT"), key.join(" "));
    std::fs::write(&path, if listed { line } else { String::new() }).unwrap();
    path.display().to_string()
}

/// Commits `text` as app.txt and pushes it tagged `tag` to the remote over ssh with `key`.
fn tag_over_ssh(f: &Fixture, tag: &str, text: &str, key: &str, hosts: &str) {
    f.write("app.txt", &format!("{text}\n"));
    f.commit(text);
    git(&f.work, &["tag", tag]);
    let ssh = format!("core.sshCommand=ssh -i {key} -o UserKnownHostsFile={hosts}");
    git(&f.work, &["-c", &ssh, "push", "-q", "origin", tag]);
}

#[test]
fn a_release_fetches_and_pushes_over_ssh_with_a_key_file_and_with_the_agent() {
    let f = Fixture::single("ssh");
    f.tag("v1.0.0");
    over_ssh(&f);
    let hosts = known_hosts(&f, true);
    let key = env("RELCTL_TEST_SSH_KEY");
    let run = f.relctl_env(&["release", "v1.0.0"], &[("RELCTL_GIT_SSH_KEY", &key), ("RELCTL_GIT_KNOWN_HOSTS", &hosts)]);
    run.expect(0);
    assert_eq!(f.remote_file("VERSION").as_deref(), Some("v1.0.0\n"), "VERSION pushed over ssh");

    // ssh-agent holding the key, and no key file anywhere.
    tag_over_ssh(&f, "v1.1.0", "two", &key, &hosts);
    let sock = f.dir.path().join("agent.sock");
    let agent = Command::new("ssh-agent").arg("-a").arg(&sock).output().unwrap();
    assert!(agent.status.success());
    let pid = String::from_utf8_lossy(&agent.stdout)
        .split(';')
        .find_map(|part| part.trim().strip_prefix("SSH_AGENT_PID=").map(str::to_string))
        .unwrap();
    let added = Command::new("ssh-add").arg(&key).env("SSH_AUTH_SOCK", &sock).output().unwrap();
    assert!(added.status.success(), "{}", String::from_utf8_lossy(&added.stderr));
    let sock = sock.display().to_string();
    let run = f.relctl_env(&["release", "v1.1.0"], &[("SSH_AUTH_SOCK", &sock), ("RELCTL_GIT_KNOWN_HOSTS", &hosts)]);
    let _ = Command::new("kill").arg(&pid).status();
    run.expect(0);
    assert_eq!(f.remote_file("VERSION").as_deref(), Some("v1.1.0\n"));

    // A key with a passphrase: authorized, and read with RELCTL_GIT_SSH_PASSPHRASE.
    let locked = f.dir.path().join("locked_key");
    let made =
        Command::new("ssh-keygen").args(["-q", "-t", "ed25519", "-N", "open sesame", "-f"]).arg(&locked).status();
    assert!(made.unwrap().success());
    let public = std::fs::read_to_string(locked.with_extension("pub")).unwrap();
    let authorized = std::path::Path::new(&key).with_file_name("authorized_keys");
    let mut keys = std::fs::read_to_string(&authorized).unwrap();
    keys.push_str(&public);
    std::fs::write(&authorized, keys).unwrap();
    tag_over_ssh(&f, "v1.2.0", "three", &key, &hosts);
    let locked = locked.display().to_string();
    let vars = [
        ("RELCTL_GIT_SSH_KEY", locked.as_str()),
        ("RELCTL_GIT_SSH_PASSPHRASE", "open sesame"),
        ("RELCTL_GIT_KNOWN_HOSTS", hosts.as_str()),
    ];
    let run = f.relctl_env(&["release", "v1.2.0"], &vars).expect(0);
    assert!(!run.stderr().contains("open sesame"), "the passphrase never shows");
    assert_eq!(f.remote_file("VERSION").as_deref(), Some("v1.2.0\n"));
}

#[test]
fn an_unknown_host_key_and_an_unknown_client_key_are_refused_clearly() {
    let f = Fixture::single("sshrefused");
    f.tag("v1.0.0");
    over_ssh(&f);
    let key = env("RELCTL_TEST_SSH_KEY");
    let empty = known_hosts(&f, false);
    let run = f.relctl_env(&["release", "v1.0.0"], &[("RELCTL_GIT_SSH_KEY", &key), ("RELCTL_GIT_KNOWN_HOSTS", &empty)]);
    let run = run.expect(1);
    let err = run.stderr();
    let port = env("RELCTL_TEST_SSH_PORT");
    assert!(err.contains(&format!("the host key of [127.0.0.1]:{port} (SHA256:")), "{err}");
    assert!(err.contains(&format!("ssh-keyscan -p {port} 127.0.0.1")), "{err}");
    assert_eq!(f.tags("app"), Vec::<String>::new(), "nothing built");

    let stranger = f.dir.path().join("stranger");
    let made = Command::new("ssh-keygen").args(["-q", "-t", "ed25519", "-N", "", "-f"]).arg(&stranger).status();
    assert!(made.unwrap().success());
    let hosts = known_hosts(&f, true);
    let stranger = stranger.display().to_string();
    let vars = [("RELCTL_GIT_SSH_KEY", stranger.as_str()), ("RELCTL_GIT_KNOWN_HOSTS", hosts.as_str())];
    let err = f.relctl_env(&["release", "v1.0.0"], &vars).expect(1).stderr();
    assert!(err.contains("the ssh server refused every key relctl has"), "{err}");
    assert!(err.contains("must be a deploy key of the repository"), "{err}");
}
