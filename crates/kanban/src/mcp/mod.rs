//! `kanban mcp`: the worker / orchestrator tools of reference §5 as a Model
//! Context Protocol server on stdin/stdout (official `rmcp` SDK), so any
//! MCP-capable agent started by a profile can read, report and finish its
//! task. Mode comes from the environment the dispatcher sets: with
//! `HERMES_KANBAN_TASK` the server is a scoped worker surface, without it an
//! orchestrator surface.

mod args;
mod attachments;
mod fetch;
mod handlers;
mod instructions;
mod review;
mod server;

use anyhow::{Context as _, Result};
use rmcp::ServiceExt;

use crate::context::Ctx;
use crate::worker_env::WorkerEnv;

pub use server::KanbanMcp;

/// Worker threads of the MCP server's runtime.
const MCP_WORKER_THREADS: usize = 1;

/// Serve until the client closes stdin. Stdout carries only protocol
/// messages; diagnostics go to stderr.
pub fn run(ctx: &Ctx) -> Result<i32> {
    let server = KanbanMcp::new(
        ctx.root.clone(),
        ctx.board.clone(),
        ctx.clock.clone(),
        ctx.failure_limit(),
        WorkerEnv::from_env(),
    );
    // One client, requests answered in turn: one worker thread is plenty.
    // Multi-threaded all the same, so a tool call can leave the async
    // context (`block_in_place`) for the blocking store underneath.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(MCP_WORKER_THREADS)
        .enable_all()
        .build()
        .context("cannot start the MCP server runtime")?;
    runtime.block_on(async move {
        let service = server
            .serve(server::stdio_transport())
            .await
            .context("MCP initialization failed")?;
        service.waiting().await.context("MCP server stopped")?;
        Ok::<_, anyhow::Error>(())
    })?;
    Ok(0)
}
