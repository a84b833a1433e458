//! Which context files a Dockerfile reads: the sources of every `COPY` and
//! `ADD` without `--from`, and the `source` of every `RUN --mount` that
//! reads the context, after `ARG`/`ENV` substitution. Whenever that cannot
//! be told exactly, the answer is the whole context, with the reason.
//!
//! Deliberately small: a line reader (parser directives, comments, line
//! continuations), a word splitter with variable expansion, and a matcher for
//! Go `filepath.Match` wildcards, which is what the daemon uses for `COPY`.

use std::collections::{BTreeMap, BTreeSet};

/// The build arguments a Dockerfile is read with.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BuildArgs {
    /// `images.<name>.build_args`.
    pub values: BTreeMap<String, String>,
    /// Arguments passed with a value known only at build time (each
    /// parent's `<PARENT>_IMAGE`): fine in `FROM` and `--from`, but a source
    /// path that uses one cannot be known.
    pub opaque: BTreeSet<String>,
}

/// What a Dockerfile reads from its context.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Inputs {
    /// Paths relative to the context root (no leading `./` or `/`), which may
    /// hold wildcards; a directory stands for everything under it.
    Sources(Vec<String>),
    /// The inputs cannot be determined exactly: why.
    Whole(String),
}

/// A variable's value as far as the reader knows it.
#[derive(Debug, Clone)]
enum Val {
    Known(String),
    /// Declared by `ARG` without a value.
    Unset,
    /// Has a value, but not one the reader knows: why.
    Unknown(String),
}

#[derive(Default, Clone)]
struct Scope {
    args: BTreeMap<String, Val>,
    env: BTreeMap<String, Val>,
}

impl Scope {
    fn get(&self, name: &str) -> Option<&Val> {
        self.env.get(name).or_else(|| self.args.get(name))
    }
}

const INSTRUCTIONS: &[&str] = &[
    "FROM",
    "RUN",
    "CMD",
    "LABEL",
    "MAINTAINER",
    "EXPOSE",
    "ENV",
    "ADD",
    "COPY",
    "ENTRYPOINT",
    "VOLUME",
    "USER",
    "WORKDIR",
    "ARG",
    "ONBUILD",
    "STOPSIGNAL",
    "HEALTHCHECK",
    "SHELL",
];

/// The instruction as a reason names it: whitespace collapsed, at most 60 characters.
fn shown(line: &str) -> String {
    let mut s = line.split_whitespace().collect::<Vec<_>>().join(" ");
    if s.chars().count() > 60 {
        s = s.chars().take(59).collect::<String>() + "…";
    }
    s
}

/// Reads `text` with `args`: the context paths it reads, or why that cannot be told.
pub fn inputs(text: &str, args: &BuildArgs) -> Inputs {
    match read(text, args) {
        Ok(sources) => Inputs::Sources(sources),
        Err(why) => Inputs::Whole(why),
    }
}

