//! Compare-and-swap pushes to a remote that is a path on this machine.
//!
//! libgit2 pushes to a local remote by checking fast-forward against the tip
//! it read when it connected, then overwriting the branch: two pushes at once
//! can both succeed and the first commit is lost. A git server (receive-pack)
//! compares and swaps atomically. For a local remote relctl therefore writes
//! the commit's new objects into the remote's object database itself and
//! moves the branch with libgit2's compare-and-swap; no ref of relctl's ever
//! appears there, so fetches running meanwhile see nothing in flux.

use std::path::{Path, PathBuf};

use git2::{ErrorCode, ObjectType, Oid, Repository};

use super::PushOutcome;

/// The repository a remote URL names when it is on this machine
/// (`/srv/app.git`, `../app.git`, `file:///srv/app.git`); relative paths are
/// taken from `base`, the repository's root.
pub fn path_of(url: &str, base: &Path) -> Option<PathBuf> {
    let path = match url.strip_prefix("file://") {
        Some(path) => PathBuf::from(path),
        None if url.contains("://") => return None,
        None => base.join(url),
    };
    path.exists().then_some(path)
}

/// Moves `branch` of the repository at `remote` from `expected` to `new`, a
/// commit of `repo`, after copying the objects it lacks. Rejected when the
/// branch was not at `expected`, locked when a lock file of the branch
/// exists: the caller fetches and tries again.
pub fn push(
    repo: &Repository,
    remote: &Path,
    branch: &str,
    new: Oid,
    expected: Oid,
) -> Result<PushOutcome, git2::Error> {
    let target = Repository::open(remote)?;
    copy_missing(repo, &target, new)?;
    let swapped =
        target.reference_matching(&format!("refs/heads/{branch}"), new, true, expected, "relctl: release commit");
    match swapped {
        Ok(_) => Ok(PushOutcome::Pushed),
        Err(e) if super::held_lock(&e) => {
            // The git directory: `<remote>/.git` for a remote that has a work tree.
            let lock = target.path().join(format!("refs/heads/{branch}.lock"));
            Ok(PushOutcome::Locked { why: e.message().to_string(), lock: Some(lock.display().to_string()) })
        }
        Err(e) if e.code() == ErrorCode::Modified => Ok(PushOutcome::Rejected(e.message().to_string())),
        Err(e) => Err(e),
    }
}

/// Writes every object reachable from `commit` that `to` lacks (a commit,
/// its new trees and blobs; history it has stops the walk), each after the
/// objects it refers to, so an interrupted copy never leaves `to` with an
/// object whose parts are missing.
fn copy_missing(from: &Repository, to: &Repository, commit: Oid) -> Result<(), git2::Error> {
    let (src, dst) = (from.odb()?, to.odb()?);
    let mut seen = std::collections::HashSet::new();
    // Depth first; an object is written once everything below it is.
    let mut stack = vec![(commit, false)];
    while let Some((id, below_written)) = stack.pop() {
        if below_written {
            let object = src.read(id)?;
            dst.write(object.kind(), object.data())?;
            continue;
        }
        if !seen.insert(id) || dst.exists(id) {
            continue;
        }
        stack.push((id, true));
        match src.read_header(id)?.1 {
            ObjectType::Commit => {
                let c = from.find_commit(id)?;
                stack.extend(c.parent_ids().chain([c.tree_id()]).map(|id| (id, false)));
            }
            // Submodule entries name commits of another repository.
            ObjectType::Tree => stack.extend(
                from.find_tree(id)?.iter().filter(|e| e.kind() != Some(ObjectType::Commit)).map(|e| (e.id(), false)),
            ),
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use git2::Signature;

    use super::*;
    use crate::git::{FileChange, Git2Repo, GitRepo, PushOutcome};

    #[test]
    fn local_urls_are_recognised() {
        let dir = tempfile::tempdir().unwrap();
        let here = dir.path().to_str().unwrap();
        assert_eq!(path_of(here, Path::new("/")), Some(dir.path().to_path_buf()));
        assert_eq!(path_of(&format!("file://{here}"), Path::new("/")), Some(dir.path().to_path_buf()));
        assert_eq!(path_of(".", dir.path()), Some(dir.path().join(".")));
        assert_eq!(path_of("https://github.com/o/r.git", dir.path()), None);
        assert_eq!(path_of("git@github.com:o/r.git", dir.path()), None, "scp-like ssh, no such path");
    }

    /// Two releases writing VERSION commits into one clone at once (two
    /// processes, or two runs of one): every push is either on the remote or
    /// reported rejected (to be fetched and retried), never lost and never
    /// failed on a lock; nothing of relctl's is left under refs/relctl.
    #[test]
    fn side_by_side_pushes_in_one_clone_lose_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let remote = Repository::init_bare(dir.path().join("remote.git")).unwrap();
        let work = dir.path().join("work");
        let repo = Repository::init(&work).unwrap();
        let sig = Signature::now("t", "t@example.invalid").unwrap();
        let tree = repo.find_tree(repo.treebuilder(None).unwrap().write().unwrap()).unwrap();
        repo.commit(Some("refs/heads/main"), &sig, &sig, "root", &tree, &[]).unwrap();
        repo.remote("origin", remote.path().to_str().unwrap()).unwrap();
        repo.find_remote("origin").unwrap().push(&["refs/heads/main:refs/heads/main"], None).unwrap();

        let pushed = std::sync::Mutex::new(Vec::new());
        std::thread::scope(|s| {
            for who in ["a", "b"] {
                let (work, pushed) = (&work, &pushed);
                s.spawn(move || {
                    let git = Git2Repo::open(work, "origin", "main").unwrap();
                    for n in 0..15 {
                        git.fetch().unwrap();
                        let tip = git.branch_tip().unwrap();
                        let change = FileChange { path: "VERSION".into(), content: format!("{who}{n}\n").into_bytes() };
                        let commit = git.commit_on(&tip, &[change], "release", ("t", "t@example.invalid")).unwrap();
                        match git.push_branch(&commit) {
                            Ok(PushOutcome::Pushed) => pushed.lock().unwrap().push(commit),
                            Ok(PushOutcome::Rejected(_) | PushOutcome::Locked { .. }) => {}
                            Err(e) => panic!("{who}: push {n}: {e}"),
                        }
                    }
                });
            }
        });
        let mut walk = remote.revwalk().unwrap();
        walk.push(remote.refname_to_id("refs/heads/main").unwrap()).unwrap();
        let history: Vec<String> = walk.map(|c| c.unwrap().to_string()).collect();
        let pushed = pushed.into_inner().unwrap();
        assert!(!pushed.is_empty());
        assert_eq!(history.len(), pushed.len() + 1, "the root and every push reported pushed");
        assert!(pushed.iter().all(|c| history.contains(c)));
        for repo in [&repo, &remote] {
            let left: Vec<String> = repo
                .references_glob("refs/relctl/*")
                .unwrap()
                .map(|r| r.unwrap().name().unwrap().to_string())
                .collect();
            assert!(left.is_empty(), "{left:?}");
        }
    }
}
