//! relctl: a GitOps release controller. A semver git tag becomes a matrix of
//! images built from exactly that commit, pushed to a registry, and a VERSION
//! commit on the release branch, in phases so no half release is ever visible.
//!
//! Layout: `config` (release.yaml), `version` (tags), `plan` (the pure core),
//! `git`, `docker`, `registry` (boundary traits and their real adapters),
//! `release` (the executor that carries out a plan).

pub mod chain;
pub mod config;
pub mod context;
pub mod controller;
pub mod docker;
pub mod forge;
pub mod git;
pub mod install;
pub mod notify;
pub mod plan;
pub mod progress;
pub mod registry;
pub mod release;
pub mod secrets;
pub mod session;
pub mod sign;
pub mod version;

/// The git commit this binary was built from, as build.rs found it, or `unknown`.
pub const BUILD_COMMIT: &str = env!("RELCTL_COMMIT");

/// What `relctl --version` prints after the name, e.g. `0.1.0 (commit 15d1ef8...)`:
/// the Action compares both with its own checkout.
pub const VERSION_LINE: &str = concat!(env!("CARGO_PKG_VERSION"), " (commit ", env!("RELCTL_COMMIT"), ")");
