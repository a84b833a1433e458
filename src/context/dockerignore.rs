//! `.dockerignore` matching with Docker's rules: patterns are relative to the
//! context root, `*` and `?` stay within a path segment, `**` spans segments,
//! a `!` line re-includes, the last matching line wins, and a path is matched
//! when it or any of its parent directories matches.

use regex::Regex;

#[derive(Debug)]
struct Pattern {
    regex: Regex,
    exclusion: bool,
}

/// A parsed `.dockerignore`.
#[derive(Debug, Default)]
pub struct DockerIgnore {
    patterns: Vec<Pattern>,
}

/// A line of a .dockerignore that is not a valid pattern.
#[derive(Debug, thiserror::Error)]
#[error(".dockerignore line `{line}` is not a valid pattern")]
pub struct BadPattern {
    pub line: String,
    #[source]
    pub source: regex::Error,
}

impl DockerIgnore {
    /// Parses the file's text; the first line that is not a valid pattern is an error.
    pub fn parse(text: &str) -> Result<Self, BadPattern> {
        let mut patterns = Vec::new();
        for line in text.lines() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (exclusion, pat) = match line.strip_prefix('!') {
                Some(rest) => (true, rest.trim()),
                None => (false, line),
            };
            let pat = clean(pat);
            if pat.is_empty() {
                continue;
            }
            let regex = Regex::new(&to_regex(&pat)).map_err(|source| BadPattern { line: line.to_string(), source })?;
            patterns.push(Pattern { regex, exclusion });
        }
        Ok(Self { patterns })
    }

    /// Whether `path` (relative to the context, `/`-separated) is left out.
    pub fn excludes(&self, path: &str) -> bool {
        let mut excluded = false;
        for p in &self.patterns {
            if matches_or_parent(&p.regex, path) {
                excluded = !p.exclusion;
            }
        }
        excluded
    }
}

/// Like Go's filepath.Clean for these patterns: no leading `/` or `./`, no `.` segments.
fn clean(p: &str) -> String {
    let parts: Vec<&str> = p.split('/').filter(|s| !s.is_empty() && *s != ".").collect();
    parts.join("/")
}

fn matches_or_parent(re: &Regex, path: &str) -> bool {
    if re.is_match(path) {
        return true;
    }
    let mut end = 0;
    while let Some(i) = path[end..].find('/') {
        end += i;
        if re.is_match(&path[..end]) {
            return true;
        }
        end += 1;
    }
    false
}

