//! The installer's side on the real engine, registry and git remote: verify,
//! pin and roll back, offline bundles imported into a second, empty engine,
//! and `relctl init`.

use std::process::Command;

use crate::common::*;

#[test]
fn verify_after_a_release_and_after_losing_one_image() {
    let f = Fixture::example("verify");
    f.tag("v1.0.0");
    f.relctl(&["release", "v1.0.0"]).expect(0);
    f.write("VERSION", "v1.0.0\n");

    let run = f.relctl(&["verify"]).expect(0);
    for image in IMAGES {
        let digest = f.digest(image, "v1.0.0").unwrap();
        assert!(
            run.stdout().lines().any(|l| l.starts_with("ok") && l.contains(image) && l.contains(&digest)),
            "{}",
            run.stdout()
        );
    }

    delete_tag(&f.registry, &f.repo("worker"), "v1.0.0");
    let run = f.relctl(&["verify", "v1.0.0"]).expect(1);
    assert!(run.stdout().lines().any(|l| l.starts_with("MISSING") && l.contains("worker")), "{}", run.stdout());
    assert!(run.stderr().contains("v1.0.0 is not completely published"), "{}", run.stderr());
    assert!(
        run.stderr().contains(&format!("{}:v1.0.0 is not in the registry", f.repository("worker"))),
        "{}",
        run.stderr()
    );
    let json: serde_json::Value =
        serde_json::from_str(&f.relctl(&["--json", "verify", "v1.0.0"]).expect(1).stdout()).unwrap();
    let failing: Vec<&str> = json["images"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| !i["problem"].is_null())
        .map(|i| i["image"].as_str().unwrap())
        .collect();
    assert_eq!(failing, ["worker"]);
}

#[test]
fn pin_keeps_the_env_file_byte_for_byte_rolls_back_and_refuses_incomplete_versions() {
    let f = Fixture::single("pin");
    f.tag("v1.0.0");
    f.relctl(&["release", "v1.0.0"]).expect(0);
    f.write("app.txt", "two\n");
    f.commit("two");
    f.tag("v1.1.0");
    f.relctl(&["release", "v1.1.0"]).expect(0);
    f.write("VERSION", "v1.1.0\n");

    let env = "# deployment settings\r\nexport COMPOSE_PROJECT_NAME=shop\n\nIMAGE_TAG=\"v0.9.0\"   # set by relctl\nDB_URL=postgres://db:5432/shop?x=1\n# trailing comment, no newline";
    f.write("docker/.env", env);
    let run = f.relctl(&["pin", "v1.1.0"]).expect(0);
    assert!(run.stdout().contains("IMAGE_TAG v0.9.0 -> v1.1.0"), "{}", run.stdout());
    let pinned = std::fs::read_to_string(f.work.join("docker/.env")).unwrap();
    assert_eq!(pinned, env.replace("\"v0.9.0\"", "\"v1.1.0\""), "only the value changed");

    let old = f.reference("app", "v1.0.0");
    let _ = Command::new("docker").args(["rmi", "-f", &old]).output();
    let run = f.relctl(&["pin", "v1.0.0", "--env", "docker/.env", "--pull"]).expect(0);
    assert!(run.stdout().contains("rollback: v1.0.0 is older than v1.1.0 in VERSION"), "{}", run.stdout());
    assert!(run.stdout().contains(&format!("pulled {old}")), "{}", run.stdout());
    assert!(
        Command::new("docker").args(["image", "inspect", &old]).output().unwrap().status.success(),
        "--pull pulled"
    );
    assert_eq!(std::fs::read_to_string(f.work.join("docker/.env")).unwrap(), env.replace("\"v0.9.0\"", "\"v1.0.0\""));

    // An incomplete version is refused and the file stays as it was.
    delete_tag(&f.registry, &f.repo("app"), "v1.1.0");
    let run = f.relctl(&["pin", "v1.1.0"]).expect(1);
    assert!(run.stderr().contains("v1.1.0 is not completely published"), "{}", run.stderr());
    assert_eq!(std::fs::read_to_string(f.work.join("docker/.env")).unwrap(), env.replace("\"v0.9.0\"", "\"v1.0.0\""));
    let leftovers: Vec<_> = std::fs::read_dir(f.work.join("docker")).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(leftovers, [std::ffi::OsString::from(".env")], "no temp file left behind");
}

