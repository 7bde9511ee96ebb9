//! `kanban context <id>`: the text a worker reads (reference §5.3).

use anyhow::Result;
use kanban_core::context::{ParentHandoff, RecentWork, WorkerContextInput, build_worker_context};
use kanban_core::defaults::CONTEXT_RECENT_ROLE_RUNS;
use kanban_core::{Run, Status, Task};
use kanban_store::Store;

use crate::cli::OptTaskIdArg;
use crate::context::Ctx;
use crate::output::fmt_ts;
use crate::worker_env::WorkerEnv;

/// The latest `completed` run of a task, the handoff its children read.
fn latest_completed(runs: &[Run]) -> Option<&Run> {
    runs.iter()
        .filter(|r| r.outcome.as_deref() == Some("completed"))
        .max_by_key(|r| (r.started_at, r.id))
}

/// The assignee's latest completed runs on other tasks, newest first.
fn recent_work(store: &dyn Store, task: &Task) -> anyhow::Result<Vec<RecentWork>> {
    let Some(assignee) = &task.assignee else {
        return Ok(Vec::new());
    };
    Ok(store.recent_completed_runs(assignee, Some(&task.id), CONTEXT_RECENT_ROLE_RUNS)?)
}

/// Gather the rows and render the worker context of `task_id`.
pub fn render(ctx: &Ctx, task_id: &str) -> Result<String> {
    render_with(ctx.store()?, ctx.now(), task_id)
}

/// [`render`] for callers that hold a store but no `Ctx` (the MCP server).
pub fn render_with(store: &dyn Store, now: i64, task_id: &str) -> Result<String> {
    let task = store
        .get_task(task_id)?
        .ok_or_else(|| kanban_store::StoreError::TaskNotFound(task_id.to_string()))?;
    let runs = store.runs(&task.id)?;
    let comments = store.comments(&task.id)?;
    let mut parent_ids = store.parents_of(&task.id)?;
    parent_ids.sort();
    let mut parents = Vec::new();
    for pid in parent_ids {
        let Some(p) = store.get_task(&pid)? else {
            continue;
        };
        if p.status != Status::Done {
            continue;
        }
        let p_runs = store.runs(&pid)?;
        let run = latest_completed(&p_runs);
        parents.push(ParentHandoff {
            task_id: pid.clone(),
            summary: run.and_then(|r| r.summary.clone()),
            metadata: run.and_then(|r| r.metadata.clone()),
            result: p.result.clone(),
            completed_at: run.and_then(|r| r.ended_at).or(p.completed_at),
        });
    }
    let recent = recent_work(store, &task)?;
    let attachments = store.attachments(&task.id)?;
    let terminal_timeout = std::env::var("TERMINAL_TIMEOUT").ok();
    let format_ts = |ts: i64| fmt_ts(Some(ts));
    Ok(build_worker_context(&WorkerContextInput {
        task: &task,
        now,
        terminal_timeout_env: terminal_timeout.as_deref(),
        attachments: &attachments,
        runs: &runs,
        parents: &parents,
        recent_work: &recent,
        comments: &comments,
        format_ts: &format_ts,
    }))
}

pub fn run(args: OptTaskIdArg, ctx: &Ctx) -> Result<i32> {
    // Inside a worker the id defaults to the worker's own task.
    let task_id = crate::command::task_arg(&WorkerEnv::from_env(), args.task_id.as_deref())?;
    // println like the reference's print(): the text ends in a newline too.
    println!("{}", render(ctx, &task_id)?);
    Ok(0)
}
