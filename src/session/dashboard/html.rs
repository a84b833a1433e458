//! The dashboard page, rendered on the server: one HTML document with inline
//! CSS and no script (a `<meta http-equiv=refresh>` reloads it), readable from
//! phone width up (the tables stack into cards under 640 px). Everything that
//! comes from git, the registry, webhooks or errors goes through [`escape`].

use std::fmt::Write as _;
use std::time::SystemTime;

use super::View;
use crate::controller::state::Time;
use crate::session::status::{FloatingRow, ImageRow, Provenance, Row, State, short};

/// How often the page reloads itself.
pub const REFRESH_SECS: u32 = 10;

/// `s` as HTML text or attribute value: `&`, `<`, `>`, `"` and `'` as entities.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const STYLE: &str = r#"
:root{color-scheme:light dark;--ok:#1a7f37;--bad:#cf222e;--warn:#9a6700;--info:#0969da;--muted:#6e7781;--line:#d0d7de;--card:#f6f8fa}
@media (prefers-color-scheme:dark){:root{--ok:#3fb950;--bad:#f85149;--warn:#d29922;--info:#58a6ff;--muted:#8b949e;--line:#30363d;--card:#161b22}}
*{box-sizing:border-box}
body{font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0 auto;max-width:75rem;padding:1rem}
h1{font-size:1.35rem;margin:.2rem 0;overflow-wrap:anywhere}
h2{font-size:1.05rem;margin:1.4rem 0 .5rem}
p{margin:.3rem 0}
code,pre{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:.88em}
pre{white-space:pre-wrap;overflow-wrap:anywhere;margin:.25rem 0}
table{border-collapse:collapse;width:100%}
th,td{text-align:left;vertical-align:top;padding:.45rem .5rem;border-bottom:1px solid var(--line);overflow-wrap:anywhere}
th{color:var(--muted);font-weight:600}
ul{margin:0;padding-left:1.1rem}
dl{display:grid;grid-template-columns:max-content 1fr;gap:.25rem 1rem;margin:0}
dt{color:var(--muted)}
dd{margin:0;overflow-wrap:anywhere}
.muted{color:var(--muted)}
.state{font-weight:600;white-space:nowrap}
.published,.converged,.success{color:var(--ok)}
.pre_release{color:var(--info)}
.partial,.not_built,.drift{color:var(--warn)}
.failed,.error{color:var(--bad)}
.card{border-left:4px solid var(--bad);background:var(--card);padding:.4rem .75rem;margin:.5rem 0;border-radius:4px}
.scroll{overflow-x:auto}
@media (max-width:640px){
 body{padding:.6rem;font-size:14px}
 dl{grid-template-columns:1fr}
 dt{margin-top:.35rem}
 table,thead,tbody,tr,th,td{display:block}
 thead{display:none}
 tr{border:1px solid var(--line);border-radius:6px;margin:.5rem 0;padding:.2rem .5rem}
 td{border:0;padding:.2rem 0}
 td::before{content:attr(data-label);display:block;color:var(--muted);font-size:.8em}
}
"#;

fn digest(d: &str) -> &str {
    let hex = d.strip_prefix("sha256:").unwrap_or(d);
    &hex[..hex.len().min(12)]
}

fn duration(ms: u64) -> String {
    match ms {
        0..1000 => format!("{ms} ms"),
        1000..60_000 => format!("{:.1} s", ms as f64 / 1000.0),
        _ => format!("{} min {} s", ms / 60_000, ms % 60_000 / 1000),
    }
}

fn when(t: Time, now: SystemTime) -> String {
    format!("{} <span class=\"muted\">({})</span>", t.readable(), t.relative(now))
}

fn state_class(s: &State) -> &'static str {
    match s {
        State::Published => "published",
        State::PreRelease => "pre_release",
        State::Partial { .. } => "partial",
        State::NotBuilt => "not_built",
        State::Failed { .. } => "failed",
    }
}

fn image(i: &ImageRow) -> String {
    let name = escape(&i.image);
    let Some(d) = &i.digest else {
        return if i.listed {
            format!("{name} <span class=\"muted\">listed</span>")
        } else {
            format!("{name} <span class=\"not_built\">missing</span>")
        };
    };
    let how = match &i.provenance {
        Some(Provenance::Built) => "built".to_string(),
        Some(Provenance::Retagged { from, from_commit }) => {
            format!("retagged from {}", escape(from.as_deref().unwrap_or(short(from_commit))))
        }
        Some(Provenance::OtherCommit { commit }) => {
            format!(
                "<span class=\"failed\">built from {}</span>",
                escape(commit.as_deref().map_or("an unknown commit", short))
            )
        }
        None => String::new(),
    };
    format!("{name} <code title=\"{}\">{}</code> {how}", escape(d), escape(digest(d)))
}

fn release_row(out: &mut String, r: &Row, view: &View) {
    let tag = escape(&r.tag);
    let subject = r.subject.as_deref().map(|s| format!(" {}", escape(s))).unwrap_or_default();
    let failure = view.controller.errors.iter().find(|e| e.tag == r.tag);
    let mut state = format!("<span class=\"state {}\">{}</span>", state_class(&r.state), escape(&r.state.to_string()));
    if failure.is_some() {
        let _ = write!(state, "<br><a class=\"state failed\" href=\"#error-{tag}\">last attempt failed</a>");
    }
    let images: String = r.images.iter().map(|i| format!("<li>{}</li>", image(i))).collect();
    let data_state = if failure.is_some() { "failed".to_string() } else { state_class(&r.state).to_string() };
    let _ = writeln!(
        out,
        "<tr id=\"tag-{tag}\" data-state=\"{data_state}\"><td data-label=\"Tag\"><strong>{tag}</strong></td><td data-label=\"Commit\"><code title=\"{}\">{}</code>{subject}</td><td data-label=\"State\">{state}</td><td data-label=\"Images\"><ul>{images}</ul></td></tr>",
        escape(&r.commit),
        escape(short(&r.commit)),
    );
}

fn floating_row(out: &mut String, f: &FloatingRow) {
    let at = match (&f.digest, &f.release) {
        (None, _) => "<span class=\"not_built\">missing</span>".to_string(),
        (Some(d), Some(r)) => format!("{} <code>{}</code>", escape(r), escape(digest(d))),
        (Some(d), None) => format!("no release <code>{}</code>", escape(digest(d))),
    };
    let expected = escape(f.expected.as_deref().unwrap_or("-"));
    let mark =
        if f.drift { "<span class=\"state drift\">DRIFT</span>" } else { "<span class=\"state converged\">ok</span>" };
    let _ = writeln!(
        out,
        "<tr data-drift=\"{}\"><td data-label=\"Tag\"><strong>{}:{}</strong></td><td data-label=\"Points at\">{at}</td><td data-label=\"Should be\">{expected}</td><td data-label=\"\">{mark}</td></tr>",
        f.drift,
        escape(&f.image),
        escape(&f.tag),
    );
}

fn controller(out: &mut String, view: &View) {
    let (c, now) = (view.controller, view.now);
    out.push_str("<section id=\"controller\"><h2>Controller</h2><dl>\n");
    let last = match &c.last_reconcile {
        None => "<span class=\"muted\">none yet</span>".to_string(),
        Some(r) => {
            let mut s = format!(
                "{}: <span class=\"state {}\">{}</span> in {}, {} release tags in scope",
                when(r.finished_at, now),
                r.result,
                r.result,
                duration(r.duration_ms),
                r.in_scope
            );
            if !r.released.is_empty() {
                let _ = write!(s, "; released {}", escape(&r.released.join(", ")));
            }
            if !r.failed.is_empty() {
                let _ = write!(s, "; <span class=\"failed\">not converged: {}</span>", escape(&r.failed.join(", ")));
            }
            if let Some(e) = &r.error {
                let _ = write!(s, "<pre class=\"error\">{}</pre>", escape(e));
                if let Some(h) = &r.hint {
                    let _ = write!(s, "<p>hint: {}</p>", escape(h));
                }
            }
            s
        }
    };
    let _ = writeln!(out, "<dt>Last reconcile</dt><dd id=\"last-reconcile\">{last}</dd>");
    let running = match &c.running {
        None => "<span class=\"muted\">idle</span>".to_string(),
        Some(r) => {
            let mut s = format!("since {}", when(r.since, now));
            if !r.requested.is_empty() {
                let _ = write!(s, ", asked for {}", escape(&r.requested.join(", ")));
            }
            if !r.images.is_empty() {
                let items: String =
                    r.images.iter().map(|i| format!("<li>{}: {}</li>", escape(&i.image), escape(&i.state))).collect();
                let _ = write!(s, "<ul>{items}</ul>");
            }
            s
        }
    };
    let _ = writeln!(out, "<dt>Running</dt><dd id=\"running\">{running}</dd>");
    let next = match (c.next_run_at, view.interval) {
        (Some(t), _) => when(t, now),
        (None, None) => "<span class=\"muted\">none: no interval, webhooks only</span>".to_string(),
        (None, Some(_)) => "<span class=\"muted\">after the run under way</span>".to_string(),
    };
    let _ = writeln!(out, "<dt>Next scheduled run</dt><dd id=\"next-run\">{next}</dd>");
    let hook = match &c.last_webhook {
        None => "<span class=\"muted\">none since start</span>".to_string(),
        Some(w) => format!("{}: {} ({})", when(w.at, now), escape(w.outcome), escape(&w.detail)),
    };
    let _ = writeln!(out, "<dt>Last webhook</dt><dd id=\"last-webhook\">{hook}</dd>");
    let status_at = match view.status.at {
        Some(t) => when(t, now),
        None => "<span class=\"muted\">not yet: the first reconcile is under way</span>".to_string(),
    };
    let _ = writeln!(out, "<dt>Status as of</dt><dd>{status_at}</dd>");
    let _ = writeln!(out, "<dt>Up since</dt><dd>{}</dd>", when(c.started_at, now));
    out.push_str("</dl></section>\n");
}

fn errors(out: &mut String, view: &View) {
    let c = view.controller;
    if c.errors.is_empty() && view.status.error.is_none() {
        return;
    }
    out.push_str("<section id=\"errors\"><h2>Errors</h2>\n");
    if let Some((error, hint)) = &view.status.error {
        let _ = writeln!(
            out,
            "<div class=\"card\"><strong>status could not be refreshed</strong><pre>{}</pre><p>hint: {}</p></div>",
            escape(error),
            escape(hint)
        );
    }
    for e in &c.errors {
        let tag = escape(&e.tag);
        let hint = e.hint.as_deref().map(|h| format!("<p>hint: {}</p>", escape(h))).unwrap_or_default();
        let _ = writeln!(
            out,
            "<div class=\"card\" id=\"error-{tag}\"><strong>{tag}</strong> <span class=\"muted\">{}</span><pre>{}</pre>{hint}</div>",
            when(e.at, view.now),
            escape(&e.error)
        );
    }
    out.push_str("</section>\n");
}

/// The whole page.
pub fn render(view: &View) -> String {
    let mut out = String::with_capacity(16 * 1024);
    let project = escape(view.project);
    let _ = write!(
        out,
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
<meta http-equiv=\"refresh\" content=\"{REFRESH_SECS}\"><title>relctl: {project}</title><style>{STYLE}</style></head><body>\n"
    );
    let badge = match &view.status.status {
        Some(s) if s.converged => "<span class=\"state converged\">converged</span>",
        Some(_) => "<span class=\"state failed\">not converged</span>",
        None => "<span class=\"muted\">status pending</span>",
    };
    let _ = writeln!(
        out,
        "<header><h1>{project}</h1><p>registry <code>{}</code> · {badge}</p></header>",
        escape(view.registry)
    );
    controller(&mut out, view);
    errors(&mut out, view);
    if let Some(s) = &view.status.status {
        out.push_str("<section id=\"releases\"><h2>Release tags</h2><div class=\"scroll\"><table><thead><tr><th>Tag</th><th>Commit</th><th>State</th><th>Images</th></tr></thead><tbody>\n");
        if s.releases.is_empty() {
            out.push_str("<tr><td colspan=\"4\" class=\"muted\">no release tags in scope</td></tr>\n");
        }
        for r in &s.releases {
            release_row(&mut out, r, view);
        }
        out.push_str("</tbody></table></div></section>\n");
        out.push_str("<section id=\"floating\"><h2>Floating tags and VERSION</h2><div class=\"scroll\"><table><thead><tr><th>Tag</th><th>Points at</th><th>Should be</th><th></th></tr></thead><tbody>\n");
        for f in &s.floating {
            floating_row(&mut out, f);
        }
        let v = &s.version_file;
        let mark = if v.drift {
            "<span class=\"state drift\">DRIFT</span>"
        } else {
            "<span class=\"state converged\">ok</span>"
        };
        let _ = writeln!(
            out,
            "<tr id=\"version-file\" data-drift=\"{}\"><td data-label=\"File\"><strong>{}</strong></td><td data-label=\"Names\">{}</td><td data-label=\"Should be\">{}</td><td data-label=\"\">{mark}</td></tr>",
            v.drift,
            escape(&v.path),
            escape(v.names.as_deref().unwrap_or("(none)")),
            escape(v.expected.as_deref().unwrap_or("-")),
        );
        out.push_str("</tbody></table></div></section>\n");
    }
    let _ = writeln!(
        out,
        "<footer><p class=\"muted\">relctl {} · reloads every {REFRESH_SECS} s · <a href=\"/api/status\">JSON</a></p></footer></body></html>",
        env!("CARGO_PKG_VERSION")
    );
    out
}
