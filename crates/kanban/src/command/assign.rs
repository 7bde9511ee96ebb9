//! `kanban assign <id> <profile>` and `kanban reassign <id> <profile>`.

use anyhow::Result;
use kanban_core::Status;
use kanban_core::validate::normalize_assignee;
use kanban_store::{AssignTask, StoreError};

use crate::cli::{AssignArgs, ReassignArgs};
use crate::context::Ctx;
use crate::worker_process::end_worker;

pub fn run_assign(args: AssignArgs, ctx: &Ctx) -> Result<i32> {
    let profile = normalize_assignee(Some(&args.profile));
    ctx.store()?.assign_task(&AssignTask {
        task_id: args.task_id.clone(),
        assignee: profile.clone(),
        ..Default::default()
    })?;
    println!(
        "Assigned {} to {}",
        args.task_id,
        profile.as_deref().unwrap_or("(unassigned)")
    );
    Ok(0)
}

pub fn run_reassign(args: ReassignArgs, ctx: &Ctx) -> Result<i32> {
    let profile = normalize_assignee(Some(&args.profile));
    let store = ctx.store()?;
    let refused = || {
        crate::error::refusal(format_args!(
            "cannot reassign {} (unknown id, or still running — pass --reclaim to release first)",
            args.task_id
        ));
        Ok(1)
    };
    let Some(task) = store.get_task(&args.task_id)? else {
        return refused();
    };
    if args.reclaim && (task.status == Status::Running || task.claim_lock.is_some()) {
        // Reclaim as its own step so the detached worker is ended here.
        let done = store.reclaim_task(&task.id, args.reason.as_deref())?;
        if let Some(w) = &done.ended_worker {
            end_worker(store, done.run_id, w, false);
        }
    }
    let res = store.assign_task(&AssignTask {
        task_id: task.id.clone(),
        assignee: profile.clone(),
        source: None,
        reclaim_first: args.reclaim,
        reason: args.reason.clone(),
    });
    match res {
        Ok(_) => {
            println!(
                "Reassigned {} to {}{}",
                task.id,
                profile.as_deref().unwrap_or("(unassigned)"),
                if args.reclaim {
                    " (claim reclaimed)"
                } else {
                    ""
                }
            );
            Ok(0)
        }
        Err(StoreError::Refused { .. } | StoreError::TaskNotFound(_)) => refused(),
        Err(e) => Err(e.into()),
    }
}
