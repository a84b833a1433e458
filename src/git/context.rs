//! Build contexts straight from git objects: the files of a directory at a
//! commit, filtered by `.dockerignore`, written as a tar stream. The working
//! tree is never read, so a dirty checkout or another branch cannot leak in.

use std::io::Write;
use std::path::{Path, PathBuf};

use git2::{ObjectType, Repository, Tree};

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

    /// Writes the context as a tar to `out`; returns the number of files written.
    pub fn write_tar(&self, out: &mut dyn Write) -> std::io::Result<u64> {
        let repo = Repository::open(&self.repo).map_err(io)?;
        let commit = repo.revparse_single(&self.commit).and_then(|o| o.peel_to_commit()).map_err(io)?;
        let mtime = commit.time().seconds().max(0) as u64;
        let root = commit.tree().map_err(io)?;
        let tree = if self.context.is_empty() {
            root.clone()
        } else {
            root.get_path(Path::new(&self.context))
                .and_then(|e| e.to_object(&repo))
                .and_then(|o| o.peel_to_tree())
                .map_err(io)?
        };
        let in_tar = self.dockerfile_in_tar();
        let ignore_text = [format!("{in_tar}.dockerignore"), ".dockerignore".to_string()]
            .iter()
            .find_map(|p| blob_at(&repo, &tree, p))
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default();
        let ignore = DockerIgnore::parse(&ignore_text).map_err(|line| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!(".dockerignore line `{line}` is not a valid pattern"),
            )
        })?;

        let mut tar = tar::Builder::new(out);
        let mut files = 0;
        let mut walk = Walk {
            repo: &repo,
            ignore: &ignore,
            keep: [in_tar.as_str(), ".dockerignore"],
            mtime,
            tar: &mut tar,
            files: &mut files,
        };
        walk.tree(&tree, "")?;
        if in_tar == OUTSIDE_DOCKERFILE {
            let blob = blob_at(&repo, &root, &self.dockerfile).ok_or_else(|| {
                std::io::Error::new(std::io::ErrorKind::NotFound, format!("{} not in commit", self.dockerfile))
            })?;
            append_file(&mut tar, OUTSIDE_DOCKERFILE, &blob, 0o644, mtime)?;
            files += 1;
        }
        tar.finish()?;
        Ok(files)
    }
}

struct Walk<'a, 'w> {
    repo: &'a Repository,
    ignore: &'a DockerIgnore,
    /// Docker always sends the Dockerfile and .dockerignore, ignored or not.
    keep: [&'a str; 2],
    mtime: u64,
    tar: &'a mut tar::Builder<&'w mut dyn Write>,
    files: &'a mut u64,
}

impl Walk<'_, '_> {
    fn tree(&mut self, tree: &Tree, prefix: &str) -> std::io::Result<()> {
        for entry in tree.iter() {
            let name = entry.name().map_err(|_| std::io::Error::other("non-UTF-8 file name in git tree"))?;
            let path = format!("{prefix}{name}");
            match entry.kind() {
                Some(ObjectType::Tree) => {
                    let sub = entry.to_object(self.repo).and_then(|o| o.peel_to_tree()).map_err(io)?;
                    self.tree(&sub, &format!("{path}/"))?;
                }
                Some(ObjectType::Blob) => {
                    if self.ignore.excludes(&path) && !self.keep.contains(&path.as_str()) {
                        continue;
                    }
                    let blob = self.repo.find_blob(entry.id()).map_err(io)?;
                    let mode = entry.filemode();
                    if mode == 0o120000 {
                        let target = String::from_utf8_lossy(blob.content()).into_owned();
                        let mut h = tar::Header::new_gnu();
                        h.set_entry_type(tar::EntryType::Symlink);
                        h.set_size(0);
                        h.set_mode(0o777);
                        h.set_mtime(self.mtime);
                        self.tar.append_link(&mut h, &path, target)?;
                    } else {
                        let perm = if mode & 0o111 != 0 { 0o755 } else { 0o644 };
                        append_file(self.tar, &path, blob.content(), perm, self.mtime)?;
                    }
                    *self.files += 1;
                }
                // Submodules (commits) have no content in this repository.
                _ => tracing::warn!(path, "skipping submodule in build context"),
            }
        }
        Ok(())
    }
}

fn append_file<W: Write>(
    tar: &mut tar::Builder<W>,
    path: &str,
    data: &[u8],
    mode: u32,
    mtime: u64,
) -> std::io::Result<()> {
    let mut h = tar::Header::new_gnu();
    h.set_size(data.len() as u64);
    h.set_mode(mode);
    h.set_mtime(mtime);
    h.set_entry_type(tar::EntryType::Regular);
    tar.append_data(&mut h, path, data)
}

fn blob_at(repo: &Repository, tree: &Tree, path: &str) -> Option<Vec<u8>> {
    let entry = tree.get_path(Path::new(path)).ok()?;
    let blob = entry.to_object(repo).ok()?.into_blob().ok()?;
    Some(blob.content().to_vec())
}

fn io(e: git2::Error) -> std::io::Error {
    std::io::Error::other(e.message().to_string())
}
