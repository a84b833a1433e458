//! The registry boundary: the [`Registry`] trait (observe tags, copy a tag)
//! and its HTTP API v2 adapter on [`client::RegistryClient`].

pub mod artifacts;
pub mod client;
pub mod credentials;
#[cfg(test)]
mod http_tests;
pub mod index;
pub mod labels_cache;
pub mod rate_limit;

use std::collections::BTreeMap;
use std::future::Future;

use reqwest::{Method, Response, StatusCode, header};

use crate::plan::RemoteTag;
pub use client::RegistryClient;
pub use credentials::Credentials;

pub use crate::config::oci::is_docker_hub;

const MANIFEST_TYPES: &str = "application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json";

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("registry {registry} refused {} for {repository}", user.as_deref().map_or("anonymous access".to_string(), |u| format!("the credentials of user `{u}`")))]
    Unauthorized { registry: String, repository: String, user: Option<String> },
    #[error("registry {registry}: cannot reach it: {message}")]
    Transport { registry: String, message: String },
    #[error("registry {registry}: {op} {repository} answered HTTP {status}: {message}")]
    Status { registry: String, repository: String, op: String, status: u16, message: String },
    #[error("registry {registry}: the pull quota is used up (HTTP 429 for {repository}){}", retry_after_secs.map(|s| format!("; it resets in {s} s")).unwrap_or_default())]
    PullQuota { registry: String, repository: String, retry_after_secs: Option<u64> },
    #[error("registry {registry}: {repository}:{tag} has a manifest relctl cannot read: {message}")]
    Manifest { registry: String, repository: String, tag: String, message: String },
}

impl RegistryError {
    pub fn hint(&self) -> String {
        match self {
            RegistryError::Unauthorized { registry, .. } => format!(
                "set RELCTL_REGISTRY_USERNAME and RELCTL_REGISTRY_PASSWORD (a token for Docker Hub) or run `docker login {registry}`; check the account may push to this repository"
            ),
            RegistryError::Transport { .. } => "check the registry host in release.yaml and the network".into(),
            RegistryError::Status { .. } => "retry later; if it persists, check the registry's status".into(),
            RegistryError::Manifest { .. } => "the tag was written by another tool; delete or re-push it".into(),
            RegistryError::PullQuota { .. } => "rerun once the quota resets; to raise it, authenticate (RELCTL_REGISTRY_USERNAME / RELCTL_REGISTRY_PASSWORD or docker login: 100 pulls an hour on a free Docker Hub account instead of 10 anonymously) or use a paid plan".into(),
        }
    }
}

/// The registry operations a release needs. `repository` is the path under the registry.
pub trait Registry: Sync {
    /// Every tag of `repository`, listed once per run (see [`RegistryClient::forget_listings`]).
    fn tags(&self, repository: &str) -> impl Future<Output = Result<Vec<String>, RegistryError>> + Send;
    /// Of `tags`, those that exist, each with its digest; the labels (revision,
    /// inputs) are read for `labelled` tags only. One tag listing plus one
    /// request per existing tag, and one more per labelled one.
    fn observe(
        &self,
        repository: &str,
        tags: &[String],
        labelled: &[&str],
    ) -> impl Future<Output = Result<BTreeMap<String, RemoteTag>, RegistryError>> + Send;
    /// Points `to` at the manifest of `from` (no layer moves); returns the digest.
    fn copy_tag(
        &self,
        repository: &str,
        from: &str,
        to: &str,
    ) -> impl Future<Output = Result<String, RegistryError>> + Send;
    /// Digest and labels of `tag`, or `None` if absent.
    fn inspect_tag(
        &self,
        repository: &str,
        tag: &str,
    ) -> impl Future<Output = Result<Option<RemoteTag>, RegistryError>> + Send;
    /// `org.opencontainers.image.version` of the image `tag` points at, if it exists and has one.
    fn tag_version(
        &self,
        repository: &str,
        tag: &str,
    ) -> impl Future<Output = Result<Option<String>, RegistryError>> + Send;
    /// Forgets the tag listings of this run: the next [`Registry::tags`] lists again.
    fn forget_listings(&self) {}
    /// Pushes a signature or attestation (see [`crate::sign::cosign`]); returns its manifest digest.
    fn put_artifact(
        &self,
        repository: &str,
        artifact: &crate::sign::cosign::Artifact,
    ) -> impl Future<Output = Result<String, RegistryError>> + Send;
    /// The descriptor of the manifest under `reference` (tag or digest), or `None`.
    fn describe(
        &self,
        repository: &str,
        reference: &str,
    ) -> impl Future<Output = Result<Option<index::Descriptor>, RegistryError>> + Send;
    /// Pushes `manifest` of `media_type` under `tag`; returns its digest.
    fn put_manifest(
        &self,
        repository: &str,
        tag: &str,
        media_type: &str,
        manifest: Vec<u8>,
    ) -> impl Future<Output = Result<String, RegistryError>> + Send;
    /// The platform images of the index under `reference`, as (platform,
    /// digest); empty when it is a plain manifest, `None` when absent.
    fn platforms(
        &self,
        repository: &str,
        reference: &str,
    ) -> impl Future<Output = Result<Option<Vec<(String, String)>>, RegistryError>> + Send;
    /// The layers of the artifact under `tag`, or `None`.
    fn get_artifact(
        &self,
        repository: &str,
        tag: &str,
    ) -> impl Future<Output = Result<Option<Vec<crate::sign::cosign::Layer>>, RegistryError>> + Send;
}

