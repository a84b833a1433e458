//! Notifications over the in-memory notifier: payload shapes, what is told
//! once, the retry bound on a paused clock, and URLs kept out of sight.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use secrecy::SecretString;

use super::fake::{Answer, FakeNotifier};
use super::*;
use crate::config::NotifyFormat;

const URL: &str = "https://hooks.example.test/services/T0/B0/s3cretpath";

fn published(tag: &str) -> Event {
    Event {
        kind: Kind::Published,
        tag: tag.into(),
        version: Some(tag.trim_start_matches('v').into()),
        prerelease: false,
        commit: Some("0123456789abcdef0123456789abcdef01234567".into()),
        images: vec![EventImage {
            image: "app".into(),
            repository: "reg.test/acme/p-app".into(),
            digest: "sha256:aaaabbbbccccddddeeee".into(),
            tags: vec![tag.into(), "latest".into()],
            built: true,
        }],
        version_commit: Some("fedcba".into()),
        error: None,
        hint: None,
        repaired: Vec::new(),
    }
}

fn failed(tag: &str, error: &str) -> Event {
    let v = crate::version::ReleaseVersion::parse(tag, "v").ok();
    Event::failed(tag, v.as_ref(), Some("c0ffee"), error.into(), "fix the Dockerfile".into())
}

fn notifications(fake: &Arc<FakeNotifier>, on: &[Kind], format: NotifyFormat) -> Notifications {
    let target = Target::new(0, SecretString::from(URL), format, on.to_vec());
    Notifications::new("acme/p", vec![target], fake.clone())
}

const ALL: [Kind; 3] = [Kind::Published, Kind::Failed, Kind::Drift];

fn told(fake: &FakeNotifier) -> Vec<(String, String)> {
    fake.bodies(URL)
        .iter()
        .map(|b| (b["event"].as_str().unwrap_or("?").to_string(), b["tag"].as_str().unwrap_or("?").to_string()))
        .collect()
}

#[test]
fn the_generic_document_has_every_key_for_every_event() {
    let p = payload::generic("acme/p", &published("v1.2.0"));
    assert_eq!(p["event"], "published");
    assert_eq!(p["project"], "acme/p");
    assert_eq!((&p["tag"], &p["version"], &p["prerelease"]), (&"v1.2.0".into(), &"1.2.0".into(), &false.into()));
    assert_eq!(p["images"][0]["digest"], "sha256:aaaabbbbccccddddeeee");
    assert_eq!(p["images"][0]["tags"], serde_json::json!(["v1.2.0", "latest"]));
    assert_eq!(p["images"][0]["built"], true);
    assert_eq!(p["version_commit"], "fedcba");
    assert!(p["error"].is_null() && p["hint"].is_null());

    let f = payload::generic("acme/p", &failed("v1.3.0-rc.1", "build of app failed: exit 1"));
    assert_eq!((&f["event"], &f["prerelease"], &f["commit"]), (&"failed".into(), &true.into(), &"c0ffee".into()));
    assert_eq!(f["error"], "build of app failed: exit 1");
    assert_eq!(f["hint"], "fix the Dockerfile");
    assert_eq!(f["images"], serde_json::json!([]));

    let d = payload::generic("acme/p", &published("v1.2.0").into_restored());
    assert_eq!(d["event"], "drift");
    assert_eq!(d["repaired"], serde_json::json!(["app restored as v1.2.0"]));
    let keys = |v: &serde_json::Value| v.as_object().unwrap().keys().cloned().collect::<Vec<_>>();
    assert_eq!(keys(&p), keys(&f));
    assert_eq!(keys(&p), keys(&d));
}

#[test]
fn the_slack_message_is_text_with_its_markup_escaped() {
    let body = payload::body(NotifyFormat::Slack, "acme/p", &published("v1.2.0"));
    let text = body["text"].as_str().unwrap();
    assert_eq!(body.as_object().unwrap().len(), 1, "only text: {body}");
    assert!(text.starts_with("relctl: *acme/p v1.2.0* published (`0123456789ab`)"), "{text}");
    assert!(text.contains("\n• app `sha256:aaaabbbbcccc` built (v1.2.0, latest)"), "{text}");

    let body = payload::body(NotifyFormat::Slack, "acme/p", &failed("v1.3.0", "RUN <script>alert(1)</script> & died"));
    let text = body["text"].as_str().unwrap();
    assert!(text.contains("RUN &lt;script&gt;alert(1)&lt;/script&gt; &amp; died"), "{text}");
    assert!(!text.contains("<script>"), "{text}");
    assert!(text.ends_with("\nhint: fix the Dockerfile"), "{text}");
}

