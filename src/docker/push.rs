//! Pushes without the daemon's uploader: the image is exported from the
//! engine (`docker save`, spooled to a temporary directory, memory flat),
//! each layer the registry lacks is gzipped by `gzip.rs` and uploaded
//! through relctl's registry client, then the config and a schema 2 manifest
//! follow. The daemon's push deflates every layer at its default level
//! whatever it holds (about 1 core-second per 20 MB of incompressible data
//! here); this one stores what does not compress. A layer already sent in
//! this run is not compressed again: it is found in the repository, or
//! mounted from the one that has it.

use std::collections::{BTreeSet, HashMap};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use bytes::Bytes;
use futures_util::StreamExt;
use openssl::sha::Sha256;
use serde::Deserialize;
use serde_json::json;
use tokio::sync::mpsc;

use super::{DockerEngine, DockerError, gzip};
use crate::registry::upload::{Blob, Payload};
use crate::registry::{RegistryClient, RegistryError};
use crate::release::progress::ImageState;

pub const MANIFEST_TYPE: &str = "application/vnd.docker.distribution.manifest.v2+json";
const CONFIG_TYPE: &str = "application/vnd.docker.container.image.v1+json";
const LAYER_TYPE: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
/// Bytes of the engine's export handed to the reader thread at once.
const BATCH: usize = 256 << 10;
/// Saved files up to this size are kept in memory, larger ones on disk.
const IN_MEMORY: u64 = 1 << 20;

/// A layer blob sent in this run, by the digest of its uncompressed tar (diff id).
#[derive(Clone)]
pub(super) struct Sent {
    digest: String,
    size: u64,
    repositories: BTreeSet<String>,
}

/// Layer blobs sent in this run, shared by every push of the engine.
#[derive(Default)]
pub(super) struct SentLayers(Mutex<HashMap<String, Sent>>);

impl SentLayers {
    fn get(&self, diff_id: &str) -> Option<Sent> {
        self.0.lock().expect("sent layers").get(diff_id).cloned()
    }

    fn record(&self, diff_id: &str, digest: &str, size: u64, repository: &str) {
        let mut sent = self.0.lock().expect("sent layers");
        let entry = sent.entry(diff_id.to_string()).or_insert_with(|| Sent {
            digest: digest.to_string(),
            size,
            repositories: BTreeSet::new(),
        });
        entry.repositories.insert(repository.to_string());
    }
}

/// A file of the saved image.
#[derive(Clone)]
enum Spooled {
    Memory(Vec<u8>),
    Disk(PathBuf),
}

impl Spooled {
    fn open(&self) -> io::Result<Box<dyn Read + Send + '_>> {
        Ok(match self {
            Spooled::Memory(b) => Box::new(&b[..]),
            Spooled::Disk(p) => Box::new(std::fs::File::open(p)?),
        })
    }

    fn len(&self) -> u64 {
        match self {
            Spooled::Memory(b) => b.len() as u64,
            Spooled::Disk(p) => std::fs::metadata(p).map(|m| m.len()).unwrap_or_default(),
        }
    }

    fn bytes(&self) -> io::Result<Vec<u8>> {
        let mut out = Vec::new();
        self.open()?.read_to_end(&mut out)?;
        Ok(out)
    }
}

/// `manifest.json` of a `docker save` archive (one entry per image).
#[derive(Deserialize)]
struct SaveEntry {
    #[serde(rename = "Config")]
    config: String,
    #[serde(rename = "Layers")]
    layers: Vec<String>,
}

/// Reads the bytes the engine sends from a blocking thread.
struct ChannelReader {
    rx: mpsc::Receiver<Result<Bytes, String>>,
    current: Bytes,
}

impl Read for ChannelReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.current.is_empty() {
            match self.rx.blocking_recv() {
                Some(Ok(b)) => self.current = b,
                Some(Err(e)) => return Err(io::Error::other(e)),
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.current.len());
        buf[..n].copy_from_slice(&self.current.split_to(n));
        Ok(n)
    }
}

