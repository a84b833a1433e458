//! Multi-platform releases on the real engine (BuildKit's `platform`
//! parameter), registry and git remote: OCI image indexes checked with
//! skopeo and pulled for arm64 by a second engine, a child built on its
//! parent's image of each platform, all or nothing over every (image,
//! platform), retagging whole indexes, fan-out per platform, and the
//! installer's side (verify, export). Foreign-platform Dockerfiles only COPY:
//! this machine cannot run arm64 programs.

use std::path::Path;
use std::process::Command;

use crate::common::*;
use serde_json::Value;

const CONFIG: &str = r#"registry: REGISTRY
namespace: NAMESPACE
project: multi
build: { retries: 0 }
platforms: [linux/amd64, linux/arm64]
images:
  base: { context: base }
  app:  { context: app, depends_on: [base] }
  solo: { context: solo, platforms: [linux/amd64] }
"#;

const INDEX_TYPES: &str = "Accept: application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json";
const PLATFORMS: [&str; 2] = ["linux/amd64", "linux/arm64"];

/// base (COPY only) on amd64 and arm64, app FROM base on both, solo (with a RUN) on amd64 only.
fn multi(tag: &str) -> Fixture {
    let f = Fixture::empty(tag);
    f.write("release.yaml", &CONFIG.replace("REGISTRY", &f.registry).replace("NAMESPACE", &f.namespace));
    f.write("base/Dockerfile", "FROM scratch\nCOPY busybox /bin/busybox\nCOPY base.txt /base.txt\n");
    // Content of its own: two tests' builds with the same steps at once would
    // crash the shared engine's BuildKit (see the last test of this file).
    f.write("base/base.txt", &format!("base one {}\n", f.namespace));
    f.write("app/Dockerfile", "ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\nCOPY app.txt /app.txt\n");
    f.write("app/app.txt", &format!("app one {}\n", f.namespace));
    f.write(
        "solo/Dockerfile",
        "FROM scratch\nCOPY busybox /bin/busybox\nRUN [\"/bin/busybox\", \"--install\", \"-s\", \"/bin\"]\nCOPY solo.txt /solo.txt\n",
    );
    f.write("solo/solo.txt", &format!("solo {}\n", f.namespace));
    for dir in ["base", "solo"] {
        std::fs::copy(f.work.join("bin/busybox"), f.work.join(dir).join("busybox")).unwrap();
    }
    f.commit("multi-platform app");
    git(&f.work, &["push", "-q", "origin", "main"]);
    f
}

/// The manifest (or index) `reference` names in `image`'s repository, with its digest.
fn manifest(f: &Fixture, image: &str, reference: &str) -> (Value, String) {
    let url = format!("http://{}/v2/{}/manifests/{reference}", f.registry, f.repo(image));
    let auth = format!("relctl:{}", env("RELCTL_TEST_AUTH_PASSWORD"));
    let mut args = vec!["-H", INDEX_TYPES];
    // The htpasswd registry asks everyone for the test user's password.
    if f.registry == env("RELCTL_TEST_AUTH_REGISTRY") {
        args.extend(["-u", auth.as_str()]);
    }
    let digest = head_digest(&url, &args).unwrap_or_else(|| panic!("{image}:{reference} exists"));
    (curl_json(&url, &args), digest)
}

/// (platform, digest) of each entry of the index under `tag`.
fn entries(f: &Fixture, image: &str, tag: &str) -> Vec<(String, String)> {
    let (index, _) = manifest(f, image, tag);
    let list = index["manifests"].as_array().unwrap_or_else(|| panic!("{image}:{tag} is an index: {index}"));
    list.iter()
        .map(|m| {
            let p = &m["platform"];
            (
                format!("{}/{}", p["os"].as_str().unwrap(), p["architecture"].as_str().unwrap()),
                m["digest"].as_str().unwrap().into(),
            )
        })
        .collect()
}

