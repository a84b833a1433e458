//! Table tests for loading and validating release.yaml.

use std::path::Path;

use super::*;

const FULL: &str = r#"
registry: docker.io
namespace: yyhuni
project: xingrin
git: { remote: origin, branch: main, tag_prefix: v }
version_file: VERSION
tags: ["{{raw}}", "latest"]
build: { retries: 3, parallelism: 2, cache: true, network: none }
images:
  server:   { context: ., dockerfile: docker/server/Dockerfile }
  worker:   { context: docker/worker, depends_on: [server], build_args: { MODE: prod } }
  agent:    { context: docker/agent, repository: other/agent-image }
also_update: [{ path: README.md, regex: 'current version: (v\S+)' }]
"#;

fn p(text: &str) -> Result<Config, ConfigError> {
    parse(text, Path::new("release.yaml"))
}

#[test]
fn full_example_parses() {
    let c = p(FULL).unwrap();
    assert_eq!(c.registry, "docker.io");
    let names: Vec<_> = c.images.iter().map(|i| i.name.as_str()).collect();
    assert_eq!(names, ["agent", "server", "worker"]);
    let server = c.image("server").unwrap();
    assert_eq!(server.repository, "yyhuni/xingrin-server");
    assert_eq!(server.context, "");
    assert_eq!(server.dockerfile, "docker/server/Dockerfile");
    let worker = c.image("worker").unwrap();
    assert_eq!(worker.dockerfile, "docker/worker/Dockerfile");
    assert_eq!(worker.depends_on, ["server"]);
    assert_eq!(worker.build_args["MODE"], "prod");
    assert_eq!(c.image("agent").unwrap().repository, "other/agent-image");
    assert_eq!(c.image_repo(server), "docker.io/yyhuni/xingrin-server");
    assert_eq!(c.also_update.len(), 1);
}

#[test]
fn defaults_apply() {
    let c = p("namespace: n\nproject: p\nimages: { a: { context: a } }\n").unwrap();
    assert_eq!(c.registry, "docker.io");
    assert_eq!((c.git.remote.as_str(), c.git.branch.as_str(), c.git.tag_prefix.as_str()), ("origin", "main", "v"));
    assert_eq!(c.version_file, "VERSION");
    let tags: Vec<_> = c.tags.iter().map(|t| t.source()).collect();
    assert_eq!(tags, ["{{raw}}", "latest"]);
    assert_eq!((c.build.retries, c.build.parallelism, c.build.cache, c.build.network.as_str()), (3, 4, true, "none"));
    assert_eq!(c.commit.message, "chore(release): {{raw}} [skip ci]");
    assert!(c.build.retag_unchanged);
    assert_eq!(c.build.builder, crate::config::Builder::Auto);
    let builder = |b: &str| {
        p(&format!("namespace: n\nproject: p\nbuild: {{ builder: {b} }}\nimages: {{ a: {{ context: a }} }}\n"))
    };
    assert_eq!(builder("classic").unwrap().build.builder, crate::config::Builder::Classic);
    assert_eq!(builder("buildkit").unwrap().build.builder, crate::config::Builder::BuildKit);
    assert_eq!(c.build.inputs, crate::config::Inputs::Dockerfile);
    assert_eq!(
        p("namespace: n\nproject: p\nbuild: { inputs: context }\nimages: { a: { context: a } }\n")
            .unwrap()
            .build
            .inputs,
        crate::config::Inputs::Context
    );
    assert!(
        !p("namespace: n\nproject: p\nbuild: { unchanged: rebuild }\nimages: { a: { context: a } }\n")
            .unwrap()
            .build
            .retag_unchanged
    );
    assert!(c.reconcile.since.is_none());
    assert_eq!(c.reconcile.max_tags, 10);
    let c = p("namespace: n\nproject: p\nimages: { a: { context: a } }\nreconcile: { since: v1.0.0, max_tags: 3 }\n")
        .unwrap();
    assert_eq!(c.reconcile.since.unwrap().raw, "v1.0.0");
    assert_eq!(c.reconcile.max_tags, 3);
}

#[test]
fn dependency_order_puts_parents_first() {
    let c = p("namespace: n\nproject: p\nimages:\n  z: { context: z }\n  a: { context: a, depends_on: [m] }\n  m: { context: m, depends_on: [z] }\n  b: { context: b }\n").unwrap();
    let names: Vec<_> = c.images.iter().map(|i| i.name.as_str()).collect();
    assert_eq!(names, ["b", "z", "m", "a"]);
}

