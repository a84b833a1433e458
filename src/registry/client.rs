//! HTTP client for the registry API v2 (the Distribution spec Docker Hub
//! speaks): basic auth and the Bearer token challenge, bounded retries on 429
//! and 5xx honouring Retry-After, and a request counter.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use reqwest::{Method, Response, StatusCode, header};
use secrecy::ExposeSecret;

use super::RegistryError;
use super::credentials::Credentials;

const MAX_ATTEMPTS: u32 = 4;
/// The longest `Retry-After` relctl waits out.
const MAX_WAIT: Duration = Duration::from_secs(60);

#[derive(Clone)]
enum Auth {
    Basic,
    /// A token for one scope, good until `until` (see [`token_lifetime`]).
    Bearer {
        token: String,
        until: Instant,
    },
}

/// How long relctl uses a token: nine tenths of the `expires_in` the token
/// server gave (60 s when it gave none, as the Docker token spec says), so a
/// token is renewed before the registry would refuse it.
fn token_lifetime(expires_in: Option<u64>) -> Duration {
    // A day at most: a server's number is not trusted to be sane.
    let secs = expires_in.unwrap_or(60).clamp(1, 86_400);
    Duration::from_millis(secs * 900)
}

/// One registry host.
pub struct RegistryClient {
    /// As configured, e.g. `docker.io`; used in messages.
    pub registry: String,
    base: String,
    http: reqwest::Client,
    creds: Option<Credentials>,
    auth: Mutex<HashMap<String, Auth>>,
    requests: AtomicU64,
    /// Bound on one request, from connect to the end of its body.
    timeout: Duration,
    /// Tag listings of this run, so a reconcile lists each repository once.
    pub(super) listings: Mutex<HashMap<String, Vec<String>>>,
    /// Docker Hub's pull quota, as its last answer told it.
    pub rate_limit: super::rate_limit::RateLimit,
    /// Labels by manifest digest (see [`super::labels_cache`]).
    pub(super) labels_cache: super::labels_cache::LabelsCache,
    /// The platform images of indexes read, by index digest (immutable
    /// content): a controller reads each index once, not on every pass.
    pub(super) indexes: Mutex<HashMap<String, Vec<(String, String)>>>,
}

/// Loopback registries speak plain HTTP, as the Docker daemon assumes; all others HTTPS.
fn base_url(registry: &str) -> String {
    let host = registry.rsplit_once(':').map_or(registry, |(h, _)| h);
    let api = if super::is_docker_hub(registry) { "registry-1.docker.io" } else { registry };
    let scheme = if host == "localhost" || host.starts_with("127.") || host == "[::1]" { "http" } else { "https" };
    format!("{scheme}://{api}")
}

/// The HTTP client a [`RegistryClient`] sends with. Building one loads the
/// system's CA certificates (75 ms here), so a command may build it on a
/// blocking thread while it reads git, and hand it to [`RegistryClient::with_http`].
pub fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .user_agent(concat!("relctl/", env!("CARGO_PKG_VERSION")))
        .connect_timeout(Duration::from_secs(10))
        .build()
        .expect("TLS backend initialises")
}

impl RegistryClient {
    pub fn new(registry: &str, creds: Option<Credentials>) -> Self {
        Self::with_http(registry, creds, http_client())
    }

    pub fn with_http(registry: &str, creds: Option<Credentials>, http: reqwest::Client) -> Self {
        Self {
            registry: registry.to_string(),
            base: base_url(registry),
            http,
            creds,
            auth: Mutex::new(HashMap::new()),
            requests: AtomicU64::new(0),
            timeout: crate::config::Timeouts::default().request,
            listings: Mutex::new(HashMap::new()),
            labels_cache: super::labels_cache::LabelsCache::in_user_cache(),
            indexes: Mutex::new(HashMap::new()),
            rate_limit: Default::default(),
        }
    }

    /// Bounds each request (and its body) by `timeout` (`timeouts.request`).
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Forgets the cached tag listings: the next observation lists again.
    pub fn forget_listings(&self) {
        self.listings.lock().expect("listing cache").clear();
    }

