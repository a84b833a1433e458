//! The installer's side of the Docker engine: pull an image with progress,
//! save it as a tar (`docker save`) streamed chunk by chunk, load a tar
//! (`docker load`) streamed from disk, and read an image's id.

use std::path::Path;

use bollard::query_parameters::{CreateImageOptionsBuilder, ImportImageOptionsBuilder};
use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use tokio::io::AsyncReadExt;

use super::{DockerEngine, DockerError};
use crate::progress::ImageState;

/// Why an installer operation on the engine failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(transparent)]
    Docker(#[from] DockerError),
    #[error("image {image}: pulling {reference} failed: {message}")]
    Pull { image: String, reference: String, message: String },
    #[error("image {image}: saving {reference} failed: {message}")]
    Save { image: String, reference: String, message: String },
    #[error("loading {file} failed: {message}")]
    Load { file: String, message: String },
}

impl DockerEngine {
    /// The id (config digest) of a local image, `None` if it is not there.
    pub async fn image_id(&self, reference: &str) -> Result<Option<String>, DockerError> {
        match self.docker.inspect_image(reference).await {
            Ok(info) => Ok(info.id),
            Err(bollard::errors::Error::DockerResponseServerError { status_code: 404, .. }) => Ok(None),
            Err(e) => Err(DockerError::Unreachable { host: self.host.clone(), message: e.to_string() }),
        }
    }

    /// The platform of a local image, `os/arch[/variant]`; `None` if it is not there.
    pub async fn image_platform(&self, reference: &str) -> Result<Option<String>, DockerError> {
        match self.docker.inspect_image(reference).await {
            Ok(info) => {
                let field = |f: Option<String>| f.unwrap_or_default();
                let (os, arch, variant) = (field(info.os), field(info.architecture), field(info.variant));
                Ok(Some(crate::config::platform_name(&os, &arch, &variant)))
            }
            Err(bollard::errors::Error::DockerResponseServerError { status_code: 404, .. }) => Ok(None),
            Err(e) => Err(DockerError::Unreachable { host: self.host.clone(), message: e.to_string() }),
        }
    }

    /// Whether the local image `reference` is the registry manifest `digest`:
    /// one of its RepoDigests ends in `@digest` (the daemon may shorten the
    /// repository name, e.g. drop `docker.io/`, so only the digest is compared).
    pub async fn has_digest(&self, reference: &str, digest: &str) -> Result<bool, DockerError> {
        let suffix = format!("@{digest}");
        match self.docker.inspect_image(reference).await {
            Ok(info) => Ok(info.repo_digests.unwrap_or_default().iter().any(|d| d.ends_with(&suffix))),
            Err(bollard::errors::Error::DockerResponseServerError { status_code: 404, .. }) => Ok(false),
            Err(e) => Err(DockerError::Unreachable { host: self.host.clone(), message: e.to_string() }),
        }
    }

    /// Pulls `repository:tag`, reporting bytes downloaded to the progress sink.
    pub async fn pull(&self, image: &str, repository: &str, tag: &str) -> Result<(), StoreError> {
        self.pull_with(image, repository, tag, None, self.credentials()).await
    }

    /// [`Self::pull`] of one platform's image of a multi-platform tag.
    pub async fn pull_platform(
        &self,
        image: &str,
        repository: &str,
        tag: &str,
        platform: &str,
    ) -> Result<(), StoreError> {
        self.pull_with(image, repository, tag, Some(platform), self.credentials()).await
    }

    /// [`Self::pull`] with `creds` (`None`: anonymous), of `platform`'s image
    /// (`None`: the engine's); `tag` may be a digest.
    pub(super) async fn pull_with(
        &self,
        image: &str,
        repository: &str,
        tag: &str,
        platform: Option<&str>,
        creds: Option<bollard::auth::DockerCredentials>,
    ) -> Result<(), StoreError> {
        let reference = format!("{repository}:{tag}");
        let mut options = CreateImageOptionsBuilder::default().from_image(repository).tag(tag);
        if let Some(p) = platform {
            options = options.platform(p);
        }
        let options = options.build();
        let mut stream = self.docker.create_image(Some(options), None, creds);
        let mut layers = super::LayerBytes::default();
        let stall = self.timeouts.push_stall;
        let fail = |message: String| StoreError::Pull { image: image.into(), reference: reference.clone(), message };
        let stalled = || fail(format!("no progress for {}s (timeouts.push_stall)", stall.as_secs()));
        while let Some(item) = super::build::within(stall, || false, stream.next()).await.map_err(|()| stalled())? {
            match item {
                Ok(info) => {
                    if let Some(message) = info.error_detail.and_then(|d| d.message) {
                        return Err(fail(message));
                    }
                    if let (Some(id), Some(detail)) = (info.id, info.progress_detail) {
                        if let (Some(cur), Some(total)) = (detail.current, detail.total) {
                            let (done, total) = layers.update(id, cur, total);
                            let state = ImageState::Pulling { done, total };
                            self.progress.update(image, &state);
                        }
                    }
                }
                Err(bollard::errors::Error::DockerStreamError { error }) => return Err(fail(error)),
                Err(e) => return Err(fail(e.to_string())),
            }
        }
        Ok(())
    }

    /// `docker save reference`: the tar, as a stream of chunks.
    pub fn save(&self, reference: &str) -> impl Stream<Item = Result<Bytes, bollard::errors::Error>> + '_ {
        self.docker.export_image(reference)
    }

    /// `docker load` of the tar at `path`, read from disk as the daemon takes it.
    /// Returns the images the daemon reports loaded (`Loaded image: ...` lines).
    pub async fn load(&self, path: &Path) -> Result<Vec<String>, StoreError> {
        let file_name = path.display().to_string();
        let load_err = |message: String| StoreError::Load { file: file_name.clone(), message };
        let file = tokio::fs::File::open(path).await.map_err(|e| load_err(e.to_string()))?;
        let body = futures_util::stream::unfold(file, |mut file| async move {
            let mut buf = vec![0u8; 256 * 1024];
            match file.read(&mut buf).await {
                Ok(0) => None,
                Ok(n) => {
                    buf.truncate(n);
                    Some((Ok::<Bytes, std::io::Error>(Bytes::from(buf)), file))
                }
                Err(e) => Some((Err(e), file)),
            }
        });
        let options = ImportImageOptionsBuilder::default().quiet(true).build();
        let mut stream = self.docker.import_image_stream(options, body, None);
        let mut loaded = Vec::new();
        while let Some(item) = stream.next().await {
            match item {
                Ok(info) => {
                    if let Some(message) = info.error_detail.and_then(|d| d.message) {
                        return Err(load_err(message));
                    }
                    for text in [info.stream, info.status].into_iter().flatten() {
                        for line in text.lines() {
                            if let Some(name) = line.trim().strip_prefix("Loaded image: ") {
                                loaded.push(name.to_string());
                            } else if let Some(id) = line.trim().strip_prefix("Loaded image ID: ") {
                                loaded.push(id.to_string());
                            }
                        }
                    }
                }
                Err(bollard::errors::Error::DockerStreamError { error }) => return Err(load_err(error)),
                Err(e) => return Err(load_err(e.to_string())),
            }
        }
        Ok(loaded)
    }
}
