//! Phase 4: the VERSION commit. Built on the remote branch's newest tip and
//! pushed without force, so the push is a compare-and-swap: if the branch
//! moved, fetch, re-read VERSION (someone may have released a newer version),
//! rebuild the commit and try again, a bounded number of times.

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

pub fn publish_version(
    config: &Config,
    git: &impl GitRepo,
    step: &VersionStep,
    target: &ReleaseVersion,
) -> Result<VersionOutcome, ReleaseError> {
    for attempt in 1..=MAX_ATTEMPTS {
        let tip = git.branch_tip()?;
        let current = git.file_at(&tip, &step.path)?.map(|b| String::from_utf8_lossy(&b).trim().to_string());
        if let Some(cur) = current.as_deref().and_then(|c| ReleaseVersion::parse(c, &config.git.tag_prefix).ok()) {
            if cur.cmp_release(target).is_ge() {
                return Ok(VersionOutcome::AlreadyCurrent { current: cur.raw });
            }
        }
        let mut files = vec![FileChange { path: step.path.clone(), content: format!("{}\n", step.to).into_bytes() }];
        for au in &config.also_update {
            match git.file_at(&tip, &au.path)? {
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
        let commit =
            git.commit_on(&tip, &files, &message, (&config.commit.author_name, &config.commit.author_email))?;
        match git.push_branch(&commit)? {
            PushOutcome::Pushed => {
                return Ok(VersionOutcome::Committed { commit, attempts: attempt });
            }
            PushOutcome::Rejected(why) => {
                tracing::warn!(attempt, "the release branch moved while releasing ({why}); fetching and retrying");
                git.fetch()?;
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
