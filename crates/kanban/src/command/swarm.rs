//! `kanban swarm "<goal>"`: the reference's "Kanban Swarm v1" graph (a
//! planning root completed at once, parallel workers, a verifier, a
//! synthesizer), written in one store transaction: all of it or nothing.
//! With `--idempotency-key` a replay prints the first graph.

use anyhow::{Result, anyhow};
use clap::Args;
use kanban_core::swarm::{
    SwarmIds, SwarmSpec, latest_blackboard, parse_worker_arg, plan, topology_from_blackboard,
    validate,
};
use kanban_store::{BatchCreated, NewTaskBatch, Store};

use crate::context::Ctx;
use crate::error::usage;
use crate::output::print_json;

#[derive(Debug, Args)]
pub struct SwarmArgs {
    /// The swarm's goal (the final outcome).
    pub goal: String,
    /// A parallel worker card (repeatable, at least one).
    #[arg(long = "worker", value_name = "PROFILE:TITLE[:SKILL,SKILL]")]
    pub workers: Vec<String>,
    /// Profile that verifies the workers' handoffs.
    #[arg(long)]
    pub verifier: String,
    /// Profile that writes the final deliverable.
    #[arg(long)]
    pub synthesizer: String,
    /// Tenant namespace of every card.
    #[arg(long)]
    pub tenant: Option<String>,
    /// Priority of every card.
    #[arg(long, default_value_t = 0, allow_negative_numbers = true)]
    pub priority: i64,
    /// Author and root assignee (default: the current profile, else `user`).
    #[arg(long)]
    pub created_by: Option<String>,
    /// Dedup key of the root card: a replay prints the existing graph.
    #[arg(long)]
    pub idempotency_key: Option<String>,
    /// Print the graph's ids as JSON.
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: SwarmArgs, ctx: &Ctx) -> Result<i32> {
    let workers = args
        .workers
        .iter()
        .map(|w| parse_worker_arg(w))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| usage(format!("kanban swarm: {e}")))?;
    let spec = SwarmSpec {
        goal: args.goal,
        workers,
        verifier: args.verifier,
        synthesizer: args.synthesizer,
        created_by: args.created_by.unwrap_or_else(|| default_author(ctx)),
        tenant: args.tenant,
        priority: args.priority,
        idempotency_key: args.idempotency_key,
    };
    validate(&spec).map_err(|e| usage(format!("kanban swarm: {e}")))?;
    let store = ctx.store()?;
    let graph = plan(&spec, SwarmIds::fresh(spec.workers.len()))?;
    let batch = NewTaskBatch::from_swarm(&graph, spec.tenant.as_deref(), spec.priority);
    let ids = match store.create_task_batch(&batch)? {
        BatchCreated::Created(_) => graph.ids,
        BatchCreated::Existing(root) => existing_graph(store, &root.id)?,
    };
    if args.json {
        print_json(&ids);
    } else {
        println!("Swarm root: {}", ids.root_id);
        println!("Workers: {}", ids.worker_ids.join(", "));
        println!("Verifier: {}", ids.verifier_id);
        println!("Synthesizer: {}", ids.synthesizer_id);
    }
    Ok(0)
}

/// The reference's author of an interactive call: the profile named in
/// the environment, else the profile `HERMES_HOME` points at (`default`
/// for the root itself, `custom` for a path that is neither).
fn default_author(ctx: &Ctx) -> String {
    for var in ["HERMES_PROFILE_NAME", "HERMES_PROFILE"] {
        if let Ok(v) = std::env::var(var)
            && !v.trim().is_empty()
        {
            return v;
        }
    }
    let Some(home) = std::env::var_os("HERMES_HOME").filter(|h| !h.is_empty()) else {
        return "default".into();
    };
    let canonical = |p: &std::path::Path| std::fs::canonicalize(p).unwrap_or(p.to_path_buf());
    let home = canonical(std::path::Path::new(&home));
    if home == canonical(ctx.root.path()) {
        return "default".into();
    }
    if home.parent() == Some(canonical(&ctx.root.profiles_dir()).as_path())
        && let Some(name) = home.file_name().and_then(|n| n.to_str())
    {
        return name.to_string();
    }
    "custom".into()
}

/// The graph a replayed key's root recorded on its blackboard.
fn existing_graph(store: &dyn Store, root_id: &str) -> Result<SwarmIds> {
    let comments = store.comments(root_id)?;
    let board = latest_blackboard(
        comments
            .iter()
            .map(|c| (c.author.as_str(), c.body.as_str())),
    );
    topology_from_blackboard(root_id, &board).ok_or_else(|| {
        anyhow!(
            "kanban swarm: the idempotency key belongs to {root_id}, which is not a swarm \
             root; nothing was created"
        )
    })
}
