//! What relctl prints on stdout: plans and release reports, as text or JSON.

use relctl::plan::{ImageAction, Plan};
use relctl::release::Report;

pub fn plan(plan: &Plan, json: bool) {
    if json {
        println!("{}", serde_json::to_string_pretty(plan).expect("plans serialize"));
    } else {
        print!("{plan}");
    }
}

pub fn report(report: &Report, plan: &Plan, json: bool) {
    if json {
        let value = serde_json::json!({ "plan": plan, "report": report });
        println!("{}", serde_json::to_string_pretty(&value).expect("reports serialize"));
        return;
    }
    println!("released {} from commit {}", report.tag, report.commit);
    for p in &report.images {
        // The plan's words: build, retag, published.
        let action = plan.images.iter().find(|i| i.name == p.image).map(|i| &i.action);
        let how = match action {
            Some(ImageAction::Retag { from, .. }) => format!("retagged from {from}"),
            Some(ImageAction::Published { .. }) => "published before; tags added".into(),
            _ => "built".into(),
        };
        for tag in &p.tags {
            println!("  {}:{tag}  {}  ({how})", p.repository, p.digest);
        }
    }
    for m in &report.moved {
        println!("  {m}  (moved)");
    }
    match (&report.version_commit, &report.version_file) {
        (Some(c), Some(v)) => println!("{} = {v} committed as {c}", plan.version_file.path),
        _ => println!("{}: {}", plan.version_file.path, plan.version_file.reason),
    }
}

pub fn verification(v: &relctl::install::verify::Verification, json: bool) {
    if json {
        println!("{}", serde_json::to_string_pretty(v).expect("verifications serialize"));
        return;
    }
    let width = v.images.iter().map(|i| i.image.len()).max().unwrap_or(0);
    for i in &v.images {
        match &i.problem {
            None => {
                println!("ok       {:width$}  {}  {}", i.image, i.reference, i.digest.as_deref().unwrap_or(""));
                for p in &i.platforms {
                    println!("         {:width$}    {}  {}", "", p.platform, p.digest);
                }
            }
            Some(p) => println!("MISSING  {:width$}  {p}", i.image),
        }
    }
    if v.ok() {
        println!("{}: all {} images published from {}", v.tag, v.images.len(), v.commit);
    }
}