fn read(text: &str, args: &BuildArgs) -> Result<Vec<String>, String> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let lines: Vec<&str> = text.lines().collect();
    let mut escape = '\\';
    let mut n = 0;
    // Parser directives: `# key=value` lines at the very top.
    let mut seen = BTreeSet::new();
    while n < lines.len() {
        let Some(d) = lines[n].trim().strip_prefix('#') else { break };
        let Some((key, value)) = d.split_once('=') else { break };
        let (key, value) = (key.trim().to_ascii_lowercase(), value.trim());
        if !["syntax", "escape", "check"].contains(&key.as_str()) || !seen.insert(key.clone()) {
            break;
        }
        match key.as_str() {
            "escape" => match value {
                "\\" => escape = '\\',
                "`" => escape = '`',
                _ => return Err(format!("# escape={value} is not \\ or `")),
            },
            "syntax" if !docker_frontend(value) => return Err(format!("# syntax={value} is another frontend")),
            _ => {}
        }
        n += 1;
    }

    let mut global = Scope::default();
    let mut stages: BTreeMap<String, Scope> = BTreeMap::new();
    let mut stage: Option<Scope> = None;
    let mut current: Option<String> = None;
    let mut sources = Vec::new();
    while n < lines.len() {
        // One logical line: the escape character at a line's end continues it;
        // comment and empty lines inside a continuation are dropped.
        let start = n + 1;
        let first = lines[n].trim();
        n += 1;
        if first.is_empty() || first.starts_with('#') {
            continue;
        }
        let mut logical = String::new();
        let mut line = first.to_string();
        loop {
            let trimmed = line.trim_end();
            match trimmed.strip_suffix(escape) {
                Some(head) if n < lines.len() || !head.is_empty() => {
                    logical.push_str(head);
                    while n < lines.len() && (lines[n].trim().is_empty() || lines[n].trim_start().starts_with('#')) {
                        n += 1;
                    }
                    if n >= lines.len() {
                        break;
                    }
                    line = lines[n].to_string();
                    n += 1;
                }
                _ => {
                    logical.push_str(trimmed);
                    break;
                }
            }
        }
        let logical = logical.trim();
        let (keyword, rest) = logical.split_once(char::is_whitespace).unwrap_or((logical, ""));
        let keyword = keyword.to_ascii_uppercase();
        let rest = rest.trim();
        let unreadable = || format!("cannot read line {start}: {}", shown(logical));
        if !INSTRUCTIONS.contains(&keyword.as_str()) {
            return Err(unreadable());
        }
        if ["RUN", "COPY", "ADD"].contains(&keyword.as_str()) && heredoc(rest) {
            return Err(format!("heredoc: {}", shown(logical)));
        }
        match keyword.as_str() {
            "ARG" => {
                let in_stage = stage.is_some();
                for word in split(rest, escape).ok_or_else(unreadable)? {
                    let (name, default) = match word.split_once('=') {
                        Some((k, v)) => (k.to_string(), Some(v.to_string())),
                        None => (word.clone(), None),
                    };
                    if name.is_empty() {
                        return Err(unreadable());
                    }
                    let val = if args.opaque.contains(&name) {
                        Val::Unknown(format!("${name} is known only at build time"))
                    } else if let Some(v) = args.values.get(&name) {
                        Val::Known(v.clone())
                    } else if let Some(d) = default {
                        match expand(&d, stage.as_ref().unwrap_or(&global), escape) {
                            Ok(v) => Val::Known(v),
                            Err(why) => Val::Unknown(why),
                        }
                    } else if in_stage {
                        global.args.get(&name).cloned().unwrap_or(Val::Unset)
                    } else {
                        Val::Unset
                    };
                    stage.as_mut().unwrap_or(&mut global).args.insert(name, val);
                }
                remember(&mut stages, &current, &stage);
            }
            "FROM" => {
                let words = split(rest, escape).ok_or_else(unreadable)?;
                let words: Vec<&String> = words.iter().filter(|w| !w.starts_with("--")).collect();
                let base = words.first().ok_or_else(unreadable)?.to_ascii_lowercase();
                // A stage built on an earlier one starts with its ENV, not its ARGs.
                let env = stages.get(&base).map(|s| s.env.clone()).unwrap_or_default();
                stage = Some(Scope { args: BTreeMap::new(), env });
                current = stage_name(&words);
                remember(&mut stages, &current, &stage);
            }
            "ENV" => {
                let Some(scope) = stage.as_mut() else { return Err(unreadable()) };
                let words = split(rest, escape).ok_or_else(unreadable)?;
                let pairs: Vec<(String, String)> = if words.first().is_some_and(|w| !w.contains('=')) {
                    // Legacy form: ENV NAME value with spaces.
                    let (name, value) = rest.split_once(char::is_whitespace).ok_or_else(unreadable)?;
                    vec![(name.to_string(), value.trim().to_string())]
                } else {
                    words
                        .iter()
                        .map(|w| w.split_once('=').map(|(k, v)| (k.to_string(), v.to_string())))
                        .collect::<Option<_>>()
                        .ok_or_else(unreadable)?
                };
                // Every value sees the variables as they were before this line.
                let vals: Vec<(String, Val)> = pairs
                    .into_iter()
                    .map(|(name, value)| match expand(&value, scope, escape) {
                        Ok(v) => (name, Val::Known(v)),
                        Err(why) => (name, Val::Unknown(why)),
                    })
                    .collect();
                scope.env.extend(vals);
                remember(&mut stages, &current, &stage);
            }
            "COPY" | "ADD" => {
                let Some(scope) = stage.as_ref() else { return Err(unreadable()) };
                let (flags, rest) = flags(rest);
                let mut from = false;
                for (flag, _) in &flags {
                    match flag.as_str() {
                        "from" => from = true,
                        "chown" | "chmod" | "link" | "parents" | "exclude" => {}
                        "checksum" | "keep-git-dir" | "unpack" if keyword == "ADD" => {}
                        _ => return Err(format!("{}: unknown flag --{flag}", shown(logical))),
                    }
                }
                if from {
                    continue;
                }
                let raw = if rest.starts_with('[') {
                    serde_json::from_str::<Vec<String>>(rest).map_err(|_| unreadable())?
                } else {
                    split(rest, escape).ok_or_else(unreadable)?
                };
                if raw.len() < 2 {
                    return Err(unreadable());
                }
                for src in &raw[..raw.len() - 1] {
                    let src = expand(src, scope, escape).map_err(|why| format!("{}: {why}", shown(logical)))?;
                    if keyword == "ADD" && remote(&src) {
                        return Err(format!("{} reads from the network", shown(logical)));
                    }
                    let clean = clean(&src);
                    if clean.is_empty() {
                        return Err(shown(logical));
                    }
                    sources.push(clean);
                }
            }
            "RUN" => {
                let Some(scope) = stage.as_ref() else { return Err(unreadable()) };
                let (flags, _) = flags(rest);
                for (flag, value) in flags {
                    if flag != "mount" {
                        continue;
                    }
                    let value = expand(&value.unwrap_or_default(), scope, escape)
                        .map_err(|why| format!("{}: {why}", shown(logical)))?;
                    let mut opts = BTreeMap::new();
                    for part in value.split(',') {
                        let (k, v) = part.split_once('=').unwrap_or((part, ""));
                        opts.insert(k.trim().to_ascii_lowercase(), v.trim().trim_matches('"').to_string());
                    }
                    let source = opts.get("source").or_else(|| opts.get("src"));
                    if opts.get("from").is_some_and(|f| !f.is_empty()) {
                        continue;
                    }
                    let source = match opts.get("type").map(String::as_str).unwrap_or("bind") {
                        "bind" => source.cloned().unwrap_or_default(),
                        "cache" => match source {
                            Some(s) => s.clone(),
                            None => continue,
                        },
                        "secret" | "ssh" | "tmpfs" => continue,
                        other => return Err(format!("{}: unknown mount type {other}", shown(logical))),
                    };
                    let clean = clean(&source);
                    if clean.is_empty() {
                        return Err(shown(logical));
                    }
                    sources.push(clean);
                }
            }
            _ => {
                if stage.is_none() {
                    return Err(unreadable());
                }
            }
        }
    }
    sources.sort();
    sources.dedup();
    Ok(sources)
}

