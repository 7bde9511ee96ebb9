//! `kanban schedule <id> [reason...]`: park tasks waiting on time.

use anyhow::Result;

use crate::cli::ScheduleArgs;
use crate::command::block::{dedup_ids, refusal_note};
use crate::context::Ctx;
use crate::output::profile_author;
use crate::worker_process::{end_worker, is_own_task};

pub fn run(args: ScheduleArgs, ctx: &Ctx) -> Result<i32> {
    let reason = Some(args.reason.join(" ").trim().to_string()).filter(|r| !r.is_empty());
    let author = profile_author();
    let store = ctx.store()?;
    let mut failed = 0;
    for id in dedup_ids(&args.task_id, &args.ids) {
        match store.schedule_task(&id, reason.as_deref()) {
            Ok(done) => {
                if let Some(r) = &reason {
                    store.add_comment(&id, &author, &format!("SCHEDULED: {r}"))?;
                }
                if let Some(w) = &done.ended_worker {
                    end_worker(store, done.run_id, w, is_own_task(&id));
                }
                println!(
                    "Scheduled {id}{}",
                    reason
                        .as_deref()
                        .map(|r| format!(": {r}"))
                        .unwrap_or_default()
                );
            }
            Err(e) => match refusal_note(&e) {
                Some(note) => {
                    failed += 1;
                    crate::error::refusal(format_args!("cannot schedule {id}{note}"));
                }
                None => return Err(e.into()),
            },
        }
    }
    Ok(if failed == 0 { 0 } else { 1 })
}
