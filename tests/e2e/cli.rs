//! The command line as a person meets it: bad input exits 2 with a message naming
//! what is wrong and a hint, before anything is built or pushed; colours only on a terminal.

use crate::common::*;

#[test]
fn bad_tags_exit_2_and_say_why() {
    let f = Fixture::single("badtags");
    git(&f.work, &["tag", "release-5"]);
    let cases = [
        ("v1.2", "unexpected end of input while parsing minor version number"),
        ("release-5", "does not start with the tag prefix `v`"),
        ("latest", "does not start with the tag prefix `v`"),
        ("v01.2.3", "invalid leading zero in major version number"),
        ("v9.9.9", "tag `v9.9.9` does not exist"),
    ];
    for (tag, why) in cases {
        let run = f.relctl(&["release", tag]).expect(2);
        assert!(run.stderr().contains(why), "{tag}: {}", run.stderr());
        assert!(run.stderr().contains("hint: "), "{tag}: {}", run.stderr());
    }
}

#[test]
fn bad_configs_exit_2_with_location_and_hint() {
    let f = Fixture::single("badcfg");
    let cases: &[(&str, &str)] = &[
        ("namespace: n\nproject: p\nimages:\n  a: { contxt: . }\n", "bad.yaml:4:"),
        (
            "namespace: n\nproject: p\nimages:\n  a: { context: ., depends_on: [b] }\n  b: { context: ., depends_on: [a] }\n",
            "dependency cycle: a -> b -> a",
        ),
        ("namespace: n\nproject: p\nimages:\n  a: { context: ., depends_on: [ghost] }\n", "`ghost` is not an image"),
        ("namespace: n\nproject: p\nimages: {}\n", "no images are configured"),
        (
            "namespace: n\nproject: p\ntags: ['{{nope}}']\nimages: { a: { context: . } }\n",
            "unknown variable `{{nope}}`",
        ),
    ];
    for (yaml, want) in cases {
        f.write("bad.yaml", yaml);
        let run = f.relctl(&["--config", "bad.yaml", "plan"]).expect(2);
        assert!(run.stderr().contains(want), "{yaml}: {}", run.stderr());
        assert!(run.stderr().contains("hint: "), "{}", run.stderr());
    }
    let run = f.relctl(&["plan", "--config", "missing.yaml"]).expect(2);
    assert!(run.stderr().contains("missing.yaml does not exist"), "{}", run.stderr());
    let run = f.relctl(&["release"]).expect(2);
    assert!(run.stderr().contains("<TAG>"), "clap names the missing argument: {}", run.stderr());
    let run = f.relctl(&["release", "v1.0.0", "--only", "ghost"]).expect(2);
    assert!(run.stderr().contains("tag `v1.0.0` does not exist"), "{}", run.stderr());
    f.tag("v1.0.0");
    let run = f.relctl(&["release", "v1.0.0", "--only", "ghost"]).expect(2);
    assert!(run.stderr().contains("--only names `ghost`"), "{}", run.stderr());
}

#[test]
fn options_work_before_or_after_the_subcommand() {
    let f = Fixture::single("globals");
    f.tag("v1.0.0");
    let elsewhere = f.dir.path();
    let a = f.relctl(&["--repo", f.work.to_str().unwrap(), "plan", "--json"]).expect(0).stdout();
    let b = std::process::Command::new(env!("CARGO_BIN_EXE_relctl"))
        .current_dir(elsewhere)
        .args(["plan", "--json", "--repo", f.work.to_str().unwrap()])
        .env("HOME", elsewhere)
        .output()
        .unwrap();
    assert!(b.status.success(), "{}", String::from_utf8_lossy(&b.stderr));
    // The same plan, but for the creation time, which may cross a second between the runs.
    let steps = |s: &str| -> serde_json::Value {
        let mut v: serde_json::Value = serde_json::from_str(s).unwrap();
        for step in v["steps"].as_array_mut().unwrap() {
            if let Some(labels) = step.get_mut("labels").and_then(|l| l.as_object_mut()) {
                labels.remove("org.opencontainers.image.created");
            }
        }
        v["steps"].take()
    };
    assert_eq!(steps(&a), steps(&String::from_utf8_lossy(&b.stdout)));
}

#[test]
fn not_a_repository_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("release.yaml"), "namespace: n\nproject: p\nimages: { a: { context: . } }\n")
        .unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_relctl"))
        .current_dir(dir.path())
        .args(["plan"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("is not a git repository"));
}

