//! End-to-end releases on the real Docker engine, registry and a bare git
//! remote: the core semantics of `relctl release`.

use crate::common::*;

#[test]
fn tag_becomes_five_images_latest_and_a_version_commit_built_from_the_tag_only() {
    let f = Fixture::example("full");
    f.write("server/NOTES.md", "excluded by .dockerignore\n");
    f.write("server/release.txt", "tagged content\n");
    let tagged = f.commit("server content for v1.2.0");
    f.tag("v1.2.0");
    // main moves on after the tag, and the working tree is dirty: neither may leak into the build.
    f.write("server/release.txt", "later content\n");
    let later = f.commit("later work");
    git(&f.work, &["push", "-q", "origin", "main"]);
    f.write("server/release.txt", "uncommitted content\n");
    f.write("agent/untracked.sh", "echo untracked\n");

    let run = f.relctl(&["release", "v1.2.0"]).expect(0);

    for image in IMAGES {
        assert_eq!(f.tags(image), ["latest", "v1.2.0"], "{image}");
        assert_eq!(f.digest(image, "latest"), f.digest(image, "v1.2.0"), "{image}: latest is the release");
        let labels = f.labels(image, "v1.2.0");
        assert_eq!(labels["org.opencontainers.image.version"], "1.2.0", "{image}");
        assert_eq!(labels["org.opencontainers.image.revision"], tagged.as_str(), "{image}");
        // The remote is a path on this machine: no label may publish it.
        let source = labels.get("org.opencontainers.image.source").and_then(|s| s.as_str()).unwrap_or("");
        assert!(source.is_empty(), "{image}: a local remote is no source URL, yet the label is {source:?}");
        let created = labels["org.opencontainers.image.created"].as_str().unwrap();
        assert!(created.len() == 20 && created.ends_with('Z'), "{image}: created = {created}");
    }
    let server = f.reference("server", "v1.2.0");
    assert_eq!(docker_run(&server, &["cat", "/app/release.txt"]), "tagged content\n");
    assert_eq!(
        docker_run(&server, &["ls", "/app"]).split_whitespace().collect::<Vec<_>>(),
        ["release.txt", "run.sh"],
        ".dockerignore keeps NOTES.md out"
    );
    assert!(docker_run(&f.reference("agent", "v1.2.0"), &["ls", "/app"]).trim() == "agent.sh");
    // worker is built FROM this release's server (SERVER_IMAGE) with its build arg
    let worker = f.reference("worker", "v1.2.0");
    assert_eq!(docker_run(&worker, &["cat", "/app/mode"]), "mode=prod\n");
    assert_eq!(docker_run(&worker, &["cat", "/app/release.txt"]), "tagged content\n");
    assert!(docker_run(&f.reference("nginx", "v1.2.0"), &["cat", "/srv/www/index.html"]).contains("example frontend"));

    assert_eq!(f.remote_file("VERSION").as_deref(), Some("v1.2.0\n"));
    assert!(f.remote_file("README.md").unwrap().contains("current version: v1.2.0"), "also_update rewrote README");
    let msg = git(&f.remote, &["log", "-1", "--format=%B", "main"]);
    assert!(msg.starts_with("chore(release): v1.2.0 [skip ci]") && msg.contains("Release-By: relctl"), "{msg}");
    assert_eq!(git(&f.remote, &["rev-parse", "main^"]), later, "VERSION commit sits on the remote's newest tip");
    assert_eq!(git(&f.remote, &["diff", "--name-only", "main^", "main"]), "README.md\nVERSION");
    assert!(run.stdout().contains("VERSION = v1.2.0 committed as"), "{}", run.stdout());

    // A second run of the same release does nothing at all.
    let tip = f.remote_main();
    let offset = registry_log_offset();
    let again = f.relctl(&["release", "v1.2.0"]).expect(0);
    assert!(again.stdout().contains("nothing to do"), "{}", again.stdout());
    assert!(!again.stderr().contains("phase"), "no phase ran: {}", again.stderr());
    assert_eq!(f.remote_main(), tip, "no new commit");
    assert_eq!(
        registry_writes_since(offset, &f.namespace),
        Vec::<String>::new(),
        "the rerun wrote nothing to the registry"
    );
    eprintln!("rerun of a released tag took {} ms", again.elapsed.as_millis());
}

