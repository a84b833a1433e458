//! What relctl reads from an image's config (revision, input key, version),
//! cached by manifest digest. A digest names immutable content, so an entry
//! never goes stale: a tag is resolved with a `HEAD` (which Docker Hub does
//! not count as a pull) and its labels come from here once seen. Kept in
//! memory for a controller's life and on disk (`$XDG_CACHE_HOME/relctl`, else
//! `~/.cache/relctl`; safe to delete) for `reconcile --once`, bounded in size.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

/// The most entries kept on disk; beyond it the oldest half is removed.
const MAX_ON_DISK: usize = 20_000;

/// An image's labels as relctl reads them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Labels {
    pub revision: Option<String>,
    pub inputs: Option<String>,
    pub version: Option<String>,
}

pub struct LabelsCache {
    memory: Mutex<HashMap<String, Labels>>,
    dir: Option<PathBuf>,
    pruned: std::sync::Once,
}

impl LabelsCache {
    /// A cache in memory and, when the user's cache directory can be told, on disk.
    pub fn in_user_cache() -> Self {
        let base = std::env::var_os("XDG_CACHE_HOME")
            .filter(|d| !d.is_empty())
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")));
        Self::at(base.map(|b| b.join("relctl").join("labels-v1")))
    }

    /// A cache on disk under `dir` (none with `None`).
    pub fn at(dir: Option<PathBuf>) -> Self {
        Self { memory: Mutex::default(), dir, pruned: std::sync::Once::new() }
    }

    fn file(&self, digest: &str) -> Option<PathBuf> {
        let hex = digest.strip_prefix("sha256:")?;
        (hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()))
            .then(|| self.dir.as_ref().map(|d| d.join(hex)))?
    }

    pub fn get(&self, digest: &str) -> Option<Labels> {
        if let Some(hit) = self.memory.lock().unwrap_or_else(std::sync::PoisonError::into_inner).get(digest) {
            return Some(hit.clone());
        }
        let text = std::fs::read(self.file(digest)?).ok()?;
        let labels: Labels = serde_json::from_slice(&text).ok()?;
        self.remember(digest, &labels);
        Some(labels)
    }

    pub fn put(&self, digest: &str, labels: &Labels) {
        self.remember(digest, labels);
        let Some(path) = self.file(digest) else { return };
        let Some(dir) = path.parent() else { return };
        self.pruned.call_once(|| prune(dir));
        // Best effort: a cache that cannot be written only costs a read next time.
        let written = std::fs::create_dir_all(dir).and_then(|()| {
            let tmp = dir.join(format!(".{}.tmp", std::process::id()));
            std::fs::write(&tmp, serde_json::to_vec(labels).unwrap_or_default())?;
            std::fs::rename(&tmp, &path)
        });
        if let Err(e) = written {
            tracing::debug!("labels cache not written to {}: {e}", dir.display());
        }
    }

    fn remember(&self, digest: &str, labels: &Labels) {
        self.memory
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(digest.to_string(), labels.clone());
    }
}

/// Keeps the directory under [`MAX_ON_DISK`] entries, oldest out first.
fn prune(dir: &std::path::Path) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    let mut files: Vec<(std::time::SystemTime, PathBuf)> =
        entries.flatten().filter_map(|e| Some((e.metadata().ok()?.modified().ok()?, e.path()))).collect();
    if files.len() <= MAX_ON_DISK {
        return;
    }
    files.sort();
    for (_, path) in &files[..files.len() / 2] {
        let _ = std::fs::remove_file(path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_survive_a_new_process_through_the_disk_and_odd_digests_are_not_files() {
        let dir = tempfile::tempdir().unwrap();
        let digest = format!("sha256:{}", "ab".repeat(32));
        let labels = Labels { revision: Some("c1".into()), inputs: None, version: Some("1.0.0".into()) };
        LabelsCache::at(Some(dir.path().into())).put(&digest, &labels);
        assert_eq!(LabelsCache::at(Some(dir.path().into())).get(&digest), Some(labels.clone()), "read back from disk");
        let odd = "sha256:../../etc/passwd";
        let cache = LabelsCache::at(Some(dir.path().into()));
        cache.put(odd, &labels);
        assert_eq!(cache.get(odd), Some(labels), "kept in memory only");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
