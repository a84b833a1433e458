//! Property tests of release.yaml loading and validation, tag resolution and
//! tag rendering, and the replay of their committed corpora
//! (tests/corpus/{config,tag,template}). The properties: nothing panics, and
//! an accepted config names only valid references for every representative
//! version.

use std::path::Path;

use proptest::prelude::*;

use super::corpus;
use super::oci;
use super::template::{REPRESENTATIVE_VERSIONS, RenderError, TagTemplate, image_tag_problem};
use super::{Config, ConfigError, MAX_PARALLELISM, MAX_RECONCILED_TAGS, MAX_RETRIES, parse};
use crate::version::{ReleaseVersion, image_tag_safe};

/// Everything an accepted config promises about the references it makes.
pub(super) fn assert_valid_references(c: &Config) {
    assert!(oci::is_registry_host(&c.registry), "registry {:?}", c.registry);
    assert!(!c.images.is_empty());
    for image in &c.images {
        let name = c.image_repo(image);
        assert!(name.len() <= oci::MAX_NAME_LEN, "{name} has {} characters", name.len());
        assert!(oci::is_repository(&image.repository), "repository {:?}", image.repository);
    }
    assert!(c.build.retries <= MAX_RETRIES, "retries {}", c.build.retries);
    assert!((1..=MAX_PARALLELISM).contains(&c.build.parallelism), "parallelism {}", c.build.parallelism);
    assert!((1..=MAX_RECONCILED_TAGS).contains(&c.reconcile.max_tags), "max_tags {}", c.reconcile.max_tags);
    for path in c.rewritten_files() {
        assert!(!path.is_empty() && !path.starts_with('/'), "rewritten file {path:?}");
        assert!(!path.split('/').any(|p| p == ".." || p.eq_ignore_ascii_case(".git") || p.is_empty()), "{path:?}");
    }
    for version in REPRESENTATIVE_VERSIONS {
        let v = ReleaseVersion::parse(&format!("{}{version}", c.git.tag_prefix), &c.git.tag_prefix)
            .expect("a representative version is a release tag under any prefix");
        let mut own_tags = 0;
        for t in &c.tags {
            match t.try_render(&v) {
                Ok(Some(tag)) => {
                    assert!(oci::is_tag(&tag), "{} renders {tag:?} for {}", t.source(), v.raw);
                    own_tags += usize::from(!t.scope().is_floating());
                }
                Ok(None) => assert!(v.is_prerelease() && t.scope() != super::TagScope::Version),
                Err(e) => panic!("an accepted config cannot name {}: {e}", v.raw),
            }
        }
        assert!(own_tags > 0, "{} gets no tag of its own", v.raw);
        assert_eq!(c.image_tag_problem(&v), None);
    }
}

/// Parses `text`; never panics, and what it accepts names only valid references.
fn check_config(text: &str) -> Result<Config, ConfigError> {
    let result = parse(text, Path::new("release.yaml"));
    match &result {
        Ok(c) => assert_valid_references(c),
        Err(e) => {
            // Every error says where and what to do.
            assert!(e.to_string().starts_with("release.yaml"), "{e}");
            assert!(!e.hint().is_empty(), "{e}");
        }
    }
    result
}

/// Resolves `tag` and renders `templates` for it; the rendered tags are
/// valid or the render says why not, and the reasons are the true ones.
fn check_tag(tag: &str, prefix: &str, templates: &[TagTemplate]) {
    let Ok(v) = ReleaseVersion::parse(tag, prefix) else { return };
    assert_eq!(v.raw, tag);
    assert_eq!(v.is_prerelease(), !v.version.pre.is_empty());
    for t in templates {
        let got = t.try_render(&v);
        assert_eq!(t.render(&v), got.clone().ok().flatten(), "{} {tag}", t.source());
        match got {
            Ok(Some(out)) => assert!(oci::is_tag(&out), "{} renders {out:?} for {tag:?}", t.source()),
            Ok(None) => assert!(v.is_prerelease() && t.scope() != super::TagScope::Version, "{} {tag}", t.source()),
            Err(RenderError::TooLong { len, .. }) => assert!(len > oci::MAX_TAG_LEN),
            Err(RenderError::Invalid { tag: out, .. }) => {
                assert!(out.len() <= oci::MAX_TAG_LEN && !oci::is_tag(&out), "{out:?}")
            }
        }
    }
    assert_eq!(image_tag_problem(templates, &v), templates.iter().find_map(|t| t.try_render(&v).err()), "{tag}");
}

