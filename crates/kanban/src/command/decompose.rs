//! `kanban decompose [id | --all]`: the auxiliary model (`auxiliary.
//! kanban_decomposer`) fans triage cards out into child cards routed to
//! profiles by their descriptions; the root waits for all of them under
//! the orchestrator profile.

use anyhow::Result;
use kanban_aux::{client_from_root, decompose_setup, ops};
use kanban_hermes::auxiliary::TASK_KANBAN_DECOMPOSER;

use crate::command::specify::{TriageArgs, Verb, as_ref, sweep};
use crate::context::Ctx;

pub type DecomposeArgs = TriageArgs;

pub fn run(args: DecomposeArgs, ctx: &Ctx) -> Result<i32> {
    let client = client_from_root(&ctx.root, TASK_KANBAN_DECOMPOSER).map_err(anyhow::Error::msg)?;
    let config = ctx.config().cloned().unwrap_or_default();
    let setup = decompose_setup(&ctx.root, &config);
    sweep(&args, ctx, Verb::Decompose, &|store, id, author| {
        ops::decompose(store, as_ref(&client), &setup, id, author)
    })
}