    /// Requests sent so far (retries and token fetches included).
    pub fn request_count(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    pub fn username(&self) -> Option<&str> {
        self.creds.as_ref().map(|c| c.username.as_str())
    }

    /// Sends a request for `repository` (path relative to `/v2/<repository>/`),
    /// answering auth challenges and retrying throttling and server errors.
    pub async fn send(
        &self,
        method: Method,
        repository: &str,
        path: &str,
        headers: &[(header::HeaderName, String)],
        body: Option<Vec<u8>>,
        push: bool,
    ) -> Result<Response, RegistryError> {
        let url = format!("{}/v2/{repository}/{path}", self.base);
        let scope = format!("repository:{repository}:{}", if push { "pull,push" } else { "pull" });
        // A challenge is answered twice at most: the registry may refuse a
        // token it was just given (expired early, clocks apart) once.
        let mut challenges = 0;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let mut req = self.http.request(method.clone(), &url).timeout(self.timeout);
            for (k, v) in headers {
                req = req.header(k, v);
            }
            if let Some(b) = &body {
                req = req.body(b.clone());
            }
            let auth = self.auth.lock().expect("auth cache").get(&scope).cloned();
            req = match (&auth, &self.creds) {
                // An expired token is not sent: the registry's challenge gets a new one.
                (Some(Auth::Bearer { token, until }), _) if Instant::now() < *until => req.bearer_auth(token),
                (Some(Auth::Bearer { .. }), _) => req,
                (Some(Auth::Basic), Some(c)) => req.basic_auth(&c.username, Some(c.password.expose_secret())),
                _ => req,
            };
            self.requests.fetch_add(1, Ordering::Relaxed);
            let resp = match req.send().await {
                Ok(resp) => resp,
                // A reset connection or a request that timed out: every
                // request relctl sends is idempotent, so send it again.
                Err(e) if attempt < MAX_ATTEMPTS && (e.is_timeout() || e.is_connect() || e.is_request()) => {
                    let wait = Duration::from_millis(500 * 2u64.pow(attempt - 1));
                    tracing::warn!(registry = %self.registry, wait_ms = wait.as_millis() as u64, "registry request failed, retrying: {}", self.transport(e));
                    tokio::time::sleep(wait).await;
                    continue;
                }
                Err(e) => return Err(self.transport(e)),
            };
            let status = resp.status();
            if status == StatusCode::UNAUTHORIZED && challenges < 2 {
                challenges += 1;
                let challenge = resp
                    .headers()
                    .get(header::WWW_AUTHENTICATE)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("")
                    .to_string();
                let auth = self.answer(&challenge, &scope, repository).await?;
                self.auth.lock().expect("auth cache").insert(scope.clone(), auth);
                continue;
            }
            if status == StatusCode::UNAUTHORIZED || (status == StatusCode::FORBIDDEN && challenges > 0) {
                return Err(RegistryError::Unauthorized {
                    registry: self.registry.clone(),
                    repository: repository.to_string(),
                    user: self.username().map(str::to_string),
                });
            }
            self.rate_limit.observe(resp.headers(), &self.registry);
            if status == StatusCode::TOO_MANY_REQUESTS {
                let asked = retry_after(&resp);
                // Waited out within a bound; a quota that resets later is an error that says so.
                if attempt >= MAX_ATTEMPTS || asked.is_some_and(|w| w > MAX_WAIT) {
                    return Err(RegistryError::PullQuota {
                        registry: self.registry.clone(),
                        repository: repository.to_string(),
                        retry_after_secs: asked.map(|w| w.as_secs()),
                    });
                }
            }
            if (status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error()) && attempt < MAX_ATTEMPTS {
                let wait =
                    retry_after(&resp).unwrap_or(Duration::from_millis(500 * 2u64.pow(attempt - 1))).min(MAX_WAIT);
                tracing::warn!(registry = %self.registry, %status, wait_ms = wait.as_millis() as u64, "registry asked to retry");
                tokio::time::sleep(wait).await;
                continue;
            }
            return Ok(resp);
        }
    }

