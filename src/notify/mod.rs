//! Notifications: the webhooks of `notify:` told when a release is
//! published, fails, or drift is put back. [`Notifications`] decides what to
//! send (never the same event twice for one release, see `emit`) and
//! delivers in the background through a [`Notifier`], retried with a bounded
//! backoff, so a webhook that is down never holds up or fails a release.
//! URLs are secrets: logs and errors name a notifier by its index and format.

mod event;
#[cfg(test)]
pub(crate) mod fake;
pub mod http;
pub mod payload;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::future::BoxFuture;
use secrecy::SecretString;

pub use event::{Event, EventImage, Kind};

use crate::config::{Config, NotifyFormat, NotifyUrl};

/// Why a delivery attempt failed; never names the URL.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeliveryError {
    #[error("no answer within {}s", .0.as_secs_f32())]
    Timeout(Duration),
    #[error("cannot connect")]
    Connect,
    #[error("HTTP {0}")]
    Status(u16),
    #[error("{0}")]
    Other(String),
}

impl DeliveryError {
    /// Worth another attempt: anything but a 4xx (other than 408 and 429) or a redirect.
    pub fn retryable(&self) -> bool {
        match self {
            DeliveryError::Status(s) => *s >= 500 || *s == 408 || *s == 429,
            _ => true,
        }
    }
}

/// The boundary to the webhooks: one JSON POST, `Ok` on a 2xx answer.
pub trait Notifier: Send + Sync + 'static {
    fn post(
        &self,
        url: &SecretString,
        body: Vec<u8>,
        timeout: Duration,
    ) -> BoxFuture<'static, Result<(), DeliveryError>>;
}

/// Why notifications cannot be set up (before anything is released).
#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    #[error("notify[{index}].url is env:{name}, but {name} is not set")]
    MissingEnv { index: usize, name: String },
    #[error("notify[{index}].url is env:{name}, and the value of {name} {problem}")]
    BadEnvUrl { index: usize, name: String, problem: &'static str },
    #[error("notify[{index}].url is env:{name}: {source}")]
    Secret {
        index: usize,
        name: String,
        #[source]
        source: crate::secrets::SecretError,
    },
    #[error("cannot set up the HTTP client for notifications")]
    Client(#[source] reqwest::Error),
}

impl NotifyError {
    /// 2 for a variable to set, 1 for a client that could not start.
    pub fn exit_code(&self) -> u8 {
        match self {
            NotifyError::Client(_) => 1,
            _ => 2,
        }
    }

    pub fn hint(&self) -> String {
        match self {
            NotifyError::MissingEnv { index, name } | NotifyError::BadEnvUrl { index, name, .. } => format!(
                "set {name} to the webhook's http(s) URL, or {name}_FILE to a file holding it (keep it with your secrets), or remove notify[{index}] from release.yaml"
            ),
            NotifyError::Secret { source, .. } => source.hint(),
            NotifyError::Client(_) => "check the system's TLS setup (OpenSSL)".into(),
        }
    }
}

/// Deliveries counted for `/metrics`.
#[derive(Debug, Default)]
pub struct Counters {
    pub sent: AtomicU64,
    pub failed: AtomicU64,
}

/// How a delivery is retried: `attempts` POSTs, each given `timeout`, 1 s
/// then 2 s (doubling) apart; [`Policy::bound`] is the most one can take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    pub attempts: u32,
    pub timeout: Duration,
    pub first_wait: Duration,
}

impl Default for Policy {
    fn default() -> Self {
        Self { attempts: 3, timeout: Duration::from_secs(5), first_wait: Duration::from_secs(1) }
    }
}

impl Policy {
    fn wait_after(&self, attempt: u32) -> Duration {
        self.first_wait * (1u32 << (attempt - 1).min(16))
    }

    /// The longest a delivery can take: every attempt timing out, and the waits between them.
    pub fn bound(&self) -> Duration {
        (1..self.attempts).map(|a| self.wait_after(a)).sum::<Duration>() + self.timeout * self.attempts
    }
}

/// One webhook, its URL resolved.
pub struct Target {
    /// Its position in `notify:`, which names it in logs.
    pub index: usize,
    url: SecretString,
    pub format: NotifyFormat,
    pub on: Vec<Kind>,
}

impl Target {
    pub fn new(index: usize, url: SecretString, format: NotifyFormat, on: Vec<Kind>) -> Self {
        Self { index, url, format, on }
    }
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Target").field("index", &self.index).field("format", &self.format).finish_non_exhaustive()
    }
}

/// The targets of `config`, `env:NAME` URLs read through `env` (`NAME`, else the file `NAME_FILE` names).
pub fn targets(
    config: &Config,
    env: impl Fn(&str) -> Result<Option<String>, crate::secrets::SecretError>,
) -> Result<Vec<Target>, NotifyError> {
    let mut out = Vec::new();
    for (index, n) in config.notify.iter().enumerate() {
        let url = match &n.url {
            NotifyUrl::Literal(url) => url.clone(),
            NotifyUrl::Env(name) => {
                let value = env(name).map_err(|source| NotifyError::Secret { index, name: name.clone(), source })?;
                let value = value.filter(|v| !v.trim().is_empty());
                let value = value.ok_or_else(|| NotifyError::MissingEnv { index, name: name.clone() })?;
                if let Some(problem) = crate::config::url_problem(&value) {
                    return Err(NotifyError::BadEnvUrl { index, name: name.clone(), problem });
                }
                SecretString::from(value.trim().to_string())
            }
        };
        out.push(Target { index, url, format: n.format, on: n.on.clone() });
    }
    Ok(out)
}

