//! Secrets from the environment or from files: each secret variable `NAME`
//! may instead be given as `NAME_FILE`, the path of a file that holds the
//! value (compose and Docker secrets under /run/secrets, systemd credentials),
//! so a container or unit need not carry the value in its environment.
//! [`check`] runs once at start, so a missing or unreadable file is bad input
//! (exit 2) before anything happens; [`var`] then reads the value where it is used.

use std::ffi::OsString;
use std::path::PathBuf;

/// The variables that may come from a file (and any `NAME` of `notify: [{ url: env:NAME }]`, see [`var_named`]).
pub const NAMES: [&str; 7] = [
    "RELCTL_REGISTRY_USERNAME",
    "RELCTL_REGISTRY_PASSWORD",
    "RELCTL_WEBHOOK_SECRET",
    "RELCTL_DASHBOARD_TOKEN",
    "RELCTL_GIT_TOKEN",
    "RELCTL_GIT_SSH_PASSPHRASE",
    "GITHUB_TOKEN",
];

/// A secret variable given wrongly. Never holds a value, only names and paths.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("both {name} and {name}_FILE are set")]
    Both { name: String },
    #[error("{name}_FILE: cannot read {}: {source}", path.display())]
    Read { name: String, path: PathBuf, source: std::io::Error },
    #[error("{name}_FILE: {} is empty", path.display())]
    Empty { name: String, path: PathBuf },
}

impl SecretError {
    pub fn hint(&self) -> String {
        match self {
            SecretError::Both { name } => format!("unset one of {name} and {name}_FILE"),
            SecretError::Read { name, .. } | SecretError::Empty { name, .. } => {
                format!(
                    "point {name}_FILE at a file that holds the value and that relctl's user can read, or set {name}"
                )
            }
        }
    }
}

/// The value of secret `name`: the variable if set and not empty, else the
/// content of the file `NAME_FILE` names (one trailing newline dropped).
/// `None` when neither is set, or when [`check`] would have refused it.
pub fn var(name: &'static str) -> Option<String> {
    lookup(name, &|k| std::env::var_os(k)).ok().flatten()
}

/// The value of a secret whose name is only known at run time (`notify: [{
/// url: env:NAME }]`), from `NAME` or `NAME_FILE`, with [`check`]'s errors.
pub fn var_named(name: &str) -> Result<Option<String>, SecretError> {
    lookup(name, &|k| std::env::var_os(k))
}

/// Checks every variable of [`NAMES`]: `NAME` and `NAME_FILE` not both set,
/// and each `NAME_FILE` a readable file with a value.
pub fn check() -> Result<(), SecretError> {
    NAMES.iter().try_for_each(|name| lookup(name, &|k| std::env::var_os(k)).map(drop))
}

fn lookup(name: &str, env: &dyn Fn(&str) -> Option<OsString>) -> Result<Option<String>, SecretError> {
    let value = env(name).and_then(|v| v.into_string().ok()).filter(|v| !v.is_empty());
    let file = env(&format!("{name}_FILE")).filter(|p| !p.is_empty()).map(PathBuf::from);
    match (value, file) {
        (Some(_), Some(_)) => Err(SecretError::Both { name: name.to_string() }),
        (Some(value), None) => Ok(Some(value)),
        (None, None) => Ok(None),
        (None, Some(path)) => {
            let text = std::fs::read_to_string(&path).map_err(|source| SecretError::Read {
                name: name.to_string(),
                path: path.clone(),
                source,
            })?;
            let value = text.strip_suffix('\n').map(|t| t.strip_suffix('\r').unwrap_or(t)).unwrap_or(&text);
            if value.is_empty() {
                return Err(SecretError::Empty { name: name.to_string(), path });
            }
            Ok(Some(value.to_string()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    /// Variables set, and the value (or a piece of the error) expected.
    type Case<'a> = (Vec<(&'a str, &'a str)>, Result<Option<&'a str>, &'a str>);

    fn with(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<OsString> {
        let map: HashMap<String, OsString> = vars.iter().map(|(k, v)| (k.to_string(), OsString::from(v))).collect();
        move |k| map.get(k).cloned()
    }

    #[test]
    fn a_secret_comes_from_the_variable_or_from_the_file_its_file_variable_names() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("secret");
        std::fs::write(&file, "s3cret value\n").unwrap();
        let path = file.to_str().unwrap();
        let cases: Vec<Case> = vec![
            (vec![], Ok(None)),
            (vec![("RELCTL_WEBHOOK_SECRET", "")], Ok(None)),
            (vec![("RELCTL_WEBHOOK_SECRET", "from env")], Ok(Some("from env"))),
            (vec![("RELCTL_WEBHOOK_SECRET_FILE", path)], Ok(Some("s3cret value"))),
            (vec![("RELCTL_WEBHOOK_SECRET", ""), ("RELCTL_WEBHOOK_SECRET_FILE", path)], Ok(Some("s3cret value"))),
            (
                vec![("RELCTL_WEBHOOK_SECRET", "x"), ("RELCTL_WEBHOOK_SECRET_FILE", path)],
                Err("both RELCTL_WEBHOOK_SECRET and RELCTL_WEBHOOK_SECRET_FILE are set"),
            ),
            (vec![("RELCTL_WEBHOOK_SECRET_FILE", "/nonexistent/secret")], Err("cannot read /nonexistent/secret")),
        ];
        for (vars, expected) in cases {
            let got = lookup("RELCTL_WEBHOOK_SECRET", &with(&vars));
            match (&got, &expected) {
                (Ok(v), Ok(e)) => assert_eq!(v.as_deref(), *e, "{vars:?}"),
                (Err(err), Err(e)) => assert!(err.to_string().contains(e), "{vars:?}: {err}"),
                _ => panic!("{vars:?}: {got:?}, expected {expected:?}"),
            }
        }
    }

    #[test]
    fn one_trailing_newline_is_dropped_and_an_empty_file_is_refused_without_showing_values() {
        let dir = tempfile::tempdir().unwrap();
        for (content, expected) in
            [("tok\r\n", Some("tok")), ("tok", Some("tok")), ("tok\n\n", Some("tok\n")), ("\n", None)]
        {
            let file = dir.path().join("f");
            std::fs::write(&file, content).unwrap();
            let got = lookup("GITHUB_TOKEN", &with(&[("GITHUB_TOKEN_FILE", file.to_str().unwrap())]));
            match expected {
                Some(e) => assert_eq!(got.unwrap().as_deref(), Some(e), "{content:?}"),
                None => {
                    let err = got.unwrap_err();
                    assert!(err.to_string().ends_with("is empty"), "{err}");
                    assert!(err.hint().contains("GITHUB_TOKEN_FILE"), "{}", err.hint());
                }
            }
        }
        let file = dir.path().join("f");
        std::fs::write(&file, "hidden-token").unwrap();
        let both = [("GITHUB_TOKEN", "other-token"), ("GITHUB_TOKEN_FILE", file.to_str().unwrap())];
        let err = lookup("GITHUB_TOKEN", &with(&both)).unwrap_err();
        let shown = format!("{err} {err:?} {}", err.hint());
        assert!(!shown.contains("hidden-token") && !shown.contains("other-token"), "{shown}");
    }
}
