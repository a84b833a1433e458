//! Fast releases on the real engine and registry: only images whose inputs
//! changed are built; the rest get the new tag by registry-side manifest copy.

use crate::common::*;
use std::io::Read as _;

const UNCHANGED: [&str; 3] = ["server", "agent", "worker"];

/// Blob uploads (layer PUT/PATCH/POST) to `image`'s repository logged since `offset`.
fn uploads(f: &Fixture, offset: u64, image: &str) -> usize {
    registry_writes_since(offset, &f.namespace)
        .iter()
        .filter(|l| l.contains(&format!("/{}/blobs/uploads", f.repo(image))))
        .count()
}

#[test]
fn only_changed_images_and_their_children_are_rebuilt() {
    let f = Fixture::example("incr");
    f.tag("v1.0.0");
    f.relctl(&["release", "v1.0.0"]).expect(0);

    // As a maintainer would: pull relctl's VERSION commit, change the frontend, tag.
    // A frontend change rebuilds frontend and nginx (built on it); the rest are retagged.
    git(&f.work, &["pull", "-q", "--ff-only", "origin", "main"]);
    assert_eq!(std::fs::read_to_string(f.work.join("VERSION")).unwrap(), "v1.0.0\n");
    f.write("frontend/index.html", "<p>new frontend</p>\n");
    f.commit("frontend change");
    f.tag("v1.1.0");
    let plan = f.relctl(&["plan", "v1.1.0"]).expect(0).stdout();
    for image in UNCHANGED {
        assert!(
            plan.lines()
                .any(|l| l.contains(&format!("example-{image} ")) && l.contains("retag (unchanged since v1.0.0)")),
            "{image}:\n{plan}"
        );
    }
    let offset = registry_log_offset();
    let run = f.relctl(&["--json", "release", "v1.1.0"]).expect(0);
    assert_eq!(built(&run), ["frontend", "nginx"]);
    for image in UNCHANGED {
        assert_eq!(f.digest(image, "v1.1.0"), f.digest(image, "v1.0.0"), "{image} is the same manifest");
        assert_eq!(uploads(&f, offset, image), 0, "{image}: no layer uploaded");
    }
    assert_ne!(f.digest("nginx", "v1.1.0"), f.digest("nginx", "v1.0.0"));
    assert!(docker_run(&f.reference("nginx", "v1.1.0"), &["cat", "/srv/www/index.html"]).contains("new frontend"));
    assert_eq!(f.digest("server", "latest"), f.digest("server", "v1.1.0"));
    assert_eq!(f.remote_file("VERSION").as_deref(), Some("v1.1.0\n"));
    f.relctl(&["release", "v1.1.0"])
        .expect(0)
        .stdout()
        .contains("nothing to do")
        .then_some(())
        .expect("a retagged release reruns as a no-op");

    // A change .dockerignore excludes rebuilds nothing.
    f.write("server/NOTES.md", "excluded by .dockerignore\n");
    f.commit("notes");
    f.tag("v1.1.1");
    assert!(built(&f.relctl(&["--json", "release", "v1.1.1"]).expect(0)).is_empty());

    // A changed build argument rebuilds that image only.
    let cfg = std::fs::read_to_string(f.work.join("release.yaml")).unwrap().replace("MODE: prod", "MODE: staging");
    f.write("release.yaml", &cfg);
    f.commit("staging mode");
    f.tag("v1.2.0");
    assert_eq!(built(&f.relctl(&["--json", "release", "v1.2.0"]).expect(0)), ["worker"]);
    assert_eq!(docker_run(&f.reference("worker", "v1.2.0"), &["cat", "/app/mode"]), "mode=staging\n");

    // `unchanged: rebuild` rebuilds everything.
    let cfg = std::fs::read_to_string(f.work.join("release.yaml"))
        .unwrap()
        .replace("network: none", "network: none, unchanged: rebuild");
    f.write("release.yaml", &cfg);
    f.commit("always rebuild");
    f.tag("v1.3.0");
    assert_eq!(
        built(&f.relctl(&["--json", "release", "v1.3.0"]).expect(0)),
        ["agent", "frontend", "nginx", "server", "worker"]
    );
}

