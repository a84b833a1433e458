//! The git boundary: the [`GitRepo`] trait the release executor uses, and
//! [`Git2Repo`], its libgit2 adapter (fetch, tags, files at a commit, the
//! VERSION commit and its non-forced push).

mod local_remote;
pub mod ssh;
pub mod url;

use std::cell::RefCell;
use std::path::{Path, PathBuf};

use git2::{Cred, CredentialType, ErrorCode, FetchOptions, PushOptions, RemoteCallbacks, Repository, Signature};
use secrecy::{ExposeSecret, SecretString};

pub use crate::context::dockerfile::BuildArgs;
pub use crate::context::{ContextSpec, ContextSummary, tune_libgit2};
pub use url::{public_url, redact_url, redact_urls_in};

#[derive(Debug, thiserror::Error)]
pub enum GitError {
    #[error("{path} is not a git repository: {message}")]
    NotARepository { path: PathBuf, message: String },
    #[error("the repository has no remote named `{remote}`")]
    NoRemote { remote: String },
    #[error("tag `{tag}` does not exist in the repository or on remote `{remote}`")]
    TagNotFound { tag: String, remote: String },
    #[error("fetching from remote `{remote}` ({url}) failed: {message}")]
    Fetch { remote: String, url: String, message: String },
    #[error("remote `{remote}` has no branch `{branch}`")]
    NoBranch { remote: String, branch: String },
    #[error("pushing {branch} to remote `{remote}` failed: {message}")]
    Push { remote: String, branch: String, message: String },
    #[error("cannot read the build context {}/ at commit {commit}", if context.is_empty() { "." } else { context.as_str() })]
    ReadContext {
        commit: String,
        context: String,
        #[source]
        source: std::io::Error,
    },
    #[error("refusing to write {path} in the VERSION commit: {what}")]
    WouldReplace { path: String, what: String },
    #[error("git {op} failed in the local repository")]
    Repository {
        op: &'static str,
        #[source]
        source: git2::Error,
    },
}

/// What a path names in a commit's tree, when it is not a plain file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathKind {
    /// A regular (or executable) file.
    File,
    Directory,
    Symlink,
    /// A gitlink (submodule).
    Submodule,
    /// A leading component is a file, so the path cannot exist.
    UnderAFile,
}

impl PathKind {
    /// How a message names it: "a directory", "a symbolic link" ...
    pub fn describe(self) -> &'static str {
        match self {
            PathKind::File => "a file",
            PathKind::Directory => "a directory",
            PathKind::Symlink => "a symbolic link",
            PathKind::Submodule => "a submodule",
            PathKind::UnderAFile => "inside a path that is a file",
        }
    }
}

impl GitError {
    pub fn exit_code(&self) -> u8 {
        match self {
            GitError::NotARepository { .. } | GitError::NoRemote { .. } | GitError::TagNotFound { .. } => 2,
            _ => 1,
        }
    }

    pub fn hint(&self) -> String {
        match self {
            GitError::NotARepository { .. } => "run relctl inside a clone of your project, or pass --repo DIR".into(),
            GitError::NoRemote { remote } => format!("add it (git remote add {remote} URL) or set git.remote in release.yaml"),
            GitError::TagNotFound { tag, remote } => {
                format!("create and push the tag first: git tag {tag} && git push {remote} {tag}")
            }
            GitError::Fetch { url, .. } if ssh::is_ssh(url) => {
                "check the ssh remote: the key (ssh-agent, RELCTL_GIT_SSH_KEY with RELCTL_GIT_SSH_PASSPHRASE, ~/.ssh/id_ed25519) must be a deploy key of the repository, and the host in ~/.ssh/known_hosts or RELCTL_GIT_KNOWN_HOSTS".into()
            }
            GitError::Fetch { .. } => "check the remote URL and your access (RELCTL_GIT_TOKEN or GITHUB_TOKEN for https remotes)".into(),
            GitError::NoBranch { branch, .. } => format!("push {branch} first, or set git.branch in release.yaml"),
            GitError::Push { message, .. } if message.contains("protected") || message.contains("denied") || message.contains("declined") => {
                "the branch is protected: set `commit: { via: github-api }` with a GITHUB_TOKEN allowed to bypass the rule, let the release identity push, or release to a branch without protection (git.branch)".into()
            }
            GitError::Push { .. } => "check push access to the remote; the release's images are published, so rerunning relctl only commits VERSION".into(),
            GitError::ReadContext { .. } => "check the repository's objects (git fsck); a shallow or partial clone may lack them".into(),
            GitError::WouldReplace { .. } => "point version_file / also_update in release.yaml at regular files (or paths that do not exist yet)".into(),
            GitError::Repository { .. } => "check the repository's state (git fsck) and retry".into(),
        }
    }
}