#[test]
fn bad_configs_name_file_line_and_fix() {
    // (yaml, expected message fragment, expected location prefix)
    let cases: &[(&str, &str, &str)] = &[
        ("namespace: n\nproject: p\nimages:\n  a: { contxt: a }\n", "unknown field `contxt`", "release.yaml:4:"),
        (
            "namespace: n\nproject: p\nregistri: x\nimages: { a: { context: a } }\n",
            "unknown field `registri`",
            "release.yaml:3:1",
        ),
        ("namespace: n\nproject: p\nimages: {}\n", "no images are configured", "release.yaml:3"),
        (
            "registry: ghcr.io\nnamespace: n\nproject: p\ndockerhub: { description: x }\nimages: { a: { context: a } }\n",
            "the registry is ghcr.io, not Docker Hub",
            "release.yaml:4",
        ),
        (
            "namespace: n\nproject: p\ndockerhub:\n  description: LONG\nimages: { a: { context: a } }\n",
            "is 101 characters long",
            "release.yaml:4",
        ),
        (
            "namespace: n\nproject: p\ndockerhub: {}\nimages: { a: { context: a } }\n",
            "sets neither description nor readme",
            "release.yaml:3",
        ),
        (
            "namespace: n\nproject: p\nbuild:\n  cache_from: latest\nimages: { a: { context: a } }\n",
            "`latest` is not previous or none",
            "release.yaml:4",
        ),
        (
            "namespace: n\nproject: p\nbuild:\n  cache_from:\n    - previous\n    - Org/App:cache\nimages: { a: { context: a } }\n",
            "`Org/App:cache` is not an image reference",
            "release.yaml:4",
        ),
        ("namespace: n\nproject: p\n", "no images are configured", "release.yaml"),
        (
            "namespace: n\nproject: p\nimages:\n  a: { context: a, depends_on: [ghost] }\n",
            "`ghost` is not an image in this file",
            "release.yaml:4",
        ),
        (
            "namespace: n\nproject: p\nimages:\n  a: { context: a, depends_on: [b] }\n  b: { context: b, depends_on: [a] }\n",
            "dependency cycle: a -> b -> a",
            "release.yaml:4",
        ),
        (
            "namespace: n\nproject: p\nimages:\n  a: { context: a, depends_on: [a] }\n",
            "depends on itself",
            "release.yaml:4",
        ),
        (
            "namespace: n\nproject: p\ntags: ['{{sha}}']\nimages: { a: { context: a } }\n",
            "unknown variable `{{sha}}`",
            "release.yaml:3",
        ),
        (
            "namespace: n\nproject: p\ntags: [latest]\nimages: { a: { context: a } }\n",
            "no template names the release itself",
            "release.yaml:3",
        ),
        (
            "namespace: n\nproject: p\ntags: ['{{raw}}', '{{raw}}']\nimages: { a: { context: a } }\n",
            "listed twice",
            "release.yaml:3",
        ),
        (
            "namespace: N\nproject: p\nimages: { a: { context: a } }\n",
            "not a valid repository namespace",
            "release.yaml:1",
        ),
        (
            "registry: https://x.io\nnamespace: n\nproject: p\nimages: { a: { context: a } }\n",
            "not a registry host",
            "release.yaml:1",
        ),
        ("namespace: n\nproject: p\nimages: { a: { context: ../a } }\n", "leaves the repository", "release.yaml"),
        (
            "namespace: n\nproject: p\nbuild: { parallelism: 0 }\nimages: { a: { context: a } }\n",
            "must be at least 1",
            "release.yaml:3",
        ),
        (
            "namespace: n\nproject: p\nbuild: { retries: -1 }\nimages: { a: { context: a } }\n",
            "invalid type: integer `-1`, expected u32",
            "release.yaml:3:",
        ),
        (
            "namespace: n\nproject: p\nimages: { a: { context: a } }\nalso_update: [{ path: README.md, regex: 'v\\S+' }]\n",
            "has no capture group",
            "release.yaml:4",
        ),
        ("namespace: n\nimages: { a: { context: a } }\n", "missing field `project`", "release.yaml"),
        ("namespace: n\nproject: p\nimages:\n  a: { dockerfile: x }\n", "missing field `context`", "release.yaml:4:"),
        ("namespace: n\nproject: p\nimages: [a, b]\n", "invalid type", "release.yaml:3:"),
        (
            "namespace: n\nproject: p\nbuild: { unchanged: skip }\nimages: { a: { context: a } }\n",
            "unknown variant `skip`, expected `retag` or `rebuild`",
            "release.yaml:3:",
        ),
        (
            "namespace: n\nproject: p\nbuild: { inputs: files }\nimages: { a: { context: a } }\n",
            "unknown variant `files`, expected `dockerfile` or `context`",
            "release.yaml:3:",
        ),
        (
            "namespace: n\nproject: p\nbuild: { builder: buildx }\nimages: { a: { context: a } }\n",
            "unknown variant `buildx`, expected one of `auto`, `buildkit`, `classic`",
            "release.yaml:3:",
        ),
        (
            "namespace: n\nproject: p\nimages: { a: { context: a } }\nreconcile: { since: 1.0 }\n",
            "does not start with the tag prefix",
            "release.yaml:4",
        ),
        (
            "namespace: n\nproject: p\nimages: { a: { context: a } }\nreconcile: { max_tags: 0 }\n",
            "must be at least 1",
            "release.yaml:4",
        ),
        (
            "namespace: n\nproject: p\nimages: { a: { context: a } }\nreconcile: { every: 5m }\n",
            "unknown field `every`",
            "release.yaml:4:",
        ),
    ];
    for (yaml, want, loc) in cases {
        let yaml = &yaml.replace("LONG", &"d".repeat(101));
        let err = p(yaml).expect_err(yaml);
        let msg = err.to_string();
        assert!(msg.contains(want), "{yaml}\n=> {msg}");
        assert!(msg.starts_with(loc), "{yaml}\n=> {msg} (wanted location {loc})");
        assert!(!err.hint().is_empty());
    }
}