/// `docker` against the second, empty engine.
fn docker2(args: &[&str]) -> std::process::Output {
    Command::new("docker").arg("-H").arg(env("RELCTL_TEST_DOCKER2_HOST")).args(args).output().unwrap()
}

#[test]
fn export_then_import_into_an_empty_engine_and_a_flipped_byte_is_refused() {
    let f = Fixture::single("bundle");
    let commit = f.tag("v1.0.0");
    f.relctl(&["release", "v1.0.0"]).expect(0);
    let reference = f.reference("app", "v1.0.0");
    // The exporting host holds a stale image under that name: export pulls the registry's.
    let _ = Command::new("docker").args(["rmi", "-f", &reference]).output();
    let stale = Command::new("docker")
        .args(["build", "-q", "--network", "none", "-t", &reference, "-"])
        .stdin(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            use std::io::Write;
            c.stdin.take().unwrap().write_all(b"FROM scratch\nLABEL stale=yes\n")?;
            c.wait_with_output()
        })
        .unwrap();
    assert!(stale.status.success(), "{}", String::from_utf8_lossy(&stale.stderr));

    let out = f.dir.path().join("bundle");
    f.relctl(&["export", "v1.0.0", "--out", out.to_str().unwrap()]).expect(0);
    let sums = Command::new("sha256sum").arg("-c").arg("checksums.sha256").current_dir(&out).output().unwrap();
    assert!(sums.status.success(), "sha256sum -c: {}", String::from_utf8_lossy(&sums.stdout));
    assert_eq!(std::fs::read_to_string(out.join(".env")).unwrap(), "IMAGE_TAG=v1.0.0\n");
    let info = std::fs::read_to_string(out.join("images-info.txt")).unwrap();
    let digest = f.digest("app", "v1.0.0").unwrap();
    assert!(
        info.lines()
            .any(|l| l.starts_with("app\t") && l.contains(&reference) && l.contains(&digest) && l.contains(&commit)),
        "{info}"
    );

    // A copy with one flipped byte is refused by name before anything is loaded.
    let bad = f.dir.path().join("bad-bundle");
    std::fs::create_dir_all(&bad).unwrap();
    for e in std::fs::read_dir(&out).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), bad.join(e.file_name())).unwrap();
    }
    let mut tar = std::fs::read(bad.join("app.tar")).unwrap();
    let middle = tar.len() / 2;
    tar[middle] ^= 0x01;
    std::fs::write(bad.join("app.tar"), tar).unwrap();
    let import = |dir: &std::path::Path| {
        f.relctl_env(&["import", dir.to_str().unwrap()], &[("DOCKER_HOST", &env("RELCTL_TEST_DOCKER2_HOST"))])
    };
    let run = import(&bad).expect(1);
    assert!(run.stderr().contains("app.tar does not match checksums.sha256"), "{}", run.stderr());
    assert!(!docker2(&["image", "inspect", &reference]).status.success(), "nothing was loaded");

    let run = import(&out).expect(0);
    assert!(run.stdout().contains(&format!("loaded {reference}")), "{}", run.stdout());
    let ran = docker2(&["run", "--rm", "--network", "none", &reference, "cat", "/app.txt"]);
    assert!(ran.status.success(), "{}", String::from_utf8_lossy(&ran.stderr));
    assert_eq!(String::from_utf8_lossy(&ran.stdout), "one\n");
    let _ = docker2(&["rmi", "-f", &reference]);
}