/// Every regular file of a saved image, by its path in the archive.
fn spool(archive: impl Read, dir: &Path) -> io::Result<HashMap<String, Spooled>> {
    let mut files = HashMap::new();
    let mut archive = tar::Archive::new(archive);
    for (i, entry) in archive.entries()?.enumerate() {
        let mut entry = entry?;
        if !entry.header().entry_type().is_file() {
            continue;
        }
        let name = entry.path()?.to_string_lossy().into_owned();
        let spooled = if entry.size() <= IN_MEMORY {
            let mut bytes = Vec::with_capacity(entry.size() as usize);
            entry.read_to_end(&mut bytes)?;
            Spooled::Memory(bytes)
        } else {
            let path = dir.join(format!("file-{i}"));
            io::copy(&mut entry, &mut std::fs::File::create(&path)?)?;
            Spooled::Disk(path)
        };
        files.insert(name, spooled);
    }
    Ok(files)
}

/// A writer that hashes and counts what passes through it.
struct Digesting<W> {
    inner: W,
    hash: Sha256,
    len: u64,
}

impl<W: Write> Write for Digesting<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hash.update(&buf[..n]);
        self.len += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

fn hex_digest(hash: Sha256) -> String {
    let hex: String = hash.finish().iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256:{hex}")
}

/// The blob for a saved layer: gzipped into `path`, or as it is when the
/// engine saved it compressed already. Returns (digest, size, file).
fn layer_blob(layer: &Spooled, path: PathBuf) -> io::Result<(String, u64, PathBuf)> {
    let mut magic = [0u8; 2];
    let gzipped = layer.open()?.read(&mut magic)? == 2 && magic == [0x1f, 0x8b];
    let mut out = Digesting { inner: io::BufWriter::new(std::fs::File::create(&path)?), hash: Sha256::new(), len: 0 };
    if gzipped {
        io::copy(&mut layer.open()?, &mut out)?;
    } else {
        gzip::compress(layer.open()?, &mut out)?;
    }
    out.flush()?;
    let len = out.len;
    Ok((hex_digest(out.hash), len, path))
}

impl DockerEngine {
    /// The registry client pushes go through, made on first use (loading the
    /// CA certificates on a blocking thread unless given an HTTP client).
    async fn uploader(&self) -> &RegistryClient {
        self.uploader
            .get_or_init(|| async {
                let http = match &self.http {
                    Some(http) => http.clone(),
                    None => tokio::task::spawn_blocking(crate::registry::client::http_client)
                        .await
                        .expect("building the HTTP client does not panic"),
                };
                RegistryClient::with_http(&self.registry, self.creds.clone(), http)
            })
            .await
    }

    /// Pushes the local image `repository:tag` (repository with its registry
    /// host); returns the manifest digest.
    pub(super) async fn push_image(&self, image: &str, repository: &str, tag: &str) -> Result<String, DockerError> {
        let reference = format!("{repository}:{tag}");
        let fail =
            |message: String| DockerError::Push { image: image.to_string(), reference: reference.clone(), message };
        let registry_error = |source: RegistryError| DockerError::Registry {
            image: image.to_string(),
            reference: reference.clone(),
            source: Box::new(source),
        };
        let path = repository
            .strip_prefix(&format!("{}/", self.registry))
            .ok_or_else(|| fail(format!("the image is not in registry {}", self.registry)))?;
        let client = self.uploader().await;

        let dir = tempfile::tempdir().map_err(|e| fail(format!("cannot make a temporary directory: {e}")))?;
        let files = self
            .spool_export(&reference, dir.path())
            .await
            .map_err(|e| fail(format!("exporting it from the engine: {e}")))?;
        let saved = |name: &str| files.get(name).ok_or_else(|| fail(format!("the engine's export has no {name}")));
        let entries: Vec<SaveEntry> =
            serde_json::from_slice(&saved("manifest.json")?.bytes().map_err(|e| fail(e.to_string()))?)
                .map_err(|e| fail(format!("the engine's export has an unreadable manifest.json: {e}")))?;
        let entry = entries.first().ok_or_else(|| fail("the engine exported no image".into()))?;
        let config = saved(&entry.config)?.bytes().map_err(|e| fail(e.to_string()))?;
        let diff_ids: Vec<String> = serde_json::from_slice::<serde_json::Value>(&config)
            .ok()
            .and_then(|c| c.pointer("/rootfs/diff_ids").cloned())
            .and_then(|d| serde_json::from_value(d).ok())
            .ok_or_else(|| fail("the image config lists no rootfs.diff_ids".into()))?;
        if diff_ids.len() != entry.layers.len() {
            return Err(fail(format!("the export has {} layers, its config {}", entry.layers.len(), diff_ids.len())));
        }

        let total: u64 = entry.layers.iter().filter_map(|l| files.get(l)).map(Spooled::len).sum();
        let mut done = 0;
        self.progress.update(image, &ImageState::Pushing { done, total });
        let mut layers = Vec::new();
        for (i, (name, diff_id)) in entry.layers.iter().zip(&diff_ids).enumerate() {
            let layer = saved(name)?;
            let (digest, size) =
                self.send_layer(client, path, layer, diff_id, dir.path(), i).await.map_err(|e| match e {
                    SendError::Registry(e) => registry_error(e),
                    SendError::Io(e) => fail(format!("layer {diff_id}: {e}")),
                })?;
            done += layer.len();
            self.progress.update(image, &ImageState::Pushing { done, total });
            layers.push(json!({ "mediaType": LAYER_TYPE, "size": size, "digest": digest }));
        }

        let config_digest = crate::registry::sha256_digest(&config);
        let config_size = config.len();
        let blob = Blob { digest: config_digest.clone(), payload: Payload::Bytes(config) };
        client.put_blob(path, &blob).await.map_err(registry_error)?;
        let manifest = json!({
            "schemaVersion": 2,
            "mediaType": MANIFEST_TYPE,
            "config": { "mediaType": CONFIG_TYPE, "size": config_size, "digest": config_digest },
            "layers": layers,
        });
        let bytes = serde_json::to_vec(&manifest).expect("a manifest serialises");
        client.put_manifest(path, tag, MANIFEST_TYPE, bytes).await.map_err(registry_error)
    }

