//! Table tests, property tests and the committed corpus (tests/corpus/url)
//! of URL redaction and of the image source label.

use proptest::prelude::*;

use super::*;
use crate::config::corpus;

#[test]
fn redaction_table() {
    let cases = [
        // userinfo, well formed
        ("https://x-access-token:ghs_SECRET@github.com/o/r.git", "https://github.com/o/r.git"),
        ("https://ghp_SECRET@github.com/o/r", "https://github.com/o/r"),
        ("http://user:SECRET@127.0.0.1:3000/o/r.git", "http://127.0.0.1:3000/o/r.git"),
        ("https://oauth2:SECRET@[::1]:8443/o/r", "https://[::1]:8443/o/r"),
        // userinfo with unencoded `/`, `@`, `?`, `#` or `:` in the password
        ("https://user:pa/SECRET@host/o/r.git", "https://host/o/r.git"),
        ("https://user:pa@SECRET@host/o/r.git", "https://host/o/r.git"),
        ("https://user:p?SECRET@host/o/r.git", "https://host/o/r.git"),
        ("https://user:p#SECRET@host/o/r.git", "https://host/o/r.git"),
        ("https://user:a:b:SECRET@host/o/r.git", "https://host/o/r.git"),
        ("https://us/er:SECRET/x@host", "https://host"),
        // tokens in the query or the fragment, other parameters kept
        ("https://host/o/r.git?access_token=SECRET", "https://host/o/r.git?access_token=REDACTED"),
        ("https://host/r?a=1&token=SECRET&b=2", "https://host/r?a=1&token=REDACTED&b=2"),
        ("https://host/r?private_token=SECRET;x=y", "https://host/r?private_token=REDACTED;x=y"),
        ("https://host/r?PRIVATE-TOKEN=SECRET", "https://host/r?PRIVATE-TOKEN=REDACTED"),
        ("https://host/r?auth=SECRET", "https://host/r?auth=REDACTED"),
        ("https://host/r?access%5Ftoken=SECRET", "https://host/r?access%5Ftoken=REDACTED"),
        ("https://host/r?password=SECRET&user=me", "https://host/r?password=REDACTED&user=me"),
        (
            "https://bucket.s3.amazonaws.com/blob?X-Amz-Credential=SECRET&X-Amz-Signature=SECRET&X-Amz-Expires=300",
            "https://bucket.s3.amazonaws.com/blob?X-Amz-Credential=REDACTED&X-Amz-Signature=REDACTED&X-Amz-Expires=300",
        ),
        (
            "https://acct.blob.core.windows.net/c/b?sv=2020&sig=SECRET",
            "https://acct.blob.core.windows.net/c/b?sv=2020&sig=REDACTED",
        ),
        ("https://host/cb#access_token=SECRET&state=1", "https://host/cb#access_token=REDACTED&state=1"),
        (
            "https://auth.docker.io/token?service=registry.docker.io&scope=repository:a/b:pull",
            "https://auth.docker.io/token?service=registry.docker.io&scope=repository:a/b:pull",
        ),
        ("https://u:SECRET@host/r?token=SECRET", "https://host/r?token=REDACTED"),
        // ssh forms
        ("git@github.com:o/r.git", "github.com:o/r.git"),
        ("user:SECRET@host:o/r.git", "host:o/r.git"),
        ("ssh://git@github.com/o/r.git", "ssh://github.com/o/r.git"),
        ("ssh://git@github.com:2222/o/r.git", "ssh://github.com:2222/o/r.git"),
        ("[git@host:22]:o/r.git", "host:22]:o/r.git"),
        ("github.com:o/r.git", "github.com:o/r.git"),
        // remote helpers: the address is redacted
        ("persistent-https::https://u:SECRET@host/o/r", "persistent-https::https://host/o/r"),
        // local paths stay as they are, `@` included
        ("/tmp/remote.git", "/tmp/remote.git"),
        ("/home/me@work/remote.git", "/home/me@work/remote.git"),
        ("../remote.git", "../remote.git"),
        ("C:/repos/r.git", "C:/repos/r.git"),
        ("file:///tmp/remote.git", "file:///tmp/remote.git"),
        ("file:///home/me@work/r.git", "file:///home/me@work/r.git"),
        ("file://u:SECRET@/tmp/r.git", "file:///tmp/r.git"),
        ("", ""),
        ("https://github.com/o/r", "https://github.com/o/r"),
    ];
    for (url, want) in cases {
        let got = redact_url(url);
        assert_eq!(got, want, "{url}");
        assert!(!got.contains("SECRET"), "{url} -> {got}");
    }
}

