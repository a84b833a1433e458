//! Table and snapshot tests of the planner: every release semantic, in milliseconds.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use super::*;
use crate::config;

pub(super) const COMMIT: &str = "1111111111111111111111111111111111111111";
const OTHER: &str = "2222222222222222222222222222222222222222";

const CONFIG: &str = r#"
registry: registry.test:5000
namespace: acme
project: app
images:
  server:   { context: ., dockerfile: docker/server/Dockerfile }
  frontend: { context: docker/frontend }
  nginx:    { context: docker/nginx, depends_on: [frontend] }
  worker:   { context: docker/worker, depends_on: [server], build_args: { MODE: prod } }
  agent:    { context: docker/agent }
also_update: [{ path: README.md, regex: 'current version: (v\S+)' }]
"#;

pub(super) fn cfg(text: &str) -> Config {
    config::parse(text, Path::new("release.yaml")).unwrap()
}

fn rv(t: &str) -> ReleaseVersion {
    ReleaseVersion::parse(t, "v").unwrap()
}

pub(super) fn observed(target: &str, tags: &[&str], version_file: Option<&str>) -> Observed {
    Observed {
        target: rv(target),
        commit: COMMIT.into(),
        release_tags: tags.iter().map(|t| rv(t)).collect(),
        version_file: version_file.map(|v| format!("{v}\n")),
        unwritable: vec![],
        missing_inputs: vec![],
        registry: BTreeMap::new(),
        source_url: "https://example.test/acme/app".into(),
        created: "2026-11-22T00:00:00Z".into(),
        context_digests: ALL.iter().map(|i| (i.to_string(), format!("ctx-{i}"))).collect(),
        rewritten_in_context: BTreeMap::new(),
        whole_context: BTreeMap::new(),
        previous: BTreeMap::new(),
        platform: "linux/amd64".into(),
        artifacts: BTreeMap::new(),
        index_platforms: BTreeMap::new(),
    }
}

fn remote(digest: &str, revision: &str) -> RemoteTag {
    RemoteTag { digest: digest.into(), revision: Some(revision.into()), inputs: None }
}

/// Marks `images` as published at `tag` from `revision`, with `latest` on `latest_digest`.
fn publish(o: &mut Observed, images: &[&str], tag: &str, revision: &str, latest_same: bool) {
    for name in images {
        let digest = format!("sha256:{name}{tag}");
        let mut tags = BTreeMap::from([(tag.to_string(), remote(&digest, revision))]);
        if latest_same {
            tags.insert("latest".into(), remote(&digest, revision));
        }
        o.registry.insert(name.to_string(), RegistryView::Known(tags));
    }
}

const ALL: [&str; 5] = ["server", "frontend", "nginx", "worker", "agent"];

fn kinds(p: &Plan) -> Vec<String> {
    p.steps
        .iter()
        .map(|s| match s {
            Step::Build(b) => format!("build {}", b.id),
            Step::Index(x) => format!("index {}", x.image),
            Step::Sign(x) => format!("sign {}", x.image),
            Step::Push(p) => format!("push {} {}", p.image, p.tags.join(",")),
            Step::MoveTag(m) => format!("move {} {}", m.image, m.tag),
            Step::CommitVersion(v) => format!("commit {}", v.to),
        })
        .collect()
}

#[test]
fn first_release_builds_pushes_moves_and_commits_in_phases() {
    let p = plan(&cfg(CONFIG), &observed("v1.2.0", &["v1.1.0", "v1.2.0"], Some("v1.1.0")), &PlanOptions::default())
        .unwrap();
    insta::assert_snapshot!(p.to_string());
    let phases: Vec<u8> = p.steps.iter().map(Step::phase).collect();
    assert!(phases.is_sorted(), "steps are in phase order: {phases:?}");
    // parents before children
    let k = kinds(&p);
    let pos = |s: &str| k.iter().position(|x| x == s).unwrap();
    assert!(pos("build server") < pos("build worker"));
    assert!(pos("build frontend") < pos("build nginx"));
    let Step::Build(worker) = &p.steps[pos("build worker")] else { unreachable!() };
    assert_eq!(
        worker.build_args["SERVER_IMAGE"],
        "registry.test:5000/acme/app-server:relctl-stage-v1.2.0-111111111111"
    );
    assert_eq!(worker.build_args["MODE"], "prod");
    assert_eq!(worker.labels["org.opencontainers.image.revision"], COMMIT);
    assert_eq!(worker.labels["org.opencontainers.image.version"], "1.2.0");
}

