//! ssh remotes (`git@host:owner/repo.git`, `ssh://user@host:port/path`):
//! the key relctl authenticates with (ssh-agent when `SSH_AUTH_SOCK` is set,
//! else `RELCTL_GIT_SSH_KEY` with `RELCTL_GIT_SSH_PASSPHRASE`, else
//! `~/.ssh/id_ed25519` or `id_rsa`), and the host key check against
//! `RELCTL_GIT_KNOWN_HOSTS` and `~/.ssh/known_hosts`: an unknown or changed
//! host key refuses the connection with its fingerprint, never accepts it.

use std::path::PathBuf;

use base64::Engine as _;
use git2::{Cred, CredentialType};

/// Whether `url` reaches its remote over ssh.
pub fn is_ssh(url: &str) -> bool {
    url.starts_with("ssh://") || url.starts_with("git+ssh://") || scp_like(url).is_some()
}

/// `user@host:path` (no scheme, a `:` before any `/`): (host, path).
fn scp_like(url: &str) -> Option<(&str, &str)> {
    if url.contains("://") {
        return None;
    }
    let (host, path) = url.split_once(':')?;
    (!host.contains('/') && !host.is_empty()).then_some((host, path))
}

/// The host and port of an ssh remote URL (port 22 when not given).
pub fn host_port(url: &str) -> Option<(String, u16)> {
    let authority = if let Some(rest) = url.strip_prefix("ssh://").or_else(|| url.strip_prefix("git+ssh://")) {
        rest.split('/').next()?
    } else {
        scp_like(url)?.0
    };
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    if let Some(v6) = host_port.strip_prefix('[') {
        let (host, rest) = v6.split_once(']')?;
        let port = rest.strip_prefix(':').map_or(Some(22), |p| p.parse().ok())?;
        return Some((host.to_string(), port));
    }
    match host_port.rsplit_once(':') {
        Some((host, port)) if url.contains("://") => Some((host.to_string(), port.parse().ok()?)),
        _ => Some((host_port.to_string(), 22)),
    }
}

/// The ssh credential for attempt `n` (1-based): the agent first when there
/// is one, then the key file. `None` when nothing is left to try.
pub fn credential(n: u32, username: Option<&str>, allowed: CredentialType) -> Option<Result<Cred, git2::Error>> {
    if !allowed.contains(CredentialType::SSH_KEY) {
        return None;
    }
    let user = username.unwrap_or("git");
    let agent = std::env::var_os("SSH_AUTH_SOCK").is_some_and(|s| !s.is_empty());
    let key = key_file();
    let mut options: Vec<Box<dyn Fn() -> Result<Cred, git2::Error>>> = Vec::new();
    if agent {
        options.push(Box::new(move || Cred::ssh_key_from_agent(user)));
    }
    if let Some(path) = key {
        let passphrase = crate::secrets::var("RELCTL_GIT_SSH_PASSPHRASE");
        options.push(Box::new(move || Cred::ssh_key(user, None, &path, passphrase.as_deref())));
    }
    options.get(n.saturating_sub(1) as usize).map(|f| f())
}

/// `RELCTL_GIT_SSH_KEY`, else the first of `~/.ssh/id_ed25519`, `~/.ssh/id_rsa` that exists.
fn key_file() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("RELCTL_GIT_SSH_KEY").filter(|p| !p.is_empty()) {
        return Some(PathBuf::from(p));
    }
    let ssh = PathBuf::from(std::env::var_os("HOME")?).join(".ssh");
    ["id_ed25519", "id_rsa"].iter().map(|k| ssh.join(k)).find(|p| p.is_file())
}

/// `SHA256:<base64>`, as `ssh-keygen -l` prints a key's fingerprint.
pub fn fingerprint(sha256: &[u8]) -> String {
    format!("SHA256:{}", base64::engine::general_purpose::STANDARD_NO_PAD.encode(sha256))
}

/// What the known_hosts files say about a host's key.
#[derive(Debug, PartialEq, Eq)]
pub enum Known {
    Match,
    /// The host is listed, with other keys: the key changed (or is an impostor's).
    Changed {
        file: String,
    },
    Unknown,
}

/// The known_hosts files relctl reads: `RELCTL_GIT_KNOWN_HOSTS`, then `~/.ssh/known_hosts`.
pub fn known_hosts_files() -> Vec<PathBuf> {
    let mut files = Vec::new();
    if let Some(p) = std::env::var_os("RELCTL_GIT_KNOWN_HOSTS").filter(|p| !p.is_empty()) {
        files.push(PathBuf::from(p));
    }
    if let Some(home) = std::env::var_os("HOME") {
        files.push(PathBuf::from(home).join(".ssh/known_hosts"));
    }
    files
}

