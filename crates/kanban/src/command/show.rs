//! `kanban show <id>`: the task, its links, body, result or latest summary,
//! comments, last events and runs; `--json` for the reference's shape.

use anyhow::Result;
use kanban_core::{Run, Task};
use serde::Serialize;
use serde_json::Value;

use crate::cli::{RunFilter, RunStateType, ShowArgs};
use crate::context::Ctx;
use crate::error::usage;
use crate::output::{CliTask, block, fmt_ts, line, payload_suffix, print_json};
use crate::worker_env::WorkerEnv;

/// Events shown in the human view (the JSON carries them all).
const SHOWN_EVENTS: usize = 20;

/// `--state-type` / `--state-name`: both or neither.
pub fn run_filter(f: &RunFilter, verb: &str) -> Result<Option<(RunStateType, String)>> {
    match (&f.state_type, &f.state_name) {
        (None, None) => Ok(None),
        (Some(t), Some(n)) => Ok(Some((*t, n.clone()))),
        _ => Err(usage(format!(
            "kanban {verb}: pass both --state-type and --state-name, or omit both"
        ))),
    }
}

pub fn filter_runs(runs: Vec<Run>, filter: &Option<(RunStateType, String)>) -> Vec<Run> {
    let Some((kind, name)) = filter else {
        return runs;
    };
    runs.into_iter()
        .filter(|r| match kind {
            RunStateType::Status => &r.status == name,
            RunStateType::Outcome => r.outcome.as_deref() == Some(name.as_str()),
        })
        .collect()
}

/// Latest non-empty run summary (by end, else start time), the worker's
/// handoff when `tasks.result` is empty.
pub fn latest_summary(runs: &[Run]) -> Option<String> {
    runs.iter()
        .filter(|r| r.summary.as_deref().is_some_and(|s| !s.is_empty()))
        .max_by_key(|r| (r.ended_at.unwrap_or(r.started_at), r.id))
        .and_then(|r| r.summary.clone())
}

/// A run in `show --json`, keys in the reference's order.
#[derive(Serialize)]
struct ShowRun<'a> {
    id: i64,
    profile: &'a Option<String>,
    step_key: &'a Option<String>,
    status: &'a str,
    outcome: &'a Option<String>,
    summary: &'a Option<String>,
    error: &'a Option<String>,
    metadata: &'a Option<Value>,
    worker_pid: Option<i64>,
    started_at: i64,
    ended_at: Option<i64>,
}

#[derive(Serialize)]
struct ShowComment<'a> {
    author: &'a str,
    body: &'a str,
    created_at: i64,
}

#[derive(Serialize)]
struct ShowEvent<'a> {
    kind: &'a str,
    payload: &'a Value,
    created_at: i64,
    run_id: Option<i64>,
}

#[derive(Serialize)]
struct ShowJson<'a> {
    task: CliTask<'a>,
    latest_summary: &'a Option<String>,
    parents: &'a [String],
    children: &'a [String],
    comments: Vec<ShowComment<'a>>,
    events: Vec<ShowEvent<'a>>,
    runs: Vec<ShowRun<'a>>,
    /// Ours: when a task whose worker could not be started is tried again.
    #[serde(skip_serializing_if = "Option::is_none")]
    next_spawn_attempt_at: Option<i64>,
}

