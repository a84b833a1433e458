//! Signing keys in the formats cosign users have: cosign's own encrypted
//! private key (`ENCRYPTED SIGSTORE PRIVATE KEY`: scrypt-derived key, NaCl
//! secretbox around a PKCS#8 EC P-256 key, as `cosign generate-key-pair`
//! writes it) and unencrypted PKCS#8 EC P-256 PEM; public keys as PKIX PEM.
//! Every primitive comes from RustCrypto (p256, scrypt, crypto_secretbox).

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use crypto_secretbox::aead::{Aead, KeyInit};
use p256::ecdsa::{SigningKey, VerifyingKey};
use p256::pkcs8::{DecodePrivateKey, DecodePublicKey, EncodePrivateKey, EncodePublicKey, LineEnding};
use rand_core::{OsRng, RngCore};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

/// The PEM label cosign writes (older versions: `ENCRYPTED COSIGN PRIVATE KEY`).
const ENCRYPTED_LABEL: &str = "ENCRYPTED SIGSTORE PRIVATE KEY";
const OLD_ENCRYPTED_LABEL: &str = "ENCRYPTED COSIGN PRIVATE KEY";
/// The scrypt cost of the keys cosign generates: N = 2^16, r = 8, p = 1.
const SCRYPT_LOG_N: u8 = 16;

/// Why a key cannot be used. Never holds key material or a password.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("signing key {source_name}: cannot read it: {message}")]
    Unreadable { source_name: String, message: String },
    #[error("signing key {source_name}: {what}")]
    Unsupported { source_name: String, what: String },
    #[error("signing key {source_name} is encrypted, and {password_env} is not set")]
    NoPassword { source_name: String, password_env: String },
    #[error("signing key {source_name}: the password in {password_env} does not open it")]
    WrongPassword { source_name: String, password_env: String },
    #[error("public key {source_name}: {what}")]
    PublicKey { source_name: String, what: String },
}

impl KeyError {
    pub fn hint(&self) -> String {
        match self {
            KeyError::Unreadable { .. } => {
                "set sign.key to a readable file, or env:NAME with the PEM text in NAME".into()
            }
            KeyError::Unsupported { .. } => {
                "use a cosign key (cosign generate-key-pair or relctl keygen) or an EC P-256 key in PKCS#8 PEM".into()
            }
            KeyError::NoPassword { password_env, .. } => {
                format!("set {password_env} to the key's password (sign.password_env names the variable)")
            }
            KeyError::WrongPassword { password_env, .. } => {
                format!("set {password_env} to the password the key was made with")
            }
            KeyError::PublicKey { .. } => {
                "pass the cosign.pub that belongs to the signing key (PEM, PUBLIC KEY)".into()
            }
        }
    }
}

/// cosign's encrypted key document (the PEM block's content).
#[derive(Serialize, Deserialize)]
struct Encrypted {
    kdf: Kdf,
    cipher: Cipher,
    ciphertext: String,
}

#[derive(Serialize, Deserialize)]
struct Kdf {
    name: String,
    params: ScryptParams,
    salt: String,
}

#[derive(Serialize, Deserialize)]
#[allow(non_snake_case)]
struct ScryptParams {
    N: u64,
    r: u32,
    p: u32,
}

#[derive(Serialize, Deserialize)]
struct Cipher {
    name: String,
    nonce: String,
}

/// The label and base64 body of the first PEM block of `text`.
fn pem_block(text: &str) -> Option<(String, Vec<u8>)> {
    let start = text.find("-----BEGIN ")?;
    let rest = &text[start + 11..];
    let label = rest.split("-----").next()?.to_string();
    let body = rest.get(label.len() + 5..)?;
    let end = body.find(&format!("-----END {label}-----"))?;
    let body: String = body[..end].chars().filter(|c| !c.is_whitespace()).collect();
    Some((label, B64.decode(body).ok()?))
}

