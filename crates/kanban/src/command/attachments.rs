//! `kanban attachments <id>`: a task's attachments, oldest first.

use anyhow::Result;
use clap::Args;
use kanban_core::Attachment;
use kanban_store::StoreError;
use serde_json::{Value, json};

use crate::context::Ctx;
use crate::output::{line, print_json};

#[derive(Debug, Args)]
pub struct AttachmentsArgs {
    /// Task id (t_xxxxxxxx).
    pub task_id: String,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// One attachment as `--json` (and `kanban_attachments`) show it: the
/// reference's keys, in its order.
pub fn attachment_json(a: &Attachment) -> Value {
    json!({
        "id": a.id,
        "filename": a.filename,
        "content_type": a.content_type,
        "size": a.size,
        "uploaded_by": a.uploaded_by,
        "stored_path": a.stored_path,
        "created_at": a.created_at,
    })
}

pub fn run(args: AttachmentsArgs, ctx: &Ctx) -> Result<i32> {
    let store = ctx.store()?;
    if store.get_task(&args.task_id)?.is_none() {
        return Err(StoreError::TaskNotFound(args.task_id).into());
    }
    let atts = store.attachments(&args.task_id)?;
    if args.json {
        print_json(&atts.iter().map(attachment_json).collect::<Vec<_>>());
        return Ok(0);
    }
    if atts.is_empty() {
        println!("No attachments on {}", args.task_id);
        return Ok(0);
    }
    println!("Attachments on {}:", args.task_id);
    for a in &atts {
        println!(
            "  [{}] {}  ({} bytes, {}, by {})",
            a.id,
            line(&a.filename),
            a.size,
            line(a.content_type.as_deref().unwrap_or("-")),
            line(a.uploaded_by.as_deref().unwrap_or("-")),
        );
        println!("        {}", line(&a.stored_path));
    }
    Ok(0)
}