/// Whether `text` holds an SGR colour sequence (ESC [ digits m).
fn has_colour(text: &str) -> bool {
    text.split("\x1b[").skip(1).any(|rest| {
        let digits = rest.find(|c: char| !c.is_ascii_digit() && c != ';').unwrap_or(rest.len());
        digits > 0 && rest[digits..].starts_with('m')
    })
}

#[test]
fn colours_only_on_a_terminal_and_never_with_no_color() {
    let f = Fixture::single("colour");
    f.tag("v1.0.0");
    let (_, coloured) = f.relctl_on_terminal(&["plan", "v1.0.0"], &[("RELCTL_LOG", "debug")]);
    assert!(has_colour(&coloured), "a terminal gets colours: {coloured:?}");
    let (_, plain) = f.relctl_on_terminal(&["plan", "v1.0.0"], &[("RELCTL_LOG", "debug"), ("NO_COLOR", "1")]);
    assert!(!has_colour(&plain), "NO_COLOR: {plain:?}");
    let piped = f.command(&["plan", "v1.0.0"]).env_remove("NO_COLOR").env("RELCTL_LOG", "debug").output().unwrap();
    let err = String::from_utf8_lossy(&piped.stderr);
    assert!(!has_colour(&err), "not a terminal: {err}");
    assert!(err.contains("DEBUG"), "RELCTL_LOG filters: {err}");
}

#[test]
fn early_mistakes_are_answered_with_the_fix() {
    let f = Fixture::single("early");
    f.tag("v1.0.0");

    // The tag asked for appears in the hint.
    let run = f.relctl(&["release", "v1.4.2"]).expect(2);
    assert!(run.stderr().contains("git tag v1.4.2 && git push origin v1.4.2"), "{}", run.stderr());

    // From a subdirectory, the repository and its release.yaml are found as git finds them.
    std::fs::create_dir_all(f.work.join("deep/er")).unwrap();
    let mut sub = f.command(&["plan", "v1.0.0"]);
    let out = sub.current_dir(f.work.join("deep/er")).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    // A release.yaml that differs from the one at the tag's commit is reported.
    let cfg = std::fs::read_to_string(f.work.join("release.yaml")).unwrap();
    f.write("release.yaml", &format!("{cfg}# edited after tagging\n"));
    let run = f.relctl(&["plan", "v1.0.0"]).expect(0);
    assert!(run.stderr().contains("release.yaml differs from the one at v1.0.0"), "{}", run.stderr());
    f.write("release.yaml", &cfg);

    // No release.yaml: the hint says `relctl init`, and whether this is a repository at all.
    let empty = tempfile::tempdir().unwrap();
    let mut none = f.command(&["plan"]);
    let out = none.current_dir(empty.path()).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("has no release.yaml") && err.contains("not in a git repository"), "{err}");
    std::fs::remove_file(f.work.join("release.yaml")).unwrap();
    let run = f.relctl(&["plan"]).expect(2);
    assert!(run.stderr().contains("run `relctl init` here"), "{}", run.stderr());
    f.write("release.yaml", &cfg);

    // A missing engine fails at once, with a hint that does not repeat what just failed.
    let socket = f.dir.path().join("no-engine.sock");
    let host = format!("unix://{}", socket.display());
    let run = f.relctl_env(&["release", "v1.0.0"], &[("DOCKER_HOST", &host)]).expect(1);
    assert!(run.elapsed < std::time::Duration::from_secs(2), "failed in {:?}", run.elapsed);
    assert!(run.stderr().contains("cannot reach the Docker daemon"), "{}", run.stderr());
    assert!(
        run.stderr().contains("DOCKER_HOST is") && run.stderr().contains("scripts/services.sh env"),
        "{}",
        run.stderr()
    );
}

#[test]
fn a_copy_source_missing_from_the_context_is_not_retried_and_names_the_fix() {
    let f = Fixture::single("notincontext");
    let cfg = std::fs::read_to_string(f.work.join("release.yaml")).unwrap();
    f.write("release.yaml", &cfg.replace("build: { retries: 0 }", "build: { retries: 3 }"));
    f.write("Dockerfile", "FROM scratch\nCOPY missing.txt /missing.txt\n");
    f.commit("copies a file that is not there");
    f.tag("v1.0.0");
    let run = f.relctl(&["release", "v1.0.0"]).expect(1);
    let err = run.stderr();
    assert!(err.contains("a file its Dockerfile copies is not in its build context (./)"), "{err}");
    assert!(err.contains("not retried") && !err.contains("retrying"), "{err}");
    assert!(err.contains("images.app.context") && err.contains("the same tag can simply be released again"), "{err}");
    assert_eq!(f.tags("app"), Vec::<String>::new());
}
