//! Phase 4: the VERSION commit. Built on the remote branch's newest tip and
//! pushed without force, so the push is a compare-and-swap: if the branch
//! moved, fetch, re-read VERSION (someone may have released a newer version),
//! rebuild the commit and try again, a bounded number of times.

use std::future::Future;

use regex::{Captures, Regex};

use crate::config::Config;
use crate::forge::{Forge, RefUpdate};
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
    /// A lock file of the branch on the remote stopped the push (its path when known).
    Locked {
        why: String,
        lock: Option<String>,
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
                PushOutcome::Locked { why, lock } => BranchUpdate::Locked { why, lock },
            })
        })
    }

    async fn refresh(&self) -> Result<(), ReleaseError> {
        Ok(tokio::task::block_in_place(|| self.0.fetch())?)
    }
}

/// The wait before compare-and-swap attempt `n + 1`: 250 ms doubling (about
/// 4 s over all attempts), so racing releases and a lock held for a moment
/// by another push are waited out instead of hammered.
pub fn retry_wait(n: u32) -> std::time::Duration {
    std::time::Duration::from_millis(250 << n.saturating_sub(1).min(6))
}

/// Writes VERSION (and the `also_update` files) as one commit on the release
/// branch's newest tip, a compare-and-swap retried up to [`MAX_ATTEMPTS`] times.
pub async fn publish_version(
    config: &Config,
    branch: &impl VersionBranch,
    step: &VersionStep,
    target: &ReleaseVersion,
) -> Result<VersionOutcome, ReleaseError> {
    let mut last_lock = None;
    for attempt in 1..=MAX_ATTEMPTS {
        if attempt > 1 {
            tokio::time::sleep(retry_wait(attempt - 1)).await;
        }
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
                last_lock = None;
                tracing::warn!(
                    attempt,
                    "the release branch moved while releasing ({why}); reading it again and retrying"
                );
                branch.refresh().await?;
            }
            BranchUpdate::Locked { why, lock } => {
                tracing::warn!(attempt, "the release branch is locked on the remote ({why}); waiting");
                last_lock = Some(lock.unwrap_or(why));
                branch.refresh().await?;
            }
        }
    }
    let waited = (1..MAX_ATTEMPTS).map(retry_wait).sum::<std::time::Duration>().as_secs_f32();
    match last_lock {
        Some(lock) => Err(ReleaseError::BranchLocked { branch: config.git.branch.clone(), lock, waited }),
        None => Err(ReleaseError::VersionRace { attempts: MAX_ATTEMPTS }),
    }
}

/// [`VersionBranch`] over the GitHub API, for `commit: { via: github-api }`.
pub struct GitHubBranch<'a, F> {
    pub github: &'a F,
    pub branch: &'a str,
}

impl<F: Forge> VersionBranch for GitHubBranch<'_, F> {
    async fn tip(&self) -> Result<String, ReleaseError> {
        Ok(self.github.branch_tip(self.branch).await?)
    }

    async fn file_at(&self, commit: &str, path: &str) -> Result<Option<Vec<u8>>, ReleaseError> {
        Ok(self.github.file_at(commit, path).await?)
    }

    async fn commit_onto(
        &self,
        tip: &str,
        files: &[FileChange],
        message: &str,
        author: (&str, &str),
    ) -> Result<BranchUpdate, ReleaseError> {
        Ok(match self.github.commit_onto(self.branch, tip, files, message, author).await? {
            RefUpdate::Moved { commit } => BranchUpdate::Moved { commit },
            RefUpdate::Conflict { message } => BranchUpdate::Rejected { why: message },
        })
    }

    async fn refresh(&self) -> Result<(), ReleaseError> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;

    /// A branch whose pushes answer from a script, one answer per push.
    struct Scripted(Mutex<Vec<BranchUpdate>>);

    impl VersionBranch for Scripted {
        async fn tip(&self) -> Result<String, ReleaseError> {
            Ok("tip".into())
        }
        async fn file_at(&self, _: &str, _: &str) -> Result<Option<Vec<u8>>, ReleaseError> {
            Ok(Some(b"v1.0.0\n".to_vec()))
        }
        async fn commit_onto(
            &self,
            _: &str,
            _: &[FileChange],
            _: &str,
            _: (&str, &str),
        ) -> Result<BranchUpdate, ReleaseError> {
            Ok(self.0.lock().unwrap().remove(0))
        }
        async fn refresh(&self) -> Result<(), ReleaseError> {
            Ok(())
        }
    }

    fn publish(script: Vec<BranchUpdate>) -> (Result<VersionOutcome, ReleaseError>, std::time::Duration) {
        let config = crate::config::parse(
            "namespace: n\nproject: p\nimages: { a: { context: . } }\n",
            std::path::Path::new("r.yaml"),
        )
        .unwrap();
        let step = VersionStep {
            path: "VERSION".into(),
            from: None,
            to: "v1.1.0".into(),
            message: "m".into(),
            also_update: vec![],
        };
        let target = ReleaseVersion::parse("v1.1.0", "v").unwrap();
        let rt = tokio::runtime::Builder::new_current_thread().enable_time().start_paused(true).build().unwrap();
        rt.block_on(async {
            let start = tokio::time::Instant::now();
            let result = publish_version(&config, &Scripted(Mutex::new(script)), &step, &target).await;
            (result, start.elapsed())
        })
    }

    #[test]
    fn a_moving_branch_is_retried_with_backoff_and_ends_in_one_commit() {
        let moved = || BranchUpdate::Rejected { why: "not a fast-forward".into() };
        let (result, waited) = publish(vec![moved(), moved(), BranchUpdate::Moved { commit: "c".into() }]);
        assert_eq!(result.unwrap(), VersionOutcome::Committed { commit: "c".into(), attempts: 3 });
        assert_eq!(waited, retry_wait(1) + retry_wait(2), "waits between attempts, not a tight loop");
        assert!(retry_wait(1) >= std::time::Duration::from_millis(250));
    }

    #[test]
    fn a_lock_that_stays_is_reported_with_its_file() {
        let lock = "/srv/app.git/refs/heads/main.lock";
        let locked = || BranchUpdate::Locked { why: "failed to lock file".into(), lock: Some(lock.into()) };
        let (result, waited) = publish((0..MAX_ATTEMPTS).map(|_| locked()).collect());
        let err = result.unwrap_err();
        assert!(matches!(&err, ReleaseError::BranchLocked { lock: l, .. } if l == lock), "{err}");
        assert!(err.hint().contains(&format!("delete {lock}")), "{}", err.hint());
        assert!(waited >= std::time::Duration::from_secs(3), "{waited:?}");
    }

    #[test]
    fn rewrites_only_the_group() {
        let re = Regex::new(r"current version: (v\S+)").unwrap();
        let text = "# App\ncurrent version: v1.0.0\nother: v1.0.0\n";
        assert_eq!(rewrite(text, &re, "v1.2.0"), "# App\ncurrent version: v1.2.0\nother: v1.0.0\n");
        assert_eq!(rewrite("nothing here\n", &re, "v1.2.0"), "nothing here\n");
    }
}