/// A child rebuilt only because its parent changed: the files of its own
/// context carry the time that context last changed, not the tag's, so
/// `COPY` makes the layer of the previous release again, byte for byte, and
/// the engine does not upload it, with either builder.
#[test]
fn a_child_rebuilt_for_its_parent_makes_its_own_layer_again() {
    for builder in ["buildkit", "classic"] {
        let f = Fixture::empty(builder);
        let cfg = format!(
            "registry: {}\nnamespace: {}\nproject: layers\nbuild: {{ retries: 0, builder: {builder} }}\nimages:\n  base: {{ context: base }}\n  app: {{ context: app, depends_on: [base] }}\n",
            f.registry, f.namespace
        );
        f.write("release.yaml", &cfg);
        std::fs::create_dir_all(f.work.join("base")).unwrap();
        std::fs::rename(f.work.join("bin/busybox"), f.work.join("base/busybox")).unwrap();
        f.write("base/Dockerfile", "FROM scratch\nCOPY busybox /bin/busybox\nCOPY base.txt /base.txt\n");
        f.write("app/Dockerfile", "ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\nCOPY app.txt /app.txt\n");
        // Content of this run only: no layer of an earlier test run can be reused.
        f.write("base/base.txt", &format!("base {}\n", f.namespace));
        f.write("app/app.txt", &format!("app {}\n", f.namespace));
        f.commit_dated("two images", "2026-01-02T03:04:05Z");
        git(&f.work, &["push", "-q", "origin", "main"]);
        f.tag("v1.0.0");
        f.relctl(&["release", "v1.0.0"]).expect(0);

        f.write("base/base.txt", "base two\n");
        f.commit("base change");
        f.tag("v1.1.0");
        let offset = registry_log_offset();
        assert_eq!(built(&f.relctl(&["--json", "release", "v1.1.0"]).expect(0)), ["app", "base"], "{builder}");
        let (before, after) = (f.layers("app", "v1.0.0"), f.layers("app", "v1.1.0"));
        assert_ne!(before[..before.len() - 1], after[..after.len() - 1], "{builder}: app is built on the new base");
        assert_eq!(before.last(), after.last(), "{builder}: the layer of app.txt is the one of v1.0.0");
        let own = after.last().unwrap();
        let writes = registry_writes_since(offset, &f.namespace);
        assert!(!writes.iter().any(|l| l.contains(own.as_str())), "{builder}: {own} uploaded again: {writes:#?}");
        // 2026-01-02T03:04:05Z, when app/ last changed.
        let stat = docker_run(&f.reference("app", "v1.1.0"), &["/bin/busybox", "stat", "-c", "%Y", "/app.txt"]);
        assert_eq!(stat.trim(), "1767323045", "{builder}");
    }
}

/// A context that sends VERSION changes with relctl's own VERSION commit,
/// so its image builds in every release: the plan says so, and how to stop it.
#[test]
fn a_context_that_sends_version_is_pointed_out() {
    let f = Fixture::single("sendsversion");
    // The Dockerfile copies the whole context: VERSION is one of its inputs.
    f.write("Dockerfile", "FROM scratch\nCOPY . /ctx/\n");
    f.commit("copy the whole context");
    git(&f.work, &["push", "-q", "origin", "main"]);
    f.tag("v1.0.0");
    f.relctl(&["release", "v1.0.0"]).expect(0);
    git(&f.work, &["pull", "-q", "--ff-only", "origin", "main"]);
    f.tag("v1.0.1");
    let plan = f.relctl(&["plan", "v1.0.1"]).expect(0).stdout();
    assert!(plan.contains("app: its build context sends VERSION, which relctl rewrites after every release, so app is built again in every release; list VERSION in .dockerignore unless the build reads it"), "{plan}");

    f.write(".dockerignore", "VERSION\n");
    f.commit("keep VERSION out of the context");
    f.tag("v1.0.2");
    let plan = f.relctl(&["plan", "v1.0.2"]).expect(0).stdout();
    assert!(!plan.contains("VERSION in .dockerignore"), "{plan}");
}

#[test]
fn built_images_are_uploaded_once_under_a_staging_tag_and_promoted_by_manifest_copy() {
    let f = Fixture::example("stage");
    let commit = f.tag("v1.0.0");
    let run = f.relctl(&["release", "v1.0.0", "-v"]).expect(0);
    let stage = format!("relctl-stage-v1.0.0-{}", &commit[..12]);
    for image in IMAGES {
        assert_eq!(f.staging_tags(image), std::slice::from_ref(&stage), "{image}");
        let staged = f.digest(image, &stage);
        assert!(staged.is_some(), "{image}");
        assert_eq!(f.digest(image, "v1.0.0"), staged, "{image}: the version tag is the staged manifest");
        assert_eq!(f.digest(image, "latest"), staged, "{image}");
    }
    assert!(run.stderr().contains("server: uploaded sha256:"), "{}", run.stderr());

    // `stage: false`: uploads wait for every build, and no staging tag is written.
    let cfg = std::fs::read_to_string(f.work.join("release.yaml")).unwrap();
    f.write("release.yaml", &cfg.replace("build: {", "build: { stage: false,"));
    f.write("server/release.txt", "server two\n");
    let commit = f.commit("server change, no staging");
    f.tag("v1.1.0");
    f.relctl(&["release", "v1.1.0"]).expect(0);
    assert!(f.tags("server").contains(&"v1.1.0".to_string()));
    assert!(!f.staging_tags("server").iter().any(|t| t.ends_with(&commit[..12])), "{:?}", f.staging_tags("server"));
}

