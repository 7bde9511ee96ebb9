//! `kanban stats`: per-status and per-assignee counts, oldest ready age.

use anyhow::Result;

use crate::cli::JsonArgs;
use crate::context::Ctx;
use crate::output::{line, print_json};

/// Statuses listed in the human view, in board order (archived excluded).
const STAT_STATUSES: [&str; 7] = [
    "triage",
    "todo",
    "scheduled",
    "ready",
    "running",
    "blocked",
    "done",
];

pub fn run(args: JsonArgs, ctx: &Ctx) -> Result<i32> {
    let stats = ctx.store()?.stats()?;
    if args.json {
        print_json(&stats);
        return Ok(0);
    }
    println!("By status:");
    for k in STAT_STATUSES {
        println!("  {k:<8}  {}", stats.by_status.get(k).copied().unwrap_or(0));
    }
    if !stats.by_assignee.is_empty() {
        println!("\nBy assignee:");
        for (who, counts) in &stats.by_assignee {
            let parts: Vec<String> = counts.iter().map(|(k, v)| format!("{k}={v}")).collect();
            println!("  {:<20}  {}", line(who), line(&parts.join(", ")));
        }
    }
    if let Some(age) = stats.oldest_ready_age_seconds {
        println!("\nOldest ready task age: {age}s");
    }
    Ok(0)
}
