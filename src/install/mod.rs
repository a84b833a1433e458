//! The installer's side of a release: verify that a version is completely
//! published, pin it in `docker/.env` (or roll back), carry it to air-gapped
//! hosts as an offline bundle, and `relctl init` for a new repository.

pub mod bundle;
pub mod envfile;
pub mod init;
pub mod verify;
