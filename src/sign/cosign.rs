//! cosign's layout of signatures and attestations in a registry, as bytes:
//! for a manifest digest `sha256:<hex>`, a simple-signing payload signed with
//! ECDSA P-256/SHA-256 and stored as the one layer of an OCI manifest tagged
//! `sha256-<hex>.sig` (the signature, base64 DER, in the layer's
//! `dev.cosignproject.cosign/signature` annotation); an attestation is a DSSE
//! envelope around an in-toto statement, tagged `sha256-<hex>.att`. Docker
//! Hub has no referrers API, so this tag scheme is what relctl writes.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use p256::ecdsa::signature::{Signer as _, Verifier as _};
use p256::ecdsa::{DerSignature, Signature, SigningKey, VerifyingKey};
use serde_json::json;
use sha2::{Digest, Sha256};

pub const SIGNATURE_ANNOTATION: &str = "dev.cosignproject.cosign/signature";
pub const PREDICATE_ANNOTATION: &str = "dev.cosignproject.cosign/predicateType";
pub const SIMPLE_SIGNING: &str = "application/vnd.dev.cosign.simplesigning.v1+json";
pub const DSSE: &str = "application/vnd.dsse.envelope.v1+json";
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const IN_TOTO: &str = "application/vnd.in-toto+json";
pub const SLSA_PROVENANCE: &str = "https://slsa.dev/provenance/v1";

/// One blob of an artifact manifest, with the layer's annotations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layer {
    pub media_type: String,
    pub bytes: Vec<u8>,
    pub annotations: serde_json::Map<String, serde_json::Value>,
}

/// An OCI manifest to push under a tag: its config blob and layers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Artifact {
    pub tag: String,
    pub config: Vec<u8>,
    pub layers: Vec<Layer>,
}

/// The digest of `bytes` as registries write it: `sha256:<hex>`.
pub fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{:x}", Sha256::digest(bytes))
}

/// `sha256:<hex>` -> `sha256-<hex>.<suffix>`.
pub use crate::plan::artifact_tag as tag_for;

/// The reference cosign names in the payload: Docker Hub as `index.docker.io`.
pub fn docker_reference(registry: &str, repository: &str) -> String {
    let host = if crate::config::oci::is_docker_hub(registry) { "index.docker.io" } else { registry };
    format!("{host}/{repository}")
}

/// The simple-signing payload for `digest` of `reference`.
pub fn payload(reference: &str, digest: &str) -> Vec<u8> {
    let doc = json!({
        "critical": {
            "identity": {"docker-reference": reference},
            "image": {"docker-manifest-digest": digest},
            "type": "cosign container image signature"
        },
        "optional": null
    });
    serde_json::to_vec(&doc).unwrap_or_default()
}

/// The config blob of an artifact whose layers are `layers` (as cosign writes one).
fn config(layers: &[Layer]) -> Vec<u8> {
    let diff_ids: Vec<String> = layers.iter().map(|l| sha256(&l.bytes)).collect();
    let doc = json!({
        "architecture": "", "os": "", "created": "0001-01-01T00:00:00Z", "config": {},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": [{"created": "0001-01-01T00:00:00Z"}]
    });
    serde_json::to_vec(&doc).unwrap_or_default()
}

/// The signature artifact of `digest`.
pub fn signature(key: &SigningKey, reference: &str, digest: &str) -> Artifact {
    let payload = payload(reference, digest);
    let sig: DerSignature = key.sign(&payload);
    let mut annotations = serde_json::Map::new();
    annotations.insert(SIGNATURE_ANNOTATION.into(), B64.encode(sig.as_bytes()).into());
    let layers = vec![Layer { media_type: SIMPLE_SIGNING.into(), bytes: payload, annotations }];
    Artifact { tag: tag_for(digest, "sig"), config: config(&layers), layers }
}

/// DSSE's pre-authentication encoding of a payload.
pub fn pae(payload_type: &str, body: &[u8]) -> Vec<u8> {
    let mut out = format!("DSSEv1 {} {payload_type} {} ", payload_type.len(), body.len()).into_bytes();
    out.extend_from_slice(body);
    out
}

/// The attestation artifact of `digest`: `statement` (an in-toto statement) in a signed DSSE envelope.
pub fn attestation(key: &SigningKey, digest: &str, statement: &serde_json::Value) -> Artifact {
    let body = serde_json::to_vec(statement).unwrap_or_default();
    let sig: DerSignature = key.sign(&pae(IN_TOTO, &body));
    let envelope = json!({
        "payloadType": IN_TOTO,
        "payload": B64.encode(&body),
        "signatures": [{"keyid": "", "sig": B64.encode(sig.as_bytes())}]
    });
    let mut annotations = serde_json::Map::new();
    annotations.insert(PREDICATE_ANNOTATION.into(), SLSA_PROVENANCE.into());
    annotations.insert(SIGNATURE_ANNOTATION.into(), "".into());
    let layers =
        vec![Layer { media_type: DSSE.into(), bytes: serde_json::to_vec(&envelope).unwrap_or_default(), annotations }];
    Artifact { tag: tag_for(digest, "att"), config: config(&layers), layers }
}

