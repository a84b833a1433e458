//! The installer's commands: `verify`, `pin`, `export`, `import`, `init`,
//! and the generated `schema`, `completions` and `man`.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use clap::CommandFactory;
use relctl::config::Builder;
use relctl::docker::DockerEngine;
use relctl::forge::RepoId;
use relctl::git::GitRepo;
use relctl::install::bundle::{self, BundleError, ExportItem};
use relctl::install::envfile;
use relctl::install::init;
use relctl::install::verify::{Verification, verify};
use relctl::plan::{self, PlanOptions};
use relctl::progress::ProgressSink;
use relctl::registry::{RegistryClient, credentials};
use relctl::release::ReleaseError;
use relctl::release::observe::{self, RegistryFailure};
use relctl::version::ReleaseVersion;

use super::commands::{Ctx, load, resolve};
use super::{Cli, Global, output};

/// A version that is not completely published (exit 1).
#[derive(Debug, thiserror::Error)]
#[error("{tag} is not completely published: {}", .problems.join("; "))]
pub struct Incomplete {
    pub tag: String,
    pub problems: Vec<String>,
}

/// Files `init` would overwrite (exit 2).
#[derive(Debug, thiserror::Error)]
#[error("relctl init would overwrite {}", .0.join(", "))]
pub struct WouldOverwrite(pub Vec<String>);

fn repo_root(global: &Global) -> anyhow::Result<PathBuf> {
    let cwd = std::env::current_dir().context("cannot read the current directory")?;
    Ok(global.repo.clone().map(|r| cwd.join(r)).unwrap_or(cwd))
}

/// The tag VERSION names in the working tree, for commands whose TAG defaults to it.
fn tag_or_version(ctx: &Ctx, global: &Global, tag: Option<&str>) -> anyhow::Result<String> {
    if let Some(t) = tag {
        return Ok(t.to_string());
    }
    let path = repo_root(global)?.join(&ctx.config.version_file);
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("no TAG given and {} cannot be read; pass a tag, e.g. v1.2.0", path.display()))?;
    Ok(text.trim().to_string())
}

/// Observes `tag` and checks every image; an incomplete version is an [`Incomplete`] error.
async fn verified(ctx: &Ctx, tag: &str) -> anyhow::Result<(ReleaseVersion, Verification)> {
    ReleaseVersion::parse(tag, &ctx.config.git.tag_prefix).map_err(ReleaseError::from)?;
    if let Err(e) = ctx.git.fetch() {
        tracing::warn!("{e}; using the local tags");
    }
    let (target, commit) = resolve(ctx, Some(tag))?;
    let creds = credentials::load(&ctx.config.registry).map_err(ReleaseError::from)?;
    let registry = RegistryClient::new(&ctx.config.registry, creds).with_timeout(ctx.config.timeouts.request);
    let observed =
        observe::observe(&ctx.config, &ctx.git, &registry, &target, &commit, RegistryFailure::Fatal, false).await?;
    let opts = PlanOptions { force: true, ..Default::default() };
    let plan = plan::plan(&ctx.config, &observed, &opts).map_err(ReleaseError::from)?;
    Ok((target, verify(&plan, &observed)))
}

fn require_complete(v: &Verification) -> Result<(), Incomplete> {
    if v.ok() {
        return Ok(());
    }
    let problems = v.images.iter().filter_map(|i| i.problem.clone()).collect();
    Err(Incomplete { tag: v.tag.clone(), problems })
}

pub async fn verify_cmd(global: &Global, tag: Option<&str>) -> anyhow::Result<()> {
    let ctx = load(global)?;
    let tag = tag_or_version(&ctx, global, tag)?;
    let (_, v) = verified(&ctx, &tag).await?;
    output::verification(&v, global.json);
    Ok(require_complete(&v)?)
}