#[test]
fn hotfix_after_a_newer_release_gets_its_tag_but_not_latest_or_version() {
    let f = Fixture::single("hotfix");
    let old = git(&f.work, &["rev-parse", "HEAD"]);
    f.write("app.txt", "1.1.0\n");
    f.commit("feature");
    f.tag("v1.1.0");
    git(&f.work, &["push", "-q", "origin", "main"]);
    f.relctl(&["release", "v1.1.0"]).expect(0);
    let latest = f.digest("app", "latest").unwrap();

    git(&f.work, &["checkout", "-q", "-b", "hotfix", &old]);
    f.write("app.txt", "1.0.5\n");
    f.commit("hotfix");
    f.tag("v1.0.5");
    let run = f.relctl(&["release", "v1.0.5"]).expect(0);
    assert_eq!(f.tags("app"), ["latest", "v1.0.5", "v1.1.0"]);
    assert_eq!(f.digest("app", "latest").unwrap(), latest, "latest stays on v1.1.0");
    assert_eq!(f.remote_file("VERSION").as_deref(), Some("v1.1.0\n"), "VERSION never moves backwards");
    assert!(run.stdout().contains("stays: v1.1.0 is higher"), "{}", run.stdout());
}

#[test]
fn prerelease_and_build_metadata_get_version_tags_only() {
    let f = Fixture::single("pre");
    f.tag("v1.3.0-rc.1");
    f.relctl(&["release", "v1.3.0-rc.1"]).expect(0);
    assert_eq!(f.tags("app"), ["v1.3.0-rc.1"], "no latest for a pre-release");
    assert_eq!(f.remote_file("VERSION"), None, "pre-releases never write VERSION");

    f.write("app.txt", "two\n");
    f.commit("build 7");
    f.tag("v1.3.0+build.7");
    f.relctl(&["release", "v1.3.0+build.7"]).expect(0);
    assert_eq!(f.tags("app"), ["latest", "v1.3.0-build.7", "v1.3.0-rc.1"], "+ becomes - in the image tag");
    assert_eq!(f.remote_file("VERSION").as_deref(), Some("v1.3.0+build.7\n"), "VERSION holds the raw tag");
}

#[test]
fn failing_build_pushes_nothing_anywhere_and_commits_nothing() {
    let f = Fixture::example("fail");
    f.write("docker/agent/Dockerfile", "FROM scratch\nCOPY bin/busybox /bin/busybox\nRUN [\"/bin/busybox\", \"sh\", \"-c\", \"echo agent tests fail; exit 3\"]\n");
    f.commit("broken agent");
    f.tag("v2.0.0");
    let tip = f.remote_main();
    let run = f.relctl(&["release", "v2.0.0"]).expect(1);
    let err = run.stderr();
    assert!(err.contains("image agent: build failed"), "{err}");
    assert!(err.contains("exit code: 3") || err.contains("returned a non-zero code: 3"), "{err}");
    assert!(err.contains("gave up after 2 attempts"), "build.retries: 1 retried once: {err}");
    assert!(err.contains("no release tag was pushed"), "{err}");
    for image in IMAGES {
        assert!(f.tags(image).is_empty(), "{image} has no release tag: {:?}", f.tags(image));
    }
    assert_eq!(f.remote_main(), tip);
}