    /// Answers a `WWW-Authenticate` challenge: Basic, or a Bearer token from
    /// the realm for exactly `scope` (`pull` for reads, `pull,push` for writes).
    async fn answer(&self, challenge: &str, scope: &str, repository: &str) -> Result<Auth, RegistryError> {
        let unauthorized = || RegistryError::Unauthorized {
            registry: self.registry.clone(),
            repository: repository.to_string(),
            user: self.username().map(str::to_string),
        };
        let (kind, params) = challenge.split_once(' ').unwrap_or((challenge, ""));
        if kind.eq_ignore_ascii_case("basic") {
            let usable = self.creds.as_ref().is_some_and(|c| !c.is_identity_token());
            return if usable { Ok(Auth::Basic) } else { Err(unauthorized()) };
        }
        if !kind.eq_ignore_ascii_case("bearer") {
            return Err(unauthorized());
        }
        let params = parse_params(params);
        let realm = params.get("realm").ok_or_else(unauthorized)?;
        let service = params.get("service").map(String::as_str).unwrap_or("");
        let req = match &self.creds {
            // An identity token is an OAuth2 refresh token, exchanged by POST (as the docker CLI does).
            Some(c) if c.is_identity_token() => {
                let form = form_urlencoded::Serializer::new(String::new())
                    .extend_pairs([
                        ("grant_type", "refresh_token"),
                        ("refresh_token", c.password.expose_secret()),
                        ("service", service),
                        ("scope", scope),
                        ("client_id", "relctl"),
                    ])
                    .finish();
                self.http
                    .post(realm.as_str())
                    .timeout(self.timeout)
                    .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                    .body(form)
            }
            creds => {
                let mut req = self.http.get(realm.as_str()).timeout(self.timeout).query(&[("scope", scope)]);
                if !service.is_empty() {
                    req = req.query(&[("service", service)]);
                }
                match creds {
                    Some(c) => req.basic_auth(&c.username, Some(c.password.expose_secret())),
                    None => req,
                }
            }
        };
        self.requests.fetch_add(1, Ordering::Relaxed);
        let resp = req.send().await.map_err(|e| self.transport(e))?;
        if !resp.status().is_success() {
            return Err(unauthorized());
        }
        let body: serde_json::Value = resp.json().await.map_err(|e| self.transport(e))?;
        let token =
            body.get("token").or_else(|| body.get("access_token")).and_then(|t| t.as_str()).ok_or_else(unauthorized)?;
        let lifetime = token_lifetime(body.get("expires_in").and_then(|e| e.as_u64()));
        Ok(Auth::Bearer { token: token.to_string(), until: Instant::now() + lifetime })
    }

    fn transport(&self, e: reqwest::Error) -> RegistryError {
        // Without the URL: it never holds secrets, but the message reads better without it.
        let e = e.without_url();
        let mut message = e.to_string();
        let mut source = std::error::Error::source(&e);
        while let Some(cause) = source {
            message.push_str(&format!(": {cause}"));
            source = cause.source();
        }
        RegistryError::Transport { registry: self.registry.clone(), message }
    }
}

fn retry_after(resp: &Response) -> Option<Duration> {
    resp.headers().get(header::RETRY_AFTER)?.to_str().ok()?.trim().parse::<u64>().ok().map(Duration::from_secs)
}

/// `realm="https://auth.docker.io/token",service="registry.docker.io"` -> map.
fn parse_params(s: &str) -> HashMap<String, String> {
    let mut out = HashMap::new();
    let mut rest = s.trim();
    while let Some((key, after)) = rest.split_once('=') {
        let key = key.trim().trim_start_matches(',').trim().to_lowercase();
        let (value, next) = if let Some(q) = after.strip_prefix('"') {
            let end = q.find('"').unwrap_or(q.len());
            (&q[..end], q.get(end + 1..).unwrap_or(""))
        } else {
            let end = after.find(',').unwrap_or(after.len());
            (&after[..end], &after[end..])
        };
        out.insert(key, value.to_string());
        rest = next.trim_start_matches(',').trim();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenge_params() {
        let p = parse_params(
            r#"realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:a/b:pull,push""#,
        );
        assert_eq!(p["realm"], "https://auth.docker.io/token");
        assert_eq!(p["service"], "registry.docker.io");
        assert_eq!(p["scope"], "repository:a/b:pull,push");
    }

    #[test]
    fn tokens_are_renewed_before_they_expire() {
        assert_eq!(token_lifetime(Some(300)), Duration::from_secs(270));
        assert_eq!(token_lifetime(None), Duration::from_secs(54), "the spec's default of 60 s");
        assert_eq!(token_lifetime(Some(0)), Duration::from_millis(900));
        assert_eq!(token_lifetime(Some(u64::MAX)), Duration::from_secs(86_400 * 9 / 10));
    }

    #[test]
    fn base_urls() {
        assert_eq!(base_url("docker.io"), "https://registry-1.docker.io");
        assert_eq!(base_url("127.0.0.1:5000"), "http://127.0.0.1:5000");
        assert_eq!(base_url("localhost:5000"), "http://localhost:5000");
        assert_eq!(base_url("ghcr.io"), "https://ghcr.io");
    }
}