pub async fn pin_cmd(global: &Global, tag: Option<&str>, env: &Path, pull: bool) -> anyhow::Result<()> {
    let ctx = load(global)?;
    let root = repo_root(global)?;
    let tag = tag_or_version(&ctx, global, tag)?;
    let (target, v) = verified(&ctx, &tag).await?;
    require_complete(&v)?;
    let path = root.join(env);
    let before = std::fs::read_to_string(&path).unwrap_or_default();
    let previous = envfile::get_var(&before, "IMAGE_TAG");
    let after = envfile::set_var(&before, "IMAGE_TAG", &target.raw);
    if after != before {
        envfile::write_atomically(&path, after.as_bytes())
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    let version = std::fs::read_to_string(root.join(&ctx.config.version_file)).ok();
    let current = version.as_deref().and_then(|t| ReleaseVersion::parse(t.trim(), &ctx.config.git.tag_prefix).ok());
    println!("{}: IMAGE_TAG {} -> {}", path.display(), previous.as_deref().unwrap_or("(unset)"), target.raw);
    if let Some(cur) = current.filter(|c| c.cmp_release(&target).is_gt()) {
        println!("rollback: {} is older than {} in {}", target.raw, cur.raw, ctx.config.version_file);
    }
    if pull {
        let engine = engine(&ctx, super::progress::for_release(global.quiet)).await?;
        for image in &v.images {
            let (repository, tag) = image.reference.rsplit_once(':').expect("a reference has a tag");
            engine.pull(&image.image, repository, tag).await?;
            println!("pulled {}", image.reference);
        }
    }
    Ok(())
}

/// The Docker engine, reporting pulls and saves to `progress`.
async fn engine(ctx: &Ctx, progress: ProgressSink) -> anyhow::Result<DockerEngine> {
    let creds = credentials::load(&ctx.config.registry).map_err(ReleaseError::from)?;
    Ok(DockerEngine::connect(&ctx.config.registry, creds, progress, Builder::Classic)
        .await
        .map_err(ReleaseError::from)?
        .with_timeouts(ctx.config.timeouts))
}

pub async fn export_cmd(global: &Global, tag: &str, out: &Path) -> anyhow::Result<()> {
    let ctx = load(global)?;
    let (target, v) = verified(&ctx, tag).await?;
    require_complete(&v)?;
    let items: Vec<ExportItem> = v
        .images
        .iter()
        .map(|i| ExportItem {
            image: i.image.clone(),
            reference: i.reference.clone(),
            digest: i.digest.clone().unwrap_or_default(),
            revision: i.revision.clone().unwrap_or_default(),
        })
        .collect();
    // One sink for pulls and saves, so each image keeps one progress line.
    let progress = super::progress::for_release(global.quiet);
    let engine = engine(&ctx, progress.clone()).await?;
    let cwd = std::env::current_dir()?;
    let out = cwd.join(out);
    let images = bundle::export(&engine, &items, &target.raw, &out, &*progress).await?;
    progress.finish();
    for i in &images {
        println!("{}  {}  {} bytes", i.file, i.reference, i.size);
    }
    println!("bundle of {} in {}: check with `sha256sum -c {}`", target.raw, out.display(), bundle::CHECKSUMS);
    Ok(())
}

pub async fn import_cmd(global: &Global, dir: &Path) -> anyhow::Result<()> {
    let cwd = std::env::current_dir()?;
    let dir = cwd.join(dir);
    // No release.yaml needed on the air-gapped host: the bundle says everything.
    let progress = super::progress::for_release(global.quiet);
    let engine =
        DockerEngine::connect("", None, progress.clone(), Builder::Classic).await.map_err(ReleaseError::from)?;
    let images = bundle::import(&engine, &dir, &*progress).await?;
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
    if let Some(e) = cause.downcast_ref::<BundleError>() {
        return Some((e.exit_code(), Some(e.hint())));
    }
    if let Some(e) = cause.downcast_ref::<Incomplete>() {
        return Some((1, Some(format!("release {} again (relctl release {0}) or pin a complete version", e.tag))));
    }
    if cause.downcast_ref::<WouldOverwrite>().is_some() {
        return Some((2, Some("pass --force to overwrite them".into())));
    }
    None
}
