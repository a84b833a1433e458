//! The dashboard without a server: escaping, the page and JSON it makes of a
//! status and the controller's state, and who may read them.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use secrecy::SecretString;

use super::*;
use crate::controller::metrics::Webhook;
use crate::controller::{Outcome, TagOutcome, TagResult};
use crate::session::status::{FloatingRow, ImageRow, Provenance, Row, State, Status, VersionRow};

const EVIL: &str = "<script>alert('x')</script>";

fn status() -> Status {
    let row = |tag: &str, state: State, subject: &str, digest: Option<&str>| Row {
        tag: tag.into(),
        commit: format!("{:0<40}", tag.replace(['v', '.'], "")),
        subject: Some(subject.into()),
        state,
        images: vec![ImageRow {
            image: "app".into(),
            listed: digest.is_some(),
            digest: digest.map(str::to_string),
            provenance: digest.map(|_| Provenance::Built),
        }],
    };
    Status {
        converged: false,
        releases: vec![
            row("v1.1.0", State::NotBuilt, &format!("break it {EVIL}"), None),
            row("v1.0.0", State::Published, "first & fine", Some("sha256:0123456789abcdef0123")),
        ],
        floating: vec![FloatingRow {
            image: "app".into(),
            tag: "latest".into(),
            digest: Some("sha256:0123456789abcdef0123".into()),
            release: Some("v1.0.0".into()),
            expected: Some("v1.0.0".into()),
            drift: false,
        }],
        version_file: VersionRow {
            path: "VERSION".into(),
            names: Some("v1.0.0".into()),
            expected: Some("v1.0.0".into()),
            drift: false,
        },
    }
}

fn dashboard(token: Option<&str>) -> Dashboard {
    let controller = Arc::new(ControllerState::default());
    controller.run_started(&BTreeSet::new());
    let failed = TagResult::Failed {
        error: format!("build of app failed: RUN {EVIL} returned 1"),
        hint: "fix <b>the</b> Dockerfile".into(),
        retry_in_secs: Some(60),
    };
    let outcome = Outcome {
        in_scope: vec!["v1.0.0".into(), "v1.1.0".into()],
        tags: vec![
            TagOutcome { tag: "v1.0.0".into(), result: TagResult::Released { built: 1, pushed: 1 } },
            TagOutcome { tag: "v1.1.0".into(), result: failed },
        ],
        interrupted: false,
    };
    controller.run_finished(SystemTime::now(), Duration::from_millis(2300), &Ok(outcome));
    controller.webhook(Webhook::Ignored, "branch <img src=x onerror=alert(1)> pushed");
    Dashboard {
        project: "acme/p".into(),
        registry: "127.0.0.1:5000".into(),
        controller,
        trigger: Arc::new(Trigger::default()),
        status: Arc::new(StatusCache::default()),
        token: token.map(|t| Arc::new(SecretString::from(t))),
        interval: Some(Duration::from_secs(300)),
    }
}

#[test]
fn escape_turns_markup_into_text() {
    assert_eq!(escape(EVIL), "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;");
    assert_eq!(escape("a & \"b\" <c>"), "a &amp; &quot;b&quot; &lt;c&gt;");
    assert_eq!(escape("v1.2.0 ✓"), "v1.2.0 ✓");
}