#[test]
fn plan_serializes_to_json() {
    let p = plan(
        &cfg(CONFIG),
        &observed("v1.2.0", &["v1.2.0"], None),
        &PlanOptions { only: Some(BTreeSet::from(["agent".into()])), ..Default::default() },
    )
    .unwrap();
    insta::assert_json_snapshot!(p);
}

#[test]
fn rerun_of_a_released_tag_does_nothing() {
    let mut o = observed("v1.2.0", &["v1.1.0", "v1.2.0"], Some("v1.2.0"));
    publish(&mut o, &ALL, "v1.2.0", COMMIT, true);
    let p = plan(&cfg(CONFIG), &o, &PlanOptions::default()).unwrap();
    assert!(p.steps.is_empty(), "{p}");
    insta::assert_snapshot!(p.to_string());
}

#[test]
fn hotfix_after_newer_release_keeps_latest_and_version() {
    let mut o = observed("v1.0.5", &["v1.0.4", "v1.1.0", "v1.0.5"], Some("v1.1.0"));
    publish(&mut o, &ALL, "v1.1.0", OTHER, true);
    let p = plan(&cfg(CONFIG), &o, &PlanOptions::default()).unwrap();
    assert!(kinds(&p).iter().all(|k| !k.starts_with("move") && !k.starts_with("commit")), "{p}");
    assert_eq!(p.steps.iter().filter(|s| matches!(s, Step::Build(_))).count(), 5);
    assert_eq!(p.version_file.next, None);
    insta::assert_snapshot!(p.to_string());
}

#[test]
fn prerelease_gets_version_tags_only() {
    let p = plan(
        &cfg(CONFIG),
        &observed("v1.3.0-rc.1", &["v1.2.0", "v1.3.0-rc.1"], Some("v1.2.0")),
        &PlanOptions::default(),
    )
    .unwrap();
    assert!(kinds(&p).iter().all(|k| !k.starts_with("move") && !k.starts_with("commit")), "{p}");
    assert!(p.prerelease);
    assert!(p.images.iter().all(|i| i.version_tags == ["v1.3.0-rc.1"]));
    assert_eq!(p.version_file.reason, "stays: pre-releases never change VERSION");
}

#[test]
fn build_metadata_becomes_dash_in_image_tags() {
    let p =
        plan(&cfg(CONFIG), &observed("v1.2.0+build.7", &["v1.2.0+build.7"], None), &PlanOptions::default()).unwrap();
    let Step::Build(b) = &p.steps[0] else { panic!() };
    assert!(b.reference.ends_with(":relctl-stage-v1.2.0-build.7-111111111111"), "{}", b.reference);
    assert!(p.images.iter().all(|i| i.version_tags == ["v1.2.0-build.7"]), "{p}");
    assert_eq!(b.labels["org.opencontainers.image.version"], "1.2.0+build.7");
    let Some(Step::CommitVersion(v)) = p.steps.last() else { panic!("{p}") };
    assert_eq!(v.to, "v1.2.0+build.7", "VERSION keeps the raw tag");
}

#[test]
fn version_tag_from_another_commit_is_refused_unless_forced() {
    let mut o = observed("v1.2.0", &["v1.2.0"], None);
    publish(&mut o, &["server"], "v1.2.0", OTHER, false);
    let err = plan(&cfg(CONFIG), &o, &PlanOptions::default()).unwrap_err();
    assert_eq!(err.exit_code(), 1);
    let msg = err.to_string();
    assert!(
        msg.contains("registry.test:5000/acme/app-server:v1.2.0") && msg.contains(OTHER) && msg.contains(COMMIT),
        "{msg}"
    );
    let p = plan(&cfg(CONFIG), &o, &PlanOptions { force: true, ..Default::default() }).unwrap();
    assert!(kinds(&p).contains(&"build server".to_string()));
}

#[test]
fn missing_revision_label_is_a_conflict() {
    let mut o = observed("v1.2.0", &["v1.2.0"], None);
    o.registry.insert(
        "agent".into(),
        RegistryView::Known(BTreeMap::from([(
            "v1.2.0".into(),
            RemoteTag { digest: "sha256:x".into(), revision: None, inputs: None },
        )])),
    );
    let err = plan(&cfg(CONFIG), &o, &PlanOptions::default()).unwrap_err();
    assert!(err.to_string().contains("unknown (no revision label)"), "{err}");
}

