//! In-memory fakes of the boundaries a release goes through, for the fast
//! tier: a git remote (tags, a branch with compare-and-swap, files at a
//! commit), a registry (repositories of tags with digests and labels, with
//! failure injection), an engine that "builds" into that registry, and a
//! forge. All of them write to one shared journal, so a test can assert the
//! order in which the world changed.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use crate::docker::{DockerError, ImageBuilder};
use crate::forge::{Forge, ForgeError, RefUpdate, ReleaseLink, ReleaseNotes};
use crate::git::{BuildArgs, ContextSpec, ContextSummary, FileChange, GitError, GitRepo, PathKind, PushOutcome};
use crate::plan::{BuildStep, RemoteTag};
use crate::registry::{Registry, RegistryError};

/// What happened, in order: `build app`, `push app:v1`, `tag app:latest`, `commit VERSION=v1`, `release v1`.
pub type Journal = Arc<Mutex<Vec<String>>>;

fn note(journal: &Journal, line: String) {
    journal.lock().unwrap().push(line);
}

/// A commit: its files and its parent.
#[derive(Clone, Default)]
struct Commit {
    files: BTreeMap<String, Vec<u8>>,
}

/// A git remote and its clone in one: a branch, tags, and commits by id.
pub struct FakeGit {
    journal: Journal,
    state: Mutex<GitState>,
}

#[derive(Default)]
struct GitState {
    commits: BTreeMap<String, Commit>,
    branch: String,
    tags: Vec<(String, String)>,
    /// Pushes to reject before one goes through: each moves the branch first, as another releaser would.
    races: u32,
    next: u32,
}

impl FakeGit {
    /// A branch at one commit holding `files`.
    pub fn new(journal: &Journal, files: &[(&str, &str)]) -> Self {
        let commit = Commit { files: files.iter().map(|(p, c)| (p.to_string(), c.as_bytes().to_vec())).collect() };
        let state =
            GitState { commits: BTreeMap::from([("c0".into(), commit)]), branch: "c0".into(), ..Default::default() };
        Self { journal: journal.clone(), state: Mutex::new(state) }
    }

    /// Tags a new commit with the first commit's files as `name`.
    pub fn tag(&self, name: &str) {
        let mut s = self.state.lock().unwrap();
        let commit = Self::commit(&mut s, "c0", &[]);
        s.tags.push((name.to_string(), commit));
    }

    /// The next `n` VERSION pushes find the branch moved by someone else.
    pub fn race(&self, n: u32) {
        self.state.lock().unwrap().races = n;
    }

    /// A file on the branch's tip.
    pub fn file_on_branch(&self, path: &str) -> Option<String> {
        let s = self.state.lock().unwrap();
        s.commits[&s.branch].files.get(path).map(|b| String::from_utf8_lossy(b).into_owned())
    }

    fn commit(s: &mut GitState, parent: &str, files: &[FileChange]) -> String {
        let mut c = s.commits.get(parent).cloned().unwrap_or_default();
        for f in files {
            c.files.insert(f.path.clone(), f.content.clone());
        }
        s.next += 1;
        let id = format!("c{}", s.next);
        s.commits.insert(id.clone(), c);
        id
    }
}

