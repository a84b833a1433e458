//! Table and snapshot tests of multi-platform plans: one build per (image,
//! platform), an index per multi-platform image, keys per platform, fan-out
//! per platform, and what a plan refuses.

use std::collections::{BTreeMap, BTreeSet};

use super::tests::{COMMIT, cfg};
use super::*;

const STAGE: &str = "relctl-stage-v1.2.0-111111111111";
const REPO: &str = "registry.test:5000/acme/app";

/// server and its child worker on two platforms, agent on the engine's only.
const CONFIG: &str = r#"
registry: registry.test:5000
namespace: acme
project: app
platforms: [linux/amd64, linux/arm64]
images:
  server: { context: server }
  worker: { context: worker, depends_on: [server] }
  agent:  { context: agent, platforms: [linux/amd64] }
"#;

/// The plan tests' observation of v1.2.0 (after v1.1.0) at [`COMMIT`].
fn observed() -> Observed {
    super::tests::observed("v1.2.0", &["v1.1.0", "v1.2.0"], Some("v1.1.0"))
}

fn builds(p: &Plan) -> BTreeMap<&str, &BuildStep> {
    p.steps.iter().filter_map(|s| if let Step::Build(b) = s { Some((b.id.as_str(), b)) } else { None }).collect()
}

fn indexes(p: &Plan) -> Vec<&IndexStep> {
    p.steps.iter().filter_map(|s| if let Step::Index(x) = s { Some(x) } else { None }).collect()
}

#[test]
fn each_platform_builds_on_its_own_and_an_index_joins_them_before_any_tag() {
    let p = plan(&cfg(CONFIG), &observed(), &PlanOptions::default()).unwrap();
    insta::assert_snapshot!(p.to_string());
    let b = builds(&p);
    let ids: BTreeSet<&str> = b.keys().copied().collect();
    let want = ["agent", "server@linux/amd64", "server@linux/arm64", "worker@linux/amd64", "worker@linux/arm64"];
    assert_eq!(ids, want.into_iter().collect(), "{p}");
    let arm = b["worker@linux/arm64"];
    assert_eq!(arm.platform.as_deref(), Some("linux/arm64"));
    assert_eq!(arm.waits_for, ["server@linux/arm64"]);
    assert_eq!(
        arm.build_args["SERVER_IMAGE"],
        format!("{REPO}-server:{STAGE}-linux-arm64"),
        "the arm64 child builds FROM the parent's arm64 image"
    );
    assert_eq!(arm.stage_tag.as_deref(), Some(&*format!("{STAGE}-linux-arm64")));
    assert_eq!(b["agent"].platform.as_deref(), Some("linux/amd64"));
    assert_ne!(
        b["server@linux/amd64"].labels[labels::INPUTS],
        b["server@linux/arm64"].labels[labels::INPUTS],
        "each platform has its own input key"
    );

    let x = indexes(&p);
    assert_eq!(
        x.iter().map(|i| i.image.as_str()).collect::<Vec<_>>(),
        ["server", "worker"],
        "agent is one platform: no index"
    );
    let server = x[0];
    assert_eq!(server.tag, STAGE);
    let entries: Vec<(&str, String)> = server.manifests.iter().map(|m| (m.platform.as_str(), m.tag.clone())).collect();
    assert_eq!(
        entries,
        [("linux/amd64", format!("{STAGE}-linux-amd64")), ("linux/arm64", format!("{STAGE}-linux-arm64"))]
    );
    assert_eq!(server.annotations[labels::REVISION], COMMIT);
    let keys = platforms::image_keys(&cfg(CONFIG), &observed().context_digests, "linux/amd64");
    assert_eq!(server.annotations[labels::INPUTS], keys["server"].image, "the index carries the image's key");

    // Version tags come from the index's staging tag, after it was assembled.
    let push = p.steps.iter().position(|s| matches!(s, Step::Push(x) if x.image == "server")).unwrap();
    let index = p.steps.iter().position(|s| matches!(s, Step::Index(x) if x.image == "server")).unwrap();
    assert!(index < push);
    let Step::Push(push) = &p.steps[push] else { unreachable!() };
    assert_eq!(push.source, PushSource::Staged(STAGE.into()));
    assert!(p.images.iter().find(|i| i.name == "server").unwrap().is_index());
    assert!(!p.images.iter().find(|i| i.name == "agent").unwrap().is_index());
}