/// Keeps the scope of the named stage being read for stages built on it.
fn remember(stages: &mut BTreeMap<String, Scope>, current: &Option<String>, stage: &Option<Scope>) {
    if let (Some(name), Some(scope)) = (current, stage) {
        stages.insert(name.clone(), scope.clone());
    }
}

/// `AS name` at the end of a FROM line's words.
fn stage_name(words: &[&String]) -> Option<String> {
    match words {
        [_, as_, name] if as_.eq_ignore_ascii_case("as") => Some(name.to_ascii_lowercase()),
        _ => None,
    }
}

/// The Dockerfile frontend BuildKit has built in, by any of its names.
fn docker_frontend(value: &str) -> bool {
    let image = value.split('@').next().unwrap_or(value);
    let name = image.rsplit_once(':').filter(|(_, tag)| !tag.contains('/')).map_or(image, |(n, _)| n);
    let name = name.strip_prefix("docker.io/").unwrap_or(name);
    matches!(name, "docker/dockerfile" | "docker/dockerfile-upstream")
}

/// `<<EOF`, `<<-EOF`, `<<"EOF"`: a heredoc.
fn heredoc(rest: &str) -> bool {
    rest.match_indices("<<").any(|(i, _)| {
        let after = rest[i + 2..].trim_start_matches('-');
        after.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_' || c == '"' || c == '\'')
    })
}

fn remote(src: &str) -> bool {
    let lower = src.to_ascii_lowercase();
    ["http://", "https://", "git://", "git@", "ssh://"].iter().any(|p| lower.starts_with(p))
        || lower.ends_with(".git")
        || lower.contains(".git#")
}

