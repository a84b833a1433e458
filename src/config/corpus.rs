//! The committed seed inputs of the property tests (tests/corpus/<target>/),
//! replayed by ordinary `#[test]`s so every `cargo test` runs them.

use std::path::PathBuf;

fn dir(target: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/corpus").join(target)
}

/// Every file of `tests/corpus/<target>/` as (file name, bytes), sorted by name.
/// Panics when the directory is missing or empty, so a lost corpus fails the test.
pub(crate) fn bytes(target: &str) -> Vec<(String, Vec<u8>)> {
    let dir = dir(target);
    let mut out: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("corpus {}: {e}", dir.display()))
        .map(|entry| {
            let path = entry.expect("corpus entry").path();
            let name = path.file_name().expect("file name").to_string_lossy().into_owned();
            (name, std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display())))
        })
        .collect();
    out.sort();
    assert!(!out.is_empty(), "corpus {} is empty", dir.display());
    out
}

/// Like [`bytes`], for corpora of UTF-8 text.
pub(crate) fn texts(target: &str) -> Vec<(String, String)> {
    bytes(target)
        .into_iter()
        .map(|(name, b)| {
            let text = String::from_utf8(b).unwrap_or_else(|e| panic!("corpus {target}/{name} is not UTF-8: {e}"));
            (name, text)
        })
        .collect()
}