#[test]
fn the_page_shows_every_row_with_what_came_from_outside_escaped() {
    let d = dashboard(None);
    let pending = d.page(SystemTime::now());
    assert!(pending.contains("status pending") && !pending.contains("id=\"releases\""), "{pending}");

    d.status.set(status());
    let page = d.page(SystemTime::now());
    assert!(page.starts_with("<!doctype html>"));
    assert!(page.contains("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"));
    assert!(page.contains("<meta http-equiv=\"refresh\" content=\"10\">"));
    assert!(page.contains("@media (max-width:640px)"), "tables stack on phones");
    assert!(!page.contains("<script") && !page.contains("<img") && !page.contains("<b>"), "nothing injected:\n{page}");
    assert!(page.contains("break it &lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;"), "the subject as text");
    assert!(page.contains("RUN &lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; returned 1"), "the error as text");
    assert!(page.contains("hint: fix &lt;b&gt;the&lt;/b&gt; Dockerfile"));
    assert!(page.contains("branch &lt;img src=x onerror=alert(1)&gt; pushed"));
    assert!(page.contains("first &amp; fine"));
    assert!(page.contains("<tr id=\"tag-v1.1.0\" data-state=\"failed\">"), "a failed attempt marks the row");
    assert!(page.contains("<tr id=\"tag-v1.0.0\" data-state=\"published\">"));
    assert!(page.contains("app <code title=\"sha256:0123456789abcdef0123\">0123456789ab</code> built"));
    assert!(page.contains("<strong>app:latest</strong>"));
    assert!(page.contains("released v1.0.0") && page.contains("in 2.3 s"), "the last reconcile");
    assert!(page.contains("<dd id=\"running\"><span class=\"muted\">idle</span>"));
}

#[test]
fn the_json_is_the_status_document_with_a_controller_block() {
    let d = dashboard(None);
    let (code, doc) = d.document();
    assert_eq!(code, StatusCode::SERVICE_UNAVAILABLE);
    assert!(doc["controller"]["last_reconcile"].is_object(), "{doc}");

    d.status.set(status());
    let (code, doc) = d.document();
    assert_eq!(code, StatusCode::OK);
    let plain = serde_json::to_value(status()).unwrap();
    for key in ["converged", "releases", "floating", "version_file"] {
        assert_eq!(doc[key], plain[key], "{key} as `relctl status --json` has it");
    }
    let c = &doc["controller"];
    assert_eq!(c["last_reconcile"]["result"], "failed");
    assert_eq!(c["last_reconcile"]["duration_ms"], 2300);
    assert_eq!(c["errors"][0]["tag"], "v1.1.0");
    assert_eq!(c["errors"][0]["hint"], "fix <b>the</b> Dockerfile", "JSON carries the text as it is");
    assert_eq!(c["last_webhook"]["outcome"], "ignored");
    assert!(c["status_at"].as_str().unwrap().ends_with('Z'));
    assert!(c["status_error"].is_null());
    d.status.failed("registry down".into(), "wait".into());
    assert_eq!(d.document().1["controller"]["status_error"]["error"], "registry down");
    assert_eq!(d.document().1["releases"].as_array().unwrap().len(), 2, "the last status stays");
}

#[test]
fn with_a_token_the_page_and_json_ask_for_it() {
    let headers = |auth: Option<&str>| {
        let mut h = HeaderMap::new();
        if let Some(a) = auth {
            h.insert(header::AUTHORIZATION, HeaderValue::from_str(a).unwrap());
        }
        h
    };
    let open = dashboard(None);
    assert_eq!(open.respond_page(&headers(None)).status(), StatusCode::OK);

    let d = dashboard(Some("tok-123"));
    d.status.set(status());
    let handlers: [fn(&Dashboard, &HeaderMap) -> axum::response::Response; 2] =
        [Dashboard::respond_page, Dashboard::respond_api];
    for respond in handlers {
        let missing = respond(&d, &headers(None));
        assert_eq!(missing.status(), StatusCode::UNAUTHORIZED);
        assert!(missing.headers()[header::WWW_AUTHENTICATE].to_str().unwrap().starts_with("Basic "));
        assert_eq!(respond(&d, &headers(Some("Bearer tok-12"))).status(), StatusCode::UNAUTHORIZED);
        let right = respond(&d, &headers(Some("Bearer tok-123")));
        assert_eq!(right.status(), StatusCode::OK);
        assert_eq!(right.headers()[header::CACHE_CONTROL], "no-store");
        assert!(right.headers()[header::CONTENT_SECURITY_POLICY].to_str().unwrap().starts_with("default-src 'none'"));
    }
    let page = d.respond_page(&headers(Some("Bearer tok-123")));
    assert_eq!(page.headers()[header::CONTENT_TYPE], "text/html; charset=utf-8");
}