/// The OCI manifest of `artifact`, as pushed.
pub fn manifest(artifact: &Artifact) -> Vec<u8> {
    let descriptor =
        |media: &str, bytes: &[u8]| json!({"mediaType": media, "size": bytes.len(), "digest": sha256(bytes)});
    let layers: Vec<serde_json::Value> = artifact
        .layers
        .iter()
        .map(|l| {
            let mut d = descriptor(&l.media_type, &l.bytes);
            d["annotations"] = serde_json::Value::Object(l.annotations.clone());
            d
        })
        .collect();
    let doc = json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": descriptor(OCI_CONFIG, &artifact.config),
        "layers": layers
    });
    serde_json::to_vec(&doc).unwrap_or_default()
}

/// Why a signature does not hold.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Invalid {
    #[error("no signature ({tag} is missing)")]
    Missing { tag: String },
    #[error("the signature does not verify with the given key")]
    WrongKey,
    #[error("the signature is for {signed}, not this image")]
    OtherDigest { signed: String },
    #[error("the signature artifact is malformed: {0}")]
    Malformed(String),
}

/// Checks a signature layer (`payload` with its base64 DER `signature`) for `digest` against `key`.
pub fn verify_signature(key: &VerifyingKey, digest: &str, payload: &[u8], signature: &str) -> Result<(), Invalid> {
    let der = B64.decode(signature).map_err(|_| Invalid::Malformed("signature is not base64".into()))?;
    let sig = Signature::from_der(&der).map_err(|_| Invalid::Malformed("signature is not DER ECDSA".into()))?;
    key.verify(payload, &sig).map_err(|_| Invalid::WrongKey)?;
    let doc: serde_json::Value =
        serde_json::from_slice(payload).map_err(|_| Invalid::Malformed("payload is not JSON".into()))?;
    let signed = doc.pointer("/critical/image/docker-manifest-digest").and_then(|d| d.as_str()).unwrap_or("");
    if signed != digest {
        return Err(Invalid::OtherDigest { signed: signed.to_string() });
    }
    Ok(())
}

/// Checks a DSSE envelope's signature with `key` and returns its statement.
pub fn verify_attestation(key: &VerifyingKey, envelope: &[u8]) -> Result<serde_json::Value, Invalid> {
    let bad = |what: &str| Invalid::Malformed(what.into());
    let env: serde_json::Value = serde_json::from_slice(envelope).map_err(|_| bad("envelope is not JSON"))?;
    let body = B64.decode(env["payload"].as_str().unwrap_or_default()).map_err(|_| bad("payload is not base64"))?;
    let payload_type = env["payloadType"].as_str().unwrap_or_default();
    let sigs = env["signatures"].as_array().ok_or_else(|| bad("no signatures"))?;
    let verified = sigs.iter().any(|s| {
        let der = B64.decode(s["sig"].as_str().unwrap_or_default()).unwrap_or_default();
        Signature::from_der(&der).is_ok_and(|sig| key.verify(&pae(payload_type, &body), &sig).is_ok())
    });
    if !verified {
        return Err(Invalid::WrongKey);
    }
    serde_json::from_slice(&body).map_err(|_| bad("statement is not JSON"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_core::OsRng;

    const DIGEST: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    #[test]
    fn a_signature_is_cosigns_layout_and_verifies_with_its_key_only() {
        let key = SigningKey::random(&mut OsRng);
        let a = signature(&key, "index.docker.io/acme/app", DIGEST);
        assert_eq!(a.tag, "sha256-0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef.sig");
        let layer = &a.layers[0];
        assert_eq!(layer.media_type, SIMPLE_SIGNING);
        let doc: serde_json::Value = serde_json::from_slice(&layer.bytes).unwrap();
        assert_eq!(doc["critical"]["type"], "cosign container image signature");
        assert_eq!(doc["critical"]["identity"]["docker-reference"], "index.docker.io/acme/app");
        let sig = layer.annotations[SIGNATURE_ANNOTATION].as_str().unwrap();
        assert_eq!(verify_signature(key.verifying_key(), DIGEST, &layer.bytes, sig), Ok(()));
        let other = SigningKey::random(&mut OsRng);
        assert_eq!(verify_signature(other.verifying_key(), DIGEST, &layer.bytes, sig), Err(Invalid::WrongKey));
        let elsewhere = "sha256:1111111111111111111111111111111111111111111111111111111111111111";
        assert!(matches!(
            verify_signature(key.verifying_key(), elsewhere, &layer.bytes, sig),
            Err(Invalid::OtherDigest { .. })
        ));

        let m: serde_json::Value = serde_json::from_slice(&manifest(&a)).unwrap();
        assert_eq!(m["mediaType"], OCI_MANIFEST);
        assert_eq!(m["layers"][0]["digest"], sha256(&layer.bytes));
        assert_eq!(m["config"]["digest"], sha256(&a.config));
    }

    #[test]
    fn an_attestation_is_a_signed_dsse_envelope_of_the_statement() {
        let key = SigningKey::random(&mut OsRng);
        let statement = json!({"_type": "https://in-toto.io/Statement/v1", "subject": [{"digest": {"sha256": "01"}}]});
        let a = attestation(&key, DIGEST, &statement);
        assert_eq!(a.tag, tag_for(DIGEST, "att"));
        assert_eq!(a.layers[0].media_type, DSSE);
        assert_eq!(verify_attestation(key.verifying_key(), &a.layers[0].bytes), Ok(statement));
        let other = SigningKey::random(&mut OsRng);
        assert_eq!(verify_attestation(other.verifying_key(), &a.layers[0].bytes), Err(Invalid::WrongKey));
        assert_eq!(pae("t", b"ab"), b"DSSEv1 1 t 2 ab");
    }
}
