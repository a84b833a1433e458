//! Who may read `relctl serve`'s dashboard (`/` and `/api/*`): anyone on a
//! loopback listener without a token; else only with `RELCTL_DASHBOARD_TOKEN`
//! as a bearer token or a basic-auth password (any user name), unless
//! `--public-dashboard` says the world may read it. The token is compared in
//! constant time, by its SHA-256 so its length is not told either.

use std::net::SocketAddr;

use axum::http::{HeaderMap, header};
use base64::Engine as _;
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// The environment variable that holds the dashboard's token.
pub const TOKEN_ENV: &str = "RELCTL_DASHBOARD_TOKEN";

/// `serve` on a non-loopback address without a token or `--public-dashboard` (exit 2).
#[derive(Debug, thiserror::Error)]
#[error(
    "relctl serve would show its dashboard (release tags, commits, errors) to anyone who reaches {listen}: {TOKEN_ENV} is not set"
)]
pub struct PublicDashboard {
    pub listen: SocketAddr,
}

impl PublicDashboard {
    pub fn hint(&self) -> String {
        format!(
            "set {TOKEN_ENV} to a long random string (then / and /api/status ask for it as a bearer token or basic-auth password), pass --public-dashboard to show it to everyone, or listen on 127.0.0.1:{}",
            self.listen.port()
        )
    }
}

/// Whether serving on `listen` with `token` (or none) is allowed: a token
/// protects the dashboard anywhere; without one only a loopback address, or
/// `public` (`--public-dashboard`), will do.
pub fn check_listen(listen: SocketAddr, token: Option<&SecretString>, public: bool) -> Result<(), PublicDashboard> {
    if token.is_some() || public || listen.ip().is_loopback() {
        return Ok(());
    }
    Err(PublicDashboard { listen })
}

fn sha256(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

/// The secret a request's `Authorization` header offers: a bearer token, or a basic-auth password.
fn offered(headers: &HeaderMap) -> Option<Vec<u8>> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?.trim();
    let (scheme, rest) = value.split_once(' ')?;
    let rest = rest.trim();
    if scheme.eq_ignore_ascii_case("bearer") {
        return Some(rest.as_bytes().to_vec());
    }
    if scheme.eq_ignore_ascii_case("basic") {
        let decoded = base64::engine::general_purpose::STANDARD.decode(rest).ok()?;
        let colon = decoded.iter().position(|b| *b == b':')?;
        return Some(decoded[colon + 1..].to_vec());
    }
    None
}

/// Whether `headers` carry `token`.
pub fn authorized(headers: &HeaderMap, token: &SecretString) -> bool {
    let Some(given) = offered(headers) else { return false };
    let want = sha256(token.expose_secret().as_bytes());
    bool::from(sha256(&given).ct_eq(&want))
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    fn with(auth: Option<&str>) -> HeaderMap {
        let mut h = HeaderMap::new();
        if let Some(a) = auth {
            h.insert(header::AUTHORIZATION, HeaderValue::from_str(a).unwrap());
        }
        h
    }

    fn basic(user_pass: &str) -> String {
        format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(user_pass))
    }

    #[test]
    fn the_token_is_asked_as_bearer_or_basic_password() {
        let token = SecretString::from("s3cret-token");
        assert!(!authorized(&with(None), &token), "missing");
        assert!(!authorized(&with(Some("Bearer wrong")), &token), "wrong");
        assert!(!authorized(&with(Some("Bearer s3cret-token-and-more")), &token), "longer");
        assert!(!authorized(&with(Some("Bearer s3cret")), &token), "prefix");
        assert!(!authorized(&with(Some("Bearer ")), &token), "empty");
        assert!(!authorized(&with(Some("Token s3cret-token")), &token), "unknown scheme");
        assert!(!authorized(&with(Some(&basic("s3cret-token"))), &token), "no colon: a user name only");
        assert!(!authorized(&with(Some("Basic %%%")), &token), "not base64");
        assert!(authorized(&with(Some("Bearer s3cret-token")), &token), "right bearer");
        assert!(authorized(&with(Some("bearer  s3cret-token ")), &token), "scheme in any case");
        assert!(authorized(&with(Some(&basic("anyone:s3cret-token"))), &token), "right basic password");
        assert!(authorized(&with(Some(&basic(":s3cret-token"))), &token), "empty user name");
        assert!(!authorized(&with(Some(&basic("s3cret-token:x"))), &token), "the user name is not the password");
    }

    #[test]
    fn a_non_loopback_listener_needs_a_token_or_public() {
        let token = SecretString::from("t");
        let at = |s: &str| s.parse::<SocketAddr>().unwrap();
        assert!(check_listen(at("127.0.0.1:8080"), None, false).is_ok());
        assert!(check_listen(at("[::1]:8080"), None, false).is_ok());
        assert!(check_listen(at("127.3.4.5:8080"), None, false).is_ok());
        let refused = check_listen(at("0.0.0.0:8080"), None, false).unwrap_err();
        assert!(refused.to_string().contains("0.0.0.0:8080") && refused.to_string().contains(TOKEN_ENV), "{refused}");
        assert!(refused.hint().contains("--public-dashboard"), "{}", refused.hint());
        assert!(check_listen(at("[::]:8080"), None, false).is_err());
        assert!(check_listen(at("192.0.2.7:8080"), None, false).is_err());
        assert!(check_listen(at("0.0.0.0:8080"), Some(&token), false).is_ok());
        assert!(check_listen(at("0.0.0.0:8080"), None, true).is_ok());
    }
}
