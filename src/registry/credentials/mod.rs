//! Registry credentials, found as the docker CLI finds them:
//! RELCTL_REGISTRY_USERNAME / RELCTL_REGISTRY_PASSWORD first, else from the
//! Docker config (`$DOCKER_CONFIG/config.json` or `~/.docker/config.json`):
//! the registry's `credHelpers` entry, else `credsStore`, each a
//! `docker-credential-<name>` helper, else `auths` (`auth` or
//! `identitytoken`). The password is a `SecretString` and never printed, not
//! even by `Debug`.

mod helper;

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

impl Credentials {
    /// The docker CLI's marker for an identity (OAuth2 refresh) token in place of a password.
    pub const IDENTITY_TOKEN: &'static str = "<token>";

    /// Whether `password` is an identity token, to be exchanged at the registry's token endpoint.
    pub fn is_identity_token(&self) -> bool {
        self.username == Self::IDENTITY_TOKEN
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CredentialsError {
    #[error("{set} is set but {unset} is not")]
    HalfSet { set: &'static str, unset: &'static str },
    #[error(
        "the Docker config names the credential helper `{helper}` for {registry}, but docker-credential-{helper} is not on PATH"
    )]
    HelperMissing { helper: String, registry: String },
    #[error("the credential helper docker-credential-{helper} failed for {registry}: {message}")]
    HelperFailed { helper: String, registry: String, message: String },
    #[error(
        "the credential helper docker-credential-{helper} answered for {registry} with something that is not its JSON reply"
    )]
    HelperGarbage { helper: String, registry: String },
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
    /// 2 for a config to fix, 1 for a helper that failed at run time.
    pub fn exit_code(&self) -> u8 {
        match self {
            CredentialsError::HalfSet { .. } | CredentialsError::DockerConfig { .. } => 2,
            _ => 1,
        }
    }

    pub fn hint(&self) -> String {
        match self {
            CredentialsError::HelperMissing { helper, .. } => format!(
                "install docker-credential-{helper} (Debian: golang-docker-credential-helpers), remove it from credHelpers/credsStore in the Docker config, or set RELCTL_REGISTRY_USERNAME / RELCTL_REGISTRY_PASSWORD"
            ),
            CredentialsError::HelperFailed { helper, registry, .. } => format!(
                "check `echo {registry} | docker-credential-{helper} get` works for this user (an unlocked keyring or gpg agent), or run `docker login {registry}` again"
            ),
            CredentialsError::HelperGarbage { helper, .. } => {
                format!("update docker-credential-{helper}, or set RELCTL_REGISTRY_USERNAME / RELCTL_REGISTRY_PASSWORD")
            }
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
    let user = crate::secrets::var("RELCTL_REGISTRY_USERNAME");
    let pass = crate::secrets::var("RELCTL_REGISTRY_PASSWORD");
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
    let json: serde_json::Value = serde_json::from_str(&text)
        .map_err(|e| CredentialsError::DockerConfig { path: path.clone(), problem: DockerConfigProblem::Json(e) })?;
    resolve(&json, registry, helper::get).map_err(|e| e.located(&path))
}

/// Why the Docker config gave no credentials for a registry (before the path is known).
enum Problem {
    Config(DockerConfigProblem),
    Credentials(CredentialsError),
}

impl Problem {
    fn located(self, path: &std::path::Path) -> CredentialsError {
        match self {
            Problem::Config(problem) => CredentialsError::DockerConfig { path: path.to_path_buf(), problem },
            Problem::Credentials(e) => e,
        }
    }
}

/// The server URL a helper is asked for: Docker Hub's old index URL, else the host.
fn server_url(registry: &str) -> String {
    if super::is_docker_hub(registry) { "https://index.docker.io/v1/".into() } else { registry.into() }
}

/// The docker CLI's order: `credHelpers[registry]`, else `credsStore`, else `auths`.
fn resolve(
    json: &serde_json::Value,
    registry: &str,
    run: impl Fn(&str, &str) -> helper::Answer,
) -> Result<Option<Credentials>, Problem> {
    let keys = auth_keys(registry);
    let helpers = json.get("credHelpers").and_then(|h| h.as_object());
    let for_registry = helpers.and_then(|h| keys.iter().find_map(|k| h.get(k).and_then(|v| v.as_str())));
    let store = json.get("credsStore").and_then(|s| s.as_str()).filter(|s| !s.is_empty());
    if let Some(name) = for_registry.or(store) {
        let err =
            |e: fn(String, String) -> CredentialsError| Err(Problem::Credentials(e(name.into(), registry.into())));
        return match run(name, &server_url(registry)) {
            helper::Answer::Found { username, secret } => Ok(Some(Credentials { username, password: secret })),
            helper::Answer::NotFound => Ok(None),
            helper::Answer::Missing => err(|helper, registry| CredentialsError::HelperMissing { helper, registry }),
            helper::Answer::Garbage => err(|helper, registry| CredentialsError::HelperGarbage { helper, registry }),
            helper::Answer::Failed(message) => Err(Problem::Credentials(CredentialsError::HelperFailed {
                helper: name.into(),
                registry: registry.into(),
                message,
            })),
        };
    }
    from_auths(json, &keys).map_err(Problem::Config)
}

fn from_auths(json: &serde_json::Value, keys: &[String]) -> Result<Option<Credentials>, DockerConfigProblem> {
    let Some(auths) = json.get("auths").and_then(|a| a.as_object()) else {
        return Ok(None);
    };
    for key in keys {
        let Some(entry) = auths.get(key) else {
            continue;
        };
        if let Some(token) = entry.get("identitytoken").and_then(|a| a.as_str()).filter(|a| !a.is_empty()) {
            let password = token.to_string().into();
            return Ok(Some(Credentials { username: Credentials::IDENTITY_TOKEN.into(), password }));
        }
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

    fn from_docker_config(text: &str, registry: &str) -> Result<Option<Credentials>, String> {
        let json: serde_json::Value = serde_json::from_str(text).map_err(|e| e.to_string())?;
        resolve(&json, registry, |_, _| panic!("no helper is configured")).map_err(|e| match e {
            Problem::Config(p) => p.to_string(),
            Problem::Credentials(c) => c.to_string(),
        })
    }

    #[test]
    fn docker_config_auths() {
        let text = r#"{"auths":{"https://index.docker.io/v1/":{"auth":"dXNlcjpzM2NyZXQ="},"127.0.0.1:5000":{"username":"a","password":"b"},"ghcr.io":{"identitytoken":"refresh-1"}}}"#;
        let c = from_docker_config(text, "docker.io").unwrap().unwrap();
        assert_eq!((c.username.as_str(), c.password.expose_secret()), ("user", "s3cret"));
        let c = from_docker_config(text, "127.0.0.1:5000").unwrap().unwrap();
        assert_eq!(c.username, "a");
        let c = from_docker_config(text, "ghcr.io").unwrap().unwrap();
        assert!(c.is_identity_token() && c.password.expose_secret() == "refresh-1");
        assert!(from_docker_config(text, "quay.io").unwrap().is_none());
        assert!(
            from_docker_config(r#"{"auths":{"quay.io":{"auth":"!!"}}}"#, "quay.io").unwrap_err().contains("not base64")
        );
    }

    /// The helper runs a fake runner saw: `helper server`.
    type Calls = std::rc::Rc<std::cell::RefCell<Vec<String>>>;

    /// A fake helper runner: answers from a table of (helper, server) -> answer, records calls.
    fn helpers(table: &[(&str, &str, &str)]) -> (impl Fn(&str, &str) -> helper::Answer, Calls) {
        let calls = std::rc::Rc::new(std::cell::RefCell::new(Vec::new()));
        let (c, table): (_, Vec<(String, String, String)>) =
            (calls.clone(), table.iter().map(|(a, b, r)| (a.to_string(), b.to_string(), r.to_string())).collect());
        let run = move |name: &str, server: &str| {
            c.borrow_mut().push(format!("{name} {server}"));
            match table.iter().find(|(n, s, _)| n == name && s == server).map(|(_, _, r)| r.as_str()) {
                None => helper::Answer::Missing,
                Some("not found") => helper::Answer::NotFound,
                Some("garbage") => helper::Answer::Garbage,
                Some(r) if r.starts_with("fail:") => helper::Answer::Failed(r[5..].into()),
                Some(r) => {
                    let (u, p) = r.split_once(':').unwrap();
                    helper::Answer::Found { username: u.into(), secret: p.to_string().into() }
                }
            }
        };
        (run, calls)
    }

    #[test]
    fn cred_helpers_come_first_then_creds_store_then_auths() {
        let json: serde_json::Value = serde_json::from_str(
            r#"{"credsStore":"desktop","credHelpers":{"127.0.0.1:5056":"pass"},"auths":{"127.0.0.1:5056":{"username":"file","password":"f"},"ghcr.io":{"username":"file","password":"f"}}}"#,
        )
        .unwrap();
        let (run, calls) = helpers(&[
            ("pass", "127.0.0.1:5056", "relctl:from-pass"),
            ("desktop", "ghcr.io", "store:from-desktop"),
            ("desktop", "https://index.docker.io/v1/", "<token>:refresh"),
        ]);
        let get = |registry: &str| resolve(&json, registry, &run).ok().flatten();
        assert_eq!(get("127.0.0.1:5056").unwrap().password.expose_secret(), "from-pass", "credHelpers wins");
        assert_eq!(get("ghcr.io").unwrap().username, "store", "then credsStore, before auths");
        assert!(get("docker.io").unwrap().is_identity_token(), "Docker Hub is asked as its index URL");
        assert_eq!(
            calls.borrow().as_slice(),
            ["pass 127.0.0.1:5056", "desktop ghcr.io", "desktop https://index.docker.io/v1/"]
        );
    }

    #[test]
    fn helper_failures_name_the_helper_and_the_registry_and_never_the_secret() {
        let cases = [
            (r#"{"credsStore":"gone"}"#, "docker-credential-gone is not on PATH", 1),
            (r#"{"credsStore":"broken"}"#, "docker-credential-broken failed for r.test: gpg: no secret key", 1),
            (r#"{"credsStore":"chatty"}"#, "docker-credential-chatty answered for r.test with something", 1),
        ];
        let (run, _) = helpers(&[("broken", "r.test", "fail:gpg: no secret key"), ("chatty", "r.test", "garbage")]);
        for (config, want, code) in cases {
            let json: serde_json::Value = serde_json::from_str(config).unwrap();
            let Err(Problem::Credentials(e)) = resolve(&json, "r.test", &run) else { panic!("{config}") };
            assert!(e.to_string().contains(want), "{e}");
            assert_eq!(e.exit_code(), code);
            assert!(e.hint().contains("docker-credential-"), "{}", e.hint());
        }
        let json: serde_json::Value = serde_json::from_str(r#"{"credsStore":"empty"}"#).unwrap();
        let (run, _) = helpers(&[("empty", "r.test", "not found")]);
        assert!(resolve(&json, "r.test", &run).ok().flatten().is_none(), "nothing stored: anonymous");
    }

    #[test]
    fn debug_never_shows_the_password() {
        let c = Credentials { username: "u".into(), password: "hunter2".to_string().into() };
        assert!(!format!("{c:?}").contains("hunter2"));
    }
}
