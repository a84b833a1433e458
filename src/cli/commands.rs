//! Dispatch of the commands to their use cases in `relctl::session`, `relctl
//! plan`, and the exit code and hint of every error.

use relctl::config::ConfigError;
use relctl::git::GitError;
use relctl::release::ReleaseError;
use relctl::session::{Session, SessionError};

use super::{Cli, Command, Global, output};

/// The repository and config a command works on.
pub(super) type Ctx = Session;

pub(super) fn load(global: &Global) -> anyhow::Result<Ctx> {
    Ok(Session::open(global.repo.as_deref(), global.config.as_deref())?)
}

pub async fn run(cli: Cli) -> anyhow::Result<()> {
    relctl::secrets::check()?;
    match &cli.command {
        Command::Plan { tag } => plan_cmd(&cli.global, tag.as_deref()).await,
        Command::Release(args) => super::release::release_cmd(&cli.global, args).await,
        Command::Verify { tag, key, provenance } => {
            super::install::verify_cmd(&cli.global, tag.as_deref(), key.as_deref(), *provenance).await
        }
        Command::Pin { tag, env, pull, key } => {
            super::install::pin_cmd(&cli.global, tag.as_deref(), env, *pull, key.as_deref()).await
        }
        Command::Keygen { out } => super::install::keygen_cmd(out),
        Command::Export { tag, out, platform } => {
            super::install::export_cmd(&cli.global, tag, out, platform.as_deref()).await
        }
        Command::Import { dir } => super::install::import_cmd(&cli.global, dir).await,
        Command::Init { force, registry, namespace } => {
            super::install::init_cmd(&cli.global, *force, registry.as_deref(), namespace.as_deref())
        }
        Command::Schema => {
            super::install::schema_cmd();
            Ok(())
        }
        Command::Completions { shell } => {
            super::install::completions_cmd(*shell);
            Ok(())
        }
        Command::Man => super::install::man_cmd(),
        Command::Matrix { tag } => super::release::matrix_cmd(&cli.global, tag).await,
        Command::Finalize { tag, dry_run } => super::release::finalize_cmd(&cli.global, tag, *dry_run).await,
        Command::Status => super::status::status_cmd(&cli.global).await,
        Command::Reconcile { interval, .. } => super::controller::reconcile_cmd(&cli.global, *interval).await,
        Command::Serve { listen, interval, no_webhook, public_dashboard } => {
            super::controller::serve_cmd(&cli.global, *listen, *interval, *no_webhook, *public_dashboard).await
        }
    }
}

pub(super) async fn plan_cmd(global: &Global, tag: Option<&str>) -> anyhow::Result<()> {
    let plan = load(global)?.plan(tag).await?;
    output::plan(&plan, global.json);
    Ok(())
}

/// Exit code and hint for an error: 2 for bad input, 1 otherwise.
pub fn classify(err: &anyhow::Error) -> (u8, Option<String>) {
    for cause in err.chain() {
        if let Some(found) = super::install::classify(cause) {
            return found;
        }
        if let Some(e) = cause.downcast_ref::<SessionError>() {
            return (e.exit_code(), Some(e.hint()));
        }
        if let Some(e) = cause.downcast_ref::<ConfigError>() {
            return (2, Some(e.hint()));
        }
        if let Some(e) = cause.downcast_ref::<ReleaseError>() {
            return (e.exit_code(), Some(e.hint()));
        }
        if let Some(e) = cause.downcast_ref::<GitError>() {
            return (e.exit_code(), Some(e.hint()));
        }
        if let Some(relctl::session::controller::ServeError::Listen { listen, .. }) = cause.downcast_ref() {
            return (1, Some(format!("stop what listens on {listen}, or pass another --listen address")));
        }
        if let Some(e) = cause.downcast_ref::<relctl::notify::NotifyError>() {
            return (e.exit_code(), Some(e.hint()));
        }
        if let Some(e) = cause.downcast_ref::<relctl::session::dashboard::auth::PublicDashboard>() {
            return (2, Some(e.hint()));
        }
        if let Some(e) = cause.downcast_ref::<relctl::secrets::SecretError>() {
            return (2, Some(e.hint()));
        }
        if cause.downcast_ref::<super::controller::MissingSecret>().is_some() {
            return (
                2,
                Some("set RELCTL_WEBHOOK_SECRET to the webhook's secret in GitHub (or RELCTL_WEBHOOK_SECRET_FILE to a file holding it), or pass --no-webhook".into()),
            );
        }
        if cause.downcast_ref::<super::status::Drift>().is_some() {
            return (
                1,
                Some("run `relctl reconcile` to converge them; a failed tag needs its reason fixed first".into()),
            );
        }
        if cause.downcast_ref::<super::controller::NotConverged>().is_some() {
            return (1, Some("fix the named tags (see the log); the other tags were converged".into()));
        }
    }
    (1, None)
}
