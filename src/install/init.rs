//! `relctl init`: the files a repository needs to start releasing with relctl:
//! a commented release.yaml (images found under docker/*/Dockerfile, else the
//! five defaults), VERSION from the highest semver tag (or v0.1.0), and a
//! GitHub workflow that runs the Action on tag pushes.

use std::path::{Path, PathBuf};

use crate::config::SCHEMA_URL;

/// The five images relctl's users start from when no Dockerfile is found.
pub const DEFAULT_IMAGES: [&str; 5] = ["server", "frontend", "nginx", "worker", "agent"];

/// What `relctl init` writes: (path relative to the repository, content).
pub fn files(namespace: &str, project: &str, images: &[String], version: &str) -> Vec<(PathBuf, String)> {
    vec![
        (PathBuf::from("release.yaml"), release_yaml(namespace, project, images)),
        (PathBuf::from("VERSION"), format!("{version}\n")),
        (PathBuf::from(".github/workflows/release.yml"), WORKFLOW.to_string()),
    ]
}

/// Image names with a `docker/<name>/Dockerfile` under `repo`, sorted; the defaults when none.
pub fn find_images(repo: &Path) -> Vec<String> {
    let mut found: Vec<String> = std::fs::read_dir(repo.join("docker"))
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.path().join("Dockerfile").is_file())
        .filter_map(|e| e.file_name().to_str().map(str::to_string))
        .collect();
    found.sort();
    if found.is_empty() { DEFAULT_IMAGES.iter().map(|s| s.to_string()).collect() } else { found }
}

fn release_yaml(namespace: &str, project: &str, images: &[String]) -> String {
    let width = images.iter().map(String::len).max().unwrap_or(0) + 1;
    let mut lines = String::new();
    for name in images {
        let key = format!("{name}:");
        lines.push_str(&format!("  {key:width$} {{ context: ., dockerfile: docker/{name}/Dockerfile }}\n"));
    }
    format!(
        "# yaml-language-server: $schema={SCHEMA_URL}
# relctl release config. A tag vX.Y.Z becomes one image per entry under
# `images`, pushed as REGISTRY/NAMESPACE/PROJECT-NAME:vX.Y.Z (and `latest` for
# the highest stable release); then VERSION is committed on the release branch.
registry: docker.io          # registry host[:port]
namespace: {namespace}          # Docker Hub user or organisation
project: {project}              # images are named PROJECT-NAME
git: {{ remote: origin, branch: main, tag_prefix: v }}
version_file: VERSION        # installers read the current version here
tags: [\"{{{{raw}}}}\", \"latest\"]  # also {{{{major}}}}, {{{{major}}}}.{{{{minor}}}}, {{{{version}}}}
build:
  retries: 3                 # retries of a failed build, with 1 s, 2 s, 4 s ... backoff
  parallelism: 4             # images built at once; lower it for CPU-heavy builds
  builder: auto              # BuildKit where the engine offers it, else classic
  cache: true
  network: none              # build network; `host` if builds download
  unchanged: retag           # an image whose inputs did not change gets the new tag by manifest copy
images:                      # add depends_on: [parent] for an image built FROM ${{PARENT_IMAGE}}
{lines}"
    )
}

const WORKFLOW: &str = r#"# Written by `relctl init`: releases every pushed tag vX.Y.Z with relctl,
# and reconciles nightly so a release that failed half way converges.
name: release
on:
  push:
    tags: ["v*"]
  schedule:
    - cron: "17 4 * * *"
  workflow_dispatch:

permissions: {}

concurrency:
  group: relctl-release-${{ github.repository }}
  cancel-in-progress: false

jobs:
  release:
    runs-on: ubuntu-latest
    permissions:
      contents: write # the VERSION commit and the GitHub Release
    steps:
      - uses: actions/checkout@11bd71901bbe5b1630ceea73d27597364c9af683 # v4.2.2
        with:
          fetch-depth: 0
          persist-credentials: false
      - uses: relctl/relctl@v1 # pin to a full commit SHA
        with:
          command: ${{ github.event_name == 'push' && 'release' || 'reconcile' }}
          registry-username: ${{ secrets.DOCKERHUB_USERNAME }}
          registry-password: ${{ secrets.DOCKERHUB_TOKEN }}
          github-token: ${{ secrets.GITHUB_TOKEN }}
"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn release_yaml_is_a_valid_config_with_the_schema_line() {
        let images: Vec<String> = DEFAULT_IMAGES.iter().map(|s| s.to_string()).collect();
        let (_, yaml) = &files("acme", "shop", &images, "v0.1.0")[0];
        assert!(yaml.starts_with(&format!("# yaml-language-server: $schema={SCHEMA_URL}\n")));
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("release.yaml");
        std::fs::write(&path, yaml).unwrap();
        let cfg = crate::config::load(&path).unwrap();
        assert_eq!(cfg.images.len(), 5);
        assert_eq!(cfg.image("nginx").unwrap().dockerfile, "docker/nginx/Dockerfile");
        assert_eq!(cfg.image_repo(cfg.image("server").unwrap()), "docker.io/acme/shop-server");
    }

    #[test]
    fn images_come_from_docker_dirs_with_a_dockerfile() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(find_images(dir.path()), DEFAULT_IMAGES);
        for (name, dockerfile) in [("api", true), ("web", true), ("notes", false)] {
            std::fs::create_dir_all(dir.path().join("docker").join(name)).unwrap();
            if dockerfile {
                std::fs::write(dir.path().join("docker").join(name).join("Dockerfile"), "FROM scratch\n").unwrap();
            }
        }
        assert_eq!(find_images(dir.path()), ["api", "web"]);
    }
}
