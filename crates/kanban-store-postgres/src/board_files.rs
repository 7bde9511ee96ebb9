//! Attachment blobs and worker logs kept in the database, so a gateway on
//! any host serves what a worker on another host wrote (ADR 0002,
//! `kanban_store::board_files`).
//!
//! - Blobs: `add_attachment` and a completion's kept artifacts copy the file
//!   the caller wrote at `stored_path` into `kanban_rs_attachment_blobs` in
//!   the same transaction as the row, under `ATTACHMENT_MAX_BYTES`; the row's
//!   deletion (its own or its task's) removes the copy by cascade.
//! - Logs: the worker wrapper appends each run's new output to
//!   `kanban_rs_log_chunks` (one row per flush, run-relative offsets, at
//!   most the run's cap). These appends are not board state changes: they
//!   take no board lock, bump no version and wake no gateway.

use std::fs::File;
use std::io::Read;
use std::path::Path;

use kanban_core::defaults::ATTACHMENT_MAX_BYTES;
use kanban_store::board_files::{
    LOG_RUNS_KEPT, LogRange, LogSlice, WorkerLogAppend, slice_of_parts,
};
use kanban_store::{BackendError, StoreError};

use crate::db::{Db, DbError, DbResult, Tx};

fn backend(msg: String) -> StoreError {
    StoreError::Backend(BackendError::msg(msg))
}

/// Copy the blob at `path` into the board for attachment `id`. A missing
/// file keeps no copy (a row whose blob lives elsewhere, as on a migrated
/// board); one over the attachment cap refuses the transaction.
pub(crate) fn keep_blob(tx: &Tx<'_>, id: i64, path: &Path) -> DbResult<()> {
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => {
            return Err(backend(format!("cannot read attachment {}: {e}", path.display())).into());
        }
    };
    if !file.metadata().is_ok_and(|m| m.is_file()) {
        return Ok(());
    }
    let mut content = Vec::new();
    file.take(ATTACHMENT_MAX_BYTES + 1)
        .read_to_end(&mut content)
        .map_err(|e| backend(format!("cannot read attachment {}: {e}", path.display())))?;
    if content.len() as u64 > ATTACHMENT_MAX_BYTES {
        return Err(StoreError::invalid(format!(
            "attachment exceeds the {ATTACHMENT_MAX_BYTES}-byte limit"
        ))
        .into());
    }
    tx.execute(
        "INSERT INTO kanban_rs_attachment_blobs (attachment_id, content) VALUES ($1, $2)",
        &[&id, &content],
    )?;
    Ok(())
}

/// After a board was copied in (`kanban boards migrate`): the blobs of its
/// attachments, from this host's files (where the copied board lived).
/// A blob over the cap stays a file-only attachment rather than failing
/// the copy.
pub(crate) fn keep_loaded_blobs(tx: &Tx<'_>) -> DbResult<()> {
    for r in tx.query("SELECT id, stored_path FROM task_attachments", &[])? {
        let (id, path): (i64, String) = (r.try_get(0)?, r.try_get(1)?);
        match keep_blob(tx, id, Path::new(&path)) {
            Err(DbError::Store(StoreError::Invalid(_))) => {
                tracing::warn!("attachment {id} is over the size cap: its blob stays a file");
            }
            other => other?,
        }
    }
    Ok(())
}

pub(crate) fn blob(db: &Db<'_>, id: i64) -> DbResult<Option<Vec<u8>>> {
    Ok(db
        .query_opt(
            "SELECT content FROM kanban_rs_attachment_blobs WHERE attachment_id = $1",
            &[&id],
        )?
        .map(|r| r.try_get(0))
        .transpose()?)
}

/// Append a run's new output (autocommit statements: a reader between
/// them sees the run's log a flush shorter, which the next poll fixes).
pub(crate) fn append_log(db: &Db<'_>, req: &WorkerLogAppend) -> DbResult<()> {
    let room = req.max_run_bytes.saturating_sub(req.offset);
    let bytes = &req.bytes[..req.bytes.len().min(room as usize)];
    let offset = i64::try_from(req.offset).unwrap_or(i64::MAX);
    if req.replace {
        db.execute(
            "DELETE FROM kanban_rs_log_chunks \
             WHERE task_id = $1 AND run_id = $2 AND start_offset >= $3",
            &[&req.task_id, &req.run_id, &offset],
        )?;
        // A chunk reaching across `offset` keeps only its part before it.
        db.execute(
            "UPDATE kanban_rs_log_chunks \
             SET bytes = substring(bytes FROM 1 FOR ($3 - start_offset)::INTEGER) \
             WHERE task_id = $1 AND run_id = $2 AND start_offset < $3 \
               AND start_offset + length(bytes) > $3",
            &[&req.task_id, &req.run_id, &offset],
        )?;
    }
    if bytes.is_empty() {
        return Ok(());
    }
    if offset == 0 {
        // A new run: older runs beyond the kept ones go, as the file rotates.
        db.execute(
            "DELETE FROM kanban_rs_log_chunks WHERE task_id = $1 AND run_id < $2 \
             AND run_id NOT IN (SELECT DISTINCT run_id FROM kanban_rs_log_chunks \
                 WHERE task_id = $1 AND run_id < $2 ORDER BY run_id DESC LIMIT $3)",
            &[&req.task_id, &req.run_id, &(LOG_RUNS_KEPT - 1)],
        )?;
    }
    db.execute(
        "INSERT INTO kanban_rs_log_chunks (task_id, run_id, start_offset, bytes) \
         VALUES ($1, $2, $3, $4) \
         ON CONFLICT (task_id, run_id, start_offset) DO UPDATE SET bytes = EXCLUDED.bytes",
        &[&req.task_id, &req.run_id, &offset, &bytes],
    )?;
    Ok(())
}

/// The window `range` of the task's kept log (runs oldest first), read on
/// one snapshot by the caller.
pub(crate) fn read_log(db: &Db<'_>, task_id: &str, range: LogRange) -> DbResult<Option<LogSlice>> {
    let rows = db.query(
        "SELECT run_id, start_offset, length(bytes)::BIGINT FROM kanban_rs_log_chunks \
         WHERE task_id = $1 ORDER BY run_id, start_offset",
        &[&task_id],
    )?;
    if rows.is_empty() {
        return Ok(None);
    }
    let mut keys = Vec::with_capacity(rows.len());
    let mut lens = Vec::with_capacity(rows.len());
    for r in &rows {
        keys.push((r.try_get::<_, i64>(0)?, r.try_get::<_, i64>(1)?));
        lens.push(u64::try_from(r.try_get::<_, i64>(2)?).unwrap_or(0));
    }
    let (size, offset, pieces) = slice_of_parts(&lens, range);
    let mut bytes = Vec::new();
    for (i, from, len) in pieces {
        let (run_id, start) = keys[i];
        // substring() counts from 1 and takes INTEGER positions; a chunk
        // is at most one run's cap, far below that.
        let from = i32::try_from(from + 1).unwrap_or(i32::MAX);
        let len = i32::try_from(len).unwrap_or(i32::MAX);
        let row = db.query_one(
            "SELECT substring(bytes FROM $4 FOR $5) FROM kanban_rs_log_chunks \
             WHERE task_id = $1 AND run_id = $2 AND start_offset = $3",
            &[&task_id, &run_id, &start, &from, &len],
        )?;
        bytes.extend_from_slice(&row.try_get::<_, Vec<u8>>(0)?);
    }
    Ok(Some(LogSlice {
        size,
        offset,
        bytes,
    }))
}