fn other(op: &'static str) -> impl Fn(git2::Error) -> GitError {
    move |source| GitError::Repository { op, source }
}

/// What happened to a pushed commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PushOutcome {
    Pushed,
    /// The remote branch moved since it was fetched (not a fast-forward).
    Rejected(String),
    /// A lock file of the branch exists on the remote: another push is
    /// updating it right now, or one died and left the lock behind. The
    /// lock file's path when the message names it.
    Locked {
        why: String,
        lock: Option<String>,
    },
}

/// The lock file a git message names (`Unable to create '/srv/a.git/refs/heads/main.lock'`,
/// `failed to lock file '/srv/a.git/refs/heads/main.lock' for writing`).
pub fn lock_file_in(message: &str) -> Option<String> {
    message.split('\'').find(|part| part.ends_with(".lock") && !part.contains('\n')).map(str::to_string)
}

fn locked(why: String) -> PushOutcome {
    let lock = lock_file_in(&why);
    PushOutcome::Locked { why, lock }
}

/// A file change in the VERSION commit.
#[derive(Debug, Clone)]
pub struct FileChange {
    pub path: String,
    pub content: Vec<u8>,
}

/// The git operations a release needs.
pub trait GitRepo {
    /// Fetches the release branch and all tags from the configured remote.
    fn fetch(&self) -> Result<(), GitError>;
    /// Every tag with the commit it points at (annotated tags peeled).
    fn tags(&self) -> Result<Vec<(String, String)>, GitError>;
    fn head_commit(&self) -> Result<String, GitError>;
    /// A file's content at a commit, `None` if absent.
    fn file_at(&self, commit: &str, path: &str) -> Result<Option<Vec<u8>>, GitError>;
    /// Whether `path` is a directory at `commit` (`""` is the root).
    fn dir_exists(&self, commit: &str, path: &str) -> Result<bool, GitError>;
    /// What `path` is at `commit`, `None` if nothing is there.
    fn path_kind(&self, commit: &str, path: &str) -> Result<Option<PathKind>, GitError>;
    /// The release branch's tip as last fetched from the remote.
    fn branch_tip(&self) -> Result<String, GitError>;
    /// The remote's web address for `org.opencontainers.image.source` ([`public_url`]),
    /// without credentials; empty when the remote is a path on this machine.
    fn source_url(&self) -> Result<String, GitError>;
    /// Creates a commit on `parent` changing `files`; returns its id. Touches no branch.
    fn commit_on(
        &self,
        parent: &str,
        files: &[FileChange],
        message: &str,
        author: (&str, &str),
    ) -> Result<String, GitError>;
    /// Pushes `commit` to the release branch without force: a compare-and-swap on the remote tip.
    fn push_branch(&self, commit: &str) -> Result<PushOutcome, GitError>;
    /// The build context of an image at a commit.
    fn context(&self, commit: &str, context: &str, dockerfile: &str) -> ContextSpec;
    /// The digest of that context's inputs and which of `watched` the build
    /// reads: with `dockerfile_args`, those the Dockerfile reads (see [`ContextSpec::summary`]).
    fn context_summary(
        &self,
        commit: &str,
        context: &str,
        dockerfile: &str,
        watched: &[&str],
        dockerfile_args: Option<&BuildArgs>,
    ) -> Result<ContextSummary, GitError>;
}

