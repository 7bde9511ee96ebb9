//! `kanban heartbeat <id>`: worker liveness signal. Inside a worker
//! (`HERMES_KANBAN_TASK` = this id) the run id and claim lock it was given
//! fence the call, so a reclaimed worker cannot keep a new attempt alive.

use anyhow::Result;
use kanban_hermes::config::EnvTunables;
use kanban_hermes::layout::ProcessEnv;
use kanban_store::{HeartbeatRequest, StoreError};

use crate::cli::HeartbeatArgs;
use crate::context::Ctx;
use crate::worker_env::WorkerEnv;

pub fn run(args: HeartbeatArgs, ctx: &Ctx) -> Result<i32> {
    let env = WorkerEnv::from_env();
    let task_id = super::task_arg(&env, args.task_id.as_deref())?;
    env.check_lifecycle(&task_id)?;
    let req = HeartbeatRequest {
        task_id: task_id.clone(),
        note: args.note.filter(|n| !n.trim().is_empty()),
        run_id: env.run_id_for(&task_id),
        claim_lock: env.claim_lock_for(&task_id),
        // The claim is extended by `HERMES_KANBAN_CLAIM_TTL_SECONDS`.
        ttl_seconds: Some(EnvTunables::from_env(&ProcessEnv).claim_ttl_seconds),
    };
    match ctx.store()?.heartbeat(&req) {
        Ok(()) => {
            println!("Heartbeat recorded for {task_id}");
            Ok(0)
        }
        Err(
            StoreError::Refused { .. } | StoreError::Stale { .. } | StoreError::TaskNotFound(_),
        ) => {
            crate::error::refusal(format_args!("cannot heartbeat {task_id} (not running?)"));
            Ok(1)
        }
        Err(e) => Err(e.into()),
    }
}
