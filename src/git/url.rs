//! URLs as relctl shows them. [`redact_url`] is for every remote, registry
//! or realm URL that reaches an error or a log: no user, password or token
//! survives it. [`public_url`] is for the image's `org.opencontainers.image.source`
//! label: a web address of the repository, never a path on this machine.
//!
//! Both read URLs the way git does: `scheme://…`, `transport::address`
//! (remote helpers), scp-like `[user@]host:path`, and everything else a path.

/// What a query or fragment parameter's value is replaced with.
const REDACTED: &str = "REDACTED";

/// `url` without credentials, for errors and logs:
///
/// - userinfo (`user:password@`, a token as user name) is removed, also when
///   it is malformed, e.g. a password holding an unencoded `/`, `?`, `#` or
///   `@` (`https://user:pa/ss@host/o/r.git` becomes `https://host/o/r.git`):
///   everything up to the last `@` after `scheme://` counts as userinfo. A URL
///   with an `@` in its path therefore loses more than its userinfo; relctl's
///   URLs (git remotes, registries, token realms) do not have one;
/// - the values of query and fragment parameters that hold secrets
///   (`access_token`, `token`, `private_token`, `auth`, `password`, `sig`, …)
///   become `REDACTED`;
/// - the scp-like `user@host:path` loses `user@`;
/// - a path on this machine (or `file:///path`) is returned as it is.
///
/// Never panics; the result never holds the removed text.
pub fn redact_url(url: &str) -> String {
    match shape(url) {
        Shape::Helper { transport, address } => format!("{transport}::{}", redact_url(address)),
        Shape::Scheme { scheme, rest } => {
            // `file:///path` has no authority, so no userinfo, and its path may hold `@`.
            let rest = if scheme.eq_ignore_ascii_case("file") && rest.starts_with('/') {
                rest
            } else {
                rest.rfind('@').map_or(rest, |at| &rest[at + 1..])
            };
            format!("{scheme}://{}", redact_params(rest))
        }
        Shape::Scp => {
            let rest = url.rfind('@').map_or(url, |at| &url[at + 1..]);
            redact_params(rest)
        }
        Shape::Local => url.to_string(),
    }
}

/// `text` (an error message from libgit2, an HTTP client, …) with every
/// `scheme://…` URL in it passed through [`redact_url`]. A URL ends at
/// whitespace or at a quote, backtick or angle bracket.
pub fn redact_urls_in(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(sep) = rest.find("://") {
        // The scheme: the run of scheme characters before `://`, starting with a letter.
        let before = &rest[..sep];
        let scheme_len = before
            .char_indices()
            .rev()
            .take_while(|(_, c)| c.is_ascii_alphanumeric() || matches!(c, '+' | '.' | '-'))
            .last()
            .map_or(0, |(i, _)| sep - i);
        let mut start = sep - scheme_len;
        while start < sep && !before.as_bytes()[start].is_ascii_alphabetic() {
            start += 1;
        }
        let mut end = rest[sep..]
            .find(|c: char| c.is_whitespace() || matches!(c, '"' | '\'' | '`' | '<' | '>'))
            .map_or(rest.len(), |i| sep + i);
        // Punctuation of the sentence around the URL, e.g. `(https://host/x): failed`.
        loop {
            let url = &rest[start..end];
            match url.chars().last() {
                Some('.' | ',' | ';' | ':' | '!') => end -= 1,
                Some(')') if url.matches('(').count() < url.matches(')').count() => end -= 1,
                Some(']') if url.matches('[').count() < url.matches(']').count() => end -= 1,
                _ => break,
            }
        }
        let end = end.max(sep + 3);
        out.push_str(&rest[..start]);
        if start == sep {
            // `://` without a scheme: redacted all the same.
            let after = &rest[sep + 3..end];
            out.push_str("://");
            out.push_str(&redact_params(after.rfind('@').map_or(after, |at| &after[at + 1..])));
        } else {
            out.push_str(&redact_url(&rest[start..end]));
        }
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
}

/// The repository's web address for the `org.opencontainers.image.source`
/// label: `https://host/owner/repo` without userinfo, port of ssh, query,
/// fragment or `.git`; ssh, git and scp-like remotes are spelled as https.
/// `None` when the remote is no such address: a path on this machine, a
/// `file://` URL, another transport (`ext::…`, custom schemes), or text that
/// is no URL (empty, whitespace or control characters, no host).
pub fn public_url(url: &str) -> Option<String> {
    let url = url.trim();
    let (scheme, host, path) = match shape(url) {
        Shape::Helper { address, .. } => return public_url(address),
        Shape::Scheme { scheme, rest } => {
            let scheme = scheme.to_ascii_lowercase();
            let web = match scheme.as_str() {
                "http" | "https" => true,
                "ssh" | "git" | "git+ssh" | "ssh+git" => false,
                _ => return None,
            };
            let rest = rest.rfind('@').map_or(rest, |at| &rest[at + 1..]);
            let rest = &rest[..rest.find(['?', '#']).unwrap_or(rest.len())];
            let (host, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
            let host = if web { host.to_string() } else { without_port(host).to_string() };
            (if web { scheme } else { "https".to_string() }, host, path.to_string())
        }
        Shape::Scp => {
            let (host, path) = match url.strip_prefix('[').and_then(|r| r.split_once("]:")) {
                // `[user@host:port]:path` or `[::1]:path`
                Some((inner, path)) => {
                    let inner = inner.rfind('@').map_or(inner, |at| &inner[at + 1..]);
                    let host = match inner.parse::<std::net::Ipv6Addr>() {
                        Ok(_) => format!("[{inner}]"),
                        Err(_) => without_port(inner).to_string(),
                    };
                    (host, path)
                }
                None => {
                    // Userinfo may hold `:` (`user:password@host:path`): drop it before finding the host.
                    let rest = url.rfind('@').map_or(url, |at| &url[at + 1..]);
                    let (host, path) = rest.split_once(':')?;
                    (host.to_string(), path)
                }
            };
            if path.contains('@') {
                return None;
            }
            // `?` and `#` are path characters to ssh, but not in the https address.
            let path = &path[..path.find(['?', '#']).unwrap_or(path.len())];
            ("https".to_string(), host, format!("/{}", path.trim_start_matches('/')))
        }
        Shape::Local => return None,
    };
    let host_ok = {
        let (name, port) = match host.strip_prefix('[').and_then(|h| h.split_once(']')) {
            Some((v6, rest)) => (v6.chars().all(|c| c.is_ascii_hexdigit() || c == ':') && !v6.is_empty(), rest),
            None => {
                let (name, port) = host.split_at(host.find(':').unwrap_or(host.len()));
                let ok =
                    !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'));
                (ok, port)
            }
        };
        let port_ok = port.is_empty()
            || port
                .strip_prefix(':')
                .is_some_and(|p| !p.is_empty() && p.len() <= 5 && p.chars().all(|c| c.is_ascii_digit()));
        name && port_ok
    };
    let mut path = path.trim_end_matches('/');
    while let Some(p) = path.strip_suffix(".git") {
        path = p.trim_end_matches('/');
    }
    let clean = |s: &str| !s.chars().any(|c| c.is_whitespace() || c.is_control());
    (host_ok && clean(path)).then(|| format!("{scheme}://{host}{path}"))
}

enum Shape<'a> {
    /// `transport::address`: a git remote helper.
    Helper { transport: &'a str, address: &'a str },
    /// `scheme://rest`.
    Scheme { scheme: &'a str, rest: &'a str },
    /// scp-like `[user@]host:path` (or `[user@host:port]:path`).
    Scp,
    /// A path on this machine.
    Local,
}

fn is_scheme(s: &str) -> bool {
    let mut chars = s.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '.' | '-'))
}