/// [`GitRepo`] on libgit2.
pub struct Git2Repo {
    repo: Repository,
    path: PathBuf,
    remote: String,
    branch: String,
    token: Option<SecretString>,
    /// Why relctl refused the ssh server's host key last: libgit2 reports
    /// only "invalid or unknown remote ssh hostkey", without the fingerprint.
    host_key_refused: std::sync::Mutex<Option<String>>,
}

/// The top of the work tree that contains `dir` (as git finds it from a
/// subdirectory), or `None` outside a repository.
pub fn work_tree_of(dir: &Path) -> Option<PathBuf> {
    let repo = Repository::discover(dir).ok()?;
    repo.workdir().map(Path::to_path_buf)
}

/// Bounds every fetch and push over the network: 30 s to connect, and
/// `stall` for a read or write on the connection, so a remote that stops
/// answering fails the operation instead of hanging it. Process-wide, set once.
pub fn set_network_timeouts(stall: std::time::Duration) {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let ms = i32::try_from(stall.as_millis()).unwrap_or(i32::MAX);
        // SAFETY: libgit2 globals written once (Once), before the first fetch
        // or push reads them when it opens a connection.
        let set = unsafe {
            git2::opts::set_server_connect_timeout_in_milliseconds(30_000)
                .and_then(|()| git2::opts::set_server_timeout_in_milliseconds(ms))
        };
        if let Err(e) = set {
            tracing::debug!("cannot bound libgit2's network timeouts: {e}");
        }
    });
}

impl Git2Repo {
    /// Opens the repository at `path` (or a parent) with the remote and branch from the config.
    pub fn open(path: &Path, remote: &str, branch: &str) -> Result<Self, GitError> {
        tune_libgit2();
        let repo = Repository::discover(path)
            .map_err(|e| GitError::NotARepository { path: path.to_path_buf(), message: e.message().to_string() })?;
        let path = repo.workdir().unwrap_or_else(|| repo.path()).to_path_buf();
        if repo.find_remote(remote).is_err() {
            return Err(GitError::NoRemote { remote: remote.to_string() });
        }
        let token =
            ["RELCTL_GIT_TOKEN", "GITHUB_TOKEN"].into_iter().find_map(crate::secrets::var).map(SecretString::from);
        let host_key_refused = std::sync::Mutex::new(None);
        Ok(Self { repo, path, remote: remote.to_string(), branch: branch.to_string(), token, host_key_refused })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn tracking_ref(&self) -> String {
        format!("refs/remotes/{}/{}", self.remote, self.branch)
    }

    /// Credentials: for https a token from the environment, else git's
    /// credential helpers; for ssh the agent or a key file (see [`ssh`]), and
    /// the host key checked against known_hosts.
    fn callbacks(&self) -> RemoteCallbacks<'_> {
        let mut cbs = RemoteCallbacks::new();
        let tries = RefCell::new(0);
        let url = self.repo.find_remote(&self.remote).ok().and_then(|r| r.url().ok().map(str::to_string));
        if let Some((host, port)) = url.as_deref().filter(|u| ssh::is_ssh(u)).and_then(ssh::host_port) {
            cbs.certificate_check(move |cert, _| {
                check_host_key(cert, &host, port).inspect_err(|e| {
                    *self.host_key_refused.lock().unwrap_or_else(std::sync::PoisonError::into_inner) =
                        Some(e.message().to_string());
                })
            });
        }
        cbs.credentials(move |url, username, allowed| {
            *tries.borrow_mut() += 1;
            let n = *tries.borrow();
            if allowed.contains(CredentialType::SSH_KEY) {
                return ssh::credential(n, username, allowed).unwrap_or_else(|| {
                    Err(git2::Error::from_str(
                        "the ssh server refused every key relctl has (ssh-agent, RELCTL_GIT_SSH_KEY, ~/.ssh/id_ed25519, ~/.ssh/id_rsa)",
                    ))
                });
            }
            if n > 2 {
                return Err(git2::Error::from_str("authentication failed"));
            }
            if allowed.contains(CredentialType::USER_PASS_PLAINTEXT) {
                if let Some(token) = &self.token {
                    return Cred::userpass_plaintext("x-access-token", token.expose_secret());
                }
                if let Ok(cfg) = self.repo.config() {
                    return Cred::credential_helper(&cfg, url, username);
                }
            }
            Cred::default()
        });
        cbs
    }

