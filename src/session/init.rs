//! `relctl init`: release.yaml, VERSION and a release workflow for the
//! repository it runs in, named after its GitHub remote (or its directory).

use std::path::{Path, PathBuf};

use crate::forge::RepoId;
use crate::git::GitError;
use crate::install::{envfile, init};
use crate::version::ReleaseVersion;

/// Why `init` wrote nothing.
#[derive(Debug, thiserror::Error)]
pub enum InitError {
    #[error(transparent)]
    Git(#[from] GitError),
    #[error("relctl init would overwrite {}", .0.join(", "))]
    WouldOverwrite(Vec<String>),
    #[error("cannot write {path}")]
    Write {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

impl InitError {
    pub fn exit_code(&self) -> u8 {
        match self {
            InitError::Git(e) => e.exit_code(),
            InitError::WouldOverwrite(_) => 2,
            InitError::Write { .. } => 1,
        }
    }

    pub fn hint(&self) -> String {
        match self {
            InitError::Git(e) => e.hint(),
            InitError::WouldOverwrite(_) => "pass --force to overwrite them".into(),
            InitError::Write { .. } => "check the directory's permissions".into(),
        }
    }
}

/// Writes the files `init` generates into the repository at `root`; returns their paths.
pub fn init(root: &Path, force: bool) -> Result<Vec<PathBuf>, InitError> {
    let repo = git2::Repository::discover(root)
        .map_err(|e| GitError::NotARepository { path: root.to_path_buf(), message: e.message().to_string() })?;
    let url = repo.find_remote("origin").ok().and_then(|r| r.url().ok().map(str::to_string)).unwrap_or_default();
    let (namespace, project) = match RepoId::resolve(std::env::var("GITHUB_REPOSITORY").ok().as_deref(), &url) {
        Ok(id) => (id.owner.to_lowercase(), id.name.to_lowercase()),
        Err(_) => {
            let name = root.file_name().map(|n| n.to_string_lossy().to_lowercase()).unwrap_or_else(|| "app".into());
            (name.clone(), name)
        }
    };
    let tags = repo.tag_names(None).ok();
    let highest = tags
        .iter()
        .flat_map(|names| names.iter().flatten().flatten())
        .filter_map(|t| ReleaseVersion::parse(t, "v").ok())
        .max_by(|a, b| a.cmp_release(b));
    let version = highest.map(|v| v.raw).unwrap_or_else(|| "v0.1.0".into());
    let files = init::files(&namespace, &project, &init::find_images(root), &version);
    let existing: Vec<String> =
        files.iter().filter(|(p, _)| root.join(p).exists()).map(|(p, _)| p.display().to_string()).collect();
    if !existing.is_empty() && !force {
        return Err(InitError::WouldOverwrite(existing));
    }
    let mut written = Vec::new();
    for (path, content) in &files {
        let full = root.join(path);
        let write = |source| InitError::Write { path: full.display().to_string(), source };
        if let Some(dir) = full.parent() {
            std::fs::create_dir_all(dir).map_err(write)?;
        }
        envfile::write_atomically(&full, content.as_bytes()).map_err(write)?;
        written.push(path.clone());
    }
    Ok(written)
}
