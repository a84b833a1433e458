//! The layer cache of earlier releases on an engine that has never built the
//! image (a fresh CI runner): from the registry, and from an imported bundle
//! alone. A dependency step whose output is unique to each run (a random
//! UUID) proves it was not run again when its layer is the earlier release's.

use std::process::Command;

use crate::common::*;

/// A dependency step before the code: slow, and different every time it
/// runs. `NONCE` (the fixture's namespace) keeps it out of every engine's
/// cache of earlier test runs.
const DOCKERFILE: &str = "FROM scratch
COPY bin/busybox /bin/busybox
RUN [\"/bin/busybox\", \"sh\", \"-c\", \"/bin/busybox sleep 1; /bin/busybox cat /proc/sys/kernel/random/uuid > /deps; echo NONCE >> /deps\"]
COPY app.txt /app.txt
";

fn dockerfile(f: &Fixture) -> String {
    DOCKERFILE.replace("NONCE", &f.namespace)
}

/// [`Fixture::single`] with the slow dependency step, its first release published from the default engine.
fn released(tag: &str) -> Fixture {
    let f = Fixture::single(tag);
    f.write("Dockerfile", &dockerfile(&f));
    f.write("app.txt", &format!("one {}\n", f.namespace));
    f.commit("a dependency step before the code");
    git(&f.work, &["push", "-q", "origin", "main"]);
    f.tag("v1.0.0");
    f.relctl(&["release", "v1.0.0"]).expect(0);
    git(&f.work, &["pull", "-q", "--ff-only", "origin", "main"]);
    f
}

/// The uncompressed digest of the dependency step's layer in `tag`'s image.
fn deps_layer(f: &Fixture, tag: &str) -> String {
    let config = f.image_config("app", tag);
    config["rootfs"]["diff_ids"][1].as_str().expect("three layers").to_string()
}

fn on_engine2(f: &Fixture, args: &[&str]) -> Run {
    f.relctl_env(args, &[("DOCKER_HOST", &env("RELCTL_TEST_DOCKER2_HOST"))])
}

fn docker2(args: &[&str]) -> std::process::Output {
    Command::new("docker").arg("-H").arg(env("RELCTL_TEST_DOCKER2_HOST")).args(args).output().unwrap()
}

/// Changes only the code and tags `tag`.
fn change_code(f: &Fixture, tag: &str) {
    f.write("app.txt", &format!("{tag} {}\n", f.namespace));
    f.commit("code change");
    git(&f.work, &["push", "-q", "origin", "HEAD:main"]);
    f.tag(tag);
}

#[test]
fn a_fresh_engine_reuses_the_previous_releases_layers_from_the_registry() {
    let f = released("cache-fresh");
    let v1 = deps_layer(&f, "v1.0.0");
    change_code(&f, "v1.1.0");
    let plan = on_engine2(&f, &["plan", "v1.1.0"]).expect(0).stdout();
    let previous = f.reference("app", "v1.0.0");
    assert!(plan.contains(&format!("cache from {previous}")), "{plan}");

    on_engine2(&f, &["release", "v1.1.0"]).expect(0);
    assert_eq!(deps_layer(&f, "v1.1.0"), v1, "the dependency step was not run again");
    let config = f.image_config("app", "v1.1.0");
    assert_eq!(config["config"]["Labels"]["org.opencontainers.image.version"], "1.1.0");
    let ran = docker2(&[
        "run",
        "--rm",
        "--pull",
        "always",
        "--network",
        "none",
        &f.reference("app", "v1.1.0"),
        "/bin/busybox",
        "cat",
        "/app.txt",
    ]);
    assert_eq!(
        String::from_utf8_lossy(&ran.stdout),
        format!("v1.1.0 {}\n", f.namespace),
        "{}",
        String::from_utf8_lossy(&ran.stderr)
    );

    // Without the cache the step runs again: its layer is new.
    git(&f.work, &["pull", "-q", "--ff-only", "origin", "main"]);
    change_code(&f, "v1.2.0");
    on_engine2(&f, &["release", "v1.2.0", "--no-cache"]).expect(0);
    assert_ne!(deps_layer(&f, "v1.2.0"), v1, "--no-cache reads no cache");
    for tag in ["v1.1.0", "v1.2.0"] {
        let _ = docker2(&["rmi", "-f", &f.reference("app", tag)]);
    }
}

#[test]
fn an_imported_bundle_is_the_cache_of_an_offline_rebuild() {
    let f = released("cache-offline");
    let v1 = deps_layer(&f, "v1.0.0");
    let bundle = f.dir.path().join("bundle");
    f.relctl(&["export", "v1.0.0", "--out", bundle.to_str().unwrap()]).expect(0);
    on_engine2(&f, &["import", bundle.to_str().unwrap()]).expect(0);
    // The registry no longer has v1.0.0: the engine's copy is the only cache.
    delete_tag(&f.registry, &f.repo("app"), "v1.0.0");
    assert_eq!(digest_at(&f.registry, &f.repo("app"), "v1.0.0"), None);

    change_code(&f, "v1.1.0");
    on_engine2(&f, &["release", "v1.1.0"]).expect(0);
    assert_eq!(deps_layer(&f, "v1.1.0"), v1, "the dependency step came from the imported image");
    for tag in ["v1.0.0", "v1.1.0"] {
        let _ = docker2(&["rmi", "-f", &f.reference("app", tag)]);
    }
}

#[test]
fn a_registry_that_needs_credentials_is_read_through_the_engine() {
    // BuildKit alone cannot log in without a client session: relctl pulls the
    // previous release into the empty engine first.
    let f = Fixture::single_on_auth_registry("cache-auth");
    f.write("Dockerfile", &dockerfile(&f));
    f.write("app.txt", &format!("one {}\n", f.namespace));
    f.commit("a dependency step before the code");
    git(&f.work, &["push", "-q", "origin", "main"]);
    f.tag("v1.1.0");
    let password = env("RELCTL_TEST_AUTH_PASSWORD");
    let creds = [("RELCTL_REGISTRY_USERNAME", "relctl"), ("RELCTL_REGISTRY_PASSWORD", password.as_str())];
    f.relctl_env(&["release", "v1.1.0"], &creds).expect(0);
    git(&f.work, &["pull", "-q", "--ff-only", "origin", "main"]);
    change_code(&f, "v1.2.0");
    let engine2 = env("RELCTL_TEST_DOCKER2_HOST");
    let run = f.relctl_env(&["release", "v1.2.0", "-v"], &[creds[0], creds[1], ("DOCKER_HOST", &engine2)]).expect(0);
    let previous = f.reference("app", "v1.1.0");
    assert!(run.stderr().contains(&format!("cache: pulled {previous}")), "{}", run.stderr());
    assert!(!run.stderr().contains(&password), "the password leaked");

    let user = format!("relctl:{password}");
    let layer = |tag: &str| {
        let accept = "Accept: application/vnd.docker.distribution.manifest.v2+json";
        let url = format!("http://{}/v2/{}", f.registry, f.repo("app"));
        let manifest = curl_json(&format!("{url}/manifests/{tag}"), &["-u", &user, "-H", accept]);
        let config =
            curl_json(&format!("{url}/blobs/{}", manifest["config"]["digest"].as_str().unwrap()), &["-L", "-u", &user]);
        config["rootfs"]["diff_ids"][1].as_str().expect("three layers").to_string()
    };
    assert_eq!(layer("v1.2.0"), layer("v1.1.0"), "the dependency step was not run again");
    for tag in ["v1.1.0", "v1.2.0"] {
        let _ = docker2(&["rmi", "-f", &f.reference("app", tag)]);
    }
}