/// Looks `key` (the raw public key blob) up for `host`:`port` in `files`.
pub fn check(files: &[PathBuf], host: &str, port: u16, key: &[u8]) -> Known {
    let name = if port == 22 { host.to_string() } else { format!("[{host}]:{port}") };
    let mut changed = None;
    for file in files {
        let Ok(text) = std::fs::read_to_string(file) else { continue };
        for line in text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')) {
            let mut fields = line.split_whitespace();
            let hosts = fields.next().unwrap_or("");
            if hosts.starts_with('@') {
                // @cert-authority / @revoked: not host keys relctl can match.
                continue;
            }
            let (Some(_kind), Some(blob)) = (fields.next(), fields.next()) else { continue };
            if !hosts.split(',').any(|pattern| names_host(pattern, &name)) {
                continue;
            }
            match base64::engine::general_purpose::STANDARD.decode(blob) {
                Ok(listed) if listed == key => return Known::Match,
                _ => changed = changed.or_else(|| Some(file.display().to_string())),
            }
        }
    }
    changed.map_or(Known::Unknown, |file| Known::Changed { file })
}

/// Whether a known_hosts host field names `name` (plain, or hashed `|1|salt|hash`).
fn names_host(pattern: &str, name: &str) -> bool {
    let Some(hashed) = pattern.strip_prefix("|1|") else { return pattern == name };
    let Some((salt, hash)) = hashed.split_once('|') else { return false };
    let b64 = &base64::engine::general_purpose::STANDARD;
    let (Ok(salt), Ok(hash)) = (b64.decode(salt), b64.decode(hash)) else { return false };
    hmac_sha1(&salt, name.as_bytes()).is_some_and(|mac| mac == hash)
}

fn hmac_sha1(key: &[u8], data: &[u8]) -> Option<Vec<u8>> {
    let pkey = openssl::pkey::PKey::hmac(key).ok()?;
    let mut signer = openssl::sign::Signer::new(openssl::hash::MessageDigest::sha1(), &pkey).ok()?;
    signer.update(data).ok()?;
    signer.sign_to_vec().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ssh_urls_and_their_host_and_port() {
        let cases = [
            ("git@github.com:acme/app.git", Some(("github.com", 22))),
            ("ssh://git@github.com/acme/app.git", Some(("github.com", 22))),
            ("ssh://root@127.0.0.1:2222/srv/app.git", Some(("127.0.0.1", 2222))),
            ("ssh://git@[::1]:2222/app.git", Some(("::1", 2222))),
            ("https://github.com/acme/app.git", None),
            ("/srv/app.git", None),
        ];
        for (url, want) in cases {
            let got = host_port(url).filter(|_| is_ssh(url));
            assert_eq!(got.as_ref().map(|(h, p)| (h.as_str(), *p)), want, "{url}");
        }
    }

    #[test]
    fn known_hosts_match_plain_hashed_and_ported_entries_and_tell_changed_from_unknown() {
        let dir = tempfile::tempdir().unwrap();
        let key = b"the host key blob".to_vec();
        let other = b"another key".to_vec();
        let b64 = |k: &[u8]| base64::engine::general_purpose::STANDARD.encode(k);
        let salt = b"0123456789abcdefghij";
        let hashed = format!("|1|{}|{}", b64(salt), b64(&hmac_sha1(salt, b"hashed.example").unwrap()));
        let text = format!(
            "# comment\nplain.example ssh-ed25519 {}\n[ported.example]:2222 ssh-ed25519 {}\n{hashed} ssh-ed25519 {}\nchanged.example ssh-ed25519 {}\n",
            b64(&key),
            b64(&key),
            b64(&key),
            b64(&other)
        );
        let file = dir.path().join("known_hosts");
        std::fs::write(&file, text).unwrap();
        let files = [file.clone()];
        assert_eq!(check(&files, "plain.example", 22, &key), Known::Match);
        assert_eq!(check(&files, "ported.example", 2222, &key), Known::Match);
        assert_eq!(check(&files, "ported.example", 22, &key), Known::Unknown, "another port is another host");
        assert_eq!(check(&files, "hashed.example", 22, &key), Known::Match);
        assert_eq!(check(&files, "changed.example", 22, &key), Known::Changed { file: file.display().to_string() });
        assert_eq!(check(&files, "nowhere.example", 22, &key), Known::Unknown);
        assert_eq!(fingerprint(&[0u8; 32]), "SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA");
    }
}
