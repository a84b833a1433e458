//! Registry credentials: RELCTL_REGISTRY_USERNAME / RELCTL_REGISTRY_PASSWORD,
//! else the `auths` of the Docker CLI's config.json. The password is a
//! `SecretString` and never printed, not even by `Debug`.

use std::path::PathBuf;

use base64::Engine;
use secrecy::SecretString;

#[derive(Clone)]
pub struct Credentials {
    pub username: String,
    pub password: SecretString,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials").field("username", &self.username).field("password", &"[redacted]").finish()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CredentialsError {
    #[error("{set} is set but {unset} is not")]
    HalfSet { set: &'static str, unset: &'static str },
    #[error("{} cannot be read as a docker config", path.display())]
    DockerConfig {
        path: PathBuf,
        #[source]
        problem: DockerConfigProblem,
    },
}

/// What is wrong in a docker config's `auths`.
#[derive(Debug, thiserror::Error)]
pub enum DockerConfigProblem {
    #[error("it is not valid JSON")]
    Json(#[source] serde_json::Error),
    #[error("auths.\"{0}\".auth is not base64")]
    NotBase64(String),
    #[error("auths.\"{0}\".auth is not UTF-8")]
    NotUtf8(String),
    #[error("auths.\"{0}\".auth is not user:password")]
    NotUserPassword(String),
}

impl CredentialsError {
    pub fn hint(&self) -> String {
        match self {
            CredentialsError::HalfSet { .. } => "set both RELCTL_REGISTRY_USERNAME and RELCTL_REGISTRY_PASSWORD, or neither".into(),
            CredentialsError::DockerConfig { .. } => "fix the file (docker login REGISTRY rewrites it) or set RELCTL_REGISTRY_USERNAME / RELCTL_REGISTRY_PASSWORD".into(),
        }
    }
}

/// The keys Docker's config.json may use for `registry`.
fn auth_keys(registry: &str) -> Vec<String> {
    if super::is_docker_hub(registry) {
        return vec![
            "https://index.docker.io/v1/".into(),
            "index.docker.io".into(),
            "docker.io".into(),
            "registry-1.docker.io".into(),
        ];
    }
    vec![
        registry.into(),
        format!("https://{registry}"),
        format!("http://{registry}"),
        format!("https://{registry}/v2/"),
    ]
}

/// Credentials for `registry`, or `None` to go anonymous.
pub fn load(registry: &str) -> Result<Option<Credentials>, CredentialsError> {
    let user = std::env::var("RELCTL_REGISTRY_USERNAME").ok().filter(|v| !v.is_empty());
    let pass = std::env::var("RELCTL_REGISTRY_PASSWORD").ok().filter(|v| !v.is_empty());
    match (user, pass) {
        (Some(username), Some(password)) => {
            return Ok(Some(Credentials { username, password: password.into() }));
        }
        (Some(_), None) => {
            return Err(CredentialsError::HalfSet {
                set: "RELCTL_REGISTRY_USERNAME",
                unset: "RELCTL_REGISTRY_PASSWORD",
            });
        }
        (None, Some(_)) => {
            return Err(CredentialsError::HalfSet {
                set: "RELCTL_REGISTRY_PASSWORD",
                unset: "RELCTL_REGISTRY_USERNAME",
            });
        }
        (None, None) => {}
    }
    let dir = std::env::var_os("DOCKER_CONFIG")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".docker")));
    let Some(path) = dir.map(|d| d.join("config.json")) else {
        return Ok(None);
    };
    let Ok(text) = std::fs::read_to_string(&path) else {
        return Ok(None);
    };
    from_docker_config(&text, registry).map_err(|problem| CredentialsError::DockerConfig { path, problem })
}

fn from_docker_config(text: &str, registry: &str) -> Result<Option<Credentials>, DockerConfigProblem> {
    let json: serde_json::Value = serde_json::from_str(text).map_err(DockerConfigProblem::Json)?;
    let Some(auths) = json.get("auths").and_then(|a| a.as_object()) else {
        return Ok(None);
    };
    for key in auth_keys(registry) {
        let Some(entry) = auths.get(&key) else {
            continue;
        };
        if let Some(auth) = entry.get("auth").and_then(|a| a.as_str()).filter(|a| !a.is_empty()) {
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(auth)
                .map_err(|_| DockerConfigProblem::NotBase64(key.clone()))?;
            let decoded = String::from_utf8(decoded).map_err(|_| DockerConfigProblem::NotUtf8(key.clone()))?;
            let (username, password) =
                decoded.split_once(':').ok_or_else(|| DockerConfigProblem::NotUserPassword(key.clone()))?;
            return Ok(Some(Credentials { username: username.into(), password: password.to_string().into() }));
        }
        if let (Some(u), Some(p)) =
            (entry.get("username").and_then(|v| v.as_str()), entry.get("password").and_then(|v| v.as_str()))
        {
            return Ok(Some(Credentials { username: u.into(), password: p.to_string().into() }));
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use secrecy::ExposeSecret;

    use super::*;

    #[test]
    fn docker_config_auths() {
        let text = r#"{"auths":{"https://index.docker.io/v1/":{"auth":"dXNlcjpzM2NyZXQ="},"127.0.0.1:5000":{"username":"a","password":"b"}}}"#;
        let c = from_docker_config(text, "docker.io").unwrap().unwrap();
        assert_eq!((c.username.as_str(), c.password.expose_secret()), ("user", "s3cret"));
        let c = from_docker_config(text, "127.0.0.1:5000").unwrap().unwrap();
        assert_eq!(c.username, "a");
        assert!(from_docker_config(text, "ghcr.io").unwrap().is_none());
        assert!(from_docker_config("{", "x").unwrap_err().to_string().contains("not valid JSON"));
    }

    #[test]
    fn debug_never_shows_the_password() {
        let c = Credentials { username: "u".into(), password: "hunter2".to_string().into() };
        assert!(!format!("{c:?}").contains("hunter2"));
    }
}
