//! `kanban attach-rm <attachment_id>`: delete an attachment (its row, an
//! `attachment_removed` event, and the blob under the attachments root).

use anyhow::{Result, anyhow};
use clap::Args;
use kanban_hermes::attachments::remove_attachment;
use serde_json::json;

use crate::context::Ctx;
use crate::output::{line, print_json};

#[derive(Debug, Args)]
pub struct AttachRmArgs {
    /// Attachment id (as `kanban attachments <task>` lists it).
    pub attachment_id: i64,
    /// Print the removed attachment as JSON.
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: AttachRmArgs, ctx: &Ctx) -> Result<i32> {
    let id = args.attachment_id;
    let removed = remove_attachment(ctx.store()?, &ctx.board.attachments_root, id)?
        .ok_or_else(|| anyhow!("no such attachment: {id}"))?;
    if args.json {
        print_json(&json!({
            "ok": true,
            "id": removed.id,
            "task_id": removed.task_id,
            "filename": removed.filename,
        }));
    } else {
        println!(
            "Deleted attachment {id} ({}) from {}",
            line(&removed.filename),
            removed.task_id
        );
    }
    Ok(0)
}