/// BuildKit (the default where the engine offers it, as here) and the classic
/// builder each publish the release, say which built it in the image's
/// history, and report a failing step with what it printed.
#[test]
fn each_builder_releases_and_reports_a_failing_step_with_its_output() {
    for (builder, buildkit) in [("auto", true), ("buildkit", true), ("classic", false)] {
        let f = Fixture::single(builder);
        let cfg = std::fs::read_to_string(f.work.join("release.yaml")).unwrap();
        f.write("release.yaml", &cfg.replace("build: {", &format!("build: {{ builder: {builder},")));
        f.commit("builder");
        f.tag("v1.0.0");
        f.relctl(&["release", "v1.0.0"]).expect(0);
        assert_eq!(f.tags("app"), ["latest", "v1.0.0"], "{builder}");
        assert_eq!(docker_run(&f.reference("app", "v1.0.0"), &["cat", "/app.txt"]), "one\n", "{builder}");
        assert!(f.labels("app", "v1.0.0")["io.relctl.inputs"].is_string(), "{builder}: input key label");
        let history = f.image_config("app", "v1.0.0")["history"].to_string();
        assert_eq!(history.contains("buildkit.dockerfile.v0"), buildkit, "{builder}: {history}");

        f.write("Dockerfile", "FROM scratch\nCOPY bin/busybox /bin/busybox\nRUN [\"/bin/busybox\", \"sh\", \"-c\", \"echo $((6 * 7)) tests failed; exit 3\"]\n");
        f.commit("failing step");
        f.tag("v1.1.0");
        let err = f.relctl(&["release", "v1.1.0"]).expect(1).stderr();
        assert!(err.contains("image app: build failed"), "{builder}: {err}");
        assert!(err.contains("exit code: 3") || err.contains("non-zero code: 3"), "{builder}: {err}");
        assert!(err.contains("last output: 42 tests failed"), "{builder}: the step's output: {err}");
        assert_eq!(f.tags("app"), ["latest", "v1.0.0"], "{builder}: nothing of v1.1.0 was pushed");
    }
}

#[test]
fn missing_dockerfile_at_the_tag_names_image_path_and_commit() {
    let f = Fixture::example("nodockerfile");
    std::fs::remove_file(f.work.join("docker/agent/Dockerfile")).unwrap();
    let commit = f.commit("drop agent dockerfile");
    f.tag("v1.0.0");
    let run = f.relctl(&["release", "v1.0.0"]).expect(2);
    assert!(
        run.stderr().contains(&format!("image agent: docker/agent/Dockerfile does not exist at commit {commit}")),
        "{}",
        run.stderr()
    );
    assert!(f.tags("server").is_empty());
}

#[test]
fn wrong_registry_password_commits_nothing_and_never_prints_the_secret() {
    let f = Fixture::single_on_auth_registry("auth");
    let auth = f.registry.clone();
    let tip = f.remote_main();
    let secret = "wr0ng-Pa55-do-not-print";
    let run = f
        .relctl_env(
            &["release", "v1.0.0"],
            &[("RELCTL_REGISTRY_USERNAME", "relctl"), ("RELCTL_REGISTRY_PASSWORD", secret)],
        )
        .expect(1);
    let all = format!("{}{}", run.stdout(), run.stderr());
    assert!(all.contains(&format!("registry {auth} refused the credentials of user `relctl`")), "{all}");
    assert!(all.contains("RELCTL_REGISTRY_PASSWORD"), "hint names the variable: {all}");
    assert!(!all.contains(secret), "the password leaked: {all}");
    assert_eq!(f.remote_main(), tip, "nothing committed");
    assert!(tags_at_auth(&auth, &f.repo("app")).is_empty(), "nothing was pushed");

    // Without credentials the registry's challenge is refused the same way.
    f.relctl(&["release", "v1.0.0"]).expect(1);

    // The right password releases, through the daemon's push and the registry API alike.
    let password = env("RELCTL_TEST_AUTH_PASSWORD");
    let run = f
        .relctl_env(
            &["release", "v1.0.0", "-v"],
            &[("RELCTL_REGISTRY_USERNAME", "relctl"), ("RELCTL_REGISTRY_PASSWORD", &password)],
        )
        .expect(0);
    assert!(!format!("{}{}", run.stdout(), run.stderr()).contains(&password), "the password leaked");
    assert_eq!(f.remote_file("VERSION").as_deref(), Some("v1.0.0\n"));
    assert_eq!(
        tags_at_auth(&auth, &f.repo("app")),
        ["latest", &format!("relctl-stage-v1.0.0-{}", &f.commit_of("v1.0.0")[..12]), "v1.0.0"],
        "the listing with credentials sees the release"
    );
}

