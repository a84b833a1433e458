//! The tests that need the real services (a Docker engine, registries, git
//! remotes), started by scripts/services.sh: one binary, so the crate is
//! linked once. `scripts/test.sh` runs them with everything else;
//! `cargo test --lib` is the fast tier without services.

mod common;

mod action;
mod budget;
mod cache;
mod cli;
mod credentials;
mod dashboard;
mod engine;
mod fanout;
mod faults;
mod github_api;
mod incremental;
mod inputs;
mod install;
mod notify;
mod platforms;
mod ratelimit;
mod reconcile;
mod release;
mod ship;
mod signing;
mod ssh;
mod status;
mod tls;
mod token_auth;
mod version_commit;
