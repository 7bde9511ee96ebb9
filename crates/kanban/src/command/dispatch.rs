//! `kanban dispatch`: one dispatcher pass over the current board
//! (reference §3, `hermes kanban dispatch`), for cron jobs and external
//! controllers (seed 000) that run without a gateway.
//!
//! Ceilings come from the `kanban:` config; `--max` replaces `max_spawn`
//! as a live ceiling on running tasks (not a per-pass spawn count, so a
//! controller cannot overshoot by passing a static number). Workers run
//! in their own session and outlive this process. A pass that finds
//! another process dispatching the board reports `skipped_locked` and
//! exits 0.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, Result};
use clap::Args;
use kanban_dispatch::terminate::{KILL_WAIT, TERMINATE_GRACE};
use kanban_dispatch::{
    BoardContext, DispatchOptions, DispatchResult, Dispatcher, DispatcherParts, ProcLiveness,
    ProcessSpawner, RecordingSpawner, Spawner, StoreContextSource,
};
use kanban_hermes::config::{EnvTunables, KanbanConfig};
use kanban_hermes::layout::ProcessEnv;
use kanban_hermes::profiles::Profiles;

use crate::context::Ctx;
use crate::output::fmt_ts;
use crate::worker_process::worker_exec_prefix;

/// How long a one-shot pass waits for the workers it is terminating
/// (timed out, stale) to go: SIGTERM grace, SIGKILL wait and a margin. A
/// worker that dies on SIGTERM ends the wait at once.
pub const ONE_SHOT_SETTLE: Duration = TERMINATE_GRACE
    .saturating_add(KILL_WAIT)
    .saturating_add(Duration::from_secs(1));

/// Run one dispatcher pass now.
#[derive(Debug, Clone, Args)]
pub struct DispatchArgs {
    /// Report what a pass would do without changing anything.
    #[arg(long)]
    pub dry_run: bool,
    /// Ceiling on running tasks for this pass (overrides kanban.max_spawn):
    /// nothing is spawned while N or more tasks are running.
    #[arg(long, value_name = "N")]
    pub max: Option<u32>,
    /// Consecutive failures before a task is auto-blocked (default:
    /// kanban.failure_limit, 2).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(i64).range(1..))]
    pub failure_limit: Option<i64>,
    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
}

/// The `kanban:` config; unlike verbs that only take defaults from it, a
/// dispatcher must not silently drop the operator's ceilings.
pub(crate) fn load_config(ctx: &Ctx) -> Result<KanbanConfig> {
    KanbanConfig::load(&ctx.root, &ProcessEnv).context("cannot read the kanban config")
}

/// A dispatcher for the context's board with the real process spawner.
pub(crate) fn build_dispatcher(ctx: &Ctx, config: &KanbanConfig) -> Result<Dispatcher> {
    // A connection of its own, apart from the verb's store.
    let board = crate::context::open_board(&ctx.board, ctx.clock.clone())?;
    let workdir = ctx.default_workdir()?;
    // Template profiles get the full context as `{prompt}` (reference §5.3).
    let context = StoreContextSource::new(board.store(), ctx.clock.clone())
        .with_format_ts(Arc::new(|ts| fmt_ts(Some(ts))));
    let parts = DispatcherParts {
        store: board.dispatch(),
        spawner: worker_spawner(&ctx.board.logs_dir),
        liveness: Arc::new(ProcLiveness::new()),
        profiles: Arc::new(Profiles::new(&ctx.root, config)),
        context: Arc::new(context),
        env: Arc::new(ProcessEnv),
        board: BoardContext::new(&ctx.root, &ctx.board, workdir),
    };
    Ok(Dispatcher::new(parts))
}

/// Workers run under the exit-recording wrapper when this binary can be
/// located (so later `kanban dispatch` processes classify their exits).
fn worker_spawner(logs_dir: &std::path::Path) -> Arc<dyn Spawner> {
    match worker_exec_prefix() {
        Some(prefix) => Arc::new(RecordingSpawner::new(prefix, logs_dir)),
        None => Arc::new(ProcessSpawner::new()),
    }
}

/// Pass options from config, env tunables and the command-line overrides.
pub(crate) fn options(
    config: &KanbanConfig,
    max: Option<u32>,
    failure_limit: Option<i64>,
) -> DispatchOptions {
    let mut opts = DispatchOptions::from_config(config, &EnvTunables::from_env(&ProcessEnv));
    if let Some(m) = max {
        opts.max_spawn = Some(i64::from(m));
    }
    if let Some(f) = failure_limit {
        opts.failure_limit = f;
    }
    // Template agents are told to call this very binary.
    if let Ok(exe) = std::env::current_exe() {
        opts.kanban_command = exe.display().to_string();
    }
    opts
}

