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
