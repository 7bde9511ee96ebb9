//! `Store::render_tasks` on several threads: `kanban list --json` on a big
//! board.
//!
//! Reading and decoding the 21 cells of each row is most of a long
//! listing's time and rendering it most of the rest (on one thread, about
//! 1.1 µs a task on the project's 2-core VM). Here a walker thread reads
//! the listing's order (the row ids only: for the default order an index
//! walk, no table read) and deals it out in chunks of [`LANE_CHUNK_ROWS`]
//! rows to [`LISTING_LANES`] lane threads in turn; each lane reads its
//! chunks' rows by row id on a connection of its own and renders them, and
//! the calling thread hands the rendered chunks on in order. Memory stays
//! flat: a lane waits while [`LANE_QUEUE_CHUNKS`] chunks of its own are not
//! handed on yet, and the walker while as many are not taken.
//!
//! One snapshot for the walker and the lanes: a separate connection holds
//! the write lock (`BEGIN IMMEDIATE`, then `ROLLBACK`) while they start their read
//! transactions, so no commit can fall between them; that takes
//! microseconds and stops no reader. When the lock is not free within
//! [`PIN_WAIT_MS`] (a long write is under way), or the file is read-only,
//! the listing is rendered on the calling thread instead.

use std::path::Path;
use std::sync::mpsc::{Receiver, Sender, SyncSender, channel, sync_channel};

use rusqlite::{Connection, OptionalExtension, params_from_iter};

use super::open::{connect, extra_connection};
use super::task_rows::{ROW_COLUMNS, task_row};
use super::tasks::list_query;
use super::txn::{DbResult, is_busy};
use crate::StoreError;
use crate::params::{RENDER_PIECE_BYTES, TaskQuery, TaskRenderer};

/// Threads rendering one listing (when the machine has that many CPUs).
const LISTING_LANES: usize = 2;
/// Rows a lane renders in a row before the next lane's turn: about
/// [`RENDER_PIECE_BYTES`] of JSON.
const LANE_CHUNK_ROWS: usize = 512;
/// Rendered chunks of one lane waiting to be handed on, at most.
const LANE_QUEUE_CHUNKS: usize = 4;
/// Smaller boards (by highest row id) are rendered on the calling thread:
/// below this, the lanes' connections and threads cost more than they save.
const LANES_MIN_ROWS: i64 = 2_000;
/// How long the snapshot pin waits for the write lock before giving up on
/// lanes for this listing.
const PIN_WAIT_MS: u64 = 50;

/// Whether a listing of `q` on this board is worth [`render_in_lanes`].
pub(crate) fn worth_lanes(conn: &Connection, q: &TaskQuery) -> DbResult<bool> {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    if cpus < LISTING_LANES || q.limit.is_some_and(|n| (n as i64) < LANES_MIN_ROWS) {
        return Ok(false);
    }
    let highest: Option<i64> = conn
        .prepare_cached("SELECT MAX(rowid) FROM tasks")?
        .query_row([], |r| r.get(0))?;
    Ok(highest.unwrap_or(0) >= LANES_MIN_ROWS)
}

/// Render the listing of `q` in lanes (see the module). `Ok(false)` when
/// no snapshot pin could be had: nothing was emitted, render it here.
pub(crate) fn render_in_lanes(
    path: &Path,
    busy_ms: u64,
    q: &TaskQuery,
    render: &TaskRenderer<'_>,
    emit: &mut dyn FnMut(&[u8]) -> bool,
) -> DbResult<bool> {
    let Some(mut readers) = pinned_readers(path, busy_ms, LISTING_LANES + 1)? else {
        return Ok(false);
    };
    let walker_conn = readers.pop().expect("one reader per lane and the walker");
    std::thread::scope(|scope| {
        let mut queues = Vec::with_capacity(LISTING_LANES);
        let mut jobs = Vec::with_capacity(LISTING_LANES);
        let mut lanes = Vec::with_capacity(LISTING_LANES);
        for conn in readers {
            let (give_job, job) = sync_channel(LANE_QUEUE_CHUNKS);
            let (out, rendered) = sync_channel(LANE_QUEUE_CHUNKS);
            let (give_back, spare) = channel();
            jobs.push(give_job);
            queues.push((rendered, give_back));
            lanes.push(scope.spawn(move || run_lane(&conn, &job, render, &out, &spare)));
        }
        let walker = scope.spawn(move || walk_order(&walker_conn, q, &jobs));
        hand_on_in_order(&queues, emit);
        // The walker and a lane still at work stop at their next send.
        drop(queues);
        let mut outcome = Ok(true);
        for result in std::iter::once(walker).chain(lanes).map(|t| t.join()) {
            let result = result.unwrap_or_else(|_| {
                Err(StoreError::Backend(crate::BackendError::msg("a listing lane panicked")).into())
            });
            if let (Ok(_), Err(e)) = (&outcome, result) {
                outcome = Err(e);
            }
        }
        outcome
    })
}

