//! `kanban claim <id>`: claim a ready task by hand and print its workspace.

use std::path::PathBuf;

use anyhow::Result;
use kanban_core::Task;
use kanban_hermes::layout::BoardPaths;
use kanban_store::{ClaimOutcome, ClaimRequest};

use crate::cli::ClaimArgs;
use crate::context::Ctx;
use crate::worker_process::claimer_id;

/// Where the task's worker runs. Scratch workspaces are created here;
/// `dir:` and worktree paths are prepared by the dispatcher at spawn.
pub fn workspace_for(task: &Task, board: &BoardPaths) -> PathBuf {
    match (task.workspace_kind.as_str(), &task.workspace_path) {
        (_, Some(p)) => PathBuf::from(p),
        ("scratch", None) => board.scratch_workspace(&task.id),
        (_, None) => board.scratch_workspace(&task.id),
    }
}

pub fn run(args: ClaimArgs, ctx: &Ctx) -> Result<i32> {
    let task = crate::command::require_task(ctx, &args.task_id)?;
    let req = ClaimRequest {
        task_id: task.id.clone(),
        claim_lock: claimer_id(),
        ttl_seconds: args.ttl,
        review: false,
        ceilings: Default::default(),
    };
    let store = ctx.store()?;
    match store.claim_task(&req)? {
        ClaimOutcome::Claimed { task, .. } => {
            let ws = workspace_for(&task, &ctx.board);
            if task.workspace_kind == "scratch" {
                kanban_hermes::layout::create_private_dir(&ws)?;
            }
            // Record where the work happens, as the reference does, so
            // `show` and the worker context name the same directory.
            if task.workspace_path.is_none() {
                store.set_task_workspace(&task.id, &ws.to_string_lossy(), None)?;
            }
            println!("Claimed {}", task.id);
            println!("Workspace: {}", ws.display());
            Ok(0)
        }
        ClaimOutcome::Lost { status, claim_lock } => {
            crate::error::refusal(format_args!(
                "cannot claim {}: status={status} lock={}",
                task.id,
                claim_lock.as_deref().unwrap_or("(none)")
            ));
            Ok(1)
        }
        ClaimOutcome::ParentsPending => {
            crate::error::refusal(format_args!(
                "cannot claim {}: parents are not done (moved back to todo)",
                task.id
            ));
            Ok(1)
        }
        ClaimOutcome::CeilingReached(which) => {
            crate::error::refusal(format_args!("cannot claim {}: {which}", task.id));
            Ok(1)
        }
    }
}
