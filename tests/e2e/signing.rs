//! Signed releases on the real registry, checked by an implementation that
//! is not relctl's: OpenSSL verifies each cosign signature over its payload
//! and each attestation's DSSE signature against cosign.pub. The key's
//! password and the key itself never reach the output.

use std::path::{Path, PathBuf};
use std::process::Command;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;

use crate::common::*;

pub const PASSWORD: &str = "s1gn-Pa55-do-not-print";

/// `relctl keygen` into `dir`, with `password`.
fn keygen(f: &Fixture, dir: &Path, password: &str) {
    f.relctl_env(&["keygen", "--out", dir.to_str().unwrap()], &[("COSIGN_PASSWORD", password)]).expect(0);
}

/// The layer blob and its annotations of the artifact `tag` of `image`.
pub fn artifact(f: &Fixture, image: &str, tag: &str) -> (Vec<u8>, serde_json::Value) {
    let url = format!("http://{}/v2/{}", f.registry, f.repo(image));
    let manifest =
        curl_json(&format!("{url}/manifests/{tag}"), &["-H", "Accept: application/vnd.oci.image.manifest.v1+json"]);
    let layer = &manifest["layers"][0];
    let blob = Command::new("curl")
        .args(["-sfL", &format!("{url}/blobs/{}", layer["digest"].as_str().unwrap())])
        .output()
        .unwrap()
        .stdout;
    (blob, layer["annotations"].clone())
}

/// OpenSSL's verdict on `signature` (DER) over `data` with the PEM public key at `public`.
pub fn openssl_verifies(dir: &Path, public: &Path, data: &[u8], signature: &[u8]) -> bool {
    let (data_file, sig_file) = (dir.join("data"), dir.join("sig.der"));
    std::fs::write(&data_file, data).unwrap();
    std::fs::write(&sig_file, signature).unwrap();
    let out = Command::new("openssl")
        .args(["dgst", "-sha256", "-verify"])
        .arg(public)
        .arg("-signature")
        .arg(&sig_file)
        .arg(&data_file)
        .output()
        .unwrap();
    out.status.success() && String::from_utf8_lossy(&out.stdout).contains("Verified OK")
}

pub fn sign_config(f: &Fixture, key: &str) {
    let cfg = std::fs::read_to_string(f.work.join("release.yaml")).unwrap();
    f.write("release.yaml", &format!("{cfg}sign: {{ key: '{key}', provenance: true }}\n"));
}

pub fn keys(f: &Fixture) -> PathBuf {
    let dir = f.dir.path().join("keys");
    keygen(f, &dir, PASSWORD);
    dir
}

#[test]
fn a_signed_release_verifies_with_openssl_and_relctl_and_a_rerun_writes_nothing() {
    let f = Fixture::single("signed");
    let keys = keys(&f);
    sign_config(&f, keys.join("cosign.key").to_str().unwrap());
    f.commit("sign releases");
    git(&f.work, &["push", "-q", "origin", "main"]);
    let commit = f.tag("v1.0.0");
    let run = f.relctl_env(&["release", "v1.0.0", "-v"], &[("COSIGN_PASSWORD", PASSWORD)]).expect(0);
    let output = format!("{}{}", run.stdout(), run.stderr());
    assert!(!output.contains(PASSWORD), "the password leaked");
    let key_text = std::fs::read_to_string(keys.join("cosign.key")).unwrap();
    assert!(!output.contains(key_text.lines().nth(1).unwrap()), "a line of the key leaked");

    let digest = f.digest("app", "v1.0.0").unwrap();
    let hex = digest.strip_prefix("sha256:").unwrap();
    let (payload, annotations) = artifact(&f, "app", &format!("sha256-{hex}.sig"));
    let signature = B64.decode(annotations["dev.cosignproject.cosign/signature"].as_str().unwrap()).unwrap();
    let public = keys.join("cosign.pub");
    assert!(openssl_verifies(f.dir.path(), &public, &payload, &signature), "OpenSSL verifies the signature");
    let doc: serde_json::Value = serde_json::from_slice(&payload).unwrap();
    assert_eq!(doc["critical"]["image"]["docker-manifest-digest"], digest.as_str());
    assert_eq!(doc["critical"]["type"], "cosign container image signature");
    assert_eq!(doc["critical"]["identity"]["docker-reference"], f.repository("app").as_str());

    let (envelope, annotations) = artifact(&f, "app", &format!("sha256-{hex}.att"));
    assert_eq!(annotations["dev.cosignproject.cosign/predicateType"], "https://slsa.dev/provenance/v1");
    let envelope: serde_json::Value = serde_json::from_slice(&envelope).unwrap();
    let body = B64.decode(envelope["payload"].as_str().unwrap()).unwrap();
    let ptype = envelope["payloadType"].as_str().unwrap();
    let mut pae = format!("DSSEv1 {} {ptype} {} ", ptype.len(), body.len()).into_bytes();
    pae.extend_from_slice(&body);
    let sig = B64.decode(envelope["signatures"][0]["sig"].as_str().unwrap()).unwrap();
    assert!(openssl_verifies(f.dir.path(), &public, &pae, &sig), "OpenSSL verifies the attestation");
    let statement: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(statement["subject"][0]["digest"]["sha256"], hex);
    assert_eq!(
        statement["predicate"]["buildDefinition"]["resolvedDependencies"][0]["digest"]["gitCommit"],
        commit.as_str()
    );

    let public = public.to_str().unwrap();
    let run = f.relctl(&["--json", "verify", "v1.0.0", "--key", public, "--provenance"]).expect(0);
    let v: serde_json::Value = serde_json::from_str(&run.stdout()).unwrap();
    assert_eq!(v["images"][0]["signed"], true);
    let other = f.dir.path().join("other");
    keygen(&f, &other, "another");
    let run = f.relctl(&["verify", "v1.0.0", "--key", other.join("cosign.pub").to_str().unwrap()]).expect(1);
    assert!(run.stdout().contains("app") && run.stdout().contains("does not verify"), "{}", run.stdout());

    let offset = registry_log_offset();
    f.relctl_env(&["release", "v1.0.0"], &[("COSIGN_PASSWORD", PASSWORD)]).expect(0);
    assert_eq!(registry_writes_since(offset, &f.namespace), Vec::<String>::new(), "a rerun writes nothing");

    // A deleted signature is drift: reconcile signs the digest again.
    let sig_url = format!("http://{}/v2/{}/manifests/sha256-{hex}.sig", f.registry, f.repo("app"));
    let sig_digest = head_digest(&sig_url, &["-H", "Accept: application/vnd.oci.image.manifest.v1+json"]).unwrap();
    delete_manifest(&f.registry, &f.repo("app"), &sig_digest);
    f.relctl(&["verify", "v1.0.0", "--key", public]).expect(1);
    f.relctl_env(&["reconcile", "--once"], &[("COSIGN_PASSWORD", PASSWORD)]).expect(0);
    f.relctl(&["verify", "v1.0.0", "--key", public]).expect(0);
}

