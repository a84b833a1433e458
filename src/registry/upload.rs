//! What a push sends to the registry (API v2): blobs, checked for first,
//! mounted from another repository where they already are, else uploaded in
//! one request after the upload session is opened; then the manifest.

use reqwest::{Method, StatusCode, header};

pub use super::client::Payload;
use super::{RegistryClient, RegistryError, sha256_digest};

/// A blob to upload: its digest and its bytes.
pub struct Blob {
    pub digest: String,
    pub payload: Payload,
}

impl RegistryClient {
    /// Whether `repository` has the blob `digest`.
    pub async fn has_blob(&self, repository: &str, digest: &str) -> Result<bool, RegistryError> {
        let resp = self.send(Method::HEAD, repository, &format!("blobs/{digest}"), &[], None, true).await?;
        Ok(self.found(resp, repository, &format!("look for blob {digest} in")).await?.is_some())
    }

    /// Mounts `digest` from `from` into `repository` (no bytes move); `false`
    /// when the registry would not (the blob is not there, or the login may
    /// not read `from`), so the caller uploads it.
    pub async fn mount_blob(&self, repository: &str, digest: &str, from: &str) -> Result<bool, RegistryError> {
        let path = format!(
            "blobs/uploads/?{}",
            form_urlencoded::Serializer::new(String::new())
                .append_pair("mount", digest)
                .append_pair("from", from)
                .finish()
        );
        let resp = self.send(Method::POST, repository, &path, &[], None, true).await?;
        let status = resp.status();
        let resp = self.success(resp, repository, &format!("mount blob {digest} from {from} into")).await?;
        // 202: the registry opened an upload session instead; it expires unused.
        drop(resp);
        Ok(status == StatusCode::CREATED)
    }

    /// Uploads `blob` to `repository` unless it is there already: opens an
    /// upload session, then sends the bytes with their digest in one request.
    /// Returns whether bytes were sent.
    pub async fn put_blob(&self, repository: &str, blob: &Blob) -> Result<bool, RegistryError> {
        if self.has_blob(repository, &blob.digest).await? {
            return Ok(false);
        }
        let op = format!("upload blob {} to", blob.digest);
        let resp = self.send(Method::POST, repository, "blobs/uploads/", &[], None, true).await?;
        let resp = self.success(resp, repository, &op).await?;
        let location = resp
            .headers()
            .get(header::LOCATION)
            .and_then(|l| l.to_str().ok())
            .ok_or_else(|| self.status_error(repository, &op, resp.status(), "no upload location in the answer"))?;
        let mut url = reqwest::Url::parse(&self.absolute(location))
            .map_err(|e| self.status_error(repository, &op, resp.status(), &format!("bad upload location: {e}")))?;
        url.query_pairs_mut().append_pair("digest", &blob.digest);
        let headers = [(header::CONTENT_TYPE, "application/octet-stream".to_string())];
        let resp = self.send_to(Method::PUT, url.as_str(), repository, &headers, Some(&blob.payload), true).await?;
        self.success(resp, repository, &op).await?;
        Ok(true)
    }

    /// Puts `manifest` (of media type `media`) under `reference`; returns its digest.
    pub async fn put_manifest(
        &self,
        repository: &str,
        reference: &str,
        media: &str,
        manifest: Vec<u8>,
    ) -> Result<String, RegistryError> {
        let digest = sha256_digest(&manifest);
        let path = format!("manifests/{reference}");
        let headers = [(header::CONTENT_TYPE, media.to_string())];
        let resp = self.send(Method::PUT, repository, &path, &headers, Some(manifest), true).await?;
        self.success(resp, repository, &format!("tag {reference} in")).await?;
        if let Some(tags) = self.listings.lock().expect("listing cache").get_mut(repository) {
            if !tags.iter().any(|t| t == reference) {
                tags.push(reference.to_string());
            }
        }
        Ok(digest)
    }

    fn status_error(&self, repository: &str, op: &str, status: StatusCode, message: &str) -> RegistryError {
        RegistryError::Status {
            registry: self.registry.clone(),
            repository: repository.to_string(),
            op: op.to_string(),
            status: status.as_u16(),
            message: message.to_string(),
        }
    }
}
