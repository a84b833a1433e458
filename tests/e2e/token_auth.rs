//! Docker Hub's auth flow against a real Distribution registry with `auth:
//! token` and the tests' own token server: relctl asks for the narrowest
//! scope each operation needs, renews a token the registry refuses, and a user
//! who may not push is refused by name. No token reaches the output.

use crate::common::token::{TokenRequest, token_digest, token_server};
use crate::common::*;

/// [`Fixture::single`] releasing to the token registry, tagged `v1.0.0`, its token server running.
fn on_token_registry(tag: &str) -> Fixture {
    token_server();
    Fixture::single_on(tag, &env("RELCTL_TEST_TOKEN_REGISTRY"))
}

fn as_user(f: &Fixture, user: &str, args: &[&str]) -> Run {
    let password = env("RELCTL_TEST_AUTH_PASSWORD");
    f.relctl_env(args, &[("RELCTL_REGISTRY_USERNAME", user), ("RELCTL_REGISTRY_PASSWORD", &password)])
}

/// relctl's own token requests (the engine asks for its pushes and pulls too).
fn relctl_requests(f: &Fixture) -> Vec<TokenRequest> {
    let all = token_server().requests_for(&f.repo("app"));
    all.into_iter().filter(|r| r.user_agent.starts_with("relctl/")).collect()
}

fn scopes(requests: &[TokenRequest]) -> Vec<String> {
    let mut s: Vec<String> = requests.iter().flat_map(|r| r.scopes.clone()).collect();
    s.sort();
    s.dedup();
    s
}

fn no_token_in(f: &Fixture, output: &str) {
    for r in token_server().requests_for(&f.repo("app")) {
        assert!(!output.contains(&r.token), "a token reached the output");
    }
    assert!(!output.contains(&env("RELCTL_TEST_AUTH_PASSWORD")), "the password reached the output");
}

#[test]
fn release_rerun_reconcile_and_verify_through_a_token_server_with_narrow_scopes() {
    let f = on_token_registry("token");
    let repo = f.repo("app");
    let (pull, push) = (format!("repository:{repo}:pull"), format!("repository:{repo}:pull,push"));
    let mut output = String::new();
    let mut run = |args: &[&str], code: i32| {
        let before = relctl_requests(&f).len();
        let r = as_user(&f, "relctl", args).expect(code);
        output.push_str(&r.stdout());
        output.push_str(&r.stderr());
        relctl_requests(&f).split_off(before)
    };

    let release = run(&["release", "v1.0.0", "-v"], 0);
    assert_eq!(scopes(&release), [pull.clone(), push.clone()], "reads pull, writes pull,push");
    assert!(token_digest(&f, "app", "v1.0.0").is_some());
    // Read-only commands ask for pull only.
    for args in [&["release", "v1.0.0"][..], &["verify", "v1.0.0"], &["reconcile", "--once"], &["status"]] {
        let asked = run(args, 0);
        assert_eq!(scopes(&asked), std::slice::from_ref(&pull), "{args:?} asked for {:?}", scopes(&asked));
    }
    no_token_in(&f, &output);
}

#[test]
fn a_token_the_registry_refuses_is_renewed_once() {
    let f = on_token_registry("token-stale");
    as_user(&f, "relctl", &["release", "v1.0.0"]).expect(0);
    // `stale`'s first token for each scope is already expired for the registry.
    let run = as_user(&f, "stale", &["verify", "v1.0.0"]).expect(0);
    let stale: Vec<TokenRequest> =
        relctl_requests(&f).into_iter().filter(|r| r.account.as_deref() == Some("stale")).collect();
    assert_eq!(stale.len(), 2, "one renewal: {stale:?}");
    no_token_in(&f, &format!("{}{}", run.stdout(), run.stderr()));
}

#[test]
fn a_user_who_may_not_push_is_refused_by_name_and_nothing_is_published() {
    let f = on_token_registry("token-reader");
    let tip = f.remote_main();
    let run = as_user(&f, "reader", &["release", "v1.0.0"]).expect(1);
    let all = format!("{}{}", run.stdout(), run.stderr());
    assert!(all.contains(&f.registry) && all.contains(&f.repo("app")), "names registry and repository: {all}");
    assert!(all.contains("refused"), "{all}");
    assert_eq!(f.remote_main(), tip, "VERSION was not committed");
    assert_eq!(token_digest(&f, "app", "v1.0.0"), None, "no version tag");
    // The reader was granted pull and nothing more.
    let granted: Vec<String> = relctl_requests(&f).into_iter().flat_map(|r| r.granted).collect();
    assert!(granted.iter().all(|g| g.ends_with(":pull") || g.ends_with(':')), "{granted:?}");
    no_token_in(&f, &all);
}
