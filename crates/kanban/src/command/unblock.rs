//! `kanban unblock <id>...`: blocked/scheduled tasks back to ready (or todo
//! while parents are open).

use anyhow::Result;
use kanban_store::StoreError;

use crate::cli::UnblockArgs;
use crate::context::Ctx;
use crate::output::profile_author;

pub fn run(args: UnblockArgs, ctx: &Ctx) -> Result<i32> {
    let reason = args
        .reason
        .as_deref()
        .map(str::trim)
        .filter(|r| !r.is_empty());
    // Board routing is an orchestrator's job; a worker finishes its own task.
    crate::worker_env::WorkerEnv::from_env().require_orchestrator("kanban unblock")?;
    let author = profile_author();
    let store = ctx.store()?;
    let mut failed = 0;
    let mut seen: Vec<&String> = Vec::new();
    for id in &args.task_ids {
        if seen.contains(&id) {
            continue;
        }
        seen.push(id);
        match store.unblock_task(id, reason) {
            Ok(_) => {
                if let Some(r) = reason {
                    store.add_comment(id, &author, &format!("UNBLOCK: {r}"))?;
                }
                println!(
                    "Unblocked {id}{}",
                    reason.map(|r| format!(": {r}")).unwrap_or_default()
                );
            }
            Err(StoreError::Refused { .. } | StoreError::TaskNotFound(_)) => {
                failed += 1;
                crate::error::refusal(format_args!("cannot unblock {id} (not blocked/scheduled?)"));
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok(if failed == 0 { 0 } else { 1 })
}
