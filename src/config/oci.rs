//! The OCI Distribution spec's limits on what relctl pushes: tags, repository
//! path components, registry hosts and the length of `registry/repository`.
//! Config validation refuses anything outside them, and tag rendering checks
//! its output against them, so relctl never makes an invalid reference.

use std::sync::LazyLock;

use regex::Regex;

/// Longest image tag the spec allows.
pub const MAX_TAG_LEN: usize = 128;

/// Longest `registry/repository` Docker's reference grammar allows.
pub const MAX_NAME_LEN: usize = 255;

// The Distribution spec's path component grammar.
static COMPONENT: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"^[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*$").unwrap());

/// `[A-Za-z0-9_][A-Za-z0-9._-]{0,127}`: the spec's tag grammar.
pub fn is_tag(s: &str) -> bool {
    let mut chars = s.chars();
    let Some(first) = chars.next() else { return false };
    s.len() <= MAX_TAG_LEN
        && (first.is_ascii_alphanumeric() || first == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

/// One `/`-separated component of a repository name, e.g. `xingrin-server`.
pub fn is_path_component(s: &str) -> bool {
    COMPONENT.is_match(s)
}

/// A repository path under the registry: components joined by `/`.
pub fn is_repository(s: &str) -> bool {
    s.split('/').all(is_path_component)
}

/// `host[:port]` as Docker's reference grammar has it: a domain name
/// (`docker.io`, `localhost`, `127.0.0.1`) or a bracketed IPv6 address
/// (`[::1]`, `[2001:db8::1]`), with an optional port 1..65535. No scheme, no path.
pub fn is_registry_host(s: &str) -> bool {
    let (host, port) = if let Some(rest) = s.strip_prefix('[') {
        let Some((addr, after)) = rest.split_once(']') else { return false };
        // The grammar's `[a-fA-F0-9:]+`, and an address std can read (one `::`, eight groups at most).
        if !addr.chars().all(|c| c.is_ascii_hexdigit() || c == ':') || addr.parse::<std::net::Ipv6Addr>().is_err() {
            return false;
        }
        match after {
            "" => ("", None),
            _ => match after.strip_prefix(':') {
                Some(port) => ("", Some(port)),
                None => return false,
            },
        }
    } else {
        match s.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (s, None),
        }
    };
    let port_ok = port.is_none_or(|p| {
        !p.is_empty() && p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit()) && p.parse::<u16>().is_ok_and(|n| n > 0)
    });
    let domain_ok = s.starts_with('[')
        || (!host.is_empty()
            && host.split('.').all(|label| {
                !label.is_empty()
                    && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                    && !label.starts_with('-')
                    && !label.ends_with('-')
            }));
    port_ok && domain_ok
}

/// The names Docker Hub goes by: in references (`docker.io`), in logins
/// (`index.docker.io`) and as its API host (`registry-1.docker.io`).
pub fn is_docker_hub(registry: &str) -> bool {
    matches!(registry, "docker.io" | "index.docker.io" | "registry-1.docker.io")
}

/// An image reference: `[host[:port]/]repository[:tag][@sha256:<64 hex>]`.
pub fn is_reference(s: &str) -> bool {
    let (name, digest) = match s.split_once('@') {
        Some((name, digest)) => (name, Some(digest)),
        None => (s, None),
    };
    let digest_ok = digest.is_none_or(|d| {
        d.strip_prefix("sha256:").is_some_and(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()))
    });
    // A tag follows the last `:` after the last `/` (a `:` before it is a port).
    let last = name.rsplit('/').next().unwrap_or(name);
    let (name, tag) = match last.rsplit_once(':') {
        Some((_, tag)) => (&name[..name.len() - tag.len() - 1], Some(tag)),
        None => (name, None),
    };
    let path = match name.split_once('/') {
        Some((host, rest)) if host.contains(['.', ':', '[']) || host == "localhost" => {
            if !is_registry_host(host) {
                return false;
            }
            rest
        }
        _ => name,
    };
    digest_ok && tag.is_none_or(is_tag) && !path.is_empty() && is_repository(path) && name.len() <= MAX_NAME_LEN
}

/// `registry/repository` fits the reference grammar's length limit.
pub fn name_fits(registry: &str, repository: &str) -> bool {
    registry.len() + 1 + repository.len() <= MAX_NAME_LEN
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references() {
        let digest = format!("a/b@sha256:{}", "0".repeat(64));
        let cases: &[(&str, bool)] = &[
            ("busybox", true),
            ("org/app:v1", true),
            ("127.0.0.1:5000/org/app:buildcache", true),
            ("localhost/app", true),
            ("[::1]:5000/app:1", true),
            (&digest, true),
            ("", false),
            ("Org/App:v1", false),
            ("org/app:", false),
            ("org/app:bad tag", false),
            ("a/b@sha256:abc", false),
            ("host:99999/app", false),
            ("https://example.com/app", false),
        ];
        for (s, ok) in cases {
            assert_eq!(is_reference(s), *ok, "{s}");
        }
    }

    #[test]
    fn tags() {
        let long = "a".repeat(128);
        let too_long = "a".repeat(129);
        let cases: &[(&str, bool)] = &[
            ("latest", true),
            ("v1.2.3-rc.1", true),
            ("_x", true),
            ("1.2.3-build.7", true),
            (&long, true),
            (&too_long, false),
            ("", false),
            (".x", false),
            ("-x", false),
            ("v1.2.3+build", false),
            ("a/b", false),
            ("é", false),
            ("a b", false),
        ];
        for (tag, want) in cases {
            assert_eq!(is_tag(tag), *want, "{tag:?}");
        }
    }

    #[test]
    fn registry_hosts() {
        let cases = [
            ("docker.io", true),
            ("ghcr.io", true),
            ("localhost", true),
            ("localhost:5000", true),
            ("127.0.0.1:5000", true),
            ("Registry.Example.COM", true),
            ("my-registry.local:65535", true),
            ("[::1]", true),
            ("[::1]:5000", true),
            ("[2001:db8::1]:5000", true),
            ("[::ffff:127.0.0.1]:5000", false), // dotted IPv4 tails are outside the grammar
            ("[::1:2:3:4:5:6:7:8]", false),
            ("", false),
            ("https://x.io", false),
            ("x.io/path", false),
            ("x..io", false),
            ("-x.io", false),
            ("x-.io", false),
            ("x.io:", false),
            ("x.io:0", false),
            ("x.io:65536", false),
            ("x.io:99999", false),
            ("x.io:+80", false),
            ("[::1", false),
            ("[]:5000", false),
            ("[::1]5000", false),
            ("[::g]:5000", false),
            ("[fe80::1%eth0]:5000", false),
            ("[2001:db8::1]:", false),
            ("::1:5000", false),
            ("x.io:5000:5000", false),
            ("é.io", false),
        ];
        for (host, want) in cases {
            assert_eq!(is_registry_host(host), want, "{host:?}");
        }
    }

    #[test]
    fn repositories() {
        let cases = [
            ("yyhuni/xingrin-server", true),
            ("a", true),
            ("a/b/c", true),
            ("a__b", true),
            ("a---b", true),
            ("a.b_c", true),
            ("", false),
            ("a//b", false),
            ("/a", false),
            ("a/", false),
            ("A", false),
            ("a___b", false),
            ("a..b", false),
            ("-a", false),
        ];
        for (repo, want) in cases {
            assert_eq!(is_repository(repo), want, "{repo:?}");
        }
        assert!(name_fits("docker.io", &"a".repeat(245)));
        assert!(!name_fits("docker.io", &"a".repeat(246)));
    }
}