impl GitRepo for FakeGit {
    fn fetch(&self) -> Result<(), GitError> {
        Ok(())
    }
    fn tags(&self) -> Result<Vec<(String, String)>, GitError> {
        Ok(self.state.lock().unwrap().tags.clone())
    }
    fn head_commit(&self) -> Result<String, GitError> {
        Ok(self.state.lock().unwrap().branch.clone())
    }
    fn file_at(&self, commit: &str, path: &str) -> Result<Option<Vec<u8>>, GitError> {
        Ok(self.state.lock().unwrap().commits.get(commit).and_then(|c| c.files.get(path).cloned()))
    }
    fn dir_exists(&self, _: &str, _: &str) -> Result<bool, GitError> {
        Ok(true)
    }
    fn path_kind(&self, commit: &str, path: &str) -> Result<Option<PathKind>, GitError> {
        Ok(self.file_at(commit, path)?.map(|_| PathKind::File))
    }
    fn branch_tip(&self) -> Result<String, GitError> {
        Ok(self.state.lock().unwrap().branch.clone())
    }
    fn source_url(&self) -> Result<String, GitError> {
        Ok("https://example.test/acme/app".into())
    }
    fn commit_on(&self, parent: &str, files: &[FileChange], _: &str, _: (&str, &str)) -> Result<String, GitError> {
        Ok(Self::commit(&mut self.state.lock().unwrap(), parent, files))
    }
    fn push_branch(&self, commit: &str) -> Result<PushOutcome, GitError> {
        let mut s = self.state.lock().unwrap();
        if s.races > 0 {
            s.races -= 1;
            let tip = s.branch.clone();
            let theirs = FileChange { path: "NOTES".into(), content: format!("{}", s.races).into_bytes() };
            s.branch = Self::commit(&mut s, &tip, &[theirs]);
            note(&self.journal, "someone else moved the branch".into());
            return Ok(PushOutcome::Rejected("not a fast-forward".into()));
        }
        s.branch = commit.to_string();
        let version = s.commits[commit].files.get("VERSION").map(|v| String::from_utf8_lossy(v).trim().to_string());
        note(&self.journal, format!("commit VERSION={}", version.unwrap_or_default()));
        Ok(PushOutcome::Pushed)
    }
    fn context_summary(
        &self,
        commit: &str,
        context: &str,
        _: &str,
        _: &[&str],
        _: Option<&BuildArgs>,
    ) -> Result<ContextSummary, GitError> {
        // Every commit's context differs: each tag's images are built, none retagged.
        Ok(ContextSummary { digest: format!("ctx-{commit}-{context}"), sent: vec![], whole: None })
    }
    fn context(&self, commit: &str, context: &str, dockerfile: &str) -> ContextSpec {
        ContextSpec {
            repo: "/nonexistent".into(),
            commit: commit.into(),
            context: context.into(),
            dockerfile: dockerfile.into(),
        }
    }
}

/// One manifest in the fake registry.
#[derive(Clone, Debug)]
pub struct Manifest {
    pub digest: String,
    pub revision: String,
    pub version: String,
}

/// Repositories (path under the registry) of tags.
pub struct FakeRegistry {
    journal: Journal,
    repos: Mutex<BTreeMap<String, BTreeMap<String, Manifest>>>,
    /// `repository:tag` writes that fail, and how many more times.
    failing: Mutex<BTreeMap<String, u32>>,
    /// Listings of this run, as the real client keeps them: a push by the
    /// engine does not show until [`Registry::forget_listings`]; a copy does.
    listings: Mutex<BTreeMap<String, Vec<String>>>,
    /// The layers of artifacts (signatures), by `repository:tag`.
    artifacts: Mutex<BTreeMap<String, Vec<crate::sign::cosign::Layer>>>,
    /// The platform images of each index pushed, by the index's digest.
    indexes: Mutex<BTreeMap<String, Vec<(String, String)>>>,
}

impl FakeRegistry {
    pub fn new(journal: &Journal) -> Self {
        Self {
            journal: journal.clone(),
            repos: Mutex::default(),
            failing: Mutex::default(),
            listings: Mutex::default(),
            artifacts: Mutex::default(),
            indexes: Mutex::default(),
        }
    }

    pub fn put(&self, repository: &str, tag: &str, manifest: Manifest) {
        self.repos.lock().unwrap().entry(repository.into()).or_default().insert(tag.into(), manifest);
    }

    /// The manifest `tag` (or, as a registry does, a `sha256:` digest) names.
    pub fn get(&self, repository: &str, tag: &str) -> Option<Manifest> {
        let repos = self.repos.lock().unwrap();
        let repo = repos.get(repository)?;
        match tag.starts_with("sha256:") {
            true => repo.values().find(|m| m.digest == tag).cloned(),
            false => repo.get(tag).cloned(),
        }
    }

    /// Deletes `repository:tag` (and the artifact under it), as a registry's manifest DELETE does.
    pub fn delete(&self, repository: &str, tag: &str) {
        self.repos.lock().unwrap().get_mut(repository).map(|r| r.remove(tag));
        self.artifacts.lock().unwrap().remove(&format!("{repository}:{tag}"));
    }

    /// Writes of `repository:tag` fail `times` times (500), then work.
    pub fn fail_writes(&self, repository: &str, tag: &str, times: u32) {
        self.failing.lock().unwrap().insert(format!("{repository}:{tag}"), times);
    }

    fn write(&self, repository: &str, tag: &str, m: Manifest) -> Result<String, RegistryError> {
        if let Some(left) = self.failing.lock().unwrap().get_mut(&format!("{repository}:{tag}")).filter(|n| **n > 0) {
            *left -= 1;
            return Err(RegistryError::Status {
                registry: "fake".into(),
                repository: repository.into(),
                op: format!("put manifest {tag} of"),
                status: 500,
                message: "injected".into(),
            });
        }
        let digest = m.digest.clone();
        self.put(repository, tag, m);
        Ok(digest)
    }
}