fn default_templates() -> Vec<TagTemplate> {
    ["{{raw}}", "{{version}}", "latest", "v{{major}}.{{minor}}", "{{major}}", "{{major}}.{{minor}}.{{patch}}"]
        .iter()
        .map(|s| TagTemplate::parse(s).unwrap())
        .collect()
}

// --- corpus replay ---------------------------------------------------------

/// tests/corpus/config: `accept-*` files must be accepted, `reject-*` files
/// refused (with the text of a first `# expect: ` line in the message, when
/// there is one), others just handled.
#[test]
fn config_corpus_replays() {
    for (name, text) in corpus::texts("config") {
        let result = check_config(&text);
        let expect = text.lines().next().and_then(|l| l.strip_prefix("# expect: "));
        if name.starts_with("accept-") {
            assert!(result.is_ok(), "{name}: {}", result.unwrap_err());
        } else if name.starts_with("reject-") {
            let err = result.err().unwrap_or_else(|| panic!("{name} was accepted"));
            if let Some(want) = expect {
                assert!(err.to_string().contains(want), "{name}: {err}\n(wanted {want:?})");
            }
        }
    }
}

/// tests/corpus/tag: one tag a line (prefix `v`); in `valid-*` files every
/// line is a release tag, in `invalid-*` none is.
#[test]
fn tag_corpus_replays() {
    let templates = default_templates();
    for (name, text) in corpus::texts("tag") {
        for tag in text.lines().filter(|l| !l.starts_with("# ")) {
            check_tag(tag, "v", &templates);
            check_tag(tag, "", &templates);
            let parsed = ReleaseVersion::parse(tag, "v");
            if name.starts_with("valid-") {
                assert!(parsed.is_ok(), "{name}: {tag:?}: {}", parsed.unwrap_err());
                // Long tags are refused per release, never by a panic.
                let v = parsed.unwrap();
                let long = image_tag_safe(&v.raw).len() > oci::MAX_TAG_LEN;
                assert_eq!(image_tag_problem(&templates[..1], &v).is_some(), long, "{tag}");
            } else if name.starts_with("invalid-") {
                assert!(parsed.is_err(), "{name}: {tag:?}");
            }
        }
    }
}

/// tests/corpus/template: `template<TAB>release tag<TAB>expectation` a line,
/// the expectation one of `tag:VALUE`, `none`, `too-long`, `invalid`, `bad-template`.
#[test]
fn template_corpus_replays() {
    for (name, text) in corpus::texts("template") {
        for line in text.lines().filter(|l| !l.starts_with("# ") && !l.is_empty()) {
            let mut fields = line.split('\t');
            let (Some(template), Some(tag), Some(want)) = (fields.next(), fields.next(), fields.next()) else {
                panic!("{name}: `{line}` is not template<TAB>tag<TAB>expectation");
            };
            let parsed = TagTemplate::parse(template);
            if want == "bad-template" {
                assert!(parsed.is_err(), "{name}: {template:?} parsed");
                continue;
            }
            let t = parsed.unwrap_or_else(|e| panic!("{name}: {e}"));
            let v = ReleaseVersion::parse(tag, "v").unwrap_or_else(|e| panic!("{name}: {e}"));
            check_tag(tag, "v", std::slice::from_ref(&t));
            let got = t.try_render(&v);
            let ok = match want {
                "none" => got == Ok(None),
                "too-long" => matches!(got, Err(RenderError::TooLong { .. })),
                "invalid" => matches!(got, Err(RenderError::Invalid { .. })),
                want => want.strip_prefix("tag:").is_some_and(|w| got == Ok(Some(w.to_string()))),
            };
            assert!(ok, "{name}: {template} {tag}: {got:?}, wanted {want}");
        }
    }
}