#[tokio::test(start_paused = true)]
async fn published_once_per_tag_failed_once_per_error_and_only_what_a_target_asks_for() {
    let fake = FakeNotifier::new([]);
    let n = notifications(&fake, &ALL, NotifyFormat::Generic);
    n.emit(failed("v1.0.0", "boom"));
    n.emit(failed("v1.0.0", "boom"));
    n.flush().await;
    assert_eq!(told(&fake), [("failed".into(), "v1.0.0".into())], "the same failure is told once");
    n.emit(failed("v1.0.0", "other boom"));
    n.converged("v1.0.0");
    n.emit(failed("v1.0.0", "other boom"));
    n.emit(published("v1.0.0"));
    n.emit(published("v1.0.0"));
    n.emit(failed("v1.0.0", "boom"));
    n.flush().await;
    let events: Vec<String> = told(&fake).into_iter().map(|(e, _)| e).collect();
    assert_eq!(
        events,
        ["failed", "failed", "failed", "published", "drift", "failed"],
        "a new error, the same after the tag converged, published once then a restore, and a failure after it"
    );

    let fake = FakeNotifier::new([]);
    let only_failures = notifications(&fake, &[Kind::Failed], NotifyFormat::Generic);
    only_failures.emit(published("v2.0.0"));
    only_failures.emit(failed("v2.1.0", "x"));
    only_failures.flush().await;
    assert_eq!(told(&fake), [("failed".into(), "v2.1.0".into())]);
    assert_eq!(only_failures.counters().sent.load(Ordering::Relaxed), 1);

    // No targets: nothing, and no runtime needed to say so.
    Notifications::none().emit(published("v1.0.0"));
}

#[tokio::test(start_paused = true)]
async fn a_receiver_failing_twice_gets_the_event_once_after_1_s_and_2_s() {
    let fake = FakeNotifier::new([Answer::Fail(DeliveryError::Status(500)), Answer::Fail(DeliveryError::Connect)]);
    let n = notifications(&fake, &ALL, NotifyFormat::Generic);
    let start = tokio::time::Instant::now();
    n.emit(published("v1.0.0"));
    n.flush().await;
    assert_eq!(start.elapsed(), Duration::from_secs(3), "1 s, then 2 s between the attempts");
    assert_eq!(told(&fake).len(), 3);
    assert_eq!(n.counters().sent.load(Ordering::Relaxed), 1);
    assert_eq!(n.counters().failed.load(Ordering::Relaxed), 0);
}

#[tokio::test(start_paused = true)]
async fn a_receiver_that_never_answers_costs_at_most_the_bound() {
    let fake = FakeNotifier::new([Answer::Hang, Answer::Hang, Answer::Hang, Answer::Hang]);
    let n = notifications(&fake, &ALL, NotifyFormat::Slack);
    assert_eq!(Policy::default().bound(), Duration::from_secs(18), "3 attempts of 5 s, 1 s and 2 s apart");
    let start = tokio::time::Instant::now();
    n.emit(published("v1.0.0"));
    // emit does not wait: the release goes on at once.
    assert_eq!(start.elapsed(), Duration::ZERO);
    n.flush().await;
    assert_eq!(start.elapsed(), Duration::from_secs(18));
    assert_eq!(fake.bodies(URL).len(), 3, "3 attempts, no more");
    assert_eq!(n.counters().failed.load(Ordering::Relaxed), 1);
    assert_eq!(n.counters().sent.load(Ordering::Relaxed), 0);
}

#[tokio::test(start_paused = true)]
async fn a_client_error_is_not_retried() {
    let fake = FakeNotifier::new([Answer::Fail(DeliveryError::Status(404))]);
    let n = notifications(&fake, &ALL, NotifyFormat::Generic);
    let start = tokio::time::Instant::now();
    n.emit(failed("v1.0.0", "boom"));
    n.flush().await;
    assert_eq!((fake.bodies(URL).len(), start.elapsed()), (1, Duration::ZERO));
    assert_eq!(n.counters().failed.load(Ordering::Relaxed), 1);
    assert!(DeliveryError::Status(429).retryable() && DeliveryError::Status(503).retryable());
    assert!(!DeliveryError::Status(400).retryable() && !DeliveryError::Status(301).retryable());
}

