//! `relctl status`: the status use case, printed as a table or JSON; exit 1
//! when something in scope is not converged.

use relctl::session::status::{Provenance, Status, short};

use super::Global;
use super::commands::load;

/// Raised when status finds something not converged (exit 1).
#[derive(Debug, thiserror::Error)]
#[error("not converged: {0}")]
pub struct Drift(String);

pub async fn status_cmd(global: &Global) -> anyhow::Result<()> {
    let status = load(global)?.status().await?;
    if global.json {
        println!("{}", serde_json::to_string_pretty(&status).expect("a status serializes"));
    } else {
        print!("{}", text(&status));
    }
    if status.converged {
        return Ok(());
    }
    let mut what: Vec<String> =
        status.releases.iter().filter(|r| !r.is_converged()).map(|r| format!("{} ({})", r.tag, r.state)).collect();
    what.extend(status.floating.iter().filter(|f| f.drift).map(|f| format!("{}:{}", f.image, f.tag)));
    if status.version_file.drift {
        what.push(status.version_file.path.clone());
    }
    Err(Drift(what.join(", ")).into())
}

fn digest(d: &str) -> &str {
    let hex = d.strip_prefix("sha256:").unwrap_or(d);
    &hex[..hex.len().min(12)]
}

/// The status as text: one line per release (newest first) with one per image
/// read in full, then the floating tags and VERSION; drift is marked `DRIFT`.
pub fn text(s: &Status) -> String {
    let mut out = String::new();
    let width = s.releases.iter().map(|r| r.tag.len()).max().unwrap_or(0);
    for r in &s.releases {
        out += &format!("{:width$}  {}  {}\n", r.tag, short(&r.commit), r.state);
        for i in &r.images {
            let Some(d) = &i.digest else { continue };
            let how = match &i.provenance {
                Some(Provenance::Built) => "built".to_string(),
                Some(Provenance::Retagged { from, from_commit }) => {
                    format!("retagged from {}", from.as_deref().unwrap_or(short(from_commit)))
                }
                Some(Provenance::OtherCommit { commit }) => {
                    format!("built from {}", commit.as_deref().map_or("an unknown commit", short))
                }
                None => String::new(),
            };
            out += &format!("  {}  {}  {how}\n", i.image, digest(d));
        }
    }
    for f in &s.floating {
        let at = match (&f.digest, &f.release) {
            (None, _) => "missing".to_string(),
            (Some(d), Some(r)) => format!("{r} ({})", digest(d)),
            (Some(d), None) => format!("no release ({})", digest(d)),
        };
        let mark = if f.drift {
            format!("  DRIFT: should be {}", f.expected.as_deref().unwrap_or("-"))
        } else {
            String::new()
        };
        out += &format!("{}:{}  -> {at}{mark}\n", f.image, f.tag);
    }
    let v = &s.version_file;
    let mark =
        if v.drift { format!("  DRIFT: should be {}", v.expected.as_deref().unwrap_or("-")) } else { String::new() };
    out += &format!("{} = {}{mark}\n", v.path, v.names.as_deref().unwrap_or("(none)"));
    out += if s.converged { "converged\n" } else { "not converged\n" };
    out
}
