//! The installer's commands: `verify`, `pin`, `export`, `import`, `init`,
//! and the generated `schema`, `completions` and `man`. Each is arguments,
//! one use case of the session, and output.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use clap::CommandFactory;
use relctl::install::bundle;
use relctl::session::{self, InstallError};

use super::commands::load;
use super::{Cli, Global, output};

fn repo_root(global: &Global) -> anyhow::Result<PathBuf> {
    let cwd = std::env::current_dir().context("cannot read the current directory")?;
    Ok(global.repo.clone().map(|r| cwd.join(r)).unwrap_or(cwd))
}

pub async fn verify_cmd(global: &Global, tag: Option<&str>) -> anyhow::Result<()> {
    let session = load(global)?;
    let tag = session.tag_or_version(tag)?;
    let (_, v) = session.verify(&tag).await?;
    output::verification(&v, global.json);
    if !v.ok() {
        let problems = v.images.iter().filter_map(|i| i.problem.clone()).collect();
        return Err(InstallError::from(session::Incomplete { tag: v.tag.clone(), problems }).into());
    }
    Ok(())
}

pub async fn pin_cmd(global: &Global, tag: Option<&str>, env: &Path, pull: bool) -> anyhow::Result<()> {
    let session = load(global)?;
    let tag = session.tag_or_version(tag)?;
    let pinned = session.pin(&tag, env).await?;
    let path = session.root.join(env);
    let previous = pinned.previous.as_deref().unwrap_or("(unset)");
    println!("{}: IMAGE_TAG {previous} -> {}", path.display(), pinned.target.raw);
    if let Some(newer) = &pinned.rollback_from {
        println!("rollback: {} is older than {newer} in {}", pinned.target.raw, session.config.version_file);
    }
    if pull {
        session.pull(&pinned.verification, super::progress::for_release(global.quiet)).await?;
        for image in &pinned.verification.images {
            println!("pulled {}", image.reference);
        }
    }
    Ok(())
}

pub async fn export_cmd(global: &Global, tag: &str, out: &Path) -> anyhow::Result<()> {
    let session = load(global)?;
    let out = std::env::current_dir()?.join(out);
    let (target, images) = session.export(tag, &out, super::progress::for_release(global.quiet)).await?;
    for i in &images {
        println!("{}  {}  {} bytes", i.file, i.reference, i.size);
    }
    println!("bundle of {} in {}: check with `sha256sum -c {}`", target.raw, out.display(), bundle::CHECKSUMS);
    Ok(())
}

pub async fn import_cmd(global: &Global, dir: &Path) -> anyhow::Result<()> {
    // No release.yaml needed on the air-gapped host: the bundle says everything.
    let dir = std::env::current_dir()?.join(dir);
    let images = session::import(&dir, super::progress::for_release(global.quiet)).await?;
    for i in &images {
        println!("loaded {}  {}", i.reference, i.id);
    }
    Ok(())
}

pub fn init_cmd(global: &Global, force: bool, registry: Option<&str>, namespace: Option<&str>) -> anyhow::Result<()> {
    let options = session::InitOptions {
        force,
        registry: registry.map(str::to_string),
        namespace: namespace.map(str::to_string),
    };
    let report = session::init(&repo_root(global)?, &options)?;
    print!("{report}");
    Ok(())
}

pub fn schema_cmd() {
    println!("{}", serde_json::to_string_pretty(&relctl::config::schema()).expect("a schema serializes"));
}

pub fn completions_cmd(shell: clap_complete::Shell) {
    clap_complete::generate(shell, &mut Cli::command(), "relctl", &mut std::io::stdout());
}

pub fn man_cmd() -> anyhow::Result<()> {
    clap_mangen::Man::new(Cli::command()).render(&mut std::io::stdout()).context("cannot write the man page")
}

/// Exit code and hint of the installer's errors.
pub fn classify(cause: &(dyn std::error::Error + 'static)) -> Option<(u8, Option<String>)> {
    if let Some(e) = cause.downcast_ref::<InstallError>() {
        return Some((e.exit_code(), e.hint()));
    }
    if let Some(e) = cause.downcast_ref::<session::InitError>() {
        return Some((e.exit_code(), Some(e.hint())));
    }
    None
}
