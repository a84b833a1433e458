//! Build contexts straight from git objects: the files of a directory at a
//! commit, filtered by `.dockerignore`, written as a tar stream, and digested
//! (path, mode, blob id) into the image's input key. The working tree is never
//! read, so a dirty checkout or another branch cannot leak in. Every file is
//! stamped with the time of the commit that last changed the context, so an
//! unchanged context gives byte-identical `COPY` layers in every release.

mod blob_budget;
mod delta;
pub mod dockerfile;
pub mod dockerignore;
mod file_contents;
mod object_stream;

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use git2::{Commit, ObjectType, Oid, Repository, Tree};
use sha2::{Digest, Sha256};

use blob_budget::BLOBS;
use dockerfile::{BuildArgs, Inputs};
use dockerignore::DockerIgnore;
use file_contents::FileContents;

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
#[derive(PartialEq)]
struct Entry {
    path: String,
    /// Git file mode: 0o100644, 0o100755 or 0o120000 (symlink).
    mode: i32,
    oid: Oid,
}

/// The filtered file list of a context, in tree order.
#[derive(PartialEq)]
struct Listing {
    entries: Vec<Entry>,
}

/// How far back [`ContextSpec::unchanged_since`] looks: first-parent commits
/// walked, and of those, commits whose context tree differs but might list
/// the same files after `.dockerignore`.
const SINCE_WALK: usize = 1000;
const SINCE_LISTINGS: usize = 20;

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

    fn commit<'r>(&self, repo: &'r Repository) -> std::io::Result<Commit<'r>> {
        repo.revparse_single(&self.commit).and_then(|o| o.peel_to_commit()).map_err(io)
    }

    /// Lists what the daemon would receive: the context's files minus what
    /// `.dockerignore` excludes (the Dockerfile and .dockerignore always stay).
    fn list(&self, repo: &Repository, commit: &Commit) -> std::io::Result<Listing> {
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
        let ignore =
            DockerIgnore::parse(&ignore_text).map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))?;
        let mut entries = Vec::new();
        walk(repo, &tree, "", &ignore, [in_tar.as_str(), ".dockerignore"], &mut entries)?;
        if in_tar == OUTSIDE_DOCKERFILE {
            let entry = root.get_path(Path::new(&self.dockerfile)).map_err(io)?;
            entries.push(Entry { path: OUTSIDE_DOCKERFILE.into(), mode: 0o100644, oid: entry.id() });
        }
        Ok(Listing { entries })
    }

    /// What the listing of `commit` is built from: the context's tree and,
    /// when it lives outside, the Dockerfile's blob. Equal sources list equal files.
    fn sources(&self, commit: &Commit) -> Option<(Oid, Option<Oid>)> {
        let root = commit.tree().ok()?;
        let tree = if self.context.is_empty() { root.id() } else { root.get_path(Path::new(&self.context)).ok()?.id() };
        let outside = (self.dockerfile_in_tar() == OUTSIDE_DOCKERFILE)
            .then(|| root.get_path(Path::new(&self.dockerfile)).ok().map(|e| e.id()));
        Some((tree, outside.flatten()))
    }

    /// The commit time of the oldest first-parent ancestor of `commit` since
    /// which the daemon would have received these same files: the time the
    /// context last changed. Used as every file's mtime, so a context that did
    /// not change makes the same tar, and `COPY` makes the same layer (same
    /// digest: nothing to upload or pull again), even when a new parent image
    /// forces the build. A walk cut short by [`SINCE_WALK`], [`SINCE_LISTINGS`]
    /// or a shallow clone's boundary still gives one answer per commit.
    fn unchanged_since(&self, repo: &Repository, commit: &Commit, listing: &Listing) -> i64 {
        let mut oldest = commit.clone();
        let mut sources = self.sources(commit);
        let mut listings = 0;
        for _ in 0..SINCE_WALK {
            let Ok(parent) = oldest.parent(0) else { break };
            let parent_sources = self.sources(&parent);
            if parent_sources.is_none() {
                break;
            }
            if parent_sources != sources {
                listings += 1;
                if listings > SINCE_LISTINGS || self.list(repo, &parent).ok().as_ref() != Some(listing) {
                    break;
                }
                sources = parent_sources;
            }
            oldest = parent;
        }
        oldest.time().seconds()
    }

    /// Writes the context as a tar to `out`, one file at a time (see
    /// [`FileContents`] for how much of it is in memory); returns the number
    /// of files written.
    pub fn write_tar(&self, out: &mut dyn Write) -> std::io::Result<u64> {
        tune_libgit2();
        let repo = Repository::open(&self.repo).map_err(io)?;
        let odb = repo.odb().map_err(io)?;
        let commit = self.commit(&repo)?;
        let listing = self.list(&repo, &commit)?;
        let mtime = self.unchanged_since(&repo, &commit, &listing).max(0) as u64;
        let mut tar = tar::Builder::new(out);
        for e in &listing.entries {
            let mut contents = FileContents::open(&repo, &odb, e.oid, &BLOBS)?;
            let mut h = tar::Header::new_gnu();
            h.set_mtime(mtime);
            if e.mode == 0o120000 {
                let mut target = Vec::new();
                contents.read_to_end(&mut target)?;
                h.set_entry_type(tar::EntryType::Symlink);
                h.set_size(0);
                h.set_mode(0o777);
                tar.append_link(&mut h, &e.path, String::from_utf8_lossy(&target).as_ref())?;
            } else {
                h.set_entry_type(tar::EntryType::Regular);
                h.set_size(contents.size());
                h.set_mode(if e.mode & 0o111 != 0 { 0o755 } else { 0o644 });
                tar.append_data(&mut h, &e.path, &mut contents)?;
            }
        }
        tar.finish()?;
        Ok(listing.entries.len() as u64)
    }

    /// The context's digest, and which of `watched` (paths from the
    /// repository root) the build reads. With `dockerfile_args` (`build.inputs:
    /// dockerfile`), the digest covers the Dockerfile and only the files its
    /// sources select, read with those build arguments (see [`dockerfile`]);
    /// without, or when the Dockerfile's inputs cannot be told, every file of
    /// the context. Reads trees and the Dockerfile, no other blob.
    pub fn summary(&self, watched: &[&str], dockerfile_args: Option<&BuildArgs>) -> std::io::Result<ContextSummary> {
        let repo = Repository::open(&self.repo).map_err(io)?;
        let commit = self.commit(&repo)?;
        let listing = self.list(&repo, &commit)?;
        let mut inputs = None;
        if let Some(args) = dockerfile_args {
            let root = commit.tree().map_err(io)?;
            let text = blob_at(&repo, &root, &self.dockerfile).ok_or_else(|| {
                std::io::Error::new(std::io::ErrorKind::NotFound, format!("no file {}", self.dockerfile))
            })?;
            inputs = Some(match dockerfile::inputs(&String::from_utf8_lossy(&text), args) {
                Inputs::Sources(sources) => {
                    through_symlink(&listing, &sources).map_or(Inputs::Sources(sources), Inputs::Whole)
                }
                whole => whole,
            });
        }
        let in_tar = self.dockerfile_in_tar();
        let selected = |path: &str| match &inputs {
            Some(Inputs::Sources(sources)) => path == in_tar || sources.iter().any(|s| dockerfile::selects(s, path)),
            _ => true,
        };
        let mut h = Sha256::new();
        if let Some(Inputs::Sources(sources)) = &inputs {
            h.update(format!("inputs dockerfile {}\n", sources.len()));
        }
        h.update(format!("dockerfile {in_tar}\n"));
        for e in listing.entries.iter().filter(|e| selected(&e.path)) {
            h.update(format!("{:o} {} {}\n", e.mode, e.oid, e.path));
        }
        let in_context = |path: &str| match self.context.as_str() {
            "" => Some(path.to_string()),
            dir => path.strip_prefix(&format!("{dir}/")).map(str::to_string),
        };
        let sent = watched
            .iter()
            .filter(|w| in_context(w).is_some_and(|p| selected(&p) && listing.entries.iter().any(|e| e.path == p)))
            .map(|w| w.to_string())
            .collect();
        let whole = match inputs {
            Some(Inputs::Whole(why)) => Some(why),
            _ => None,
        };
        Ok(ContextSummary { digest: hex(&h.finalize()), sent, whole })
    }
}

