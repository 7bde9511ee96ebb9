//! `kanban link <parent> <child>` / `kanban unlink <parent> <child>`.

use anyhow::Result;

use crate::cli::LinkArgs;
use crate::context::Ctx;

pub fn run_link(args: LinkArgs, ctx: &Ctx) -> Result<i32> {
    ctx.store()?.link_tasks(&args.parent_id, &args.child_id)?;
    println!("Linked {} -> {}", args.parent_id, args.child_id);
    Ok(0)
}

pub fn run_unlink(args: LinkArgs, ctx: &Ctx) -> Result<i32> {
    if !ctx.store()?.unlink_tasks(&args.parent_id, &args.child_id)? {
        crate::error::refusal(format_args!(
            "No such link: {} -> {}",
            args.parent_id, args.child_id
        ));
        return Ok(1);
    }
    println!("Unlinked {} -> {}", args.parent_id, args.child_id);
    Ok(0)
}
