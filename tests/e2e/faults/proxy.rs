//! A TCP proxy in front of the test registry that breaks blob uploads: it
//! forwards bytes both ways and, on a connection that starts a blob upload
//! (`PATCH /v2/...` or `PUT /v2/.../blobs/uploads/...`), either stops
//! forwarding (a silent stall) or closes both sides (a reset), until healed.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Every upload stalls until [`Proxy::heal`].
    Stall,
    /// The first upload's connection is closed in the middle.
    ResetOnce,
}

struct State {
    fault: Fault,
    healed: AtomicBool,
    faults: AtomicU32,
}

pub struct Proxy {
    /// `127.0.0.1:PORT`, to use as the registry host.
    pub addr: String,
    state: Arc<State>,
}

impl Proxy {
    pub fn start(upstream: &str, fault: Fault) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let state = Arc::new(State { fault, healed: AtomicBool::new(false), faults: AtomicU32::new(0) });
        let (s, upstream) = (state.clone(), upstream.to_string());
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let Ok(server) = TcpStream::connect(&upstream) else { continue };
                let s = s.clone();
                std::thread::spawn(move || pump(client, server, s));
            }
        });
        Proxy { addr, state }
    }

    /// Uploads go through untouched from now on; stalled connections are closed.
    pub fn heal(&self) {
        self.state.healed.store(true, Ordering::SeqCst);
    }

    /// How many uploads were broken.
    pub fn faults(&self) -> u32 {
        self.state.faults.load(Ordering::SeqCst)
    }
}

fn pump(client: TcpStream, server: TcpStream, state: Arc<State>) {
    let (mut c_read, mut s_write) = (client.try_clone().unwrap(), server.try_clone().unwrap());
    let (mut s_read, mut c_write) = (server.try_clone().unwrap(), client.try_clone().unwrap());
    let back = std::thread::spawn(move || {
        let _ = std::io::copy(&mut s_read, &mut c_write);
        let _ = c_write.shutdown(Shutdown::Write);
    });
    // The last bytes seen, so a request line split across two reads is found.
    let mut seen: Vec<u8> = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match c_read.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if !state.healed.load(Ordering::SeqCst) {
            seen.extend_from_slice(&buf[..n]);
            let upload = find(&seen, b"PATCH /v2/") || (find(&seen, b"PUT /v2/") && find(&seen, b"/blobs/uploads/"));
            seen.drain(..seen.len().saturating_sub(256));
            let first = state.fault == Fault::Stall || state.faults.load(Ordering::SeqCst) == 0;
            if upload && first {
                state.faults.fetch_add(1, Ordering::SeqCst);
                // Half the bytes go through, then the fault.
                let _ = s_write.write_all(&buf[..n / 2]);
                match state.fault {
                    Fault::ResetOnce => break,
                    Fault::Stall => {
                        while !state.healed.load(Ordering::SeqCst) {
                            // Read nothing more: the sender's buffers fill and it waits.
                            std::thread::sleep(Duration::from_millis(100));
                            if c_read.peek(&mut [0u8; 1]).is_ok_and(|n| n == 0) {
                                break;
                            }
                        }
                        break;
                    }
                }
            }
        }
        if s_write.write_all(&buf[..n]).is_err() {
            break;
        }
    }
    let _ = client.shutdown(Shutdown::Both);
    let _ = server.shutdown(Shutdown::Both);
    let _ = back.join();
}

fn find(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}