#[test]
fn half_finished_release_completes() {
    let mut o = observed("v1.2.0", &["v1.1.0", "v1.2.0"], Some("v1.1.0"));
    publish(&mut o, &["server", "frontend", "nginx"], "v1.2.0", COMMIT, false);
    let p = plan(&cfg(CONFIG), &o, &PlanOptions::default()).unwrap();
    insta::assert_snapshot!(p.to_string());
    assert_eq!(kinds(&p).iter().filter(|k| k.starts_with("build")).count(), 2);
    assert!(kinds(&p).contains(&"commit v1.2.0".to_string()));
}

#[test]
fn only_skips_version_until_every_image_is_published() {
    let only = |names: &[&str]| PlanOptions {
        only: Some(names.iter().map(|s| s.to_string()).collect()),
        ..Default::default()
    };
    let o = observed("v1.2.0", &["v1.2.0"], Some("v1.1.0"));
    let p = plan(&cfg(CONFIG), &o, &only(&["server", "agent"])).unwrap();
    assert_eq!(
        kinds(&p),
        [
            "build agent",
            "build server",
            "push agent v1.2.0",
            "push server v1.2.0",
            "move agent latest",
            "move server latest"
        ]
    );
    assert!(p.version_file.reason.contains("missing: frontend, nginx, worker"), "{}", p.version_file.reason);

    let err = plan(&cfg(CONFIG), &o, &only(&["worker"])).unwrap_err();
    assert!(matches!(err, PlanError::ParentUnavailable { .. }), "{err}");
    assert_eq!(err.exit_code(), 2);
    let err = plan(&cfg(CONFIG), &o, &only(&["ghost"])).unwrap_err();
    assert!(err.to_string().contains("`ghost`") && err.hint().contains("server"), "{err}");

    let mut o = o.clone();
    publish(&mut o, &["server"], "v1.2.0", COMMIT, true);
    let p = plan(&cfg(CONFIG), &o, &only(&["worker"])).unwrap();
    assert_eq!(kinds(&p), ["build worker", "push worker v1.2.0", "move worker latest"]);
}

#[test]
fn missing_dockerfile_names_image_path_and_commit() {
    let mut o = observed("v1.2.0", &["v1.2.0"], None);
    o.missing_inputs.push(("nginx".into(), "docker/nginx/Dockerfile".into()));
    let err = plan(&cfg(CONFIG), &o, &PlanOptions::default()).unwrap_err();
    assert_eq!(err.to_string(), format!("image nginx: docker/nginx/Dockerfile does not exist at commit {COMMIT}"));
    assert_eq!(err.exit_code(), 2);
}

#[test]
fn drifted_floating_and_missing_version_tags_are_repaired_by_copy() {
    let c = cfg(&CONFIG.replace("images:", "tags: ['{{raw}}', '{{version}}', latest]\nimages:"));
    let mut o = observed("v1.2.0", &["v1.2.0"], Some("v1.2.0"));
    publish(&mut o, &ALL, "v1.2.0", COMMIT, false);
    for name in ALL {
        let RegistryView::Known(tags) = o.registry.get_mut(name).unwrap() else { unreachable!() };
        tags.insert("1.2.0".into(), remote(&format!("sha256:{name}v1.2.0"), COMMIT));
        tags.insert("latest".into(), remote("sha256:old", OTHER));
    }
    let RegistryView::Known(tags) = o.registry.get_mut("agent").unwrap() else { unreachable!() };
    tags.remove("1.2.0");
    let p = plan(&c, &o, &PlanOptions::default()).unwrap();
    assert_eq!(
        kinds(&p),
        [
            "push agent 1.2.0",
            "move agent latest",
            "move frontend latest",
            "move server latest",
            "move nginx latest",
            "move worker latest"
        ]
    );
    assert_eq!(
        p.steps[0],
        Step::Push(PushStep {
            image: "agent".into(),
            repository: "registry.test:5000/acme/app-agent".into(),
            tags: vec!["1.2.0".into()],
            source: PushSource::Tag("v1.2.0".into())
        })
    );
}

