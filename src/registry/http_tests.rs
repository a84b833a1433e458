//! The registry client against a local HTTP fixture (wiremock) that speaks
//! like Docker Hub: Bearer token challenges, throttling and pagination.

use std::time::{Duration, Instant};

use super::{Credentials, Registry, RegistryClient, RegistryError};
use wiremock::matchers::{header, method, path, query_param};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

fn host(server: &MockServer) -> String {
    server.uri().trim_start_matches("http://").to_string()
}

#[tokio::test]
async fn bearer_challenge_fetches_a_scoped_token_with_the_credentials() {
    let server = MockServer::start().await;
    let realm = format!("{}/token", server.uri());
    Mock::given(method("GET"))
        .and(path("/v2/acme/app/tags/list"))
        .and(header("authorization", "Bearer tok-123"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(serde_json::json!({"name": "acme/app", "tags": ["v1.0.0", "latest"]})),
        )
        .expect(2)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v2/acme/app/tags/list"))
        .respond_with(ResponseTemplate::new(401).insert_header(
            "WWW-Authenticate",
            format!(r#"Bearer realm="{realm}",service="registry.test",scope="repository:acme/app:pull""#),
        ))
        .expect(1)
        .mount(&server)
        .await;
    // "user:s3cret" in basic auth
    Mock::given(method("GET"))
        .and(path("/token"))
        .and(query_param("service", "registry.test"))
        .and(query_param("scope", "repository:acme/app:pull"))
        .and(header("authorization", "Basic dXNlcjpzM2NyZXQ="))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({"token": "tok-123"})))
        .expect(1)
        .mount(&server)
        .await;

    let creds = Credentials { username: "user".into(), password: "s3cret".to_string().into() };
    let client = RegistryClient::new(&host(&server), Some(creds));
    let mut tags = client.list_tags("acme/app").await.unwrap();
    tags.sort();
    assert_eq!(tags, ["latest", "v1.0.0"]);
    // The token is reused: no second challenge, no second token request.
    client.list_tags("acme/app").await.unwrap();
    assert_eq!(client.request_count(), 4, "challenge, token, retry, second listing");
}

#[tokio::test]
async fn refused_token_is_an_auth_error_naming_registry_and_user() {
    let server = MockServer::start().await;
    let realm = format!("{}/token", server.uri());
    Mock::given(method("GET"))
        .and(path("/v2/acme/app/tags/list"))
        .respond_with(
            ResponseTemplate::new(401)
                .insert_header("WWW-Authenticate", format!(r#"Bearer realm="{realm}",service="x""#)),
        )
        .mount(&server)
        .await;
    Mock::given(method("GET")).and(path("/token")).respond_with(ResponseTemplate::new(401)).mount(&server).await;
    let creds = Credentials { username: "user".into(), password: "nope-secret".to_string().into() };
    let err = RegistryClient::new(&host(&server), Some(creds)).list_tags("acme/app").await.unwrap_err();
    assert!(matches!(err, RegistryError::Unauthorized { .. }));
    let msg = err.to_string();
    assert!(msg.contains(&host(&server)) && msg.contains("`user`") && !msg.contains("nope-secret"), "{msg}");
}

/// 429 with Retry-After: 1 on the first call, then the listing.
struct ThrottleOnce(std::sync::atomic::AtomicU32);

impl Respond for ThrottleOnce {
    fn respond(&self, _: &Request) -> ResponseTemplate {
        if self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst) == 0 {
            ResponseTemplate::new(429).insert_header("Retry-After", "1")
        } else {
            ResponseTemplate::new(200).set_body_json(serde_json::json!({"tags": ["v1"]}))
        }
    }
}

#[tokio::test]
async fn throttling_is_waited_out_as_retry_after_says() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v2/a/b/tags/list"))
        .respond_with(ThrottleOnce(0.into()))
        .expect(2)
        .mount(&server)
        .await;
    let client = RegistryClient::new(&host(&server), None);
    let started = Instant::now();
    assert_eq!(client.list_tags("a/b").await.unwrap(), ["v1"]);
    assert!(started.elapsed() >= Duration::from_secs(1), "waited Retry-After");
}

#[tokio::test]
async fn server_errors_are_retried_a_bounded_number_of_times() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v2/a/b/tags/list"))
        .respond_with(ResponseTemplate::new(503).set_body_string("down for maintenance"))
        .expect(4)
        .mount(&server)
        .await;
    let err = RegistryClient::new(&host(&server), None).list_tags("a/b").await.unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("HTTP 503") && msg.contains("down for maintenance"), "{msg}");
}

