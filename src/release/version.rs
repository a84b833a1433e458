//! Phase 4: the VERSION commit. Built on the remote branch's newest tip and
//! pushed without force, so the push is a compare-and-swap: if the branch
//! moved, fetch, re-read VERSION (someone may have released a newer version),
//! rebuild the commit and try again, a bounded number of times.

use std::future::Future;

use regex::{Captures, Regex};

use crate::config::Config;
use crate::git::{FileChange, GitRepo, PushOutcome};
use crate::plan::VersionStep;
use crate::version::ReleaseVersion;

use super::ReleaseError;

pub const MAX_ATTEMPTS: u32 = 5;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VersionOutcome {
    Committed {
        commit: String,
        attempts: u32,
    },
    /// VERSION already names this or a newer release; nothing was committed.
    AlreadyCurrent {
        current: String,
    },
}

/// Replaces capture group 1 of every match of `re` in `text` with `value`.
pub fn rewrite(text: &str, re: &Regex, value: &str) -> String {
    re.replace_all(text, |caps: &Captures| {
        let whole = caps.get(0).expect("group 0 always matches");
        match caps.get(1) {
            Some(g) => format!("{}{value}{}", &text[whole.start()..g.start()], &text[g.end()..whole.end()]),
            None => whole.as_str().to_string(),
        }
    })
    .into_owned()
}

/// Where a push of the VERSION commit ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BranchUpdate {
    Moved {
        commit: String,
    },
    /// The branch moved since `tip` was read.
    Rejected {
        why: String,
    },
}

/// The release branch as the VERSION commit sees it: read the tip, read files
/// at a commit, and move the branch from an expected tip to a new commit.
/// Implemented over git (push) and over the GitHub API (`commit.via: github-api`).
pub trait VersionBranch {
    fn tip(&self) -> impl Future<Output = Result<String, ReleaseError>>;
    fn file_at(&self, commit: &str, path: &str) -> impl Future<Output = Result<Option<Vec<u8>>, ReleaseError>>;
    /// Commits `files` on top of `tip` and moves the branch there only if it still points at `tip`.
    fn commit_onto(
        &self,
        tip: &str,
        files: &[FileChange],
        message: &str,
        author: (&str, &str),
    ) -> impl Future<Output = Result<BranchUpdate, ReleaseError>>;
    /// Called after a rejection, before the tip is read again.
    fn refresh(&self) -> impl Future<Output = Result<(), ReleaseError>>;
}

/// [`VersionBranch`] over the git remote: a commit built from git objects, pushed without force.
pub struct GitBranch<'a, G>(pub &'a G);

impl<G: GitRepo> VersionBranch for GitBranch<'_, G> {
    async fn tip(&self) -> Result<String, ReleaseError> {
        Ok(tokio::task::block_in_place(|| self.0.branch_tip())?)
    }

    async fn file_at(&self, commit: &str, path: &str) -> Result<Option<Vec<u8>>, ReleaseError> {
        Ok(tokio::task::block_in_place(|| self.0.file_at(commit, path))?)
    }

    async fn commit_onto(
        &self,
        tip: &str,
        files: &[FileChange],
        message: &str,
        author: (&str, &str),
    ) -> Result<BranchUpdate, ReleaseError> {
        tokio::task::block_in_place(|| {
            let commit = self.0.commit_on(tip, files, message, author)?;
            Ok(match self.0.push_branch(&commit)? {
                PushOutcome::Pushed => BranchUpdate::Moved { commit },
                PushOutcome::Rejected(why) => BranchUpdate::Rejected { why },
            })
        })
    }

    async fn refresh(&self) -> Result<(), ReleaseError> {
        Ok(tokio::task::block_in_place(|| self.0.fetch())?)
    }
}

/// Writes VERSION (and the `also_update` files) as one commit on the release
/// branch's newest tip, a compare-and-swap retried up to [`MAX_ATTEMPTS`] times.
pub async fn publish_version(
    config: &Config,
    branch: &impl VersionBranch,
    step: &VersionStep,
    target: &ReleaseVersion,
) -> Result<VersionOutcome, ReleaseError> {
    for attempt in 1..=MAX_ATTEMPTS {
        let tip = branch.tip().await?;
        let current = branch.file_at(&tip, &step.path).await?.map(|b| String::from_utf8_lossy(&b).trim().to_string());
        if let Some(cur) = current.as_deref().and_then(|c| ReleaseVersion::parse(c, &config.git.tag_prefix).ok()) {
            if cur.cmp_release(target).is_ge() {
                return Ok(VersionOutcome::AlreadyCurrent { current: cur.raw });
            }
        }
        let mut files = vec![FileChange { path: step.path.clone(), content: format!("{}\n", step.to).into_bytes() }];
        for au in &config.also_update {
            match branch.file_at(&tip, &au.path).await? {
                Some(bytes) => {
                    let text = String::from_utf8_lossy(&bytes);
                    let updated = rewrite(&text, &au.regex, &step.to);
                    if updated == text {
                        tracing::warn!(path = %au.path, regex = %au.regex, "also_update: no match, file left as is");
                    } else {
                        files.push(FileChange { path: au.path.clone(), content: updated.into_bytes() });
                    }
                }
                None => {
                    tracing::warn!(path = %au.path, "also_update: file does not exist on the release branch")
                }
            }
        }
        let message = format!("{}\n\nRelease-By: relctl\n", step.message);
        let author = (config.commit.author_name.as_str(), config.commit.author_email.as_str());
        match branch.commit_onto(&tip, &files, &message, author).await? {
            BranchUpdate::Moved { commit } => return Ok(VersionOutcome::Committed { commit, attempts: attempt }),
            BranchUpdate::Rejected { why } => {
                tracing::warn!(
                    attempt,
                    "the release branch moved while releasing ({why}); reading it again and retrying"
                );
                branch.refresh().await?;
            }
        }
    }
    Err(ReleaseError::VersionRace { attempts: MAX_ATTEMPTS })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rewrites_only_the_group() {
        let re = Regex::new(r"current version: (v\S+)").unwrap();
        let text = "# App\ncurrent version: v1.0.0\nother: v1.0.0\n";
        assert_eq!(rewrite(text, &re, "v1.2.0"), "# App\ncurrent version: v1.2.0\nother: v1.0.0\n");
        assert_eq!(rewrite("nothing here\n", &re, "v1.2.0"), "nothing here\n");
    }
}
