//! The GitHub API adapter on octocrab: creates or updates the GitHub Release
//! of a tag, and writes the VERSION commit through the Git Data API (blob
//! tree, commit naming its expected parent, non-forced ref update) for jobs
//! that hold an API token but cannot push. Rate limits (403 with
//! `x-ratelimit-remaining: 0`, and 429) are waited out, within a bound.

use std::time::Duration;

use base64::Engine as _;
use http::{HeaderMap, StatusCode};
use octocrab::Octocrab;
use secrecy::SecretString;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{Forge, ForgeError, RefUpdate, ReleaseLink, ReleaseNotes, RepoId};
use crate::git::{FileChange, redact_url, redact_urls_in};

/// The longest single wait for a rate limit to reset, and how many waits a call may make.
const MAX_WAIT: Duration = Duration::from_secs(90);
const MAX_WAITS: u32 = 3;

/// A GitHub repository reached through the REST API.
pub struct GitHub {
    client: Octocrab,
    api: String,
    repo: RepoId,
    max_wait: Duration,
}

#[derive(Deserialize)]
struct Sha {
    sha: String,
}

#[derive(Deserialize)]
struct RefObject {
    object: Sha,
}

#[derive(Deserialize)]
struct CommitObject {
    tree: Sha,
}

#[derive(Deserialize)]
struct Contents {
    content: String,
}

#[derive(Deserialize)]
struct ReleaseObject {
    id: u64,
    html_url: String,
}

impl GitHub {
    /// A client for `repo` at `api` (https://api.github.com, or GITHUB_API_URL on GitHub Enterprise).
    pub fn new(api: &str, token: SecretString, repo: RepoId) -> Result<Self, ForgeError> {
        let unreachable = |e: octocrab::Error| ForgeError::Unreachable {
            api: redact_url(api),
            operation: "setup".into(),
            message: redact_urls_in(&e.to_string()),
        };
        let client = Octocrab::builder()
            .base_uri(api)
            .map_err(unreachable)?
            .personal_token(token)
            // Without these a request that never answers hangs the release.
            .set_connect_timeout(Some(std::time::Duration::from_secs(10)))
            .set_read_timeout(Some(crate::config::Timeouts::default().request))
            .set_write_timeout(Some(crate::config::Timeouts::default().request))
            .build()
            .map_err(unreachable)?;
        Ok(Self { client, api: api.trim_end_matches('/').to_string(), repo, max_wait: MAX_WAIT })
    }

    /// The client the environment asks for: GITHUB_TOKEN, GITHUB_API_URL and
    /// GITHUB_REPOSITORY (else the remote URL). `None` without a token.
    pub fn from_env(remote_url: &str) -> Result<Option<Self>, ForgeError> {
        let Some(token) = crate::secrets::var("GITHUB_TOKEN") else {
            return Ok(None);
        };
        let api = std::env::var("GITHUB_API_URL").unwrap_or_else(|_| "https://api.github.com".into());
        let repo = RepoId::resolve(std::env::var("GITHUB_REPOSITORY").ok().as_deref(), remote_url)?;
        Self::new(&api, SecretString::from(token), repo).map(Some)
    }

    pub fn repo(&self) -> &RepoId {
        &self.repo
    }

    /// Caps each rate-limit wait (tests use a short bound).
    pub fn with_max_wait(mut self, max_wait: Duration) -> Self {
        self.max_wait = max_wait;
        self
    }

    fn path(&self, rest: &str) -> String {
        format!("{}/repos/{}/{}/{rest}", self.api, self.repo.owner, self.repo.name)
    }