#[test]
fn major_and_minor_lines_move_only_within_their_line() {
    let c = cfg(&CONFIG.replace("images:", "tags: ['{{raw}}', '{{major}}', '{{major}}.{{minor}}', latest]\nimages:"));
    let o = observed("v1.0.5", &["v1.0.4", "v1.0.5", "v1.1.0", "v2.0.0"], Some("v2.0.0"));
    let p = plan(&c, &o, &PlanOptions { only: Some(BTreeSet::from(["agent".into()])), ..Default::default() }).unwrap();
    let agent = p.images.iter().find(|i| i.name == "agent").unwrap();
    let moves: Vec<(&str, bool)> = agent.floating.iter().map(|d| (d.tag.as_str(), d.moves)).collect();
    assert_eq!(moves, [("1", false), ("1.0", true), ("latest", false)]);
    assert_eq!(agent.floating[0].reason, "stays: v1.1.0 is higher");
    assert_eq!(agent.floating[2].reason, "stays: v2.0.0 is higher");
}

#[test]
fn version_file_never_moves_backwards_and_replaces_garbage() {
    let cases = [
        (Some("v1.3.0"), None, "stays: v1.3.0 is higher"),
        (Some("v1.2.0"), None, "already current"),
        (Some("v1.1.9"), Some("v1.2.0"), "newest stable release"),
        (None, Some("v1.2.0"), "newest stable release"),
        (Some("garbage"), Some("v1.2.0"), "`garbage` is not a release version; replaced"),
    ];
    for (current, next, reason) in cases {
        let mut o = observed("v1.2.0", &["v1.2.0"], current);
        publish(&mut o, &ALL, "v1.2.0", COMMIT, true);
        let p = plan(&cfg(CONFIG), &o, &PlanOptions::default()).unwrap();
        assert_eq!(p.version_file.next.as_deref(), next, "{current:?}");
        assert_eq!(p.version_file.reason, reason, "{current:?}");
    }
}

#[test]
fn commit_message_and_cache_options() {
    let c = cfg(&CONFIG
        .replace("images:", "commit: { message: 'release {{version}} ({{raw}})' }\nbuild: { cache: false }\nimages:"));
    let p = plan(&c, &observed("v1.2.0", &["v1.2.0"], None), &PlanOptions::default()).unwrap();
    let Some(Step::CommitVersion(v)) = p.steps.last() else { panic!() };
    assert_eq!(v.message, "release 1.2.0 (v1.2.0)");
    assert_eq!(v.also_update, ["README.md"]);
    assert!(p.steps.iter().all(|s| !matches!(s, Step::Build(b) if !b.no_cache)));
    let p = plan(
        &cfg(CONFIG),
        &observed("v1.2.0", &["v1.2.0"], None),
        &PlanOptions { no_cache: true, ..Default::default() },
    )
    .unwrap();
    assert!(p.steps.iter().all(|s| !matches!(s, Step::Build(b) if !b.no_cache)));
}

/// What each build reads its layer cache from, per `build.cache_from`.
fn cache_sources(build: &str, o: &Observed, opts: &PlanOptions) -> (BTreeMap<String, Vec<String>>, Vec<String>) {
    let p = plan(&cfg(&CONFIG.replace("images:", &format!("build: {build}\nimages:"))), o, opts).unwrap();
    let builds = p.steps.iter().filter_map(|s| match s {
        Step::Build(b) => Some((b.image.clone(), b.cache_from.clone())),
        _ => None,
    });
    (builds.collect(), p.notes)
}

#[test]
fn builds_read_the_previous_release_and_the_configured_cache_images() {
    let repo = |i: &str, t: &str| format!("registry.test:5000/acme/app-{i}:{t}");
    // A hotfix: the newest earlier release, not the newest release.
    let o = observed("v1.0.5", &["v1.0.4", "v1.0.5", "v1.1.0"], Some("v1.1.0"));
    let (cache, notes) = cache_sources("{}", &o, &PlanOptions::default());
    assert_eq!(cache["server"], [repo("server", "v1.0.4")]);
    assert!(notes.is_empty(), "{notes:?}");
    // The registry's newest earlier release comes first; a tag the registry
    // no longer has may still be in the engine (an imported bundle).
    let mut o = observed("v1.2.0", &["v1.0.0", "v1.1.0", "v1.2.0"], None);
    o.previous.insert("server".into(), ("v1.0.0".into(), remote("sha256:s", OTHER)));
    let (cache, _) =
        cache_sources("{ cache_from: [previous, 'cache.test/acme/server:buildcache'] }", &o, &PlanOptions::default());
    assert_eq!(
        cache["server"],
        [repo("server", "v1.0.0"), repo("server", "v1.1.0"), "cache.test/acme/server:buildcache".into()]
    );
    assert_eq!(cache["agent"], [repo("agent", "v1.1.0"), "cache.test/acme/server:buildcache".into()]);
    let (cache, _) = cache_sources("{ cache_from: ['cache.test/x:y'] }", &o, &PlanOptions::default());
    assert_eq!(cache["server"], ["cache.test/x:y"]);
    // No cache at all: none, cache: false, --no-cache.
    for (build, no_cache) in [("{ cache_from: none }", false), ("{ cache: false }", false), ("{}", true)] {
        let (cache, _) = cache_sources(build, &o, &PlanOptions { no_cache, ..Default::default() });
        assert!(cache.values().all(Vec::is_empty), "{build} {no_cache}: {cache:?}");
    }
    // The first release has nothing to read; the classic builder is told apart.
    let (cache, _) = cache_sources("{}", &observed("v1.0.0", &["v1.0.0"], None), &PlanOptions::default());
    assert!(cache.values().all(Vec::is_empty));
    let (_, notes) = cache_sources("{ builder: classic }", &o, &PlanOptions::default());
    assert!(
        notes.iter().any(|n| n.contains("classic reads layer cache only from images already in the engine")),
        "{notes:?}"
    );
}