/// Rows of the listing a lane renders: the position of the first, and
/// their row ids in order.
struct Chunk {
    first: usize,
    rowids: Vec<i64>,
}

/// Walk the listing's order (the row ids only: an index walk for the
/// default order) and deal it out in chunks: chunk `c` to lane
/// `c % LISTING_LANES`.
fn walk_order(conn: &Connection, q: &TaskQuery, jobs: &[SyncSender<Chunk>]) -> DbResult<()> {
    let (order_sql, args) = list_query("rowid", q);
    let mut order = conn.prepare(&order_sql)?;
    let mut rows = order.query(params_from_iter(args))?;
    let mut chunk = Chunk {
        first: 0,
        rowids: Vec::with_capacity(LANE_CHUNK_ROWS),
    };
    let mut dealt = 0usize;
    while let Some(r) = rows.next()? {
        chunk.rowids.push(r.get(0)?);
        if chunk.rowids.len() == LANE_CHUNK_ROWS {
            let next = Chunk {
                first: chunk.first + LANE_CHUNK_ROWS,
                rowids: Vec::with_capacity(LANE_CHUNK_ROWS),
            };
            if jobs[dealt % jobs.len()]
                .send(std::mem::replace(&mut chunk, next))
                .is_err()
            {
                return Ok(());
            }
            dealt += 1;
        }
    }
    if !chunk.rowids.is_empty() {
        let _ = jobs[dealt % jobs.len()].send(chunk);
    }
    Ok(())
}

/// A lane's rendered chunks, and the way back for their emptied buffers.
type LaneQueue = (Receiver<Vec<u8>>, Sender<Vec<u8>>);

/// Chunk 0 from lane 0, chunk 1 from lane 1, …, until a lane has no next
/// chunk (the listing ended, or the lane failed) or `emit` says stop.
fn hand_on_in_order(queues: &[LaneQueue], emit: &mut dyn FnMut(&[u8]) -> bool) {
    for lane in (0..queues.len()).cycle() {
        let (rendered, give_back) = &queues[lane];
        let Ok(mut chunk) = rendered.recv() else {
            return;
        };
        if !emit(&chunk) {
            return;
        }
        chunk.clear();
        let _ = give_back.send(chunk);
    }
}

/// One lane: read and render the chunks dealt to it, in turn.
fn run_lane(
    conn: &Connection,
    jobs: &Receiver<Chunk>,
    render: &TaskRenderer<'_>,
    out: &SyncSender<Vec<u8>>,
    spare: &Receiver<Vec<u8>>,
) -> DbResult<()> {
    let mut fetch = conn.prepare(&format!("SELECT {ROW_COLUMNS} FROM tasks WHERE rowid = ?1"))?;
    for job in jobs {
        let mut text = spare
            .try_recv()
            .unwrap_or_else(|_| Vec::with_capacity(RENDER_PIECE_BYTES));
        for (i, rowid) in job.rowids.iter().enumerate() {
            let mut found = fetch.query([rowid])?;
            // The walker read the same snapshot: the row is there, and a
            // listing that skipped it would be wrong, not shorter.
            let row = found.next()?.ok_or_else(|| {
                StoreError::Backend(crate::BackendError::msg(format!(
                    "row {rowid} of the listing vanished from its snapshot"
                )))
            })?;
            render(job.first + i, &task_row(row)?, &mut text);
        }
        if out.send(text).is_err() {
            break;
        }
    }
    Ok(())
}

/// `count` connections in read transactions of one snapshot, or `None`
/// when the write lock (which keeps commits out while they start) is not
/// free within [`PIN_WAIT_MS`] or cannot be taken at all.
fn pinned_readers(path: &Path, busy_ms: u64, count: usize) -> DbResult<Option<Vec<Connection>>> {
    let readers = (0..count)
        .map(|_| extra_connection(path, busy_ms))
        .collect::<crate::Result<Vec<_>>>()?;
    let pin = connect(path, PIN_WAIT_MS)?;
    match pin.execute_batch("BEGIN IMMEDIATE") {
        Ok(()) => {}
        Err(e) if is_busy(&e) || e.sqlite_error_code() == Some(rusqlite::ErrorCode::ReadOnly) => {
            return Ok(None);
        }
        Err(e) => return Err(e.into()),
    }
    let started = readers.iter().try_for_each(|conn| -> rusqlite::Result<()> {
        conn.execute_batch("BEGIN")?;
        // The first read starts the transaction's snapshot.
        conn.query_row("SELECT 1 FROM tasks LIMIT 1", [], |_| Ok(()))
            .optional()?;
        Ok(())
    });
    pin.execute_batch("ROLLBACK")?;
    started?;
    Ok(Some(readers))
}
