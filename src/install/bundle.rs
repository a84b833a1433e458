//! Offline bundles for air-gapped hosts. `relctl export` writes one
//! `docker save` tar per image (streamed to disk while hashed),
//! `checksums.sha256` (verifiable with `sha256sum -c`), `images-info.txt`
//! and a `.env` with IMAGE_TAG. `relctl import` checks every checksum before
//! loading anything, loads each tar, and checks the loaded image ids.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use futures_util::StreamExt;
use sha2::{Digest, Sha256};

use crate::docker::DockerEngine;
use crate::docker::store::StoreError;
use crate::progress::{ImageState, Progress};

pub const CHECKSUMS: &str = "checksums.sha256";
pub const INFO: &str = "images-info.txt";

#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{path}: {message}")]
    Io { path: String, message: String },
    #[error("{file} does not match checksums.sha256 (expected {expected}, found {found}); nothing was loaded")]
    Corrupt { file: String, expected: String, found: String },
    #[error("{path} is not a relctl bundle: {message}")]
    NotABundle { path: String, message: String },
    #[error("image {image}: loaded as {found}, but the bundle recorded {expected}")]
    WrongImage { image: String, expected: String, found: String },
}

impl BundleError {
    pub fn exit_code(&self) -> u8 {
        match self {
            BundleError::NotABundle { .. } => 2,
            _ => 1,
        }
    }

    pub fn hint(&self) -> String {
        match self {
            BundleError::Corrupt { file, .. } => {
                format!("copy {file} again from the exporting host (check with `sha256sum -c checksums.sha256`)")
            }
            BundleError::NotABundle { .. } => "pass the directory `relctl export` wrote".into(),
            BundleError::WrongImage { .. } => "export the bundle again; the tar holds another image".into(),
            BundleError::Io { .. } => "check the path, free space and permissions".into(),
            BundleError::Store(_) => "check that the Docker daemon runs and the registry is reachable".into(),
        }
    }
}

fn io_err(path: &Path) -> impl Fn(std::io::Error) -> BundleError + '_ {
    move |e| BundleError::Io { path: path.display().to_string(), message: e.to_string() }
}

/// One image of a bundle, as `images-info.txt` lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BundleImage {
    pub image: String,
    /// `registry/repository:tag` the image is loaded as.
    pub reference: String,
    /// Registry manifest digest.
    pub digest: String,
    /// Local image id (config digest), what `docker load` must produce.
    pub id: String,
    pub size: u64,
    pub revision: String,
    pub file: String,
    /// The platform saved (`os/arch[/variant]`); empty in bundles from before platforms.
    pub platform: String,
}

const INFO_HEADER: &str = "# image\treference\tdigest\timage-id\tsize\trevision\tfile\tplatform";

/// The `images-info.txt` text.
pub fn info_text(images: &[BundleImage]) -> String {
    let mut s = format!("{INFO_HEADER}\n");
    for i in images {
        s.push_str(&format!(
            "{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\n",
            i.image, i.reference, i.digest, i.id, i.size, i.revision, i.file, i.platform
        ));
    }
    s
}

/// Parses `images-info.txt`.
pub fn parse_info(text: &str) -> Option<Vec<BundleImage>> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            // Bundles written before platforms have 7 columns.
            (f.len() == 7 || f.len() == 8).then(|| BundleImage {
                image: f[0].into(),
                reference: f[1].into(),
                digest: f[2].into(),
                id: f[3].into(),
                size: f[4].parse().unwrap_or(0),
                revision: f[5].into(),
                file: f[6].into(),
                platform: f.get(7).map(|p| p.to_string()).unwrap_or_default(),
            })
        })
        .collect()
}

/// What to export: each image's name, reference, registry digest and revision.
pub struct ExportItem {
    pub image: String,
    pub reference: String,
    pub digest: String,
    pub revision: String,
    /// Of a multi-platform image: the platform to save.
    pub platform: Option<String>,
}

/// Writes the bundle of `items` for `tag` into `out`.
pub async fn export(
    engine: &DockerEngine,
    items: &[ExportItem],
    tag: &str,
    out: &Path,
    progress: &dyn Progress,
) -> Result<Vec<BundleImage>, BundleError> {
    std::fs::create_dir_all(out).map_err(io_err(out))?;
    let mut images = Vec::new();
    let mut checksums = String::new();
    for item in items {
        let (repository, image_tag) = item.reference.rsplit_once(':').expect("a reference has a tag");
        // Pulled when absent, or when the local image is not the registry's (a stale local tag);
        // one platform of a multi-platform image always (the index digest does not tell platforms apart).
        match &item.platform {
            Some(platform) => engine.pull_platform(&item.image, repository, image_tag, platform).await?,
            None if !engine.has_digest(&item.reference, &item.digest).await.map_err(StoreError::from)? => {
                engine.pull(&item.image, repository, image_tag).await?
            }
            None => {}
        }
        let file = format!("{}.tar", item.image);
        let path = out.join(&file);
        let part = out.join(format!("{file}.part"));
        let mut writer = std::io::BufWriter::new(std::fs::File::create(&part).map_err(io_err(&part))?);
        let mut hasher = Sha256::new();
        let mut size = 0u64;
        let mut stream = std::pin::pin!(engine.save(&item.reference));
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| StoreError::Save {
                image: item.image.clone(),
                reference: item.reference.clone(),
                message: e.to_string(),
            })?;
            hasher.update(&chunk);
            writer.write_all(&chunk).map_err(io_err(&part))?;
            size += chunk.len() as u64;
            progress.update(&item.image, &ImageState::Saving { done: size });
        }
        writer.into_inner().map_err(|e| io_err(&part)(e.into_error()))?.sync_all().map_err(io_err(&part))?;
        std::fs::rename(&part, &path).map_err(io_err(&path))?;
        let id = engine.image_id(&item.reference).await.map_err(StoreError::from)?.unwrap_or_default();
        let platform = engine.image_platform(&item.reference).await.map_err(StoreError::from)?.unwrap_or_default();
        let hex = crate::context::hex(&hasher.finalize());
        checksums.push_str(&format!("{hex}  {file}\n"));
        progress.update(&item.image, &ImageState::Done { tags: vec![tag.to_string()], digest: item.digest.clone() });
        images.push(BundleImage {
            image: item.image.clone(),
            reference: item.reference.clone(),
            digest: item.digest.clone(),
            id,
            size,
            revision: item.revision.clone(),
            file,
            platform,
        });
    }
    let write = |name: &str, text: &str| {
        let path = out.join(name);
        std::fs::write(&path, text).map_err(io_err(&path))
    };
    write(INFO, &info_text(&images))?;
    write(".env", &format!("IMAGE_TAG={tag}\n"))?;
    // Last: a bundle with checksums is complete.
    write(CHECKSUMS, &checksums)?;
    Ok(images)
}