#[test]
fn missing_file_is_named() {
    let err = load(Path::new("/nonexistent/release.yaml")).unwrap_err();
    assert!(matches!(err, ConfigError::NotFound { .. }));
    assert!(err.to_string().contains("/nonexistent/release.yaml"));
    assert!(err.hint().contains("--config"));
}

#[test]
fn committed_schema_is_the_generated_one() {
    let committed: serde_json::Value = serde_json::from_str(include_str!("../../schema/release.schema.json"))
        .expect("schema/release.schema.json parses");
    assert!(
        committed == super::schema(),
        "schema/release.schema.json is stale: run `cargo run -q -- schema > schema/release.schema.json`"
    );
    // The schema knows every key and refuses unknown ones, as the loader does.
    assert_eq!(committed["additionalProperties"], false);
    assert!(committed["properties"]["images"]["additionalProperties"]["$ref"].is_string(), "{committed}");
}

/// `namespace: n`, `project: p`, `extra` from line 3 on, and one image unless `extra` has `images`.
fn with(extra: &str) -> String {
    let images = if extra.contains("images:") { "" } else { "images: { a: { context: a } }\n" };
    format!("namespace: n\nproject: p\n{extra}{images}")
}

#[test]
fn oci_limits_numeric_bounds_and_git_paths() {
    let long = |n: usize| "a".repeat(n);
    // (extra yaml, None = accepted, Some((message fragment, location)))
    let cases: Vec<(String, Option<(String, &str)>)> = vec![
        // registry hosts, IPv6 included
        ("registry: '[2001:db8::1]:5000'\n".into(), None),
        ("registry: '[::1]:5000'\n".into(), None),
        ("registry: '[::1]'\n".into(), None),
        ("registry: localhost:5000\n".into(), None),
        (
            "registry: '[::1'\n".into(),
            Some(("registry: `[::1` is not a registry host[:port]".into(), "release.yaml:3")),
        ),
        ("registry: '[fe80::1%eth0]:5000'\n".into(), Some(("is not a registry host".into(), "release.yaml:3"))),
        ("registry: '[::1]:99999'\n".into(), Some(("is not a registry host".into(), "release.yaml:3"))),
        ("registry: x.io:0\n".into(), Some(("is not a registry host".into(), "release.yaml:3"))),
        ("registry: x..io\n".into(), Some(("is not a registry host".into(), "release.yaml:3"))),
        // tags: 128 characters at most, literal or rendered
        (format!("tags: ['{{{{raw}}}}', '{}']\n", long(128)), None),
        (
            format!("tags: ['{{{{raw}}}}', '{}']\n", long(129)),
            Some(("has 129 fixed characters; image tags are at most 128".into(), "release.yaml:3")),
        ),
        (
            format!("tags: ['{}-{{{{raw}}}}']\n", long(100)),
            Some(("renders a 134-character image tag for v123.456.789-alpha.10+sha.5114f85".into(), "release.yaml:3")),
        ),
        (format!("tags: ['{}-{{{{raw}}}}']\n", long(94)), None),
        (
            "git: { tag_prefix: release/ }\n".into(),
            Some((
                "renders `release/0.0.0` for release/0.0.0, which is not a valid image tag".into(),
                "release.yaml:3",
            )),
        ),
        ("git: { tag_prefix: release/ }\ntags: ['{{version}}', latest]\n".into(), None),
        ("git: { tag_prefix: '-' }\n".into(), Some(("renders `-0.0.0`".into(), "release.yaml:3"))),
        ("git: { tag_prefix: '' }\n".into(), None),
        // registry/repository: 255 characters at most; components follow the grammar
        (format!("images: {{ a: {{ context: a, repository: {} }} }}\n", long(245)), None),
        (
            format!("images: {{ a: {{ context: a, repository: {} }} }}\n", long(246)),
            Some(("has 256 characters; image names are at most 255".into(), "release.yaml:3")),
        ),
        (
            format!("images: {{ a: {{ context: a, repository: n/{} }} }}\n", long(250)),
            Some(("images.a.repository: `docker.io/n/".into(), "release.yaml:3")),
        ),
        (
            "images: { a: { context: a, repository: 'a//b' } }\n".into(),
            Some(("is not a valid repository".into(), "release.yaml:3")),
        ),
        // numeric bounds
        ("build: { retries: 10 }\n".into(), None),
        ("build: { retries: 0 }\n".into(), None),
        ("build: { retries: 11 }\n".into(), Some(("build.retries: 11 is more than 10".into(), "release.yaml:3"))),
        (
            "build: { retries: 4294967295 }\n".into(),
            Some(("build.retries: 4294967295 is more than 10".into(), "release.yaml:3")),
        ),
        ("build: { retries: 4294967296 }\n".into(), Some(("invalid value".into(), "release.yaml:3:"))),
        ("build: { parallelism: 64 }\n".into(), None),
        (
            "build: { parallelism: 65 }\n".into(),
            Some(("build.parallelism: 65 is more than 64".into(), "release.yaml:3")),
        ),
        (
            "build: { parallelism: 18446744073709551615 }\n".into(),
            Some(("build.parallelism: 18446744073709551615 is more than 64".into(), "release.yaml:3")),
        ),
        ("reconcile: { max_tags: 10000 }\n".into(), None),
        (
            "reconcile: { max_tags: 10001 }\n".into(),
            Some(("reconcile.max_tags: 10001 is more than 10000".into(), "release.yaml:3")),
        ),
        (
            "timeouts: { git: 86401s }\n".into(),
            Some(("timeouts.git: `86401s` is not a duration between 1s and 24h".into(), "release.yaml:3")),
        ),
        ("timeouts: { git: 0s }\n".into(), Some(("between 1s and 24h".into(), "release.yaml:3"))),
        ("timeouts: { git: 24h }\n".into(), None),
        // files relctl commits: never inside .git
        (
            "version_file: .git/config\n".into(),
            Some(("version_file: `.git/config` is inside .git".into(), "release.yaml:3")),
        ),
        ("version_file: ./.git/config\n".into(), Some(("is inside .git".into(), "release.yaml:3"))),
        ("version_file: .GIT/config\n".into(), Some(("is inside .git".into(), "release.yaml:3"))),
        ("version_file: sub/.git/HEAD\n".into(), Some(("is inside .git".into(), "release.yaml:3"))),
        ("version_file: .git\n".into(), Some(("is inside .git".into(), "release.yaml:3"))),
        ("version_file: .\n".into(), Some(("version_file: `.` names no file".into(), "release.yaml:3"))),
        ("version_file: .github/VERSION\n".into(), None),
        ("version_file: .gitignore\n".into(), None),
        (
            "also_update: [{ path: .git/hooks/pre-commit, regex: '(v\\S+)' }]\n".into(),
            Some(("also_update[0].path: `.git/hooks/pre-commit` is inside .git".into(), "release.yaml:3")),
        ),
        (
            "also_update: [{ path: '', regex: '(v\\S+)' }]\n".into(),
            Some(("also_update[0].path: `` names no file".into(), "release.yaml:3")),
        ),
        ("also_update: [{ path: docs/.gitkeep, regex: '(v\\S+)' }]\n".into(), None),
    ];
    for (extra, want) in cases {
        let yaml = with(&extra);
        match (p(&yaml), want) {
            (Ok(_), None) => {}
            (Ok(_), Some((want, _))) => panic!("{extra}: accepted, wanted an error with {want:?}"),
            (Err(e), None) => panic!("{extra}: {e}"),
            (Err(e), Some((want, loc))) => {
                let msg = e.to_string();
                assert!(msg.contains(&want), "{extra}=> {msg}\n(wanted {want:?})");
                assert!(msg.starts_with(loc), "{extra}=> {msg} (wanted location {loc})");
                assert!(!e.hint().is_empty(), "{extra}");
                if !want.contains("invalid value") {
                    assert!(matches!(e, ConfigError::Invalid { .. }), "{extra}: exit 2 with a field: {e:?}");
                }
            }
        }
    }
}