#[test]
fn init_writes_files_plan_accepts_and_refuses_to_overwrite() {
    let f = Fixture::empty("init");
    for name in ["api", "web"] {
        f.write(&format!("docker/{name}/Dockerfile"), "FROM scratch\n");
    }
    f.commit("two dockerfiles");
    f.tag("v0.3.0");
    std::fs::remove_file(f.work.join("release.yaml")).ok();

    let run = f.relctl(&["init"]).expect(0);
    assert!(run.stdout().contains("wrote release.yaml"), "{}", run.stdout());
    let yaml = std::fs::read_to_string(f.work.join("release.yaml")).unwrap();
    assert!(yaml.starts_with("# yaml-language-server: $schema="), "{yaml}");
    assert!(yaml.contains("api:") && yaml.contains("web:") && !yaml.contains("nginx"), "{yaml}");
    assert!(!f.work.join("VERSION").exists(), "a tag is not a release: no VERSION");
    let workflow = std::fs::read_to_string(f.work.join(".github/workflows/release.yml")).unwrap();
    assert!(workflow.contains("tags: [\"v*\"]") && workflow.contains("contents: write"), "{workflow}");

    let plan = f.relctl(&["plan", "v0.3.0"]).expect(0).stdout();
    assert!(plan.contains("build (v0.3.0 is not in the registry)"), "{plan}");

    std::fs::write(f.work.join("release.yaml"), "mine\n").unwrap();
    let run = f.relctl(&["init"]).expect(2);
    assert!(run.stderr().contains("would overwrite release.yaml, .github/workflows/release.yml"), "{}", run.stderr());
    assert_eq!(std::fs::read_to_string(f.work.join("release.yaml")).unwrap(), "mine\n", "nothing written");
    f.relctl(&["init", "--force"]).expect(0);
    assert_eq!(std::fs::read_to_string(f.work.join("release.yaml")).unwrap(), yaml);
}

#[test]
fn completions_and_man_page_are_generated() {
    let f = Fixture::single("generated");
    let bash = f.relctl(&["completions", "bash"]).expect(0).stdout();
    assert!(bash.contains("_relctl()") && bash.contains("finalize"), "{bash}");
    let man = f.relctl(&["man"]).expect(0).stdout();
    assert!(man.starts_with(".ie") || man.contains(".TH relctl"), "{man}");
    let schema: serde_json::Value = serde_json::from_str(&f.relctl(&["schema"]).expect(0).stdout()).unwrap();
    assert_eq!(schema["additionalProperties"], false);
}

/// A `FROM scratch` Dockerfile: busybox from the context's `bin/busybox`, and `file` at `dest`.
fn busybox_dockerfile(file: &str, dest: &str) -> String {
    format!("FROM scratch\nCOPY bin/busybox /bin/busybox\nCOPY {file} {dest}\n")
}

/// `relctl init` with the test registry and the fixture's namespace, as a new user would pass them.
fn init_for_the_test_registry(f: &Fixture) -> String {
    f.relctl(&["init", "--registry", &f.registry, "--namespace", &f.namespace]).expect(0).stdout()
}

fn wrote(stdout: &str) -> Vec<&str> {
    stdout.lines().filter(|l| l.starts_with("wrote ")).collect()
}

#[test]
fn init_fits_api_and_web_with_their_own_dockerfiles_and_releases_unedited() {
    let f = Fixture::empty("init-dirs");
    std::fs::remove_dir_all(f.work.join("bin")).unwrap();
    for name in ["api", "web"] {
        std::fs::create_dir_all(f.work.join(name).join("bin")).unwrap();
        std::fs::copy(env("RELCTL_TEST_BUSYBOX"), f.work.join(name).join("bin/busybox")).unwrap();
        f.write(&format!("{name}/{name}.txt"), &format!("{name}\n"));
        f.write(&format!("{name}/Dockerfile"), &busybox_dockerfile(&format!("{name}.txt"), "/hello.txt"));
    }
    f.write("README.md", "a project\n");
    f.commit("api and web");
    git(&f.work, &["push", "-q", "origin", "main"]);

    let out = init_for_the_test_registry(&f);
    assert!(out.starts_with("found 2 Dockerfiles:\n"), "{out}");
    for name in ["api", "web"] {
        let line = format!("  image {name}  {name}/Dockerfile, context {name} (every COPY/ADD source is in {name}/)");
        assert!(out.lines().any(|l| l == line), "{line}\n{out}");
    }
    assert!(!out.contains("PLACEHOLDER") && !out.contains("check this"), "{out}");
    assert_eq!(wrote(&out), ["wrote release.yaml", "wrote .github/workflows/release.yml"]);
    assert!(out.contains("VERSION: not written"), "{out}");
    assert!(!f.work.join("VERSION").exists(), "no VERSION before a release");
    let yaml = std::fs::read_to_string(f.work.join("release.yaml")).unwrap();
    assert!(yaml.contains("\n  api: { context: api }\n  web: { context: web }\n"), "{yaml}");
    assert!(yaml.contains(&format!("registry: {} ", f.registry)), "{yaml}");
    assert!(yaml.contains(&format!("namespace: {} ", f.namespace)), "{yaml}");
    let workflow = std::fs::read_to_string(f.work.join(".github/workflows/release.yml")).unwrap();
    assert_eq!(workflow, include_str!("../../examples/workflows/init-release.yml"), "the file the lint script checks");

    f.commit("release with relctl");
    git(&f.work, &["push", "-q", "origin", "main"]);
    f.tag("v0.1.0");
    let plan = f.relctl(&["plan", "v0.1.0"]).expect(0).stdout();
    assert!(plan.contains("VERSION: (none) -> v0.1.0"), "{plan}");
    f.relctl(&["release", "v0.1.0"]).expect(0);
    for name in ["api", "web"] {
        assert_eq!(f.tags(name), ["latest", "v0.1.0"], "{name}");
        let hello = docker_run(&f.reference(name, "v0.1.0"), &["/bin/busybox", "cat", "/hello.txt"]);
        assert_eq!(hello, format!("{name}\n"));
    }
    assert_eq!(f.remote_file("VERSION").as_deref(), Some("v0.1.0\n"));
}

