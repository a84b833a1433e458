//! Docker Hub's repository pages: the short and full description of an
//! image's repository, written through Docker Hub's API (log in with the
//! registry credentials, read the repository, update what changed). Nothing
//! here fails a release: the caller reports a failure as a warning.

use secrecy::{ExposeSecret, SecretString};
use serde_json::json;

use crate::registry::Credentials;

/// Docker Hub's API; `RELCTL_DOCKERHUB_API` replaces it (a test fixture).
pub const API: &str = "https://hub.docker.com";

/// Bound on one API request, body included: a stalled Docker Hub never holds a release.
const TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// Why a repository page could not be updated. Never holds a password or token.
#[derive(Debug, thiserror::Error)]
pub enum DockerHubError {
    #[error("Docker Hub refused the login of user `{user}` (HTTP {status})")]
    Login { user: String, status: u16 },
    #[error("Docker Hub: {op} {repository} answered HTTP {status}")]
    Api { repository: String, op: &'static str, status: u16 },
    #[error("Docker Hub: cannot reach it: {message}")]
    Transport { message: String },
    #[error("Docker Hub: the registry credentials are an identity token, which its API does not take")]
    IdentityToken,
}

impl DockerHubError {
    pub fn hint(&self) -> String {
        match self {
            DockerHubError::Login { .. } | DockerHubError::IdentityToken => {
                "set RELCTL_REGISTRY_USERNAME and RELCTL_REGISTRY_PASSWORD to a Docker Hub user and a personal access token with read and write access".into()
            }
            DockerHubError::Api { status: 401 | 403, .. } => {
                "the account may push but not edit the repository: give it admin rights on the repository, or remove dockerhub: from release.yaml".into()
            }
            _ => "the release is published; the description is written again after the next stable release".into(),
        }
    }
}

/// What a sync did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PageSync {
    Updated,
    Unchanged,
}

/// Docker Hub's API as one account.
pub struct DockerHub {
    api: String,
    http: reqwest::Client,
    username: String,
    password: SecretString,
    token: tokio::sync::Mutex<Option<SecretString>>,
}

impl DockerHub {
    /// The API at `api` (usually [`API`]), as the registry's `creds`.
    pub fn new(api: &str, creds: &Credentials, http: reqwest::Client) -> Result<Self, DockerHubError> {
        if creds.is_identity_token() {
            return Err(DockerHubError::IdentityToken);
        }
        Ok(Self {
            api: api.trim_end_matches('/').to_string(),
            http,
            username: creds.username.clone(),
            password: creds.password.clone(),
            token: tokio::sync::Mutex::new(None),
        })
    }

    fn transport(e: reqwest::Error) -> DockerHubError {
        DockerHubError::Transport { message: crate::chain::error_chain(&e.without_url()) }
    }

    /// A session token, logging in once per run (again after [`Self::forget_token`]).
    async fn token(&self) -> Result<SecretString, DockerHubError> {
        let mut token = self.token.lock().await;
        if let Some(t) = token.as_ref() {
            return Ok(t.clone());
        }
        let body = json!({"username": self.username, "password": self.password.expose_secret()});
        let resp = self.http.post(format!("{}/v2/users/login", self.api)).timeout(TIMEOUT).json(&body).send().await;
        let resp = resp.map_err(Self::transport)?;
        let refused = |status: u16| DockerHubError::Login { user: self.username.clone(), status };
        if !resp.status().is_success() {
            return Err(refused(resp.status().as_u16()));
        }
        let status = resp.status().as_u16();
        let answer: serde_json::Value = resp.json().await.map_err(Self::transport)?;
        let fresh = answer["token"].as_str().filter(|t| !t.is_empty()).ok_or_else(|| refused(status))?;
        let fresh: SecretString = fresh.to_string().into();
        *token = Some(fresh.clone());
        Ok(fresh)
    }

    /// Drops the session token: the next call logs in again (it expired).
    async fn forget_token(&self) {
        *self.token.lock().await = None;
    }

    /// `method` on `url` with the session token, logging in again once when
    /// Docker Hub says the token is no longer good.
    async fn send(
        &self,
        method: reqwest::Method,
        url: &str,
        body: Option<&serde_json::Map<String, serde_json::Value>>,
    ) -> Result<reqwest::Response, DockerHubError> {
        let resp = self.send_once(method.clone(), url, body).await?;
        if resp.status() != reqwest::StatusCode::UNAUTHORIZED {
            return Ok(resp);
        }
        self.forget_token().await;
        self.send_once(method, url, body).await
    }

    async fn send_once(
        &self,
        method: reqwest::Method,
        url: &str,
        body: Option<&serde_json::Map<String, serde_json::Value>>,
    ) -> Result<reqwest::Response, DockerHubError> {
        let token = self.token().await?;
        let mut req = self.http.request(method, url).timeout(TIMEOUT).bearer_auth(token.expose_secret());
        if let Some(b) = body {
            req = req.json(b);
        }
        req.send().await.map_err(Self::transport)
    }

    /// Sets `repository`'s (`namespace/name`) short and full description to
    /// those given, writing only when one differs from what Docker Hub has.
    pub async fn sync(
        &self,
        repository: &str,
        description: Option<&str>,
        full: Option<&str>,
    ) -> Result<PageSync, DockerHubError> {
        let url = format!("{}/v2/repositories/{repository}/", self.api);
        let failed = |op, status: reqwest::StatusCode| DockerHubError::Api {
            repository: repository.to_string(),
            op,
            status: status.as_u16(),
        };
        let resp = self.send(reqwest::Method::GET, &url, None).await?;
        if !resp.status().is_success() {
            return Err(failed("read", resp.status()));
        }
        let current: serde_json::Value = resp.json().await.map_err(Self::transport)?;
        let mut change = serde_json::Map::new();
        for (field, want) in [("description", description), ("full_description", full)] {
            if let Some(want) = want.filter(|w| current[field].as_str() != Some(*w)) {
                change.insert(field.into(), want.into());
            }
        }
        if change.is_empty() {
            return Ok(PageSync::Unchanged);
        }
        let resp = self.send(reqwest::Method::PATCH, &url, Some(&change)).await?;
        if !resp.status().is_success() {
            return Err(failed("update", resp.status()));
        }
        Ok(PageSync::Updated)
    }
}

impl std::fmt::Debug for DockerHub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DockerHub").field("api", &self.api).field("username", &self.username).finish_non_exhaustive()
    }
}