#[test]
fn signing_covers_every_digest_that_lacks_its_signature_before_any_version_tag() {
    let c = cfg(&CONFIG.replace("images:", "sign: { key: cosign.key, provenance: true }\nimages:"));
    let p = plan(&c, &observed("v1.2.0", &["v1.2.0"], None), &PlanOptions::default()).unwrap();
    let signs: Vec<&SignStep> =
        p.steps.iter().filter_map(|s| if let Step::Sign(x) = s { Some(x) } else { None }).collect();
    assert_eq!(signs.len(), 5);
    assert!(signs.iter().all(|x| x.digest.is_none() && x.stage_tag.is_some() && x.signature && x.attestation));
    let first_push = p.steps.iter().position(|s| matches!(s, Step::Push(_))).unwrap();
    let last_sign = p.steps.iter().rposition(|s| matches!(s, Step::Sign(_))).unwrap();
    assert!(last_sign < first_push, "{p}");
    assert!(p.signed);
    assert!(p.to_string().contains("[2] sign   server signature and provenance of the image built in phase 1"), "{p}");

    // Published: signed only where the repository lacks the artifact.
    let mut o = observed("v1.2.0", &["v1.2.0"], Some("v1.2.0"));
    publish(&mut o, &ALL, "v1.2.0", COMMIT, true);
    for image in ALL {
        let digest = format!("sha256:{image}v1.2.0");
        let mut listed = BTreeSet::from([artifact_tag(&digest, "sig")]);
        if image != "agent" {
            listed.insert(artifact_tag(&digest, "att"));
        }
        o.artifacts.insert(image.to_string(), listed);
    }
    let p = plan(&c, &o, &PlanOptions::default()).unwrap();
    assert_eq!(kinds(&p), ["sign agent"], "{p}");
    let Step::Sign(x) = &p.steps[0] else { panic!() };
    assert_eq!((x.digest.as_deref(), x.signature, x.attestation), (Some("sha256:agentv1.2.0"), false, true));
    // Without sign: nothing is signed; a fan-out build job leaves signing to finalize.
    assert!(!plan(&cfg(CONFIG), &o, &PlanOptions::default()).unwrap().signed);
    let staged =
        plan(&c, &observed("v1.2.0", &["v1.2.0"], None), &PlanOptions { stage_only: true, ..Default::default() });
    assert!(!kinds(&staged.unwrap()).iter().any(|k| k.starts_with("sign")));
}

#[test]
fn unknown_registry_state_is_noted() {
    let mut o = observed("v1.2.0", &["v1.2.0"], None);
    o.registry.insert("server".into(), RegistryView::Unknown("connection refused".into()));
    let p = plan(&cfg(CONFIG), &o, &PlanOptions::default()).unwrap();
    assert_eq!(p.notes, ["server: registry not read (connection refused); assuming nothing is published"]);
}

#[test]
fn parent_build_arg_names() {
    assert_eq!(parent_arg("server"), "SERVER_IMAGE");
    assert_eq!(parent_arg("web-base"), "WEB_BASE_IMAGE");
}

/// The input keys the planner computes for `o`, by image.
fn keys(c: &Config, o: &Observed) -> BTreeMap<String, String> {
    let keys = crate::plan::platforms::image_keys(c, &o.context_digests, &o.platform);
    keys.into_iter().map(|(k, v)| (k, v.image)).collect()
}