    /// The first line of `commit`'s message, if the commit can be read.
    pub fn subject(&self, commit: &str) -> Option<String> {
        self.commit_obj(commit).ok()?.summary().ok().flatten().map(str::to_string)
    }

    fn commit_obj(&self, commit: &str) -> Result<git2::Commit<'_>, GitError> {
        self.repo.revparse_single(commit).and_then(|o| o.peel_to_commit()).map_err(other("lookup commit"))
    }

    /// `git push` of `oid` to the branch of a remote server, which compares
    /// and swaps the tip itself.
    fn push_to_server(&self, remote: &mut git2::Remote<'_>, oid: git2::Oid) -> Result<PushOutcome, GitError> {
        // libgit2 pushes references, not commits. The name is this push's own
        // (process and call), so releases running side by side in one clone
        // neither lock nor push each other's commit.
        static PUSHES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = PUSHES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let staging = format!("refs/relctl/push/{}-{n}", std::process::id());
        let staging = staging.as_str();
        self.repo.reference(staging, oid, true, "relctl: release commit").map_err(other("write ref"))?;
        let status: RefCell<Option<String>> = RefCell::new(None);
        let remote_says: RefCell<String> = RefCell::new(String::new());
        let mut cbs = self.callbacks();
        cbs.push_update_reference(|_, s| {
            if let Some(s) = s {
                *status.borrow_mut() = Some(s.to_string());
            }
            Ok(())
        });
        // What the server prints (hooks, branch protection) arrives on the sideband.
        cbs.sideband_progress(|data| {
            remote_says.borrow_mut().push_str(&String::from_utf8_lossy(data));
            true
        });
        let mut opts = PushOptions::new();
        opts.remote_callbacks(cbs);
        // No leading `+`: the remote accepts only a fast-forward of the tip we built on.
        let refspec = format!("{staging}:refs/heads/{}", self.branch);
        let result = remote.push(&[refspec.as_str()], Some(&mut opts));
        drop(opts);
        let _ = self.repo.find_reference(staging).and_then(|mut r| r.delete());
        let said: Vec<String> =
            remote_says.into_inner().lines().map(str::trim).filter(|l| !l.is_empty()).map(str::to_string).collect();
        let push_err = |message: String| {
            self.push_error(if said.is_empty() {
                message
            } else {
                format!("{message} (remote said: {})", said.join(" / "))
            })
        };
        match result {
            // Not a fast-forward, or another push holds the branch's lock
            // right now: either way someone else moved or is moving the tip;
            // fetch and try again.
            Err(e) if held_lock(&e) => return Ok(locked(e.message().to_string())),
            Err(e) if e.code() == ErrorCode::NotFastForward => {
                return Ok(PushOutcome::Rejected(e.message().to_string()));
            }
            Err(e) => return Err(push_err(self.network_error(&e))),
            Ok(()) => {}
        }
        if let Some(s) = status.into_inner() {
            let lower = s.to_lowercase();
            // Another push updating the branch at that moment holds its lock:
            // git's receive-pack answers "cannot lock ref" or "failed to
            // lock". Not any "lock": GitHub's "lock branch" is final.
            if lower.contains("cannot lock ref") || lower.contains("failed to lock") {
                let said = said.join(" / ");
                return Ok(locked(if said.is_empty() { s } else { format!("{s} ({said})") }));
            }
            if lower.contains("fast-forward")
                || lower.contains("fast forward")
                || lower.contains("fetch first")
                || lower.contains("stale")
            {
                return Ok(PushOutcome::Rejected(s));
            }
            return Err(push_err(s));
        }
        Ok(PushOutcome::Pushed)
    }

    /// A fetch or push error's message: relctl's own reason for refusing a
    /// host key when that is what failed, else libgit2's, URLs redacted.
    fn network_error(&self, e: &git2::Error) -> String {
        let refused = self.host_key_refused.lock().unwrap_or_else(std::sync::PoisonError::into_inner).take();
        refused.unwrap_or_else(|| redact_urls_in(e.message()))
    }

    fn push_error(&self, message: String) -> GitError {
        GitError::Push { remote: self.remote.clone(), branch: self.branch.clone(), message: redact_urls_in(&message) }
    }

    /// `base` with `path` set to `blob`, creating intermediate trees as
    /// needed. Only ever replaces a regular file: a directory, symlink or
    /// submodule in the way, or a `.git` component, is an error.
    fn tree_with(
        &self,
        base: Option<&git2::Tree>,
        full: &str,
        path: &[&str],
        blob: git2::Oid,
    ) -> Result<git2::Oid, GitError> {
        let refuse = |what: &str| GitError::WouldReplace { path: full.to_string(), what: what.to_string() };
        let write = other("write tree");
        let mut builder = self.repo.treebuilder(base).map_err(&write)?;
        let existing = |name: &str| base.and_then(|t| t.get_name(name)).map(|e| e.filemode());
        match path {
            [name, ..] if name.is_empty() || *name == "." || *name == ".." || name.eq_ignore_ascii_case(".git") => {
                return Err(refuse(&format!("`{name}` is not a path component relctl writes")));
            }
            [name] => {
                let mode = match existing(name) {
                    None | Some(0o100644) => 0o100644,
                    Some(0o100755) => 0o100755,
                    Some(0o040000) => return Err(refuse("it is a directory on the release branch")),
                    Some(0o120000) => return Err(refuse("it is a symbolic link on the release branch")),
                    Some(_) => return Err(refuse("it is a submodule on the release branch")),
                };
                builder.insert(name, blob, mode).map_err(&write)?;
            }
            [dir, rest @ ..] => {
                let sub = match existing(dir) {
                    None => None,
                    Some(0o040000) => base
                        .and_then(|t| t.get_name(dir))
                        .and_then(|e| e.to_object(&self.repo).ok())
                        .and_then(|o| o.into_tree().ok()),
                    Some(_) => return Err(refuse(&format!("`{dir}` is not a directory on the release branch"))),
                };
                let oid = self.tree_with(sub.as_ref(), full, rest, blob)?;
                builder.insert(dir, oid, 0o040000).map_err(&write)?;
            }
            [] => return Err(refuse("the path is empty")),
        }
        builder.write().map_err(write)
    }
}

