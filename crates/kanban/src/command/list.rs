//! `kanban list` / `ls`: filtered task lines or a JSON array.

use std::io::Write;

use anyhow::{Context as _, Result};
use kanban_store::{Store, TaskOrder, TaskQuery, TaskRow};

use super::list_held::{Held, HeldOutput};
use crate::cli::{ListArgs, SortOrder};
use crate::context::{Ctx, open_board};
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

/// Output buffered before a write syscall.
const OUTPUT_BUFFER_BYTES: usize = 64 * 1024;

pub fn run(args: ListArgs, ctx: &Ctx) -> Result<i32> {
    let mut assignee = args.assignee;
    if args.mine && assignee.is_none() {
        assignee = Some(profile_author());
    }
    let store = ctx.store()?;
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
    let header = if args.json { None } else { board_header(ctx) };
    let stdout = std::io::stdout();
    let out = std::io::BufWriter::with_capacity(OUTPUT_BUFFER_BYTES, stdout.lock());
    // A cheap mini-dispatch first, so the listing reflects parents that
    // finished since the last dispatcher pass; on its own connection,
    // beside the listing (see `list_held`), unless a reader would stop
    // its promotions (a board without WAL) and the two would wait on
    // each other.
    let (answer, sweep) = std::sync::mpsc::channel();
    let limit = ctx.failure_limit();
    std::thread::scope(|scope| -> Result<i32> {
        if store.reads_block_writes() {
            let _ = answer.send(store.recompute_ready(limit).map_err(Into::into));
        } else {
            let (board, clock) = (ctx.board.clone(), ctx.clock.clone());
            scope.spawn(move || {
                let promoted = open_board(&board, clock).and_then(|own| {
                    own.as_dispatch()
                        .recompute_ready(limit)
                        .context("cannot promote the tasks whose parents are done")
                });
                let _ = answer.send(promoted);
            });
        }
        let mut out = HeldOutput::new(out, sweep);
        loop {
            let written = if args.json {
                write_json(store, &query, &mut out)
            } else {
                write_lines(store, &query, header.as_deref(), &mut out)
            }
            .and_then(|()| out.finish());
            match written {
                Ok(Held::Written) => return Ok(0),
                Ok(Held::ListAgain) => {}
                // A closed pipe (`kanban list | head`) is not an error
                // worth a message.
                Err(e) if !args.json && is_closed_pipe(&e) => return Ok(0),
                Err(e) => return Err(e),
            }
        }
    })
}

/// With several boards, say which one this is, into a pipe too: the
/// reference does, and scripts written against it expect the header.
fn board_header(ctx: &Ctx) -> Option<String> {
    let boards = ctx.catalogue().list(false).unwrap_or_default();
    let others = boards.len().checked_sub(1).filter(|n| *n > 0)?;
    Some(format!(
        "Board: {} ({others} other board{} — `kanban boards list`)\n\n",
        ctx.board.slug,
        if others == 1 { "" } else { "s" }
    ))
}

fn is_closed_pipe(e: &anyhow::Error) -> bool {
    e.downcast_ref::<std::io::Error>()
        .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
}

/// Human lines need six columns, streamed straight from the query into
/// one buffered writer: no per-row allocation and no per-line flush
/// (`println!` would cost a write syscall per line), which keeps `list`
/// on a 100k-task board inside its latency budget.
fn write_lines<W: Write>(
    store: &dyn Store,
    query: &TaskQuery,
    header: Option<&str>,
    out: &mut HeldOutput<W>,
) -> Result<()> {
    if let Some(header) = header
        && !out.write(header.as_bytes())?
    {
        return Ok(());
    }
    let mut line = String::with_capacity(256);
    let mut any = false;
    let mut failed = None;
    store.for_each_task_line(query, &mut |t| {
        any = true;
        line.clear();
        push_task_line(&mut line, &t);
        line.push('\n');
        out.write(line.as_bytes()).unwrap_or_else(|e| {
            failed = Some(e);
            false
        })
    })?;
    if let Some(e) = failed {
        return Err(e);
    }
    if !any {
        out.write(b"(no matching tasks)\n")?;
    }
    Ok(())
}

/// `list --json`: the same bytes as pretty-printing the whole array
/// (`print_json`), written piece by piece as the store renders them (on
/// several threads for a big SQLite board), so a 100k-task board never
/// sits in memory, neither as rows nor as text.
fn write_json<W: Write>(
    store: &dyn Store,
    query: &TaskQuery,
    out: &mut HeldOutput<W>,
) -> Result<()> {
    if !out.write(b"[")? {
        return Ok(());
    }
    let render = |position: usize, t: &TaskRow<'_>, text: &mut Vec<u8>| {
        text.extend_from_slice(if position == 0 { b"\n" } else { b",\n" });
        kanban_core::json_text::push_element(text, &CliTask::from(t).fields());
    };
    let mut any = false;
    let mut failed = None;
    store.render_tasks(query, &render, &mut |text| {
        any = true;
        out.write(text).unwrap_or_else(|e| {
            failed = Some(e);
            false
        })
    })?;
    if let Some(e) = failed {
        return Err(e);
    }
    out.write(if any { b"\n]\n" } else { b"]\n" })?;
    Ok(())
}