/// `o` with every image of v1.1.0 in the registry, built from inputs `keys`.
fn with_previous(o: &mut Observed, keys: &BTreeMap<String, String>) {
    for name in ALL {
        let remote = RemoteTag {
            digest: format!("sha256:{name}-v1.1.0"),
            revision: Some(OTHER.into()),
            inputs: keys.get(name).cloned(),
        };
        o.previous.insert(name.to_string(), ("v1.1.0".into(), remote));
    }
}

#[test]
fn unchanged_images_are_retagged_and_changes_rebuild_their_children() {
    let c = cfg(CONFIG);
    let old = observed("v1.1.0", &["v1.1.0"], Some("v1.1.0"));
    let old_keys = keys(&c, &old);
    // v1.2.0 changes only frontend's context.
    let mut o = observed("v1.2.0", &["v1.1.0", "v1.2.0"], Some("v1.1.0"));
    o.context_digests.insert("frontend".into(), "ctx-frontend-changed".into());
    with_previous(&mut o, &old_keys);
    let p = plan(&c, &o, &PlanOptions::default()).unwrap();
    insta::assert_snapshot!(p.to_string());
    let actions: BTreeMap<&str, &ImageAction> = p.images.iter().map(|i| (i.name.as_str(), &i.action)).collect();
    assert!(matches!(actions["server"], ImageAction::Retag { from, .. } if from == "v1.1.0"));
    assert!(matches!(actions["agent"], ImageAction::Retag { .. }));
    assert!(matches!(actions["worker"], ImageAction::Retag { .. }), "worker and its parent are unchanged");
    assert!(matches!(actions["frontend"], ImageAction::Build { .. }));
    assert!(matches!(actions["nginx"], ImageAction::Build { .. }), "a changed parent rebuilds its child");
    assert!(kinds(&p).contains(&"commit v1.2.0".to_string()));
    let new_keys = keys(&c, &o);
    assert_eq!(old_keys["server"], new_keys["server"]);
    assert_ne!(old_keys["nginx"], new_keys["nginx"]);
    let Some(Step::Build(nginx)) = p.steps.iter().find(|s| matches!(s, Step::Build(b) if b.image == "nginx")) else {
        panic!()
    };
    assert_eq!(nginx.labels["io.relctl.inputs"], new_keys["nginx"]);
}

/// relctl's own VERSION commit changes a context that sends VERSION, and so
/// that image's input key, every release: the plan says so where it builds.
/// (Observing puts VERSION in `rewritten_in_context` only when the inputs
/// include it: the whole context, or a file the Dockerfile reads.)
#[test]
fn a_context_sending_version_is_noted_where_it_rebuilds() {
    let note = "server: its build context sends VERSION, which relctl rewrites after every release, so server is built again in every release; list VERSION in .dockerignore unless the build reads it";
    let read = "server: its Dockerfile reads VERSION, which relctl rewrites after every release, so server is built again in every release";
    let context = cfg(&CONFIG.replace("images:", "build: { inputs: context }\nimages:"));
    for (c, whole, want) in [(context, None, note), (cfg(CONFIG), Some("COPY . ."), note), (cfg(CONFIG), None, read)] {
        let old_keys = keys(&c, &observed("v1.1.0", &["v1.1.0"], None));
        let mut o = observed("v1.2.0", &["v1.1.0", "v1.2.0"], None);
        o.rewritten_in_context.insert("server".into(), vec!["VERSION".into()]);
        o.context_digests.insert("server".into(), "ctx-server-with-new-version".into());
        o.whole_context.extend(whole.map(|w| ("server".to_string(), w.to_string())));
        with_previous(&mut o, &old_keys);
        let p = plan(&c, &o, &PlanOptions::default()).unwrap();
        assert_eq!(p.notes, [want]);
        assert!(p.to_string().contains(want), "{p}");
    }
    let c = cfg(CONFIG);
    let old_keys = keys(&c, &observed("v1.1.0", &["v1.1.0"], None));

    // Retagged (unchanged key): nothing to say.
    let mut o = observed("v1.2.0", &["v1.1.0", "v1.2.0"], None);
    o.rewritten_in_context.insert("server".into(), vec!["VERSION".into()]);
    with_previous(&mut o, &old_keys);
    assert!(plan(&c, &o, &PlanOptions::default()).unwrap().notes.is_empty());

    // With `unchanged: rebuild` every image builds anyway.
    let c = cfg(&CONFIG.replace("images:", "build: { unchanged: rebuild }\nimages:"));
    let mut o = observed("v1.2.0", &["v1.1.0", "v1.2.0"], None);
    o.rewritten_in_context.insert("server".into(), vec!["VERSION".into()]);
    assert!(plan(&c, &o, &PlanOptions::default()).unwrap().notes.is_empty());
}