fn skopeo(args: &[&str]) -> Value {
    let out = Command::new("skopeo").args(args).output().expect("skopeo runs");
    assert!(out.status.success(), "skopeo {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The layer digests of `image`'s manifest `digest`, base first.
fn layers(f: &Fixture, image: &str, digest: &str) -> Vec<String> {
    let (m, _) = manifest(f, image, digest);
    m["layers"].as_array().unwrap().iter().map(|l| l["digest"].as_str().unwrap().to_string()).collect()
}

/// The paths in the layer blob `digest` of `image`.
fn layer_files(f: &Fixture, image: &str, digest: &str) -> String {
    let url = format!("http://{}/v2/{}/blobs/{digest}", f.registry, f.repo(image));
    let out = Command::new("sh").arg("-c").arg(format!("curl -sfL '{url}' | tar -tzf -")).output().unwrap();
    assert!(out.status.success(), "layer {digest}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn engine2(args: &[&str]) -> std::process::Output {
    Command::new("docker").arg("-H").arg(env("RELCTL_TEST_DOCKER2_HOST")).args(args).output().unwrap()
}

#[test]
fn a_multi_platform_release_is_an_index_of_each_platform_built_from_the_parents_same_platform() {
    let f = multi("platforms");
    let commit = f.tag("v1.0.0");
    let run = f.relctl(&["--json", "release", "v1.0.0"]).expect(0);
    let report: Value = serde_json::from_str(&run.stdout()).unwrap();

    for image in ["base", "app"] {
        let (index, digest) = manifest(&f, image, "v1.0.0");
        assert_eq!(index["mediaType"], "application/vnd.oci.image.index.v1+json", "{image}: {index}");
        let got = entries(&f, image, "v1.0.0");
        assert_eq!(
            got.iter().map(|(p, _)| p.as_str()).collect::<Vec<_>>(),
            PLATFORMS,
            "{image}: nothing else: {index}"
        );
        assert_eq!(manifest(&f, image, "latest").1, digest, "{image}: latest is the index");
        // skopeo reads the same index, and each platform's config.
        let reference = format!("docker://{}", f.reference(image, "v1.0.0"));
        let raw = skopeo(&["inspect", "--raw", "--tls-verify=false", &reference]);
        assert_eq!(raw["manifests"].as_array().unwrap().len(), 2, "{raw}");
        for arch in ["amd64", "arm64"] {
            let config = skopeo(&[
                "--override-arch",
                arch,
                "--override-os",
                "linux",
                "inspect",
                "--config",
                "--tls-verify=false",
                &reference,
            ]);
            assert_eq!(
                (config["architecture"].as_str(), config["os"].as_str()),
                (Some(arch), Some("linux")),
                "{image}"
            );
            let labels = &config["config"]["Labels"];
            assert_eq!(labels["org.opencontainers.image.revision"], commit.as_str(), "{image} {arch}: {labels}");
            assert_eq!(labels["org.opencontainers.image.version"], "1.0.0");
        }
        let reported = report["report"]["images"].as_array().unwrap().iter().find(|i| i["image"] == image).unwrap();
        assert_eq!(reported["digest"], digest.as_str());
        let platforms: Vec<(String, String)> = reported["platforms"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| (p["platform"].as_str().unwrap().into(), p["digest"].as_str().unwrap().into()))
            .collect();
        assert_eq!(platforms, got, "{image}: --json gives each platform's digest");
    }
    // app's image of each platform is built on base's image of that platform.
    let (base, app) = (entries(&f, "base", "v1.0.0"), entries(&f, "app", "v1.0.0"));
    for ((platform, base_digest), (_, app_digest)) in base.iter().zip(&app) {
        let (base_layers, app_layers) = (layers(&f, "base", base_digest), layers(&f, "app", app_digest));
        assert_eq!(app_layers[..base_layers.len()], base_layers[..], "{platform}: app is FROM base's {platform} image");
        assert!(layer_files(&f, "app", &app_layers[1]).contains("base.txt"), "{platform}: base's file is in app");
    }
    let (solo, _) = manifest(&f, "solo", "v1.0.0");
    assert_eq!(
        solo["mediaType"], "application/vnd.docker.distribution.manifest.v2+json",
        "one platform: a plain manifest"
    );
    assert_eq!(f.remote_file("VERSION").as_deref(), Some("v1.0.0\n"));

    // Another engine pulls the arm64 image.
    let reference = f.reference("app", "v1.0.0");
    let pull = engine2(&["pull", "--platform", "linux/arm64", &reference]);
    assert!(pull.status.success(), "{}", String::from_utf8_lossy(&pull.stderr));
    let arch = engine2(&["image", "inspect", "--format", "{{.Os}}/{{.Architecture}}", &reference]);
    assert_eq!(String::from_utf8_lossy(&arch.stdout).trim(), "linux/arm64");
    engine2(&["image", "rm", &reference]);

    // Unchanged inputs: each whole index is retagged, no layer moves.
    f.write("NOTES.md", "unrelated\n");
    f.commit("notes");
    f.tag("v1.0.1");
    let offset = registry_log_offset();
    f.relctl(&["release", "v1.0.1"]).expect(0);
    for image in ["base", "app", "solo"] {
        assert_eq!(manifest(&f, image, "v1.0.1").1, manifest(&f, image, "v1.0.0").1, "{image}: same index");
    }
    let uploads: Vec<String> =
        registry_writes_since(offset, &f.namespace).into_iter().filter(|l| l.contains("/blobs/")).collect();
    assert!(uploads.is_empty(), "no blob upload: {uploads:#?}");

    // A change to base rebuilds every platform of base and of its child.
    f.write("base/base.txt", "base two\n");
    f.commit("base changes");
    f.tag("v1.0.2");
    f.relctl(&["release", "v1.0.2"]).expect(0);
    for image in ["base", "app"] {
        let (before, after) = (entries(&f, image, "v1.0.1"), entries(&f, image, "v1.0.2"));
        for ((platform, old), (_, new)) in before.iter().zip(&after) {
            assert_ne!(old, new, "{image} {platform} is rebuilt");
        }
    }
    assert_eq!(manifest(&f, "solo", "v1.0.2").1, manifest(&f, "solo", "v1.0.1").1, "solo is unchanged");
}

/// A file the kernel refuses as an aarch64 program: what running a real
/// arm64 binary without QEMU gives on this amd64 machine.
fn aarch64_program() -> Vec<u8> {
    let mut elf = b"\x7fELF\x02\x01\x01\0\0\0\0\0\0\0\0\0".to_vec();
    elf.extend(2u16.to_le_bytes()); // e_type: executable
    elf.extend(183u16.to_le_bytes()); // e_machine: AArch64
    elf.extend(1u32.to_le_bytes());
    elf.extend(0x400000u64.to_le_bytes());
    elf.extend(64u64.to_le_bytes());
    elf.extend(0u64.to_le_bytes());
    elf.extend(0u32.to_le_bytes());
    for v in [64u16, 56, 0, 0, 0, 0] {
        elf.extend(v.to_le_bytes());
    }
    elf
}

#[test]
fn a_run_step_the_engine_cannot_execute_for_one_platform_publishes_nothing_and_says_how_to_fix_it() {
    let f = multi("platform-fails");
    // Each platform runs its own program: amd64's runs, arm64's cannot here.
    f.write("base/Dockerfile", "FROM scratch\nARG TARGETARCH\nCOPY run-${TARGETARCH} /bin/true\nRUN [\"/bin/true\"]\n");
    std::fs::copy(f.work.join("bin/busybox"), f.work.join("base/run-amd64")).unwrap();
    let arm = f.work.join("base/run-arm64");
    std::fs::write(&arm, aarch64_program()).unwrap();
    std::fs::set_permissions(&arm, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    f.write("VERSION", "v0.9.0\n");
    f.commit("base runs a program");
    git(&f.work, &["push", "-q", "origin", "main"]);
    f.tag("v1.0.0");
    let run = f.relctl(&["release", "v1.0.0"]).expect(1);
    let err = run.stderr();
    assert!(
        err.contains("image base: the engine cannot run programs built for linux/arm64 (exec format error)"),
        "{err}"
    );
    assert!(err.contains("QEMU") && err.contains("native runner"), "{err}");
    for image in ["base", "app", "solo"] {
        assert!(f.tags(image).is_empty(), "{image}: no version or floating tag: {:?}", f.tags(image));
    }
    assert_eq!(f.remote_file("VERSION").as_deref(), Some("v0.9.0\n"));
}

#[test]
fn fan_out_stages_each_image_and_platform_and_finalize_names_a_missing_platform() {
    let f = multi("platform-fanout");
    f.tag("v1.0.0");
    let matrix: Value = serde_json::from_str(&f.relctl(&["matrix", "v1.0.0"]).expect(0).stdout()).unwrap();
    let jobs: Vec<(u64, String, String, String)> = matrix["include"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            let s = |k: &str| e[k].as_str().unwrap().to_string();
            (e["layer"].as_u64().unwrap(), s("image"), s("platform"), s("runs-on"))
        })
        .collect();
    let want = [
        (0, "base", "linux/amd64", "ubuntu-latest"),
        (0, "base", "linux/arm64", "ubuntu-24.04-arm"),
        (0, "solo", "linux/amd64", "ubuntu-latest"),
        (1, "app", "linux/amd64", "ubuntu-latest"),
        (1, "app", "linux/arm64", "ubuntu-24.04-arm"),
    ];
    let want: Vec<(u64, String, String, String)> =
        want.iter().map(|(l, i, p, r)| (*l, i.to_string(), p.to_string(), r.to_string())).collect();
    assert_eq!(jobs, want, "{matrix}");

    let stage = |image: &str, platform: &str| {
        f.relctl(&["release", "v1.0.0", "--only", image, "--platform", platform, "--stage"]).expect(0);
    };
    stage("base", "linux/amd64");
    stage("base", "linux/arm64");
    stage("solo", "linux/amd64");
    stage("app", "linux/amd64");
    let run = f.relctl(&["finalize", "v1.0.0"]).expect(1);
    assert!(run.stderr().contains(": app (linux/arm64)"), "{}", run.stderr());
    assert!(run.stderr().contains("--only app --platform linux/arm64 --stage"), "{}", run.stderr());
    for image in ["base", "app", "solo"] {
        assert!(f.tags(image).is_empty(), "{image}: nothing published: {:?}", f.tags(image));
    }
    assert_eq!(f.remote_file("VERSION"), None);

    stage("app", "linux/arm64");
    f.relctl(&["finalize", "v1.0.0"]).expect(0);
    for image in ["base", "app"] {
        assert_eq!(entries(&f, image, "v1.0.0").iter().map(|(p, _)| p.as_str()).collect::<Vec<_>>(), PLATFORMS);
    }
    let (base, app) = (entries(&f, "base", "v1.0.0"), entries(&f, "app", "v1.0.0"));
    let (base_arm, app_arm) = (layers(&f, "base", &base[1].1), layers(&f, "app", &app[1].1));
    assert_eq!(app_arm[..base_arm.len()], base_arm[..], "app's arm64 job built on base's staged arm64 image");
    assert_eq!(f.remote_file("VERSION").as_deref(), Some("v1.0.0\n"));
}

#[test]
fn verify_checks_every_platform_and_export_saves_the_one_asked_for() {
    let f = multi("platform-install");
    let commit = f.tag("v1.0.0");
    f.relctl(&["release", "v1.0.0"]).expect(0);
    let out = f.relctl(&["verify", "v1.0.0"]).expect(0).stdout();
    assert!(out.contains("linux/arm64"), "verify lists each platform: {out}");
    // The controller sees the indexes as the release: converged, and a reconcile writes nothing.
    f.relctl(&["status"]).expect(0);
    let offset = registry_log_offset();
    f.relctl(&["reconcile", "--once"]).expect(0);
    assert_eq!(registry_writes_since(offset, &f.namespace), Vec::<String>::new(), "nothing to repair");
    // pin --pull pulls the engine's own platform.
    let engine2_host = env("RELCTL_TEST_DOCKER2_HOST");
    f.relctl_env(&["pin", "v1.0.0", "--env", ".env", "--pull"], &[("DOCKER_HOST", &engine2_host)]).expect(0);
    let arch = engine2(&["image", "inspect", "--format", "{{.Architecture}}", &f.reference("app", "v1.0.0")]);
    assert_eq!(String::from_utf8_lossy(&arch.stdout).trim(), "amd64");
    for image in ["base", "app", "solo"] {
        engine2(&["image", "rm", &f.reference(image, "v1.0.0")]);
    }

    let dir = f.dir.path().join("bundle");
    let run = f.relctl(&["export", "v1.0.0", "--out", dir.to_str().unwrap(), "--platform", "linux/arm64"]).expect(0);
    assert!(run.stdout().contains("linux/arm64"), "{}", run.stdout());
    let info = std::fs::read_to_string(dir.join("images-info.txt")).unwrap();
    let platform_of = |image: &str| {
        info.lines().find(|l| l.starts_with(&format!("{image}\t"))).unwrap().rsplit('\t').next().unwrap().to_string()
    };
    assert_eq!(
        (platform_of("app"), platform_of("base"), platform_of("solo")),
        ("linux/arm64".into(), "linux/arm64".into(), "linux/amd64".into()),
        "{info}"
    );
    assert_eq!(tar_architecture(&dir.join("app.tar")), "arm64");
    let loaded = f
        .relctl_env(&["import", dir.to_str().unwrap()], &[("DOCKER_HOST", &env("RELCTL_TEST_DOCKER2_HOST"))])
        .expect(0);
    assert!(loaded.stdout().contains(&f.reference("app", "v1.0.0")), "{}", loaded.stdout());
    let arch = engine2(&["image", "inspect", "--format", "{{.Architecture}}", &f.reference("app", "v1.0.0")]);
    assert_eq!(String::from_utf8_lossy(&arch.stdout).trim(), "arm64");

    let wrong = f.relctl(&["export", "v1.0.0", "--out", dir.to_str().unwrap(), "--platform", "linux/s390x"]).expect(2);
    assert!(
        wrong.stderr().contains("--platform linux/s390x: image base of the release is not built for it"),
        "{}",
        wrong.stderr()
    );

    // base's index loses its arm64 image: verify names the platform.
    let (index, _) = manifest(&f, "base", "v1.0.0");
    let mut amd_only = index.clone();
    amd_only["manifests"] = Value::Array(vec![index["manifests"][0].clone()]);
    put_index(&f, "base", "v1.0.0", &amd_only);
    let run = f.relctl(&["verify", "v1.0.0"]).expect(1);
    assert!(
        run.stdout()
            .contains(&format!("{} has no linux/arm64 image (it holds linux/amd64)", f.reference("base", "v1.0.0"))),
        "{}",
        run.stdout()
    );
    assert!(!commit.is_empty());
}

/// PUTs `index` under `image:tag`.
fn put_index(f: &Fixture, image: &str, tag: &str, index: &Value) {
    let url = format!("http://{}/v2/{}/manifests/{tag}", f.registry, f.repo(image));
    let body = f.dir.path().join("index.json");
    std::fs::write(&body, serde_json::to_vec(index).unwrap()).unwrap();
    let out = Command::new("curl")
        .args(["-sf", "-X", "PUT", "-H", "Content-Type: application/vnd.oci.image.index.v1+json", "--data-binary"])
        .arg(format!("@{}", body.display()))
        .arg(url)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

/// The `architecture` of the one image config in a `docker save` tar.
fn tar_architecture(tar: &Path) -> String {
    let list = Command::new("tar").arg("-tf").arg(tar).output().unwrap();
    let names = String::from_utf8_lossy(&list.stdout).into_owned();
    let manifest = Command::new("tar").arg("-xOf").arg(tar).arg("manifest.json").output().unwrap();
    let manifest: Value = serde_json::from_slice(&manifest.stdout).unwrap();
    let config = manifest[0]["Config"].as_str().unwrap_or_else(|| panic!("{names}"));
    let config = Command::new("tar").arg("-xOf").arg(tar).arg(config).output().unwrap();
    let config: Value = serde_json::from_slice(&config.stdout).unwrap();
    config["architecture"].as_str().unwrap().to_string()
}

#[test]
fn a_signed_multi_platform_release_signs_the_index_and_each_platform() {
    use crate::signing::{PASSWORD, artifact, keys, openssl_verifies, sign_config};
    use base64::Engine;
    let f = multi("platform-signed");
    let keys = keys(&f);
    sign_config(&f, keys.join("cosign.key").to_str().unwrap());
    f.commit("sign releases");
    git(&f.work, &["push", "-q", "origin", "main"]);
    f.tag("v1.0.0");
    f.relctl_env(&["release", "v1.0.0"], &[("COSIGN_PASSWORD", PASSWORD)]).expect(0);
    let (_, index) = manifest(&f, "app", "v1.0.0");
    let platforms = entries(&f, "app", "v1.0.0");
    let public = keys.join("cosign.pub");
    for digest in std::iter::once(&index).chain(platforms.iter().map(|(_, d)| d)) {
        let hex = digest.strip_prefix("sha256:").unwrap();
        let (payload, annotations) = artifact(&f, "app", &format!("sha256-{hex}.sig"));
        let signature = base64::engine::general_purpose::STANDARD
            .decode(annotations["dev.cosignproject.cosign/signature"].as_str().unwrap())
            .unwrap();
        assert!(openssl_verifies(f.dir.path(), &public, &payload, &signature), "{digest} is signed");
        let doc: Value = serde_json::from_slice(&payload).unwrap();
        assert_eq!(doc["critical"]["image"]["docker-manifest-digest"], digest.as_str());
    }
    let run = f.relctl(&["--json", "verify", "v1.0.0", "--key", public.to_str().unwrap(), "--provenance"]).expect(0);
    let v: Value = serde_json::from_str(&run.stdout()).unwrap();
    assert!(v["images"].as_array().unwrap().iter().all(|i| i["signed"] == true), "{v}");

    // The arm64 image's signature gone: verify --key names it.
    let arm = platforms[1].1.strip_prefix("sha256:").unwrap().to_string();
    let url = format!("http://{}/v2/{}/manifests/sha256-{arm}.sig", f.registry, f.repo("app"));
    let sig = head_digest(&url, &["-H", "Accept: application/vnd.oci.image.manifest.v1+json"]).unwrap();
    delete_manifest(&f.registry, &f.repo("app"), &sig);
    let run = f.relctl(&["verify", "v1.0.0", "--key", public.to_str().unwrap()]).expect(1);
    assert!(run.stdout().contains(&format!("@sha256:{arm}")), "{}", run.stdout());
    // That is drift: reconcile signs the arm64 image again, and nothing else.
    let offset = registry_log_offset();
    f.relctl_env(&["reconcile", "--once"], &[("COSIGN_PASSWORD", PASSWORD)]).expect(0);
    let writes = registry_writes_since(offset, &f.namespace);
    assert!(writes.iter().all(|w| !w.contains("/manifests/v1.0.0")), "no tag moves: {writes:#?}");
    assert!(writes.iter().any(|w| w.contains(&format!("/manifests/sha256-{arm}.sig"))), "{writes:#?}");
    f.relctl(&["verify", "v1.0.0", "--key", public.to_str().unwrap()]).expect(0);
}

/// BuildKit without a session cannot pull from a registry that challenges:
/// each platform's build of a child of a retagged parent pulls the parent
/// through the engine, one platform at a time, and builds on its own platform's image.
#[test]
fn each_platform_of_a_child_pulls_its_own_parent_image_through_the_engine() {
    let mut f = multi("platform-pull");
    let auth = env("RELCTL_TEST_AUTH_REGISTRY");
    let cfg = std::fs::read_to_string(f.work.join("release.yaml")).unwrap();
    let cfg =
        cfg.replace(&f.registry, &auth).replace("build: { retries: 0 }", "build: { retries: 0, cache_from: none }");
    f.write("release.yaml", &cfg);
    f.commit("release to the registry that asks for a password");
    git(&f.work, &["push", "-q", "origin", "main"]);
    f.registry = auth;
    let password = env("RELCTL_TEST_AUTH_PASSWORD");
    let creds = [("RELCTL_REGISTRY_USERNAME", "relctl"), ("RELCTL_REGISTRY_PASSWORD", password.as_str())];
    f.tag("v1.0.0");
    f.relctl_env(&["release", "v1.0.0"], &creds).expect(0);
    f.write("app/app.txt", "app two\n");
    f.commit("app changes");
    f.tag("v1.1.0");
    let run = f.relctl_env(&["release", "v1.1.0"], &creds).expect(0);
    let base = format!("{}:v1.0.0", f.repository("base"));
    assert_eq!(run.stderr().matches(&format!("pulling {base} through the engine")).count(), 2, "{}", run.stderr());
    assert_eq!(manifest(&f, "base", "v1.1.0").1, manifest(&f, "base", "v1.0.0").1, "base is retagged");
    let (base, app) = (entries(&f, "base", "v1.0.0"), entries(&f, "app", "v1.1.0"));
    for ((platform, base_digest), (_, app_digest)) in base.iter().zip(&app) {
        let (base_layers, app_layers) = (layers(&f, "base", base_digest), layers(&f, "app", app_digest));
        assert_eq!(app_layers[..base_layers.len()], base_layers[..], "{platform}: app is FROM base's {platform} image");
    }
}

/// dockerd 20.10's BuildKit dies ("fatal error: concurrent map writes", in
/// its inline cache export) when two of its builds with the same steps run
/// at once: the platforms of a COPY-only image are such builds (a COPY's
/// cache key has no platform). relctl builds them one after another on one
/// engine, and the engine outlives releases of six platforms each.
#[test]
fn the_platforms_of_a_copy_only_image_build_one_at_a_time_and_the_engine_survives() {
    let f = Fixture::empty("platforms-same");
    let config = "registry: REGISTRY\nnamespace: NAMESPACE\nproject: same\nbuild: { retries: 0, parallelism: 6 }\n\
                  platforms: [linux/amd64, linux/arm64, linux/arm/v7, linux/ppc64le, linux/s390x, linux/riscv64]\n\
                  images:\n  app: { context: . }\n";
    f.write("release.yaml", &config.replace("REGISTRY", &f.registry).replace("NAMESPACE", &f.namespace));
    f.write("Dockerfile", "FROM scratch\nCOPY bin/busybox /bin/busybox\nCOPY release.txt /release.txt\n");
    for n in 0..3 {
        f.write("release.txt", &format!("{} {n}\n", f.namespace));
        f.commit(&format!("release {n}"));
        if n == 0 {
            git(&f.work, &["push", "-q", "origin", "main"]);
        }
        let tag = format!("v1.0.{n}");
        f.tag(&tag);
        let run = f.relctl(&["release", &tag]).expect(0);
        assert_eq!(entries(&f, "app", &tag).len(), 6, "{}", run.stderr());
    }
    let socket = env("DOCKER_HOST").replace("unix://", "");
    let ping = Command::new("curl").args(["-sf", "--unix-socket", &socket, "http://localhost/_ping"]).output().unwrap();
    assert!(ping.status.success(), "the engine still runs");
}
