//! `kanban context <id>`: the text a worker reads (reference §5.3).

use anyhow::Result;
use kanban_dispatch::context_source::render_worker_context_env;
use kanban_store::Store;

use crate::cli::OptTaskIdArg;
use crate::context::Ctx;
use crate::output::{block, fmt_ts};
use crate::worker_env::WorkerEnv;

/// Gather the rows and render the worker context of `task_id`.
pub fn render(ctx: &Ctx, task_id: &str) -> Result<String> {
    render_with(ctx.store()?, ctx.now(), task_id)
}

/// [`render`] for callers that hold a store but no `Ctx` (the MCP server).
/// The gathering is the dispatcher library's, so workers started by
/// `kanban dispatch` or the gateway read this very text.
pub fn render_with(store: &dyn Store, now: i64, task_id: &str) -> Result<String> {
    let format_ts = |ts: i64| fmt_ts(Some(ts));
    Ok(render_worker_context_env(store, now, task_id, &format_ts)?)
}

pub fn run(args: OptTaskIdArg, ctx: &Ctx) -> Result<i32> {
    // Inside a worker the id defaults to the worker's own task.
    let task_id = crate::command::task_arg(&WorkerEnv::from_env(), args.task_id.as_deref())?;
    // println like the reference's print(): the text ends in a newline too.
    // The MCP tool returns the text exact; a terminal gets it escaped.
    println!("{}", block(&render(ctx, &task_id)?));
    Ok(0)
}
