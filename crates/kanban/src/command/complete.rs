//! `kanban complete <id>...`: mark tasks done, ending their workers.

use anyhow::Result;
use kanban_hermes::scratch::{board_files, complete_with_files};
use kanban_store::{CompleteRequest, StoreError};

use crate::cli::CompleteArgs;
use crate::context::Ctx;
use crate::error::usage;
use crate::worker_env::WorkerEnv;
use crate::worker_process::{end_worker, is_own_task};

pub fn run(args: CompleteArgs, ctx: &Ctx) -> Result<i32> {
    // Summary and metadata describe one run; copying them onto several
    // tasks is almost always a mistake.
    if args.task_ids.len() > 1 && (args.summary.is_some() || args.metadata.is_some()) {
        return Err(usage(
            "--summary / --metadata are per-task and can't be used with multiple ids \
             (would apply the same handoff to every task). Complete tasks one at a time, \
             or drop the flags for the bulk close.",
        ));
    }
    let env = WorkerEnv::from_env();
    let task_ids = if args.task_ids.is_empty() {
        vec![super::task_arg(&env, None)?]
    } else {
        args.task_ids.clone()
    };
    // A worker may only close its own task; refuse before touching any.
    for id in &task_ids {
        env.check_lifecycle(id)?;
    }
    let metadata = super::parse_metadata(args.metadata.as_deref())?;
    let store = ctx.store()?;
    // Declared scratch artifacts are kept, then the scratch dir goes.
    let files = board_files(&ctx.board, Some(&ctx.root));
    let mut failed = 0;
    for id in &task_ids {
        let evidence = args
            .summary
            .as_deref()
            .or(args.result.as_deref())
            .unwrap_or("");
        if let Err(reason) = crate::goal_gate::check(&ctx.root, store, id, evidence) {
            failed += 1;
            crate::error::refusal(format_args!(
                "goal completion of {id} refused by the judge: {reason}. Show in --summary \
                 (or --result) that the acceptance criteria are met, then retry."
            ));
            continue;
        }
        let req = CompleteRequest {
            task_id: id.clone(),
            result: args.result.clone(),
            summary: args.summary.clone(),
            metadata: metadata.clone(),
            created_cards: Vec::new(),
            expected_run_id: env.run_id_for(id),
            files: None,
        };
        match complete_with_files(store, &req, &files) {
            Ok(done) => {
                if let Some(w) = &done.ended_worker {
                    end_worker(store, done.run_id, w, is_own_task(id));
                }
                println!("Completed {id}");
            }
            Err(StoreError::TaskNotFound(_)) => {
                failed += 1;
                crate::error::refusal(format_args!(
                    "cannot complete {id} (unknown id or terminal state)"
                ));
            }
            Err(StoreError::Refused { reason, .. } | StoreError::Stale { reason, .. }) => {
                failed += 1;
                crate::error::refusal(format_args!("cannot complete {id} ({reason})"));
            }
            Err(StoreError::Invalid(e)) => {
                failed += 1;
                crate::error::refusal(format_args!("cannot complete {id} ({e})"));
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok(if failed == 0 { 0 } else { 1 })
}