/// Leading `--name[=value]` flags, and what follows them.
fn flags(rest: &str) -> (Vec<(String, Option<String>)>, &str) {
    let mut out = Vec::new();
    let mut rest = rest.trim_start();
    while let Some(flag) = rest.strip_prefix("--") {
        let end = flag.find(char::is_whitespace).unwrap_or(flag.len());
        let (word, tail) = flag.split_at(end);
        match word.split_once('=') {
            Some((k, v)) => out.push((k.to_ascii_lowercase(), Some(v.to_string()))),
            None => out.push((word.to_ascii_lowercase(), None)),
        }
        rest = tail.trim_start();
    }
    (out, rest)
}

/// Splits on whitespace outside quotes; quotes and escapes stay for [`expand`].
/// `None` for an unterminated quote.
fn split(s: &str, escape: char) -> Option<Vec<String>> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut quote = None;
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match (c, quote) {
            (c, None) if c.is_whitespace() => {
                if !word.is_empty() {
                    words.push(std::mem::take(&mut word));
                }
            }
            (c, _) if c == escape && quote != Some('\'') => {
                word.push(c);
                word.extend(chars.next());
            }
            ('"' | '\'', None) => {
                quote = Some(c);
                word.push(c);
            }
            (c, Some(q)) if c == q => {
                quote = None;
                word.push(c);
            }
            (c, _) => word.push(c),
        }
    }
    if quote.is_some() {
        return None;
    }
    if !word.is_empty() {
        words.push(word);
    }
    Some(words)
}

/// Expands `$VAR`, `${VAR}`, `${VAR:-word}`, `${VAR-word}`, `${VAR:+word}`
/// and `${VAR+word}` in one word and removes its quotes and escapes. An
/// error says which variable has no known value.
fn expand(word: &str, scope: &Scope, escape: char) -> Result<String, String> {
    let chars: Vec<char> = word.chars().collect();
    let mut out = String::new();
    let mut i = 0;
    let mut quote: Option<char> = None;
    while i < chars.len() {
        let c = chars[i];
        if c == escape && quote != Some('\'') && i + 1 < chars.len() {
            out.push(chars[i + 1]);
            i += 2;
            continue;
        }
        match (c, quote) {
            ('\'' | '"', None) => quote = Some(c),
            (c, Some(q)) if c == q => quote = None,
            ('$', q) if q != Some('\'') && i + 1 < chars.len() => {
                let (value, next) = variable(&chars, i + 1, scope, escape)?;
                out.push_str(&value);
                i = next;
                continue;
            }
            (c, _) => out.push(c),
        }
        i += 1;
    }
    Ok(out)
}

/// The variable that starts at `chars[i]` (just after `$`): its value and where it ends.
fn variable(chars: &[char], i: usize, scope: &Scope, escape: char) -> Result<(String, usize), String> {
    let name_end = |from: usize| {
        let mut j = from;
        while j < chars.len() && (chars[j].is_ascii_alphanumeric() || chars[j] == '_') {
            j += 1;
        }
        j
    };
    if chars[i] != '{' {
        let end = name_end(i);
        if end == i {
            return Ok(("$".into(), i));
        }
        let name: String = chars[i..end].iter().collect();
        return lookup(&name, None, scope, escape).map(|v| (v, end));
    }
    let end = name_end(i + 1);
    let name: String = chars[i + 1..end].iter().collect();
    let close = chars[end..].iter().position(|&c| c == '}').map(|p| end + p).ok_or("unterminated ${")?;
    let modifier: String = chars[end..close].iter().collect();
    if name.is_empty() {
        return Err(format!("cannot expand ${{{modifier}}}"));
    }
    lookup(&name, Some(&modifier).filter(|m| !m.is_empty()).map(|m| m.as_str()), scope, escape).map(|v| (v, close + 1))
}

fn lookup(name: &str, modifier: Option<&str>, scope: &Scope, escape: char) -> Result<String, String> {
    let val = scope.get(name);
    let (op, word) = match modifier {
        None => ("", ""),
        Some(m) => match [":-", ":+", "-", "+"].iter().find(|op| m.starts_with(**op)) {
            Some(op) => (*op, &m[op.len()..]),
            None => return Err(format!("cannot expand ${{{name}{m}}}")),
        },
    };
    match (val, op) {
        (Some(Val::Unknown(why)), _) => Err(why.clone()),
        (None, _) => Err(format!("${name} is not declared here (it may come from the base image)")),
        (Some(Val::Known(v)), ":-") if v.is_empty() => expand(word, scope, escape),
        (Some(Val::Known(v)), ":+") if v.is_empty() => Ok(String::new()),
        (Some(Val::Known(_)), ":+" | "+") => expand(word, scope, escape),
        (Some(Val::Known(v)), _) => Ok(v.clone()),
        (Some(Val::Unset), ":-" | "-") => expand(word, scope, escape),
        (Some(Val::Unset), ":+" | "+") => Ok(String::new()),
        (Some(Val::Unset), _) => Err(format!("ARG {name} has no value")),
    }
}