#[test]
fn a_wrong_password_is_bad_input_before_any_build_and_unsigned_releases_are_refused() {
    let f = Fixture::single("unsigned");
    f.tag("v1.0.0");
    f.relctl(&["release", "v1.0.0"]).expect(0);
    let keys = keys(&f);
    let public = keys.join("cosign.pub");
    let public = public.to_str().unwrap();
    let run = f.relctl(&["verify", "v1.0.0", "--key", public]).expect(1);
    assert!(run.stdout().contains("no signature"), "{}", run.stdout());
    f.write("docker/.env", "IMAGE_TAG=v0.9.0\n");
    f.relctl(&["pin", "v1.0.0", "--key", public]).expect(1);
    assert_eq!(std::fs::read_to_string(f.work.join("docker/.env")).unwrap(), "IMAGE_TAG=v0.9.0\n", "left alone");

    // Signing turned on: a wrong password stops the next release before it builds.
    git(&f.work, &["pull", "-q", "--ff-only", "origin", "main"]);
    sign_config(&f, keys.join("cosign.key").to_str().unwrap());
    f.write("app.txt", "two\n");
    f.commit("sign, and a change");
    git(&f.work, &["push", "-q", "origin", "main"]);
    f.tag("v1.1.0");
    let offset = registry_log_offset();
    let run = f.relctl_env(&["release", "v1.1.0"], &[("COSIGN_PASSWORD", "wrong")]).expect(2);
    assert!(run.stderr().contains("the password in COSIGN_PASSWORD does not open it"), "{}", run.stderr());
    assert!(!run.stderr().contains("phase 1/5"), "nothing was built: {}", run.stderr());
    assert_eq!(registry_writes_since(offset, &f.namespace), Vec::<String>::new());

    // An unencrypted PKCS#8 key from the environment signs as well.
    let pem = Command::new("sh")
        .args(["-c", "openssl ecparam -genkey -name prime256v1 -noout | openssl pkcs8 -topk8 -nocrypt"])
        .output()
        .unwrap()
        .stdout;
    let pem = String::from_utf8(pem).unwrap();
    let cfg = std::fs::read_to_string(f.work.join("release.yaml")).unwrap();
    let keyline = cfg.lines().find(|l| l.starts_with("sign:")).unwrap().to_string();
    f.write("release.yaml", &cfg.replace(&keyline, "sign: { key: 'env:RELEASE_KEY' }"));
    f.relctl_env(&["release", "v1.1.0"], &[("RELEASE_KEY", &pem)]).expect(0);
    let digest = f.digest("app", "v1.1.0").unwrap();
    let signature = format!("{}.sig", digest.replacen(':', "-", 1));
    assert!(f.tags("app").contains(&signature), "{:?}", f.tags("app"));
    let run = f.relctl(&["verify", "v1.1.0", "--key", public]).expect(1);
    assert!(run.stdout().contains("does not verify"), "signed with the other key: {}", run.stdout());
}

#[test]
fn a_registry_that_refuses_the_signature_gets_no_version_tag_and_version_stays() {
    let (proxy, refused) = crate::common::http_proxy::start_proxy(crate::common::http_proxy::Quota::RefuseSignatures);
    let mut f = Fixture::single_on("sign-refused", &proxy);
    let keys = keys(&f);
    sign_config(&f, keys.join("cosign.key").to_str().unwrap());
    f.commit("sign releases");
    git(&f.work, &["push", "-q", "origin", "main"]);
    f.tag("v1.1.0");
    let tip = f.remote_main();
    let run = f.relctl_env(&["release", "v1.1.0"], &[("COSIGN_PASSWORD", PASSWORD)]).expect(1);
    assert!(refused.throttled.load(std::sync::atomic::Ordering::SeqCst) > 0, "{}", run.stderr());
    assert!(run.stderr().contains("403"), "{}", run.stderr());
    f.registry = env("RELCTL_TEST_REGISTRY");
    assert_eq!(f.tags("app"), Vec::<String>::new(), "no version tag, no latest");
    assert_eq!(f.remote_main(), tip, "VERSION was not committed");
}
