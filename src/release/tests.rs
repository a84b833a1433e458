//! The fast tier: the executor's phase logic over in-memory fakes (see
//! `fakes`), no engine, registry or git remote needed. Each test plans a
//! release from what the fakes hold, runs it, and checks the world after.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::fakes::{FakeEngine, FakeForge, FakeGit, FakeRegistry, Journal, Manifest};
use super::{Executor, ReleaseError};
use crate::config::{self, Config};
use crate::git::GitRepo;
use crate::plan::{self, Observed, PlanOptions, RegistryView};
use crate::progress::NoProgress;
use crate::registry::Registry;
use crate::version::ReleaseVersion;

const CONFIG: &str = "registry: reg.test\nnamespace: acme\nproject: p\nbuild: { retries: 0 }\n\
images:\n  app: { context: app }\n  web: { context: web, depends_on: [app] }\n";

pub(super) struct World {
    pub(super) journal: Journal,
    pub(super) config: Config,
    pub(super) git: FakeGit,
    pub(super) registry: Arc<FakeRegistry>,
    pub(super) engine: FakeEngine,
    pub(super) forge: FakeForge,
}

impl World {
    fn new(version: Option<&str>) -> Self {
        Self::with(CONFIG, version, &[])
    }

    /// A world with `config` and, besides the Dockerfiles, `extra` files at the release commit.
    pub(super) fn with(config: &str, version: Option<&str>, extra: &[(&'static str, &'static str)]) -> Self {
        let journal = Journal::default();
        let config = config::parse(config, std::path::Path::new("release.yaml")).unwrap();
        let mut files =
            vec![("app/Dockerfile", "FROM scratch\n"), ("web/Dockerfile", "ARG APP_IMAGE\nFROM $APP_IMAGE\n")];
        files.extend(version.map(|v| ("VERSION", v)));
        files.extend_from_slice(extra);
        let git = FakeGit::new(&journal, &files);
        let registry = Arc::new(FakeRegistry::new(&journal));
        let engine = FakeEngine::new(&journal, &registry);
        let forge = FakeForge::new(&journal);
        Self { journal, config, git, registry, engine, forge }
    }

    pub(super) fn repo(image: &str) -> String {
        format!("acme/p-{image}")
    }

    /// What the planner sees for `tag` at the branch's first commit, `tags` being the repository's release tags.
    pub(super) async fn observed(&self, tag: &str, tags: &[&str]) -> Observed {
        let target = ReleaseVersion::parse(tag, "v").unwrap();
        let wanted: Vec<String> = vec![tag.into(), "latest".into()];
        let mut registry = BTreeMap::new();
        for image in &self.config.images {
            let seen = self.registry.observe(&image.repository, &wanted, &[]).await.unwrap();
            registry.insert(image.name.clone(), RegistryView::Known(seen));
        }
        let tip = self.git.branch_tip().unwrap();
        let mut artifacts = BTreeMap::new();
        for image in &self.config.images {
            let listed = self.registry.tags(&image.repository).await.unwrap();
            artifacts.insert(image.name.clone(), listed.into_iter().filter(|t| t.starts_with("sha256-")).collect());
        }
        // As observe() reads them: the platforms of each index already out.
        let mut index_platforms = BTreeMap::new();
        for (name, view) in &registry {
            let Some(t) = view.tag(tag) else { continue };
            let listed = self.registry.platforms(&Self::repo(name), &t.digest).await.unwrap().unwrap_or_default();
            if !listed.is_empty() {
                index_platforms.insert(t.digest.clone(), listed);
            }
        }
        Observed {
            index_platforms,
            target,
            commit: "c0".into(),
            release_tags: tags.iter().map(|t| ReleaseVersion::parse(t, "v").unwrap()).collect(),
            version_file: self.git.file_on_branch("VERSION").filter(|_| !tip.is_empty()),
            unwritable: vec![],
            missing_inputs: vec![],
            registry,
            source_url: "https://example.test/acme/app".into(),
            created: "2026-12-02T00:00:00Z".into(),
            context_digests: self.config.images.iter().map(|i| (i.name.clone(), format!("ctx-{}", i.name))).collect(),
            rewritten_in_context: BTreeMap::new(),
            whole_context: BTreeMap::new(),
            previous: BTreeMap::new(),
            platform: "linux/amd64".into(),
            artifacts,
        }
    }

