//! `relctl serve` in tests: a process on a free 127.0.0.1 port (killed on
//! drop, its log kept in the fixture), curl requests, its resident memory, and
//! raw TCP connections that misbehave (slow headers, held-open bodies).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::Fixture;

/// A `relctl serve` process, killed on drop.
pub struct Server {
    pub child: Child,
    pub base: String,
    pub port: u16,
    log: PathBuf,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    /// Starts `relctl serve --listen 127.0.0.1:<free port> <args>` with `envs`
    /// and waits until `/healthz` answers 200.
    pub fn start(f: &Fixture, args: &[&str], envs: &[(&str, &str)]) -> Server {
        Self::start_with_open_files(f, None, args, envs)
    }

    /// [`Server::start`] with the soft open-file limit set to `soft` (util-linux
    /// `prlimit`, which execs serve: the pid stays serve's), if given.
    pub fn start_with_open_files(f: &Fixture, soft: Option<u64>, args: &[&str], envs: &[(&str, &str)]) -> Server {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let listen = format!("127.0.0.1:{port}");
        let log = f.dir.path().join(format!("serve-{port}.log"));
        let mut all = vec!["serve", "--listen", &listen];
        all.extend(args);
        let mut cmd = f.command(&all);
        cmd.envs(envs.iter().copied());
        if let Some(soft) = soft {
            let mut wrapped = Command::new("prlimit");
            wrapped.arg(format!("--nofile={soft}:")).arg("--").arg(cmd.get_program()).args(cmd.get_args());
            wrapped.current_dir(cmd.get_current_dir().unwrap());
            for (k, v) in cmd.get_envs() {
                match v {
                    Some(v) => wrapped.env(k, v),
                    None => wrapped.env_remove(k),
                };
            }
            cmd = wrapped;
        }
        let child = cmd.stdout(Stdio::null()).stderr(std::fs::File::create(&log).unwrap()).spawn().unwrap();
        let server = Server { child, base: format!("http://{listen}"), port, log };
        let deadline = Instant::now() + Duration::from_secs(30);
        while curl(&[&format!("{}/healthz", server.base)]).0 != 200 {
            assert!(Instant::now() < deadline, "serve did not become healthy:\n{}", server.log());
            std::thread::sleep(Duration::from_millis(100));
        }
        server
    }

    /// The process's soft open-file limit.
    pub fn open_files_limit(&self) -> u64 {
        let limits = std::fs::read_to_string(format!("/proc/{}/limits", self.child.id())).unwrap();
        let line = limits.lines().find(|l| l.starts_with("Max open files")).expect("Max open files");
        line.split_whitespace().nth(3).unwrap().parse().unwrap()
    }

    /// What serve logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits until serve has logged `n` finished reconciles.
    pub fn wait_reconciles(&self, n: usize, within: Duration) {
        let deadline = Instant::now() + within;
        while self.log().matches(" reconciled ").count() < n {
            assert!(Instant::now() < deadline, "serve did not reconcile {n} times:\n{}", self.log());
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The process's resident set size (VmRSS), in KiB.
    pub fn rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        let line = status.lines().find(|l| l.starts_with("VmRSS:")).expect("VmRSS in /proc/PID/status");
        line.split_whitespace().nth(1).unwrap().parse().unwrap()
    }

    /// `GET /healthz` with a 5 s limit: the status (0 if none) and how long it took.
    pub fn healthz(&self) -> (u16, Duration) {
        let started = Instant::now();
        let (code, _) = curl(&["--max-time", "5", &format!("{}/healthz", self.base)]);
        (code, started.elapsed())
    }

    /// A TCP connection to the server.
    pub fn connect(&self) -> TcpStream {
        TcpStream::connect(("127.0.0.1", self.port)).unwrap()
    }
}

/// `curl -s` with `args`: the HTTP status (0 if none) and the body.
pub fn curl(args: &[&str]) -> (u16, String) {
    let out = Command::new("curl").args(["-s", "-o", "/dev/stderr", "-w", "%{http_code}"]).args(args).output().unwrap();
    (String::from_utf8_lossy(&out.stdout).parse().unwrap_or(0), String::from_utf8_lossy(&out.stderr).into_owned())
}

/// The head of a `POST /webhook` announcing a `len`-byte body, with `signature` as `X-Hub-Signature-256`.
pub fn webhook_head(len: usize, signature: Option<&str>) -> String {
    let sig = signature.map(|s| format!("X-Hub-Signature-256: {s}\r\n")).unwrap_or_default();
    format!(
        "POST /webhook HTTP/1.1\r\nHost: relctl\r\nX-GitHub-Event: push\r\nContent-Type: application/json\r\n{sig}Content-Length: {len}\r\n\r\n"
    )
}

/// Writes up to `len` body bytes to every stream, a chunk at a time and
/// round-robin, without blocking on a stream the server does not read; stops
/// after `within`. Returns the bytes each stream took.
pub fn feed(streams: &mut [TcpStream], len: usize, within: Duration) -> Vec<usize> {
    let chunk = vec![b' '; 64 * 1024];
    let mut sent = vec![0usize; streams.len()];
    let mut done = vec![false; streams.len()];
    for s in streams.iter() {
        s.set_nonblocking(true).unwrap();
    }
    let deadline = Instant::now() + within;
    while Instant::now() < deadline && done.iter().any(|d| !d) {
        for (i, s) in streams.iter_mut().enumerate() {
            if done[i] {
                continue;
            }
            let n = chunk.len().min(len - sent[i]);
            match s.write(&chunk[..n]) {
                Ok(w) => sent[i] += w,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(_) => done[i] = true, // the server closed it
            }
            done[i] |= sent[i] == len;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    for s in streams.iter() {
        s.set_nonblocking(false).unwrap();
    }
    sent
}

/// Reads until the server closes `stream`; `None` if it is still open after `within`.
/// Whatever the server wrote before closing is returned with the time it took.
pub fn wait_closed(stream: &mut TcpStream, within: Duration) -> Option<(Duration, String)> {
    let started = Instant::now();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let left = within.checked_sub(started.elapsed())?;
        stream.set_read_timeout(Some(left.max(Duration::from_millis(1)))).unwrap();
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {
                return None;
            }
            Err(_) => break, // reset by the server
        }
    }
    Some((started.elapsed(), String::from_utf8_lossy(&got).into_owned()))
}
