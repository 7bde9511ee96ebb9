//! `kanban create "<title>"`: every flag of the reference's create.

use anyhow::{Context as _, Result};
use kanban_core::validate::{normalize_branch, parse_duration_seconds, parse_workspace_flag};
use kanban_hermes::layout::{ProcessEnv, expand_tilde};
use kanban_store::NewTask;

use crate::cli::{CreateArgs, InitialStatus};
use crate::context::Ctx;
use crate::error::usage;
use crate::output::{CliTask, print_json};

/// `(kind, path)` of `--workspace`, with `~` expanded and the path
/// required to be absolute (a relative path would depend on the
/// dispatcher's cwd).
pub fn workspace_from_flag(value: &str) -> Result<(String, Option<String>)> {
    let (kind, path) = parse_workspace_flag(value).map_err(|e| usage(e.to_string()))?;
    let path = path.map(|p| expand_tilde(&p, &ProcessEnv).to_string_lossy().into_owned());
    // The store checks again for every surface; here it is a usage error.
    if let Some(p) = &path {
        kanban_core::validate::validate_workspace_path(&kind, p)
            .map_err(|e| usage(format!("--workspace {value}: {e}")))?;
    }
    Ok((kind, path))
}

pub fn run(args: CreateArgs, ctx: &Ctx) -> Result<i32> {
    let (kind, path) = workspace_from_flag(&args.workspace)?;
    let branch = match &args.branch {
        Some(b) => Some(normalize_branch(b).map_err(|e| usage(e.to_string()))?),
        None => None,
    };
    if branch.is_some() && kind != "worktree" {
        return Err(usage("--branch is only valid with --workspace worktree"));
    }
    let max_runtime = match args.max_runtime.as_deref().filter(|s| !s.trim().is_empty()) {
        Some(raw) => Some(
            parse_duration_seconds(raw)
                .map_err(|e| usage(e.to_string()))
                .context("--max-runtime")?,
        ),
        None => None,
    };
    if let Some(n) = args.max_retries
        && n < 1
    {
        return Err(usage(format!(
            "--max-retries must be >= 1 (got {n}); use 1 to trip on the first failure."
        )));
    }
    if let Some(n) = args.goal_max_turns
        && n < 1
    {
        return Err(usage(format!("--goal-max-turns must be >= 1 (got {n})")));
    }
    let req = NewTask {
        title: args.title,
        body: args.body,
        assignee: args.assignee,
        created_by: Some(args.created_by),
        workspace_kind: Some(kind),
        workspace_path: path,
        branch_name: branch,
        project_id: args.project,
        tenant: args.tenant,
        priority: args.priority,
        parents: args.parents,
        triage: args.triage,
        initial_blocked: args.initial_status == InitialStatus::Blocked,
        idempotency_key: args.idempotency_key,
        max_runtime_seconds: max_runtime,
        skills: (!args.skills.is_empty()).then_some(args.skills),
        max_retries: args.max_retries,
        goal_mode: args.goal_mode,
        goal_max_turns: args.goal_max_turns,
        session_id: None,
        model_override: args.model,
        default_workdir: ctx.default_workdir()?,
    };
    let created = ctx.store()?.create_task(&req)?;
    let task = created.task;
    if args.json {
        print_json(&CliTask::from(&task));
    } else {
        println!(
            "Created {}  ({}, assignee={})",
            task.id,
            task.status,
            task.assignee.as_deref().unwrap_or("-")
        );
        if task.status == kanban_core::Status::Ready && task.assignee.is_some() {
            await_starting_gateway(ctx);
            crate::command::add::warn_without_dispatcher(ctx);
        }
    }
    Ok(0)
}

/// Longest `create` waits for a starting gateway to publish its state.
const STARTING_GATEWAY_WAIT: std::time::Duration = std::time::Duration::from_secs(2);
const STARTING_GATEWAY_POLL: std::time::Duration = std::time::Duration::from_millis(20);

/// Issue 9 item 14: a gateway of ours that holds the lock but has not
/// published its `gateway.json` yet is starting (binding its port): wait
/// for it briefly, so the warning reads its real dispatch state rather
/// than a missing or stale record.
fn await_starting_gateway(ctx: &Ctx) {
    use kanban_server::lock::{current_record, dispatcher_lock_held, read_pid};
    // A pidfile naming a dead process is stale (a killed gateway; the lock
    // is someone else's): nothing of ours is starting then.
    let pid_alive = |p: u32| std::path::Path::new(&format!("/proc/{p}")).exists();
    let starting = || {
        dispatcher_lock_held(&ctx.root)
            && read_pid(&ctx.root).is_some_and(pid_alive)
            && current_record(&ctx.root).is_none()
    };
    let deadline = std::time::Instant::now() + STARTING_GATEWAY_WAIT;
    while starting() && std::time::Instant::now() < deadline {
        std::thread::sleep(STARTING_GATEWAY_POLL);
    }
}