impl RegistryClient {
    /// The response if it succeeded, `None` on 404, else an error naming `op`.
    async fn found(&self, resp: Response, repository: &str, op: &str) -> Result<Option<Response>, RegistryError> {
        let status = resp.status();
        if status == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        if status.is_success() {
            return Ok(Some(resp));
        }
        let message: String = resp.text().await.unwrap_or_default().chars().take(300).collect();
        Err(RegistryError::Status {
            registry: self.registry.clone(),
            repository: repository.to_string(),
            op: op.to_string(),
            status: status.as_u16(),
            message: message.trim().to_string(),
        })
    }

    /// Like [`Self::found`], where a 404 is an error too.
    async fn success(&self, resp: Response, repository: &str, op: &str) -> Result<Response, RegistryError> {
        self.found(resp, repository, op).await?.ok_or_else(|| RegistryError::Status {
            registry: self.registry.clone(),
            repository: repository.to_string(),
            op: op.to_string(),
            status: 404,
            message: "not found".into(),
        })
    }

    fn body_error(&self, e: reqwest::Error) -> RegistryError {
        RegistryError::Transport { registry: self.registry.clone(), message: e.without_url().to_string() }
    }

    /// Every tag of a repository, following `Link` pagination; empty if the repository does not exist.
    pub async fn list_tags(&self, repository: &str) -> Result<Vec<String>, RegistryError> {
        let mut out = Vec::new();
        let mut path = "tags/list?n=1000".to_string();
        loop {
            let resp = self.send(Method::GET, repository, &path, &[], None, false).await?;
            let Some(resp) = self.found(resp, repository, "list tags of").await? else { return Ok(out) };
            let next = resp.headers().get(header::LINK).and_then(|l| l.to_str().ok()).and_then(next_link);
            let body: serde_json::Value = resp.json().await.map_err(|e| self.body_error(e))?;
            if let Some(tags) = body.get("tags").and_then(|t| t.as_array()) {
                out.extend(tags.iter().filter_map(|t| t.as_str().map(str::to_string)));
            }
            match next {
                Some(n) => path = n,
                None => return Ok(out),
            }
        }
    }

    /// The manifest of `reference` (tag or digest): (bytes, media type, digest), or `None` if absent.
    pub async fn manifest(
        &self,
        repository: &str,
        reference: &str,
    ) -> Result<Option<(Vec<u8>, String, String)>, RegistryError> {
        let resp = self
            .send(
                Method::GET,
                repository,
                &format!("manifests/{reference}"),
                &[(header::ACCEPT, MANIFEST_TYPES.into())],
                None,
                false,
            )
            .await?;
        let op = format!("read manifest {reference} of");
        let Some(resp) = self.found(resp, repository, &op).await? else { return Ok(None) };
        let media = resp.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
        let header_digest =
            resp.headers().get("docker-content-digest").and_then(|v| v.to_str().ok()).map(str::to_string);
        let bytes = resp.bytes().await.map_err(|e| self.body_error(e))?.to_vec();
        let digest = header_digest.unwrap_or_else(|| crate::sign::cosign::sha256(&bytes));
        Ok(Some((bytes, media, digest)))
    }

