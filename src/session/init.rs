//! `relctl init`: release.yaml and a release workflow for the repository it
//! runs in, fitted to the Dockerfiles it finds, and named after its GitHub
//! remote (or its directory). It writes no VERSION: the release pipeline reads
//! an absent VERSION as "nothing released yet" (plan::version commits the first
//! stable release over it), so VERSION never names a version with no images.

use std::path::{Path, PathBuf};

use crate::config::oci;
use crate::forge::RepoId;
use crate::git::GitError;
use crate::install::envfile;
use crate::install::init::{self, FoundImage, Settings};

/// Why `init` wrote nothing.
#[derive(Debug, thiserror::Error)]
pub enum InitError {
    #[error(transparent)]
    Git(#[from] GitError),
    #[error("relctl init would overwrite {}", .0.join(", "))]
    WouldOverwrite(Vec<String>),
    #[error("`{value}` is not a valid {what}")]
    Invalid { what: &'static str, value: String, hint: &'static str },
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
            InitError::WouldOverwrite(_) | InitError::Invalid { .. } => 2,
            InitError::Write { .. } => 1,
        }
    }

    pub fn hint(&self) -> String {
        match self {
            InitError::Git(e) => e.hint(),
            InitError::WouldOverwrite(_) => "pass --force to overwrite them".into(),
            InitError::Invalid { hint, .. } => hint.to_string(),
            InitError::Write { .. } => "check the directory's permissions".into(),
        }
    }
}

/// What `relctl init` was asked for.
#[derive(Debug, Clone, Default)]
pub struct InitOptions {
    /// Overwrite release.yaml and the workflow when they exist.
    pub force: bool,
    /// `registry:` (default docker.io).
    pub registry: Option<String>,
    /// `namespace:` (default: the GitHub owner, else the directory's name).
    pub namespace: Option<String>,
}

/// What `init` found, guessed and wrote.
#[derive(Debug, Clone)]
pub struct InitReport {
    pub settings: Settings,
    /// Where namespace and project came from, e.g. "the origin remote".
    pub names_from: String,
    /// The images found; empty when there was no Dockerfile and release.yaml lists placeholders.
    pub images: Vec<FoundImage>,
    /// The files written, relative to the repository.
    pub written: Vec<PathBuf>,
    /// What the user should look at: a .dockerignore that sends VERSION, the placeholder SHA.
    pub notes: Vec<String>,
}