// --- generators ------------------------------------------------------------

/// A YAML double-quoted scalar holding exactly `s`.
fn q(s: &str) -> String {
    serde_json::to_string(s).expect("a string serializes")
}

// Each generator gives a valid value most of the time and a nasty one otherwise,
// so that a fair share of whole configs is accepted and checked.

fn name() -> impl Strategy<Value = String> {
    prop_oneof![
        40 => "[a-z0-9]{1,8}([._-][a-z0-9]{1,6}){0,2}",
        1 => "[a-z0-9._-]{0,16}",
        1 => "[a-z0-9]{60,130}",
        1 => "[A-Za-z0-9]{1,8}",
        1 => "\\PC{0,12}",
    ]
}

fn repository() -> impl Strategy<Value = String> {
    prop_oneof![
        20 => "[a-z0-9]{1,8}(/[a-z0-9]{1,8}([_-][a-z0-9]{1,4})?){0,3}",
        1 => "[a-z0-9]{200,260}",
        1 => "[a-z0-9/._-]{0,20}",
        1 => "\\PC{0,12}",
    ]
}

fn registry() -> impl Strategy<Value = String> {
    prop_oneof![
        20 => prop::sample::select(vec![
            "docker.io", "ghcr.io", "127.0.0.1:5000", "localhost:5000", "[::1]:5000", "[2001:db8::1]:5000", "[::1]",
            "Registry.Example.COM:443",
        ]).prop_map(str::to_string),
        4 => "[a-z0-9]{1,60}(\\.[a-z0-9]{1,60}){0,3}(:[1-9][0-9]{0,4})?",
        1 => prop::sample::select(vec![
            "[::1", "[]:5000", "x.io:0", "x.io:65536", "https://x.io", "x.io/path", "", "x..io", "[fe80::1%eth0]:5000",
            "[::ffff:127.0.0.1]:5000", "-x.io",
        ]).prop_map(str::to_string),
        1 => "[a-zA-Z0-9.:\\[\\]/-]{0,20}",
    ]
}

/// A template that is well formed most of the time.
fn template() -> impl Strategy<Value = String> {
    let var = prop::sample::select(vec!["{{raw}}", "{{version}}", "{{major}}", "{{minor}}", "{{patch}}", "{{ raw }}"]);
    let good = (
        "[a-z0-9_]{0,4}",
        var,
        "([._-][a-z0-9]{0,4})?",
        prop::option::of(prop::sample::select(vec![".{{minor}}", "-{{patch}}"])),
    )
        .prop_map(|(a, v, b, c)| format!("{a}{v}{b}{}", c.unwrap_or_default()));
    let piece = prop_oneof![
        3 => prop::sample::select(vec!["{{raw}}", "{{version}}", "{{major}}", "{{minor}}", "{{patch}}", "latest", "v", "-", ".", "_"])
            .prop_map(str::to_string),
        3 => "[A-Za-z0-9_.-]{0,12}",
        1 => "[A-Za-z0-9_.-]{90,140}",
        1 => prop::sample::select(vec!["{{", "}}", "{{sha}}", "/", " ", "+", "é", ""]).prop_map(str::to_string),
        1 => "\\PC{0,4}",
    ];
    prop_oneof![
        12 => good,
        2 => Just("latest".to_string()),
        1 => prop::collection::vec(piece, 0..4).prop_map(|p| p.concat()),
    ]
}

