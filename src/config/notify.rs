//! `notify:` in release.yaml: the webhooks told about releases, checked when
//! the file is loaded (a known format, known events, an http(s) URL or an
//! `env:NAME` reference). The URL is a secret: no message here shows it;
//! errors name the notifier by its index.

use std::collections::BTreeSet;

use secrecy::{ExposeSecret, SecretString};

use super::ConfigError;
use super::raw::{RawNotify, RawNotifyEvent, RawNotifyFormat};
use super::validate::Ctx;

/// The payload a webhook gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotifyFormat {
    /// `{"text": ...}`, which Slack, Mattermost, Rocket.Chat and Discord's `/slack` endpoint read.
    Slack,
    /// relctl's own JSON document.
    Generic,
}

impl NotifyFormat {
    pub fn name(self) -> &'static str {
        match self {
            NotifyFormat::Slack => "slack",
            NotifyFormat::Generic => "generic",
        }
    }
}

/// What a notification is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum NotifyEvent {
    /// A run pushed the release's version tags.
    Published,
    /// A release failed.
    Failed,
    /// A floating tag, VERSION or a version tag was out of place and was put back.
    Drift,
}

impl NotifyEvent {
    pub fn name(self) -> &'static str {
        match self {
            NotifyEvent::Published => "published",
            NotifyEvent::Failed => "failed",
            NotifyEvent::Drift => "drift",
        }
    }
}

/// Where a webhook's URL comes from.
#[derive(Clone)]
pub enum NotifyUrl {
    /// Written in release.yaml.
    Literal(SecretString),
    /// `env:NAME`: read from the environment when relctl starts to notify.
    Env(String),
}

impl std::fmt::Debug for NotifyUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NotifyUrl::Literal(_) => f.write_str("Literal([redacted])"),
            NotifyUrl::Env(name) => write!(f, "Env({name})"),
        }
    }
}

/// One entry of `notify:`.
#[derive(Debug, Clone)]
pub struct NotifyConfig {
    pub url: NotifyUrl,
    pub format: NotifyFormat,
    /// Sorted, without repeats; never empty.
    pub on: Vec<NotifyEvent>,
}

/// Why `url` is no webhook URL relctl posts to, without repeating it: `None` when it is one.
pub fn url_problem(url: &str) -> Option<&'static str> {
    let Ok(parsed) = reqwest::Url::parse(url.trim()) else {
        return Some("is not a URL");
    };
    if !matches!(parsed.scheme(), "http" | "https") {
        return Some("is not an http or https URL");
    }
    if parsed.host_str().is_none_or(str::is_empty) {
        return Some("names no host");
    }
    None
}

/// Whether `name` can be an environment variable's name (`env:NAME` here and in `sign.key`).
pub(super) fn is_env_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

pub(super) fn notify(cx: &Ctx, raw: Vec<RawNotify>) -> Result<Vec<NotifyConfig>, ConfigError> {
    let mut out = Vec::new();
    for (i, n) in raw.into_iter().enumerate() {
        let field = format!("notify[{i}]");
        let at = |key: &str| cx.line_in_list("notify", key, i);
        let url = match n.url.0.trim().strip_prefix("env:") {
            Some(name) if is_env_name(name) => NotifyUrl::Env(name.to_string()),
            Some(_) => {
                return Err(cx.invalid_at(
                    at("url"),
                    format!("{field}.url"),
                    "`env:` is not followed by an environment variable's name",
                    "write env:NAME, NAME made of letters, digits and _ (e.g. env:SLACK_WEBHOOK_URL)",
                ));
            }
            None => {
                if let Some(problem) = url_problem(&n.url.0) {
                    return Err(cx.invalid_at(
                        at("url"),
                        format!("{field}.url"),
                        problem,
                        "write the webhook's https:// URL, or env:NAME to read it from the environment (the URL is a secret)",
                    ));
                }
                NotifyUrl::Literal(SecretString::from(n.url.0.trim().to_string()))
            }
        };
        if n.on.is_empty() {
            return Err(cx.invalid_at(
                at("on"),
                format!("{field}.on"),
                "lists no event",
                "list one or more of published, failed, drift, or leave `on` out for all three",
            ));
        }
        let on: BTreeSet<NotifyEvent> =
            n.on.iter()
                .map(|e| match e {
                    RawNotifyEvent::Published => NotifyEvent::Published,
                    RawNotifyEvent::Failed => NotifyEvent::Failed,
                    RawNotifyEvent::Drift => NotifyEvent::Drift,
                })
                .collect();
        let format = match n.format {
            RawNotifyFormat::Slack => NotifyFormat::Slack,
            RawNotifyFormat::Generic => NotifyFormat::Generic,
        };
        out.push(NotifyConfig { url, format, on: on.into_iter().collect() });
    }
    Ok(out)
}

impl NotifyConfig {
    /// The URL as written, for a literal one.
    pub fn literal(&self) -> Option<&str> {
        match &self.url {
            NotifyUrl::Literal(s) => Some(s.expose_secret()),
            NotifyUrl::Env(_) => None,
        }
    }
}