/// What was announced already, so nothing is told twice.
#[derive(Default)]
struct Seen {
    /// Tags announced as published by this process.
    published: BTreeSet<String>,
    /// Per tag, the last failure announced (cleared when the tag is fine again).
    failed: BTreeMap<String, String>,
}

/// The webhooks of `notify:` and what was sent to them. Without targets, every call does nothing.
#[derive(Default)]
pub struct Notifications {
    targets: Vec<Arc<Target>>,
    notifier: Option<Arc<dyn Notifier>>,
    project: String,
    policy: Policy,
    seen: Mutex<Seen>,
    counters: Arc<Counters>,
    inflight: Mutex<Vec<tokio::task::JoinHandle<()>>>,
}

impl Notifications {
    /// Sends nothing.
    pub fn none() -> Self {
        Self::default()
    }

    /// The webhooks of `config` over HTTP; `env:NAME` URLs read from the environment.
    pub fn from_config(config: &Config) -> Result<Self, NotifyError> {
        let targets = targets(config, crate::secrets::var_named)?;
        if targets.is_empty() {
            return Ok(Self::none());
        }
        let policy = Policy::default();
        let http = http::HttpNotifier::new(policy.timeout).map_err(NotifyError::Client)?;
        Ok(Self::new(&config.project, targets, Arc::new(http)))
    }

    /// `targets` through `notifier`, for a project named `project`.
    pub fn new(project: &str, targets: Vec<Target>, notifier: Arc<dyn Notifier>) -> Self {
        Self {
            targets: targets.into_iter().map(Arc::new).collect(),
            notifier: Some(notifier),
            project: project.to_string(),
            ..Self::default()
        }
    }

    /// Counts deliveries in `counters` (the controller's metrics).
    pub fn with_counters(mut self, counters: Arc<Counters>) -> Self {
        self.counters = counters;
        self
    }

    pub fn with_policy(mut self, policy: Policy) -> Self {
        self.policy = policy;
        self
    }

    pub fn counters(&self) -> &Arc<Counters> {
        &self.counters
    }

    pub fn is_empty(&self) -> bool {
        self.targets.is_empty()
    }

    /// Tells every target that wants it about `event`, in the background.
    /// Never twice for one release: `published` once per tag (a later push of
    /// the same tag's version tags restored them: that is told as `drift`),
    /// `failed` once per tag and error until the tag is fine again. `drift` is
    /// told for each repair, as each one undid a change.
    pub fn emit(&self, event: Event) {
        let Some(notifier) = &self.notifier else { return };
        let event = {
            let mut seen = self.seen.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            match event.kind {
                Kind::Published | Kind::Drift => {
                    seen.failed.remove(&event.tag);
                    if event.kind == Kind::Published && !seen.published.insert(event.tag.clone()) {
                        event.into_restored()
                    } else {
                        event
                    }
                }
                Kind::Failed => {
                    let error = event.error.clone().unwrap_or_default();
                    if seen.failed.get(&event.tag) == Some(&error) {
                        tracing::debug!(tag = %event.tag, "failure already notified");
                        return;
                    }
                    seen.failed.insert(event.tag.clone(), error);
                    event
                }
            }
        };
        let mut inflight = self.inflight.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        inflight.retain(|h| !h.is_finished());
        for target in self.targets.iter().filter(|t| t.on.contains(&event.kind)) {
            let body = payload::body(target.format, &self.project, &event);
            let body = serde_json::to_vec(&body).unwrap_or_default();
            let what = format!("{} {}", event.kind.name(), event.tag);
            let task = deliver(notifier.clone(), target.clone(), body, self.policy, self.counters.clone(), what);
            inflight.push(tokio::spawn(task));
        }
    }

    /// `tag` is converged with nothing to do: a failure of it later is news again.
    pub fn converged(&self, tag: &str) {
        self.seen.lock().unwrap_or_else(std::sync::PoisonError::into_inner).failed.remove(tag);
    }

    /// Waits for the deliveries under way, at most [`Policy::bound`] (and a second).
    pub async fn flush(&self) {
        let handles = std::mem::take(&mut *self.inflight.lock().unwrap_or_else(std::sync::PoisonError::into_inner));
        if handles.is_empty() {
            return;
        }
        let all = futures_util::future::join_all(handles);
        if tokio::time::timeout(self.policy.bound() + Duration::from_secs(1), all).await.is_err() {
            tracing::warn!("stopped waiting for notifications after {:?}", self.policy.bound());
        }
    }
}

/// Delivers `body` to `target` within `policy`; counts and logs the outcome (without the URL).
async fn deliver(
    notifier: Arc<dyn Notifier>,
    target: Arc<Target>,
    body: Vec<u8>,
    policy: Policy,
    counters: Arc<Counters>,
    what: String,
) {
    let (index, format) = (target.index, target.format.name());
    // Fields name the notifier by index and format only: its URL is a secret.
    let mut attempt = 1;
    loop {
        let sent = notifier.post(&target.url, body.clone(), policy.timeout);
        let result =
            tokio::time::timeout(policy.timeout, sent).await.unwrap_or(Err(DeliveryError::Timeout(policy.timeout)));
        match result {
            Ok(()) => {
                counters.sent.fetch_add(1, Ordering::Relaxed);
                tracing::info!(notifier = index, format = format, attempt, "notified {what}");
                return;
            }
            Err(e) if e.retryable() && attempt < policy.attempts => {
                tracing::debug!(notifier = index, format = format, attempt, "notifying {what} failed, retrying: {e}");
                tokio::time::sleep(policy.wait_after(attempt)).await;
                attempt += 1;
            }
            Err(e) => {
                counters.failed.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(
                    notifier = index,
                    format = format,
                    "{what} not notified after {attempt} attempt(s): {e}"
                );
                return;
            }
        }
    }
}
