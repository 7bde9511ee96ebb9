//! The review flow of newer Hermes: `request-review`, `request-changes`
//! and `reopen-review`. Bad input changes nothing and exits non-zero.

use anyhow::Result;
use clap::Args;
use kanban_store::{ChangesRequest, ReviewRequest, StoreError, Transitioned};
use serde_json::{Value, json};

use crate::context::Ctx;
use crate::worker_process::{end_worker, is_own_task};

#[derive(Debug, Args)]
pub struct RequestReviewArgs {
    /// Task id (t_xxxxxxxx).
    pub task_id: String,
    /// The handoff the reviewer reads (required).
    #[arg(long)]
    pub summary: Option<String>,
    /// Structured handoff, a JSON object.
    #[arg(long)]
    pub metadata: Option<String>,
    /// Profile that reviews (the card is reassigned to it).
    #[arg(long)]
    pub reviewer: Option<String>,
    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct RequestChangesArgs {
    /// Task id (t_xxxxxxxx).
    pub task_id: String,
    /// The required changes.
    #[arg(required = true, num_args = 1..)]
    pub reason: Vec<String>,
    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct ReopenReviewArgs {
    /// One or more task ids waiting in review.
    #[arg(required = true, num_args = 1..)]
    pub task_ids: Vec<String>,
    /// Why the card goes back (kept on a `changes_requested` run).
    #[arg(long)]
    pub reason: Option<String>,
    /// Print the results as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct ApproveArgs {
    /// One or more task ids waiting in review.
    #[arg(required = true, num_args = 1..)]
    pub task_ids: Vec<String>,
    /// The verdict (kept on the `completed` run).
    #[arg(long)]
    pub summary: Option<String>,
    /// Print the results as JSON.
    #[arg(long)]
    pub json: bool,
}

fn result_json(t: &Transitioned) -> Value {
    json!({
        "ok": true,
        "task_id": t.task.id,
        "status": t.to.as_str(),
        "assignee": t.task.assignee,
        "run_id": t.run_id,
    })
}

/// A refusal or bad input as one clear line; other errors propagate.
fn refused(id: &str, verb: &str, e: StoreError) -> Result<String> {
    match e {
        StoreError::Refused { reason, .. } | StoreError::Stale { reason, .. } => {
            Ok(format!("cannot {verb} {id}: {reason}"))
        }
        StoreError::TaskNotFound(_) => Ok(format!("cannot {verb} {id}: unknown task")),
        StoreError::Invalid(e) => Err(crate::error::usage(format!("{verb} {id}: {e}"))),
        other => Err(other.into()),
    }
}

pub fn run_request_review(args: RequestReviewArgs, ctx: &Ctx) -> Result<i32> {
    let metadata = match args.metadata.as_deref() {
        None => None,
        Some(text) => Some(
            serde_json::from_str::<Value>(text)
                .map_err(|e| crate::error::usage(format!("--metadata is not valid JSON: {e}")))?,
        ),
    };
    let env = crate::worker_env::WorkerEnv::from_env();
    let req = ReviewRequest {
        task_id: args.task_id.clone(),
        summary: args.summary.unwrap_or_default(),
        metadata,
        reviewer: args.reviewer,
        expected_run_id: env.run_id_for(&args.task_id),
    };
    let store = ctx.store()?;
    match store.request_review(&req) {
        Ok(t) => {
            if args.json {
                println!("{}", result_json(&t));
            } else {
                println!(
                    "Review requested for {} (reviewer: {})",
                    t.task.id,
                    t.task.assignee.as_deref().unwrap_or("unassigned")
                );
            }
            Ok(0)
        }
        Err(e) => {
            crate::error::refusal(refused(&args.task_id, "request review for", e)?);
            Ok(1)
        }
    }
}

pub fn run_request_changes(args: RequestChangesArgs, ctx: &Ctx) -> Result<i32> {
    let env = crate::worker_env::WorkerEnv::from_env();
    let req = ChangesRequest {
        task_id: args.task_id.clone(),
        reason: args.reason.join(" "),
        expected_run_id: env.run_id_for(&args.task_id),
    };
    let store = ctx.store()?;
    match store.request_changes(&req) {
        Ok(t) => {
            if let Some(w) = &t.ended_worker {
                end_worker(store, t.run_id, w, is_own_task(&args.task_id));
            }
            if args.json {
                println!("{}", result_json(&t));
            } else {
                println!(
                    "Changes requested on {}: back to {} ({})",
                    t.task.id,
                    t.task.assignee.as_deref().unwrap_or("unassigned"),
                    t.to
                );
            }
            Ok(0)
        }
        Err(e) => {
            crate::error::refusal(refused(&args.task_id, "request changes on", e)?);
            Ok(1)
        }
    }
}

pub fn run_reopen_review(args: ReopenReviewArgs, ctx: &Ctx) -> Result<i32> {
    let store = ctx.store()?;
    let reason = args.reason.as_deref();
    each_task(&args.task_ids, args.json, "reopen review of", |id| {
        let t = store.reopen_review(id, reason)?;
        let line = format!(
            "Reopened {id}: back to {} ({})",
            t.task.assignee.as_deref().unwrap_or("unassigned"),
            t.to
        );
        Ok((t, line))
    })
}

/// Ours: an operator's verdict on cards waiting in review (no reviewer on
/// them), for boards whose dispatcher spawns no reviewers
/// (`kanban.review_dispatch: false`).
pub fn run_approve(args: ApproveArgs, ctx: &Ctx) -> Result<i32> {
    let store = ctx.store()?;
    let summary = args.summary.as_deref();
    each_task(&args.task_ids, args.json, "approve", |id| {
        let t = store.approve_review(id, summary)?;
        Ok((t, format!("Approved {id}: done")))
    })
}

/// One store call per distinct id; refusals are reported and counted
/// (exit 1 when any), the others printed (or collected as JSON).
fn each_task(
    ids: &[String],
    json_out: bool,
    verb: &str,
    mut act: impl FnMut(&str) -> std::result::Result<(Transitioned, String), StoreError>,
) -> Result<i32> {
    let mut failed = 0;
    let mut results = Vec::new();
    let mut seen: Vec<&String> = Vec::new();
    for id in ids {
        if seen.contains(&id) {
            continue;
        }
        seen.push(id);
        match act(id) {
            Ok((t, line)) => {
                if json_out {
                    results.push(result_json(&t));
                } else {
                    println!("{line}");
                }
            }
            Err(e) => {
                failed += 1;
                let msg = refused(id, verb, e)?;
                if json_out {
                    results.push(json!({"ok": false, "task_id": id, "error": msg}));
                }
                crate::error::refusal(msg);
            }
        }
    }
    if json_out {
        println!("{}", Value::Array(results));
    }
    Ok(if failed == 0 { 0 } else { 1 })
}