impl Registry for FakeRegistry {
    async fn tags(&self, repository: &str) -> Result<Vec<String>, RegistryError> {
        let live =
            || self.repos.lock().unwrap().get(repository).map(|r| r.keys().cloned().collect()).unwrap_or_default();
        Ok(self.listings.lock().unwrap().entry(repository.to_string()).or_insert_with(live).clone())
    }
    fn forget_listings(&self) {
        self.listings.lock().unwrap().clear();
    }
    async fn observe(
        &self,
        repository: &str,
        tags: &[String],
        _: &[&str],
    ) -> Result<BTreeMap<String, RemoteTag>, RegistryError> {
        // As the real client: only tags in this run's listing are looked at.
        let listed = self.tags(repository).await?;
        let remote = |m: Manifest| RemoteTag { digest: m.digest, revision: Some(m.revision), inputs: None };
        let known = tags.iter().filter(|t| listed.contains(t));
        Ok(known.filter_map(|t| self.get(repository, t).map(|m| (t.clone(), remote(m)))).collect())
    }
    async fn copy_tag(&self, repository: &str, from: &str, to: &str) -> Result<String, RegistryError> {
        let m = self.get(repository, from).ok_or_else(|| RegistryError::Status {
            registry: "fake".into(),
            repository: repository.into(),
            op: format!("read manifest {from} of"),
            status: 404,
            message: "not found".into(),
        })?;
        let digest = self.write(repository, to, m)?;
        if let Some(listed) = self.listings.lock().unwrap().get_mut(repository).filter(|l| !l.iter().any(|t| t == to)) {
            listed.push(to.to_string());
        }
        note(&self.journal, format!("tag {repository}:{to}"));
        Ok(digest)
    }
    async fn inspect_tag(&self, repository: &str, tag: &str) -> Result<Option<RemoteTag>, RegistryError> {
        Ok(self.get(repository, tag).map(|m| RemoteTag { digest: m.digest, revision: Some(m.revision), inputs: None }))
    }
    async fn tag_version(&self, repository: &str, tag: &str) -> Result<Option<String>, RegistryError> {
        Ok(self.get(repository, tag).map(|m| m.version))
    }
    async fn put_artifact(
        &self,
        repository: &str,
        artifact: &crate::sign::cosign::Artifact,
    ) -> Result<String, RegistryError> {
        let digest = crate::sign::cosign::sha256(&crate::sign::cosign::manifest(artifact));
        let m = Manifest { digest: digest.clone(), revision: String::new(), version: String::new() };
        self.write(repository, &artifact.tag, m)?;
        self.artifacts.lock().unwrap().insert(format!("{repository}:{}", artifact.tag), artifact.layers.clone());
        if let Some(listed) = self.listings.lock().unwrap().get_mut(repository) {
            listed.push(artifact.tag.clone());
        }
        note(&self.journal, format!("artifact {repository}:{}", artifact.tag));
        Ok(digest)
    }
    async fn get_artifact(
        &self,
        repository: &str,
        tag: &str,
    ) -> Result<Option<Vec<crate::sign::cosign::Layer>>, RegistryError> {
        Ok(self.artifacts.lock().unwrap().get(&format!("{repository}:{tag}")).cloned())
    }
    async fn describe(
        &self,
        repository: &str,
        reference: &str,
    ) -> Result<Option<crate::registry::index::Descriptor>, RegistryError> {
        Ok(self.get(repository, reference).map(|m| crate::registry::index::Descriptor {
            media_type: "application/vnd.docker.distribution.manifest.v2+json".into(),
            size: m.digest.len() as u64,
            digest: m.digest,
        }))
    }
    async fn put_manifest(
        &self,
        repository: &str,
        tag: &str,
        _: &str,
        manifest: Vec<u8>,
    ) -> Result<String, RegistryError> {
        let digest = crate::sign::cosign::sha256(&manifest);
        let json: serde_json::Value = serde_json::from_slice(&manifest).unwrap_or_default();
        let note_of = |k: &str| json["annotations"][k].as_str().unwrap_or_default().to_string();
        let m = Manifest {
            digest: digest.clone(),
            revision: note_of(crate::plan::labels::REVISION),
            version: note_of(crate::plan::labels::VERSION),
        };
        self.write(repository, tag, m)?;
        let platforms = crate::registry::index::platforms(&manifest).unwrap_or_default();
        self.indexes.lock().unwrap().insert(digest.clone(), platforms);
        if let Some(listed) = self.listings.lock().unwrap().get_mut(repository) {
            listed.push(tag.to_string());
        }
        note(&self.journal, format!("index {repository}:{tag}"));
        Ok(digest)
    }
    async fn platforms(
        &self,
        repository: &str,
        reference: &str,
    ) -> Result<Option<Vec<(String, String)>>, RegistryError> {
        let Some(m) = self.get(repository, reference) else { return Ok(None) };
        Ok(Some(self.indexes.lock().unwrap().get(&m.digest).cloned().unwrap_or_default()))
    }
}