/// Reads a private key from its PEM `text`; `password` opens cosign's encrypted form.
pub fn parse_private(
    text: &str,
    source_name: &str,
    password: Option<&SecretString>,
    password_env: &str,
) -> Result<SigningKey, KeyError> {
    let unsupported = |what: &str| KeyError::Unsupported { source_name: source_name.into(), what: what.into() };
    let (label, der) = pem_block(text).ok_or_else(|| unsupported("not a PEM key"))?;
    let der = match label.as_str() {
        ENCRYPTED_LABEL | OLD_ENCRYPTED_LABEL => {
            let password = password.ok_or_else(|| KeyError::NoPassword {
                source_name: source_name.into(),
                password_env: password_env.into(),
            })?;
            decrypt(&der, password).map_err(|e| match e {
                Decrypt::Format(what) => unsupported(&what),
                Decrypt::Password => {
                    KeyError::WrongPassword { source_name: source_name.into(), password_env: password_env.into() }
                }
            })?
        }
        "PRIVATE KEY" => der,
        "EC PRIVATE KEY" => {
            return p256::SecretKey::from_sec1_der(&der)
                .map(SigningKey::from)
                .map_err(|_| unsupported("an EC PRIVATE KEY that is not on P-256"));
        }
        other => return Err(unsupported(&format!("a PEM block `{other}`, not a private key"))),
    };
    SigningKey::from_pkcs8_der(&der).map_err(|_| unsupported("not an EC P-256 key (cosign signs with ECDSA P-256)"))
}

enum Decrypt {
    Format(String),
    Password,
}

fn decrypt(doc: &[u8], password: &SecretString) -> Result<Vec<u8>, Decrypt> {
    let doc: Encrypted =
        serde_json::from_slice(doc).map_err(|_| Decrypt::Format("an unreadable encrypted key".into()))?;
    if doc.kdf.name != "scrypt" || doc.cipher.name != "nacl/secretbox" {
        return Err(Decrypt::Format(format!(
            "encrypted with {} and {}, not scrypt and nacl/secretbox",
            doc.kdf.name, doc.cipher.name
        )));
    }
    let n = doc.kdf.params.N;
    if !n.is_power_of_two() || !(2..=1 << 20).contains(&n) {
        return Err(Decrypt::Format(format!("scrypt N = {n} is out of range")));
    }
    let bad = || Decrypt::Format("an encrypted key with a broken salt, nonce or ciphertext".into());
    let salt = B64.decode(&doc.kdf.salt).map_err(|_| bad())?;
    let nonce = B64.decode(&doc.cipher.nonce).map_err(|_| bad())?;
    let ciphertext = B64.decode(&doc.ciphertext).map_err(|_| bad())?;
    if nonce.len() != 24 {
        return Err(bad());
    }
    let key = derive(password, &salt, n.trailing_zeros() as u8, doc.kdf.params.r, doc.kdf.params.p)
        .ok_or_else(|| Decrypt::Format("scrypt parameters out of range".into()))?;
    let cipher = crypto_secretbox::XSalsa20Poly1305::new(&key.into());
    cipher.decrypt(nonce.as_slice().into(), ciphertext.as_slice()).map_err(|_| Decrypt::Password)
}

fn derive(password: &SecretString, salt: &[u8], log_n: u8, r: u32, p: u32) -> Option<[u8; 32]> {
    let params = scrypt::Params::new(log_n, r, p, 32).ok()?;
    let mut key = [0u8; 32];
    scrypt::scrypt(password.expose_secret().as_bytes(), salt, &params, &mut key).ok()?;
    Some(key)
}