/// Why a source cannot be followed exactly: it names a symlink, or a
/// directory on its way is one (the daemon follows those).
fn through_symlink(listing: &Listing, sources: &[String]) -> Option<String> {
    listing.entries.iter().filter(|e| e.mode == 0o120000).find_map(|e| {
        let source = sources.iter().find(|s| dockerfile::goes_through(s, &e.path))?;
        Some(format!("{source} goes through the symlink {}", e.path))
    })
}

/// What [`ContextSpec::summary`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContextSummary {
    /// SHA-256 over (path, mode, blob id) of every file the build reads, and
    /// the Dockerfile's path: equal digests mean equal inputs.
    pub digest: String,
    /// The watched paths the build reads.
    pub sent: Vec<String>,
    /// With Dockerfile-aware inputs: why they fell back to the whole context.
    pub whole: Option<String>,
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

pub(super) fn io(e: git2::Error) -> std::io::Error {
    std::io::Error::other(e.message().to_string())
}

/// Process-wide libgit2 settings for reading build contexts, applied once:
///
/// - libgit2 reads pack files through memory maps and by default keeps up to
///   8 GiB of them mapped, so every page of a big context's pack that a build
///   read stays in relctl's resident set. Windows of 8 MiB, at most 32 MiB of
///   them mapped, keep that bounded whatever the repository's size.
/// - libgit2 re-hashes every object it reads (SHA-1 with collision
///   detection). git checks objects when they arrive, not on every read, and
///   the daemon hashes the context it receives anyway; skipping the check cut
///   relctl's time producing a 22 MB context from about 130 ms to 75 ms.
pub fn tune_libgit2() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // SAFETY: process-wide libgit2 settings, written once (Once) before
        // any blob is read: both paths that read blobs (`Git2Repo::open` and
        // `ContextSpec::write_tar`) call this first; libgit2 reads them under
        // its mapped-window mutex.
        let set = unsafe {
            git2::opts::set_mwindow_size(8 << 20).and_then(|()| git2::opts::set_mwindow_mapped_limit(32 << 20))
        };
        if let Err(e) = set {
            tracing::debug!("cannot bound libgit2's mapped pack windows: {e}");
        }
        git2::opts::strict_hash_verification(false);
    });
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::time::Duration;

    use git2::{Signature, Time};

    use super::*;

    /// A repository whose commits are made at chosen times.
    struct Repo {
        dir: tempfile::TempDir,
        repo: Repository,
    }

    impl Repo {
        fn new() -> Self {
            let dir = tempfile::tempdir().unwrap();
            let repo = Repository::init(dir.path()).unwrap();
            Repo { dir, repo }
        }

        /// Writes `files` into the work tree and commits everything at `time`.
        fn commit(&self, time: i64, files: &[(&str, &str)]) -> String {
            for (path, content) in files {
                let p = self.dir.path().join(path);
                std::fs::create_dir_all(p.parent().unwrap()).unwrap();
                std::fs::write(p, content).unwrap();
            }
            let mut index = self.repo.index().unwrap();
            index.add_all(["*"], git2::IndexAddOption::DEFAULT, None).unwrap();
            let tree = self.repo.find_tree(index.write_tree().unwrap()).unwrap();
            let sig = Signature::new("t", "t@example.invalid", &Time::new(time, 0)).unwrap();
            let parent = self.repo.head().ok().map(|h| h.peel_to_commit().unwrap());
            let parents: Vec<&git2::Commit> = parent.iter().collect();
            self.repo.commit(Some("HEAD"), &sig, &sig, "c", &tree, &parents).unwrap().to_string()
        }

        fn spec(&self, commit: &str, context: &str, dockerfile: &str) -> ContextSpec {
            ContextSpec {
                repo: self.dir.path().to_path_buf(),
                commit: commit.into(),
                context: context.into(),
                dockerfile: dockerfile.into(),
            }
        }

        fn tar(&self, commit: &str, context: &str, dockerfile: &str) -> Vec<u8> {
            let mut out = Vec::new();
            self.spec(commit, context, dockerfile).write_tar(&mut out).unwrap();
            out
        }

        /// Moves every object into one pack, as a clone or fetch stores them.
        fn pack(&self) {
            let mut walk = self.repo.revwalk().unwrap();
            walk.push_head().unwrap();
            let mut builder = self.repo.packbuilder().unwrap();
            builder.insert_walk(&mut walk).unwrap();
            let objects = self.repo.path().join("objects");
            builder.write(&objects.join("pack"), 0).unwrap();
            for dir in std::fs::read_dir(&objects).unwrap() {
                let dir = dir.unwrap().path();
                if dir.file_name().is_some_and(|n| n.len() == 2) {
                    std::fs::remove_dir_all(dir).unwrap();
                }
            }
        }
    }

    #[test]
    fn no_file_read_whole_is_read_while_the_blob_budget_is_taken() {
        let r = Repo::new();
        let c = r.commit(1_000, &[("a/Dockerfile", "FROM scratch\n"), ("a/x", "x")]);
        r.pack();
        let spec = r.spec(&c, "a", "a/Dockerfile");
        // Other tests of this process writing tars wait for these 100 ms too.
        let all = BLOBS.take(u64::MAX);
        let (tx, rx) = std::sync::mpsc::channel();
        let writer = std::thread::spawn(move || {
            let mut out = Vec::new();
            let files = spec.write_tar(&mut out).unwrap();
            tx.send(files).unwrap();
        });
        assert!(rx.recv_timeout(Duration::from_millis(100)).is_err(), "waits for room in the budget");
        drop(all);
        assert_eq!(rx.recv_timeout(Duration::from_secs(10)).unwrap(), 2, "then writes both files");
        writer.join().unwrap();
    }

    #[test]
    fn packed_and_loose_objects_make_the_same_tar() {
        let r = Repo::new();
        let a = r.dir.path().join("a");
        std::fs::create_dir_all(&a).unwrap();
        std::os::unix::fs::symlink("run.sh", a.join("start")).unwrap();
        std::fs::write(a.join("run.sh"), "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(a.join("run.sh"), std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
        // Large enough to be streamed while loose.
        let big: String = (0..1_500_000).map(|i| char::from(b'a' + (i * 7 % 26) as u8)).collect();
        let c = r.commit(1_000, &[("a/Dockerfile", "FROM scratch\n"), ("a/big", &big)]);
        let loose = r.tar(&c, "a", "a/Dockerfile");
        r.pack();
        assert!(r.tar(&c, "a", "a/Dockerfile") == loose, "the same bytes from a pack");

        let mut archive = tar::Archive::new(&loose[..]);
        let mut files: Vec<(String, u32, u64, Option<String>)> = archive
            .entries()
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                let link = e.link_name().unwrap().map(|l| l.display().to_string());
                (e.path().unwrap().display().to_string(), e.header().mode().unwrap(), e.size(), link)
            })
            .collect();
        files.sort();
        assert_eq!(
            files,
            [
                ("Dockerfile".into(), 0o644, 13, None),
                ("big".into(), 0o644, 1_500_000, None),
                ("run.sh".into(), 0o755, 10, None),
                ("start".into(), 0o777, 0, Some("run.sh".into())),
            ]
        );
    }

    /// The mtime of every file in `tar`, which must all be the same.
    fn mtime(tar: &[u8]) -> u64 {
        let mut archive = tar::Archive::new(tar);
        let times: BTreeSet<u64> = archive.entries().unwrap().map(|e| e.unwrap().header().mtime().unwrap()).collect();
        assert_eq!(times.len(), 1, "one mtime for all files: {times:?}");
        times.into_iter().next().unwrap()
    }

    #[test]
    fn files_carry_the_time_their_context_last_changed() {
        let r = Repo::new();
        let c1 =
            r.commit(1_000, &[("a/Dockerfile", "FROM scratch\n"), ("a/x", "x1"), ("b/Dockerfile", "FROM scratch\n")]);
        let c2 = r.commit(2_000, &[("b/y", "y1")]);
        let c3 = r.commit(3_000, &[("a/x", "x2")]);

        // b changed at 2000; a did not, so its tar at c2 is the tar at c1, byte for byte.
        assert_eq!(mtime(&r.tar(&c2, "b", "b/Dockerfile")), 2_000);
        assert_eq!(mtime(&r.tar(&c2, "a", "a/Dockerfile")), 1_000);
        assert_eq!(r.tar(&c2, "a", "a/Dockerfile"), r.tar(&c1, "a", "a/Dockerfile"));
        // a changed at 3000; b did not.
        assert_eq!(mtime(&r.tar(&c3, "a", "a/Dockerfile")), 3_000);
        assert_eq!(mtime(&r.tar(&c3, "b", "b/Dockerfile")), 2_000);
        // The repository root changes with every commit.
        assert_eq!(mtime(&r.tar(&c3, "", "a/Dockerfile")), 3_000);
    }

    #[test]
    fn files_dockerignore_excludes_do_not_move_the_time() {
        let r = Repo::new();
        let c1 = r.commit(1_000, &[("a/Dockerfile", "FROM scratch\n"), ("a/.dockerignore", "*.md\n"), ("a/x", "x")]);
        let c2 = r.commit(2_000, &[("a/NOTES.md", "excluded")]);
        assert_eq!(r.tar(&c2, "a", "a/Dockerfile"), r.tar(&c1, "a", "a/Dockerfile"));
        assert_eq!(mtime(&r.tar(&c2, "a", "a/Dockerfile")), 1_000);

        let c3 = r.commit(3_000, &[("a/.dockerignore", "*.md\nx\n")]);
        assert_eq!(mtime(&r.tar(&c3, "a", "a/Dockerfile")), 3_000, "a new .dockerignore is a change");
    }

    #[test]
    fn a_dockerfile_outside_the_context_counts_as_part_of_it() {
        let r = Repo::new();
        r.commit(1_000, &[("docker/a.Dockerfile", "FROM scratch\n"), ("a/x", "x")]);
        let c2 = r.commit(2_000, &[("docker/a.Dockerfile", "FROM scratch\nCOPY x /x\n")]);
        let c3 = r.commit(3_000, &[("docker/other", "o")]);
        assert_eq!(mtime(&r.tar(&c2, "a", "docker/a.Dockerfile")), 2_000);
        assert_eq!(mtime(&r.tar(&c3, "a", "docker/a.Dockerfile")), 2_000);
    }

    #[test]
    fn the_summary_names_the_watched_files_the_context_sends() {
        let r = Repo::new();
        let c = r.commit(
            1_000,
            &[
                ("VERSION", "v1.0.0\n"),
                ("README.md", "r"),
                (".dockerignore", "*.md\n"),
                ("a/x", "x"),
                ("a/Dockerfile", "FROM scratch\n"),
            ],
        );
        let spec = |context: &str| r.spec(&c, context, "a/Dockerfile");
        let watched = ["VERSION", "README.md", "a/x"];
        assert_eq!(spec("").summary(&watched, None).unwrap().sent, ["VERSION", "a/x"], "README.md is ignored");
        assert_eq!(spec("a").summary(&watched, None).unwrap().sent, ["a/x"]);
        assert_ne!(spec("").summary(&[], None).unwrap().digest, spec("a").summary(&[], None).unwrap().digest);
    }

    #[test]
    fn dockerfile_inputs_cover_the_dockerfile_and_the_files_it_copies() {
        let r = Repo::new();
        let dockerfile = "FROM scratch\nARG DIR=src\nCOPY ${DIR} /src\nCOPY conf/*.toml /etc/\n";
        let c1 = r.commit(
            1_000,
            &[
                ("docker/server/Dockerfile", dockerfile),
                (".dockerignore", "src/*.tmp\n"),
                ("VERSION", "v1.0.0\n"),
                ("src/main.rs", "fn main() {}"),
                ("conf/a.toml", "a"),
                ("conf/b.json", "b"),
            ],
        );
        let args = BuildArgs::default();
        let summary = |c: &str, args: &BuildArgs| {
            r.spec(c, "", "docker/server/Dockerfile").summary(&["VERSION", "src/main.rs"], Some(args)).unwrap()
        };
        let s1 = summary(&c1, &args);
        assert_eq!((s1.sent.as_slice(), s1.whole.as_deref()), (&["src/main.rs".to_string()][..], None));
        assert_ne!(s1.digest, r.spec(&c1, "", "docker/server/Dockerfile").summary(&[], None).unwrap().digest);
        for (files, changes) in [
            (&[("VERSION", "v1.1.0\n")][..], false),
            (&[("README.md", "new")], false),
            (&[("conf/b.json", "c")], false),
            (&[("src/x.tmp", "ignored")], false),
            (&[("src/main.rs", "fn main() { }")], true),
            (&[("conf/c.toml", "c")], true),
            (&[("docker/server/Dockerfile", &format!("{dockerfile}LABEL a=b\n"))], true),
        ] {
            let c = r.commit(2_000, files);
            assert_eq!(summary(&c, &args).digest != s1.digest, changes, "{files:?}");
            r.commit(3_000, &[("docker/server/Dockerfile", dockerfile), ("src/main.rs", "fn main() {}")]);
        }
        let other = BuildArgs { values: [("DIR".to_string(), "conf".to_string())].into(), ..BuildArgs::default() };
        assert_ne!(summary(&c1, &other).digest, s1.digest, "a build argument picks other files");

        let c = r.commit(4_000, &[("docker/server/Dockerfile", "FROM scratch\nCOPY . .\n")]);
        let s = summary(&c, &args);
        assert_eq!(s.whole.as_deref(), Some("COPY . ."));
        assert_eq!(s.sent, ["VERSION", "src/main.rs"]);
        assert_eq!(s.digest, r.spec(&c, "", "docker/server/Dockerfile").summary(&[], None).unwrap().digest);

        std::os::unix::fs::symlink("src", r.dir.path().join("app")).unwrap();
        let c = r.commit(5_000, &[("docker/server/Dockerfile", "FROM scratch\nCOPY app/main.rs /\n")]);
        assert_eq!(summary(&c, &args).whole.as_deref(), Some("app/main.rs goes through the symlink app"));
    }

    #[test]
    fn the_time_is_where_the_context_appeared() {
        let r = Repo::new();
        r.commit(1_000, &[("other", "o")]);
        let c2 = r.commit(2_000, &[("a/Dockerfile", "FROM scratch\n")]);
        let c3 = r.commit(3_000, &[("other", "p")]);
        assert_eq!(mtime(&r.tar(&c2, "a", "a/Dockerfile")), 2_000);
        assert_eq!(mtime(&r.tar(&c3, "a", "a/Dockerfile")), 2_000);
    }
}