/// Accepts an ssh host key only when a known_hosts file lists it for the host.
fn check_host_key(
    cert: &git2::cert::Cert<'_>,
    host: &str,
    port: u16,
) -> Result<git2::CertificateCheckStatus, git2::Error> {
    let Some(hostkey) = cert.as_hostkey() else { return Ok(git2::CertificateCheckStatus::CertificatePassthrough) };
    let (Some(key), Some(sha256)) = (hostkey.hostkey(), hostkey.hash_sha256()) else {
        return Err(git2::Error::from_str("the ssh server's host key could not be read, so it cannot be checked"));
    };
    let fingerprint = ssh::fingerprint(sha256);
    let name = if port == 22 { host.to_string() } else { format!("[{host}]:{port}") };
    match ssh::check(&ssh::known_hosts_files(), host, port, key) {
        ssh::Known::Match => Ok(git2::CertificateCheckStatus::CertificateOk),
        ssh::Known::Changed { file } => Err(git2::Error::from_str(&format!(
            "the host key of {name} changed: it is now {fingerprint}, not the one {file} lists; if the change is expected, remove the old key (ssh-keygen -R '{name}') and add the new one after checking its fingerprint"
        ))),
        ssh::Known::Unknown => Err(git2::Error::from_str(&format!(
            "the host key of {name} ({fingerprint}) is not in a known_hosts file; check that fingerprint, then add the key (ssh-keyscan -p {port} {host} >> ~/.ssh/known_hosts) or point RELCTL_GIT_KNOWN_HOSTS at a file that lists it"
        ))),
    }
}

/// Fetches tried while another process holds a ref lock in the same clone.
const FETCH_ATTEMPTS: u32 = 8;

