//! GitHub webhooks: the `X-Hub-Signature-256` header's format (checked before
//! any body is read), its HMAC-SHA256 check (constant time, done before
//! anything is parsed), and the reading of `push` / `create` events into
//! "reconcile this tag" or a reason to ignore them.

use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretString};
use sha2::Sha256;

/// A well-formed `X-Hub-Signature-256` value: `sha256=` and 64 hex digits.
/// Checked from the header alone, so a request without one is refused before
/// any of its body is read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signature([u8; 32]);

impl Signature {
    /// `None` unless `header` is exactly `sha256=` followed by 64 hex digits (either case).
    pub fn parse(header: &[u8]) -> Option<Self> {
        let hex = header.strip_prefix(b"sha256=")?;
        if hex.len() != 64 {
            return None;
        }
        let mut out = [0u8; 32];
        for (byte, pair) in out.iter_mut().zip(hex.chunks_exact(2)) {
            *byte = hex_digit(pair[0])? << 4 | hex_digit(pair[1])?;
        }
        Some(Self(out))
    }
}

fn hex_digit(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// Whether `signature` is the HMAC-SHA256 under `secret` of the body made of `parts`.
pub fn verify<'a>(secret: &SecretString, parts: impl IntoIterator<Item = &'a [u8]>, signature: &Signature) -> bool {
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret.expose_secret().as_bytes()) else {
        return false; // unreachable: HMAC takes keys of any length
    };
    for part in parts {
        mac.update(part);
    }
    // verify_slice compares in constant time.
    mac.verify_slice(&signature.0).is_ok()
}

/// What a verified event asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A release tag was pushed or created.
    Tag(String),
    /// Nothing to do, and why (for the log).
    Ignored(String),
}

/// Reads a verified event. `kind` is the `X-GitHub-Event` header.
pub fn classify(kind: &str, body: &[u8], tag_prefix: &str) -> Event {
    let Ok(json) = serde_json::from_slice::<serde_json::Value>(body) else {
        return Event::Ignored(format!("{kind} event body is not JSON"));
    };
    let str_at = |key: &str| json.get(key).and_then(|v| v.as_str()).unwrap_or("");
    match kind {
        "push" => {
            let r = str_at("ref");
            if json.get("deleted").and_then(|d| d.as_bool()) == Some(true) {
                return Event::Ignored(format!("push deletes {r}"));
            }
            match r.strip_prefix("refs/tags/") {
                Some(tag) if tag.starts_with(tag_prefix) => Event::Tag(tag.to_string()),
                Some(tag) => Event::Ignored(format!("tag {tag} does not start with {tag_prefix}")),
                None => {
                    let own = json
                        .pointer("/head_commit/message")
                        .and_then(|m| m.as_str())
                        .is_some_and(|m| m.contains("Release-By: relctl"));
                    if own {
                        Event::Ignored(format!("push to {r} is relctl's own VERSION commit"))
                    } else {
                        Event::Ignored(format!("push to {r} is not a tag push"))
                    }
                }
            }
        }
        "create" if str_at("ref_type") == "tag" => {
            let tag = str_at("ref");
            if tag.starts_with(tag_prefix) {
                Event::Tag(tag.to_string())
            } else {
                Event::Ignored(format!("tag {tag} does not start with {tag_prefix}"))
            }
        }
        "ping" => Event::Ignored("ping".into()),
        other => Event::Ignored(format!("{other} events do not trigger releases")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret(s: &str) -> SecretString {
        s.to_string().into()
    }

    #[test]
    fn github_documented_test_vector() {
        let s = secret("It's a Secret to Everybody");
        let sig = Signature::parse(b"sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17").unwrap();
        assert!(verify(&s, [&b"Hello, World!"[..]], &sig));
        assert!(verify(&s, [&b"Hello, "[..], b"", b"World!"], &sig), "the same body in parts");
        assert!(!verify(&s, [&b"Hello, World?"[..]], &sig), "one changed byte fails");
        assert!(!verify(&secret("another secret"), [&b"Hello, World!"[..]], &sig));
        let upper = Signature::parse(b"sha256=757107EA0EB2509FC211221CCE984B8A37570B6D7586C22C46F4379C8B043E17");
        assert_eq!(upper, Some(sig), "hex digits in either case");
    }

    #[test]
    fn signature_header_format() {
        let hex64 = "757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";
        assert!(Signature::parse(format!("sha256={hex64}").as_bytes()).is_some());
        for bad in [
            String::new(),
            "sha256=".into(),
            hex64.into(),
            format!("sha1={hex64}"),
            format!("SHA256={hex64}"),
            format!("sha256= {}", &hex64[1..]),
            format!("sha256={hex64} "),
            format!("sha256={hex64}00"),
            format!("sha256={}", &hex64[2..]),
            "sha256=zz".into(),
            format!("sha256={}zz", &hex64[2..]),
            // from_str_radix would take a sign: "+f" is 15 to it.
            format!("sha256=+f{}", &hex64[2..]),
            // 64 bytes with a two-byte character across a digit pair: slicing &str there panics.
            format!("sha256={}\u{e9}0", &hex64[3..]),
        ] {
            assert_eq!(Signature::parse(bad.as_bytes()), None, "{bad:?}");
        }
        // Not UTF-8 at all: refused, no panic.
        assert_eq!(Signature::parse(b"sha256=\xff\xfe"), None);
    }

    #[test]
    fn events() {
        let cases = [
            ("push", r#"{"ref":"refs/tags/v1.2.0"}"#, Event::Tag("v1.2.0".into())),
            (
                "push",
                r#"{"ref":"refs/tags/v1.2.0","deleted":true}"#,
                Event::Ignored("push deletes refs/tags/v1.2.0".into()),
            ),
            ("push", r#"{"ref":"refs/tags/nightly"}"#, Event::Ignored("tag nightly does not start with v".into())),
            (
                "push",
                r#"{"ref":"refs/heads/main","head_commit":{"message":"chore(release): v1.2.0 [skip ci]\n\nRelease-By: relctl\n"}}"#,
                Event::Ignored("push to refs/heads/main is relctl's own VERSION commit".into()),
            ),
            (
                "push",
                r#"{"ref":"refs/heads/main","head_commit":{"message":"fix"}}"#,
                Event::Ignored("push to refs/heads/main is not a tag push".into()),
            ),
            ("create", r#"{"ref":"v2.0.0","ref_type":"tag"}"#, Event::Tag("v2.0.0".into())),
            (
                "create",
                r#"{"ref":"feature","ref_type":"branch"}"#,
                Event::Ignored("create events do not trigger releases".into()),
            ),
            ("issues", r#"{}"#, Event::Ignored("issues events do not trigger releases".into())),
            ("push", "not json", Event::Ignored("push event body is not JSON".into())),
        ];
        for (kind, body, want) in cases {
            assert_eq!(classify(kind, body.as_bytes(), "v"), want, "{kind} {body}");
        }
    }
}