fn tags() -> impl Strategy<Value = Vec<String>> {
    prop_oneof![
        6 => (prop::sample::select(vec!["{{raw}}", "{{version}}", "v{{version}}"]), prop::collection::vec(template(), 0..3))
            .prop_map(|(own, rest)| std::iter::once(own.to_string()).chain(rest).collect()),
        1 => prop::collection::vec(template(), 0..4),
    ]
}

fn prefix() -> impl Strategy<Value = String> {
    prop_oneof![
        30 => prop::sample::select(vec!["v", "", "release-", "V", "rel."]).prop_map(str::to_string),
        1 => prop::sample::select(vec!["release/", "-", ".", "_", "é", "v/"]).prop_map(str::to_string),
        1 => "[a-zA-Z0-9/._-]{0,6}",
        1 => "[a-z]{90,130}",
    ]
}

fn path() -> impl Strategy<Value = String> {
    let component = prop_oneof![
        2 => prop::sample::select(vec![".git", ".GIT", ".Git", "..", ".", "", "VERSION", "docs", "a b", "é", ".github", ".gitignore"])
            .prop_map(str::to_string),
        2 => "[a-zA-Z0-9._-]{1,10}",
        1 => "\\PC{0,6}",
    ];
    let nasty = (prop::sample::select(vec!["", "/", "./"]), prop::collection::vec(component, 0..4))
        .prop_map(|(lead, parts)| format!("{lead}{}", parts.join("/")));
    prop_oneof![
        12 => "(\\./)?[A-Za-z0-9_-]{1,8}(/[A-Za-z0-9_-][A-Za-z0-9._-]{0,7}){0,2}",
        1 => nasty,
    ]
}

/// A count as YAML text: mostly within `lo..=hi`, else at or past the bounds, past the type, or no count.
fn number(lo: u64, hi: u64) -> impl Strategy<Value = String> {
    prop_oneof![
        16 => (lo..=hi).prop_map(|n| n.to_string()),
        2 => prop::sample::select(vec![
            "0", "10", "11", "64", "65", "10000", "10001", "4294967295", "4294967296", "18446744073709551615",
            "18446744073709551616", "-1", "0x10", "1e3", "1.5", "~", "''",
        ]).prop_map(str::to_string),
        1 => any::<u64>().prop_map(|n| n.to_string()),
    ]
}

fn duration() -> impl Strategy<Value = String> {
    prop_oneof![
        8 => prop::sample::select(vec!["1s", "24h", "86400", "10m", "90s", "1440m"]).prop_map(str::to_string),
        1 => prop::sample::select(vec!["0s", "86401", "25h", "1441m", "", "5x", "18446744073709551615h", "-1s"])
            .prop_map(str::to_string),
        1 => "[0-9]{0,22}[smh]?",
    ]
}

const IMAGE_NAMES: &[&str] = &["app", "web", "worker", "db"];

#[derive(Debug, Clone)]
struct Image {
    /// A generated name, else one of IMAGE_NAMES.
    name: Option<String>,
    context: String,
    repository: Option<String>,
    /// An earlier image (by index, wrapping) or, rarely, any name.
    depends_on: Vec<Result<prop::sample::Index, String>>,
}

fn image() -> impl Strategy<Value = Image> {
    let dep = prop_oneof![8 => any::<prop::sample::Index>().prop_map(Ok), 1 => name().prop_map(Err)];
    (
        prop::option::weighted(0.1, name()),
        path(),
        prop::option::weighted(0.3, repository()),
        prop::collection::vec(dep, 0..2),
    )
        .prop_map(|(name, context, repository, depends_on)| Image { name, context, repository, depends_on })
}

