//! Dockerfile-aware input keys on the real engine and registry: an image
//! built from the repository root is rebuilt only when a file its
//! Dockerfile copies changes, not for relctl's own VERSION commit.

use crate::common::*;

/// Pulls relctl's VERSION commit, commits what was written, pushes main and tags.
fn release_commit(f: &Fixture, msg: &str, tag: &str) {
    f.commit(msg);
    git(&f.work, &["push", "-q", "origin", "HEAD:main"]);
    f.tag(tag);
}

#[test]
fn a_root_context_image_is_rebuilt_only_when_what_its_dockerfile_copies_changes() {
    let f = Fixture::empty("inputs");
    let cfg = format!(
        "registry: {}\nnamespace: {}\nproject: inputs\nbuild: {{ retries: 0 }}\nimages:\n  server: {{ context: ., dockerfile: docker/server/Dockerfile }}\n  frontend: {{ context: frontend }}\n",
        f.registry, f.namespace
    );
    f.write("release.yaml", &cfg);
    f.write("docker/server/Dockerfile", "FROM scratch\nCOPY bin/busybox /bin/busybox\nCOPY src/ /src/\n");
    f.write("src/main.txt", &format!("server {}\n", f.namespace));
    f.write("README.md", "not copied\n");
    f.write("frontend/Dockerfile", "FROM scratch\nCOPY index.html /index.html\n");
    f.write("frontend/index.html", &format!("<p>{}</p>\n", f.namespace));
    release_commit(&f, "two images", "v1.0.0");
    assert_eq!(built(&f.relctl(&["--json", "release", "v1.0.0"]).expect(0)), ["frontend", "server"]);
    let v1 = f.digest("server", "v1.0.0");
    assert!(v1.is_some());

    // Only frontend/ changes; the root also changed by relctl's VERSION commit.
    git(&f.work, &["pull", "-q", "--ff-only", "origin", "main"]);
    assert_eq!(std::fs::read_to_string(f.work.join("VERSION")).unwrap(), "v1.0.0\n");
    f.write("frontend/index.html", "<p>new frontend</p>\n");
    release_commit(&f, "frontend change", "v1.1.0");
    let plan = f.relctl(&["plan", "v1.1.0"]).expect(0).stdout();
    assert!(
        plan.lines().any(|l| l.contains("inputs-server ") && l.contains("retag (unchanged since v1.0.0)")),
        "{plan}"
    );
    assert!(!plan.contains("rewrites after every release"), "the Dockerfile does not read VERSION:\n{plan}");
    assert_eq!(built(&f.relctl(&["--json", "release", "v1.1.0"]).expect(0)), ["frontend"]);
    assert_eq!(f.digest("server", "v1.1.0"), v1, "server is the v1.0.0 manifest");

    // A root file the Dockerfile does not copy.
    git(&f.work, &["pull", "-q", "--ff-only", "origin", "main"]);
    f.write("README.md", "still not copied\n");
    release_commit(&f, "readme", "v1.2.0");
    assert!(built(&f.relctl(&["--json", "release", "v1.2.0"]).expect(0)).is_empty());
    assert_eq!(f.digest("server", "v1.2.0"), v1);

    // A file under src/: rebuilt.
    git(&f.work, &["pull", "-q", "--ff-only", "origin", "main"]);
    f.write("src/main.txt", "server two\n");
    release_commit(&f, "server change", "v1.3.0");
    assert_eq!(built(&f.relctl(&["--json", "release", "v1.3.0"]).expect(0)), ["server"]);
    assert_ne!(f.digest("server", "v1.3.0"), v1);
    assert_eq!(docker_run(&f.reference("server", "v1.3.0"), &["/bin/busybox", "cat", "/src/main.txt"]), "server two\n");

    // `COPY . .`: the whole context, so any change rebuilds, and the plan says why.
    git(&f.work, &["pull", "-q", "--ff-only", "origin", "main"]);
    f.write("docker/server/Dockerfile", "FROM scratch\nCOPY . .\n");
    release_commit(&f, "copy everything", "v1.4.0");
    assert_eq!(built(&f.relctl(&["--json", "release", "v1.4.0"]).expect(0)), ["server"]);
    git(&f.work, &["pull", "-q", "--ff-only", "origin", "main"]);
    f.write("README.md", "copied now\n");
    release_commit(&f, "readme again", "v1.5.0");
    let plan = f.relctl(&["plan", "v1.5.0"]).expect(0).stdout();
    assert!(
        plan.lines().any(|l| l.contains("inputs-server ") && l.contains("build (inputs: whole context: COPY . .)")),
        "{plan}"
    );
    assert!(plan.contains("server: its build context sends VERSION"), "{plan}");
    assert!(
        plan.lines().any(|l| l.contains("inputs-frontend ") && l.contains("retag (unchanged since v1.4.0)")),
        "{plan}"
    );
    assert_eq!(built(&f.relctl(&["--json", "release", "v1.5.0"]).expect(0)), ["server"]);
}
