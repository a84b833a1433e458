//! Docker credential helpers: `docker-credential-<name> get`, the server URL
//! on stdin, `{"ServerURL","Username","Secret"}` on stdout, as the docker CLI
//! runs them. Bounded in time (a helper waiting for a passphrase prompt would
//! hang the release), and nothing the helper prints reaches an error: only
//! its exit status and the first line of stderr, which helpers use for
//! "credentials not found".

use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use secrecy::SecretString;

/// How long a helper may take.
const HELPER_TIMEOUT: Duration = Duration::from_secs(30);

/// What a helper answered.
#[derive(Debug)]
pub enum Answer {
    Found {
        username: String,
        secret: SecretString,
    },
    /// It has nothing for this server (or answered with empty credentials).
    NotFound,
    /// The binary is not on PATH.
    Missing,
    /// It failed; the first line it wrote to stderr.
    Failed(String),
    /// Its output was not the JSON the protocol says.
    Garbage,
}

/// Runs `docker-credential-<helper> get` for `server`.
pub fn get(helper: &str, server: &str) -> Answer {
    let program = format!("docker-credential-{helper}");
    let child =
        Command::new(&program).arg("get").stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn();
    let mut child = match child {
        Ok(c) => c,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Answer::Missing,
        Err(e) => return Answer::Failed(format!("cannot start {program}: {e}")),
    };
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(server.as_bytes());
    }
    let started = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if started.elapsed() < HELPER_TIMEOUT => std::thread::sleep(Duration::from_millis(20)),
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                return Answer::Failed(format!("gave no answer within {}s", HELPER_TIMEOUT.as_secs()));
            }
            Err(e) => return Answer::Failed(e.to_string()),
        }
    };
    let (mut out, mut err) = (Vec::new(), String::new());
    if let Some(mut s) = child.stdout.take() {
        let _ = s.read_to_end(&mut out);
    }
    if let Some(mut s) = child.stderr.take() {
        let _ = s.read_to_string(&mut err);
    }
    let first_line = err.lines().chain(String::from_utf8_lossy(&out).lines()).next().unwrap_or("").trim().to_string();
    if !status.success() {
        return if first_line.to_lowercase().contains("credentials not found") {
            Answer::NotFound
        } else {
            Answer::Failed(if first_line.is_empty() { format!("exited with {status}") } else { first_line })
        };
    }
    parse(&out)
}

/// Reads a helper's stdout.
pub fn parse(out: &[u8]) -> Answer {
    #[derive(serde::Deserialize)]
    struct Reply {
        #[serde(rename = "Username", default)]
        username: String,
        #[serde(rename = "Secret", default)]
        secret: String,
    }
    match serde_json::from_slice::<Reply>(out) {
        // docker-credential-helpers 0.6 answer an unknown server with empty credentials and exit 0.
        Ok(r) if r.secret.is_empty() => Answer::NotFound,
        Ok(r) => Answer::Found { username: r.username, secret: r.secret.into() },
        Err(_) => Answer::Garbage,
    }
}

#[cfg(test)]
mod tests {
    use secrecy::ExposeSecret;

    use super::*;

    #[test]
    fn replies_are_read_as_the_protocol_says() {
        let found = parse(br#"{"ServerURL":"r","Username":"u","Secret":"s3"}"#);
        assert!(
            matches!(&found, Answer::Found { username, secret } if username == "u" && secret.expose_secret() == "s3")
        );
        assert!(matches!(parse(br#"{"ServerURL":"","Username":"","Secret":""}"#), Answer::NotFound));
        assert!(matches!(parse(b"hunter2 is the password"), Answer::Garbage));
        assert!(matches!(get("relctl-test-no-such-helper", "r"), Answer::Missing));
    }
}
