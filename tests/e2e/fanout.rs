//! GitHub integration on the real engine, registry and git remote: fan-out
//! (`matrix`, `release --only X --stage`, `finalize`) and a release inside
//! GitHub Actions, whose GitHub Release goes to a local API fixture (wiremock).

use crate::common::*;
use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

#[test]
fn fan_out_stages_each_image_on_its_own_and_finalize_publishes_all_or_nothing() {
    let f = Fixture::example("fanout");
    let commit = f.tag("v1.0.0");
    let stage = format!("relctl-stage-v1.0.0-{}", &commit[..12]);

    let matrix: Value = serde_json::from_str(&f.relctl(&["matrix", "v1.0.0"]).expect(0).stdout()).unwrap();
    let layers: Vec<Vec<String>> = serde_json::from_value(matrix["layers"].clone()).unwrap();
    assert_eq!(layers, [vec!["agent", "frontend", "server"], vec!["nginx", "worker"]], "{matrix}");
    assert_eq!(matrix["include"][0]["platform"], Value::Null, "the runner's own platform: {matrix}");
    assert_eq!(matrix["include"][0]["runs-on"], "ubuntu-latest");
    assert_eq!(matrix["include_by_layer"][1][1]["image"], "worker");
    let worker = matrix["include"].as_array().unwrap().iter().find(|e| e["image"] == "worker").unwrap();
    assert_eq!(worker["needs"], json!(["server"]));

    // A child cannot be staged before its parent.
    let early = f.relctl(&["release", "v1.0.0", "--only", "worker", "--stage"]).expect(2);
    assert!(early.stderr().contains("--only server --stage"), "{}", early.stderr());

    // One job per image, nginx's job never runs.
    for image in ["server", "frontend", "agent", "worker"] {
        f.relctl(&["release", "v1.0.0", "--only", image, "--stage"]).expect(0);
        assert_eq!(f.staging_tags(image), std::slice::from_ref(&stage), "{image}");
    }
    for image in IMAGES {
        assert!(f.tags(image).is_empty(), "{image}: staging never writes a release tag: {:?}", f.tags(image));
    }
    let tip = f.remote_main();
    let run = f.relctl(&["finalize", "v1.0.0"]).expect(1);
    assert!(
        run.stderr().contains(&format!("cannot finalize v1.0.0: not staged from commit {commit}: nginx")),
        "{}",
        run.stderr()
    );
    assert!(run.stderr().contains("--only nginx --stage"), "{}", run.stderr());
    for image in IMAGES {
        assert!(f.tags(image).is_empty(), "{image}: nothing published: {:?}", f.tags(image));
    }
    assert_eq!(f.remote_main(), tip, "no VERSION commit");

    // A rerun of a finished job is a no-op; then the last job, and finalize publishes everything.
    let again = f.relctl(&["release", "v1.0.0", "--only", "server", "--stage"]).expect(0);
    assert!(again.stdout().contains("staged ("), "{}", again.stdout());
    f.relctl(&["release", "v1.0.0", "--only", "nginx", "--stage"]).expect(0);
    f.relctl(&["finalize", "v1.0.0"]).expect(0);
    for image in IMAGES {
        assert_eq!(f.tags(image), ["latest", "v1.0.0"], "{image}");
        assert_eq!(f.digest(image, "v1.0.0"), f.digest(image, &stage), "{image}: promoted by manifest copy");
    }
    assert_eq!(f.remote_file("VERSION").as_deref(), Some("v1.0.0\n"));
    assert!(
        docker_run(&f.reference("worker", "v1.0.0"), &["cat", "/app/mode"]).contains("mode=prod"),
        "worker was built on the staged server"
    );
}

#[test]
fn inside_github_actions_outputs_summary_groups_and_the_github_release_are_written() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let api = rt.block_on(async {
        let api = MockServer::start().await;
        Mock::given(method("GET"))
            .and(path("/repos/acme/app/releases/tags/v1.0.0"))
            .respond_with(ResponseTemplate::new(404).set_body_json(json!({"message": "Not Found"})))
            .mount(&api)
            .await;
        Mock::given(method("POST"))
            .and(path("/repos/acme/app/releases"))
            .respond_with(
                ResponseTemplate::new(201).set_body_json(json!({"id": 9, "html_url": "https://github.test/r/9"})),
            )
            .expect(1)
            .mount(&api)
            .await;
        api
    });

    let f = Fixture::single("actions");
    let commit = f.tag("v1.0.0");
    let output = f.dir.path().join("github_output");
    let summary = f.dir.path().join("step_summary");
    let run = f
        .relctl_env(
            &["release", "v1.0.0"],
            &[
                ("GITHUB_ACTIONS", "true"),
                ("GITHUB_OUTPUT", output.to_str().unwrap()),
                ("GITHUB_STEP_SUMMARY", summary.to_str().unwrap()),
                ("GITHUB_TOKEN", "ghs_secret_token_value"),
                ("GITHUB_API_URL", &api.uri()),
                ("GITHUB_REPOSITORY", "acme/app"),
            ],
        )
        .expect(0);
    let err = run.stderr();
    assert!(err.contains("::group::phase 1/5: build 1 image(s)"), "{err}");
    assert!(err.contains("::group::phase 5/5: GitHub Release v1.0.0 in acme/app"), "{err}");
    assert_eq!(err.matches("::group::").count(), err.matches("::endgroup::").count(), "{err}");
    assert!(!format!("{}{err}", run.stdout()).contains("ghs_secret_token_value"), "the token leaked");

    let outputs = parse_outputs(&std::fs::read_to_string(&output).unwrap());
    assert_eq!(outputs["version"], "v1.0.0");
    assert_eq!(outputs["prerelease"], "false");
    assert_eq!(outputs["version-commit"], f.remote_main());
    let images: Value = serde_json::from_str(&outputs["images"]).unwrap();
    assert_eq!(images[0]["image"], "app");
    assert_eq!(images[0]["tags"], json!(["v1.0.0", "latest"]));
    assert_eq!(images[0]["digest"].as_str(), f.digest("app", "v1.0.0").as_deref());
    assert_eq!(images[0]["built"], true);

    let summary = std::fs::read_to_string(&summary).unwrap();
    let digest = f.digest("app", "v1.0.0").unwrap();
    assert!(
        summary.contains(&format!("| `{}` | `v1.0.0` `latest` | `{digest}` | built |", f.repository("app"))),
        "{summary}"
    );

    let requests = rt.block_on(api.received_requests()).unwrap();
    let post = requests.iter().find(|r| r.method.as_str() == "POST").expect("a GitHub Release was created");
    let body: Value = serde_json::from_slice(&post.body).unwrap();
    assert_eq!(body["tag_name"], "v1.0.0");
    assert_eq!(body["prerelease"], false);
    let text = body["body"].as_str().unwrap();
    assert!(text.contains(&format!("built from {commit}")), "{text}");
    assert!(text.contains(&format!("docker pull {}:v1.0.0", f.repository("app"))), "{text}");

    // A failure is an ::error annotation naming what failed.
    f.tag("not-a-version");
    let run = f.relctl_env(&["release", "not-a-version"], &[("GITHUB_ACTIONS", "true")]).expect(2);
    assert!(run.stderr().contains("::error title=relctl::"), "{}", run.stderr());
}

