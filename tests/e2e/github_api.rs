//! The GitHub adapter against a local HTTP fixture (wiremock) that records
//! requests: the GitHub Release (create, update if it exists, pre-release
//! flag, body), the VERSION commit through the Git Data API with its expected
//! parent and its retry on conflict, and rate limits waited out within a bound.

use std::time::{Duration, Instant};

use relctl::forge::RefUpdate;
use relctl::forge::github::GitHub;
use relctl::forge::{ForgeError, ReleaseNotes, ReleasedImage, RepoId};
use relctl::git::FileChange;
use relctl::release::version::{BranchUpdate, GitHubBranch, VersionBranch};
use serde_json::{Value, json};

use crate::common::github;
use wiremock::matchers::{body_partial_json, header, method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

fn client(server: &MockServer) -> GitHub {
    let repo = RepoId { owner: "acme".into(), name: "app".into() };
    GitHub::new(&server.uri(), "ghs_test_token".to_string().into(), repo).unwrap().with_max_wait(Duration::from_secs(3))
}

fn notes(tag: &str, prerelease: bool) -> ReleaseNotes {
    ReleaseNotes {
        tag: tag.into(),
        prerelease,
        commit: "c0ffee".into(),
        images: vec![ReleasedImage {
            image: "server".into(),
            repository: "docker.io/acme/app-server".into(),
            tags: vec![tag.into()],
            digest: "sha256:aa".into(),
            built: true,
            signature: None,
            platforms: Vec::new(),
        }],
    }
}

fn body_of(request: &wiremock::Request) -> Value {
    serde_json::from_slice(&request.body).unwrap()
}

#[tokio::test]
async fn creates_the_release_with_body_and_prerelease_flag() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/repos/acme/app/releases/tags/v1.3.0-rc.1"))
        .and(header("authorization", "Bearer ghs_test_token"))
        .respond_with(ResponseTemplate::new(404).set_body_json(json!({"message": "Not Found"})))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/repos/acme/app/releases"))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({"id": 7, "html_url": "https://github.test/r/7"})))
        .expect(1)
        .mount(&server)
        .await;

    let link = client(&server).upsert_release(&notes("v1.3.0-rc.1", true)).await.unwrap();
    assert_eq!((link.id, link.created), (7, true));
    let requests = server.received_requests().await.unwrap();
    let post = requests.iter().find(|r| r.method.as_str() == "POST").unwrap();
    let body = body_of(post);
    assert_eq!(body["tag_name"], "v1.3.0-rc.1");
    assert_eq!(body["prerelease"], true);
    let text = body["body"].as_str().unwrap();
    assert!(text.contains("| server | `v1.3.0-rc.1` | `sha256:aa` |"), "{text}");
    assert!(text.contains("docker pull docker.io/acme/app-server:v1.3.0-rc.1"), "{text}");
}

#[tokio::test]
async fn updates_the_release_when_it_exists() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/repos/acme/app/releases/tags/v1.2.0"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"id": 42, "html_url": "https://github.test/r/42"})),
        )
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("PATCH"))
        .and(path("/repos/acme/app/releases/42"))
        .and(body_partial_json(json!({"prerelease": false, "name": "v1.2.0"})))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"id": 42, "html_url": "https://github.test/r/42"})),
        )
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST")).respond_with(ResponseTemplate::new(500)).expect(0).mount(&server).await;

    let link = client(&server).upsert_release(&notes("v1.2.0", false)).await.unwrap();
    assert_eq!((link.id, link.created), (42, false));
}

#[tokio::test]
async fn api_commit_names_its_parent_and_reports_a_moved_branch_as_a_conflict() {
    for status in [409, 422] {
        let server = MockServer::start().await;
        github::git_data_api(&server, status).await;
        let gh = client(&server);
        let files = [FileChange { path: "VERSION".into(), content: b"v1.2.0\n".to_vec() }];
        let first = gh.commit_onto("main", "p1", &files, "chore(release): v1.2.0", ("relctl", "r@x")).await.unwrap();
        assert_eq!(first, RefUpdate::Conflict { message: "Update is not a fast forward".into() }, "status {status}");
        let second = gh.commit_onto("main", "p2", &files, "chore(release): v1.2.0", ("relctl", "r@x")).await.unwrap();
        assert_eq!(second, RefUpdate::Moved { commit: "c2".into() });

        let requests = server.received_requests().await.unwrap();
        let tree = requests.iter().find(|r| r.url.path() == "/repos/acme/app/git/trees").unwrap();
        assert_eq!(
            body_of(tree),
            json!({"base_tree": "t1", "tree": [{"path": "VERSION", "mode": "100644", "type": "blob", "content": "v1.2.0\n"}]})
        );
    }
}

