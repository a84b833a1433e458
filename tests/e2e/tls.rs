//! An engine reached over TLS, as DOCKER_HOST=tcp://…, DOCKER_TLS_VERIFY and
//! DOCKER_CERT_PATH reach it: the third test engine listens on 127.0.0.1 with
//! `--tlsverify` and certificates services.sh made; releases build with
//! BuildKit through it, and a client without a certificate is refused.

use crate::common::*;

fn buildkit_only(f: &Fixture) {
    let cfg = std::fs::read_to_string(f.work.join("release.yaml")).unwrap();
    f.write("release.yaml", &cfg.replace("build: { retries: 0 }", "build: { retries: 0, builder: buildkit }"));
    f.commit("BuildKit or nothing");
    git(&f.work, &["push", "-q", "origin", "main"]);
}

#[test]
fn a_release_builds_with_buildkit_on_an_engine_over_tls_and_a_client_without_certificates_is_refused() {
    let f = Fixture::single("tls");
    buildkit_only(&f);
    f.tag("v1.0.0");
    let host = env("RELCTL_TEST_TLS_DOCKER_HOST");
    let certs = env("RELCTL_TEST_TLS_CERT_PATH");

    let empty = tempfile::tempdir().unwrap();
    let none = empty.path().display().to_string();
    let run = f.relctl_env(
        &["release", "v1.0.0"],
        &[("DOCKER_HOST", &host), ("DOCKER_TLS_VERIFY", "1"), ("DOCKER_CERT_PATH", &none)],
    );
    let err = run.expect(1).stderr();
    assert!(err.contains(&format!("cannot reach the Docker daemon at {host}")), "{err}");
    assert_eq!(f.tags("app"), Vec::<String>::new());

    let run = f.relctl_env(
        &["release", "v1.0.0"],
        &[("DOCKER_HOST", &host), ("DOCKER_TLS_VERIFY", "1"), ("DOCKER_CERT_PATH", &certs), ("RELCTL_LOG", "debug")],
    );
    let out = run.expect(0);
    assert!(out.stderr().contains("builds go to the engine's BuildKit"), "{}", out.stderr());
    assert_eq!(f.tags("app"), ["latest", "v1.0.0"]);
    assert_eq!(f.remote_file("VERSION").as_deref(), Some("v1.0.0\n"));
}