    /// The executor over the fakes; the forge only `with_forge`.
    pub(super) fn executor(&self, with_forge: bool) -> Executor<'_, FakeGit, FakeEngine, FakeRegistry, FakeForge> {
        Executor {
            config: &self.config,
            git: &self.git,
            builder: &self.engine,
            registry: &*self.registry,
            progress: &NoProgress,
            github: with_forge.then_some(&self.forge),
            dockerhub: None,
            signer: None,
        }
    }

    pub(super) async fn release(&self, tag: &str, tags: &[&str]) -> Result<super::Report, ReleaseError> {
        let observed = self.observed(tag, tags).await;
        let plan = plan::plan(&self.config, &observed, &PlanOptions::default())?;
        self.executor(true).execute(&plan, &observed.target).await
    }

    pub(super) fn journal(&self) -> Vec<String> {
        self.journal.lock().unwrap().clone()
    }

    pub(super) fn tag(&self, image: &str, tag: &str) -> Option<Manifest> {
        self.registry.get(&Self::repo(image), tag)
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_release_builds_tags_commits_version_then_creates_the_github_release() {
    let w = World::new(None);
    let report = w.release("v1.0.0", &["v1.0.0"]).await.unwrap();
    assert_eq!(report.images.len(), 2);
    for image in ["app", "web"] {
        assert_eq!(w.tag(image, "v1.0.0").unwrap().revision, "c0", "{image} built from the tag's commit");
        assert_eq!(w.tag(image, "latest").unwrap().digest, w.tag(image, "v1.0.0").unwrap().digest);
    }
    assert_eq!(w.git.file_on_branch("VERSION").as_deref(), Some("v1.0.0\n"));
    let j = w.journal();
    let at = |what: &str| j.iter().position(|l| l.starts_with(what)).unwrap_or_else(|| panic!("{what}: {j:#?}"));
    assert!(at("build app") < at("build web"), "parents first: {j:#?}");
    assert!(at("tag acme/p-web:latest") < at("commit VERSION=v1.0.0"), "VERSION after every image: {j:#?}");
    assert!(at("commit VERSION=v1.0.0") < at("release v1.0.0"), "the GitHub Release last: {j:#?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failed_build_publishes_nothing() {
    let mut w = World::new(Some("v0.9.0\n"));
    w.engine.failing = vec!["web".into()];
    let err = w.release("v1.0.0", &["v0.9.0", "v1.0.0"]).await.unwrap_err();
    assert!(matches!(err, ReleaseError::Build { .. }), "{err}");
    for image in ["app", "web"] {
        assert!(w.tag(image, "v1.0.0").is_none() && w.tag(image, "latest").is_none(), "{image}: {:#?}", w.journal());
    }
    assert_eq!(w.git.file_on_branch("VERSION").as_deref(), Some("v0.9.0\n"), "VERSION untouched");
    assert!(!w.journal().iter().any(|l| l.starts_with("commit") || l.starts_with("release")), "{:#?}", w.journal());
}

#[tokio::test(flavor = "multi_thread")]
async fn floating_tags_never_move_backwards_even_when_a_newer_release_lands_meanwhile() {
    let w = World::new(Some("v1.0.0\n"));
    let observed = w.observed("v1.1.0", &["v1.0.0", "v1.1.0"]).await;
    let plan = plan::plan(&w.config, &observed, &PlanOptions::default()).unwrap();
    // v2.0.0 is released by another run between this plan and its execution.
    for image in ["app", "web"] {
        let v2 = Manifest { digest: format!("sha256:{image}-2.0.0"), revision: "c9".into(), version: "2.0.0".into() };
        w.registry.put(&World::repo(image), "v2.0.0", v2.clone());
        w.registry.put(&World::repo(image), "latest", v2);
    }
    let report = w.executor(false).execute(&plan, &observed.target).await.unwrap();
    assert!(report.moved.is_empty(), "{:?}", report.moved);
    for image in ["app", "web"] {
        assert_eq!(w.tag(image, "latest").unwrap().version, "2.0.0", "{image}: latest stays on the newer release");
        assert_eq!(w.tag(image, "v1.1.0").unwrap().version, "1.1.0");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_version_race_is_retried_and_ends_in_one_commit_on_top_of_the_others() {
    let w = World::new(None);
    w.git.race(2);
    w.release("v1.0.0", &["v1.0.0"]).await.unwrap();
    let j = w.journal();
    assert_eq!(j.iter().filter(|l| l.starts_with("someone else moved")).count(), 2, "{j:#?}");
    assert_eq!(j.iter().filter(|l| l.starts_with("commit VERSION")).count(), 1, "{j:#?}");
    assert_eq!(w.git.file_on_branch("VERSION").as_deref(), Some("v1.0.0\n"));
    assert_eq!(w.git.file_on_branch("NOTES").as_deref(), Some("0"), "the other commits are kept");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failing_github_release_comes_after_version_and_leaves_the_release_published() {
    let mut w = World::new(None);
    w.forge.fail = true;
    let err = w.release("v1.0.0", &["v1.0.0"]).await.unwrap_err();
    assert!(matches!(err, ReleaseError::Forge(_)), "{err}");
    assert_eq!(w.git.file_on_branch("VERSION").as_deref(), Some("v1.0.0\n"));
    assert!(w.tag("web", "latest").is_some());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_half_release_finishes_and_a_failed_version_tag_write_names_what_is_done() {
    let w = World::new(None);
    let app = Manifest { digest: "sha256:app-1.0.0".into(), revision: "c0".into(), version: "1.0.0".into() };
    w.registry.put(&World::repo("app"), "v1.0.0", app);
    w.registry.fail_writes(&World::repo("web"), "v1.0.0", 99);
    let err = w.release("v1.0.0", &["v1.0.0"]).await.unwrap_err();
    let ReleaseError::Incomplete { done, .. } = &err else { panic!("{err}") };
    assert_eq!(done, &["app"], "{err}");
    assert!(err.to_string().contains("1 of the release's images already carry v1.0.0: app"), "{err}");
    assert!(w.tag("web", "latest").is_none() && w.git.file_on_branch("VERSION").is_none(), "nothing moved on");

    w.registry.fail_writes(&World::repo("web"), "v1.0.0", 0);
    w.release("v1.0.0", &["v1.0.0"]).await.unwrap();
    assert!(!w.journal().iter().any(|l| l == "build app"), "the published image is not rebuilt");
    for image in ["app", "web"] {
        assert!(w.tag(image, "v1.0.0").is_some() && w.tag(image, "latest").is_some(), "{image}");
    }
    assert_eq!(w.git.file_on_branch("VERSION").as_deref(), Some("v1.0.0\n"));
}

/// The Docker Hub API fixture: a login for `hubuser` and the repositories of
/// both images holding `current`; PATCHes answered 200.
async fn docker_hub(current: serde_json::Value) -> wiremock::MockServer {
    use wiremock::matchers::{body_json, method, path};
    use wiremock::{Mock, ResponseTemplate};
    let server = wiremock::MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v2/users/login"))
        .and(body_json(serde_json::json!({"username": "hubuser", "password": "pat-secret"})))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({"token": "hub-session"})))
        .mount(&server)
        .await;
    for image in ["app", "web"] {
        let repo = format!("/v2/repositories/{}/", World::repo(image));
        Mock::given(method("GET"))
            .and(path(repo.as_str()))
            .and(wiremock::matchers::header("authorization", "Bearer hub-session"))
            .respond_with(ResponseTemplate::new(200).set_body_json(current.clone()))
            .mount(&server)
            .await;
        Mock::given(method("PATCH"))
            .and(path(repo.as_str()))
            .and(wiremock::matchers::header("authorization", "Bearer hub-session"))
            .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({})))
            .mount(&server)
            .await;
    }
    server
}

const HUB_CONFIG: &str = "registry: docker.io\nnamespace: acme\nproject: p\nbuild: { retries: 0 }\n\
dockerhub: { description: Acme's app, readme: README.md }\n\
images:\n  app: { context: app }\n  web: { context: web, depends_on: [app] }\n";

async fn release_with_hub(
    w: &World,
    hub: &crate::forge::dockerhub::DockerHub,
    tag: &str,
    tags: &[&str],
) -> super::Report {
    let observed = w.observed(tag, tags).await;
    let plan = plan::plan(&w.config, &observed, &PlanOptions::default()).unwrap();
    let executor = Executor { dockerhub: Some(hub), ..w.executor(false) };
    executor.execute(&plan, &observed.target).await.unwrap()
}

fn hub_client(server: &wiremock::MockServer) -> crate::forge::dockerhub::DockerHub {
    let creds = crate::registry::Credentials { username: "hubuser".into(), password: "pat-secret".to_string().into() };
    crate::forge::dockerhub::DockerHub::new(&server.uri(), &creds, reqwest::Client::new()).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn docker_hub_descriptions_follow_each_new_stable_release_only_when_they_changed() {
    let w = World::with(HUB_CONFIG, None, &[("README.md", "# Acme\n")]);
    let server = docker_hub(serde_json::json!({"description": "old", "full_description": "# Old\n"})).await;
    let hub = hub_client(&server);
    let report = release_with_hub(&w, &hub, "v1.0.0", &["v1.0.0"]).await;
    assert_eq!(report.dockerhub_updated, ["acme/p-app", "acme/p-web"]);
    let requests = server.received_requests().await.unwrap();
    let patches: Vec<serde_json::Value> =
        requests.iter().filter(|r| r.method.as_str() == "PATCH").map(|r| r.body_json().unwrap()).collect();
    let want = serde_json::json!({"description": "Acme's app", "full_description": "# Acme\n"});
    assert_eq!(patches, [want.clone(), want]);
    assert_eq!(requests.iter().filter(|r| r.url.path() == "/v2/users/login").count(), 1, "one login per run");

    // A pre-release and a rerun that changes nothing write nothing.
    let before = requests.len();
    release_with_hub(&w, &hub, "v1.1.0-rc.1", &["v1.0.0", "v1.1.0-rc.1"]).await;
    release_with_hub(&w, &hub, "v1.0.0", &["v1.0.0", "v1.1.0-rc.1"]).await;
    assert_eq!(server.received_requests().await.unwrap().len(), before, "no Docker Hub request");

    // Text Docker Hub already has is not written again.
    let w = World::with(HUB_CONFIG, None, &[("README.md", "# Acme\n")]);
    let server = docker_hub(serde_json::json!({"description": "Acme's app", "full_description": "# Acme\n"})).await;
    let report = release_with_hub(&w, &hub_client(&server), "v1.0.0", &["v1.0.0"]).await;
    assert!(report.dockerhub_updated.is_empty());
    assert!(!server.received_requests().await.unwrap().iter().any(|r| r.method.as_str() == "PATCH"));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_docker_hub_that_refuses_the_login_is_a_warning_and_the_release_completes() {
    let w = World::with(HUB_CONFIG, None, &[("README.md", "# Acme\n")]);
    let server = wiremock::MockServer::start().await;
    wiremock::Mock::given(wiremock::matchers::path("/v2/users/login"))
        .respond_with(wiremock::ResponseTemplate::new(401))
        .mount(&server)
        .await;
    let report = release_with_hub(&w, &hub_client(&server), "v1.0.0", &["v1.0.0"]).await;
    assert!(report.dockerhub_updated.is_empty());
    assert_eq!(w.git.file_on_branch("VERSION").as_deref(), Some("v1.0.0\n"));
    assert!(w.tag("web", "latest").is_some());
}

const SIGN_CONFIG: &str = "registry: reg.test\nnamespace: acme\nproject: p\nbuild: { retries: 0 }\n\
sign: { key: cosign.key, provenance: true }\n\
images:\n  app: { context: app }\n  web: { context: web, depends_on: [app] }\n";

async fn release_signed(
    w: &World,
    signer: &crate::sign::Signer,
    tag: &str,
    tags: &[&str],
) -> Result<super::Report, ReleaseError> {
    let observed = w.observed(tag, tags).await;
    let plan = plan::plan(&w.config, &observed, &PlanOptions::default())?;
    let executor = Executor { signer: Some(signer as &dyn crate::sign::ArtifactSigner), ..w.executor(false) };
    executor.execute(&plan, &observed.target).await
}

#[tokio::test(flavor = "multi_thread")]
async fn every_image_is_signed_before_its_version_tag_and_a_rerun_signs_nothing() {
    use crate::sign::cosign;
    let key = p256::ecdsa::SigningKey::random(&mut rand_core::OsRng);
    let signer = crate::sign::Signer::from_key(key.clone());
    let w = World::with(SIGN_CONFIG, None, &[]);
    let report = release_signed(&w, &signer, "v1.0.0", &["v1.0.0"]).await.unwrap();
    assert_eq!(report.signatures.len(), 4, "a signature and an attestation per image: {:?}", report.signatures);
    let j = w.journal();
    let at = |what: &str| j.iter().position(|l| l.starts_with(what)).unwrap_or_else(|| panic!("{what}: {j:#?}"));
    for image in ["app", "web"] {
        let digest = w.tag(image, "v1.0.0").unwrap().digest;
        let repo = World::repo(image);
        let sig = cosign::tag_for(&digest, "sig");
        assert!(at(&format!("artifact {repo}:{sig}")) < at(&format!("tag {repo}:v1.0.0")), "signed first: {j:#?}");
        let layers = w.registry.get_artifact(&repo, &sig).await.unwrap().unwrap();
        let sig = layers[0].annotations[cosign::SIGNATURE_ANNOTATION].as_str().unwrap();
        assert_eq!(cosign::verify_signature(key.verifying_key(), &digest, &layers[0].bytes, sig), Ok(()));
        let att = w.registry.get_artifact(&repo, &cosign::tag_for(&digest, "att")).await.unwrap().unwrap();
        let statement = cosign::verify_attestation(key.verifying_key(), &att[0].bytes).unwrap();
        assert_eq!(statement["predicate"]["buildDefinition"]["resolvedDependencies"][0]["digest"]["gitCommit"], "c0");
        assert_eq!(statement["predicate"]["buildDefinition"]["externalParameters"]["tag"], "v1.0.0");
    }
    let att = cosign::tag_for(&w.tag("web", "v1.0.0").unwrap().digest, "att");
    let web = w.registry.get_artifact(&World::repo("web"), &att).await.unwrap().unwrap();
    let statement = cosign::verify_attestation(key.verifying_key(), &web[0].bytes).unwrap();
    let parent = &statement["predicate"]["buildDefinition"]["resolvedDependencies"][1];
    assert_eq!(parent["uri"], "oci://reg.test/acme/p-app", "the parent's image: {statement}");

    w.registry.forget_listings();
    let before = w.journal().len();
    let report = release_signed(&w, &signer, "v1.0.0", &["v1.0.0"]).await.unwrap();
    assert!(report.signatures.is_empty());
    assert_eq!(w.journal().len(), before, "a rerun writes nothing: {:#?}", &w.journal()[before..]);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_signature_that_cannot_be_pushed_publishes_nothing() {
    let signer = crate::sign::Signer::from_key(p256::ecdsa::SigningKey::random(&mut rand_core::OsRng));
    let w = World::with(SIGN_CONFIG, Some("v0.9.0\n"), &[]);
    w.registry.fail_writes(&World::repo("web"), "sha256-web-1.0.0.sig", 99);
    let err = release_signed(&w, &signer, "v1.0.0", &["v0.9.0", "v1.0.0"]).await.unwrap_err();
    assert!(matches!(err, ReleaseError::Registry(_)), "{err}");
    for image in ["app", "web"] {
        assert!(w.tag(image, "v1.0.0").is_none() && w.tag(image, "latest").is_none(), "{image}: {:#?}", w.journal());
    }
    assert_eq!(w.git.file_on_branch("VERSION").as_deref(), Some("v0.9.0\n"), "VERSION untouched");
}

#[tokio::test(flavor = "multi_thread")]
async fn turning_signing_on_signs_the_digests_of_an_earlier_release() {
    let w = World::new(None);
    w.release("v1.0.0", &["v1.0.0"]).await.unwrap();
    let signed = World { config: config::parse(SIGN_CONFIG, std::path::Path::new("release.yaml")).unwrap(), ..w };
    signed.registry.forget_listings();
    let signer = crate::sign::Signer::from_key(p256::ecdsa::SigningKey::random(&mut rand_core::OsRng));
    let report = release_signed(&signed, &signer, "v1.0.0", &["v1.0.0"]).await.unwrap();
    let artifacts = ["p-app:sha256-app-1.0.0.sig", "p-app:sha256-app-1.0.0.att", "p-web:sha256-web-1.0.0.sig"];
    let mut want: Vec<String> = artifacts.iter().map(|s| format!("reg.test/acme/{s}")).collect();
    want.push("reg.test/acme/p-web:sha256-web-1.0.0.att".into());
    assert_eq!(report.signatures, want);
    assert!(report.images.is_empty(), "nothing else was written");
}

/// Docker Hub logins answered `hub-1`, `hub-2`, ...
struct HubLogins(std::sync::atomic::AtomicUsize);

impl wiremock::Respond for HubLogins {
    fn respond(&self, _: &wiremock::Request) -> wiremock::ResponseTemplate {
        let n = self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
        wiremock::ResponseTemplate::new(200).set_body_json(serde_json::json!({"token": format!("hub-{n}")}))
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_expired_docker_hub_session_logs_in_again_once() {
    use wiremock::matchers::{header, method, path};
    use wiremock::{Mock, ResponseTemplate};
    let server = wiremock::MockServer::start().await;
    Mock::given(path("/v2/users/login")).respond_with(HubLogins(0.into())).mount(&server).await;
    let repo = "/v2/repositories/acme/app/";
    Mock::given(method("GET"))
        .and(path(repo))
        .and(header("authorization", "Bearer hub-2"))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({"description": "same"})))
        .mount(&server)
        .await;
    Mock::given(method("GET")).and(path(repo)).respond_with(ResponseTemplate::new(401)).mount(&server).await;
    let hub = hub_client(&server);
    let synced = hub.sync("acme/app", Some("same"), None).await.unwrap();
    assert_eq!(synced, crate::forge::dockerhub::PageSync::Unchanged);
    let logins = server.received_requests().await.unwrap().iter().filter(|r| r.url.path() == "/v2/users/login").count();
    assert_eq!(logins, 2, "hub-1 was refused, hub-2 taken");
}
