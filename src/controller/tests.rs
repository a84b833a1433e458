//! One reconcile over the in-memory fakes (the fast tier): a repository
//! history with failing tags among good ones, and the backoff across runs.

use std::collections::BTreeSet;
use std::sync::Arc;

use secrecy::SecretString;

use super::{Backoff, Outcome, TagResult, reconcile_once};
use crate::config::{self, NotifyFormat};
use crate::notify::fake::FakeNotifier;
use crate::notify::{Kind, Notifications, Target};
use crate::progress::NoProgress;
use crate::release::Executor;
use crate::release::fakes::{FakeEngine, FakeForge, FakeGit, FakeRegistry, Journal};

const CONFIG: &str = "registry: reg.test\nnamespace: acme\nproject: p\nbuild: { retries: 0 }\n\
images:\n  app: { context: app }\n  web: { context: web, depends_on: [app] }\n";

fn results(o: &Outcome) -> Vec<(&str, &str)> {
    o.tags
        .iter()
        .map(|t| {
            let r = match t.result {
                TagResult::Converged => "converged",
                TagResult::Released { .. } => "released",
                TagResult::Failed { .. } => "failed",
                TagResult::BackingOff { .. } => "backing off",
            };
            (t.tag.as_str(), r)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn failing_tags_are_recorded_the_rest_converge_and_they_back_off() {
    failing_tags_with(CONFIG).await;
}

/// Without staging, version tags are pushed by the engine and do not show in
/// the run's listings: the second pass must list again, not rebuild.
#[tokio::test(flavor = "multi_thread")]
async fn a_second_pass_without_staging_rebuilds_nothing_released_in_the_first() {
    let journal = failing_tags_with(&CONFIG.replace("retries: 0 }", "retries: 0, stage: false }")).await;
    let built: Vec<String> =
        journal.lock().unwrap().iter().filter(|l| *l == "build app" || *l == "build web").cloned().collect();
    assert_eq!(built.len(), 4, "v1.0.0 and v1.2.0, app and web, once each: {built:?}");
}

async fn failing_tags_with(text: &str) -> Journal {
    let journal = Journal::default();
    let config = config::parse(text, std::path::Path::new("release.yaml")).unwrap();
    let git = FakeGit::new(&journal, &[("app/Dockerfile", "FROM scratch\n"), ("web/Dockerfile", "FROM scratch\n")]);
    for tag in ["v1.0.0", "v1.1.0", "v1.2.0", "v1.3.0"] {
        git.tag(tag);
    }
    let registry = Arc::new(FakeRegistry::new(&journal));
    let mut engine = FakeEngine::new(&journal, &registry);
    engine.failing = vec!["v1.1.0".into(), "v1.3.0".into()];
    let executor = Executor {
        config: &config,
        git: &git,
        builder: &engine,
        registry: &*registry,
        progress: &NoProgress,
        github: None::<&FakeForge>,
        dockerhub: None,
        signer: None,
    };
    let mut backoff = Backoff::default();
    let none = BTreeSet::new();
    let hook = "https://hooks.test/T/B/x";
    let fake = FakeNotifier::new([]);
    let target = Target::new(
        0,
        SecretString::from(hook),
        NotifyFormat::Generic,
        vec![Kind::Published, Kind::Failed, Kind::Drift],
    );
    let notify = Notifications::new("acme/p", vec![target], fake.clone());
    // What was told since the `since`-th POST: (event, tag), sorted (deliveries run side by side).
    let told = async |since: usize| -> Vec<(String, String)> {
        notify.flush().await;
        let bodies = fake.bodies(hook);
        let mut told: Vec<(String, String)> = bodies[since..]
            .iter()
            .map(|b| (b["event"].as_str().unwrap().to_string(), b["tag"].as_str().unwrap().to_string()))
            .collect();
        told.sort();
        told
    };
    let pair = |e: &str, t: &str| (e.to_string(), t.to_string());

    let first = reconcile_once(&executor, &none, &mut backoff, None, &notify).await.unwrap();
    assert_eq!(
        results(&first),
        [("v1.0.0", "released"), ("v1.1.0", "failed"), ("v1.2.0", "released"), ("v1.3.0", "failed")]
    );
    let latest = registry.get("acme/p-web", "latest").unwrap();
    assert_eq!(latest.version, "1.2.0", "latest on the highest release that is published");
    assert_eq!(git.file_on_branch("VERSION").as_deref(), Some("v1.2.0\n"));
    assert!(registry.get("acme/p-app", "v1.3.0").is_none(), "nothing of a failed release is published");
    let events = told(0).await;
    assert_eq!(
        events,
        [pair("failed", "v1.1.0"), pair("failed", "v1.3.0"), pair("published", "v1.0.0"), pair("published", "v1.2.0")],
        "each release and each failure once"
    );
    let bodies = fake.bodies(hook);
    let v120 = bodies.iter().find(|b| b["tag"] == "v1.2.0").unwrap();
    assert_eq!(v120["images"].as_array().unwrap().len(), 2);
    let web = v120["images"].as_array().unwrap().iter().find(|i| i["image"] == "web").unwrap();
    assert_eq!(web["tags"], serde_json::json!(["v1.2.0", "latest"]), "latest moved in a later pass joins the event");
    assert!(web["digest"].as_str().unwrap().starts_with("sha256:"), "{web}");
    assert!(v120["version_commit"].is_string(), "{v120}");
    let v110 = bodies.iter().find(|b| b["tag"] == "v1.1.0").unwrap();
    assert!(!v110["error"].as_str().unwrap().is_empty() && !v110["hint"].as_str().unwrap().is_empty(), "{v110}");

    let builds = |j: &Journal| j.lock().unwrap().iter().filter(|l| l.starts_with("build")).count();
    let before = builds(&journal);
    let second = reconcile_once(&executor, &none, &mut backoff, None, &notify).await.unwrap();
    assert_eq!(
        results(&second),
        [("v1.0.0", "converged"), ("v1.1.0", "backing off"), ("v1.2.0", "converged"), ("v1.3.0", "backing off")]
    );
    assert_eq!(builds(&journal), before, "no build while the failed tags back off");

    let asked = BTreeSet::from(["v1.3.0".to_string()]);
    let third = reconcile_once(&executor, &asked, &mut backoff, None, &notify).await.unwrap();
    assert_eq!(results(&third)[3], ("v1.3.0", "failed"), "a webhook naming a tag tries it at once");
    assert_eq!(results(&third)[1], ("v1.1.0", "backing off"));
    assert_eq!(told(4).await, [], "a rerun that does nothing and the same failure again tell nothing");

    // latest moved back by hand: put back, and told as drift, once.
    for repo in ["acme/p-app", "acme/p-web"] {
        registry.put(repo, "latest", registry.get(repo, "v1.0.0").unwrap());
    }
    reconcile_once(&executor, &none, &mut backoff, None, &notify).await.unwrap();
    let events = told(4).await;
    assert_eq!(events, [pair("drift", "v1.2.0")]);
    let drift = fake.bodies(hook)[4].clone();
    let repaired: Vec<&str> = drift["repaired"].as_array().unwrap().iter().map(|r| r.as_str().unwrap()).collect();
    assert_eq!(repaired.len(), 2, "{drift}");
    assert!(
        repaired.iter().all(|r| r.contains(":latest pointed at sha256:") && r.ends_with("now v1.2.0")),
        "{repaired:?}"
    );
    reconcile_once(&executor, &none, &mut backoff, None, &notify).await.unwrap();
    assert_eq!(told(5).await, []);
    journal
}
