//! OCI image indexes: the document a multi-platform image's tags point at,
//! assembled from its platform images' manifests (by digest: no layer
//! moves), and read back into (platform, digest) pairs.

use std::collections::BTreeMap;

use serde_json::{Value, json};

/// The media type of an OCI image index.
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
/// The media type of a Docker manifest list, the index's older twin.
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";

/// One platform image of an index: what a descriptor names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Descriptor {
    pub media_type: String,
    pub digest: String,
    pub size: u64,
}

/// The index of `entries` (platform, its image's manifest), in order, with `annotations`.
pub fn image_index(entries: &[(String, Descriptor)], annotations: &BTreeMap<String, String>) -> Vec<u8> {
    let manifests: Vec<Value> = entries
        .iter()
        .map(|(platform, d)| {
            json!({
                "mediaType": d.media_type,
                "digest": d.digest,
                "size": d.size,
                "platform": platform_object(platform),
            })
        })
        .collect();
    let mut index = json!({ "schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": manifests });
    if !annotations.is_empty() {
        index["annotations"] = json!(annotations);
    }
    serde_json::to_vec(&index).unwrap_or_default()
}

/// `linux/arm/v7` as the index's `platform` object.
fn platform_object(platform: &str) -> Value {
    let mut parts = platform.splitn(3, '/');
    let (os, arch, variant) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""), parts.next());
    let mut object = json!({ "architecture": arch, "os": os });
    if let Some(v) = variant {
        object["variant"] = json!(v);
    }
    object
}

/// Whether `media_type` is an index (OCI) or a manifest list (Docker).
pub fn is_index(media_type: &str) -> bool {
    media_type == OCI_INDEX || media_type == DOCKER_LIST
}

/// The platform images an index names, as (`os/arch[/variant]`, digest), in
/// its order; entries without a platform, or `unknown/unknown` (attestations),
/// are not images and are left out. `None` when `bytes` is not an index.
pub fn platforms(bytes: &[u8]) -> Option<Vec<(String, String)>> {
    let json: Value = serde_json::from_slice(bytes).ok()?;
    let entries = json.get("manifests")?.as_array()?;
    let mut out = Vec::new();
    for entry in entries {
        let (Some(digest), Some(platform)) = (entry.get("digest").and_then(Value::as_str), entry.get("platform"))
        else {
            continue;
        };
        let field = |k: &str| platform.get(k).and_then(Value::as_str).unwrap_or("");
        let (os, arch, variant) = (field("os"), field("architecture"), field("variant"));
        if os.is_empty() || arch.is_empty() || os == "unknown" || arch == "unknown" {
            continue;
        }
        out.push((crate::config::platform_name(os, arch, variant), digest.to_string()));
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(n: u8) -> Descriptor {
        Descriptor {
            media_type: "application/vnd.docker.distribution.manifest.v2+json".into(),
            digest: format!("sha256:{}", format!("{n:x}").repeat(64)),
            size: 500 + n as u64,
        }
    }

    #[test]
    fn an_index_names_each_platform_image_by_digest_and_reads_back() {
        let entries = vec![("linux/amd64".to_string(), d(1)), ("linux/arm/v7".to_string(), d(2))];
        let annotations = BTreeMap::from([("org.opencontainers.image.revision".to_string(), "abc".to_string())]);
        let bytes = image_index(&entries, &annotations);
        let json: Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(json["mediaType"], OCI_INDEX);
        assert_eq!(json["schemaVersion"], 2);
        assert_eq!(json["manifests"][1]["platform"], json!({"architecture": "arm", "os": "linux", "variant": "v7"}));
        assert_eq!(json["manifests"][0]["size"], 501);
        assert_eq!(json["annotations"]["org.opencontainers.image.revision"], "abc");
        let back = platforms(&bytes).unwrap();
        assert_eq!(back, vec![("linux/amd64".into(), d(1).digest), ("linux/arm/v7".into(), d(2).digest)]);
    }

    #[test]
    fn attestation_entries_and_plain_manifests_are_not_platforms() {
        let index = json!({"manifests": [
            {"digest": "sha256:a", "platform": {"os": "linux", "architecture": "amd64"}},
            {"digest": "sha256:b", "platform": {"os": "unknown", "architecture": "unknown"}},
            {"digest": "sha256:c"},
        ]});
        let got = platforms(&serde_json::to_vec(&index).unwrap()).unwrap();
        assert_eq!(got, vec![("linux/amd64".to_string(), "sha256:a".to_string())]);
        assert_eq!(platforms(br#"{"config": {}, "layers": []}"#), None);
        assert_eq!(platforms(b"not json"), None);
    }
}
