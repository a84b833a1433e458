//! The installer's commands: `verify`, `pin`, `export`, `import`, `init`,
//! and the generated `schema`, `completions` and `man`. Each is arguments,
//! one use case of the session, and output.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use clap::CommandFactory;
use relctl::forge::RepoId;
use relctl::install::bundle;
use relctl::install::envfile;
use relctl::install::init;
use relctl::session::{self, InstallError};
use relctl::version::ReleaseVersion;

use super::commands::load;
use super::{Cli, Global, output};

/// Files `init` would overwrite (exit 2).
#[derive(Debug, thiserror::Error)]
#[error("relctl init would overwrite {}", .0.join(", "))]
pub struct WouldOverwrite(pub Vec<String>);

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

pub fn init_cmd(global: &Global, force: bool) -> anyhow::Result<()> {
    let root = repo_root(global)?;
    let repo = git2::Repository::discover(&root)
        .map_err(|e| relctl::git::GitError::NotARepository { path: root.clone(), message: e.message().to_string() })?;
    let url = repo.find_remote("origin").ok().and_then(|r| r.url().ok().map(str::to_string)).unwrap_or_default();
    let (namespace, project) = match RepoId::resolve(std::env::var("GITHUB_REPOSITORY").ok().as_deref(), &url) {
        Ok(id) => (id.owner.to_lowercase(), id.name.to_lowercase()),
        Err(_) => {
            let name = root.file_name().map(|n| n.to_string_lossy().to_lowercase()).unwrap_or_else(|| "app".into());
            (name.clone(), name)
        }
    };
    let highest = repo
        .tag_names(None)
        .map(|names| {
            names
                .iter()
                .flatten()
                .flatten()
                .filter_map(|t| ReleaseVersion::parse(t, "v").ok())
                .max_by(|a, b| a.cmp_release(b))
        })
        .ok()
        .flatten();
    let version = highest.map(|v| v.raw).unwrap_or_else(|| "v0.1.0".into());
    let files = init::files(&namespace, &project, &init::find_images(&root), &version);
    let existing: Vec<String> =
        files.iter().filter(|(p, _)| root.join(p).exists()).map(|(p, _)| p.display().to_string()).collect();
    if !existing.is_empty() && !force {
        return Err(WouldOverwrite(existing).into());
    }
    for (path, content) in &files {
        let full = root.join(path);
        if let Some(dir) = full.parent() {
            std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        }
        envfile::write_atomically(&full, content.as_bytes())
            .with_context(|| format!("cannot write {}", full.display()))?;
        println!("wrote {}", path.display());
    }
    println!("next: review release.yaml, then `relctl plan`");
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
    if cause.downcast_ref::<WouldOverwrite>().is_some() {
        return Some((2, Some("pass --force to overwrite them".into())));
    }
    None
}
