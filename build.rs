//! Build script: embeds the git commit relctl is built from as `RELCTL_COMMIT`
//! (`relctl --version` prints it; the Action compares it with its own commit).
//!
//! The commit is `RELCTL_BUILD_COMMIT` when the build sets it (40 hex digits),
//! else `git rev-parse HEAD` when this package is the top of a git work tree,
//! else `unknown` (a crate tarball, a Docker context sent without `.git`, a
//! package inside someone else's repository). Never fails the build.

use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-env-changed=RELCTL_BUILD_COMMIT");
    println!("cargo:rerun-if-changed=build.rs");
    let manifest = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_default());
    let commit = from_env().or_else(|| from_git(&manifest)).unwrap_or_else(|| {
        // Not from git: `.git` does not exist, so cargo re-runs this script on every build and
        // notices when the sources become (or move into) a work tree. Cheap: nothing here is slow.
        println!("cargo:rerun-if-changed=.git");
        "unknown".to_string()
    });
    println!("cargo:rustc-env=RELCTL_COMMIT={commit}");
}

/// A full commit id: 40 lowercase hex digits.
fn is_commit(s: &str) -> bool {
    s.len() == 40 && s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

fn from_env() -> Option<String> {
    let value = std::env::var("RELCTL_BUILD_COMMIT").ok()?.trim().to_ascii_lowercase();
    is_commit(&value).then_some(value)
}

/// `git ARGS` in `dir`, its output trimmed; `None` if git is missing or fails.
fn git(dir: &Path, args: &[&str]) -> Option<String> {
    let out = Command::new("git").arg("-C").arg(dir).args(args).output().ok()?;
    out.status.success().then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

fn from_git(manifest: &Path) -> Option<String> {
    let top = git(manifest, &["rev-parse", "--show-toplevel"])?;
    if std::fs::canonicalize(&top).ok()? != std::fs::canonicalize(manifest).ok()? {
        return None; // this package sits inside another repository: its HEAD says nothing about us
    }
    let commit = git(manifest, &["rev-parse", "HEAD"])?;
    if !is_commit(&commit) {
        return None;
    }
    watch(manifest);
    Some(commit)
}

/// Re-runs the script when HEAD moves: HEAD itself, the branch it names, and
/// packed-refs (worktrees keep HEAD apart from the common refs; `--git-path`
/// resolves both). Only existing files: cargo re-runs on every build for a
/// missing one. Paths relative to the package, so that the same target
/// directory used for a copy of the sources elsewhere (the build script's
/// fingerprint does not include where the package is) finds them missing there.
fn watch(manifest: &Path) {
    let mut paths = vec!["HEAD".to_string(), "packed-refs".to_string()];
    if let Some(branch) = git(manifest, &["symbolic-ref", "-q", "HEAD"]) {
        paths.push(branch);
    }
    for path in paths {
        let Some(file) = git(manifest, &["rev-parse", "--git-path", &path]) else { continue };
        let file = manifest.join(file); // relative to the work tree, or absolute (then join keeps it)
        if let Some(relative) = file.is_file().then(|| relative_to(manifest, &file)).flatten() {
            println!("cargo:rerun-if-changed={}", relative.display());
        }
    }
}

/// `file` as a path relative to `base` (`..` where needed), both made canonical.
fn relative_to(base: &Path, file: &Path) -> Option<PathBuf> {
    let (base, file) = (std::fs::canonicalize(base).ok()?, std::fs::canonicalize(file).ok()?);
    let common = base.components().zip(file.components()).take_while(|(a, b)| a == b).count();
    let mut relative: PathBuf = base.components().skip(common).map(|_| "..").collect();
    relative.extend(file.components().skip(common));
    Some(relative)
}
