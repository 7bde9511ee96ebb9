//! `kanban list` / `ls`: filtered task lines or a JSON array.

use std::io::{IsTerminal, Write};

use anyhow::Result;
use kanban_store::layout::list_boards;
use kanban_store::{TaskOrder, TaskQuery};

use crate::cli::{ListArgs, SortOrder};
use crate::context::Ctx;
use crate::output::{CliTask, print_json, profile_author, push_task_line};

fn order(sort: Option<SortOrder>) -> TaskOrder {
    match sort {
        None | Some(SortOrder::Priority) => TaskOrder::Priority,
        // The reference's `priority-desc` lists low priority first.
        Some(SortOrder::PriorityDesc) => TaskOrder::PriorityAsc,
        Some(SortOrder::Created) => TaskOrder::Created,
        Some(SortOrder::CreatedDesc) => TaskOrder::CreatedDesc,
        Some(SortOrder::Status) => TaskOrder::Status,
        Some(SortOrder::Assignee) => TaskOrder::Assignee,
        Some(SortOrder::Title) => TaskOrder::Title,
        Some(SortOrder::Updated) => TaskOrder::Updated,
    }
}

pub fn run(args: ListArgs, ctx: &Ctx) -> Result<i32> {
    let mut assignee = args.assignee;
    if args.mine && assignee.is_none() {
        assignee = Some(profile_author());
    }
    let store = ctx.store()?;
    // Cheap mini-dispatch so the listing reflects parents that finished
    // since the last dispatcher pass.
    store.recompute_ready(ctx.failure_limit())?;
    let query = TaskQuery {
        assignee: kanban_core::validate::normalize_assignee(assignee.as_deref()),
        status: args.status,
        tenant: args.tenant,
        session_id: args.session,
        include_archived: args.archived || args.status == Some(kanban_core::Status::Archived),
        workflow_template_id: args.workflow_template_id,
        current_step_key: args.step_key,
        order: order(args.sort),
        limit: None,
    };
    if args.json {
        let tasks = store.list_tasks(&query)?;
        print_json(&tasks.iter().map(CliTask::from).collect::<Vec<_>>());
        return Ok(0);
    }
    // Human lines need six columns; the narrow query keeps `list` on a
    // 100k-task board well inside its latency budget.
    let tasks = store.list_task_lines(&query)?;
    // Which board this is matters only to a person reading it; scripts
    // count lines (seed 000), so the header goes to terminals only.
    if std::io::stdout().is_terminal() {
        let boards = list_boards(&ctx.root, false);
        if boards.len() > 1 {
            let others = boards.len() - 1;
            println!(
                "Board: {} ({others} other board{} — `kanban boards list`)\n",
                ctx.board.slug,
                if others == 1 { "" } else { "s" }
            );
        }
    }
    if tasks.is_empty() {
        println!("(no matching tasks)");
        return Ok(0);
    }
    // One buffered writer: `println!` flushes per line, which on a 100k-task
    // board costs 100k write syscalls, most of the command's time.
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let mut line = String::with_capacity(256);
    for t in &tasks {
        line.clear();
        push_task_line(&mut line, t);
        line.push('\n');
        // A closed pipe (`kanban list | head`) is not an error worth a message.
        if out.write_all(line.as_bytes()).is_err() {
            return Ok(0);
        }
    }
    let _ = out.flush();
    Ok(0)
}
