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
/// Width of the status column: the longest name (a space follows).
const STATUS_WIDTH: usize = longest(&STAT_STATUSES);

const fn longest(names: &[&str]) -> usize {
    let (mut i, mut max) = (0, 0);
    while i < names.len() {
        if names[i].len() > max {
            max = names[i].len();
        }
        i += 1;
    }
    max
}

pub fn run(args: JsonArgs, ctx: &Ctx) -> Result<i32> {
    let stats = ctx.store()?.stats()?;
    if args.json {
        print_json(&stats);
        return Ok(0);
    }
    println!("By status:");
    for k in STAT_STATUSES {
        // One space after the longest name (`scheduled`) aligns every
        // count; the other rows read exactly as the reference's.
        let n = stats.by_status.get(k).copied().unwrap_or(0);
        println!("  {k:<STATUS_WIDTH$} {n}");
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
