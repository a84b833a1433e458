//! `notify:` on the real services: `relctl release` tells a local webhook
//! receiver each release once (with the registry's digests), a failure with
//! its error and hint, retries a receiver that fails, and a receiver that
//! never answers holds the release no longer than the retry bound. URLs never
//! show in relctl's output.

use std::time::Duration;

use crate::common::receiver::{Receiver, Reply, notify_yaml};
use crate::common::*;

/// Appends `block` to the fixture's release.yaml and pushes it to main.
fn configure(f: &Fixture, block: &str) {
    let cfg = std::fs::read_to_string(f.work.join("release.yaml")).unwrap();
    f.write("release.yaml", &format!("{cfg}{block}"));
    f.commit("notify");
    git(&f.work, &["push", "-q", "origin", "main"]);
}

fn assert_no_secret(run: &Run, receivers: &[&Receiver]) {
    let (out, err) = (run.stdout(), run.stderr());
    for r in receivers {
        assert!(!out.contains(&r.secret) && !err.contains(&r.secret), "the URL showed:\n{out}\n{err}");
    }
}

#[test]
fn a_release_is_told_once_with_its_digests_in_both_formats_and_a_rerun_tells_nothing() {
    let f = Fixture::single("notify-published");
    let (generic, slack) = (Receiver::start(&[]), Receiver::start(&[]));
    configure(
        &f,
        &notify_yaml(&[
            (&generic.url, "generic", "published, failed, drift"),
            ("env:RELCTL_TEST_SLACK_HOOK", "slack", "published"),
        ]),
    );
    // The variable unset: refused before anything is done, the URL not shown.
    let run = f.relctl(&["release", "v1.0.0"]).expect(2);
    assert!(
        run.stderr().contains("notify[1].url is env:RELCTL_TEST_SLACK_HOOK, but RELCTL_TEST_SLACK_HOOK is not set"),
        "{}",
        run.stderr()
    );
    let commit = f.tag("v1.0.0");
    let env = [("RELCTL_TEST_SLACK_HOOK", slack.url.as_str())];
    let run = f.relctl_env(&["release", "v1.0.0"], &env).expect(0);
    assert_no_secret(&run, &[&generic, &slack]);

    let told = generic.bodies();
    assert_eq!(told.len(), 1, "{told:#?}");
    let e = &told[0];
    assert_eq!((&e["event"], &e["tag"], &e["version"]), (&"published".into(), &"v1.0.0".into(), &"1.0.0".into()));
    assert_eq!(e["commit"], commit.as_str());
    assert_eq!(e["project"], format!("{}/single", f.namespace));
    let digest = f.digest("app", "v1.0.0").unwrap();
    assert_eq!(e["images"].as_array().unwrap().len(), 1);
    assert_eq!(e["images"][0]["image"], "app");
    assert_eq!(e["images"][0]["digest"], digest.as_str());
    assert_eq!(e["images"][0]["repository"], f.repository("app"));
    assert_eq!(e["images"][0]["tags"], serde_json::json!(["v1.0.0", "latest"]));
    assert_eq!(e["images"][0]["built"], true);
    assert_eq!(e["version_commit"], f.remote_main().as_str());
    assert!(e["error"].is_null());

    let told = slack.bodies();
    assert_eq!(told.len(), 1, "{told:#?}");
    let text = told[0]["text"].as_str().unwrap();
    let short = &digest["sha256:".len().."sha256:".len() + 12];
    assert!(text.contains("v1.0.0* published") && text.contains(short), "{text}");

    let run = f.relctl_env(&["release", "v1.0.0"], &env).expect(0);
    assert_no_secret(&run, &[&generic, &slack]);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!((generic.bodies().len(), slack.bodies().len()), (1, 1), "a rerun that does nothing tells nothing");
}

#[test]
fn a_failed_release_is_told_with_its_error_and_hint() {
    let f = Fixture::single("notify-failed");
    let r = Receiver::start(&[]);
    configure(&f, &notify_yaml(&[(&r.url, "generic", "failed")]));
    let dockerfile = std::fs::read_to_string(f.work.join("Dockerfile")).unwrap();
    f.write("Dockerfile", &format!("{dockerfile}RUN [\"/bin/busybox\", \"false\"]\n"));
    f.commit("a build that fails");
    let commit = f.tag("v1.0.0");
    let run = f.relctl(&["release", "v1.0.0"]).expect(1);
    assert_no_secret(&run, &[&r]);
    let told = r.bodies();
    assert_eq!(told.len(), 1, "{told:#?}");
    let e = &told[0];
    assert_eq!((&e["event"], &e["tag"], &e["commit"]), (&"failed".into(), &"v1.0.0".into(), &commit.as_str().into()));
    let error = e["error"].as_str().unwrap();
    assert!(error.contains("app"), "{error}");
    assert!(
        run.stderr().contains(error.split(':').next().unwrap()),
        "the error told is relctl's own:\n{error}\n{}",
        run.stderr()
    );
    assert!(!e["hint"].as_str().unwrap().is_empty(), "{e}");
    assert_eq!(e["images"], serde_json::json!([]));
}

#[test]
fn a_receiver_failing_twice_gets_the_release_once_and_one_that_never_answers_costs_at_most_the_bound() {
    let f = Fixture::single("notify-retry");
    let flaky = Receiver::start(&[Reply::Status(500), Reply::Status(500)]);
    let dead = Receiver::start(&[Reply::Never; 10]);
    configure(&f, &notify_yaml(&[(&flaky.url, "generic", "published"), (&dead.url, "slack", "published")]));
    f.tag("v1.0.0");
    let run = f.relctl(&["release", "v1.0.0"]).expect(0);
    assert_no_secret(&run, &[&flaky, &dead]);
    assert_eq!(f.tags("app"), ["latest", "v1.0.0"], "released whatever the receivers do");

    let told = flaky.bodies();
    assert_eq!(told.len(), 3, "two 500s, then a 200: {told:#?}");
    assert!(told.iter().all(|b| *b == told[0]) && told[0]["event"] == "published", "{told:#?}");
    let err = run.stderr();
    assert!(
        err.contains("notified published v1.0.0") && err.contains("notifier=0") && err.contains("attempt=3"),
        "{err}"
    );

    // The dead receiver: three attempts of 5 s, 1 s and 2 s apart, then relctl gives up and exits.
    assert!(dead.bodies().len() <= 3, "{:?}", dead.bodies());
    assert!(err.contains("published v1.0.0 not notified after 3 attempt(s): no answer within 5s"), "{err}");
    assert!(err.contains("notifier=1") && err.contains("format=\"slack\""), "{err}");
    assert!(run.elapsed < Duration::from_secs(90), "the release took {:?}", run.elapsed);
    assert!(run.elapsed >= Duration::from_secs(15), "relctl waited for the deliveries: {:?}", run.elapsed);
}
