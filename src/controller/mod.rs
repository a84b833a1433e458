//! The controller: `relctl reconcile` (once or on an interval) and `relctl
//! serve` (the same loop plus a GitHub webhook endpoint, health and metrics).
//! All triggers converge through the same reconcile.

pub mod backoff;
pub mod limits;
pub mod listener;
pub mod metrics;
pub mod reconcile;
pub mod server;
pub mod state;
#[cfg(test)]
mod tests;
pub mod trigger;
pub mod webhook;
pub mod write_timeout;

pub use backoff::Backoff;
pub use reconcile::{Outcome, TagOutcome, TagResult, reconcile_once};
pub use trigger::{Shutdown, Trigger, run_loop};
