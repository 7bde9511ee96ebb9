//! `kanban runs <id>`: one row per attempt, numbered by run id.

use anyhow::Result;
use serde::Serialize;
use serde_json::Value;

use crate::cli::RunsArgs;
use crate::command::show::{filter_runs, run_filter};
use crate::context::Ctx;
use crate::output::{fmt_ts, line, print_json};

/// `42s`, `7m`, `1.5h`, as the reference's runs table writes elapsed time.
pub fn fmt_elapsed(secs: i64) -> String {
    let s = secs.max(0);
    if s < 60 {
        format!("{s}s")
    } else if s < 3_600 {
        format!("{}m", s / 60)
    } else {
        format!("{:.1}h", s as f64 / 3_600.0)
    }
}

/// A run in `runs --json`, keys in the reference's order.
#[derive(Serialize)]
struct RunRow<'a> {
    id: i64,
    profile: &'a Option<String>,
    status: &'a str,
    outcome: &'a Option<String>,
    started_at: i64,
    ended_at: Option<i64>,
    summary: &'a Option<String>,
    error: &'a Option<String>,
    metadata: &'a Option<Value>,
    worker_pid: Option<i64>,
    step_key: &'a Option<String>,
}

pub fn run(args: RunsArgs, ctx: &Ctx) -> Result<i32> {
    let filter = run_filter(&args.runs, "runs")?;
    let task = crate::command::require_task(ctx, &args.task_id)?;
    let runs = filter_runs(ctx.store()?.runs(&task.id)?, &filter);
    if args.json {
        let rows: Vec<RunRow<'_>> = runs
            .iter()
            .map(|r| RunRow {
                id: r.id,
                profile: &r.profile,
                status: &r.status,
                outcome: &r.outcome,
                started_at: r.started_at,
                ended_at: r.ended_at,
                summary: &r.summary,
                error: &r.error,
                metadata: &r.metadata,
                worker_pid: r.worker_pid,
                step_key: &r.step_key,
            })
            .collect();
        print_json(&rows);
        return Ok(0);
    }
    if runs.is_empty() {
        println!("(no runs yet for {})", line(&task.id));
        return Ok(0);
    }
    println!(
        "{:<3}  {:<12}  {:<16}  {:>8}  STARTED",
        "#", "OUTCOME", "PROFILE", "ELAPSED"
    );
    let now = ctx.now();
    // `#` is the run id, as in `show`'s `#<id>`, its events' `[run <id>]`,
    // `--json` and HERMES_KANBAN_RUN_ID (the reference numbers 1, 2, ...
    // here, so the same run had two numbers).
    for r in &runs {
        let elapsed = fmt_elapsed(r.ended_at.unwrap_or(now) - r.started_at);
        let outcome = match (&r.outcome, r.ended_at) {
            (Some(o), _) => line(o).into_owned(),
            (None, None) => "(running)".into(),
            (None, Some(_)) => line(&r.status).into_owned(),
        };
        println!(
            "{:>3}  {outcome:<12}  {:<16}  {elapsed:>8}  {}",
            r.id,
            line(r.profile.as_deref().unwrap_or("-")),
            fmt_ts(Some(r.started_at))
        );
        if let Some(s) = r.summary.as_deref().filter(|s| !s.is_empty()) {
            let first: String = s.lines().next().unwrap_or("").chars().take(100).collect();
            println!("     → {}", line(&first));
        }
        if let Some(e) = r.error.as_deref().filter(|e| !e.is_empty()) {
            println!("     ✖ {}", line(&e.chars().take(100).collect::<String>()));
        }
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::fmt_elapsed;

    #[test]
    fn elapsed_units() {
        assert_eq!(fmt_elapsed(-5), "0s");
        assert_eq!(fmt_elapsed(59), "59s");
        assert_eq!(fmt_elapsed(600), "10m");
        assert_eq!(fmt_elapsed(5_400), "1.5h");
    }
}
