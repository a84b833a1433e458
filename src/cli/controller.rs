//! `relctl reconcile` and `relctl serve`: arguments, the webhook secret and
//! the dashboard token from the environment, one controller use case, and
//! the outcome printed.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use relctl::controller::{Outcome, Shutdown, TagResult, Trigger};
use relctl::session::controller::Controller;
use relctl::session::dashboard::auth;
use secrecy::SecretString;

use super::Global;
use super::commands::load;

/// Raised when a reconcile could not converge some tags (exit 1); the others were.
#[derive(Debug, thiserror::Error)]
#[error("reconcile could not converge {} of {in_scope} release tags: {}", .failed.len(), .failed.join(", "))]
pub struct NotConverged {
    pub failed: Vec<String>,
    pub in_scope: usize,
}

pub async fn reconcile_cmd(global: &Global, interval: Option<Duration>) -> anyhow::Result<()> {
    let c = Controller::new(load(global)?.notifying()?)?;
    let Some(interval) = interval else {
        let outcome = c.once().await?;
        print_outcome(&outcome, global.json);
        let failed: Vec<String> = outcome.failed().iter().map(|t| t.tag.clone()).collect();
        if !failed.is_empty() {
            return Err(NotConverged { failed, in_scope: outcome.in_scope.len() }.into());
        }
        return Ok(());
    };
    c.run_until_shutdown(Some(interval), &Trigger::default(), Shutdown::on_signals()).await;
    Ok(())
}

pub async fn serve_cmd(
    global: &Global,
    listen: SocketAddr,
    interval: Duration,
    no_webhook: bool,
    public_dashboard: bool,
) -> anyhow::Result<()> {
    let interval = super::serve_interval(interval);
    let token = relctl::secrets::var(auth::TOKEN_ENV).map(|s| Arc::new(SecretString::from(s)));
    auth::check_listen(listen, token.as_deref(), public_dashboard)?;
    let secret = match (relctl::secrets::var("RELCTL_WEBHOOK_SECRET"), no_webhook) {
        (_, true) => None,
        (Some(s), false) => Some(Arc::new(SecretString::from(s))),
        (None, false) => return Err(MissingSecret.into()),
    };
    Controller::new(load(global)?.notifying()?)?.serve(listen, secret, interval, token).await?;
    Ok(())
}

/// `relctl serve` without a webhook secret (exit 2).
#[derive(Debug, thiserror::Error)]
#[error("RELCTL_WEBHOOK_SECRET (or RELCTL_WEBHOOK_SECRET_FILE) is not set, so webhooks could not be verified")]
pub struct MissingSecret;

fn print_outcome(o: &Outcome, json: bool) {
    if json {
        let failed: Vec<_> = o
            .tags
            .iter()
            .filter_map(|t| match &t.result {
                TagResult::Failed { error, hint, .. } => {
                    Some(serde_json::json!({"tag": t.tag, "error": error, "hint": hint}))
                }
                TagResult::BackingOff { error, .. } => Some(serde_json::json!({"tag": t.tag, "error": error})),
                _ => None,
            })
            .collect();
        let v = serde_json::json!({
            "in_scope": o.in_scope, "tags": o.tags, "released": o.released(), "builds": o.builds(),
            "pushes": o.pushes(), "failed": failed, "interrupted": o.interrupted,
        });
        println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
        return;
    }
    let (released, failed) = (o.released(), o.failed());
    if released.is_empty() && failed.is_empty() {
        println!("nothing to do: {} release tags in scope are converged", o.in_scope.len());
        return;
    }
    println!("reconciled {} release tags in scope; released: {}", o.in_scope.len(), released.join(", "));
    for t in failed {
        match &t.result {
            TagResult::Failed { error, hint, .. } => println!("failed: {}: {error}\n  hint: {hint}", t.tag),
            TagResult::BackingOff { error, retry_in_secs } => {
                println!("waiting: {}: failed before ({error}); tried again in {retry_in_secs}s", t.tag)
            }
            _ => {}
        }
    }
}