/// Another git process (or relctl) holds a lock file this operation needs.
/// libgit2 reports it as `Locked`, or, from a ref update inside a fetch or
/// a local push, as an OS error naming the lock file.
fn held_lock(e: &git2::Error) -> bool {
    e.code() == ErrorCode::Locked || e.message().contains("locked file") || e.message().contains("failed to lock")
}

impl GitRepo for Git2Repo {
    fn fetch(&self) -> Result<(), GitError> {
        let mut remote =
            self.repo.find_remote(&self.remote).map_err(|_| GitError::NoRemote { remote: self.remote.clone() })?;
        let url = redact_url(remote.url().unwrap_or(""));
        let mut opts = FetchOptions::new();
        opts.remote_callbacks(self.callbacks());
        opts.download_tags(git2::AutotagOption::None);
        let refspecs = [
            format!("+refs/heads/{0}:refs/remotes/{1}/{0}", self.branch, self.remote),
            "+refs/tags/*:refs/tags/*".to_string(),
        ];
        // Another relctl fetching into this clone holds a ref's lock for a
        // moment: wait for it rather than fail the release.
        let mut attempt = 1;
        loop {
            match remote.fetch(&refspecs, Some(&mut opts), Some("relctl: fetch")) {
                Err(e) if held_lock(&e) && attempt < FETCH_ATTEMPTS => {
                    tracing::debug!(attempt, "fetch: {}; retrying", redact_urls_in(e.message()));
                    std::thread::sleep(std::time::Duration::from_millis(50 * attempt as u64));
                    attempt += 1;
                }
                result => {
                    return result.map_err(|e| GitError::Fetch {
                        remote: self.remote.clone(),
                        url,
                        message: self.network_error(&e),
                    });
                }
            }
        }
    }

    fn tags(&self) -> Result<Vec<(String, String)>, GitError> {
        let names = self.repo.tag_names(None).map_err(other("list tags"))?;
        let mut out = Vec::new();
        for name in names.iter().flatten().flatten() {
            let obj = self.repo.revparse_single(&format!("refs/tags/{name}")).map_err(other("read tag"))?;
            if let Ok(commit) = obj.peel_to_commit() {
                out.push((name.to_string(), commit.id().to_string()));
            }
        }
        Ok(out)
    }

    fn head_commit(&self) -> Result<String, GitError> {
        Ok(self.repo.head().and_then(|h| h.peel_to_commit()).map_err(other("read HEAD"))?.id().to_string())
    }

    fn file_at(&self, commit: &str, path: &str) -> Result<Option<Vec<u8>>, GitError> {
        let tree = self.commit_obj(commit)?.tree().map_err(other("read tree"))?;
        let Ok(entry) = tree.get_path(Path::new(path)) else {
            return Ok(None);
        };
        Ok(entry.to_object(&self.repo).ok().and_then(|o| o.into_blob().ok()).map(|b| b.content().to_vec()))
    }

    fn dir_exists(&self, commit: &str, path: &str) -> Result<bool, GitError> {
        if path.is_empty() {
            return Ok(true);
        }
        let tree = self.commit_obj(commit)?.tree().map_err(other("read tree"))?;
        Ok(tree.get_path(Path::new(path)).is_ok_and(|e| e.kind() == Some(git2::ObjectType::Tree)))
    }

    fn path_kind(&self, commit: &str, path: &str) -> Result<Option<PathKind>, GitError> {
        let mut tree = self.commit_obj(commit)?.tree().map_err(other("read tree"))?;
        let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
        for (i, part) in parts.iter().enumerate() {
            let (kind, object) = match tree.get_name(part) {
                None => return Ok(None),
                Some(entry) => {
                    let kind = match entry.filemode() {
                        0o040000 => PathKind::Directory,
                        0o120000 => PathKind::Symlink,
                        0o160000 => PathKind::Submodule,
                        _ => PathKind::File,
                    };
                    (kind, entry.id())
                }
            };
            match (i + 1 == parts.len(), kind) {
                (true, kind) => return Ok(Some(kind)),
                (false, PathKind::Directory) => tree = self.repo.find_tree(object).map_err(other("read tree"))?,
                (false, _) => return Ok(Some(PathKind::UnderAFile)),
            }
        }
        Ok(Some(PathKind::Directory))
    }