/// A source as a path from the context root: `/`, `.` and `..` resolved
/// (never above the root), no trailing `/`. Empty for the root itself.
fn clean(src: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for part in src.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            p => parts.push(p),
        }
    }
    parts.join("/")
}

/// Whether `pattern` (a source) selects the file `path`: the pattern matches
/// the path or one of its parent directories, segment by segment, with Go
/// `filepath.Match` wildcards in each segment (`**` matches any number of
/// segments, as with `COPY --parents`).
pub fn selects(pattern: &str, path: &str) -> bool {
    let pat: Vec<&str> = pattern.split('/').collect();
    let path: Vec<&str> = path.split('/').collect();
    segments(&pat, &path, true)
}

/// Whether `pattern` goes through `path`: matches it exactly, or matches it
/// as a parent directory of something further down the pattern. A symlink
/// there would be followed.
pub fn goes_through(pattern: &str, path: &str) -> bool {
    let pat: Vec<&str> = pattern.split('/').collect();
    let path: Vec<&str> = path.split('/').collect();
    segments(&pat, &path, false)
}

/// `prefix`: the pattern may end above the path's end (it names a parent
/// directory). Otherwise the path may end at or above the pattern's end.
fn segments(pat: &[&str], path: &[&str], prefix: bool) -> bool {
    match (pat.first(), path.first()) {
        (None, None) => true,
        (None, Some(_)) => prefix,
        (Some(_), None) => !prefix,
        (Some(&"**"), Some(_)) => segments(&pat[1..], path, prefix) || segments(pat, &path[1..], prefix),
        (Some(p), Some(s)) => matches(p, s) && segments(&pat[1..], &path[1..], prefix),
    }
}

/// Go's `filepath.Match` for one path segment: `*`, `?`, `[...]` classes
/// (`^` negates, ranges, `\` escapes). A malformed pattern matches, so a
/// mistake widens the inputs rather than narrowing them. Linear in the
/// name for each `*` (no backtracking blow-up).
pub fn matches(pattern: &str, name: &str) -> bool {
    let Some(toks) = tokens(pattern) else { return true };
    let s: Vec<char> = name.chars().collect();
    let (mut t, mut i) = (0, 0);
    // The last `*` seen and where in the name it would take one more character.
    let mut star: Option<(usize, usize)> = None;
    while i < s.len() {
        match toks.get(t) {
            Some(Tok::Star) => {
                star = Some((t, i));
                t += 1;
                continue;
            }
            Some(tok) if tok.takes(s[i]) => {
                t += 1;
                i += 1;
                continue;
            }
            _ => {}
        }
        let Some((st, si)) = star else { return false };
        star = Some((st, si + 1));
        t = st + 1;
        i = si + 1;
    }
    toks[t..].iter().all(|tok| matches!(tok, Tok::Star))
}

enum Tok {
    Star,
    Any,
    Lit(char),
    Class { negate: bool, ranges: Vec<(char, char)> },
}

impl Tok {
    fn takes(&self, c: char) -> bool {
        match self {
            Tok::Star => true,
            Tok::Any => true,
            Tok::Lit(l) => *l == c,
            Tok::Class { negate, ranges } => ranges.iter().any(|(lo, hi)| *lo <= c && c <= *hi) != *negate,
        }
    }
}

/// The pattern as tokens; `None` when malformed (Go's `ErrBadPattern`).
fn tokens(pattern: &str) -> Option<Vec<Tok>> {
    let p: Vec<char> = pattern.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < p.len() {
        match p[i] {
            '*' => out.push(Tok::Star),
            '?' => out.push(Tok::Any),
            '\\' => {
                i += 1;
                out.push(Tok::Lit(*p.get(i)?));
            }
            '[' => {
                i += 1;
                let negate = p.get(i) == Some(&'^');
                if negate {
                    i += 1;
                }
                let mut ranges = Vec::new();
                loop {
                    if p.get(i) == Some(&']') && !ranges.is_empty() {
                        break;
                    }
                    let (lo, next) = class_char(&p, i)?;
                    let (hi, next) = if p.get(next) == Some(&'-') { class_char(&p, next + 1)? } else { (lo, next) };
                    if lo > hi {
                        return None;
                    }
                    ranges.push((lo, hi));
                    i = next;
                }
                out.push(Tok::Class { negate, ranges });
            }
            c => out.push(Tok::Lit(c)),
        }
        i += 1;
    }
    Some(out)
}

