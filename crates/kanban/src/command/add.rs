//! `kanban add --title T --profile P --column C [--parent ID]`: the
//! scripting form of create (seed 000). Prints only the new id so
//! `ID=$(kanban add ...)` works.

use anyhow::Result;
use kanban_store::NewTask;

use crate::cli::{AddArgs, Column};
use crate::context::Ctx;
use crate::output::{CliTask, print_json, profile_author};

pub fn run(args: AddArgs, ctx: &Ctx) -> Result<i32> {
    // backlog/todo/ready are one thing on this board: a normal task whose
    // status follows its parents (ready, or todo until they finish). A
    // parked todo without parents would be promoted on the next pass anyway.
    let req = NewTask {
        title: args.title,
        body: args.body,
        assignee: args.profile,
        created_by: Some(profile_author()),
        tenant: args.tenant,
        priority: args.priority,
        parents: args.parents,
        triage: args.column == Column::Triage,
        ..NewTask::default()
    };
    let task = ctx.store()?.create_task(&req)?.task;
    if args.json {
        print_json(&CliTask::from(&task));
    } else {
        println!("{}", task.id);
    }
    Ok(0)
}

/// Warn on stderr when a ready, assigned task has nobody to run it: no
/// gateway holds the dispatcher lock of this root, or the one that does has
/// its dispatcher switched off (seed 001). Silent when unsure.
pub fn warn_without_dispatcher(ctx: &Ctx) {
    let message = if !dispatcher_running(ctx) {
        "No gateway is running — the task will sit in 'ready' until you start it. Run:\n    \
         kanban gateway start\n\
         The gateway dispatches at once when a task becomes ready; or run one dispatch \
         pass now with `kanban dispatch`."
    } else if gateway_dispatch_enabled(ctx) == Some(false) {
        "Gateway is running but its dispatcher is off (kanban.dispatch_in_gateway=false in \
         config.yaml, or HERMES_KANBAN_DISPATCH_IN_GATEWAY=0) — the task will sit in 'ready' \
         until you turn it back on (the gateway picks the change up within a second), or run `kanban dispatch` \
         (e.g. from cron)."
    } else {
        return;
    };
    eprintln!("\n⚠  {message}");
}

/// What the running gateway recorded in `<root>/kanban/gateway.json`
/// about its dispatcher; `None` when unreadable (then we stay silent).
fn gateway_dispatch_enabled(ctx: &Ctx) -> Option<bool> {
    let text = std::fs::read_to_string(ctx.root.kanban_dir().join("gateway.json")).ok()?;
    let record: serde_json::Value = serde_json::from_str(&text).ok()?;
    record.get("dispatch")?.as_bool()
}

/// A gateway holds `<root>/kanban/.dispatcher.lock` exclusively while it
/// dispatches (ours or a Hermes one).
fn dispatcher_running(ctx: &Ctx) -> bool {
    kanban_server::lock::dispatcher_lock_held(&ctx.root)
}