#[test]
fn urls_in_messages_are_redacted() {
    let cases = [
        (
            "unexpected http status code: 401 for 'https://u:SECRET@host/o/r.git/info/refs?service=git-upload-pack'",
            "unexpected http status code: 401 for 'https://host/o/r.git/info/refs?service=git-upload-pack'",
        ),
        (
            "error sending request for url (https://api.example/x?access_token=SECRET): timed out",
            "error sending request for url (https://api.example/x?access_token=REDACTED): timed out",
        ),
        ("two: http://a:SECRET@x/ and ssh://b@y/z", "two: http://x/ and ssh://y/z"),
        ("no url here", "no url here"),
        ("odd ://u:SECRET@host/ and :// alone", "odd ://host/ and :// alone"),
        ("1https://u:SECRET@h", "1https://h"),
        ("", ""),
    ];
    for (text, want) in cases {
        assert_eq!(redact_urls_in(text), want, "{text}");
    }
}

#[test]
fn public_url_table() {
    let cases = [
        ("https://x-access-token:ghs_SECRET@github.com/o/r.git", Some("https://github.com/o/r")),
        ("https://user:pa/ss@github.com/o/r.git", Some("https://github.com/o/r")),
        ("git@github.com:o/r.git", Some("https://github.com/o/r")),
        ("github.com:o/r.git", Some("https://github.com/o/r")),
        ("[git@github.com:22]:o/r.git", Some("https://github.com/o/r")),
        ("ssh://git@github.com/o/r.git", Some("https://github.com/o/r")),
        ("ssh://git@github.com:2222/o/r.git", Some("https://github.com/o/r")),
        ("git+ssh://git@github.com/o/r.git", Some("https://github.com/o/r")),
        ("git://github.com/o/r.git", Some("https://github.com/o/r")),
        ("https://github.com/o/r", Some("https://github.com/o/r")),
        ("https://github.com/o/r/", Some("https://github.com/o/r")),
        ("HTTPS://github.com/o/r.git?access_token=SECRET#frag", Some("https://github.com/o/r")),
        ("http://127.0.0.1:3000/o/r.git", Some("http://127.0.0.1:3000/o/r")),
        ("  https://github.com/o/r.git\n", Some("https://github.com/o/r")),
        ("persistent-https::https://github.com/o/r", Some("https://github.com/o/r")),
        // nothing usable: local paths, file URLs, other transports, no URL at all
        ("/tmp/remote.git", None),
        ("/home/me@work/remote.git", None),
        ("./remote", None),
        ("../remote.git", None),
        ("remote.git", None),
        ("C:/repos/r.git", None),
        ("C:\\repos\\r.git", None),
        ("file:///tmp/remote.git", None),
        ("FILE:///tmp/remote.git", None),
        ("ext::ssh -i key host %S 'o/r'", None),
        ("s3://bucket/repo", None),
        ("https://", None),
        ("https:///o/r", None),
        ("https://host/o r", None),
        ("https://ho st/o/r", None),
        ("https://host/o/\u{0}r", None),
        ("", None),
        ("   ", None),
    ];
    for (url, want) in cases {
        assert_eq!(public_url(url).as_deref(), want, "{url:?}");
    }
}

