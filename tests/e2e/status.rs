//! `relctl status` on the real registry and git remote: rows, drift marks,
//! JSON, exit codes, and that it writes nothing.

use crate::common::*;

/// relctl's requests to repositories under `namespace` logged since `offset`.
fn short(d: &str) -> &str {
    &d.strip_prefix("sha256:").unwrap_or(d)[..12]
}

#[test]
fn status_shows_rows_and_drift_writes_nothing_and_gates_on_convergence() {
    let f = Fixture::single("status");
    let c100 = f.tag("v1.0.0");
    f.write("app.txt", "two\n");
    f.commit("two");
    let c110 = f.tag("v1.1.0");
    f.relctl(&["reconcile", "--once"]).expect(0);
    f.write("app.txt", "three\n");
    f.commit("three");
    let crc = f.tag("v1.2.0-rc.1");
    f.relctl(&["reconcile", "--once"]).expect(0);
    // v1.2.0: the rc's inputs, another commit: reconcile will retag it.
    f.commit("nothing changes");
    let c120 = f.tag("v1.2.0");
    let repo = f.repo("app");
    move_tag(&f.registry, &repo, "v1.0.0", "latest");
    let (d100, d110) = (f.digest("app", "v1.0.0").unwrap(), f.digest("app", "v1.1.0").unwrap());

    let offset = registry_log_offset();
    let run = f.relctl(&["status"]).expect(1);
    let out = run.stdout();
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines,
        [
            format!("v1.2.0       {}  not built", &c120[..12]),
            format!("v1.2.0-rc.1  {}  pre-release", &crc[..12]),
            format!("v1.1.0       {}  published", &c110[..12]),
            format!("  app  {}  built", short(&d110)),
            format!("v1.0.0       {}  published", &c100[..12]),
            format!("app:latest  -> v1.0.0 ({})  DRIFT: should be v1.1.0", short(&d100)),
            "VERSION = v1.1.0".to_string(),
            "not converged".to_string(),
        ],
        "{out}"
    );
    assert!(run.stderr().contains("not converged: v1.2.0 (not built), app:latest"), "{}", run.stderr());
    let requests = registry_requests_since(offset, &f.namespace);
    assert_eq!(registry_writes_since(offset, &f.namespace), Vec::<String>::new(), "status writes nothing");
    // tags/list once, then HEADs only: v1.1.0's digest, latest's, and as it
    // is not v1.1.0's, latest's again; the labels of both digests come from
    // the cache the reconcile runs of this fixture left (no manifest GET).
    assert_eq!(requests.len(), 4, "{requests:#?}");
    assert_eq!(requests.iter().filter(|l| l.contains("\"HEAD ")).count(), 3, "{requests:#?}");
    assert_eq!(requests.iter().filter(|l| l.contains("/tags/list")).count(), 1, "{requests:#?}");

    let json: serde_json::Value = serde_json::from_str(&f.relctl(&["status", "--json"]).expect(1).stdout()).unwrap();
    assert_eq!(json["converged"], false);
    let states: Vec<(&str, &str)> = json["releases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["tag"].as_str().unwrap(), r["state"].as_str().unwrap()))
        .collect();
    assert_eq!(
        states,
        [("v1.2.0", "not_built"), ("v1.2.0-rc.1", "pre_release"), ("v1.1.0", "published"), ("v1.0.0", "published")]
    );
    assert_eq!(json["releases"][0]["commit"], c120.as_str());
    assert_eq!(json["releases"][2]["images"][0]["digest"], d110.as_str());
    assert_eq!(json["releases"][2]["images"][0]["provenance"]["how"], "built");
    let latest = &json["floating"][0];
    assert_eq!((&latest["image"], &latest["tag"]), (&"app".into(), &"latest".into()));
    assert_eq!(latest["digest"], d100.as_str());
    assert_eq!(latest["release"], "v1.0.0");
    assert_eq!(latest["expected"], "v1.1.0");
    assert_eq!(latest["drift"], true);
    assert_eq!(
        json["version_file"],
        serde_json::json!({"path": "VERSION", "names": "v1.1.0", "expected": "v1.1.0", "drift": false})
    );

    f.relctl(&["reconcile", "--once"]).expect(0);
    let offset = registry_log_offset();
    let run = f.relctl(&["status"]).expect(0);
    let requests = registry_requests_since(offset, &f.namespace);
    // Converged, after a reconcile: tags/list and two HEADs, no pull at all.
    assert_eq!(requests.len(), 3, "tags/list, v1.2.0's digest, latest's digest: {requests:#?}");
    let out = run.stdout();
    let d120 = f.digest("app", "v1.2.0").unwrap();
    assert!(out.starts_with(&format!("v1.2.0       {}  published\n", &c120[..12])), "{out}");
    assert!(out.contains(&format!("  app  {}  retagged from v1.2.0-rc.1\n", short(&d120))), "{out}");
    assert!(out.contains(&format!("app:latest  -> v1.2.0 ({})\n", short(&d120))), "{out}");
    assert!(out.ends_with("VERSION = v1.2.0\nconverged\n"), "{out}");
}

#[test]
fn status_marks_a_partial_release_and_a_moved_tag() {
    let f = Fixture::single("status-two");
    let cfg = std::fs::read_to_string(f.work.join("release.yaml")).unwrap();
    f.write("release.yaml", &format!("{cfg}  b: {{ context: . }}\n"));
    f.commit("a second image");
    git(&f.work, &["push", "-q", "origin", "main"]);
    let c100 = f.tag("v1.0.0");
    f.write("app.txt", "two\n");
    f.commit("two");
    f.tag("v1.1.0");
    f.relctl(&["reconcile", "--once"]).expect(0);
    f.relctl(&["status"]).expect(0);

    // b loses v1.0.0; v1.1.0 moves to a commit with other inputs.
    delete_tag(&f.registry, &f.repo("b"), "v1.0.0");
    f.write("app.txt", "moved\n");
    let moved = f.commit("moved");
    git(&f.work, &["tag", "-f", "v1.1.0"]);
    git(&f.work, &["push", "-q", "-f", "origin", "v1.1.0"]);
    let built_from = git(&f.work, &["rev-parse", "HEAD~1"]);

    let offset = registry_log_offset();
    let run = f.relctl(&["status"]).expect(1);
    let out = run.stdout();
    assert!(
        out.starts_with(&format!(
            "v1.1.0  {}  failed: tag moved: app was built from {}, b was built from {}, not {}\n",
            &moved[..12],
            &built_from[..12],
            &built_from[..12],
            &moved[..12]
        )),
        "{out}"
    );
    assert!(out.contains(&format!("v1.0.0  {}  partial: 1/2\n", &c100[..12])), "{out}");
    assert!(
        out.contains(&format!(
            "  app  {}  built from {}\n",
            short(&f.digest("app", "v1.1.0").unwrap()),
            &built_from[..12]
        )),
        "{out}"
    );
    assert!(out.contains("app:latest  -> v1.1.0 (") && out.contains("b:latest  -> v1.1.0 ("), "{out}");
    assert!(!out.contains("DRIFT"), "latest and VERSION are on the highest published release: {out}");
    let requests = registry_requests_since(offset, &f.namespace);
    assert_eq!(registry_writes_since(offset, &f.namespace), Vec::<String>::new(), "status writes nothing");
    // Per image: tags/list once, v1.1.0's and latest's digests (HEAD); their
    // labels come from the digest cache, so no manifest or config GET.
    assert_eq!(requests.len(), 6, "{requests:#?}");
    assert!(!requests.iter().any(|l| l.contains("\"GET ") && l.contains("/manifests/")), "{requests:#?}");
}