    /// The labels of the image behind a manifest.
    async fn labels(
        &self,
        repository: &str,
        tag: &str,
        manifest: &[u8],
    ) -> Result<serde_json::Map<String, serde_json::Value>, RegistryError> {
        let bad = |message: String| RegistryError::Manifest {
            registry: self.registry.clone(),
            repository: repository.to_string(),
            tag: tag.to_string(),
            message,
        };
        let mut json: serde_json::Value = serde_json::from_slice(manifest).map_err(|e| bad(e.to_string()))?;
        // An index relctl assembled says what it holds in its annotations.
        if let Some(notes) = json.get("annotations").and_then(|a| a.as_object()).filter(|a| a.contains_key(REVISION)) {
            return Ok(notes.clone());
        }
        // Another index: read the first platform image's manifest.
        if let Some(first) = json.get("manifests").and_then(|m| m.as_array()).and_then(|m| m.first()) {
            let digest = first
                .get("digest")
                .and_then(|d| d.as_str())
                .ok_or_else(|| bad("index entry without digest".into()))?
                .to_string();
            let (bytes, _, _) = self
                .manifest(repository, &digest)
                .await?
                .ok_or_else(|| bad(format!("index names missing manifest {digest}")))?;
            json = serde_json::from_slice(&bytes).map_err(|e| bad(e.to_string()))?;
        }
        let config =
            json.pointer("/config/digest").and_then(|d| d.as_str()).ok_or_else(|| bad("no config digest".into()))?;
        let resp = self.send(Method::GET, repository, &format!("blobs/{config}"), &[], None, false).await?;
        let resp = self.success(resp, repository, "read image config of").await?;
        let cfg: serde_json::Value = resp.json().await.map_err(|e| bad(e.to_string()))?;
        Ok(cfg.pointer("/config/Labels").and_then(|l| l.as_object()).cloned().unwrap_or_default())
    }

    /// What `tag` holds: digest and the labels relctl reads, or `None` if absent.
    /// The digest comes from a `HEAD` and the labels from the cache when
    /// this digest was read before: no manifest `GET`, which Docker Hub counts as a pull.
    pub async fn inspect(
        &self,
        repository: &str,
        tag: &str,
    ) -> Result<Option<(RemoteTag, Option<String>)>, RegistryError> {
        let Some(digest) = self.digest(repository, tag).await? else { return Ok(None) };
        let labels = match self.labels_cache.get(&digest) {
            Some(cached) => cached,
            None => {
                let Some((bytes, _, _)) = self.manifest(repository, &digest).await? else { return Ok(None) };
                let read = self.labels(repository, tag, &bytes).await?;
                let get = |k: &str| read.get(k).and_then(|v| v.as_str()).map(str::to_string);
                let labels =
                    labels_cache::Labels { revision: get(REVISION), inputs: get(INPUTS), version: get(VERSION) };
                self.labels_cache.put(&digest, &labels);
                labels
            }
        };
        Ok(Some((RemoteTag { digest, revision: labels.revision, inputs: labels.inputs }, labels.version)))
    }

    /// The digest `tag` points at, or `None`.
    pub async fn digest(&self, repository: &str, tag: &str) -> Result<Option<String>, RegistryError> {
        let resp = self
            .send(
                Method::HEAD,
                repository,
                &format!("manifests/{tag}"),
                &[(header::ACCEPT, MANIFEST_TYPES.into())],
                None,
                false,
            )
            .await?;
        let op = format!("read manifest {tag} of");
        let Some(resp) = self.found(resp, repository, &op).await? else { return Ok(None) };
        match resp.headers().get("docker-content-digest").and_then(|v| v.to_str().ok()) {
            Some(d) => Ok(Some(d.to_string())),
            None => Ok(self.manifest(repository, tag).await?.map(|(_, _, d)| d)),
        }
    }
}

pub use crate::plan::labels::{INPUTS, REVISION, VERSION};

impl Registry for RegistryClient {
    async fn tags(&self, repository: &str) -> Result<Vec<String>, RegistryError> {
        if let Some(tags) = self.listings.lock().expect("listing cache").get(repository) {
            return Ok(tags.clone());
        }
        let tags = self.list_tags(repository).await?;
        self.listings.lock().expect("listing cache").insert(repository.to_string(), tags.clone());
        Ok(tags)
    }

    async fn inspect_tag(&self, repository: &str, tag: &str) -> Result<Option<RemoteTag>, RegistryError> {
        Ok(self.inspect(repository, tag).await?.map(|(remote, _)| remote))
    }

    async fn tag_version(&self, repository: &str, tag: &str) -> Result<Option<String>, RegistryError> {
        Ok(self.inspect(repository, tag).await?.and_then(|(_, version)| version))
    }

    fn forget_listings(&self) {
        RegistryClient::forget_listings(self);
    }

    async fn put_artifact(
        &self,
        repository: &str,
        artifact: &crate::sign::cosign::Artifact,
    ) -> Result<String, RegistryError> {
        RegistryClient::put_artifact(self, repository, artifact).await
    }

    async fn get_artifact(
        &self,
        repository: &str,
        tag: &str,
    ) -> Result<Option<Vec<crate::sign::cosign::Layer>>, RegistryError> {
        RegistryClient::get_artifact(self, repository, tag).await
    }