    fn branch_tip(&self) -> Result<String, GitError> {
        let r = self
            .repo
            .find_reference(&self.tracking_ref())
            .map_err(|_| GitError::NoBranch { remote: self.remote.clone(), branch: self.branch.clone() })?;
        Ok(r.peel_to_commit().map_err(other("read branch"))?.id().to_string())
    }

    fn source_url(&self) -> Result<String, GitError> {
        let remote =
            self.repo.find_remote(&self.remote).map_err(|_| GitError::NoRemote { remote: self.remote.clone() })?;
        Ok(public_url(remote.url().unwrap_or("")).unwrap_or_default())
    }

    fn commit_on(
        &self,
        parent: &str,
        files: &[FileChange],
        message: &str,
        author: (&str, &str),
    ) -> Result<String, GitError> {
        let parent = self.commit_obj(parent)?;
        let mut tree = parent.tree().map_err(other("read tree"))?;
        for f in files {
            let blob = self.repo.blob(&f.content).map_err(other("write blob"))?;
            let parts: Vec<&str> = f.path.split('/').collect();
            let oid = self.tree_with(Some(&tree), &f.path, &parts, blob)?;
            tree = self.repo.find_tree(oid).map_err(other("write tree"))?;
        }
        let sig = Signature::now(author.0, author.1).map_err(other("signature"))?;
        let oid = self.repo.commit(None, &sig, &sig, message, &tree, &[&parent]).map_err(other("commit"))?;
        Ok(oid.to_string())
    }

    fn push_branch(&self, commit: &str) -> Result<PushOutcome, GitError> {
        let oid = git2::Oid::from_str(commit).map_err(other("parse commit id"))?;
        let mut remote =
            self.repo.find_remote(&self.remote).map_err(|_| GitError::NoRemote { remote: self.remote.clone() })?;
        let outcome = match remote.url().ok().and_then(|url| local_remote::path_of(url, &self.path)) {
            Some(path) => {
                let built_on = self.commit_obj(commit)?.parent_id(0).map_err(other("read release commit"))?;
                local_remote::push(&self.repo, &path, &self.branch, oid, built_on)
                    .map_err(|e| self.push_error(e.message().to_string()))?
            }
            None => self.push_to_server(&mut remote, oid)?,
        };
        if let PushOutcome::Pushed = outcome {
            // Only a local cache of the remote's tip (the next fetch sets it):
            // the push happened whether or not another process holds its lock now.
            if let Err(e) = self.repo.reference(&self.tracking_ref(), oid, true, "relctl: pushed release commit") {
                tracing::debug!("pushed, but {} was not updated: {}", self.tracking_ref(), e.message());
            }
        }
        Ok(outcome)
    }

    fn context(&self, commit: &str, context: &str, dockerfile: &str) -> ContextSpec {
        ContextSpec {
            repo: self.path.clone(),
            commit: commit.to_string(),
            context: context.to_string(),
            dockerfile: dockerfile.to_string(),
        }
    }

    fn context_summary(
        &self,
        commit: &str,
        context: &str,
        dockerfile: &str,
        watched: &[&str],
        dockerfile_args: Option<&BuildArgs>,
    ) -> Result<ContextSummary, GitError> {
        self.context(commit, context, dockerfile).summary(watched, dockerfile_args).map_err(|source| {
            GitError::ReadContext { commit: commit.to_string(), context: context.to_string(), source }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::lock_file_in;

    #[test]
    fn lock_files_are_found_in_git_messages() {
        let server =
            "cannot lock ref 'refs/heads/main': Unable to create '/srv/app.git/refs/heads/main.lock': File exists.";
        assert_eq!(lock_file_in(server).as_deref(), Some("/srv/app.git/refs/heads/main.lock"));
        let libgit2 = "failed to lock file '/tmp/r.git/refs/heads/main.lock' for writing: ";
        assert_eq!(lock_file_in(libgit2).as_deref(), Some("/tmp/r.git/refs/heads/main.lock"));
        assert_eq!(lock_file_in("non-fast-forward"), None);
    }
}