#[test]
fn init_gives_docker_dirs_that_copy_from_the_root_the_root_context_and_keeps_version_out() {
    let f = Fixture::empty("init-docker");
    f.write("api/hello.txt", "api\n");
    f.write("docker/api/Dockerfile", &busybox_dockerfile("api/hello.txt", "/hello.txt"));
    f.write("docker/worker/worker.sh", "echo work\n");
    f.write("docker/worker/Dockerfile", "FROM scratch\nCOPY worker.sh /worker.sh\n");
    f.commit("docker dirs");
    git(&f.work, &["push", "-q", "origin", "main"]);

    let out = init_for_the_test_registry(&f);
    for line in [
        "  image api     docker/api/Dockerfile, context . (COPY/ADD reads `bin/busybox` from the repository root)",
        "  image worker  docker/worker/Dockerfile, context docker/worker (every COPY/ADD source is in docker/worker/)",
    ] {
        assert!(out.lines().any(|l| l == line), "{line}\n{out}");
    }
    assert_eq!(
        wrote(&out)[2],
        "wrote docker/api/Dockerfile.dockerignore (keeps VERSION out of a context at the root, else the image is rebuilt every release)"
    );
    let ignore = std::fs::read_to_string(f.work.join("docker/api/Dockerfile.dockerignore")).unwrap();
    assert!(ignore.ends_with("\nVERSION\n"), "{ignore}");
    assert!(!f.work.join("VERSION").exists(), "no VERSION before a release");
    let yaml = std::fs::read_to_string(f.work.join("release.yaml")).unwrap();
    assert!(
        yaml.contains(
            "\n  api:    { context: ., dockerfile: docker/api/Dockerfile }\n  worker: { context: docker/worker }\n"
        ),
        "{yaml}"
    );

    f.commit("release with relctl");
    git(&f.work, &["push", "-q", "origin", "main"]);
    f.tag("v0.1.0");
    let plan = f.relctl(&["plan", "v0.1.0"]).expect(0);
    assert!(!plan.stdout().contains("built again in every release"), "{}", plan.stdout());
    f.relctl(&["release", "v0.1.0"]).expect(0);
    assert_eq!(docker_run(&f.reference("api", "v0.1.0"), &["/bin/busybox", "cat", "/hello.txt"]), "api\n");
    assert_eq!(f.tags("worker"), ["latest", "v0.1.0"]);
    assert_eq!(f.remote_file("VERSION").as_deref(), Some("v0.1.0\n"));

    // The VERSION commit is outside every context: the next release copies both images.
    git(&f.work, &["pull", "-q", "--ff-only", "origin", "main"]);
    f.tag("v0.1.1");
    let plan = f.relctl(&["plan", "v0.1.1"]).expect(0);
    let (stdout, stderr) = (plan.stdout(), plan.stderr());
    assert_eq!(stdout.matches("retag (unchanged since v0.1.0)").count(), 2, "{stdout}");
    assert!(!stdout.contains("built again") && !stderr.contains("built again"), "{stdout}\n{stderr}");
}

