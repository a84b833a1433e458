//! The forge boundary (GitHub): which repository a release belongs to, the
//! GitHub Release that lists what a release published, and the text of that
//! Release. The API adapter is in `github`; GitHub Actions integration
//! (outputs, step summary, log groups, annotations) is in `actions`; Docker
//! Hub's repository pages (descriptions) in `dockerhub`.

pub mod actions;
pub mod dockerhub;
pub mod github;

use std::fmt::Write as _;
use std::future::Future;

use serde::Serialize;

use crate::git::FileChange;

/// Where the ref update of an API commit ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefUpdate {
    Moved {
        commit: String,
    },
    /// The branch no longer points at the expected parent (409/422).
    Conflict {
        message: String,
    },
}

/// What a release asks of the forge: the GitHub Release of a tag and, for
/// `commit: { via: github-api }`, a compare-and-swap commit onto a branch.
/// [`github::GitHub`] is the real one.
pub trait Forge: Sync {
    /// The repository, for messages (`owner/repo`).
    fn name(&self) -> String;
    /// Creates the Release of `notes.tag`, or updates it.
    fn upsert_release(&self, notes: &ReleaseNotes) -> impl Future<Output = Result<ReleaseLink, ForgeError>> + Send;
    fn branch_tip(&self, branch: &str) -> impl Future<Output = Result<String, ForgeError>> + Send;
    fn file_at(&self, commit: &str, path: &str) -> impl Future<Output = Result<Option<Vec<u8>>, ForgeError>> + Send;
    /// Commits `files` on `parent` and moves `branch` there only if it still points at `parent`.
    fn commit_onto(
        &self,
        branch: &str,
        parent: &str,
        files: &[FileChange],
        message: &str,
        author: (&str, &str),
    ) -> impl Future<Output = Result<RefUpdate, ForgeError>> + Send;
}

/// Why a forge call failed.
#[derive(Debug, thiserror::Error)]
pub enum ForgeError {
    #[error(
        "cannot tell which GitHub repository this is: GITHUB_REPOSITORY is not set and the remote URL `{url}` is not a GitHub URL"
    )]
    UnknownRepository { url: String },
    #[error("the GitHub API at {api} refused the token (status {status}) for {operation}")]
    Unauthorized { api: String, operation: String, status: u16 },
    #[error(
        "the GitHub API rate limit stays exhausted for {operation}: it resets in {wait_secs} s, longer than relctl waits"
    )]
    RateLimited { operation: String, wait_secs: u64 },
    #[error("GitHub refused to move the protected branch {branch}: {message}")]
    Protected { branch: String, message: String },
    #[error("GitHub API {operation} failed with status {status}: {message}")]
    Api { operation: String, status: u16, message: String },
    #[error("cannot reach the GitHub API at {api} for {operation}: {message}")]
    Unreachable { api: String, operation: String, message: String },
}

impl ForgeError {
    pub fn hint(&self) -> String {
        match self {
            ForgeError::UnknownRepository { .. } => "set GITHUB_REPOSITORY=owner/repo".into(),
            ForgeError::Unauthorized { .. } => {
                "give the job a token with `contents: write` (GITHUB_TOKEN with `permissions: contents: write`)".into()
            }
            ForgeError::Protected { .. } => {
                "let the token bypass branch protection (a GitHub App or a ruleset bypass), or set git.branch to a release branch without protection".into()
            }
            ForgeError::RateLimited { .. } => "rerun after the reset; the images and VERSION are already published".into(),
            ForgeError::Api { .. } | ForgeError::Unreachable { .. } => {
                "rerun: the release itself is published, and creating its GitHub Release is idempotent".into()
            }
        }
    }
}

/// `owner/repo` on GitHub.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepoId {
    pub owner: String,
    pub name: String,
}

impl std::fmt::Display for RepoId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.owner, self.name)
    }
}

