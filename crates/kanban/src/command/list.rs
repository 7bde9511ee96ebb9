//! `kanban list` / `ls`: filtered task lines or a JSON array.

use std::io::Write;

use anyhow::Result;
use kanban_store::{Store, TaskOrder, TaskQuery};

use crate::cli::{ListArgs, SortOrder};
use crate::context::Ctx;
use crate::output::{CliTask, profile_author, push_task_line};

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
        return print_json_stream(store, &query);
    }
    // Human lines need six columns, streamed straight from the query into
    // one buffered writer: no per-row allocation and no per-line flush
    // (`println!` would cost a write syscall per line), which keeps `list`
    // on a 100k-task board inside its latency budget.
    let out = std::io::stdout();
    let mut out = std::io::BufWriter::new(out.lock());
    // With several boards, say which one this is, into a pipe too: the
    // reference does, and scripts written against it expect the header.
    let boards = ctx.catalogue().list(false).unwrap_or_default();
    if boards.len() > 1 {
        let others = boards.len() - 1;
        let _ = writeln!(
            out,
            "Board: {} ({others} other board{} — `kanban boards list`)\n",
            ctx.board.slug,
            if others == 1 { "" } else { "s" }
        );
    }
    let mut line = String::with_capacity(256);
    let mut any = false;
    let mut pipe_closed = false;
    store.for_each_task_line(&query, &mut |t| {
        any = true;
        line.clear();
        push_task_line(&mut line, &t);
        line.push('\n');
        // A closed pipe (`kanban list | head`) is not an error worth a message.
        if out.write_all(line.as_bytes()).is_err() {
            pipe_closed = true;
            return false;
        }
        true
    })?;
    if !any && !pipe_closed {
        let _ = writeln!(out, "(no matching tasks)");
    }
    let _ = out.flush();
    Ok(0)
}

/// `list --json`: the same bytes as pretty-printing the whole array
/// (`print_json`), written task by task as the store reads them, so a
/// 100k-task board never sits in memory, neither as rows nor as text.
/// (Formatting on a second thread fed with copied rows was tried: 10 %
/// quicker on a quiet machine for a third more CPU, slower on a busy one.)
fn print_json_stream<S: Store + ?Sized>(store: &S, query: &TaskQuery) -> Result<i32> {
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let mut buf: Vec<u8> = Vec::with_capacity(JSON_BUFFER_BYTES + JSON_TASK_BYTES);
    buf.push(b'[');
    let mut any = false;
    let mut failed = None;
    store.for_each_task(query, &mut |t| {
        buf.extend_from_slice(if any { b",\n" } else { b"\n" });
        any = true;
        kanban_core::json_text::push_element(&mut buf, &CliTask::from(&t).fields());
        if buf.len() >= JSON_BUFFER_BYTES {
            if let Err(e) = out.write_all(&buf) {
                failed = Some(e);
                return false;
            }
            buf.clear();
        }
        true
    })?;
    // On an error, what is still buffered is dropped rather than ending
    // the output with half an array.
    if let Some(e) = failed {
        return Err(e.into());
    }
    buf.extend_from_slice(if any { b"\n]\n" } else { b"]\n" });
    out.write_all(&buf)?;
    out.flush()?;
    Ok(0)
}

/// Output buffered before a write syscall.
const JSON_BUFFER_BYTES: usize = 64 * 1024;
/// Room for a typical task past the buffer's flush mark.
const JSON_TASK_BYTES: usize = 2 * 1024;
