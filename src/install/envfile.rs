//! `docker/.env` as installers keep it: set one variable (IMAGE_TAG) and keep
//! every other byte of the file as it was (comments, order, blank lines,
//! line endings). Written atomically: a temp file in the same directory,
//! flushed to disk, then renamed over the old one.

use std::io::Write;
use std::path::Path;

/// `text` with `key` set to `value`: the first `KEY=`/`export KEY=` line is
/// rewritten in place (a quoted value stays quoted, a trailing comment stays);
/// later duplicates are left alone; without one, a line is appended.
pub fn set_var(text: &str, key: &str, value: &str) -> String {
    let mut out = String::with_capacity(text.len() + key.len() + value.len() + 2);
    let mut done = false;
    for line in text.split_inclusive('\n') {
        if !done {
            if let Some(rewritten) = rewrite_line(line, key, value) {
                out.push_str(&rewritten);
                done = true;
                continue;
            }
        }
        out.push_str(line);
    }
    if !done {
        if !out.is_empty() && !out.ends_with('\n') {
            out.push('\n');
        }
        out.push_str(&format!("{key}={value}\n"));
    }
    out
}

fn rewrite_line(line: &str, key: &str, value: &str) -> Option<String> {
    let (body, eol) = match line.strip_suffix("\r\n") {
        Some(b) => (b, "\r\n"),
        None => line.strip_suffix('\n').map_or((line, ""), |b| (b, "\n")),
    };
    let indent = &body[..body.len() - body.trim_start().len()];
    let rest = body.trim_start();
    let (export, rest) = match rest.strip_prefix("export ") {
        Some(r) => ("export ", r.trim_start()),
        None => ("", rest),
    };
    let after = rest.strip_prefix(key)?.trim_start().strip_prefix('=')?.trim_start();
    let quote = after.chars().next().filter(|c| *c == '"' || *c == '\'');
    let comment = match quote {
        Some(q) => after[1..].find(q).map(|end| &after[end + 2..]).unwrap_or(""),
        None => after.find(" #").map(|i| &after[i..]).unwrap_or(""),
    };
    let value = match quote {
        Some(q) => format!("{q}{value}{q}"),
        None => value.to_string(),
    };
    Some(format!("{indent}{export}{key}={value}{comment}{eol}"))
}

/// The value of `key` in `text`, unquoted, if set.
pub fn get_var(text: &str, key: &str) -> Option<String> {
    text.lines().find_map(|line| {
        let rest = line.trim_start();
        let rest = rest.strip_prefix("export ").map(str::trim_start).unwrap_or(rest);
        let after = rest.strip_prefix(key)?.trim_start().strip_prefix('=')?;
        let v = after.split(" #").next().unwrap_or("").trim();
        Some(v.trim_matches(|c| c == '"' || c == '\'').to_string())
    })
}

/// Replaces `path` with `content` so a crash leaves the old file or the new
/// one, never half of either. Keeps the old file's permissions.
pub fn write_atomically(path: &Path, content: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let tmp = dir.join(format!(".{name}.relctl-{}.tmp", std::process::id()));
    let result = (|| {
        let mut file = std::fs::File::create(&tmp)?;
        if let Ok(meta) = std::fs::metadata(path) {
            file.set_permissions(meta.permissions())?;
        }
        file.write_all(content)?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)?;
        // The rename itself is durable once the directory is synced.
        std::fs::File::open(dir)?.sync_all()
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sets_in_place_and_keeps_everything_else() {
        let cases = [
            ("A=1\nIMAGE_TAG=v1.0.0\nB=2\n", "A=1\nIMAGE_TAG=v1.2.0\nB=2\n"),
            ("# comment\n\nIMAGE_TAG=v1.0.0 # pinned\n", "# comment\n\nIMAGE_TAG=v1.2.0 # pinned\n"),
            ("export IMAGE_TAG=\"v1.0.0\"\n", "export IMAGE_TAG=\"v1.2.0\"\n"),
            ("  IMAGE_TAG = 'v1.0.0' # q\r\nX=1\r\n", "  IMAGE_TAG='v1.2.0' # q\r\nX=1\r\n"),
            ("IMAGE_TAG_OLD=v0.9\nX=1", "IMAGE_TAG_OLD=v0.9\nX=1\nIMAGE_TAG=v1.2.0\n"),
            ("", "IMAGE_TAG=v1.2.0\n"),
            ("IMAGE_TAG=v1\nIMAGE_TAG=v2\n", "IMAGE_TAG=v1.2.0\nIMAGE_TAG=v2\n"),
            ("# IMAGE_TAG=v0.1.0\n", "# IMAGE_TAG=v0.1.0\nIMAGE_TAG=v1.2.0\n"),
        ];
        for (before, after) in cases {
            assert_eq!(set_var(before, "IMAGE_TAG", "v1.2.0"), after, "{before:?}");
        }
    }

    #[test]
    fn reads_values_unquoted() {
        assert_eq!(get_var("X=1\nexport IMAGE_TAG=\"v1.1.0\" # c\n", "IMAGE_TAG").as_deref(), Some("v1.1.0"));
        assert_eq!(get_var("X=1\n", "IMAGE_TAG"), None);
    }

    #[test]
    fn atomic_write_replaces_and_leaves_no_temp_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(".env");
        std::fs::write(&path, "A=1\n").unwrap();
        write_atomically(&path, b"A=2\n").unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "A=2\n");
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names, [std::ffi::OsString::from(".env")]);
    }
}