/// BuildKit without a client session cannot answer a registry's challenge
/// (Docker Hub challenges every pull, anonymous ones too): relctl pulls such a
/// `FROM` image through the engine, with the release registry's credentials,
/// and builds again with BuildKit.
#[test]
fn a_base_image_behind_a_challenge_is_pulled_through_the_engine_for_buildkit() {
    let f = Fixture::single_on_auth_registry("frompriv");
    let password = env("RELCTL_TEST_AUTH_PASSWORD");
    let creds = [("RELCTL_REGISTRY_USERNAME", "relctl"), ("RELCTL_REGISTRY_PASSWORD", password.as_str())];
    f.relctl_env(&["release", "v1.0.0"], &creds).expect(0);
    // Only the staging tag is local: v1.0.0 exists in the registry alone.
    let base = format!("{}/{}:v1.0.0", f.registry, f.repo("app"));
    f.write("Dockerfile", &format!("FROM {base}\nRUN [\"/bin/busybox\", \"cp\", \"/app.txt\", \"/copy.txt\"]\n"));
    // No layer cache: it would put v1.0.0 in the engine first (see cache.rs), and the FROM pull is what is tested.
    let cfg = std::fs::read_to_string(f.work.join("release.yaml")).unwrap();
    f.write("release.yaml", &cfg.replace("build: { retries: 0 }", "build: { retries: 0, cache_from: none }"));
    f.commit("build FROM the released image");
    f.tag("v1.1.0");
    let run = f.relctl_env(&["release", "v1.1.0"], &creds).expect(0);
    let err = run.stderr();
    assert!(err.contains(&format!("pulling {base} through the engine")), "{err}");
    assert!(!format!("{}{err}", run.stdout()).contains(&password), "the password leaked");
    let stage = format!("{}/{}:relctl-stage-v1.1.0-{}", f.registry, f.repo("app"), &f.commit_of("v1.1.0")[..12]);
    assert_eq!(docker_run(&stage, &["cat", "/copy.txt"]), "one\n", "built FROM the pulled image");
    assert!(tags_at_auth(&f.registry, &f.repo("app")).contains(&"v1.1.0".to_string()));
}