/// How git reads a remote URL (transport.c, connect.c).
fn shape(url: &str) -> Shape<'_> {
    if let Some((scheme, rest)) = url.split_once("://").filter(|(s, _)| is_scheme(s)) {
        return Shape::Scheme { scheme, rest };
    }
    if let Some((transport, address)) = url.split_once("::").filter(|(t, _)| is_scheme(t)) {
        return Shape::Helper { transport, address };
    }
    // git's url_is_local_not_ssh: a `:` with no `/` before it is scp-like,
    // except a drive letter (`C:\repo`, `C:/repo`).
    let colon = url.find(':');
    let slash = url.find('/');
    match colon {
        Some(c) if slash.is_none_or(|s| s > c) && !(c == 1 && url.as_bytes()[0].is_ascii_alphabetic()) => Shape::Scp,
        _ => Shape::Local,
    }
}

/// `host` without `:port`; an IPv6 address keeps its brackets.
fn without_port(host: &str) -> &str {
    if host.starts_with('[') {
        return host.find(']').map_or(host, |i| &host[..=i]);
    }
    host.split_once(':').map_or(host, |(h, _)| h)
}

/// `rest` (host, path, query, fragment) with secret parameter values redacted.
fn redact_params(rest: &str) -> String {
    let (before_fragment, fragment) = match rest.split_once('#') {
        Some((b, f)) => (b, Some(f)),
        None => (rest, None),
    };
    let mut out = match before_fragment.split_once('?') {
        Some((path, query)) => format!("{path}?{}", redact_pairs(query)),
        None => before_fragment.to_string(),
    };
    if let Some(f) = fragment {
        out.push('#');
        out.push_str(&redact_pairs(f));
    }
    out
}

fn redact_pairs(query: &str) -> String {
    let pairs: Vec<String> = query
        .split(['&', ';'])
        .map(|pair| match pair.split_once('=') {
            Some((key, _)) if is_secret_key(key) => format!("{key}={REDACTED}"),
            _ => pair.to_string(),
        })
        .collect();
    // Keep each pair's separator: rebuild from the original positions.
    let mut out = String::with_capacity(query.len());
    let mut seps = query.chars().filter(|c| matches!(c, '&' | ';'));
    for (i, p) in pairs.iter().enumerate() {
        if i > 0 {
            out.push(seps.next().unwrap_or('&'));
        }
        out.push_str(p);
    }
    out
}

/// Parameter names that carry credentials: tokens, passwords, signatures
/// (S3, GCS and Azure pre-signed URLs) and keys, percent-encoded or not.
fn is_secret_key(key: &str) -> bool {
    let key: String =
        percent_decode(key).chars().filter(|c| !matches!(c, '_' | '-' | '.')).flat_map(char::to_lowercase).collect();
    const PARTS: &[&str] =
        &["token", "secret", "password", "passwd", "signature", "credential", "auth", "apikey", "accesskey"];
    const NAMES: &[&str] = &["sig", "key", "code", "pass", "pwd", "jwt", "session"];
    PARTS.iter().any(|p| key.contains(p)) || NAMES.contains(&key.as_str())
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match (bytes[i], bytes.get(i + 1).copied().and_then(hex), bytes.get(i + 2).copied().and_then(hex)) {
            (b'%', Some(h), Some(l)) => {
                out.push((h * 16 + l) as u8);
                i += 3;
            }
            (b, _, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests;
