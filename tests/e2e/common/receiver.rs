//! A webhook receiver for the notification tests: an HTTP/1.1 server on a
//! free 127.0.0.1 port (std threads, one request per connection) that keeps
//! every JSON body it is sent and answers from a script: a status code, or
//! no answer at all. Stopped on drop.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How the receiver answers one request.
#[derive(Debug, Clone, Copy)]
pub enum Reply {
    Status(u16),
    /// Reads the request, then holds the connection open without a word.
    Never,
}

pub struct Receiver {
    /// `http://127.0.0.1:PORT/hook/SECRET`: the secret part must never show in relctl's output.
    pub url: String,
    pub secret: String,
    bodies: Arc<Mutex<Vec<serde_json::Value>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Reads one request (head, then `Content-Length` bytes of body); `None` if the connection broke first.
fn read_request(stream: &mut TcpStream) -> Option<Vec<u8>> {
    stream.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    let mut got = Vec::new();
    let mut buf = [0u8; 8192];
    let head_end = loop {
        if let Some(i) = got.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let n = stream.read(&mut buf).ok().filter(|n| *n > 0)?;
        got.extend_from_slice(&buf[..n]);
    };
    let head = String::from_utf8_lossy(&got[..head_end]).to_ascii_lowercase();
    let len: usize =
        head.lines().find_map(|l| l.strip_prefix("content-length:")).and_then(|v| v.trim().parse().ok()).unwrap_or(0);
    while got.len() < head_end + len {
        let n = stream.read(&mut buf).ok().filter(|n| *n > 0)?;
        got.extend_from_slice(&buf[..n]);
    }
    Some(got[head_end..head_end + len].to_vec())
}

impl Receiver {
    /// Answers the first requests as `script` says, every later one 200.
    pub fn start(script: &[Reply]) -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let secret = format!("s3cret-{}-{}", std::process::id(), port);
        let url = format!("http://127.0.0.1:{port}/hook/{secret}");
        let bodies: Arc<Mutex<Vec<serde_json::Value>>> = Arc::default();
        let stop = Arc::new(AtomicBool::new(false));
        let script = Arc::new(Mutex::new(script.to_vec()));
        let (b, s) = (bodies.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            let mut connections = Vec::new();
            while !s.load(Ordering::SeqCst) {
                let Ok((mut stream, _)) = listener.accept() else {
                    std::thread::sleep(Duration::from_millis(10));
                    continue;
                };
                let (b, s, script) = (b.clone(), s.clone(), script.clone());
                connections.push(std::thread::spawn(move || {
                    stream.set_nonblocking(false).unwrap();
                    let Some(body) = read_request(&mut stream) else { return };
                    let reply = {
                        let mut script = script.lock().unwrap();
                        if script.is_empty() { Reply::Status(200) } else { script.remove(0) }
                    };
                    b.lock().unwrap().push(serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null));
                    match reply {
                        Reply::Status(code) => {
                            let answer =
                                format!("HTTP/1.1 {code} X\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok");
                            let _ = stream.write_all(answer.as_bytes());
                        }
                        Reply::Never => {
                            while !s.load(Ordering::SeqCst) {
                                std::thread::sleep(Duration::from_millis(50));
                            }
                        }
                    }
                }));
            }
            for c in connections {
                let _ = c.join();
            }
        });
        Receiver { url, secret, bodies, stop, thread: Some(thread) }
    }

    /// Every body received so far.
    pub fn bodies(&self) -> Vec<serde_json::Value> {
        self.bodies.lock().unwrap().clone()
    }

    /// Waits until `n` bodies arrived (at most `within`), then returns them all.
    pub fn wait_for(&self, n: usize, within: Duration) -> Vec<serde_json::Value> {
        let deadline = Instant::now() + within;
        while self.bodies().len() < n && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        self.bodies()
    }
}

/// `release.yaml`'s `notify:` block for `entries` of (url, format, events).
pub fn notify_yaml(entries: &[(&str, &str, &str)]) -> String {
    let mut out = String::from("notify:\n");
    for (url, format, on) in entries {
        out += &format!("  - {{ url: '{url}', format: {format}, on: [{on}] }}\n");
    }
    out
}
