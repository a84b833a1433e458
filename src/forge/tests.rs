//! Repository resolution and the GitHub Release text.

use super::*;

#[test]
fn repository_from_env_or_any_github_remote_url() {
    let id = |env: Option<&str>, url: &str| RepoId::resolve(env, url).map(|r| r.to_string());
    let cases = [
        (Some("acme/app"), "/tmp/remote.git", "acme/app"),
        (None, "https://github.com/acme/app.git", "acme/app"),
        (None, "https://github.com/acme/app", "acme/app"),
        (None, "https://x-access-token:SECRET@github.com/acme/app.git", "acme/app"),
        (None, "git@github.com:acme/app.git", "acme/app"),
        (None, "ssh://git@github.com/acme/app.git", "acme/app"),
        (Some(""), "https://github.com/acme/app/", "acme/app"),
    ];
    for (env, url, want) in cases {
        assert_eq!(id(env, url).unwrap(), want, "{env:?} {url}");
    }
    for url in ["/tmp/remote.git", "https://gitlab.com/acme/app.git", "https://github.com/acme"] {
        let err = RepoId::resolve(None, url).unwrap_err();
        assert!(err.to_string().contains(url), "{err}");
        assert_eq!(err.hint(), "set GITHUB_REPOSITORY=owner/repo");
    }
}

#[test]
fn release_body_lists_images_tags_digests_and_pull_commands() {
    let notes = ReleaseNotes {
        tag: "v1.2.0".into(),
        prerelease: false,
        commit: "c0ffee".into(),
        images: vec![ReleasedImage {
            image: "server".into(),
            repository: "docker.io/acme/app-server".into(),
            tags: vec!["v1.2.0".into(), "latest".into()],
            digest: "sha256:aa".into(),
            built: true,
            signature: None,
            platforms: Vec::new(),
        }],
    };
    let body = notes.body();
    assert!(body.starts_with("Images of v1.2.0 built from c0ffee:"), "{body}");
    assert!(body.contains("| server | `v1.2.0` `latest` | `sha256:aa` |"), "{body}");
    assert!(body.contains("docker pull docker.io/acme/app-server:v1.2.0\n"), "{body}");
}
