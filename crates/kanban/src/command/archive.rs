//! `kanban archive <id>...` and `kanban archive --rm <id>...`.

use anyhow::Result;
use kanban_store::StoreError;

use crate::cli::ArchiveArgs;
use crate::command::block::refusal_note;
use crate::context::Ctx;
use crate::error::usage;
use crate::worker_process::end_worker;

pub fn run(args: ArchiveArgs, ctx: &Ctx) -> Result<i32> {
    if !args.task_ids.is_empty() && !args.purge_ids.is_empty() {
        return Err(usage(
            "choose either task ids to archive or --rm archived task ids",
        ));
    }
    if args.task_ids.is_empty() && args.purge_ids.is_empty() {
        return Err(usage("at least one task id is required"));
    }
    let store = ctx.store()?;
    let mut failed = 0;
    for id in &args.purge_ids {
        match store.delete_task(id, true) {
            Ok(()) => println!("Deleted {id}"),
            Err(StoreError::Refused { .. } | StoreError::TaskNotFound(_)) => {
                failed += 1;
                crate::error::refusal(format_args!(
                    "cannot delete {id} (must already be archived)"
                ));
            }
            Err(e) => return Err(e.into()),
        }
    }
    for id in &args.task_ids {
        match store.archive_task(id) {
            Ok(done) => {
                if let Some(w) = &done.ended_worker {
                    end_worker(store, done.run_id, w, false);
                }
                println!("Archived {id}");
            }
            Err(e) => match refusal_note(&e) {
                Some(note) => {
                    failed += 1;
                    crate::error::refusal(format_args!("cannot archive {id}{note}"));
                }
                None => return Err(e.into()),
            },
        }
    }
    Ok(if failed == 0 { 0 } else { 1 })
}
