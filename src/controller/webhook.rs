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
    use proptest::prelude::*;

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
    fn signatures_that_are_not_hex_fail_without_panicking() {
        let s = secret("It's a Secret to Everybody");
        let real = "757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";
        let cases = [
            // 64 bytes whose byte pairs split multi-byte characters
            format!("a{}b", "é".repeat(31)),
            format!("{}0", "€".repeat(21)),
            "é".repeat(32),
            // `+7` for the byte 07: from_str_radix reads it as 7, the same byte
            format!("{}+7{}", &real[..4], &real[6..]),
            real.replace('7', "g"),
        ];
        for hex in cases {
            assert_eq!(hex.len(), 64, "{hex}");
            assert!(!accepts(&s, b"Hello, World!", Some(&format!("sha256={hex}"))), "{hex}");
        }
        assert!(accepts(&s, b"Hello, World!", Some(&format!("sha256={}", real.to_uppercase()))));
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

    /// The server's check of a header and a body: parse, then verify.
    fn accepts(s: &SecretString, body: &[u8], header: Option<&str>) -> bool {
        header.and_then(|h| Signature::parse(h.as_bytes())).is_some_and(|sig| verify(s, [body], &sig))
    }

    fn sign(secret: &str, body: &[u8]) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
        mac.update(body);
        let bytes = mac.finalize().into_bytes();
        format!("sha256={}", bytes.iter().map(|b| format!("{b:02x}")).collect::<String>())
    }

    /// Reads and judges one webhook; never panics, and only the true signature passes.
    fn check(kind: &str, body: &[u8], signature: Option<&str>, prefix: &str) {
        let s = secret("webhook secret");
        let real = sign("webhook secret", body);
        let genuine =
            signature.and_then(|s| s.strip_prefix("sha256=")).is_some_and(|hex| hex.eq_ignore_ascii_case(&real[7..]));
        assert_eq!(accepts(&s, body, signature), genuine, "{signature:?}");
        assert!(accepts(&s, body, Some(&real)));
        assert!(
            accepts(&s, body, Some(&real.to_uppercase().replacen("SHA256", "sha256", 1))),
            "hex is case-insensitive"
        );
        match classify(kind, body, prefix) {
            Event::Tag(tag) => {
                assert!(tag.starts_with(prefix), "{tag:?}");
                assert!(kind == "push" || kind == "create", "{kind}");
            }
            Event::Ignored(why) => assert!(!why.is_empty()),
        }
    }

    /// tests/corpus/webhook: line 1 the event kind, line 2 the signature header
    /// (`<none>` when absent, `<valid>` for the true one), the rest the body.
    #[test]
    fn corpus_replays() {
        for (name, bytes) in crate::config::corpus::bytes("webhook") {
            let mut parts = bytes.splitn(3, |b| *b == b'\n');
            let kind = String::from_utf8_lossy(parts.next().unwrap_or_default()).into_owned();
            let signature = String::from_utf8_lossy(parts.next().unwrap_or_default()).into_owned();
            let body = parts.next().unwrap_or_default();
            let signature = match signature.as_str() {
                "<none>" => None,
                "<valid>" => Some(sign("webhook secret", body)),
                s => Some(s.to_string()),
            };
            for prefix in ["v", "", "release/", "é"] {
                check(&kind, body, signature.as_deref(), prefix);
            }
            if name.starts_with("tag-") {
                assert!(matches!(classify(&kind, body, "v"), Event::Tag(_)), "{name}");
            }
        }
    }

    fn signature() -> impl Strategy<Value = Option<String>> {
        prop_oneof![
            Just(None),
            "\\PC{0,80}".prop_map(Some),
            "sha256=[0-9a-fA-F]{62,66}".prop_map(Some),
            // 64 bytes of hex and multi-byte characters, so byte pairs straddle characters.
            "sha256=[0-9a-fé€😀]{20,64}".prop_map(Some),
            "(sha1|sha256|SHA256)=\\PC{0,70}".prop_map(Some),
        ]
    }

    fn body() -> impl Strategy<Value = Vec<u8>> {
        let tag = "(v|release/|)\\PC{0,20}";
        prop_oneof![
            prop::collection::vec(any::<u8>(), 0..200),
            "\\PC{0,200}".prop_map(String::into_bytes),
            (tag, any::<bool>(), prop::option::of("\\PC{0,30}")).prop_map(|(tag, deleted, msg)| {
                let mut json = serde_json::json!({ "ref": format!("refs/tags/{tag}"), "deleted": deleted });
                if let Some(m) = msg {
                    json["head_commit"] = serde_json::json!({ "message": m });
                }
                json.to_string().into_bytes()
            }),
            (tag, "\\PC{0,10}").prop_map(|(tag, ref_type)| {
                serde_json::json!({ "ref": tag, "ref_type": ref_type }).to_string().into_bytes()
            }),
            Just(b"[1, 2, {\"ref\": 3}]".to_vec()),
            Just(format!("{}1{}", "[".repeat(200), "]".repeat(200)).into_bytes()),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

        #[test]
        fn any_webhook_is_judged_without_panicking(
            kind in prop_oneof![Just("push".to_string()), Just("create".to_string()), Just("ping".to_string()), "\\PC{0,12}"],
            body in body(),
            signature in signature(),
            prefix in prop_oneof![Just("v".to_string()), Just(String::new()), "\\PC{0,4}"],
        ) {
            check(&kind, &body, signature.as_deref(), &prefix);
        }
    }
}