#[test]
fn progress_is_live_lines_on_a_terminal_and_plain_lines_otherwise() {
    let f = Fixture::example("progress");
    f.tag("v1.0.0");
    let (ok, drawn) = f.relctl_on_terminal(&["release", "v1.0.0"], &[]);
    assert!(ok, "{drawn}");
    assert!(drawn.contains("\x1b[2K"), "live lines redraw in place: {drawn}");
    for image in IMAGES {
        assert!(drawn.contains(&format!("{image:<12} done v1.0.0 sha256:")), "{image}: {drawn}");
    }

    f.write("frontend/index.html", "<p>progress</p>\n");
    f.commit("frontend change");
    f.tag("v1.1.0");
    let err = f.relctl(&["release", "v1.1.0"]).expect(0).stderr();
    assert!(!err.contains('\x1b'), "no escapes when stderr is not a terminal: {err}");
    let at = |line: &str| err.find(line).unwrap_or_else(|| panic!("no `{line}` in:\n{err}"));
    assert!(at("frontend: queued") < at("frontend: building"));
    assert!(at("frontend: building") < at("frontend: uploaded sha256:"));
    assert!(at("frontend: uploaded sha256:") < at("phase 2/5"));
    assert!(at("phase 2/5") < at("frontend: done v1.1.0 sha256:"));
    for image in UNCHANGED {
        at(&format!("{image}: retagged (unchanged since v1.0.0)"));
        at(&format!("{image}: done v1.1.0 sha256:"));
    }
}

/// A context far bigger than the memory bound, with one file bigger than the
/// bound, packed as a clone packs it: that file whole in one release and
/// as a delta of it in the other (git stores the older version as a
/// delta). Both tars are streamed from the pack, so relctl's memory does not
/// grow with a file's size or the context's (the benchmark measures a 1 GiB
/// context).
#[test]
fn a_big_context_streams_without_growing_relctl_memory() {
    // 160 + 4 x 8 = 192 MiB, above the 150 MiB bound.
    const FILES_MIB: [u64; 5] = [160, 8, 8, 8, 8];
    let f = Fixture::single("bigcontext");
    git(&f.work, &["config", "core.compression", "0"]);
    std::fs::create_dir_all(f.work.join("big")).unwrap();
    let mut random = std::fs::File::open("/dev/urandom").unwrap();
    for (n, mib) in FILES_MIB.iter().enumerate() {
        let mut part = std::fs::File::create(f.work.join(format!("big/part{n}.bin"))).unwrap();
        std::io::copy(&mut (&mut random).take(mib << 20), &mut part).unwrap();
    }
    f.write("Dockerfile", "FROM scratch\nCOPY app.txt /app.txt\n");
    f.commit("a big context");
    f.tag("v1.0.0");
    // The next version changes 100 bytes of the big file.
    let mut big = std::fs::OpenOptions::new().write(true).open(f.work.join("big/part0.bin")).unwrap();
    std::io::Seek::seek(&mut big, std::io::SeekFrom::Start(80 << 20)).unwrap();
    std::io::Write::write_all(&mut big, &[b'x'; 100]).unwrap();
    f.commit("100 bytes of the big file");
    f.tag("v1.1.0");
    git(&f.work, &["repack", "-a", "-d", "-f", "-q"]);
    let old = git(&f.work, &["rev-parse", "v1.0.0:big/part0.bin"]);
    let stored = git(&f.work, &["cat-file", "--batch-all-objects", "--batch-check=%(objectname) %(deltabase)"]);
    let base = stored.lines().find_map(|l| l.strip_prefix(old.trim())).expect("the old version is in the pack");
    assert_ne!(base.trim(), "0".repeat(40), "the old version is stored as a delta");

    for tag in ["v1.0.0", "v1.1.0"] {
        let peak_kib = peak_rss_kib(f.command(&["-q", "release", tag]));
        let context_mib: u64 = FILES_MIB.iter().sum();
        assert!(peak_kib < 150 * 1024, "{tag}: relctl's peak RSS {peak_kib} KiB for a {context_mib} MiB context");
    }
    assert_eq!(f.tags("app"), ["latest", "v1.0.0", "v1.1.0"]);
}

/// Runs `command` to success and returns its peak RSS (VmHWM), read from /proc while it runs.
fn peak_rss_kib(mut command: std::process::Command) -> u64 {
    let mut child = command.stdout(std::process::Stdio::null()).spawn().unwrap();
    let status_file = format!("/proc/{}/status", child.id());
    let mut peak_kib = 0u64;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        let hwm = std::fs::read_to_string(&status_file).ok().and_then(|s| {
            s.lines().find_map(|l| l.strip_prefix("VmHWM:")).and_then(|v| v.trim().trim_end_matches(" kB").parse().ok())
        });
        peak_kib = peak_kib.max(hwm.unwrap_or(0));
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    assert!(status.success());
    assert!(peak_kib > 0, "read relctl's VmHWM while it ran");
    peak_kib
}