    /// How long to wait before retrying a rate-limited response, if it is one.
    fn rate_limit_wait(status: StatusCode, headers: &HeaderMap) -> Option<Duration> {
        let header =
            |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).and_then(|v| v.trim().parse::<u64>().ok());
        let exhausted = header("x-ratelimit-remaining") == Some(0);
        if status != StatusCode::TOO_MANY_REQUESTS
            && !(status == StatusCode::FORBIDDEN && (exhausted || header("retry-after").is_some()))
        {
            return None;
        }
        if let Some(secs) = header("retry-after") {
            return Some(Duration::from_secs(secs));
        }
        if let Some(reset) = header("x-ratelimit-reset") {
            let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
            return Some(Duration::from_secs(reset.saturating_sub(now) + 1));
        }
        Some(Duration::from_secs(60))
    }

    /// Sends a request and returns status and JSON body. Rate limits are
    /// waited out; 401/403 become [`ForgeError::Unauthorized`]; other statuses
    /// are returned for the caller to judge.
    async fn send(
        &self,
        method: http::Method,
        url: &str,
        body: Option<&Value>,
        operation: &str,
    ) -> Result<(StatusCode, Value), ForgeError> {
        let unreachable = |e: octocrab::Error| ForgeError::Unreachable {
            api: redact_url(&self.api),
            operation: operation.into(),
            message: redact_urls_in(&e.to_string()),
        };
        let mut waits = 0;
        loop {
            let response = match method {
                http::Method::GET => self.client._get(url).await,
                http::Method::POST => self.client._post(url, body).await,
                http::Method::PATCH => self.client._patch(url, body).await,
                _ => unreachable!("relctl sends GET, POST and PATCH only"),
            }
            .map_err(unreachable)?;
            let status = response.status();
            if let Some(wait) = Self::rate_limit_wait(status, response.headers()) {
                if wait > self.max_wait || waits >= MAX_WAITS {
                    return Err(ForgeError::RateLimited { operation: operation.into(), wait_secs: wait.as_secs() });
                }
                waits += 1;
                tracing::warn!(operation, "GitHub API rate limit reached; waiting {} s", wait.as_secs());
                tokio::time::sleep(wait).await;
                continue;
            }
            let text = self.client.body_to_string(response).await.map_err(unreachable)?;
            if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
                return Err(ForgeError::Unauthorized {
                    api: redact_url(&self.api),
                    operation: operation.into(),
                    status: status.as_u16(),
                });
            }
            let json = serde_json::from_str(&text).unwrap_or(Value::Null);
            return Ok((status, json));
        }
    }

    /// Like [`GitHub::send`], but anything other than 2xx is an error.
    async fn expect<T: for<'de> Deserialize<'de>>(
        &self,
        method: http::Method,
        url: &str,
        body: Option<&Value>,
        operation: &str,
    ) -> Result<T, ForgeError> {
        let (status, json) = self.send(method, url, body, operation).await?;
        if !status.is_success() {
            return Err(api_error(operation, status, &json));
        }
        serde_json::from_value(json).map_err(|e| ForgeError::Api {
            operation: operation.into(),
            status: status.as_u16(),
            message: format!("unexpected response: {e}"),
        })
    }

    /// Creates the GitHub Release of `notes.tag`, or updates it if it exists.
    pub async fn upsert_release(&self, notes: &ReleaseNotes) -> Result<ReleaseLink, ForgeError> {
        let body = json!({
            "tag_name": notes.tag,
            "name": notes.tag,
            "body": notes.body(),
            "prerelease": notes.prerelease,
        });
        let url = self.path(&format!("releases/tags/{}", notes.tag));
        let (status, existing) = self.send(http::Method::GET, &url, None, "get release").await?;
        if status == StatusCode::NOT_FOUND {
            let created: ReleaseObject =
                self.expect(http::Method::POST, &self.path("releases"), Some(&body), "create release").await?;
            return Ok(ReleaseLink { id: created.id, url: created.html_url, created: true });
        }
        if !status.is_success() {
            return Err(api_error("get release", status, &existing));
        }
        let id = existing["id"].as_u64().ok_or_else(|| api_error("get release", status, &existing))?;
        let updated: ReleaseObject = self
            .expect(http::Method::PATCH, &self.path(&format!("releases/{id}")), Some(&body), "update release")
            .await?;
        Ok(ReleaseLink { id: updated.id, url: updated.html_url, created: false })
    }

    /// The commit `branch` points at.
    pub async fn branch_tip(&self, branch: &str) -> Result<String, ForgeError> {
        let r: RefObject =
            self.expect(http::Method::GET, &self.path(&format!("git/ref/heads/{branch}")), None, "read branch").await?;
        Ok(r.object.sha)
    }

    /// The bytes of `path` at `commit`, `None` when it does not exist there.
    pub async fn file_at(&self, commit: &str, path: &str) -> Result<Option<Vec<u8>>, ForgeError> {
        let url = self.path(&format!("contents/{path}?ref={commit}"));
        let (status, json) = self.send(http::Method::GET, &url, None, "read file").await?;
        if status == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        if !status.is_success() {
            return Err(api_error("read file", status, &json));
        }
        let c: Contents = serde_json::from_value(json).map_err(|e| ForgeError::Api {
            operation: "read file".into(),
            status: status.as_u16(),
            message: e.to_string(),
        })?;
        let bytes = base64::engine::general_purpose::STANDARD.decode(c.content.replace('\n', "")).map_err(|e| {
            ForgeError::Api { operation: "read file".into(), status: status.as_u16(), message: e.to_string() }
        })?;
        Ok(Some(bytes))
    }

    /// Commits `files` on top of `parent` and moves `branch` to it only if it
    /// still points at `parent` (a non-forced ref update).
    pub async fn commit_onto(
        &self,
        branch: &str,
        parent: &str,
        files: &[FileChange],
        message: &str,
        author: (&str, &str),
    ) -> Result<RefUpdate, ForgeError> {
        let base: CommitObject =
            self.expect(http::Method::GET, &self.path(&format!("git/commits/{parent}")), None, "read commit").await?;
        let entries: Vec<Value> = files
            .iter()
            .map(|f| json!({"path": f.path, "mode": "100644", "type": "blob", "content": String::from_utf8_lossy(&f.content)}))
            .collect();
        let tree: Sha = self
            .expect(
                http::Method::POST,
                &self.path("git/trees"),
                Some(&json!({"base_tree": base.tree.sha, "tree": entries})),
                "create tree",
            )
            .await?;
        let commit: Sha = self
            .expect(
                http::Method::POST,
                &self.path("git/commits"),
                Some(&json!({"message": message, "tree": tree.sha, "parents": [parent], "author": {"name": author.0, "email": author.1}})),
                "create commit",
            )
            .await?;
        let url = self.path(&format!("git/refs/heads/{branch}"));
        let (status, json) = self
            .send(http::Method::PATCH, &url, Some(&json!({"sha": commit.sha, "force": false})), "update branch")
            .await?;
        if status.is_success() {
            return Ok(RefUpdate::Moved { commit: commit.sha });
        }
        let message = json["message"].as_str().unwrap_or("").to_string();
        if message.to_lowercase().contains("protected branch") {
            return Err(ForgeError::Protected { branch: branch.into(), message });
        }
        if status == StatusCode::CONFLICT || status == StatusCode::UNPROCESSABLE_ENTITY {
            return Ok(RefUpdate::Conflict { message });
        }
        Err(api_error("update branch", status, &json))
    }
}

fn api_error(operation: &str, status: StatusCode, json: &Value) -> ForgeError {
    ForgeError::Api {
        operation: operation.into(),
        status: status.as_u16(),
        message: json["message"].as_str().unwrap_or("no message").to_string(),
    }
}

impl Forge for GitHub {
    fn name(&self) -> String {
        self.repo().to_string()
    }

    async fn upsert_release(&self, notes: &ReleaseNotes) -> Result<ReleaseLink, ForgeError> {
        GitHub::upsert_release(self, notes).await
    }

    async fn branch_tip(&self, branch: &str) -> Result<String, ForgeError> {
        GitHub::branch_tip(self, branch).await
    }

    async fn file_at(&self, commit: &str, path: &str) -> Result<Option<Vec<u8>>, ForgeError> {
        GitHub::file_at(self, commit, path).await
    }

    async fn commit_onto(
        &self,
        branch: &str,
        parent: &str,
        files: &[FileChange],
        message: &str,
        author: (&str, &str),
    ) -> Result<RefUpdate, ForgeError> {
        GitHub::commit_onto(self, branch, parent, files, message, author).await
    }
}
