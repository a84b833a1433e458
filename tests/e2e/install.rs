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
    assert_eq!(std::fs::read_to_string(f.work.join("VERSION")).unwrap(), "v0.3.0\n");
    let workflow = std::fs::read_to_string(f.work.join(".github/workflows/release.yml")).unwrap();
    assert!(workflow.contains("tags: [\"v*\"]") && workflow.contains("contents: write"), "{workflow}");

    let plan = f.relctl(&["plan", "v0.3.0"]).expect(0).stdout();
    assert!(plan.contains("build (v0.3.0 is not in the registry)"), "{plan}");

    std::fs::write(f.work.join("VERSION"), "mine\n").unwrap();
    let run = f.relctl(&["init"]).expect(2);
    assert!(
        run.stderr().contains("would overwrite release.yaml, VERSION, .github/workflows/release.yml"),
        "{}",
        run.stderr()
    );
    assert_eq!(std::fs::read_to_string(f.work.join("VERSION")).unwrap(), "mine\n", "nothing written");
    f.relctl(&["init", "--force"]).expect(0);
    assert_eq!(std::fs::read_to_string(f.work.join("VERSION")).unwrap(), "v0.3.0\n");
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
