//! GitHub webhooks: the `X-Hub-Signature-256` check (HMAC-SHA256, constant
//! time) done before anything is parsed, and the reading of `push` / `create`
//! events into "reconcile this tag" or a reason to ignore them.

use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretString};
use sha2::Sha256;

/// Whether `signature` (`sha256=<hex>`) is the HMAC-SHA256 of `body` under `secret`.
pub fn verify(secret: &SecretString, body: &[u8], signature: Option<&str>) -> bool {
    let Some(hex) = signature.and_then(|s| s.strip_prefix("sha256=")) else { return false };
    let Some(expected) = decode_hex(hex) else { return false };
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret.expose_secret().as_bytes()).expect("HMAC takes keys of any length");
    mac.update(body);
    // verify_slice compares in constant time.
    mac.verify_slice(&expected).is_ok()
}

fn decode_hex(s: &str) -> Option<Vec<u8>> {
    // Hex digits only: byte pairs of other text may split a UTF-8 character (a panic), and
    // from_str_radix would take a `+` sign.
    if s.len() != 64 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).ok()).collect()
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
        let sig = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";
        assert!(verify(&s, b"Hello, World!", Some(sig)));
        assert!(!verify(&s, b"Hello, World?", Some(sig)), "one changed byte fails");
        assert!(!verify(&secret("another secret"), b"Hello, World!", Some(sig)));
        assert!(!verify(&s, b"Hello, World!", None));
        assert!(!verify(
            &s,
            b"Hello, World!",
            Some("sha1=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17")
        ));
        assert!(!verify(&s, b"Hello, World!", Some("sha256=zz")));
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
            assert!(!verify(&s, b"Hello, World!", Some(&format!("sha256={hex}"))), "{hex}");
        }
        assert!(verify(&s, b"Hello, World!", Some(&format!("sha256={}", real.to_uppercase()))));
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
        assert_eq!(verify(&s, body, signature), genuine, "{signature:?}");
        assert!(verify(&s, body, Some(&real)));
        assert!(
            verify(&s, body, Some(&real.to_uppercase().replacen("SHA256", "sha256", 1))),
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
