//! `kanban reclaim <id>`: abort a worker's claim; the task returns to ready.

use anyhow::Result;
use kanban_store::StoreError;

use crate::cli::ReclaimArgs;
use crate::context::Ctx;
use crate::worker_process::end_worker;

pub fn run(args: ReclaimArgs, ctx: &Ctx) -> Result<i32> {
    let store = ctx.store()?;
    match store.reclaim_task(&args.task_id, args.reason.as_deref()) {
        Ok(done) => {
            if let Some(w) = &done.ended_worker {
                end_worker(store, done.run_id, w, false);
            }
            println!("Reclaimed {}", args.task_id);
            Ok(0)
        }
        Err(StoreError::Refused { .. } | StoreError::TaskNotFound(_)) => {
            crate::error::refusal(format_args!(
                "cannot reclaim {} (not running or unknown id)",
                args.task_id
            ));
            Ok(1)
        }
        Err(e) => Err(e.into()),
    }
}