    async fn describe(&self, repository: &str, reference: &str) -> Result<Option<index::Descriptor>, RegistryError> {
        Ok(self.manifest(repository, reference).await?.map(|(bytes, media_type, digest)| index::Descriptor {
            media_type,
            digest,
            size: bytes.len() as u64,
        }))
    }

    async fn put_manifest(
        &self,
        repository: &str,
        tag: &str,
        media_type: &str,
        manifest: Vec<u8>,
    ) -> Result<String, RegistryError> {
        let digest = crate::sign::cosign::sha256(&manifest);
        self.put_tag(repository, tag, media_type, manifest).await?;
        Ok(digest)
    }

    async fn platforms(
        &self,
        repository: &str,
        reference: &str,
    ) -> Result<Option<Vec<(String, String)>>, RegistryError> {
        let by_digest = reference.starts_with("sha256:");
        if let Some(known) = self.indexes.lock().expect("index cache").get(reference).filter(|_| by_digest) {
            return Ok(Some(known.clone()));
        }
        let Some((bytes, _, _)) = self.manifest(repository, reference).await? else { return Ok(None) };
        // An image manifest has no `manifests`: no platforms.
        let platforms = index::platforms(&bytes).unwrap_or_default();
        if by_digest {
            let mut cache = self.indexes.lock().expect("index cache");
            // Bounded: a controller's life sees few indexes; past this many, start again.
            if cache.len() >= 10_000 {
                cache.clear();
            }
            cache.insert(reference.to_string(), platforms.clone());
        }
        Ok(Some(platforms))
    }

    async fn observe(
        &self,
        repository: &str,
        tags: &[String],
        labelled: &[&str],
    ) -> Result<BTreeMap<String, RemoteTag>, RegistryError> {
        let existing = Registry::tags(self, repository).await?;
        let mut out = BTreeMap::new();
        for tag in tags.iter().filter(|t| existing.contains(t)) {
            if labelled.contains(&tag.as_str()) {
                if let Some((remote, _)) = self.inspect(repository, tag).await? {
                    out.insert(tag.clone(), remote);
                }
            } else if let Some(digest) = self.digest(repository, tag).await? {
                out.insert(tag.clone(), RemoteTag { digest, revision: None, inputs: None });
            }
        }
        Ok(out)
    }

    async fn copy_tag(&self, repository: &str, from: &str, to: &str) -> Result<String, RegistryError> {
        let (bytes, media, digest) = self.manifest(repository, from).await?.ok_or_else(|| RegistryError::Manifest {
            registry: self.registry.clone(),
            repository: repository.to_string(),
            tag: from.to_string(),
            message: "tag disappeared before it could be copied".into(),
        })?;
        self.put_tag(repository, to, &media, bytes).await?;
        Ok(digest)
    }
}

impl RegistryClient {
    /// PUTs `manifest` of `media_type` under `tag`, and lists the tag as written.
    pub(crate) async fn put_tag(
        &self,
        repository: &str,
        tag: &str,
        media_type: &str,
        manifest: Vec<u8>,
    ) -> Result<(), RegistryError> {
        let headers = [(header::CONTENT_TYPE, media_type.to_string())];
        let resp =
            self.send(Method::PUT, repository, &format!("manifests/{tag}"), &headers, Some(manifest), true).await?;
        self.success(resp, repository, &format!("tag {tag} in")).await?;
        self.listed(repository, tag);
        Ok(())
    }

    /// Adds `tag`, just written, to this run's listing of `repository`.
    fn listed(&self, repository: &str, tag: &str) {
        if let Some(tags) = self.listings.lock().expect("listing cache").get_mut(repository) {
            if !tags.iter().any(|t| t == tag) {
                tags.push(tag.to_string());
            }
        }
    }
}

fn next_link(link: &str) -> Option<String> {
    // `</v2/name/tags/list?last=x&n=1000>; rel="next"`
    let (url, rel) = link.split_once(';')?;
    if !rel.contains("next") {
        return None;
    }
    let url = url.trim().trim_start_matches('<').trim_end_matches('>');
    let path = url.split_once("/v2/").map(|(_, p)| p)?;
    // Strip `<repository>/` so the path is relative again.
    let idx = path.find("tags/list")?;
    Some(path[idx..].to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn link_pagination() {
        assert_eq!(
            next_link(r#"</v2/acme/app/tags/list?last=v1&n=2>; rel="next""#).as_deref(),
            Some("tags/list?last=v1&n=2")
        );
        assert_eq!(
            next_link(r#"<https://r.io/v2/a/b/tags/list?n=2&last=x>; rel="next""#).as_deref(),
            Some("tags/list?n=2&last=x")
        );
        assert_eq!(next_link(r#"</v2/a/tags/list?last=v1>; rel="prev""#), None);
    }
}