#[test]
fn a_child_of_a_retagged_parent_builds_from_the_earlier_tag() {
    let c = cfg(CONFIG);
    let old_keys = keys(&c, &observed("v1.1.0", &["v1.1.0"], None));
    let mut c2 = c.clone();
    c2.images.iter_mut().find(|i| i.name == "worker").unwrap().build_args.insert("MODE".into(), "staging".into());
    let mut o = observed("v1.2.0", &["v1.1.0", "v1.2.0"], None);
    with_previous(&mut o, &old_keys);
    let p = plan(&c2, &o, &PlanOptions::default()).unwrap();
    let builds: Vec<&BuildStep> =
        p.steps.iter().filter_map(|s| if let Step::Build(b) = s { Some(b) } else { None }).collect();
    assert_eq!(builds.len(), 1, "a changed build arg rebuilds only that image: {p}");
    assert_eq!(builds[0].image, "worker");
    assert_eq!(
        builds[0].build_args["SERVER_IMAGE"], "registry.test:5000/acme/app-server:v1.1.0",
        "the retagged parent's content, which exists before phase 2"
    );
}

#[test]
fn rebuild_mode_and_unknown_inputs_always_build() {
    let c = cfg(&CONFIG.replace("images:", "build: { unchanged: rebuild }\nimages:"));
    let old_keys = keys(&c, &observed("v1.1.0", &["v1.1.0"], None));
    let mut o = observed("v1.2.0", &["v1.1.0", "v1.2.0"], None);
    with_previous(&mut o, &old_keys);
    let p = plan(&c, &o, &PlanOptions::default()).unwrap();
    assert_eq!(p.steps.iter().filter(|s| matches!(s, Step::Build(_))).count(), 5);

    let c = cfg(CONFIG);
    let mut o = observed("v1.2.0", &["v1.1.0", "v1.2.0"], None);
    with_previous(&mut o, &BTreeMap::new()); // earlier images carry no input key
    let p = plan(&c, &o, &PlanOptions::default()).unwrap();
    assert_eq!(p.steps.iter().filter(|s| matches!(s, Step::Build(_))).count(), 5, "no key, no retag");
}

#[test]
fn a_retagged_release_is_published_on_rerun() {
    let c = cfg(CONFIG);
    let mut o = observed("v1.2.0", &["v1.1.0", "v1.2.0"], Some("v1.2.0"));
    let k = keys(&c, &o);
    for name in ALL {
        let remote =
            RemoteTag { digest: format!("sha256:{name}"), revision: Some(OTHER.into()), inputs: Some(k[name].clone()) };
        o.registry.insert(
            name.into(),
            RegistryView::Known(BTreeMap::from([("v1.2.0".into(), remote.clone()), ("latest".into(), remote)])),
        );
    }
    let p = plan(&c, &o, &PlanOptions::default()).unwrap();
    assert!(p.steps.is_empty(), "same inputs from an earlier commit count as this release: {p}");
}

#[test]
fn staging_names_the_build_by_tag_and_commit_and_can_be_turned_off() {
    let p = plan(&cfg(CONFIG), &observed("v1.2.0", &["v1.2.0"], None), &PlanOptions::default()).unwrap();
    let builds: BTreeMap<&str, &BuildStep> = p
        .steps
        .iter()
        .filter_map(|s| if let Step::Build(b) = s { Some((b.image.as_str(), b)) } else { None })
        .collect();
    let stage = "relctl-stage-v1.2.0-111111111111";
    assert_eq!(builds["server"].stage_tag.as_deref(), Some(stage));
    assert_eq!(
        builds["worker"].build_args["SERVER_IMAGE"],
        format!("registry.test:5000/acme/app-server:{stage}"),
        "a child builds FROM the parent's local image under the name it was built as"
    );
    assert!(p.steps.iter().all(|s| !matches!(s, Step::Push(PushStep { source: PushSource::Build, .. }))), "{p}");

    let c = cfg(&CONFIG.replace("images:", "build: { stage: false }\nimages:"));
    let p = plan(&c, &observed("v1.2.0", &["v1.2.0"], None), &PlanOptions::default()).unwrap();
    for step in &p.steps {
        match step {
            Step::Build(b) => {
                assert_eq!(b.stage_tag, None);
                assert!(b.reference.ends_with(":v1.2.0"), "{}", b.reference);
            }
            Step::Push(push) => assert_eq!(push.source, PushSource::Build),
            _ => {}
        }
    }
}

