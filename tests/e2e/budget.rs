//! A steady-state reconcile costs no pulls: `tags/list` and `HEAD` only, the
//! labels of every digest relctl has seen coming from its cache (on disk for
//! `--once`, in memory in `serve`), counted in the registry's access log.

use std::process::{Command, Stdio};
use std::time::Duration;

use crate::common::serve::Server;
use crate::common::*;

/// relctl's `GET`s (manifests and blobs: what Docker Hub counts as pulls) among `requests`.
fn gets(requests: &[String]) -> Vec<&String> {
    requests.iter().filter(|l| l.contains("\"GET ") && !l.contains("/tags/list")).collect()
}

#[test]
fn a_steady_state_reconcile_fetches_only_digests_it_has_never_seen() {
    let f = Fixture::single("budget");
    f.tag("v1.0.0");
    f.relctl(&["release", "v1.0.0"]).expect(0);
    f.relctl(&["reconcile", "--once"]).expect(0);

    let offset = registry_log_offset();
    f.relctl(&["reconcile", "--once"]).expect(0);
    let requests = registry_requests_since(offset, &f.namespace);
    assert!(!requests.is_empty());
    assert_eq!(gets(&requests), Vec::<&String>::new(), "--once reads its disk cache: {requests:#?}");
    assert!(requests.iter().all(|l| l.contains("\"HEAD ") || l.contains("/tags/list")), "{requests:#?}");

    // serve: its second reconcile reads the labels from memory.
    let server = Server::start(&f, &["--interval", "1s", "--no-webhook"], &[]);
    server.wait_reconciles(1, Duration::from_secs(30));
    let offset = registry_log_offset();
    server.wait_reconciles(3, Duration::from_secs(30));
    let requests = registry_requests_since(offset, &f.namespace);
    assert!(!requests.is_empty());
    assert_eq!(gets(&requests), Vec::<&String>::new(), "serve: {requests:#?}");
    drop(server);

    // `latest` moved by hand to an image relctl has never seen: exactly that digest is read.
    let handmade = f.reference("app", "handmade");
    let build = Command::new("docker")
        .args(["build", "-q", "--network", "none", "-t", &handmade, "-"])
        .stdin(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .and_then(|mut c| {
            use std::io::Write;
            let dockerfile = format!("FROM scratch\nLABEL handmade={}\n", f.namespace);
            c.stdin.take().unwrap().write_all(dockerfile.as_bytes())?;
            c.wait_with_output()
        })
        .unwrap();
    assert!(build.status.success());
    assert!(Command::new("docker").args(["push", "-q", &handmade]).output().unwrap().status.success());
    let _ = Command::new("docker").args(["rmi", &handmade]).output();
    move_tag(&f.registry, &f.repo("app"), "handmade", "latest");
    let digest = digest_at(&f.registry, &f.repo("app"), "latest").unwrap();
    let offset = registry_log_offset();
    f.relctl(&["status"]).expect(1);
    let requests = registry_requests_since(offset, &f.namespace);
    let gets = gets(&requests);
    assert_eq!(gets.len(), 2, "the new digest's manifest and its config: {requests:#?}");
    assert!(gets[0].contains(&format!("/manifests/{digest}")), "{requests:#?}");
    assert!(gets[1].contains("/blobs/sha256:"), "{requests:#?}");
}
