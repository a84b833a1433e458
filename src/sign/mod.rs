//! Signed releases: the signing key (`key`), cosign's registry layout of
//! signatures and attestations (`cosign`), and the SLSA provenance statement
//! of an image (`provenance`). The executor signs each image's digest before
//! any version tag points at it, so "published" includes "signed".
//!
//! Keyless signing (a Fulcio certificate from a CI's OIDC token, a Rekor
//! entry) needs the internet and is not here; it would be another
//! [`ArtifactSigner`] beside the key-based [`Signer`].

pub mod cosign;
pub mod key;
pub mod provenance;

use p256::ecdsa::SigningKey;
use secrecy::SecretString;

use crate::config::{KeySource, SignConfig};
pub use key::KeyError;

/// What signs a release's artifacts; the executor knows only this. A key
/// ([`Signer`]) today; a keyless signer would put its certificate beside the
/// signature in the same artifact.
pub trait ArtifactSigner: Sync {
    /// The signature artifact of `digest` in `registry/repository`.
    fn signature(&self, registry: &str, repository: &str, digest: &str) -> cosign::Artifact;
    /// The attestation artifact of `digest` carrying `statement`.
    fn attestation(&self, digest: &str, statement: &serde_json::Value) -> cosign::Artifact;
}

/// A loaded signing key and what it signs.
pub struct Signer {
    key: SigningKey,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signer").finish_non_exhaustive()
    }
}

/// The key's password: the variable `name`, else the file `name_FILE` names
/// (one trailing newline dropped), as for relctl's other secrets.
fn password(name: &str) -> Result<Option<String>, KeyError> {
    if let Ok(value) = std::env::var(name) {
        return Ok(Some(value));
    }
    let Some(path) = std::env::var_os(format!("{name}_FILE")).filter(|p| !p.is_empty()) else { return Ok(None) };
    let text = std::fs::read_to_string(&path).map_err(|e| KeyError::Unreadable {
        source_name: format!("{name}_FILE ({})", std::path::Path::new(&path).display()),
        message: e.kind().to_string(),
    })?;
    Ok(Some(text.strip_suffix('\n').unwrap_or(&text).to_string()))
}

impl Signer {
    /// Reads the key `sign:` names, opening it with the password in
    /// `sign.password_env`; every failure is bad input, found before any build.
    pub fn load(cfg: &SignConfig) -> Result<Self, KeyError> {
        let (text, name) = match &cfg.key {
            KeySource::File(path) => {
                let name = path.display().to_string();
                let text = std::fs::read_to_string(path)
                    .map_err(|e| KeyError::Unreadable { source_name: name.clone(), message: e.kind().to_string() })?;
                (text, name)
            }
            KeySource::Env(var) => {
                let name = format!("env:{var}");
                let text = std::env::var(var).map_err(|_| KeyError::Unreadable {
                    source_name: name.clone(),
                    message: format!("{var} is not set"),
                })?;
                (text, name)
            }
        };
        let password: Option<SecretString> = password(&cfg.password_env)?.map(SecretString::from);
        let key = key::parse_private(&text, &name, password.as_ref(), &cfg.password_env)?;
        Ok(Self { key })
    }

    /// A signer over `key`, for tests.
    pub fn from_key(key: SigningKey) -> Self {
        Self { key }
    }
}

impl ArtifactSigner for Signer {
    fn signature(&self, registry: &str, repository: &str, digest: &str) -> cosign::Artifact {
        cosign::signature(&self.key, &cosign::docker_reference(registry, repository), digest)
    }

    fn attestation(&self, digest: &str, statement: &serde_json::Value) -> cosign::Artifact {
        cosign::attestation(&self.key, digest, statement)
    }
}