    /// Streams `docker save <reference>` into `dir`.
    async fn spool_export(&self, reference: &str, dir: &Path) -> io::Result<HashMap<String, Spooled>> {
        let (tx, rx) = mpsc::channel(8);
        let dir = dir.to_path_buf();
        let reader = tokio::task::spawn_blocking(move || spool(ChannelReader { rx, current: Bytes::new() }, &dir));
        let mut stream = std::pin::pin!(self.save(reference));
        // The engine's chunks are small: batch them, or the reader thread wakes for every few KiB.
        let mut batch = bytes::BytesMut::new();
        loop {
            let item = stream.next().await;
            let flush = match &item {
                Some(Ok(chunk)) => {
                    batch.extend_from_slice(chunk);
                    batch.len() >= BATCH
                }
                _ => true,
            };
            if flush && !batch.is_empty() && tx.send(Ok(batch.split().freeze())).await.is_err() {
                break;
            }
            match item {
                Some(Ok(_)) => {}
                Some(Err(e)) => {
                    let _ = tx.send(Err(e.to_string())).await;
                    break;
                }
                None => break,
            }
        }
        drop(tx);
        reader.await.map_err(io::Error::other)?
    }

    /// Makes sure `repository` has the blob of one saved layer; returns its (digest, size).
    async fn send_layer(
        &self,
        client: &RegistryClient,
        repository: &str,
        layer: &Spooled,
        diff_id: &str,
        dir: &Path,
        index: usize,
    ) -> Result<(String, u64), SendError> {
        if let Some(sent) = self.sent.get(diff_id) {
            let here = sent.repositories.contains(repository) || client.has_blob(repository, &sent.digest).await?;
            let mut mounted = here;
            for from in sent.repositories.iter().filter(|_| !here) {
                if client.mount_blob(repository, &sent.digest, from).await? {
                    mounted = true;
                    break;
                }
            }
            if mounted {
                self.sent.record(diff_id, &sent.digest, sent.size, repository);
                return Ok((sent.digest, sent.size));
            }
        }
        let (layer, out) = (layer.clone(), dir.join(format!("layer-{index}.gz")));
        let (digest, size, file) =
            tokio::task::spawn_blocking(move || layer_blob(&layer, out)).await.map_err(io::Error::other)??;
        let sent =
            client.put_blob(repository, &Blob { digest: digest.clone(), payload: Payload::File(file.clone()) }).await;
        let _ = std::fs::remove_file(&file);
        sent?;
        self.sent.record(diff_id, &digest, size, repository);
        Ok((digest, size))
    }
}

enum SendError {
    Registry(RegistryError),
    Io(io::Error),
}

impl From<RegistryError> for SendError {
    fn from(e: RegistryError) -> Self {
        SendError::Registry(e)
    }
}

impl From<io::Error> for SendError {
    fn from(e: io::Error) -> Self {
        SendError::Io(e)
    }
}
