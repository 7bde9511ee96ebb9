//! `kanban edit <id>`: back-fill a done task's result/summary/metadata, or
//! change title, body and priority.

use anyhow::Result;
use kanban_store::{EditTask, StoreError};

use crate::cli::EditArgs;
use crate::context::Ctx;
use crate::error::usage;

pub fn run(args: EditArgs, ctx: &Ctx) -> Result<i32> {
    let metadata = super::parse_metadata(args.metadata.as_deref())?;
    if args.result.is_none()
        && args.summary.is_none()
        && metadata.is_none()
        && args.title.is_none()
        && args.body.is_none()
        && args.priority.is_none()
    {
        return Err(usage(
            "nothing to edit: pass --result, --summary, --metadata, --title, --body or --priority",
        ));
    }
    if let Some(t) = &args.title
        && t.trim().is_empty()
    {
        return Err(usage("--title must not be empty"));
    }
    let req = EditTask {
        task_id: args.task_id.clone(),
        title: args.title,
        body: args.body,
        priority: args.priority,
        // As in the reference, the summary falls back to the result.
        summary: args.summary.or_else(|| args.result.clone()),
        result: args.result,
        metadata,
    };
    match ctx.store()?.edit_task(&req) {
        Ok(_) => {
            println!("Edited {}", args.task_id);
            Ok(0)
        }
        Err(StoreError::Refused { reason, .. }) => {
            crate::error::refusal(format_args!("cannot edit {} ({reason})", args.task_id));
            Ok(1)
        }
        Err(e) => Err(e.into()),
    }
}
