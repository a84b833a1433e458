//! The fast tier of multi-platform releases: every platform built and
//! staged, the index assembled from them, version and floating tags on the
//! index, and nothing published when one platform's build fails.

use super::ReleaseError;
use super::tests::World;
use crate::plan::{self, PlanOptions};
use crate::registry::Registry;

const CONFIG: &str = "registry: reg.test\nnamespace: acme\nproject: p\nbuild: { retries: 0 }\n\
platforms: [linux/amd64, linux/arm64]\n\
images:\n  app: { context: app }\n  web: { context: web, depends_on: [app], platforms: [linux/arm64] }\n";

#[tokio::test(flavor = "multi_thread")]
async fn version_and_floating_tags_point_at_an_index_of_every_platform() {
    let w = World::with(CONFIG, None, &[]);
    let report = w.release("v1.0.0", &["v1.0.0"]).await.unwrap();
    let repo = World::repo("app");
    let index = w.tag("app", "v1.0.0").unwrap();
    assert_eq!(w.tag("app", "latest").unwrap().digest, index.digest);
    assert_eq!(index.revision, "c0", "the index says which commit it holds");
    let platforms = w.registry.platforms(&repo, "v1.0.0").await.unwrap().unwrap();
    assert_eq!(
        platforms,
        [
            ("linux/amd64".to_string(), "sha256:app-1.0.0-linux/amd64".to_string()),
            ("linux/arm64".to_string(), "sha256:app-1.0.0-linux/arm64".to_string()),
        ]
    );
    // web is one platform (arm64), published as a plain manifest built FROM app's arm64 image.
    assert_eq!(w.tag("web", "v1.0.0").unwrap().digest, "sha256:web-1.0.0-linux/arm64");
    assert_eq!(w.registry.platforms(&World::repo("web"), "v1.0.0").await.unwrap(), Some(vec![]));

    let app = report.images.iter().find(|p| p.image == "app").unwrap();
    assert_eq!(app.digest, index.digest);
    let reported: Vec<(&str, &str)> = app.platforms.iter().map(|p| (p.platform.as_str(), p.digest.as_str())).collect();
    assert_eq!(reported, [("linux/amd64", platforms[0].1.as_str()), ("linux/arm64", platforms[1].1.as_str())]);
    let notes = report
        .notes(&plan::plan(&w.config, &w.observed("v1.0.0", &["v1.0.0"]).await, &PlanOptions::default()).unwrap());
    let body = notes.body();
    assert!(
        body.contains(&format!("`{}` (index)<br>linux/amd64 `sha256:app-1.0.0-linux/amd64`", index.digest)),
        "{body}"
    );

    let j = w.journal();
    let at = |what: &str| j.iter().position(|l| l.starts_with(what)).unwrap_or_else(|| panic!("{what}: {j:#?}"));
    assert!(at("build app@linux/arm64") < at("build web"), "the child waits for its parent's platform: {j:#?}");
    assert!(at("index acme/p-app:relctl-stage-v1.0.0-c0") < at("tag acme/p-app:v1.0.0"), "{j:#?}");
    assert!(at("tag acme/p-web:latest") < at("commit VERSION=v1.0.0"), "{j:#?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn one_platform_failing_publishes_no_tag_of_any_image() {
    let mut w = World::with(CONFIG, Some("v0.9.0\n"), &[]);
    w.engine.failing = vec!["app@linux/arm64".into()];
    let err = w.release("v1.0.0", &["v0.9.0", "v1.0.0"]).await.unwrap_err();
    assert!(matches!(err, ReleaseError::Build { .. }), "{err}");
    for image in ["app", "web"] {
        assert!(w.tag(image, "v1.0.0").is_none() && w.tag(image, "latest").is_none(), "{image}: {:#?}", w.journal());
    }
    assert!(!w.journal().iter().any(|l| l.starts_with("index ")), "no index is assembled: {:#?}", w.journal());
    assert_eq!(w.git.file_on_branch("VERSION").as_deref(), Some("v0.9.0\n"));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rerun_after_the_github_release_failed_still_gives_each_platforms_digest() {
    let mut w = World::with(CONFIG, None, &[]);
    w.forge.fail = true;
    w.release("v1.0.0", &["v1.0.0"]).await.unwrap_err();
    w.forge.fail = false;
    w.registry.forget_listings();
    let observed = w.observed("v1.0.0", &["v1.0.0"]).await;
    let plan = plan::plan(&w.config, &observed, &PlanOptions::default()).unwrap();
    let report = w.executor(true).execute(&plan, &observed.target).await.unwrap();
    assert!(report.images.is_empty(), "nothing is pushed again: {:?}", report.images);
    let notes = report.notes(&plan);
    let app = notes.images.iter().find(|i| i.image == "app").unwrap();
    let platforms: Vec<&str> = app.platforms.iter().map(|p| p.platform.as_str()).collect();
    assert_eq!(platforms, ["linux/amd64", "linux/arm64"], "{notes:?}");
    assert!(w.journal().iter().any(|l| l == "release v1.0.0 with 2 images"), "{:#?}", w.journal());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_signed_index_and_each_platform_are_signed_and_a_platforms_provenance_names_its_parents_platform() {
    use crate::sign::cosign;
    let config =
        format!("{}sign: {{ key: cosign.key, provenance: true }}\n", CONFIG.replace(", platforms: [linux/arm64]", ""));
    let w = World::with(&config, None, &[]);
    let key = p256::ecdsa::SigningKey::random(&mut rand_core::OsRng);
    let signer = crate::sign::Signer::from_key(key.clone());
    let observed = w.observed("v1.0.0", &["v1.0.0"]).await;
    let plan = plan::plan(&w.config, &observed, &PlanOptions::default()).unwrap();
    let executor = super::Executor { signer: Some(&signer as &dyn crate::sign::ArtifactSigner), ..w.executor(false) };
    let report = executor.execute(&plan, &observed.target).await.unwrap();
    assert_eq!(report.signatures.len(), 12, "a signature and an attestation of 2 indexes and 4 platform images");
    let (app, web) = (World::repo("app"), World::repo("web"));
    let app_arm = w.registry.platforms(&app, "v1.0.0").await.unwrap().unwrap()[1].1.clone();
    let web_arm = w.registry.platforms(&web, "v1.0.0").await.unwrap().unwrap()[1].1.clone();
    let att = w.registry.get_artifact(&web, &cosign::tag_for(&web_arm, "att")).await.unwrap().unwrap();
    let statement = cosign::verify_attestation(key.verifying_key(), &att[0].bytes).unwrap();
    let parent = &statement["predicate"]["buildDefinition"]["resolvedDependencies"][1];
    assert_eq!(parent["uri"], "oci://reg.test/acme/p-app", "{statement}");
    assert_eq!(
        parent["digest"]["sha256"],
        app_arm.trim_start_matches("sha256:"),
        "web's arm64 image names app's arm64 image"
    );
    let index = w.tag("web", "v1.0.0").unwrap().digest;
    let sig = w.registry.get_artifact(&web, &cosign::tag_for(&index, "sig")).await.unwrap();
    assert!(sig.is_some(), "the index is signed too");

    // The arm64 image's signature goes missing: the next run signs that one again, and nothing else.
    let lost = cosign::tag_for(&app_arm, "sig");
    w.registry.delete(&app, &lost);
    w.registry.forget_listings();
    let observed = w.observed("v1.0.0", &["v1.0.0"]).await;
    let plan = plan::plan(&w.config, &observed, &PlanOptions::default()).unwrap();
    let report = executor.execute(&plan, &observed.target).await.unwrap();
    assert_eq!(report.signatures, [format!("reg.test/{app}:{lost}")], "{plan}");
    assert!(w.registry.get_artifact(&app, &lost).await.unwrap().is_some());
}