#[tokio::test]
async fn the_version_branch_over_the_api_reads_tip_and_file() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/repos/acme/app/git/ref/heads/main"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"object": {"sha": "p1"}})))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/repos/acme/app/contents/VERSION"))
        .and(query_param("ref", "p1"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"content": "djEuMS4wCg==\n", "encoding": "base64"})),
        )
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/repos/acme/app/contents/MISSING"))
        .respond_with(ResponseTemplate::new(404).set_body_json(json!({"message": "Not Found"})))
        .mount(&server)
        .await;
    github::git_data_api(&server, 422).await;
    let gh = client(&server);
    let branch = GitHubBranch { github: &gh, branch: "main" };
    assert_eq!(branch.tip().await.unwrap(), "p1");
    assert_eq!(branch.file_at("p1", "VERSION").await.unwrap().as_deref(), Some(&b"v1.1.0\n"[..]));
    assert_eq!(branch.file_at("p1", "MISSING").await.unwrap(), None);
    let files = [FileChange { path: "VERSION".into(), content: b"v1.2.0\n".to_vec() }];
    let update = branch.commit_onto("p1", &files, "m", ("a", "b")).await.unwrap();
    assert!(matches!(update, BranchUpdate::Rejected { .. }), "{update:?}");
}

#[tokio::test]
async fn a_protected_branch_is_an_error_not_a_retry() {
    let server = MockServer::start().await;
    github::git_data_api(&server, 200).await;
    server.reset().await;
    Mock::given(method("GET"))
        .and(path("/repos/acme/app/git/commits/p1"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"sha": "p1", "tree": {"sha": "t1"}})))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/repos/acme/app/git/trees"))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({"sha": "t"})))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/repos/acme/app/git/commits"))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({"sha": "c1"})))
        .mount(&server)
        .await;
    Mock::given(method("PATCH"))
        .respond_with(
            ResponseTemplate::new(422)
                .set_body_json(json!({"message": "Protected branch update failed for refs/heads/main."})),
        )
        .mount(&server)
        .await;
    let files = [FileChange { path: "VERSION".into(), content: b"v1.2.0\n".to_vec() }];
    let err = client(&server).commit_onto("main", "p1", &files, "m", ("a", "b")).await.unwrap_err();
    assert!(matches!(err, ForgeError::Protected { .. }), "{err}");
    assert!(err.to_string().contains("protected branch main"), "{err}");
    assert!(err.hint().contains("bypass"), "{}", err.hint());
}

#[tokio::test]
async fn rate_limits_are_waited_out_and_bounded() {
    // 429 with Retry-After: 1, then 403 with the limit exhausted and a reset 1 s ahead, then 200.
    let server = MockServer::start().await;
    let reset = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() + 1;
    Mock::given(method("GET"))
        .and(path("/repos/acme/app/releases/tags/v1.2.0"))
        .respond_with(ResponseTemplate::new(429).insert_header("retry-after", "1"))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/repos/acme/app/releases/tags/v1.2.0"))
        .respond_with(
            ResponseTemplate::new(403)
                .insert_header("x-ratelimit-remaining", "0")
                .insert_header("x-ratelimit-reset", reset.to_string().as_str())
                .set_body_json(json!({"message": "API rate limit exceeded"})),
        )
        .up_to_n_times(1)
        .with_priority(2)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/repos/acme/app/releases/tags/v1.2.0"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"id": 1, "html_url": "u"})))
        .with_priority(3)
        .mount(&server)
        .await;
    Mock::given(method("PATCH"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"id": 1, "html_url": "u"})))
        .mount(&server)
        .await;
    let started = Instant::now();
    client(&server).upsert_release(&notes("v1.2.0", false)).await.unwrap();
    assert!(started.elapsed() >= Duration::from_secs(2), "waited out both limits: {:?}", started.elapsed());
    let gets = server.received_requests().await.unwrap().iter().filter(|r| r.method.as_str() == "GET").count();
    assert_eq!(gets, 3);

    // A reset an hour away is longer than relctl waits: it fails at once, naming the wait.
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(
            ResponseTemplate::new(403)
                .insert_header("x-ratelimit-remaining", "0")
                .insert_header("x-ratelimit-reset", (reset + 3600).to_string().as_str()),
        )
        .mount(&server)
        .await;
    let started = Instant::now();
    let err = client(&server).upsert_release(&notes("v1.2.0", false)).await.unwrap_err();
    assert!(matches!(err, ForgeError::RateLimited { wait_secs, .. } if wait_secs > 3500), "{err}");
    assert!(started.elapsed() < Duration::from_secs(2));

    // A token without permission is not a rate limit.
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(
            ResponseTemplate::new(403).set_body_json(json!({"message": "Resource not accessible by integration"})),
        )
        .mount(&server)
        .await;
    let err = client(&server).upsert_release(&notes("v1.2.0", false)).await.unwrap_err();
    assert!(matches!(err, ForgeError::Unauthorized { status: 403, .. }), "{err}");
}