/// SHA-256 of a file, read in chunks.
pub fn sha256_file(path: &Path) -> Result<String, BundleError> {
    let mut file = std::fs::File::open(path).map_err(io_err(path))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = file.read(&mut buf).map_err(io_err(path))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(crate::context::hex(&hasher.finalize()))
}

/// Checks every file `checksums.sha256` of `dir` names; returns the bundle's images.
pub fn check(dir: &Path) -> Result<Vec<BundleImage>, BundleError> {
    let not_a_bundle = |message: String| BundleError::NotABundle { path: dir.display().to_string(), message };
    let sums = std::fs::read_to_string(dir.join(CHECKSUMS)).map_err(|e| not_a_bundle(format!("{CHECKSUMS}: {e}")))?;
    let info = std::fs::read_to_string(dir.join(INFO)).map_err(|e| not_a_bundle(format!("{INFO}: {e}")))?;
    let images = parse_info(&info).ok_or_else(|| not_a_bundle(format!("{INFO} is malformed")))?;
    let mut listed = Vec::new();
    for line in sums.lines().filter(|l| !l.trim().is_empty()) {
        let (expected, file) =
            line.split_once("  ").ok_or_else(|| not_a_bundle(format!("{CHECKSUMS}: bad line `{line}`")))?;
        let found = sha256_file(&dir.join(file))?;
        if found != expected {
            return Err(BundleError::Corrupt { file: file.into(), expected: expected.into(), found });
        }
        listed.push(file.to_string());
    }
    if let Some(i) = images.iter().find(|i| !listed.contains(&i.file)) {
        return Err(not_a_bundle(format!("{} has no checksum", i.file)));
    }
    Ok(images)
}

/// Loads a checked bundle and verifies each loaded image id.
pub async fn import(
    engine: &DockerEngine,
    dir: &Path,
    progress: &dyn Progress,
) -> Result<Vec<BundleImage>, BundleError> {
    let images = tokio::task::block_in_place(|| check(dir))?;
    for i in &images {
        let path: PathBuf = dir.join(&i.file);
        engine.load(&path).await?;
        let found = engine.image_id(&i.reference).await.map_err(StoreError::from)?.unwrap_or_else(|| "nothing".into());
        if found != i.id {
            return Err(BundleError::WrongImage { image: i.image.clone(), expected: i.id.clone(), found });
        }
        progress.update(&i.image, &ImageState::Done { tags: vec![i.reference.clone()], digest: i.id.clone() });
    }
    Ok(images)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn info_round_trips() {
        let images = vec![BundleImage {
            image: "server".into(),
            reference: "docker.io/acme/app-server:v1.2.0".into(),
            digest: "sha256:aa".into(),
            id: "sha256:bb".into(),
            size: 1234,
            revision: "c0ffee".into(),
            file: "server.tar".into(),
            platform: "linux/arm64".into(),
        }];
        assert_eq!(parse_info(&info_text(&images)).unwrap(), images);
        assert_eq!(parse_info("server\tonly two"), None);
    }

    #[test]
    fn a_flipped_byte_is_refused_by_name_before_anything_else() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.tar"), b"aaaa").unwrap();
        std::fs::write(dir.path().join("b.tar"), b"bbbb").unwrap();
        let sums = format!(
            "{}  a.tar\n{}  b.tar\n",
            sha256_file(&dir.path().join("a.tar")).unwrap(),
            sha256_file(&dir.path().join("b.tar")).unwrap()
        );
        std::fs::write(dir.path().join(CHECKSUMS), sums).unwrap();
        let info = "a\tr/a:v1\tsha256:1\tsha256:2\t4\tc\ta.tar\nb\tr/b:v1\tsha256:1\tsha256:2\t4\tc\tb.tar\n";
        std::fs::write(dir.path().join(INFO), info).unwrap();
        assert_eq!(check(dir.path()).unwrap().len(), 2);
        std::fs::write(dir.path().join("b.tar"), b"bbbc").unwrap();
        let err = check(dir.path()).unwrap_err();
        assert!(matches!(&err, BundleError::Corrupt { file, .. } if file == "b.tar"), "{err}");
    }
}
