//! A token server for the registry that speaks Docker Hub's auth (Distribution
//! with `auth: token`, started by scripts/services.sh): `GET /token?service=
//! &scope=` with basic auth answers a JWT signed with the test key, its
//! certificate in the `x5c` header, granting what each test user may do.
//! Every request is kept so tests can read the scopes asked and granted.
//!
//! Users (all with the password in RELCTL_TEST_AUTH_PASSWORD): `relctl` may
//! pull and push; `reader` may only pull; `stale` gets, per scope, a first
//! token the registry refuses (expired a minute beyond its leeway) that claims
//! to be good for 300 s, then good ones.

use std::collections::HashSet;
use std::sync::{Arc, Mutex, OnceLock};

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use jsonwebtoken::{Algorithm, EncodingKey, Header};

use super::env;

/// One token request, as the server saw it.
#[derive(Debug, Clone)]
pub struct TokenRequest {
    pub account: Option<String>,
    pub user_agent: String,
    /// `repository:<name>:<actions>` as asked.
    pub scopes: Vec<String>,
    /// The actions granted per repository, `repository:<name>:<actions>`.
    pub granted: Vec<String>,
    pub token: String,
}

struct Issuer {
    key: EncodingKey,
    /// The certificate, base64 DER, for the `x5c` header.
    cert: String,
    password: String,
    log: Mutex<Vec<TokenRequest>>,
    /// (user, scope) pairs `stale` already got its refused token for.
    staled: Mutex<HashSet<String>>,
}

pub struct TokenServer {
    issuer: Arc<Issuer>,
}

impl TokenServer {
    /// The requests so far whose scopes name `repository`.
    pub fn requests_for(&self, repository: &str) -> Vec<TokenRequest> {
        let needle = format!("repository:{repository}:");
        let log = self.issuer.log.lock().unwrap();
        log.iter().filter(|r| r.scopes.iter().any(|s| s.starts_with(&needle))).cloned().collect()
    }
}

/// The token server on RELCTL_TEST_TOKEN_SERVER_PORT, started on first use.
pub fn token_server() -> &'static TokenServer {
    static SERVER: OnceLock<TokenServer> = OnceLock::new();
    SERVER.get_or_init(|| {
        let pem = std::fs::read_to_string(env("RELCTL_TEST_TOKEN_CERT")).unwrap();
        let cert: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
        let key = std::fs::read(env("RELCTL_TEST_TOKEN_KEY")).unwrap();
        let issuer = Arc::new(Issuer {
            key: EncodingKey::from_ec_pem(&key).expect("the test token key"),
            cert,
            password: env("RELCTL_TEST_AUTH_PASSWORD"),
            log: Mutex::new(Vec::new()),
            staled: Mutex::new(HashSet::new()),
        });
        let port: u16 = env("RELCTL_TEST_TOKEN_SERVER_PORT").parse().unwrap();
        let listener = std::net::TcpListener::bind(("127.0.0.1", port)).expect("the token server's port is free");
        listener.set_nonblocking(true).unwrap();
        let state = issuer.clone();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                let app = axum::Router::new().route("/token", axum::routing::get(token)).with_state(state);
                axum::serve(listener, app).await.unwrap();
            });
        });
        TokenServer { issuer }
    })
}

/// The user of a basic `Authorization` header whose password is right; `Err` for a wrong one.
fn account(headers: &HeaderMap, password: &str) -> Result<Option<String>, ()> {
    let Some(value) = headers.get("authorization").and_then(|v| v.to_str().ok()) else { return Ok(None) };
    let encoded = value.strip_prefix("Basic ").ok_or(())?;
    let decoded = base64::engine::general_purpose::STANDARD.decode(encoded).map_err(|_| ())?;
    let decoded = String::from_utf8(decoded).map_err(|_| ())?;
    match decoded.split_once(':') {
        Some((user, pass)) if pass == password => Ok(Some(user.to_string())),
        _ => Err(()),
    }
}

async fn token(State(issuer): State<Arc<Issuer>>, headers: HeaderMap, uri: Uri) -> Response {
    let Ok(account) = account(&headers, &issuer.password) else {
        return (StatusCode::UNAUTHORIZED, "wrong password").into_response();
    };
    let query = uri.query().unwrap_or("");
    let scopes: Vec<String> =
        form_urlencoded::parse(query.as_bytes()).filter(|(k, _)| k == "scope").map(|(_, v)| v.into_owned()).collect();
    let may: &[&str] = match account.as_deref() {
        Some("relctl" | "stale") => &["pull", "push"],
        Some("reader") => &["pull"],
        _ => &[],
    };
    let mut access = Vec::new();
    let mut granted = Vec::new();
    for scope in &scopes {
        let mut parts = scope.splitn(3, ':');
        let (Some(kind), Some(name), Some(actions)) = (parts.next(), parts.next(), parts.next()) else { continue };
        let actions: Vec<&str> = actions.split(',').filter(|a| may.contains(a)).collect();
        granted.push(format!("{kind}:{name}:{}", actions.join(",")));
        access.push(serde_json::json!({"type": kind, "name": name, "actions": actions}));
    }
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    let stale = account.as_deref() == Some("stale") && issuer.staled.lock().unwrap().insert(scopes.join(" "));
    // Distribution allows 60 s of clock skew: a token refused for expiry ended before that.
    let exp = if stale { now - 180 } else { now + 300 };
    let claims = serde_json::json!({
        "iss": "relctl-test-token-issuer",
        "sub": account.clone().unwrap_or_default(),
        "aud": "relctl-test-registry",
        "exp": exp,
        "nbf": now - 240,
        "iat": now - 240,
        "jti": format!("{now}-{}", issuer.log.lock().unwrap().len()),
        "access": access,
    });
    let mut header = Header::new(Algorithm::ES256);
    header.x5c = Some(vec![issuer.cert.clone()]);
    let token = jsonwebtoken::encode(&header, &claims, &issuer.key).expect("signs");
    issuer.log.lock().unwrap().push(TokenRequest {
        account,
        user_agent: headers.get("user-agent").and_then(|v| v.to_str().ok()).unwrap_or("").to_string(),
        scopes,
        granted,
        token: token.clone(),
    });
    let body = serde_json::json!({"token": token, "access_token": token, "expires_in": 300});
    ([(axum::http::header::CONTENT_TYPE, "application/json")], body.to_string()).into_response()
}

/// The digest of `image:tag` on the token registry, read with a pull token of user `relctl`.
pub fn token_digest(f: &super::Fixture, image: &str, tag: &str) -> Option<String> {
    let repo = f.repo(image);
    let port = env("RELCTL_TEST_TOKEN_SERVER_PORT");
    let user = format!("relctl:{}", env("RELCTL_TEST_AUTH_PASSWORD"));
    let url = format!("http://127.0.0.1:{port}/token?service=relctl-test-registry&scope=repository:{repo}:pull");
    let token = super::curl_json(&url, &["-u", &user])["token"].as_str().unwrap().to_string();
    let url = format!("http://{}/v2/{repo}/manifests/{tag}", f.registry);
    let auth = format!("Authorization: Bearer {token}");
    super::head_digest(&url, &["-H", &auth, "-H", "Accept: application/vnd.docker.distribution.manifest.v2+json"])
}