/// A new key pair in cosign's format: the encrypted private key's PEM and the public key's PEM.
pub fn generate(password: &SecretString) -> (String, String) {
    let key = SigningKey::random(&mut OsRng);
    let der = key.to_pkcs8_der().expect("a P-256 key encodes");
    let mut salt = [0u8; 32];
    let mut nonce = [0u8; 24];
    OsRng.fill_bytes(&mut salt);
    OsRng.fill_bytes(&mut nonce);
    let sealing = derive(password, &salt, SCRYPT_LOG_N, 8, 1).expect("cosign's scrypt parameters are valid");
    let cipher = crypto_secretbox::XSalsa20Poly1305::new(&sealing.into());
    let ciphertext = cipher.encrypt(nonce.as_slice().into(), der.as_bytes()).expect("secretbox seals");
    let doc = Encrypted {
        kdf: Kdf {
            name: "scrypt".into(),
            params: ScryptParams { N: 1 << SCRYPT_LOG_N, r: 8, p: 1 },
            salt: B64.encode(salt),
        },
        cipher: Cipher { name: "nacl/secretbox".into(), nonce: B64.encode(nonce) },
        ciphertext: B64.encode(ciphertext),
    };
    let body = serde_json::to_vec(&doc).expect("serialises");
    (pem(ENCRYPTED_LABEL, &body), public_pem(key.verifying_key()))
}

fn pem(label: &str, der: &[u8]) -> String {
    let b64 = B64.encode(der);
    let lines: Vec<&str> = b64.as_bytes().chunks(64).map(|c| std::str::from_utf8(c).unwrap_or_default()).collect();
    format!("-----BEGIN {label}-----\n{}\n-----END {label}-----\n", lines.join("\n"))
}

/// The public key as PKIX PEM (`PUBLIC KEY`), as cosign.pub holds it.
pub fn public_pem(key: &VerifyingKey) -> String {
    key.to_public_key_pem(LineEnding::LF).expect("a P-256 key encodes")
}

/// Reads a public key (cosign.pub).
pub fn parse_public(text: &str, source_name: &str) -> Result<VerifyingKey, KeyError> {
    VerifyingKey::from_public_key_pem(text.trim()).map_err(|_| KeyError::PublicKey {
        source_name: source_name.into(),
        what: "not an EC P-256 public key in PEM".into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret(s: &str) -> SecretString {
        s.to_string().into()
    }

    #[test]
    fn a_generated_key_opens_with_its_password_only() {
        let (private, public) = generate(&secret("correct horse"));
        assert!(private.starts_with("-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\n"), "{private}");
        let key = parse_private(&private, "cosign.key", Some(&secret("correct horse")), "COSIGN_PASSWORD").unwrap();
        assert_eq!(public_pem(key.verifying_key()), public);
        assert_eq!(parse_public(&public, "cosign.pub").unwrap(), *key.verifying_key());
        let wrong = parse_private(&private, "cosign.key", Some(&secret("nope")), "COSIGN_PASSWORD").unwrap_err();
        assert!(matches!(wrong, KeyError::WrongPassword { .. }), "{wrong}");
        let none = parse_private(&private, "cosign.key", None, "COSIGN_PASSWORD").unwrap_err();
        assert!(none.to_string().contains("COSIGN_PASSWORD is not set"), "{none}");
    }

    #[test]
    fn unencrypted_pkcs8_and_sec1_keys_are_read_and_other_keys_are_named() {
        let key = SigningKey::random(&mut OsRng);
        let pkcs8 = key.to_pkcs8_pem(LineEnding::LF).unwrap();
        assert_eq!(parse_private(&pkcs8, "k", None, "P").unwrap(), key);
        let sec1 = pem("EC PRIVATE KEY", &p256::SecretKey::from(&key).to_sec1_der().unwrap());
        assert_eq!(parse_private(&sec1, "k", None, "P").unwrap(), key);
        for (text, says) in [
            ("garbage", "not a PEM key"),
            ("-----BEGIN X-----END X-----", "not a PEM key"),
            ("-----BEGIN X", "not a PEM key"),
            ("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", "not a private key"),
            ("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n", "not an EC P-256 key"),
        ] {
            let err = parse_private(text, "k", None, "P").unwrap_err();
            assert!(err.to_string().contains(says), "{err}");
        }
    }
}