/// One character of a class at `p[i]`, and where the next starts.
fn class_char(p: &[char], i: usize) -> Option<(char, usize)> {
    match p.get(i)? {
        '\\' => Some((*p.get(i + 1)?, i + 2)),
        '-' | ']' => None,
        c => Some((*c, i + 1)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(values: &[(&str, &str)], opaque: &[&str]) -> BuildArgs {
        BuildArgs {
            values: values.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            opaque: opaque.iter().map(|s| s.to_string()).collect(),
        }
    }

    fn sources(list: &[&str]) -> Inputs {
        Inputs::Sources(list.iter().map(|s| s.to_string()).collect())
    }

    fn whole(why: &str) -> Inputs {
        Inputs::Whole(why.to_string())
    }

    #[test]
    fn dockerfiles_read_their_sources_or_the_whole_context() {
        let none = args(&[], &[]);
        let cases: Vec<(&str, &str, BuildArgs, Inputs)> = vec![
            ("plain copy", "FROM scratch\nCOPY src /src\n", none.clone(), sources(&["src"])),
            (
                "a byte order mark and a directive",
                "\u{feff}# syntax=docker.io/docker/dockerfile:1@sha256:ab\nFROM scratch\nCOPY src /src\n",
                none.clone(),
                sources(&["src"]),
            ),
            (
                "ARG default",
                "FROM scratch\nARG DIR=src/server\nCOPY ${DIR}/ /app/\n",
                none.clone(),
                sources(&["src/server"]),
            ),
            (
                "configured build arg over the default",
                "FROM scratch\nARG DIR=src/server\nCOPY $DIR /app/\n",
                args(&[("DIR", "src/worker")], &[]),
                sources(&["src/worker"]),
            ),
            (
                "global ARG redeclared in the stage, ${VAR:-default}",
                "ARG BASE=alpine\nARG APP=api\nFROM $BASE\nARG APP\nARG MISSING\nCOPY cmd/${APP} ${MISSING:-conf}/x.toml /\n",
                none.clone(),
                sources(&["cmd/api", "conf/x.toml"]),
            ),
            (
                "ENV, a stage built on a stage, and ENV over ARG",
                "FROM scratch AS base\nENV ROOT=lib\nFROM base\nARG ROOT=other\nCOPY ${ROOT}/a /\n",
                none.clone(),
                sources(&["lib/a"]),
            ),
            ("wildcard", "FROM scratch\nCOPY ./go.* /src/\n", none.clone(), sources(&["go.*"])),
            (
                "multiple sources and flags",
                "FROM scratch\ncopy --chown=1:1 --chmod=755 --link a.txt /b/ ./c/ /dst/\n",
                none.clone(),
                sources(&["a.txt", "b", "c"]),
            ),
            (
                "JSON form",
                "FROM scratch\nADD [\"src/a b.txt\", \"/etc/x\", \"/dst/\"]\n",
                none.clone(),
                sources(&["etc/x", "src/a b.txt"]),
            ),
            (
                "multi-stage --from reads no context file",
                "FROM golang AS builder\nCOPY go.mod go.sum ./\nRUN go build\nFROM scratch\nCOPY --from=builder /out/app /app\nCOPY --from=${SERVER_IMAGE} /x /x\n",
                args(&[], &["SERVER_IMAGE"]),
                sources(&["go.mod", "go.sum"]),
            ),
            (
                "RUN bind mounts",
                "FROM alpine\nRUN --mount=type=bind,source=scripts/build.sh,target=/b.sh --mount=type=cache,target=/c --mount=type=secret,id=s,src=x sh /b.sh\nRUN --mount=type=bind,from=builder,target=/o ls\n",
                none.clone(),
                sources(&["scripts/build.sh"]),
            ),
            (
                "line continuations, comments and the escape directive",
                "# escape=`\n\nFROM scratch\nCOPY a `\n# inside\n     b `\n\n  /dst\n# comment\nCOPY c\\d /\n",
                none.clone(),
                sources(&["a", "b", "c\\d"]),
            ),
            (
                "docker/dockerfile syntax",
                "# syntax=docker/dockerfile:1.7\nFROM scratch\nCOPY --parents ./x/**/y.go /\n",
                none.clone(),
                sources(&["x/**/y.go"]),
            ),
            (
                "backslash continuation",
                "FROM scratch\nCOPY one \\\n  two \\\n  /dst/\n",
                none.clone(),
                sources(&["one", "two"]),
            ),
            ("COPY . .", "FROM scratch\nCOPY . .\n", none.clone(), whole("COPY . .")),
            ("COPY ./ /app", "FROM scratch\nCOPY src ./ /app\n", none.clone(), whole("COPY src ./ /app")),
            (
                "a bind mount of the root",
                "FROM alpine\nRUN --mount=type=bind,from=,target=/src make\n",
                none.clone(),
                whole("RUN --mount=type=bind,from=,target=/src make"),
            ),
            ("heredoc", "FROM alpine\nRUN <<EOF\necho hi\nEOF\nCOPY a /\n", none.clone(), whole("heredoc: RUN <<EOF")),
            (
                "ADD of a URL",
                "FROM scratch\nADD https://example.com/a.tgz /\n",
                none.clone(),
                whole("ADD https://example.com/a.tgz / reads from the network"),
            ),
            (
                "ADD of a git repository",
                "FROM scratch\nADD git@github.com:a/b.git /b\n",
                none.clone(),
                whole("ADD git@github.com:a/b.git /b reads from the network"),
            ),
            (
                "another frontend",
                "# syntax=example.com/frontend:1\nFROM scratch\nCOPY a /\n",
                none.clone(),
                whole("# syntax=example.com/frontend:1 is another frontend"),
            ),
            (
                "an undeclared variable",
                "FROM golang\nCOPY $GOPATH/src /src\n",
                none.clone(),
                whole("COPY $GOPATH/src /src: $GOPATH is not declared here (it may come from the base image)"),
            ),
            (
                "an ARG without a value",
                "FROM scratch\nARG DIR\nCOPY $DIR /src\n",
                none.clone(),
                whole("COPY $DIR /src: ARG DIR has no value"),
            ),
            (
                "a parent's image as a path",
                "FROM scratch\nARG SERVER_IMAGE\nCOPY ${SERVER_IMAGE} /src\n",
                args(&[], &["SERVER_IMAGE"]),
                whole("COPY ${SERVER_IMAGE} /src: $SERVER_IMAGE is known only at build time"),
            ),
            (
                "an unparseable line",
                "FROM scratch\nCOPY a /\nFROBNICATE x\n",
                none.clone(),
                whole("cannot read line 3: FROBNICATE x"),
            ),
            ("a COPY with no destination", "FROM scratch\nCOPY a\n", none.clone(), whole("cannot read line 2: COPY a")),
            ("an unknown flag", "FROM scratch\nCOPY --frob a /\n", none, whole("COPY --frob a /: unknown flag --frob")),
        ];
        for (name, text, args, want) in cases {
            assert_eq!(inputs(text, &args), want, "{name}:\n{text}");
        }
    }

    /// tests/corpus/dockerfile: a Dockerfile, a line `----`, then the sources
    /// it reads one a line, or `whole: <reason>`; read with `SERVER_IMAGE` as a parent's image.
    #[test]
    fn corpus_replays() {
        for (name, text) in crate::config::corpus::texts("dockerfile") {
            let (dockerfile, expected) = text.split_once("\n----\n").unwrap_or_else(|| panic!("{name}: no ----"));
            let want = match expected.trim().strip_prefix("whole: ") {
                Some(why) => Inputs::Whole(why.to_string()),
                None => Inputs::Sources(expected.lines().map(str::to_string).collect()),
            };
            assert_eq!(inputs(dockerfile, &args(&[], &["SERVER_IMAGE"])), want, "{name}");
        }
    }

    #[test]
    fn wildcards_match_like_go_filepath_match() {
        for (pattern, name, want) in [
            ("*", "abc", true),
            ("a*c", "abbbc", true),
            ("a*c", "abd", false),
            ("a?c", "abc", true),
            ("a?c", "ac", false),
            ("[a-c]x", "bx", true),
            ("[a-c]x", "dx", false),
            ("[^a-c]x", "dx", true),
            ("[^a-c]x", "ax", false),
            ("[xyz]", "y", true),
            ("a\\*", "a*", true),
            ("a\\*", "ab", false),
            ("[", "x", true),
            ("[]a]", "a", true),
            ("a[", "a", true),
            ("*x", "xxx", true),
            ("a*b*c*d*e*f*g*h*i*j*z", "abcdefghijabcdefghijabcdefghijabcdefghij", false),
            ("", "", true),
            ("*", "", true),
        ] {
            assert_eq!(matches(pattern, name), want, "{pattern} ~ {name}");
        }
        // Per segment: a directory match selects everything under it; `*` stays in its segment.
        assert!(selects("src", "src/a/b.rs"));
        assert!(selects("src/*.rs", "src/main.rs"));
        assert!(!selects("src/*.rs", "src/a/main.rs"));
        assert!(selects("src/*", "src/a/main.rs"));
        assert!(!selects("src", "srcx/a"));
        assert!(!selects("src/a", "src"));
        assert!(selects("x/**/y.go", "x/a/b/y.go"));
        assert!(selects("x/**/y.go", "x/y.go"));
        assert!(goes_through("src/a/b", "src"));
        assert!(goes_through("s*/a", "src/a"));
        assert!(!goes_through("src", "src/a"));
    }

    mod props {
        use proptest::prelude::*;

        use super::super::*;

        /// Lines of Dockerfiles, well-formed or not.
        fn line() -> impl Strategy<Value = String> {
            let word = prop::sample::select(vec![
                "src", "./a", "/b/", "../c", "d/*.go", "${X}", "$Y", "${X:-e}", "[f-h]?", "'q r'", "\"s\"", ".",
            ]);
            let instr = prop::sample::select(vec![
                "FROM scratch",
                "FROM base AS b",
                "COPY",
                "ADD",
                "COPY --from=b",
                "COPY --chown=1",
                "RUN",
                "ARG X",
                "ARG Y=z",
                "ENV X=w",
                "RUN --mount=type=bind,source=m",
                "# c",
                "",
                "WORKDIR /w",
                "COPY [\"j\",",
            ]);
            (instr, prop::collection::vec(word, 0..4), any::<bool>())
                .prop_map(|(i, w, cont)| format!("{i} {}{}", w.join(" "), if cont { " \\" } else { "" }))
        }

        proptest! {
            #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

            #[test]
            fn any_dockerfile_reads_clean_sources_or_says_why(lines in prop::collection::vec(line(), 0..8)) {
                let text = lines.join("\n");
                match inputs(&text, &BuildArgs::default()) {
                    Inputs::Sources(sources) => {
                        for s in &sources {
                            prop_assert!(!s.is_empty() && !s.starts_with('/') && !s.ends_with('/'), "{s:?}");
                            prop_assert!(s.split('/').all(|p| !p.is_empty() && p != "." && p != ".."), "{s:?}");
                        }
                        // Copying everything afterwards can only widen the inputs (`RUN true`
                        // ends a continued last line).
                        let wider = inputs(&format!("{text}\nRUN true\nCOPY . .\n"), &BuildArgs::default());
                        prop_assert!(matches!(wider, Inputs::Whole(_)), "{wider:?}");
                    }
                    Inputs::Whole(why) => prop_assert!(!why.is_empty()),
                }
            }

            #[test]
            fn wildcards_match_as_the_obvious_recursive_matcher(pattern in "[ab*?]{0,8}", name in "[ab]{0,10}") {
                fn naive(p: &[u8], s: &[u8]) -> bool {
                    match p.first() {
                        None => s.is_empty(),
                        Some(b'*') => (0..=s.len()).any(|k| naive(&p[1..], &s[k..])),
                        Some(b'?') => !s.is_empty() && naive(&p[1..], &s[1..]),
                        Some(c) => s.first() == Some(c) && naive(&p[1..], &s[1..]),
                    }
                }
                prop_assert_eq!(matches(&pattern, &name), naive(pattern.as_bytes(), name.as_bytes()));
            }

            #[test]
            fn a_literal_source_selects_itself_and_what_is_under_it(
                source in "[a-c]{1,2}(/[a-c]{1,2}){0,2}",
                path in "[a-c]{1,2}(/[a-c]{1,2}){0,3}",
            ) {
                let under = path == source || path.starts_with(&format!("{source}/"));
                prop_assert_eq!(selects(&source, &path), under);
            }
        }
    }
}