#[test]
fn credentials_from_docker_config_json() {
    let f = Fixture::single_on_auth_registry("dockercfg");
    let auth = f.registry.clone();
    use base64::Engine;
    let token =
        base64::engine::general_purpose::STANDARD.encode(format!("relctl:{}", env("RELCTL_TEST_AUTH_PASSWORD")));
    let dir = f.dir.path().join("dockercfg");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("config.json"), format!(r#"{{"auths":{{"{auth}":{{"auth":"{token}"}}}}}}"#)).unwrap();
    f.relctl_env(&["release", "v1.0.0"], &[("DOCKER_CONFIG", dir.to_str().unwrap())]).expect(0);
    let stage = format!("relctl-stage-v1.0.0-{}", &f.commit_of("v1.0.0")[..12]);
    assert_eq!(tags_at_auth(&auth, &f.repo("app")), ["latest", &stage, "v1.0.0"]);
}

fn tags_at_auth(registry: &str, repo: &str) -> Vec<String> {
    let user = format!("relctl:{}", env("RELCTL_TEST_AUTH_PASSWORD"));
    let v = curl_json(&format!("http://{registry}/v2/{repo}/tags/list"), &["-u", &user]);
    let mut tags: Vec<String> =
        v["tags"].as_array().map(|a| a.iter().map(|t| t.as_str().unwrap().to_string()).collect()).unwrap_or_default();
    tags.sort();
    tags
}

#[test]
fn a_version_tag_built_from_another_commit_is_refused_unless_forced() {
    let f = Fixture::single("immutable");
    let first = f.tag("v1.0.0");
    f.relctl(&["release", "v1.0.0"]).expect(0);
    // The tag is moved to a new commit on the remote.
    f.write("app.txt", "changed\n");
    let second = f.commit("change after release");
    git(&f.work, &["tag", "-f", "v1.0.0"]);
    git(&f.work, &["push", "-q", "-f", "origin", "v1.0.0"]);
    let run = f.relctl(&["release", "v1.0.0"]).expect(1);
    let err = run.stderr();
    assert!(err.contains(&f.reference("app", "v1.0.0")) && err.contains(&first) && err.contains(&second), "{err}");
    assert!(err.contains("--force"), "{err}");
    assert_eq!(f.labels("app", "v1.0.0")["org.opencontainers.image.revision"], first.as_str());

    f.relctl(&["release", "v1.0.0", "--force"]).expect(0);
    assert_eq!(f.labels("app", "v1.0.0")["org.opencontainers.image.revision"], second.as_str());
}

#[test]
fn dry_run_prints_the_plan_and_changes_nothing() {
    let f = Fixture::example("dry");
    f.tag("v1.0.0");
    let tip = f.remote_main();
    let run = f.relctl(&["release", "v1.0.0", "--dry-run"]).expect(0);
    let out = run.stdout();
    assert!(out.contains("[1] build  worker") && out.contains("(after server)"), "{out}");
    assert!(out.contains("[4] commit VERSION = v1.0.0"), "{out}");
    let plan = f.relctl(&["plan", "v1.0.0"]).expect(0).stdout();
    assert_eq!(plan, out, "`relctl plan` and `--dry-run` print the same plan");
    for image in IMAGES {
        assert!(f.tags(image).is_empty());
    }
    assert_eq!(f.remote_main(), tip);
    let json: serde_json::Value = serde_json::from_str(&f.relctl(&["--json", "plan"]).expect(0).stdout()).unwrap();
    assert_eq!(json["tag"], "v1.0.0", "plan defaults to the highest tag");
    assert_eq!(json["steps"].as_array().unwrap().len(), 16);
}

#[test]
fn a_half_release_finishes_on_the_next_run() {
    let f = Fixture::example("half");
    f.tag("v1.0.0");
    let run = f.relctl(&["release", "v1.0.0", "--only", "server,frontend"]).expect(0);
    assert!(
        run.stdout().contains("stays: not every image carries v1.0.0 yet (missing: agent, nginx, worker)"),
        "{}",
        run.stdout()
    );
    assert_eq!(f.remote_file("VERSION"), None, "VERSION waits for every image");
    assert_eq!(f.tags("server"), ["latest", "v1.0.0"]);
    assert!(f.tags("agent").is_empty());

    let run = f.relctl(&["--json", "release", "v1.0.0"]).expect(0);
    let json: serde_json::Value = serde_json::from_str(&run.stdout()).unwrap();
    let built: Vec<&str> = json["report"]["images"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["built"] == true)
        .map(|i| i["image"].as_str().unwrap())
        .collect();
    assert_eq!(built, ["agent", "nginx", "worker"], "only the missing images are built");
    assert_eq!(f.remote_file("VERSION").as_deref(), Some("v1.0.0\n"));
}

#[test]
fn unreachable_daemon_names_docker_host() {
    let f = Fixture::single("nodaemon");
    f.tag("v1.0.0");
    let run = f.relctl_env(&["release", "v1.0.0"], &[("DOCKER_HOST", "unix:///nonexistent/docker.sock")]).expect(1);
    assert!(
        run.stderr().contains("cannot reach the Docker daemon at unix:///nonexistent/docker.sock"),
        "{}",
        run.stderr()
    );
    assert!(run.stderr().contains("DOCKER_HOST"), "{}", run.stderr());
}
