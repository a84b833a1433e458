//! Small OCI artifacts in the registry (cosign signatures and attestations):
//! blobs uploaded in one request each (`POST` then `PUT ?digest=`), skipped
//! when the registry has them, the manifest put under its tag; and read back
//! with their layers for verification.

use reqwest::{Method, StatusCode, header};

use super::{RegistryClient, RegistryError};
use crate::sign::cosign::{self, Artifact, Layer};

impl RegistryClient {
    /// Uploads `bytes` as a blob of `repository` unless the registry has it.
    async fn upload_blob(&self, repository: &str, bytes: &[u8]) -> Result<(), RegistryError> {
        let digest = cosign::sha256(bytes);
        let head = self.send(Method::HEAD, repository, &format!("blobs/{digest}"), &[], None, true).await?;
        if head.status().is_success() {
            return Ok(());
        }
        let resp = self.send(Method::POST, repository, "blobs/uploads/", &[], Some(Vec::new()), true).await?;
        let resp = self.success(resp, repository, "start a blob upload to").await?;
        let location = resp.headers().get(header::LOCATION).and_then(|l| l.to_str().ok()).unwrap_or("").to_string();
        let path = self.upload_path(repository, &location).ok_or_else(|| RegistryError::Status {
            registry: self.registry.clone(),
            repository: repository.to_string(),
            op: "start a blob upload to".into(),
            status: resp.status().as_u16(),
            message: "no usable Location header".into(),
        })?;
        let sep = if path.contains('?') { '&' } else { '?' };
        let put = format!("{path}{sep}digest={digest}");
        let headers = [(header::CONTENT_TYPE, "application/octet-stream".to_string())];
        let resp = self.send(Method::PUT, repository, &put, &headers, Some(bytes.to_vec()), true).await?;
        self.success(resp, repository, "upload a blob to").await?;
        Ok(())
    }

    /// The upload URL the registry gave, relative to `/v2/<repository>/`.
    fn upload_path(&self, repository: &str, location: &str) -> Option<String> {
        let path = match location.find("/v2/") {
            Some(i) => &location[i..],
            None => return None,
        };
        path.strip_prefix(&format!("/v2/{repository}/")).map(str::to_string)
    }

    /// Pushes `artifact` (its blobs, then its manifest under its tag); returns the manifest's digest.
    pub async fn put_artifact(&self, repository: &str, artifact: &Artifact) -> Result<String, RegistryError> {
        self.upload_blob(repository, &artifact.config).await?;
        for layer in &artifact.layers {
            self.upload_blob(repository, &layer.bytes).await?;
        }
        let manifest = cosign::manifest(artifact);
        let digest = cosign::sha256(&manifest);
        self.put_tag(repository, &artifact.tag, cosign::OCI_MANIFEST, manifest).await?;
        Ok(digest)
    }

    /// The layers of the artifact under `tag`, each checked against its digest; `None` when the tag is absent.
    pub async fn get_artifact(&self, repository: &str, tag: &str) -> Result<Option<Vec<Layer>>, RegistryError> {
        let Some((bytes, _, _)) = self.manifest(repository, tag).await? else { return Ok(None) };
        let bad = |message: &str| RegistryError::Manifest {
            registry: self.registry.clone(),
            repository: repository.to_string(),
            tag: tag.to_string(),
            message: message.to_string(),
        };
        let doc: serde_json::Value = serde_json::from_slice(&bytes).map_err(|_| bad("not JSON"))?;
        let mut layers = Vec::new();
        for l in doc["layers"].as_array().ok_or_else(|| bad("no layers"))? {
            let digest = l["digest"].as_str().ok_or_else(|| bad("a layer without digest"))?;
            let resp = self.send(Method::GET, repository, &format!("blobs/{digest}"), &[], None, false).await?;
            if resp.status() == StatusCode::NOT_FOUND {
                return Err(bad("a layer blob is missing"));
            }
            let resp = self.success(resp, repository, "read a blob of").await?;
            let blob = resp.bytes().await.map_err(|e| self.body_error(e))?.to_vec();
            if cosign::sha256(&blob) != digest {
                return Err(bad("a layer does not match its digest"));
            }
            layers.push(Layer {
                media_type: l["mediaType"].as_str().unwrap_or_default().to_string(),
                bytes: blob,
                annotations: l["annotations"].as_object().cloned().unwrap_or_default(),
            });
        }
        Ok(Some(layers))
    }
}