#[test]
fn init_without_a_dockerfile_writes_placeholders_and_says_so_loudly() {
    let f = Fixture::empty("init-none");
    f.write("README.md", "no images here\n");
    f.write("node_modules/some-tool/Dockerfile", "FROM scratch\n");
    f.commit("no dockerfile");

    let out = f.relctl(&["init"]).expect(0).stdout();
    assert!(!out.contains("found"), "{out}");
    for loud in [
        "NOTE: NO DOCKERFILE FOUND (Dockerfile or Dockerfile.<name>, at the root or up to 3 directories below it).",
        "NOTE: release.yaml lists five PLACEHOLDER images (server, frontend, nginx, worker, agent) whose Dockerfiles do not exist;",
        "next: edit `images:` in release.yaml, then `relctl plan`",
    ] {
        assert!(out.lines().any(|l| l == loud), "{loud}\n{out}");
    }
    let yaml = std::fs::read_to_string(f.work.join("release.yaml")).unwrap();
    assert!(yaml.contains("# PLACEHOLDERS: relctl init found no Dockerfile"), "{yaml}");
    assert!(yaml.contains("registry: docker.io ") && yaml.contains("namespace: work "), "{yaml}");
    for name in ["server", "frontend", "nginx", "worker", "agent"] {
        assert!(yaml.contains(&format!("dockerfile: docker/{name}/Dockerfile }}")), "{yaml}");
    }
    assert!(!f.work.join("VERSION").exists(), "no VERSION before a release");

    // A registry or namespace that is not one is refused, and nothing is written.
    f.write("release.yaml", "mine\n");
    let run = f.relctl(&["init", "--force", "--registry", "https://ghcr.io"]).expect(2);
    assert!(run.stderr().contains("`https://ghcr.io` is not a valid registry host[:port]"), "{}", run.stderr());
    let run = f.relctl(&["init", "--force", "--namespace", "Acme"]).expect(2);
    assert!(run.stderr().contains("`Acme` is not a valid repository namespace"), "{}", run.stderr());
    assert_eq!(std::fs::read_to_string(f.work.join("release.yaml")).unwrap(), "mine\n");
}

/// scripts/demo.sh run from a copy with a fake `cargo` first on PATH (it prints
/// its arguments and fails) and a stub services.sh (nothing is started): the
/// demo says what it is building before cargo runs, and lets cargo show its progress.
#[test]
fn demo_says_it_is_building_before_cargo_runs_and_shows_cargo_progress() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let executable = |path: &std::path::Path, content: &str| {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, content).unwrap();
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
    };
    let manifest = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    for script in ["demo.sh", "lib.sh"] {
        let text = std::fs::read_to_string(manifest.join("scripts").join(script)).unwrap();
        executable(&dir.path().join("scripts").join(script), &text);
    }
    executable(&dir.path().join("scripts/services.sh"), "#!/bin/sh\n[ \"$1\" = env ] || echo \"services.sh $*\"\n");
    executable(&dir.path().join("bin/cargo"), "#!/bin/sh\necho \"fake cargo $*\"\nexit 3\n");

    let path = format!("{}:{}", dir.path().join("bin").display(), std::env::var("PATH").unwrap());
    let out = Command::new("bash")
        .arg("-c")
        .arg("scripts/demo.sh 2>&1")
        .current_dir(dir.path())
        .env("PATH", path)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(3), "the failed build stops the demo\n{text}");
    let lines: Vec<&str> = text.lines().collect();
    let building = lines.iter().position(|l| l.contains("building relctl (the first build takes a few minutes)"));
    let cargo = lines.iter().position(|l| l.starts_with("fake cargo build"));
    assert!(building.is_some() && building < cargo, "{text}");
    let cargo_line = lines[cargo.unwrap()];
    assert!(!cargo_line.contains("--quiet") && !cargo_line.split(' ').any(|a| a == "-q"), "{cargo_line}");
    assert!(!text.contains("services.sh start"), "nothing is started when the build fails\n{text}");
}