pub fn run(args: DispatchArgs, ctx: &Ctx) -> Result<i32> {
    let config = load_config(ctx)?;
    let mut opts = options(&config, args.max, args.failure_limit);
    opts.dry_run = args.dry_run;
    if opts.dry_run {
        opts.max_spawn = dry_run_max_spawn(ctx, opts.max_spawn)?;
    }
    opts.settle_terminations = Some(ONE_SHOT_SETTLE);
    // This process ends with the pass: it does not watch the workers it
    // starts, so their deaths are never blamed on it going away.
    opts.supervises_workers = false;
    let dispatcher = build_dispatcher(ctx, &config)?;
    let result = dispatcher.dispatch_once(&opts)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&result)?);
    } else {
        print_human(&result, config.default_assignee.as_deref());
    }
    if let Some(e) = &result.lock_error {
        // Fail closed: dispatching without the lock could double-spawn.
        eprintln!("kanban: dispatch skipped: {e}");
        return Ok(1);
    }
    Ok(0)
}

/// The reference's dry run counts no would-be spawn toward `max_spawn`
/// (`--max` or `kanban.max_spawn`): it lists every task a real pass could
/// start over the coming passes, and lists nothing only when the board
/// already runs `max_spawn` workers. Scripts that preview with
/// `--dry-run --max N` see the same list from both implementations.
fn dry_run_max_spawn(ctx: &Ctx, max_spawn: Option<i64>) -> Result<Option<i64>> {
    let Some(max) = max_spawn else {
        return Ok(None);
    };
    let stats = ctx.store()?.stats()?;
    let running = stats
        .by_status
        .get(kanban_core::Status::Running.as_str())
        .copied()
        .unwrap_or(0);
    Ok((running >= max).then_some(max))
}

/// When the dispatcher tries a task whose worker could not be started
/// again: the retry time recorded with its latest (`spawn_failed`) run,
/// while it waits in ready. For `kanban show`.
pub(crate) fn next_spawn_attempt(
    task: &kanban_core::Task,
    runs: &[kanban_core::Run],
) -> Option<i64> {
    if task.status != kanban_core::Status::Ready {
        return None;
    }
    let latest = runs
        .iter()
        .filter(|r| r.ended_at.is_some())
        .max_by_key(|r| (r.ended_at, r.id))?;
    if latest.outcome.as_deref() != Some(kanban_core::RunOutcome::SpawnFailed.as_str()) {
        return None;
    }
    latest
        .metadata
        .as_ref()?
        .get(kanban_store::dispatch_ops::NEXT_ATTEMPT_KEY)?
        .as_i64()
}

fn join(ids: &[String]) -> String {
    ids.join(", ")
}

/// The reference's report, plus the buckets it leaves out.
pub(crate) fn print_human(res: &DispatchResult, default_assignee: Option<&str>) {
    if res.skipped_locked {
        if res.lock_error.is_none() {
            println!("Another dispatch pass is already running on this board; skipped.");
        }
        return;
    }
    let list = |label: &str, ids: &[String]| {
        println!("{label:<14}{}", ids.len());
        if !ids.is_empty() {
            println!("  {}", join(ids));
        }
    };
    println!("{:<14}{}", "Reclaimed:", res.reclaimed);
    list("Crashed:", &res.crashed);
    list("Timed out:", &res.timed_out);
    list("Stale:", &res.stale);
    list("Auto-blocked:", &res.auto_blocked);
    println!("{:<14}{}", "Promoted:", res.promoted);
    println!("{:<14}{}", "Spawned:", res.spawned.len());
    let tag = if res.dry_run { " (dry)" } else { "" };
    for s in &res.spawned {
        let ws = if s.workspace.is_empty() {
            "-"
        } else {
            &s.workspace
        };
        println!("  - {}  ->  {}  @ {ws}{tag}", s.task_id, s.assignee);
    }
    if !res.rate_limited.is_empty() {
        println!(
            "Rate limited (requeued, no failure counted): {}",
            join(&res.rate_limited)
        );
    }
    if !res.auto_assigned_default.is_empty() {
        println!(
            "Auto-assigned to kanban.default_assignee='{}': {}",
            default_assignee.unwrap_or(""),
            join(&res.auto_assigned_default)
        );
    }
    if !res.skipped_unassigned.is_empty() {
        println!("Skipped (unassigned): {}", join(&res.skipped_unassigned));
    }
    for c in &res.skipped_per_profile_capped {
        println!(
            "Deferred ({} at per-profile cap, {} running): {}",
            c.assignee, c.current, c.task_id
        );
    }
    if !res.skipped_nonspawnable.is_empty() {
        println!(
            "Skipped (non-spawnable assignee — terminal lane, OK): {}",
            join(&res.skipped_nonspawnable)
        );
    }
    for g in &res.respawn_guarded {
        println!("Held back ({}): {}", g.reason, g.task_id);
    }
    if !res.terminating.is_empty() {
        println!(
            "Terminating (released by a later pass): {}",
            join(&res.terminating)
        );
    }
}