/// A whole release.yaml from generated parts; every key optional except the required ones.
fn config_yaml() -> impl Strategy<Value = String> {
    let head = (registry(), name(), name(), prefix(), prop::option::of(path()));
    let numbers =
        (prop::option::of(number(0, 10)), prop::option::of(number(1, 64)), prop::option::of(number(1, 10_000)));
    let images = prop::collection::vec(image(), 1..4);
    let rest = (prop::option::weighted(0.3, path()), prop::option::weighted(0.3, duration()));
    (head, prop::option::of(tags()), numbers, images, rest).prop_map(
        |(
            (registry, namespace, project, prefix, version_file),
            tags,
            (retries, parallelism, max_tags),
            images,
            (also, timeout),
        )| {
            let mut y = format!("registry: {}\nnamespace: {}\nproject: {}\n", q(&registry), q(&namespace), q(&project));
            y += &format!("git: {{ remote: origin, branch: main, tag_prefix: {} }}\n", q(&prefix));
            if let Some(f) = version_file {
                y += &format!("version_file: {}\n", q(&f));
            }
            if let Some(tags) = tags {
                y += &format!("tags: [{}]\n", tags.iter().map(|t| q(t)).collect::<Vec<_>>().join(", "));
            }
            let build: Vec<String> = [("retries", retries), ("parallelism", parallelism)]
                .into_iter()
                .filter_map(|(k, v)| v.map(|v| format!("{k}: {v}")))
                .collect();
            y += &format!("build: {{ {} }}\n", build.join(", "));
            if let Some(n) = max_tags {
                y += &format!("reconcile: {{ max_tags: {n} }}\n");
            }
            y += "images:\n";
            let names: Vec<String> = images
                .iter()
                .enumerate()
                .map(|(i, img)| img.name.clone().unwrap_or_else(|| IMAGE_NAMES[i].to_string()))
                .collect();
            for (i, (img, name)) in images.iter().zip(&names).enumerate() {
                let depends_on: Vec<&str> = img
                    .depends_on
                    .iter()
                    .filter_map(|d| match d {
                        Ok(_) if i == 0 => None,
                        Ok(at) => Some(names[at.index(i)].as_str()),
                        Err(any) => Some(any.as_str()),
                    })
                    .collect();
                let mut fields = vec![format!("context: {}", q(&img.context))];
                if let Some(r) = &img.repository {
                    fields.push(format!("repository: {}", q(r)));
                }
                if !depends_on.is_empty() {
                    fields.push(format!(
                        "depends_on: [{}]",
                        depends_on.iter().map(|d| q(d)).collect::<Vec<_>>().join(", ")
                    ));
                }
                y += &format!("  {}: {{ {} }}\n", q(name), fields.join(", "));
            }
            if let Some(a) = also {
                y += &format!("also_update: [{{ path: {}, regex: 'version: (v\\S+)' }}]\n", q(&a));
            }
            if let Some(t) = timeout {
                y += &format!("timeouts: {{ git: {} }}\n", q(&t));
            }
            y
        },
    )
}

const SEEDS: &[&str] = &[
    "namespace: n\nproject: p\nimages: { a: { context: a } }\n",
    "registry: '[::1]:5000'\nnamespace: yyhuni\nproject: xingrin\ngit: { remote: origin, branch: main, tag_prefix: v }\nversion_file: VERSION\ntags: [\"{{raw}}\", \"{{version}}\", \"v{{major}}.{{minor}}\", latest]\nbuild: { retries: 3, parallelism: 2, cache: true, network: none }\nimages:\n  server: { context: ., dockerfile: docker/server/Dockerfile }\n  worker: { context: docker/worker, depends_on: [server], build_args: { MODE: prod } }\n  agent: { context: docker/agent, repository: other/agent-image }\nalso_update: [{ path: README.md, regex: 'current version: (v\\S+)' }]\nreconcile: { since: v1.0.0, max_tags: 10 }\ntimeouts: { build_stall: 10m, push_stall: 2m, request: 60s, git: 2m }\n",
];

/// One edit of a text: insert, delete or replace at a position.
#[derive(Debug, Clone)]
enum Edit {
    Insert(prop::sample::Index, String),
    Delete(prop::sample::Index, usize),
    Replace(prop::sample::Index, String),
}

