//! One file per verb. Each `run` takes its parsed arguments and the
//! resolved context, prints its output, and returns the exit code; errors
//! bubble up to `main`, which prints them once.

mod add;
mod archive;
mod assign;
mod assignees;
pub(crate) mod attach;
pub(crate) mod attach_rm;
pub(crate) mod attachments;
mod block;
pub(crate) mod boards;
mod claim;
mod comment;
mod complete;
pub(crate) mod completions;
pub(crate) mod context;
mod create;
pub(crate) mod daemon;
pub(crate) mod decompose;
pub(crate) mod diagnostics;
pub(crate) mod dispatch;
pub(crate) mod doctor;
mod edit;
pub mod gateway;
mod gc;
mod heartbeat;
mod init;
mod link;
mod list;
mod list_held;
mod log;
mod notify;
mod promote;
mod reclaim;
pub(crate) mod review;
mod runs;
mod schedule;
mod show;
pub(crate) mod specify;
mod stats;
pub mod swarm;
mod tail;
pub(crate) mod top;
mod unblock;
mod watch;

use anyhow::Result;

use crate::cli::Command;
use crate::context::Ctx;

pub fn run(command: Command, board: Option<&str>, database_url: Option<&str>) -> Result<i32> {
    // Board management ignores `--board` and must work even when the
    // current board is broken, so it runs before board resolution.
    if let Command::Boards(args) = command {
        let root = crate::context::resolve_root(database_url)?;
        if let Some(boards::BoardsCommand::Migrate(a)) = args.action {
            // Its source is the board `--board` names.
            let env = kanban_hermes::layout::ProcessEnv;
            return boards::migrate::run(a, &root, board, &env);
        }
        return boards::run(args.command(), &root, false);
    }
    // The gateway serves every board of the root, so it resolves no board.
    if let Command::Gateway(cmd) = command {
        let root = crate::context::resolve_root(database_url)?;
        return gateway::run(cmd, &root);
    }
    // The worker wrapper needs no board (the worker resolves its own).
    if let Command::WorkerExec(args) = command {
        return crate::worker_process::run_worker_exec(args);
    }
    // Generated from the command line itself: no root, no board.
    if let Command::Completions(args) = command {
        return completions::run(args);
    }
    if let Command::Man(args) = command {
        return completions::run_man(args);
    }
    // Doctor checks every board of the root and must work when the
    // current one is broken.
    if let Command::Doctor(args) = command {
        return doctor::run(args, database_url);
    }
    let ctx = Ctx::resolve(board, database_url)?;
    match command {
        Command::Boards(_)
        | Command::Gateway(_)
        | Command::WorkerExec(_)
        | Command::Completions(_)
        | Command::Man(_)
        | Command::Doctor(_) => {
            unreachable!("handled above")
        }
        Command::Init => init::run_init(&ctx.root, &ctx.board),
        Command::Create(a) => create::run(a, &ctx),
        Command::Swarm(a) => swarm::run(a, &ctx),
        Command::Add(a) => add::run(a, &ctx),
        Command::List(a) => list::run(a, &ctx),
        Command::Show(a) => show::run(a, &ctx),
        Command::Assign(a) => assign::run_assign(a, &ctx),
        Command::Reassign(a) => assign::run_reassign(a, &ctx),
        Command::Reclaim(a) => reclaim::run(a, &ctx),
        Command::Link(a) => link::run_link(a, &ctx),
        Command::Unlink(a) => link::run_unlink(a, &ctx),
        Command::Comment(a) => comment::run(a, &ctx),
        Command::Attach(a) => attach::run(a, &ctx),
        Command::Attachments(a) => attachments::run(a, &ctx),
        Command::AttachRm(a) => attach_rm::run(a, &ctx),
        Command::Complete(a) => complete::run(a, &ctx),
        Command::Edit(a) => edit::run(a, &ctx),
        Command::Block(a) => block::run(a, &ctx),
        Command::Unblock(a) => unblock::run(a, &ctx),
        Command::RequestReview(a) => review::run_request_review(a, &ctx),
        Command::RequestChanges(a) => review::run_request_changes(a, &ctx),
        Command::ReopenReview(a) => review::run_reopen_review(a, &ctx),
        Command::Approve(a) => review::run_approve(a, &ctx),
        Command::Schedule(a) => schedule::run(a, &ctx),
        Command::Promote(a) => promote::run(a, &ctx),
        Command::Specify(a) => specify::run(a, &ctx),
        Command::Decompose(a) => decompose::run(a, &ctx),
        Command::Archive(a) => archive::run(a, &ctx),
        Command::Stats(a) => stats::run(a, &ctx),
        Command::Diagnostics(a) => diagnostics::run(a, &ctx),
        Command::Assignees(a) => assignees::run(a, &ctx),
        Command::Runs(a) => runs::run(a, &ctx),
        Command::Context(a) => context::run(a, &ctx),
        Command::Claim(a) => claim::run(a, &ctx),
        Command::Heartbeat(a) => heartbeat::run(a, &ctx),
        Command::Mcp => crate::mcp::run(&ctx),
        Command::Log(a) => log::run(a, &ctx),
        Command::Tail(a) => tail::run(a, &ctx),
        Command::Watch(a) => watch::run(a, &ctx),
        Command::Gc(a) => gc::run(a, &ctx),
        Command::Dispatch(a) => dispatch::run(a, &ctx),
        Command::Daemon(a) => daemon::run(a, &ctx),
        Command::NotifySubscribe(a) => notify::run_subscribe(a, &ctx),
        Command::NotifyList(a) => notify::run_list(a, &ctx),
        Command::NotifyUnsubscribe(a) => notify::run_unsubscribe(a, &ctx),
        Command::Top(a) => top::run(a, &ctx),
    }
}

/// Parse `--metadata`: a JSON object, anything else is a usage error.
pub(crate) fn parse_metadata(raw: Option<&str>) -> Result<Option<serde_json::Value>> {
    let Some(raw) = raw.filter(|r| !r.is_empty()) else {
        return Ok(None);
    };
    match serde_json::from_str::<serde_json::Value>(raw) {
        Ok(v @ serde_json::Value::Object(_)) => Ok(Some(v)),
        Ok(_) => Err(crate::error::usage("--metadata: must be a JSON object")),
        Err(e) => Err(crate::error::usage(format!(
            "--metadata: invalid JSON: {e}"
        ))),
    }
}

/// The task a worker-aware verb acts on: the explicit id, else (inside a
/// dispatcher-spawned worker) its own task; neither is a usage error.
pub(crate) fn task_arg(
    env: &crate::worker_env::WorkerEnv,
    explicit: Option<&str>,
) -> Result<String> {
    env.task_or_own(explicit).map_err(|_| {
        crate::error::usage(
            "a task id is required (it defaults to the worker's own task only when \
             HERMES_KANBAN_TASK is set)",
        )
    })
}

/// Unknown-id check shared by verbs whose store call would not say so.
pub(crate) fn require_task(ctx: &Ctx, id: &str) -> Result<kanban_core::Task> {
    ctx.store()?
        .get_task(id)?
        .ok_or_else(|| anyhow::Error::new(kanban_store::StoreError::TaskNotFound(id.to_string())))
}