#[tokio::test]
async fn listings_follow_link_pagination_and_are_cached_per_run() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v2/a/b/tags/list"))
        .and(query_param("last", "v2"))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({"tags": ["v3"]})))
        .expect(2)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v2/a/b/tags/list"))
        .respond_with(
            ResponseTemplate::new(200)
                .insert_header("Link", r#"</v2/a/b/tags/list?last=v2&n=1000>; rel="next""#)
                .set_body_json(serde_json::json!({"tags": ["v1", "v2"]})),
        )
        .expect(2)
        .mount(&server)
        .await;
    let client = RegistryClient::new(&host(&server), None);
    assert_eq!(client.tags("a/b").await.unwrap(), ["v1", "v2", "v3"]);
    assert_eq!(client.tags("a/b").await.unwrap(), ["v1", "v2", "v3"], "served from the run's cache");
    assert_eq!(client.request_count(), 2);
    client.forget_listings();
    client.tags("a/b").await.unwrap();
    assert_eq!(client.request_count(), 4);
}

#[tokio::test]
async fn a_missing_repository_lists_no_tags() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v2/a/new/tags/list"))
        .respond_with(
            ResponseTemplate::new(404).set_body_json(serde_json::json!({"errors": [{"code": "NAME_UNKNOWN"}]})),
        )
        .mount(&server)
        .await;
    assert!(RegistryClient::new(&host(&server), None).list_tags("a/new").await.unwrap().is_empty());
}

#[tokio::test]
async fn an_identity_token_is_exchanged_by_post_as_the_docker_cli_does() {
    let server = MockServer::start().await;
    let realm = format!("{}/token", server.uri());
    Mock::given(method("GET"))
        .and(path("/v2/acme/app/tags/list"))
        .and(header("authorization", "Bearer tok-from-refresh"))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({"tags": ["v1.0.0"]})))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v2/acme/app/tags/list"))
        .respond_with(
            ResponseTemplate::new(401)
                .insert_header("WWW-Authenticate", format!(r#"Bearer realm="{realm}",service="registry.test""#)),
        )
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/token"))
        .and(wiremock::matchers::body_string_contains("grant_type=refresh_token"))
        .and(wiremock::matchers::body_string_contains("refresh_token=refresh-secret"))
        .and(wiremock::matchers::body_string_contains("scope=repository%3Aacme%2Fapp%3Apull"))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({"access_token": "tok-from-refresh"})))
        .expect(1)
        .mount(&server)
        .await;
    let creds =
        Credentials { username: Credentials::IDENTITY_TOKEN.into(), password: "refresh-secret".to_string().into() };
    let client = RegistryClient::new(&host(&server), Some(creds));
    assert_eq!(client.list_tags("acme/app").await.unwrap(), ["v1.0.0"]);
}

#[tokio::test]
async fn the_pull_quota_is_kept_and_a_429_beyond_the_wait_bound_says_it_is_the_quota() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v2/acme/app/tags/list"))
        .respond_with(
            ResponseTemplate::new(200)
                .insert_header("ratelimit-limit", "100;w=3600")
                .insert_header("ratelimit-remaining", "4;w=3600")
                .set_body_json(serde_json::json!({"tags": ["v1.0.0"]})),
        )
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v2/acme/other/tags/list"))
        .respond_with(ResponseTemplate::new(429).insert_header("Retry-After", "3600"))
        .expect(1)
        .mount(&server)
        .await;
    let client = RegistryClient::new(&host(&server), None);
    client.list_tags("acme/app").await.unwrap();
    assert_eq!(client.rate_limit.get(), Some((100, 4)));
    let started = Instant::now();
    let err = client.list_tags("acme/other").await.unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(5), "an hour's Retry-After is not waited out");
    assert!(matches!(err, RegistryError::PullQuota { retry_after_secs: Some(3600), .. }), "{err}");
    assert!(err.to_string().contains("pull quota is used up") && err.hint().contains("authenticate"), "{err}");
}

/// Numbered tokens (`tok-1`, `tok-2`, ...), each valid for `expires_in` seconds.
struct Tokens {
    issued: std::sync::atomic::AtomicUsize,
    expires_in: u64,
}

impl Respond for Tokens {
    fn respond(&self, _: &Request) -> ResponseTemplate {
        let n = self.issued.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
        ResponseTemplate::new(200)
            .set_body_json(serde_json::json!({"token": format!("tok-{n}"), "expires_in": self.expires_in}))
    }
}