#[test]
fn accepted_configs_name_only_valid_references() {
    let c =
        p(&with("registry: '[::1]:5000'\ntags: ['{{raw}}', '{{version}}', 'v{{major}}.{{minor}}', latest]\n")).unwrap();
    super::proptests::assert_valid_references(&c);
    assert_eq!(c.image_repo(&c.images[0]), "[::1]:5000/n/p-a");
    let long = crate::version::ReleaseVersion::parse(&format!("v0.9.0-{}", "a".repeat(160)), "v").unwrap();
    let problem = c.image_tag_problem(&long).expect("a 167-character tag is a problem");
    assert!(matches!(problem, RenderError::TooLong { len: 167, .. }), "{problem}");
    let fine = crate::version::ReleaseVersion::parse("v0.9.0-rc.1", "v").unwrap();
    assert_eq!(c.image_tag_problem(&fine), None);
}

#[test]
fn notify_entries_are_checked_with_their_line_and_never_show_the_url() {
    let base = "namespace: n\nproject: p\nimages: { a: { context: a } }\n";
    let ok = p(&format!(
        "{base}notify:\n  - url: https://hooks.slack.com/services/T/B/xyz\n    format: slack\n    on: [published, failed, failed]\n  - {{ url: env:HOOK_2, format: generic }}\n"
    ))
    .unwrap();
    assert_eq!(ok.notify.len(), 2);
    assert_eq!(ok.notify[0].on, [NotifyEvent::Published, NotifyEvent::Failed], "sorted, repeats dropped");
    assert_eq!(ok.notify[0].format, NotifyFormat::Slack);
    assert_eq!(ok.notify[0].literal(), Some("https://hooks.slack.com/services/T/B/xyz"));
    assert!(matches!(&ok.notify[1].url, NotifyUrl::Env(name) if name == "HOOK_2"));
    assert_eq!(ok.notify[1].on, [NotifyEvent::Published, NotifyEvent::Failed, NotifyEvent::Drift]);
    assert!(p(base).unwrap().notify.is_empty(), "none by default");

    // (notify entries, message fragment, location)
    let cases: &[(&str, &str, &str)] = &[
        (
            "  - { url: 'https://a.test/x', format: teams }\n",
            "unknown variant `teams`, expected `slack` or `generic`",
            "release.yaml:5:",
        ),
        (
            "  - { url: 'https://a.test/x', format: slack, on: [deployed] }\n",
            "unknown variant `deployed`",
            "release.yaml:5:",
        ),
        ("  - { url: 'https://a.test/x', format: slack, on: [] }\n", "notify[0].on: lists no event", "release.yaml:5"),
        (
            "  - url: https://a.test/secret-a\n    format: slack\n  - url: ftp://a.test/secret-b\n    format: generic\n",
            "notify[1].url: is not an http or https URL",
            "release.yaml:7",
        ),
        ("  - { url: 'hooks.test/secret-c', format: slack }\n", "notify[0].url: is not a URL", "release.yaml:5"),
        ("  - { url: 'env:', format: slack }\n", "notify[0].url: `env:` is not followed", "release.yaml:5"),
        ("  - { url: 'env:9X', format: slack }\n", "notify[0].url: `env:` is not followed", "release.yaml:5"),
        ("  - { format: slack }\n", "missing field `url`", "release.yaml:5:"),
        ("  - { url: 'https://a.test/x', format: slack, channel: x }\n", "unknown field `channel`", "release.yaml:5:"),
        (
            "  - url: https://a.test/x\n    format: slack\n  - url: https://b.test/y\n    format: slack\n    on: []\n",
            "notify[1].on: lists no event",
            "release.yaml:9",
        ),
    ];
    for (entries, fragment, location) in cases {
        let err = p(&format!("{base}notify:\n{entries}")).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains(fragment), "{entries}: {msg}");
        assert!(msg.starts_with(location), "{entries}: {msg}");
        assert!(!msg.contains("secret-"), "the URL is not shown: {msg}");
        assert!(!err.hint().is_empty());
    }
}