impl RepoId {
    /// From `GITHUB_REPOSITORY` (`owner/repo`) when given, else from a GitHub
    /// remote URL (https, ssh or scp-like, with or without `.git`).
    pub fn resolve(github_repository: Option<&str>, remote_url: &str) -> Result<Self, ForgeError> {
        let parse = |s: &str| {
            let s = s.trim().trim_end_matches('/').trim_end_matches(".git");
            let (owner, name) = s.split_once('/')?;
            (!owner.is_empty() && !name.is_empty() && !name.contains('/'))
                .then(|| RepoId { owner: owner.to_string(), name: name.to_string() })
        };
        if let Some(id) = github_repository.filter(|s| !s.trim().is_empty()).and_then(parse) {
            return Ok(id);
        }
        let path = ["https://github.com/", "http://github.com/", "ssh://git@github.com/", "git@github.com:"]
            .iter()
            .find_map(|p| remote_url.strip_prefix(p))
            .or_else(|| {
                // https://user:token@github.com/owner/repo
                let rest = remote_url.strip_prefix("https://")?;
                rest.split_once("@github.com/").map(|(_, path)| path)
            });
        path.and_then(parse).ok_or_else(|| ForgeError::UnknownRepository { url: crate::git::redact_url(remote_url) })
    }
}

/// One image as the GitHub Release lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReleasedImage {
    pub image: String,
    /// `registry/repository`, without tag.
    pub repository: String,
    pub tags: Vec<String>,
    pub digest: String,
    /// Built by this run; false when its manifest was copied from an earlier release.
    pub built: bool,
    /// The cosign signature's tag (`sha256-<hex>.sig`), when releases are signed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signature: Option<String>,
    /// Of a multi-platform image (`digest` is its index's): each platform's image.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub platforms: Vec<PlatformImage>,
}

/// One platform's image of a multi-platform image.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PlatformImage {
    pub platform: String,
    pub digest: String,
}

impl ReleasedImage {
    /// The digest as a Markdown table cell: a multi-platform image's index
    /// digest, then each platform's.
    pub fn digest_cell(&self) -> String {
        let mut cell = format!("`{}`", self.digest);
        if !self.platforms.is_empty() {
            cell.push_str(" (index)");
        }
        for p in &self.platforms {
            cell.push_str(&format!("<br>{} `{}`", p.platform, p.digest));
        }
        cell
    }
}

/// What a GitHub Release says about a release.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReleaseNotes {
    pub tag: String,
    pub prerelease: bool,
    pub commit: String,
    pub images: Vec<ReleasedImage>,
}

impl ReleaseNotes {
    /// The Markdown body of the GitHub Release.
    pub fn body(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "Images of {} built from {}:\n", self.tag, self.commit);
        let signed = self.images.iter().any(|i| i.signature.is_some());
        let (head, rule) = if signed { (" signature |", "---|") } else { ("", "") };
        let _ = writeln!(s, "| image | tags | digest |{head}");
        let _ = writeln!(s, "|---|---|---|{rule}");
        for i in &self.images {
            let tags = i.tags.iter().map(|t| format!("`{t}`")).collect::<Vec<_>>().join(" ");
            let sig = i.signature.as_deref().map(|t| format!(" `{t}` |")).unwrap_or_default();
            let _ = writeln!(s, "| {} | {tags} | {} |{sig}", i.image, i.digest_cell());
        }
        if signed {
            let _ = writeln!(s, "
Signed with cosign's layout: `cosign verify --key cosign.pub --insecure-ignore-tlog IMAGE@DIGEST`, or `relctl verify {} --key cosign.pub`.", self.tag);
        }
        let _ = writeln!(s, "\nPull:\n\n```sh");
        for i in &self.images {
            let _ = writeln!(s, "docker pull {}:{}", i.repository, i.tags.first().map_or("", String::as_str));
        }
        let _ = writeln!(s, "```\n\n<!-- released by relctl -->");
        s
    }
}

/// A GitHub Release as created or updated.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReleaseLink {
    pub id: u64,
    pub url: String,
    pub created: bool,
}

#[cfg(test)]
mod tests;