type Built = (String, String, Option<String>);

/// An engine whose builds succeed (or fail for the named images, or for
/// references whose tag starts with a named release, e.g. `v1.1.0`) and whose
/// pushes write a manifest with the build's labels into the fake registry.
pub struct FakeEngine {
    journal: Journal,
    registry: Arc<FakeRegistry>,
    pub failing: Vec<String>,
    /// What each reference was built as: (revision, version, platform).
    built: Mutex<BTreeMap<String, Built>>,
}

impl FakeEngine {
    pub fn new(journal: &Journal, registry: &Arc<FakeRegistry>) -> Self {
        Self { journal: journal.clone(), registry: registry.clone(), failing: vec![], built: Mutex::default() }
    }
}

impl ImageBuilder for FakeEngine {
    async fn build(&self, step: &BuildStep, _: ContextSpec) -> Result<(), DockerError> {
        let of_release =
            |f: &str| step.reference.ends_with(&format!(":{f}")) || step.reference.contains(&format!("-{f}-"));
        if self.failing.iter().any(|f| *f == step.image || *f == step.id || of_release(f)) {
            note(&self.journal, format!("build {} failed", step.image));
            return Err(DockerError::Build { image: step.image.clone(), message: "RUN exited 3".into() });
        }
        let label = |k: &str| step.labels.get(k).cloned().unwrap_or_default();
        let labels = (label(crate::plan::labels::REVISION), label(crate::plan::labels::VERSION), step.platform.clone());
        self.built.lock().unwrap().insert(step.reference.clone(), labels);
        note(&self.journal, format!("build {}", step.id));
        Ok(())
    }
    async fn push(&self, image: &str, repository: &str, tag: &str) -> Result<String, DockerError> {
        let reference = format!("{repository}:{tag}");
        let (revision, version, platform) = self.built.lock().unwrap().get(&reference).cloned().unwrap_or_default();
        let path = repository.split_once('/').map_or(repository, |(_, p)| p);
        // `image@platform` for one platform of a multi-platform image.
        let image = image.split('@').next().unwrap_or(image);
        let digest = format!("sha256:{image}-{version}{}", platform.map(|p| format!("-{p}")).unwrap_or_default());
        self.registry.put(path, tag, Manifest { digest: digest.clone(), revision, version });
        note(&self.journal, format!("push {path}:{tag}"));
        Ok(digest)
    }
}

/// A forge that records its Releases and fails them when told to.
pub struct FakeForge {
    journal: Journal,
    pub fail: bool,
}

impl FakeForge {
    pub fn new(journal: &Journal) -> Self {
        Self { journal: journal.clone(), fail: false }
    }
}

impl Forge for FakeForge {
    fn name(&self) -> String {
        "acme/app".into()
    }
    async fn upsert_release(&self, notes: &ReleaseNotes) -> Result<ReleaseLink, ForgeError> {
        if self.fail {
            return Err(ForgeError::Api {
                operation: "create release".into(),
                status: 500,
                message: "injected".into(),
            });
        }
        note(&self.journal, format!("release {} with {} images", notes.tag, notes.images.len()));
        Ok(ReleaseLink { id: 1, url: format!("https://example.test/releases/{}", notes.tag), created: true })
    }
    async fn branch_tip(&self, _: &str) -> Result<String, ForgeError> {
        unreachable!("the fast tier commits through git")
    }
    async fn file_at(&self, _: &str, _: &str) -> Result<Option<Vec<u8>>, ForgeError> {
        unreachable!("the fast tier commits through git")
    }
    async fn commit_onto(
        &self,
        _: &str,
        _: &str,
        _: &[FileChange],
        _: &str,
        _: (&str, &str),
    ) -> Result<RefUpdate, ForgeError> {
        unreachable!("the fast tier commits through git")
    }
}