fn to_regex(pat: &str) -> String {
    let mut out = String::from("^");
    let chars: Vec<char> = pat.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match c {
            '*' if chars.get(i + 1) == Some(&'*') => {
                i += 1;
                if chars.get(i + 1) == Some(&'/') {
                    out.push_str("(.*/)?");
                    i += 1;
                } else {
                    out.push_str(".*");
                }
            }
            '*' => out.push_str("[^/]*"),
            '?' => out.push_str("[^/]"),
            '[' => {
                // A character class passes through; `!` negation becomes `^`.
                let mut j = i + 1;
                let mut class = String::from("[");
                if chars.get(j) == Some(&'!') || chars.get(j) == Some(&'^') {
                    class.push('^');
                    j += 1;
                }
                while j < chars.len() && chars[j] != ']' {
                    if chars[j] == '\\' && j + 1 < chars.len() {
                        class.push_str(&regex::escape(&chars[j + 1].to_string()));
                        j += 2;
                        continue;
                    }
                    class.push(chars[j]);
                    j += 1;
                }
                if j >= chars.len() {
                    out.push_str(&regex::escape("["));
                } else {
                    class.push(']');
                    out.push_str(&class);
                    i = j;
                }
            }
            '\\' if i + 1 < chars.len() => {
                i += 1;
                out.push_str(&regex::escape(&chars[i].to_string()));
            }
            other => out.push_str(&regex::escape(&other.to_string())),
        }
        i += 1;
    }
    out.push('$');
    out
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn docker_semantics() {
        let ig = DockerIgnore::parse(
            "# comment\n\n*.log\n/secret.txt\n./build\nnode_modules\n**/*.tmp\ndocs/*\n!docs/keep.md\nsub/**/cache\nfile?.txt\n[ab].c\n",
        )
        .unwrap();
        let cases = [
            ("app.log", true),
            ("dir/app.log", false), // `*` does not cross `/`
            ("secret.txt", true),
            ("build/out/x.bin", true), // parent directory matches
            ("node_modules/a/b.js", true),
            ("a/b/c.tmp", true),
            ("c.tmp", true),
            ("docs/readme.md", true),
            ("docs/keep.md", false), // re-included by `!`
            ("sub/cache", true),
            ("sub/x/y/cache/z", true),
            ("file1.txt", true),
            ("file12.txt", false),
            ("a.c", true),
            ("c.c", false),
            ("src/main.rs", false),
            ("Dockerfile", false),
        ];
        for (path, want) in cases {
            assert_eq!(ig.excludes(path), want, "{path}");
        }
    }

    #[test]
    fn later_lines_win() {
        let ig = DockerIgnore::parse("!keep\n*\n").unwrap();
        assert!(ig.excludes("keep"));
        let ig = DockerIgnore::parse("*\n!keep\n").unwrap();
        assert!(!ig.excludes("keep"));
        assert!(ig.excludes("other"));
    }

    #[test]
    fn empty_file_excludes_nothing() {
        assert!(!DockerIgnore::parse("").unwrap().excludes("anything"));
    }

    /// Parses `text` and matches `paths`; never panics, and the rules hold.
    fn check(text: &str, paths: &[&str]) {
        let Ok(ig) = DockerIgnore::parse(text) else { return };
        for path in paths {
            let excluded = ig.excludes(path);
            // A path under an excluded directory is excluded too, unless a later `!` line re-includes.
            if excluded && !text.contains('!') && !path.is_empty() {
                assert!(ig.excludes(&format!("{path}/child")), "{text:?}: {path:?} excluded, its child not");
            }
        }
        // Without patterns nothing is excluded; comments and blank lines are no patterns.
        if text.lines().all(|l| l.trim().is_empty() || l.trim().starts_with('#')) {
            assert!(paths.iter().all(|p| !ig.excludes(p)), "{text:?}");
        }
    }

    /// tests/corpus/dockerignore: the .dockerignore text, a line `----`, then one path a line.
    #[test]
    fn corpus_replays() {
        for (name, text) in crate::config::corpus::texts("dockerignore") {
            let (patterns, paths) = text.split_once("\n----\n").unwrap_or((text.as_str(), ""));
            let paths: Vec<&str> = paths.lines().collect();
            check(patterns, &paths);
            if name.starts_with("valid-") {
                assert!(DockerIgnore::parse(patterns).is_ok(), "{name}");
            }
        }
    }

    fn pattern() -> impl Strategy<Value = String> {
        let piece = prop_oneof![
            3 => prop::sample::select(vec![
                "*", "**", "?", "/", "!", "[", "]", "[!", "[^", "\\", "\\*", ".", "..", "./", "#", " ", "a", "b", "é", "😀",
                "{", "}", "(", ")", "|", "+", "$", "^", "[a-", "[]", "[\\]", "[[:alpha:]]", "\r", "\t",
            ])
            .prop_map(str::to_string),
            2 => "[a-z.]{1,4}",
            1 => "\\PC{0,4}",
        ];
        prop::collection::vec(piece, 0..8).prop_map(|p| p.concat())
    }

    fn path() -> impl Strategy<Value = String> {
        let component = prop_oneof![
            prop::sample::select(vec![
                "a",
                "b",
                "a.c",
                ".git",
                "node_modules",
                "é",
                "😀",
                "",
                ".",
                "..",
                "[x]",
                "*",
                "a b"
            ])
            .prop_map(str::to_string),
            "[a-z.]{1,5}",
            "\\PC{0,4}",
        ];
        prop::collection::vec(component, 0..5).prop_map(|c| c.join("/"))
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

        #[test]
        fn any_patterns_match_any_paths(
            lines in prop::collection::vec(pattern(), 0..6),
            paths in prop::collection::vec(path(), 0..6),
        ) {
            let paths: Vec<&str> = paths.iter().map(String::as_str).collect();
            check(&lines.join("\n"), &paths);
        }
    }
}