#[test]
fn the_index_key_covers_every_platform_and_an_unchanged_index_is_retagged_whole() {
    let c = cfg(CONFIG);
    let mut o = observed();
    let keys = platforms::image_keys(&c, &o.context_digests, "linux/amd64");
    let server = &keys["server"];
    assert_eq!(server.image, platforms::index_key(&server.platforms));
    assert_eq!(keys["agent"].image, keys["agent"].platforms[0].1, "one platform: its key is the image's");
    let earlier = |inputs: &str| RemoteTag {
        digest: "sha256:idx".into(),
        revision: Some("0".repeat(40)),
        inputs: Some(inputs.into()),
    };
    o.previous.insert("server".into(), ("v1.1.0".into(), earlier(&server.image)));
    let p = plan(&c, &o, &PlanOptions::default()).unwrap();
    let action = &p.images.iter().find(|i| i.name == "server").unwrap().action;
    assert_eq!(action, &ImageAction::Retag { from: "v1.1.0".into(), digest: "sha256:idx".into() });
    assert!(!builds(&p).keys().any(|id| id.starts_with("server@")), "no platform of server is built: {p}");
    assert_eq!(builds(&p)["worker@linux/arm64"].build_args["SERVER_IMAGE"], format!("{REPO}-server:v1.1.0"));

    // The amd64 image alone unchanged is not enough: every platform's key must be.
    o.previous.insert("server".into(), ("v1.1.0".into(), earlier(&server.platforms[0].1)));
    let p = plan(&c, &o, &PlanOptions::default()).unwrap();
    assert!(builds(&p).contains_key("server@linux/amd64") && builds(&p).contains_key("server@linux/arm64"), "{p}");

    // Another platform list is another key.
    let three = cfg(&CONFIG.replace("[linux/amd64, linux/arm64]", "[linux/amd64, linux/arm64, linux/arm/v7]"));
    let more = platforms::image_keys(&three, &o.context_digests, "linux/amd64");
    assert_ne!(more["server"].image, server.image);
}

#[test]
fn fan_out_builds_one_platform_per_job_and_finalize_names_each_missing_platform() {
    let (c, mut o) = (cfg(CONFIG), observed());
    let keys = platforms::image_keys(&c, &o.context_digests, "linux/amd64");
    let job = PlanOptions {
        only: Some(BTreeSet::from(["server".to_string()])),
        stage_only: true,
        platform: Some("linux/arm64".into()),
        ..Default::default()
    };
    let p = plan(&c, &o, &job).unwrap();
    assert_eq!(builds(&p).keys().copied().collect::<Vec<_>>(), ["server@linux/arm64"]);
    assert!(p.steps.iter().all(|s| matches!(s, Step::Build(_))), "a build job only stages: {p}");
    // Without --only, an arm64 job builds every image's arm64 image, and not agent (amd64 only).
    let arm_job = PlanOptions { only: None, ..job.clone() };
    let p = plan(&c, &o, &arm_job).unwrap();
    assert_eq!(builds(&p).keys().copied().collect::<Vec<_>>(), ["server@linux/arm64", "worker@linux/arm64"], "{p}");

    // amd64 of server staged, arm64 not; worker and agent staged.
    let staged = |digest: &str, key: &str| RemoteTag {
        digest: digest.into(),
        revision: Some(COMMIT.into()),
        inputs: Some(key.into()),
    };
    let view = |tags: Vec<(String, RemoteTag)>| RegistryView::Known(tags.into_iter().collect());
    let k = |image: &str, p: &str| keys[image].of(p).unwrap().to_string();
    o.registry.insert(
        "server".into(),
        view(vec![(format!("{STAGE}-linux-amd64"), staged("sha256:s1", &k("server", "linux/amd64")))]),
    );
    o.registry.insert(
        "worker".into(),
        view(vec![
            (format!("{STAGE}-linux-amd64"), staged("sha256:w1", &k("worker", "linux/amd64"))),
            (format!("{STAGE}-linux-arm64"), staged("sha256:w2", &k("worker", "linux/arm64"))),
        ]),
    );
    o.registry.insert("agent".into(), view(vec![(STAGE.into(), staged("sha256:a", &keys["agent"].image))]));
    let finalize = PlanOptions { finalize: true, ..Default::default() };
    let err = plan(&c, &o, &finalize).unwrap_err();
    assert_eq!(err.exit_code(), 1);
    assert_eq!(
        err.to_string(),
        format!("cannot finalize v1.2.0: not staged from commit {COMMIT}: server (linux/arm64)")
    );
    assert!(
        err.hint().contains("relctl release v1.2.0 --only server --platform linux/arm64 --stage"),
        "{}",
        err.hint()
    );

    // A platform staged from other inputs is not staged for this release.
    let put = |o: &mut Observed, t: RemoteTag| {
        let RegistryView::Known(tags) = o.registry.get_mut("server").unwrap() else { unreachable!() };
        tags.insert(format!("{STAGE}-linux-arm64"), t);
    };
    put(&mut o, staged("sha256:s2", "sha256:other"));
    assert!(plan(&c, &o, &finalize).is_err());

    put(&mut o, staged("sha256:s2", &k("server", "linux/arm64")));
    let p = plan(&c, &o, &finalize).unwrap();
    assert!(builds(&p).is_empty(), "finalize builds nothing: {p}");
    assert_eq!(indexes(&p).len(), 2, "server's and worker's indexes are assembled: {p}");
    let server = p.images.iter().find(|i| i.name == "server").unwrap();
    assert_eq!(server.action, ImageAction::Staged { digest: None });
    assert!(p.steps.iter().any(|s| matches!(s, Step::CommitVersion(_))));
}