/// Writes the files `init` generates into the repository at `root`.
pub fn init(root: &Path, options: &InitOptions) -> Result<InitReport, InitError> {
    // The files go to the top of the work tree, where every other command looks for them.
    let top = crate::git::work_tree_of(root);
    let root = top.as_deref().unwrap_or(root);
    let repo = git2::Repository::discover(root)
        .map_err(|e| GitError::NotARepository { path: root.to_path_buf(), message: e.message().to_string() })?;
    let url = repo.find_remote("origin").ok().and_then(|r| r.url().ok().map(str::to_string)).unwrap_or_default();
    let github_repository = std::env::var("GITHUB_REPOSITORY").ok();
    let dir_name = root
        .canonicalize()
        .ok()
        .and_then(|p| p.file_name().and_then(|n| init::normalise_name(&n.to_string_lossy())))
        .unwrap_or_else(|| "app".into());
    let (namespace, project, names_from) = match RepoId::resolve(github_repository.as_deref(), &url) {
        Ok(id) => {
            let from = if github_repository.as_deref().is_some_and(|s| !s.trim().is_empty()) {
                "GITHUB_REPOSITORY"
            } else {
                "the origin remote"
            };
            let component = |s: &str| init::normalise_name(s).unwrap_or_else(|| dir_name.clone());
            (component(&id.owner), component(&id.name), format!("{from} ({}/{})", id.owner, id.name))
        }
        Err(_) => (dir_name.clone(), dir_name.clone(), "the directory's name (no GitHub remote)".to_string()),
    };
    let registry = options.registry.clone().unwrap_or_else(|| "docker.io".into());
    if !oci::is_registry_host(&registry) {
        return Err(InitError::Invalid {
            what: "registry host[:port]",
            value: registry,
            hint: "pass the host only, e.g. --registry ghcr.io or --registry 127.0.0.1:5000 (no scheme, no path)",
        });
    }
    let namespace = match &options.namespace {
        Some(ns) if !oci::is_repository(ns) => {
            return Err(InitError::Invalid {
                what: "repository namespace",
                value: ns.clone(),
                hint: "use lowercase letters, digits and single separators (. _ -), e.g. --namespace acme",
            });
        }
        Some(ns) => ns.clone(),
        None => namespace,
    };
    let settings = Settings { registry, namespace, project };

    let images = init::find_images(root, &settings.project);
    let mut files = init::files(&settings, &images);
    let existing: Vec<String> =
        files.iter().filter(|(p, _)| root.join(p).exists()).map(|(p, _)| p.display().to_string()).collect();
    if !existing.is_empty() && !options.force {
        return Err(InitError::WouldOverwrite(existing));
    }

    // A context at the root sends VERSION, which every release rewrites: keep it
    // out with a .dockerignore of the Dockerfile's own where there is none.
    let mut notes = Vec::new();
    for image in images.iter().filter(|i| i.context == ".") {
        match init::effective_dockerignore(root, &image.dockerfile) {
            None => files.push((
                PathBuf::from(format!("{}.dockerignore", image.dockerfile)),
                init::version_dockerignore(&image.dockerfile),
            )),
            Some(path) => {
                let text = std::fs::read_to_string(root.join(&path)).unwrap_or_default();
                if !init::ignores_version(&text) {
                    notes.push(format!(
                        "{path} does not list VERSION: {} (context .) is built again in every release unless it does",
                        image.name
                    ));
                }
            }
        }
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
    notes.push(format!(
        "{} pins relctl/relctl to a placeholder SHA ({}…): replace it with the full commit SHA of the relctl release you use",
        init::WORKFLOW_PATH,
        &init::ACTION_SHA_PLACEHOLDER[..7]
    ));
    Ok(InitReport { settings, names_from, images, written, notes })
}

/// What `relctl init` prints on stdout: one line per image found (or a loud
/// note about the placeholders), the names, the files written, then notes.
impl std::fmt::Display for InitReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let Settings { registry, namespace, project } = &self.settings;
        if !self.images.is_empty() {
            let n = self.images.len();
            writeln!(f, "found {n} Dockerfile{}:", if n == 1 { "" } else { "s" })?;
        }
        let width = self.images.iter().map(|i| i.name.len()).max().unwrap_or(0);
        for image in &self.images {
            let check = if image.guessed { "  <- check this" } else { "" };
            writeln!(
                f,
                "  image {:width$}  {}, context {} ({}){check}",
                image.name, image.dockerfile, image.context, image.why
            )?;
        }
        writeln!(f, "registry {registry}, namespace {namespace}, project {project} (names from {})", self.names_from)?;
        for path in &self.written {
            let why = if path.extension().is_some_and(|e| e == "dockerignore") {
                " (keeps VERSION out of a context at the root, else the image is rebuilt every release)"
            } else {
                ""
            };
            writeln!(f, "wrote {}{why}", path.display())?;
        }
        writeln!(f, "VERSION: not written; the first release commits it (no VERSION means nothing is released yet)")?;
        for note in &self.notes {
            writeln!(f, "note: {note}")?;
        }
        if self.images.is_empty() {
            let images = init::DEFAULT_IMAGES.join(", ");
            let depth = init::MAX_DEPTH;
            writeln!(
                f,
                "NOTE: NO DOCKERFILE FOUND (Dockerfile or Dockerfile.<name>, at the root or up to {depth} directories below it)."
            )?;
            writeln!(f, "NOTE: release.yaml lists five PLACEHOLDER images ({images}) whose Dockerfiles do not exist;")?;
            writeln!(f, "NOTE: edit `images:` in release.yaml (one entry per image: its context and Dockerfile).")?;
            return writeln!(f, "next: edit `images:` in release.yaml, then `relctl plan`");
        }
        writeln!(f, "next: review release.yaml, then `relctl plan`")
    }
}
