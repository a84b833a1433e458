//! What relctl prints on stdout: plans and release reports, as text or JSON.

use relctl::plan::Plan;
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
        let how = if p.built { "built and pushed" } else { "tagged" };
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
