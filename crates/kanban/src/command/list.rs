//! `kanban list` / `ls`: filtered task lines or a JSON array.

use std::io::Write;
use std::sync::mpsc;

use anyhow::Result;
use kanban_core::json_text::RecordBatch;
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
/// Rows are read on this thread and written as JSON on a second one: the
/// two halves of the work take about as long, and the machine has cores.
fn print_json_stream<S: Store + ?Sized>(store: &S, query: &TaskQuery) -> Result<i32> {
    let (full_tx, full_rx) = mpsc::sync_channel::<Batch>(BATCHES_IN_FLIGHT);
    let (empty_tx, empty_rx) = mpsc::channel::<RecordBatch>();
    std::thread::scope(|scope| {
        let writer = scope.spawn(move || write_batches(full_rx, empty_tx));
        let mut batch = RecordBatch::default();
        let mut writer_gone = false;
        let read = store.for_each_task(query, &mut |t| {
            batch.push(&CliTask::from(&t).fields());
            if batch.len() >= TASKS_PER_BATCH {
                let next = empty_rx.try_recv().unwrap_or_default();
                let full = std::mem::replace(&mut batch, next);
                if full_tx.send(Batch::More(full)).is_err() {
                    writer_gone = true;
                    return false;
                }
            }
            true
        });
        if read.is_ok() && !writer_gone {
            let _ = full_tx.send(Batch::Last(batch));
        }
        // Without `Last` the writer drops what it still holds rather than
        // end the output with half an array.
        drop(full_tx);
        let written = writer
            .join()
            .unwrap_or_else(|_| Err(std::io::Error::other("the JSON writer panicked")));
        read?;
        written?;
        Ok(0)
    })
}

/// What the reader hands the writer.
enum Batch {
    More(RecordBatch),
    /// The query's last rows: close the array and flush.
    Last(RecordBatch),
}

/// The writer's side: `[`, every batch's tasks, `]` after the last. Empty
/// batches go back to the reader for reuse.
fn write_batches(
    batches: mpsc::Receiver<Batch>,
    recycle: mpsc::Sender<RecordBatch>,
) -> std::io::Result<()> {
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let mut buf: Vec<u8> = Vec::with_capacity(2 * JSON_BUFFER_BYTES);
    buf.push(b'[');
    let mut any = false;
    for batch in batches {
        let (mut tasks, last) = match batch {
            Batch::More(b) => (b, false),
            Batch::Last(b) => (b, true),
        };
        tasks.write_elements(&mut buf, &mut any);
        if last {
            buf.extend_from_slice(if any { b"\n]\n" } else { b"]\n" });
            out.write_all(&buf)?;
            return out.flush();
        }
        if buf.len() >= JSON_BUFFER_BYTES {
            out.write_all(&buf)?;
            buf.clear();
        }
        tasks.clear();
        let _ = recycle.send(tasks);
    }
    Ok(())
}

/// Output buffered before a write syscall.
const JSON_BUFFER_BYTES: usize = 64 * 1024;
/// Tasks per batch handed to the writer thread, and batches in flight
/// (what bounds the memory: a few hundred KiB whatever the board's size).
const TASKS_PER_BATCH: usize = 256;
const BATCHES_IN_FLIGHT: usize = 2;