/// A registry that accepts `tok-N` `times` times for each (N, times) in
/// `accepted`, and challenges everything else.
async fn token_registry(server: &MockServer, accepted: &[(usize, u64)], expires_in: u64) {
    for (n, times) in accepted {
        Mock::given(method("GET"))
            .and(path("/v2/acme/app/tags/list"))
            .and(header("authorization", format!("Bearer tok-{n}").as_str()))
            .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({"tags": ["v1"]})))
            .up_to_n_times(*times)
            .mount(server)
            .await;
    }
    let realm = format!("{}/token", server.uri());
    Mock::given(method("GET"))
        .and(path("/v2/acme/app/tags/list"))
        .respond_with(ResponseTemplate::new(401).insert_header(
            "WWW-Authenticate",
            format!(r#"Bearer realm="{realm}",service="registry.test",scope="repository:acme/app:pull""#),
        ))
        .mount(server)
        .await;
    Mock::given(method("GET"))
        .and(path("/token"))
        .and(query_param("scope", "repository:acme/app:pull"))
        .respond_with(Tokens { issued: 0.into(), expires_in })
        .mount(server)
        .await;
}

fn creds() -> Credentials {
    Credentials { username: "user".into(), password: "s3cret".to_string().into() }
}

fn token_requests(requests: &[Request]) -> usize {
    requests.iter().filter(|r| r.url.path() == "/token").count()
}

#[tokio::test]
async fn a_token_is_used_until_it_expires_then_renewed() {
    let server = MockServer::start().await;
    token_registry(&server, &[(1, 10), (2, 10)], 1).await;
    let client = RegistryClient::new(&host(&server), Some(creds()));
    assert_eq!(client.list_tags("acme/app").await.unwrap(), ["v1"]);
    client.forget_listings();
    assert_eq!(client.list_tags("acme/app").await.unwrap(), ["v1"]);
    assert_eq!(token_requests(&server.received_requests().await.unwrap()), 1, "reused while valid");
    tokio::time::sleep(Duration::from_millis(1000)).await;
    client.forget_listings();
    assert_eq!(client.list_tags("acme/app").await.unwrap(), ["v1"]);
    let requests = server.received_requests().await.unwrap();
    assert_eq!(token_requests(&requests), 2, "renewed after expires_in");
    let last = requests.iter().rev().find(|r| r.url.path() == "/v2/acme/app/tags/list").unwrap();
    assert_eq!(last.headers.get("authorization").unwrap(), "Bearer tok-2");
}

#[tokio::test]
async fn a_token_the_registry_refuses_is_renewed_once() {
    // tok-1 looks valid for 300 s, but the registry refuses it after its
    // first use (revoked, or a clock apart): one renewal, and tok-2 is taken.
    let server = MockServer::start().await;
    token_registry(&server, &[(1, 1), (2, 10)], 300).await;
    let client = RegistryClient::new(&host(&server), Some(creds()));
    assert_eq!(client.list_tags("acme/app").await.unwrap(), ["v1"]);
    client.forget_listings();
    assert_eq!(client.list_tags("acme/app").await.unwrap(), ["v1"]);
    assert_eq!(token_requests(&server.received_requests().await.unwrap()), 2);

    // A registry that refuses every token: one renewal, then the Unauthorized error.
    let server = MockServer::start().await;
    token_registry(&server, &[], 300).await;
    let client = RegistryClient::new(&host(&server), Some(creds()));
    let err = client.list_tags("acme/app").await.unwrap_err();
    assert!(matches!(err, RegistryError::Unauthorized { .. }), "{err}");
    assert_eq!(token_requests(&server.received_requests().await.unwrap()), 2, "{err}");
}

#[tokio::test]
async fn an_index_read_by_digest_is_fetched_once_and_an_attestation_entry_is_no_platform() {
    let server = MockServer::start().await;
    let digest = format!("sha256:{}", "a".repeat(64));
    let index = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": super::index::OCI_INDEX,
        "manifests": [
            {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": "sha256:amd", "size": 1,
             "platform": {"os": "linux", "architecture": "amd64"}},
            {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": "sha256:att", "size": 1,
             "platform": {"os": "unknown", "architecture": "unknown"}},
        ],
    });
    Mock::given(method("GET"))
        .and(path(format!("/v2/acme/app/manifests/{digest}")))
        .respond_with(
            ResponseTemplate::new(200)
                .insert_header("docker-content-digest", digest.as_str())
                .set_body_raw(serde_json::to_vec(&index).unwrap(), super::index::OCI_INDEX),
        )
        .expect(1)
        .mount(&server)
        .await;
    let client = RegistryClient::new(&host(&server), None);
    for _ in 0..3 {
        let platforms = client.platforms("acme/app", &digest).await.unwrap().unwrap();
        assert_eq!(platforms, [("linux/amd64".to_string(), "sha256:amd".to_string())]);
    }
    assert_eq!(client.request_count(), 1, "an index's content never changes under its digest");
}
