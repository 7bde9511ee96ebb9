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
/// gateway holds the dispatcher lock of this root (seed 001).
pub fn warn_without_dispatcher(ctx: &Ctx) {
    if dispatcher_running(ctx) {
        return;
    }
    eprintln!(
        "\n⚠  No gateway is running — the task will sit in 'ready' until you start it. Run:\n    \
         kanban gateway start\n\
         or run one dispatch pass now with `kanban dispatch`."
    );
}

/// A gateway holds `<root>/kanban/.dispatcher.lock` exclusively while it
/// dispatches; if we can take a shared lock, nobody does.
fn dispatcher_running(ctx: &Ctx) -> bool {
    use std::os::fd::AsRawFd;
    let Ok(file) = std::fs::File::open(ctx.root.gateway_lock()) else {
        return false;
    };
    // SAFETY: flock on a descriptor we own; released when `file` drops.
    let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_SH | libc::LOCK_NB) };
    rc != 0
}