#[test]
fn a_plan_refuses_platforms_it_cannot_build() {
    let o = observed();
    let child = cfg(&CONFIG.replace(
        "agent:  { context: agent, platforms: [linux/amd64] }",
        "agent: { context: agent, depends_on: [server], platforms: [linux/s390x] }",
    ));
    let err = plan(&child, &o, &PlanOptions::default()).unwrap_err();
    assert_eq!(err.exit_code(), 2);
    assert!(err.to_string().contains("agent is built for linux/s390x, but its parent server is not"), "{err}");
    assert!(err.hint().contains("images.server.platforms"), "{}", err.hint());

    let classic = cfg(&CONFIG.replace("images:", "build: { builder: classic }\nimages:"));
    let err = plan(&classic, &o, &PlanOptions::default()).unwrap_err();
    assert_eq!(err.exit_code(), 2);
    assert!(err.to_string().contains("linux/arm64, which the classic builder cannot build"), "{err}");
    assert!(err.hint().contains("BuildKit"), "{}", err.hint());
    // A fan-out job builds its own platform only: an amd64 job is fine on the classic builder.
    let amd64_job = PlanOptions { stage_only: true, platform: Some("linux/amd64".into()), ..Default::default() };
    let p = plan(&classic, &o, &amd64_job).unwrap();
    assert!(builds(&p).keys().all(|id| !id.contains("arm64")), "{p}");
    let native = cfg(&CONFIG
        .replace("[linux/amd64, linux/arm64]", "[linux/amd64]")
        .replace("images:", "build: { builder: classic }\nimages:"));
    assert!(plan(&native, &o, &PlanOptions::default()).is_ok(), "the engine's own platform builds classic");

    let job = PlanOptions { stage_only: true, platform: Some("linux/riscv64".into()), ..Default::default() };
    let err = plan(&cfg(CONFIG), &o, &job).unwrap_err();
    assert_eq!((err.exit_code(), err.hint()), (2, "choose from: linux/amd64, linux/arm64".to_string()));
}

#[test]
fn the_matrix_has_one_entry_per_image_and_platform_on_its_runner() {
    let c = cfg(CONFIG);
    let p = plan(&c, &observed(), &PlanOptions::default()).unwrap();
    let m = matrix::matrix(&p, &c.fanout);
    let entries: Vec<(usize, &str, &str, &str)> = m
        .include
        .iter()
        .map(|e| (e.layer, e.image.as_str(), e.platform.as_deref().unwrap_or("-"), e.runs_on.as_str()))
        .collect();
    assert_eq!(
        entries,
        [
            (0, "agent", "linux/amd64", "ubuntu-latest"),
            (0, "server", "linux/amd64", "ubuntu-latest"),
            (0, "server", "linux/arm64", "ubuntu-24.04-arm"),
            (1, "worker", "linux/amd64", "ubuntu-latest"),
            (1, "worker", "linux/arm64", "ubuntu-24.04-arm"),
        ]
    );
    assert_eq!(m.include[4].needs, ["server@linux/arm64"]);
    assert_eq!(m.layers, [vec!["agent", "server"], vec!["worker"]], "image names per layer, as before platforms");
    assert_eq!(m.include_by_layer[1], m.include[3..]);

    // An image without `platforms` builds for its runner's own platform, on the default runner.
    let plain =
        cfg(&CONFIG.replace("platforms: [linux/amd64, linux/arm64]\n", "").replace(", platforms: [linux/amd64]", ""));
    let p = plan(&plain, &observed(), &PlanOptions::default()).unwrap();
    let m = matrix::matrix(&p, &plain.fanout);
    assert!(m.include.iter().all(|e| e.platform.is_none() && e.runs_on == "ubuntu-latest"), "{:?}", m.include);
}

#[test]
fn platform_staging_tags_stay_within_the_registry_limit_and_apart() {
    let stage = crate::plan::stage_tag(&format!("v1.0.0-{}", "a".repeat(140)), &"f".repeat(40));
    let (amd, arm) =
        (platforms::platform_stage_tag(&stage, "linux/amd64"), platforms::platform_stage_tag(&stage, "linux/arm/v7"));
    assert_eq!(amd.len(), 128);
    assert!(amd.ends_with("-linux-amd64") && arm.ends_with("-linux-arm-v7"), "{amd} {arm}");
    assert_eq!(platforms::platform_stage_tag("relctl-stage-v1-abc", "linux/arm64"), "relctl-stage-v1-abc-linux-arm64");
}

#[test]
fn a_fan_out_looks_for_the_staging_tag_and_each_platforms_once() {
    let tags = platforms::stage_tags(&cfg(CONFIG), STAGE, "linux/amd64");
    let expected = [STAGE.to_string(), format!("{STAGE}-linux-amd64"), format!("{STAGE}-linux-arm64")];
    assert_eq!(tags, expected, "server and worker share their platforms; agent has one, so no tag of its own");
}