/// Parses GITHUB_OUTPUT's `name<<DELIMITER` blocks.
fn parse_outputs(text: &str) -> std::collections::BTreeMap<String, String> {
    let mut out = std::collections::BTreeMap::new();
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        let (name, delimiter) = line.split_once("<<").expect("multi-line form");
        let value: Vec<&str> = lines.by_ref().take_while(|l| *l != delimiter).collect();
        out.insert(name.to_string(), value.join("\n"));
    }
    out
}

#[test]
fn version_commit_through_the_github_api_names_its_parent_and_retries_when_the_branch_moved() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let api = rt.block_on(async {
        let api = MockServer::start().await;
        let ok = |body: Value| ResponseTemplate::new(200).set_body_json(body);
        // The branch moves once: p1 when first read, p2 afterwards.
        Mock::given(method("GET"))
            .and(path("/repos/acme/app/git/ref/heads/main"))
            .respond_with(ok(json!({"object": {"sha": "p1"}})))
            .up_to_n_times(1)
            .with_priority(1)
            .mount(&api)
            .await;
        Mock::given(method("GET"))
            .and(path("/repos/acme/app/git/ref/heads/main"))
            .respond_with(ok(json!({"object": {"sha": "p2"}})))
            .with_priority(2)
            .mount(&api)
            .await;
        Mock::given(method("GET"))
            .and(path("/repos/acme/app/contents/VERSION"))
            .respond_with(ResponseTemplate::new(404).set_body_json(json!({"message": "Not Found"})))
            .mount(&api)
            .await;
        crate::common::github::git_data_api(&api, 422).await;
        Mock::given(method("GET"))
            .and(path("/repos/acme/app/releases/tags/v1.0.0"))
            .respond_with(ok(json!({"id": 3, "html_url": "u"})))
            .mount(&api)
            .await;
        Mock::given(method("PATCH"))
            .and(path("/repos/acme/app/releases/3"))
            .respond_with(ok(json!({"id": 3, "html_url": "u"})))
            .expect(1)
            .mount(&api)
            .await;
        api
    });

    let f = Fixture::single("apicommit");
    let cfg = std::fs::read_to_string(f.work.join("release.yaml")).unwrap();
    f.write("release.yaml", &format!("{cfg}commit: {{ via: github-api }}\n"));
    f.commit("commit VERSION through the API");
    git(&f.work, &["push", "-q", "origin", "main"]);
    f.tag("v1.0.0");
    let tip = f.remote_main();
    let uri = api.uri();
    let env = [("GITHUB_TOKEN", "ghs_x"), ("GITHUB_API_URL", uri.as_str()), ("GITHUB_REPOSITORY", "acme/app")];
    let run = f.relctl_env(&["release", "v1.0.0"], &env).expect(0);
    assert!(run.stdout().contains("VERSION = v1.0.0 committed as c2"), "{}", run.stdout());
    assert_eq!(f.remote_main(), tip, "nothing was pushed with git");

    let requests = rt.block_on(api.received_requests()).unwrap();
    let commits: Vec<Value> = requests
        .iter()
        .filter(|r| r.url.path() == "/repos/acme/app/git/commits" && r.method.as_str() == "POST")
        .map(|r| serde_json::from_slice(&r.body).unwrap())
        .collect();
    assert_eq!(commits.len(), 2, "rejected once, then retried on the new tip");
    assert!(commits[1]["message"].as_str().unwrap().contains("Release-By: relctl"), "{}", commits[1]);
    assert_eq!(commits[1]["author"]["name"], "relctl");
    let tree: Value =
        serde_json::from_slice(&requests.iter().find(|r| r.url.path() == "/repos/acme/app/git/trees").unwrap().body)
            .unwrap();
    assert_eq!(tree["tree"][0]["path"], "VERSION");
    assert_eq!(tree["tree"][0]["content"], "v1.0.0\n");
}