/// The properties every URL must have, generated or from the corpus.
fn check(url: &str) {
    let redacted = redact_url(url);
    // Redaction is stable: what it shows needs no more redaction.
    assert_eq!(redact_url(&redacted), redacted, "{url:?}");
    let _ = redact_urls_in(url);
    if let Some(public) = public_url(url) {
        assert!(public.starts_with("https://") || public.starts_with("http://"), "{url:?} -> {public:?}");
        assert!(!public.contains(['@', '?', '#']), "{url:?} -> {public:?}");
        assert!(!public.chars().any(|c| c.is_whitespace() || c.is_control()), "{url:?} -> {public:?}");
        assert!(public_url(&public).as_deref() == Some(public.as_str()), "{url:?} -> {public:?}");
    }
    for marker in ["SECRET", "secret-marker"] {
        if url.contains(marker) {
            assert!(!redact_url(url).contains(marker), "{url:?} -> {}", redact_url(url));
            assert!(!public_url(url).unwrap_or_default().contains(marker), "{url:?}");
            // In free text only `scheme://` URLs are recognised.
            if url.contains("://") && !url.chars().any(char::is_whitespace) {
                assert!(!redact_urls_in(&format!("failed: {url} (retry)")).contains(marker), "{url:?}");
            }
        }
    }
}

#[test]
fn corpus_replays() {
    for (name, text) in corpus::texts("url") {
        for line in text.lines().filter(|l| !l.starts_with("# ")) {
            check(line);
            if name.starts_with("local") {
                assert_eq!(public_url(line), None, "{name}: {line:?}");
                assert_eq!(redact_url(line), line, "{name}: {line:?}");
            }
        }
    }
}

fn secret_url() -> impl Strategy<Value = String> {
    let scheme = prop::sample::select(vec!["https", "http", "ssh", "git", "file", "git+ssh", "HTTPS", "s3"]);
    let user = "[a-z0-9._-]{0,8}";
    // A password with the characters that break naive parsers.
    let password = "[a-zA-Z0-9/@:?#%.~+=-]{0,12}";
    let host = prop_oneof!["[a-z0-9.-]{1,12}", "\\[[0-9a-f:]{2,10}\\]", Just("github.com".to_string())];
    let port = prop::option::of(1u16..);
    let path = "(/[a-zA-Z0-9._~-]{0,8}){0,4}";
    let key = prop::sample::select(vec![
        "access_token",
        "token",
        "private_token",
        "auth",
        "sig",
        "password",
        "X-Amz-Signature",
    ]);
    (scheme, user, password, host, port, path, prop::option::of(key), any::<bool>()).prop_map(
        |(scheme, user, password, host, port, path, key, in_fragment)| {
            let port = port.map(|p| format!(":{p}")).unwrap_or_default();
            let query = key.map(|k| format!("{}a=1&{k}=secret-marker", if in_fragment { '#' } else { '?' }));
            format!("{scheme}://{user}:secret-marker{password}@{host}{port}{path}{}", query.unwrap_or_default())
        },
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn any_text_is_handled(url in "\\PC{0,60}") {
        check(&url);
    }

    #[test]
    fn url_like_text_is_handled(url in "[a-z+]{0,6}(://|::|:)?[a-zA-Z0-9@:/?#&=%._~\\[\\] -]{0,40}") {
        check(&url);
    }

    #[test]
    fn secrets_never_survive(url in secret_url()) {
        check(&url);
    }

    #[test]
    fn scp_and_local_forms_are_handled(user in "[a-z]{0,5}", host in "[a-zA-Z0-9.:\\[\\]-]{0,12}", path in "[a-zA-Z0-9/@._ ~-]{0,20}") {
        check(&format!("{user}@{host}:{path}"));
        check(&format!("/{user}@{host}/{path}"));
        check(&format!("{host}:{path}"));
    }
}
