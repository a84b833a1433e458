//! The human-readable form of a [`Plan`], as printed by `relctl plan` and
//! `relctl release --dry-run`.

use std::fmt;

use super::{ImageAction, Plan, PushSource, Step};

fn short(id: &str) -> &str {
    let id = id.strip_prefix("sha256:").unwrap_or(id);
    &id[..id.len().min(12)]
}

impl fmt::Display for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = if self.prerelease { "pre-release" } else { "stable" };
        writeln!(f, "release {} ({kind}, version {}) from commit {}", self.tag, self.version, self.commit)?;
        let width = self.images.iter().map(|i| i.name.len()).max().unwrap_or(0);
        let rwidth = self.images.iter().map(|i| i.repository.len()).max().unwrap_or(0);
        writeln!(f, "images:")?;
        for image in &self.images {
            let what = match &image.action {
                ImageAction::Build { reason } => format!("build ({reason})"),
                ImageAction::Published { digest } => {
                    format!("skip (already released, {})", short(digest))
                }
                ImageAction::Retag { from, .. } => format!("retag (unchanged since {from})"),
                ImageAction::NotSelected => "not selected (not released yet)".to_string(),
                ImageAction::Staged { digest: Some(digest) } => format!("staged ({})", short(digest)),
                ImageAction::Staged { digest: None } => "staged".to_string(),
            };
            let platforms = match image.platforms.is_empty() {
                true => String::new(),
                false => format!(" [{}]", image.platforms.join(", ")),
            };
            writeln!(f, "  {:width$}  {:rwidth$}  {what}{platforms}", image.name, image.repository)?;
            for d in &image.floating {
                writeln!(f, "  {:width$}    {}: {}", "", d.tag, d.reason)?;
            }
        }
        let current = self.version_file.current.as_deref().unwrap_or("(none)");
        match &self.version_file.next {
            Some(next) => writeln!(f, "{}: {current} -> {next}", self.version_file.path)?,
            None => writeln!(f, "{}: {current} ({})", self.version_file.path, self.version_file.reason)?,
        }
        if self.steps.is_empty() {
            writeln!(
                f,
                "nothing to do: every image carries {} from this commit and {} is current",
                self.tag, self.version_file.path
            )?;
        } else {
            writeln!(f, "steps:")?;
            for (n, step) in self.steps.iter().enumerate() {
                let n = n + 1;
                let phase = step.phase();
                match step {
                    Step::Build(b) => {
                        let after = if b.waits_for.is_empty() {
                            String::new()
                        } else {
                            format!(" (after {})", b.waits_for.join(", "))
                        };
                        let cache = match (b.no_cache, b.cache_from.is_empty()) {
                            (true, _) => ", no cache".to_string(),
                            (false, true) => String::new(),
                            (false, false) => format!(", cache from {}", b.cache_from.join(" ")),
                        };
                        let stage = if b.stage_tag.is_some() { ", uploaded as soon as built" } else { "" };
                        writeln!(f, "  {n:>2}. [{phase}] build  {} -> {}{after}{cache}{stage}", b.id, b.reference)?;
                    }
                    Step::Index(x) => {
                        let of: Vec<&str> = x.manifests.iter().map(|m| m.platform.as_str()).collect();
                        writeln!(f, "  {n:>2}. [{phase}] index  {} of {} -> {}", x.image, of.join(", "), x.tag)?;
                    }
                    Step::Sign(sg) => {
                        let what = match (sg.signature, sg.attestation) {
                            (true, true) => "signature and provenance",
                            (true, false) => "signature",
                            _ => "provenance",
                        };
                        let of = match &sg.digest {
                            Some(d) => short(d).to_string(),
                            None => "the image built in phase 1".to_string(),
                        };
                        let image = match sg.entry {
                            true => format!("{}@{}", sg.image, sg.platform),
                            false => sg.image.clone(),
                        };
                        writeln!(f, "  {n:>2}. [{phase}] sign   {image} {what} of {of}")?;
                    }
                    Step::Push(p) => {
                        let from = match &p.source {
                            PushSource::Build => String::new(),
                            PushSource::Tag(t) | PushSource::Staged(t) => format!(" (copy of {t})"),
                        };
                        writeln!(f, "  {n:>2}. [{phase}] push   {} {}{from}", p.image, p.tags.join(", "))?;
                    }
                    Step::MoveTag(m) => {
                        let from = m.from_digest.as_deref().map(|d| format!(" (was {})", short(d))).unwrap_or_default();
                        writeln!(f, "  {n:>2}. [{phase}] move   {} {} -> {}{from}", m.image, m.tag, m.to)?;
                    }
                    Step::CommitVersion(v) => {
                        writeln!(
                            f,
                            "  {n:>2}. [{phase}] commit {} = {} on the release branch: \"{}\"",
                            v.path, v.to, v.message
                        )?;
                    }
                }
            }
        }
        for note in &self.notes {
            writeln!(f, "note: {note}")?;
        }
        Ok(())
    }
}
