//! The bodies webhooks get: relctl's JSON document (`generic`) and a
//! Slack-compatible `{"text": ...}` message (`slack`, which Mattermost,
//! Rocket.Chat and Discord's `/slack` endpoint read too). Text from git, the
//! registry and errors is escaped for Slack's markup (`&`, `<`, `>`).

use serde_json::json;

use super::event::{Event, Kind};
use crate::config::NotifyFormat;
use crate::progress::short_digest;

/// The JSON body for `format`.
pub fn body(format: NotifyFormat, project: &str, event: &Event) -> serde_json::Value {
    match format {
        NotifyFormat::Generic => generic(project, event),
        NotifyFormat::Slack => json!({ "text": slack_text(project, event) }),
    }
}

/// Every key is always there (null or empty when it does not apply), so a
/// receiver can read the document without knowing the event first.
pub fn generic(project: &str, event: &Event) -> serde_json::Value {
    json!({
        "event": event.kind.name(),
        "project": project,
        "tag": event.tag,
        "version": event.version,
        "prerelease": event.prerelease,
        "commit": event.commit,
        "images": event.images,
        "version_commit": event.version_commit,
        "error": event.error,
        "hint": event.hint,
        "repaired": event.repaired,
        "sent_by": concat!("relctl/", env!("CARGO_PKG_VERSION")),
    })
}

/// `&`, `<` and `>` as Slack's markup wants them in plain text.
pub fn slack_escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

fn short_commit(c: &str) -> &str {
    &c[..c.len().min(12)]
}

/// The message: a headline, then one line per image, repair, or the error and hint.
pub fn slack_text(project: &str, event: &Event) -> String {
    let e = slack_escape;
    let what = format!("*{} {}*", e(project), e(&event.tag));
    let at = event.commit.as_deref().map(|c| format!(" (`{}`)", short_commit(c))).unwrap_or_default();
    let mut text = match event.kind {
        Kind::Published => {
            let pre = if event.prerelease { "pre-release " } else { "" };
            format!("relctl: {pre}{what} published{at}")
        }
        Kind::Failed => format!("relctl: {what} failed{at}"),
        Kind::Drift => format!("relctl: {what}: drift put back{at}"),
    };
    match event.kind {
        Kind::Published => {
            for i in &event.images {
                let how = if i.built { "built" } else { "retagged" };
                text += &format!("\n• {} `{}` {how} ({})", e(&i.image), short_digest(&i.digest), e(&i.tags.join(", ")));
            }
        }
        Kind::Failed => {
            text += &format!("\n{}", e(event.error.as_deref().unwrap_or("unknown error")));
            if let Some(hint) = &event.hint {
                text += &format!("\nhint: {}", e(hint));
            }
        }
        Kind::Drift => {
            for r in &event.repaired {
                text += &format!("\n• {}", e(r));
            }
        }
    }
    text
}
