//! Build contexts straight from git objects: the files of a directory at a
//! commit, filtered by `.dockerignore`, written as a tar stream, and digested
//! (path, mode, blob id) into the image's input key. The working tree is never
//! read, so a dirty checkout or another branch cannot leak in.

use std::io::Write;
use std::path::{Path, PathBuf};

use git2::{ObjectType, Oid, Repository, Tree};
use sha2::{Digest, Sha256};

use super::dockerignore::DockerIgnore;

/// Where the Dockerfile goes in the tar when it lives outside the context.
pub const OUTSIDE_DOCKERFILE: &str = ".relctl.Dockerfile";

/// One image's build context: `context` of `commit` in the repository at `repo`.
#[derive(Debug, Clone)]
pub struct ContextSpec {
    pub repo: PathBuf,
    pub commit: String,
    /// Context directory relative to the repository root; `""` is the root.
    pub context: String,
    /// Dockerfile relative to the repository root.
    pub dockerfile: String,
}

/// One file of the context as it goes into the tar.
struct Entry {
    path: String,
    /// Git file mode: 0o100644, 0o100755 or 0o120000 (symlink).
    mode: i32,
    oid: Oid,
}

/// The filtered file list of a context, in tree order.
struct Listing {
    entries: Vec<Entry>,
    mtime: u64,
}

impl ContextSpec {
    /// The Dockerfile's path inside the tar, as the Engine API's `dockerfile` parameter.
    pub fn dockerfile_in_tar(&self) -> String {
        if self.context.is_empty() {
            return self.dockerfile.clone();
        }
        match self.dockerfile.strip_prefix(&format!("{}/", self.context)) {
            Some(inside) => inside.to_string(),
            None => OUTSIDE_DOCKERFILE.to_string(),
        }
    }

    /// Lists what the daemon would receive: the context's files minus what
    /// `.dockerignore` excludes (the Dockerfile and .dockerignore always stay).
    fn list(&self, repo: &Repository) -> std::io::Result<Listing> {
        let commit = repo.revparse_single(&self.commit).and_then(|o| o.peel_to_commit()).map_err(io)?;
        let mtime = commit.time().seconds().max(0) as u64;
        let root = commit.tree().map_err(io)?;
        let tree = if self.context.is_empty() {
            root.clone()
        } else {
            root.get_path(Path::new(&self.context))
                .and_then(|e| e.to_object(repo))
                .and_then(|o| o.peel_to_tree())
                .map_err(io)?
        };
        let in_tar = self.dockerfile_in_tar();
        let ignore_text = [format!("{in_tar}.dockerignore"), ".dockerignore".to_string()]
            .iter()
            .find_map(|p| blob_at(repo, &tree, p))
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default();
        let ignore = DockerIgnore::parse(&ignore_text).map_err(|line| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!(".dockerignore line `{line}` is not a valid pattern"),
            )
        })?;
        let mut entries = Vec::new();
        walk(repo, &tree, "", &ignore, [in_tar.as_str(), ".dockerignore"], &mut entries)?;
        if in_tar == OUTSIDE_DOCKERFILE {
            let entry = root.get_path(Path::new(&self.dockerfile)).map_err(io)?;
            entries.push(Entry { path: OUTSIDE_DOCKERFILE.into(), mode: 0o100644, oid: entry.id() });
        }
        Ok(Listing { entries, mtime })
    }

    /// Writes the context as a tar to `out`, one blob in memory at a time;
    /// returns the number of files written.
    pub fn write_tar(&self, out: &mut dyn Write) -> std::io::Result<u64> {
        super::tune_libgit2();
        let repo = Repository::open(&self.repo).map_err(io)?;
        let listing = self.list(&repo)?;
        let mut tar = tar::Builder::new(out);
        for e in &listing.entries {
            let blob = repo.find_blob(e.oid).map_err(io)?;
            let mut h = tar::Header::new_gnu();
            h.set_mtime(listing.mtime);
            if e.mode == 0o120000 {
                h.set_entry_type(tar::EntryType::Symlink);
                h.set_size(0);
                h.set_mode(0o777);
                tar.append_link(&mut h, &e.path, String::from_utf8_lossy(blob.content()).as_ref())?;
            } else {
                h.set_entry_type(tar::EntryType::Regular);
                h.set_size(blob.content().len() as u64);
                h.set_mode(if e.mode & 0o111 != 0 { 0o755 } else { 0o644 });
                tar.append_data(&mut h, &e.path, blob.content())?;
            }
        }
        tar.finish()?;
        Ok(listing.entries.len() as u64)
    }

    /// SHA-256 over (path, mode, blob id) of every file the daemon would receive,
    /// and the Dockerfile's path: equal digests mean equal build contexts. Reads
    /// only trees, never blob contents.
    pub fn digest(&self) -> std::io::Result<String> {
        let repo = Repository::open(&self.repo).map_err(io)?;
        let listing = self.list(&repo)?;
        let mut h = Sha256::new();
        h.update(format!("dockerfile {}\n", self.dockerfile_in_tar()));
        for e in &listing.entries {
            h.update(format!("{:o} {} {}\n", e.mode, e.oid, e.path));
        }
        Ok(hex(&h.finalize()))
    }
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn walk(
    repo: &Repository,
    tree: &Tree,
    prefix: &str,
    ignore: &DockerIgnore,
    keep: [&str; 2],
    out: &mut Vec<Entry>,
) -> std::io::Result<()> {
    for entry in tree.iter() {
        let name = entry.name().map_err(|_| std::io::Error::other("non-UTF-8 file name in git tree"))?;
        let path = format!("{prefix}{name}");
        match entry.kind() {
            Some(ObjectType::Tree) => {
                let sub = entry.to_object(repo).and_then(|o| o.peel_to_tree()).map_err(io)?;
                walk(repo, &sub, &format!("{path}/"), ignore, keep, out)?;
            }
            Some(ObjectType::Blob) => {
                if ignore.excludes(&path) && !keep.contains(&path.as_str()) {
                    continue;
                }
                out.push(Entry { path, mode: entry.filemode(), oid: entry.id() });
            }
            // Submodules (commits) have no content in this repository.
            _ => tracing::warn!(path, "skipping submodule in build context"),
        }
    }
    Ok(())
}

fn blob_at(repo: &Repository, tree: &Tree, path: &str) -> Option<Vec<u8>> {
    let entry = tree.get_path(Path::new(path)).ok()?;
    let blob = entry.to_object(repo).ok()?.into_blob().ok()?;
    Some(blob.content().to_vec())
}

fn io(e: git2::Error) -> std::io::Error {
    std::io::Error::other(e.message().to_string())
}
