//! The installer's commands: `verify`, `pin`, `export`, `import`, `init`,
//! `keygen`, and the generated `schema`, `completions` and `man`. Each is arguments,
//! one use case of the session, and output.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use clap::CommandFactory;
use relctl::install::bundle;
use relctl::install::verify::SignatureCheck;
use relctl::session::{self, InstallError};

use super::commands::load;
use super::{Cli, Global, output};

fn repo_root(global: &Global) -> anyhow::Result<PathBuf> {
    let cwd = std::env::current_dir().context("cannot read the current directory")?;
    Ok(global.repo.clone().map(|r| cwd.join(r)).unwrap_or(cwd))
}

/// The public key of `--key`, read before anything else (exit 2 when unusable).
fn signature_check(key: Option<&Path>, provenance: bool) -> anyhow::Result<Option<SignatureCheck>> {
    let Some(path) = key else { return Ok(None) };
    let name = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| relctl::sign::KeyError::PublicKey {
        source_name: name.clone(),
        what: format!("cannot read it: {}", e.kind()),
    })?;
    let key = relctl::sign::key::parse_public(&text, &name)?;
    Ok(Some(SignatureCheck { key, key_name: name, provenance }))
}

pub async fn verify_cmd(
    global: &Global,
    tag: Option<&str>,
    key: Option<&Path>,
    provenance: bool,
) -> anyhow::Result<()> {
    let check = signature_check(key, provenance)?;
    let session = load(global)?;
    let tag = session.tag_or_version(tag)?;
    let (_, v) = session.verify(&tag, check.as_ref()).await?;
    output::verification(&v, global.json);
    if !v.ok() {
        let problems = v.images.iter().filter_map(|i| i.problem.clone()).collect();
        return Err(InstallError::from(session::Incomplete { tag: v.tag.clone(), problems }).into());
    }
    Ok(())
}

pub async fn pin_cmd(
    global: &Global,
    tag: Option<&str>,
    env: &Path,
    pull: bool,
    key: Option<&Path>,
) -> anyhow::Result<()> {
    let check = signature_check(key, false)?;
    let session = load(global)?;
    let tag = session.tag_or_version(tag)?;
    let pinned = session.pin(&tag, env, check.as_ref()).await?;
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

pub async fn export_cmd(global: &Global, tag: &str, out: &Path, platform: Option<&str>) -> anyhow::Result<()> {
    let session = load(global)?;
    let out = std::env::current_dir()?.join(out);
    let (target, images) = session.export(tag, &out, platform, super::progress::for_release(global.quiet)).await?;
    for i in &images {
        println!("{}  {}  {}  {} bytes", i.file, i.reference, i.platform, i.size);
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
    if let Some(e) = cause.downcast_ref::<relctl::sign::KeyError>() {
        return Some((2, Some(e.hint())));
    }
    if cause.downcast_ref::<KeygenError>().is_some() {
        return Some((2, Some("choose an empty --out directory: relctl never overwrites a key".into())));
    }
    None
}

/// `relctl keygen`: a cosign key pair, the private key encrypted with
/// COSIGN_PASSWORD; existing files are never overwritten.
pub fn keygen_cmd(out: &Path) -> anyhow::Result<()> {
    let Ok(password) = std::env::var("COSIGN_PASSWORD") else {
        return Err(relctl::sign::KeyError::NoPassword {
            source_name: out.join("cosign.key").display().to_string(),
            password_env: "COSIGN_PASSWORD".into(),
        }
        .into());
    };
    let (private, public) = relctl::sign::key::generate(&password.into());
    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    for (name, text, mode) in [("cosign.key", &private, 0o600), ("cosign.pub", &public, 0o644)] {
        let path = out.join(name);
        use std::io::Write as _;
        use std::os::unix::fs::OpenOptionsExt as _;
        // Created with its final mode: the private key is never readable by others, not even for a moment.
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&path)
            .map_err(|e| KeygenError { path: path.display().to_string(), source: e })?;
        file.write_all(text.as_bytes())?;
    }
    println!(
        "wrote {} (encrypted with COSIGN_PASSWORD) and {}",
        out.join("cosign.key").display(),
        out.join("cosign.pub").display()
    );
    Ok(())
}

/// A key file that cannot be written (it exists, or the directory is not writable).
#[derive(Debug, thiserror::Error)]
#[error("cannot write {path}: {source}")]
pub struct KeygenError {
    path: String,
    #[source]
    source: std::io::Error,
}