#[test]
fn env_urls_are_read_when_notifications_start_and_never_shown() {
    let text = format!(
        "namespace: n\nproject: p\nimages: {{ a: {{ context: . }} }}\nnotify:\n  - {{ url: '{URL}', format: slack }}\n  - {{ url: 'env:HOOK_URL', format: generic, on: [failed] }}\n"
    );
    let config = crate::config::parse(&text, std::path::Path::new("release.yaml")).unwrap();
    assert!(!format!("{config:?}").contains("s3cretpath"), "Debug of the config shows no URL");
    let missing = targets(&config, |_| Ok(None)).unwrap_err();
    assert_eq!(missing.to_string(), "notify[1].url is env:HOOK_URL, but HOOK_URL is not set");
    assert_eq!(missing.exit_code(), 2);
    assert!(missing.hint().contains("set HOOK_URL"), "{}", missing.hint());
    let bad = targets(&config, |_| Ok(Some("ftp://s3cretpath.example/x".into()))).unwrap_err();
    assert!(bad.to_string().contains("not an http or https URL"), "{bad}");
    assert!(!bad.to_string().contains("s3cretpath"), "{bad}");
    let both = crate::secrets::SecretError::Both { name: "HOOK_URL".into() };
    let refused = targets(&config, |_| Err(crate::secrets::SecretError::Both { name: "HOOK_URL".into() })).unwrap_err();
    assert_eq!(refused.to_string(), format!("notify[1].url is env:HOOK_URL: {both}"));
    assert_eq!(refused.exit_code(), 2);
    let t = targets(&config, |name| Ok((name == "HOOK_URL").then(|| "http://127.0.0.1:9/s3cretpath".into()))).unwrap();
    assert_eq!(t.len(), 2);
    assert_eq!((t[1].index, t[1].format, t[1].on.as_slice()), (1, NotifyFormat::Generic, &[Kind::Failed][..]));
    assert_eq!(t[0].on, ALL, "every event by default");
    assert!(!format!("{t:?}").contains("s3cretpath"), "Debug of a target shows no URL");
}

#[test]
fn a_plan_is_published_when_it_pushes_drift_when_it_only_puts_back_and_nothing_when_empty() {
    use crate::plan::{MoveStep, Plan, PushSource, PushStep, SignStep, Step, VersionDecision, VersionStep};
    let plan = |steps: Vec<Step>| Plan {
        tag: "v1.2.0".into(),
        version: "1.2.0".into(),
        prerelease: false,
        commit: "c120".into(),
        images: Vec::new(),
        steps,
        version_file: VersionDecision { path: "VERSION".into(), current: None, next: None, reason: String::new() },
        notes: Vec::new(),
        signed: false,
    };
    let report = crate::release::Report::default();
    assert_eq!(Event::from_release(&plan(Vec::new()), &report), None, "a rerun with nothing to do");

    let moved = Step::MoveTag(MoveStep {
        image: "app".into(),
        repository: "reg.test/acme/p-app".into(),
        tag: "latest".into(),
        to: "v1.2.0".into(),
        from_digest: Some("sha256:0123456789abcdef".into()),
    });
    let version = Step::CommitVersion(VersionStep {
        path: "VERSION".into(),
        from: Some("v1.1.0".into()),
        to: "v1.2.0".into(),
        message: String::new(),
        also_update: Vec::new(),
    });
    let signed = Step::Sign(SignStep {
        image: "app".into(),
        repository: "reg.test/acme/p-app".into(),
        digest: Some("sha256:0123456789abcdef".into()),
        stage_tag: None,
        signature: true,
        attestation: false,
        platform: "linux/amd64".into(),
        entry: false,
    });
    let drift = Event::from_release(&plan(vec![signed.clone(), moved.clone(), version.clone()]), &report).unwrap();
    assert_eq!((drift.kind, drift.commit.as_deref()), (Kind::Drift, Some("c120")));
    assert_eq!(
        drift.repaired,
        [
            "app: signature of sha256:0123456789ab was missing; signed again",
            "app:latest pointed at sha256:0123456789ab; now v1.2.0",
            "VERSION named v1.1.0; now v1.2.0",
        ]
    );

    let push = Step::Push(PushStep {
        image: "app".into(),
        repository: "reg.test/acme/p-app".into(),
        tags: vec!["v1.2.0".into()],
        source: PushSource::Build,
    });
    let published = Event::from_release(&plan(vec![push, signed, moved, version]), &report).unwrap();
    assert_eq!(published.kind, Kind::Published);
    assert!(published.repaired.is_empty(), "moves that come with the release are part of it");
}
