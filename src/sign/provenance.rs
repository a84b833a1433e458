//! The SLSA provenance v1 statement of one released image: an in-toto
//! statement whose subject is the image digest, built by relctl from a git
//! commit (and its parents' images), with the run's start and finish times.

use serde_json::json;

/// What the statement says about one image's build.
pub struct Provenance<'a> {
    /// `registry/repository`, the subject's name.
    pub name: &'a str,
    pub digest: &'a str,
    pub tag: &'a str,
    pub image: &'a str,
    pub platform: &'a str,
    pub config_path: &'a str,
    /// The repository URL without credentials (empty for a local remote).
    pub source_url: &'a str,
    pub commit: &'a str,
    /// Parents' `registry/repository@digest`.
    pub parents: Vec<String>,
    pub started: &'a str,
    pub finished: &'a str,
}

pub const BUILD_TYPE: &str = "https://github.com/relctl/relctl/blob/main/docs/guarantees.md#provenance-v1";

impl Provenance<'_> {
    pub fn statement(&self) -> serde_json::Value {
        let hex = self.digest.strip_prefix("sha256:").unwrap_or(self.digest);
        let uri = if self.source_url.is_empty() { "git+local".to_string() } else { format!("git+{}", self.source_url) };
        let mut deps = vec![json!({"uri": uri, "digest": {"gitCommit": self.commit}})];
        for parent in &self.parents {
            let (name, digest) = parent.split_once('@').unwrap_or((parent.as_str(), ""));
            let hex = digest.strip_prefix("sha256:").unwrap_or(digest);
            deps.push(json!({"uri": format!("oci://{name}"), "digest": {"sha256": hex}}));
        }
        json!({
            "_type": "https://in-toto.io/Statement/v1",
            "subject": [{"name": self.name, "digest": {"sha256": hex}}],
            "predicateType": super::cosign::SLSA_PROVENANCE,
            "predicate": {
                "buildDefinition": {
                    "buildType": BUILD_TYPE,
                    "externalParameters": {
                        "tag": self.tag, "image": self.image, "platform": self.platform, "config": self.config_path
                    },
                    "resolvedDependencies": deps
                },
                "runDetails": {
                    "builder": {"id": format!("https://github.com/relctl/relctl@v{}", env!("CARGO_PKG_VERSION"))},
                    "metadata": {"startedOn": self.started, "finishedOn": self.finished}
                }
            }
        })
    }
}