#[test]
fn staging_tag_fits_the_registry_limit() {
    let long = format!("v1.0.0-{}", "a".repeat(140));
    let tag = crate::plan::stage_tag(&long, &"f".repeat(40));
    assert_eq!(tag.len(), 128);
    assert!(tag.starts_with("relctl-stage-v1.0.0-aaa"));
}

#[test]
fn a_tag_whose_image_tag_would_pass_the_registry_limit_is_refused_and_others_plan() {
    let long = format!("v0.9.0-{}", "a".repeat(160));
    let err = plan(&cfg(CONFIG), &observed(&long, &[&long, "v1.0.0"], None), &PlanOptions::default()).unwrap_err();
    assert_eq!(err.exit_code(), 2);
    assert!(err.to_string().contains("limit of 128 characters"), "{err}");
    assert!(image_tags(&cfg(CONFIG), &rv(&long)).is_err());
    // 121 characters is the longest `v`-prefixed tag that fits.
    let fits = format!("v0.9.0-{}", "a".repeat(121));
    assert_eq!(image_tags(&cfg(CONFIG), &rv(&fits)).unwrap().primary(), fits);
    let p = plan(&cfg(CONFIG), &observed("v1.0.0", &[&long, "v1.0.0"], None), &PlanOptions::default()).unwrap();
    assert!(p.images.iter().all(|i| i.version_tags == ["v1.0.0"]), "{p}");
}

#[test]
fn version_file_or_also_update_that_is_not_a_regular_file_is_bad_input() {
    for (path, field) in [("VERSION", "version_file"), ("README.md", "also_update")] {
        let mut o = observed("v1.2.0", &["v1.2.0"], None);
        o.unwritable = vec![(path.into(), "a directory".into())];
        let err = plan(&cfg(CONFIG), &o, &PlanOptions::default()).unwrap_err();
        assert_eq!(err.exit_code(), 2);
        assert_eq!(
            err.to_string(),
            format!("{field}: {path} is a directory on the release branch; relctl writes only regular files")
        );
    }
}

/// When the Dockerfile's inputs could not be told, the key covers the whole
/// context; a rebuild says so, where the image could have been retagged.
#[test]
fn a_rebuild_from_the_whole_context_says_why() {
    let c = cfg(CONFIG);
    let old_keys = keys(&c, &observed("v1.1.0", &["v1.1.0"], None));
    let mut o = observed("v1.2.0", &["v1.1.0", "v1.2.0"], None);
    o.context_digests.insert("server".into(), "ctx-server-changed".into());
    o.context_digests.insert("agent".into(), "ctx-agent-changed".into());
    o.whole_context.insert("server".into(), "COPY . .".into());
    o.whole_context.insert("frontend".into(), "COPY . .".into());
    with_previous(&mut o, &old_keys);
    let p = plan(&c, &o, &PlanOptions::default()).unwrap();
    let action = |name: &str| p.images.iter().find(|i| i.name == name).unwrap().action.clone();
    assert_eq!(action("server"), ImageAction::Build { reason: "inputs: whole context: COPY . .".into() });
    assert_eq!(action("agent"), ImageAction::Build { reason: "v1.2.0 is not in the registry".into() });
    assert!(matches!(action("frontend"), ImageAction::Retag { .. }), "an unchanged whole context is still retagged");
    let text = p.to_string();
    assert!(text.contains("build (inputs: whole context: COPY . .)"), "{text}");
    assert!(text.contains("retag (unchanged since v1.1.0)"), "{text}");

    // A first release is built because it is not in the registry, whatever its inputs.
    let mut o = observed("v1.1.0", &["v1.1.0"], None);
    o.whole_context.insert("server".into(), "COPY . .".into());
    let p = plan(&c, &o, &PlanOptions::default()).unwrap();
    let server = p.images.iter().find(|i| i.name == "server").unwrap();
    assert_eq!(server.action, ImageAction::Build { reason: "v1.1.0 is not in the registry".into() });
}
