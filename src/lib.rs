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
pub mod session;
pub mod sign;
pub mod version;