fn edit() -> impl Strategy<Value = Edit> {
    let text = prop_oneof![
        "\\PC{1,3}",
        prop::sample::select(
            [
                "9999999999999999999",
                "4294967295",
                "[",
                "]",
                "{",
                "}",
                ":",
                ": ",
                "\n",
                "\n  ",
                "'",
                "\"",
                "&a",
                "*a",
                "!!str ",
                "- ",
                "#",
                ".git/",
                "../",
                "{{raw}}",
                "\u{0}",
                "\u{feff}",
                "\u{202e}",
                "é",
                "😀",
            ]
            .into_iter()
            .map(String::from)
            .chain(["a".repeat(130)])
            .collect::<Vec<_>>()
        ),
    ];
    prop_oneof![
        (any::<prop::sample::Index>(), text.clone()).prop_map(|(i, t)| Edit::Insert(i, t)),
        (any::<prop::sample::Index>(), 1usize..8).prop_map(|(i, n)| Edit::Delete(i, n)),
        (any::<prop::sample::Index>(), text).prop_map(|(i, t)| Edit::Replace(i, t)),
    ]
}

/// `text` with `edits` applied at character positions (so never inside a UTF-8 sequence).
fn mutate(text: &str, edits: &[Edit]) -> String {
    let mut chars: Vec<char> = text.chars().collect();
    for e in edits {
        let at = |i: &prop::sample::Index, len: usize| if len == 0 { 0 } else { i.index(len) };
        match e {
            Edit::Insert(i, t) => {
                let p = at(i, chars.len() + 1);
                chars.splice(p..p, t.chars());
            }
            Edit::Delete(i, n) => {
                let p = at(i, chars.len());
                let end = (p + n).min(chars.len());
                chars.drain(p..end);
            }
            Edit::Replace(i, t) => {
                let p = at(i, chars.len());
                let end = (p + 1).min(chars.len());
                chars.splice(p..end, t.chars());
            }
        }
    }
    chars.into_iter().collect()
}

fn release_tag() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => "v(0|[1-9][0-9]{0,3})\\.(0|[1-9][0-9]{0,3})\\.(0|[1-9][0-9]{0,3})(-[0-9A-Za-z-]{1,60}(\\.[0-9A-Za-z-]{1,60}){0,3})?(\\+[0-9A-Za-z-]{1,60}(\\.[0-9A-Za-z-]{1,60}){0,3})?",
        1 => "v(0|[1-9][0-9]{0,25})\\.(0|[1-9][0-9]{0,25})\\.(0|[1-9][0-9]{0,25})",
        1 => "v[0-9.+a-z-]{0,20}",
        1 => "\\PC{0,40}",
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn generated_configs_are_accepted_only_when_valid(yaml in config_yaml()) {
        let _ = check_config(&yaml);
    }

    #[test]
    fn mutated_configs_never_panic(seed in prop::sample::select(SEEDS), edits in prop::collection::vec(edit(), 1..4)) {
        let _ = check_config(&mutate(seed, &edits));
    }

    #[test]
    fn any_text_is_handled_as_a_config(text in "\\PC{0,200}") {
        let _ = check_config(&text);
    }

    #[test]
    fn tags_resolve_and_render_within_the_spec(tag in release_tag(), prefix in prefix()) {
        check_tag(&tag, "v", &default_templates());
        check_tag(&format!("{prefix}{}", tag.trim_start_matches('v')), &prefix, &default_templates());
    }

    #[test]
    fn templates_render_within_the_spec(template in template(), tag in release_tag(), prefix in prefix()) {
        if let Ok(t) = TagTemplate::parse(&template) {
            prop_assert!(t.source() == template);
            let tag = format!("{prefix}{}", tag.trim_start_matches('v'));
            check_tag(&tag, &prefix, std::slice::from_ref(&t));
        }
    }
}
