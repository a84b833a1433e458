//! A GitHub API fixture (wiremock) shared by the tests of the API adapter and
//! of releases that commit VERSION through it.

use serde_json::json;
use wiremock::matchers::{body_partial_json, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

/// The Git Data API of acme/app for a branch that moves once: commits p1
/// (tree t1) and p2 (tree t2); a commit on p1 is c1, on p2 is c2; moving main
/// to c1 answers `first_update_status`, to c2 succeeds.
pub async fn git_data_api(server: &MockServer, first_update_status: u16) {
    for (sha, tree) in [("p1", "t1"), ("p2", "t2")] {
        Mock::given(method("GET"))
            .and(path(format!("/repos/acme/app/git/commits/{sha}")))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({"sha": sha, "tree": {"sha": tree}})))
            .mount(server)
            .await;
    }
    Mock::given(method("POST"))
        .and(path("/repos/acme/app/git/trees"))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({"sha": "newtree"})))
        .mount(server)
        .await;
    Mock::given(method("POST"))
        .and(path("/repos/acme/app/git/commits"))
        .and(body_partial_json(json!({"parents": ["p1"]})))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({"sha": "c1"})))
        .mount(server)
        .await;
    Mock::given(method("POST"))
        .and(path("/repos/acme/app/git/commits"))
        .and(body_partial_json(json!({"parents": ["p2"]})))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({"sha": "c2"})))
        .mount(server)
        .await;
    Mock::given(method("PATCH"))
        .and(path("/repos/acme/app/git/refs/heads/main"))
        .and(body_partial_json(json!({"sha": "c1", "force": false})))
        .respond_with(
            ResponseTemplate::new(first_update_status)
                .set_body_json(json!({"message": "Update is not a fast forward"})),
        )
        .mount(server)
        .await;
    Mock::given(method("PATCH"))
        .and(path("/repos/acme/app/git/refs/heads/main"))
        .and(body_partial_json(json!({"sha": "c2", "force": false})))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"object": {"sha": "c2"}})))
        .mount(server)
        .await;
}