pub fn run(args: ShowArgs, ctx: &Ctx) -> Result<i32> {
    let filter = run_filter(&args.runs, "show")?;
    let task_id = super::task_arg(&WorkerEnv::from_env(), args.task_id.as_deref())?;
    let task = crate::command::require_task(ctx, &task_id)?;
    let store = ctx.store()?;
    let id = &task.id;
    let comments = store.comments(id)?;
    let events = store.events(&kanban_store::EventQuery {
        task_id: Some(id.clone()),
        ..Default::default()
    })?;
    let parents = store.parents_of(id)?;
    let children = store.children_of(id)?;
    let all_runs = store.runs(id)?;
    let latest = latest_summary(&all_runs);
    let next_attempt = super::dispatch::next_spawn_attempt(&task, &all_runs);
    let runs = filter_runs(all_runs, &filter);

    if args.json {
        print_json(&ShowJson {
            task: CliTask::from(&task),
            latest_summary: &latest,
            parents: &parents,
            children: &children,
            comments: comments
                .iter()
                .map(|c| ShowComment {
                    author: &c.author,
                    body: &c.body,
                    created_at: c.created_at,
                })
                .collect(),
            events: events
                .iter()
                .map(|e| ShowEvent {
                    kind: &e.kind,
                    payload: &e.payload,
                    created_at: e.created_at,
                    run_id: e.run_id,
                })
                .collect(),
            runs: runs
                .iter()
                .map(|r| ShowRun {
                    id: r.id,
                    profile: &r.profile,
                    step_key: &r.step_key,
                    status: &r.status,
                    outcome: &r.outcome,
                    summary: &r.summary,
                    error: &r.error,
                    metadata: &r.metadata,
                    worker_pid: r.worker_pid,
                    started_at: r.started_at,
                    ended_at: r.ended_at,
                })
                .collect(),
            next_spawn_attempt_at: next_attempt,
        });
        return Ok(0);
    }

    print_header(&task, ctx.failure_limit());
    super::diagnostics::print_show_section(ctx, &task)?;
    if let Some(at) = next_attempt {
        println!(
            "  next attempt: {} (in {}s; its worker could not be started, retried with backoff)",
            fmt_ts(Some(at)),
            (at - ctx.now()).max(0)
        );
    }
    if task.started_at.is_some() {
        println!("  started:   {}", fmt_ts(task.started_at));
    }
    if task.completed_at.is_some() {
        println!("  completed: {}", fmt_ts(task.completed_at));
    }
    if !parents.is_empty() {
        println!("  parents:   {}", line(&parents.join(", ")));
    }
    if !children.is_empty() {
        println!("  children:  {}", line(&children.join(", ")));
    }
    if let Some(body) = task.body.as_deref().filter(|b| !b.is_empty()) {
        println!("\nBody:\n{}", block(body));
    }
    if let Some(result) = task.result.as_deref().filter(|r| !r.is_empty()) {
        println!("\nResult:\n{}", block(result));
    } else if let Some(s) = &latest {
        println!("\nLatest summary:\n{}", block(s));
    }
    if !comments.is_empty() {
        println!("\nComments ({}):", comments.len());
        for c in &comments {
            println!(
                "  [{}] {}: {}",
                fmt_ts(Some(c.created_at)),
                line(&c.author),
                block(&c.body)
            );
        }
    }
    if !events.is_empty() {
        println!("\nEvents ({}):", events.len());
        for e in &events[events.len().saturating_sub(SHOWN_EVENTS)..] {
            let run_tag = e.run_id.map(|r| format!(" [run {r}]")).unwrap_or_default();
            println!(
                "  [{}]{run_tag} {}{}",
                fmt_ts(Some(e.created_at)),
                line(&e.kind),
                payload_suffix(&e.payload)
            );
        }
    }
    if !runs.is_empty() {
        println!("\nRuns ({}):", runs.len());
        for r in &runs {
            let elapsed = match r.ended_at {
                Some(end) => format!("{}s", (end - r.started_at).max(0)),
                None => "active".into(),
            };
            let outcome = r.outcome.as_deref().unwrap_or(if r.status.is_empty() {
                "active"
            } else {
                &r.status
            });
            println!(
                "  #{:<3} {:<12} @{}  {elapsed}  {}",
                r.id,
                line(outcome),
                line(r.profile.as_deref().unwrap_or("-")),
                fmt_ts(Some(r.started_at))
            );
            if let Some(line) = first_line(r.summary.as_deref(), 160) {
                println!("        → {line}");
            }
            if let Some(line) = first_line(r.error.as_deref(), 160) {
                println!("        ! {line}");
            }
        }
    }
    Ok(0)
}

fn print_header(task: &Task, config_limit: Option<i64>) {
    println!("Task {}: {}", line(&task.id), line(&task.title));
    println!("  status:    {}", task.status);
    println!(
        "  assignee:  {}",
        line(task.assignee.as_deref().unwrap_or("-"))
    );
    if let Some(t) = &task.tenant {
        println!("  tenant:    {}", line(t));
    }
    let at = task
        .workspace_path
        .as_deref()
        .map(|p| format!(" @ {}", line(p)))
        .unwrap_or_default();
    println!("  workspace: {}{at}", line(&task.workspace_kind));
    if let Some(b) = &task.branch_name {
        println!("  branch:    {}", line(b));
    }
    if let Some(skills) = task.skills.as_ref().filter(|s| !s.is_empty()) {
        println!("  skills:    {}", line(&skills.join(", ")));
    }
    if let Some(m) = &task.model_override {
        println!("  model:     {}", line(m));
    }
    match task.max_retries {
        Some(n) => println!("  max-retries: {n} (task)"),
        None => match config_limit.filter(|n| *n != kanban_core::defaults::FAILURE_LIMIT) {
            Some(n) => println!("  max-retries: {n} (config kanban.failure_limit)"),
            None => println!(
                "  max-retries: {} (default)",
                kanban_core::defaults::FAILURE_LIMIT
            ),
        },
    }
    println!(
        "  created:   {} by {}",
        fmt_ts(Some(task.created_at)),
        line(task.created_by.as_deref().unwrap_or("-"))
    );
}

/// The first line of `s`, at most `max` characters, escaped for one line.
fn first_line(s: Option<&str>, max: usize) -> Option<String> {
    let s = s.filter(|s| !s.is_empty())?;
    let first: String = s.lines().next().unwrap_or("").chars().take(max).collect();
    Some(line(&first).into_owned())
}
