//! Reads of runs and attachments by their own ids, the assignee's recent
//! work, the board cards' aggregates, and attachment rows (the blobs are
//! the adapter's, see `crate::attachments`).

use std::collections::HashMap;

use kanban_core::context::RecentWork;
use kanban_core::{Attachment, EventKind, Run, payload};
use rusqlite::{Connection, OptionalExtension, params};

use super::row::{i64_or, opt_str, run_from_row, str_or_empty};
use super::schema::RUN_COLUMNS;
use super::txn::{DbResult, Tx};
use crate::attachments::safe_attachment_name;
use crate::params::{CardFacts, NewAttachment};
use crate::{BackendError, StoreError};

pub(crate) fn get_run(conn: &Connection, run_id: i64) -> DbResult<Option<Run>> {
    let sql = format!("SELECT {RUN_COLUMNS} FROM task_runs WHERE id = ?1");
    Ok(conn
        .prepare_cached(&sql)?
        .query_row([run_id], run_from_row)
        .optional()?)
}

/// Newest completed runs of a profile: a backward walk of
/// `kanban_rs_idx_runs_recent` (its `WHERE` is implied by this one's).
pub(crate) const RECENT_COMPLETED_RUNS_SQL: &str = "SELECT t.id, t.title, r.summary, COALESCE(r.ended_at, r.started_at) AS ended \
     FROM task_runs r JOIN tasks t ON t.id = r.task_id \
     WHERE r.profile = ?1 AND r.outcome = 'completed' AND r.task_id IS NOT ?2 \
     ORDER BY ended DESC, r.id DESC LIMIT ?3";

/// Latest completed runs of `profile` on tasks other than `exclude`,
/// newest first (reference "Recent work by @assignee").
pub(crate) fn recent_completed_runs(
    conn: &Connection,
    profile: &str,
    exclude: Option<&str>,
    limit: usize,
) -> DbResult<Vec<RecentWork>> {
    let mut st = conn.prepare_cached(RECENT_COMPLETED_RUNS_SQL)?;
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let rows = st.query_map(params![profile, exclude, limit], |r| {
        Ok(RecentWork {
            task_id: str_or_empty(r, 0)?,
            title: str_or_empty(r, 1)?,
            summary: opt_str(r, 2)?,
            ended_at: i64_or(r, 3, 0)?,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Link, comment and progress counts and the latest run summary of every
/// task, in four set-based queries whatever the board size.
pub(crate) fn card_facts(
    conn: &Connection,
    summary_chars: Option<usize>,
) -> DbResult<HashMap<String, CardFacts>> {
    let mut out: HashMap<String, CardFacts> = HashMap::new();
    let mut st =
        conn.prepare_cached("SELECT child_id, COUNT(*) FROM task_links GROUP BY child_id")?;
    for row in st.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))? {
        let (id, n) = row?;
        out.entry(id).or_default().parents = n;
    }
    let mut st = conn.prepare_cached(
        "SELECT l.parent_id, COUNT(*), COALESCE(SUM(c.status = 'done'), 0) \
         FROM task_links l LEFT JOIN tasks c ON c.id = l.child_id GROUP BY l.parent_id",
    )?;
    for row in st.query_map([], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, i64>(1)?,
            r.get::<_, i64>(2)?,
        ))
    })? {
        let (id, n, done) = row?;
        let f = out.entry(id).or_default();
        f.children = n;
        f.children_done = done;
    }
    let mut st =
        conn.prepare_cached("SELECT task_id, COUNT(*) FROM task_comments GROUP BY task_id")?;
    for row in st.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))? {
        let (id, n) = row?;
        out.entry(id).or_default().comments = n;
    }
    // Newest non-empty summary per task (reference `latest_summaries`
    // order), cut in SQL so large handoffs are not copied for a card.
    let max = summary_chars.map_or(-1, |n| i64::try_from(n).unwrap_or(i64::MAX));
    let mut st = conn.prepare_cached(
        "SELECT task_id, CASE WHEN ?1 < 0 THEN summary ELSE substr(summary, 1, ?1) END FROM ( \
           SELECT task_id, summary, ROW_NUMBER() OVER ( \
             PARTITION BY task_id ORDER BY COALESCE(ended_at, started_at) DESC, id DESC) AS rn \
           FROM task_runs WHERE summary IS NOT NULL AND summary != '') \
         WHERE rn = 1",
    )?;
    for row in st.query_map([max], |r| {
        Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
    })? {
        let (id, s) = row?;
        out.entry(id).or_default().latest_summary = Some(s);
    }
    Ok(out)
}

const ATTACHMENT_COLUMNS: &str =
    "id, task_id, filename, stored_path, content_type, size, uploaded_by, created_at";

fn attachment_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Attachment> {
    Ok(Attachment {
        id: i64_or(r, 0, 0)?,
        task_id: str_or_empty(r, 1)?,
        filename: str_or_empty(r, 2)?,
        stored_path: str_or_empty(r, 3)?,
        content_type: opt_str(r, 4)?,
        size: i64_or(r, 5, 0)?,
        uploaded_by: opt_str(r, 6)?,
        created_at: i64_or(r, 7, 0)?,
    })
}

pub(crate) fn attachments(conn: &Connection, task_id: &str) -> DbResult<Vec<Attachment>> {
    let sql = format!(
        "SELECT {ATTACHMENT_COLUMNS} FROM task_attachments WHERE task_id = ?1 \
         ORDER BY created_at ASC, id ASC"
    );
    let mut st = conn.prepare_cached(&sql)?;
    let rows = st.query_map([task_id], attachment_from_row)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

pub(crate) fn get_attachment(conn: &Connection, id: i64) -> DbResult<Option<Attachment>> {
    let sql = format!("SELECT {ATTACHMENT_COLUMNS} FROM task_attachments WHERE id = ?1");
    Ok(conn
        .prepare_cached(&sql)?
        .query_row([id], attachment_from_row)
        .optional()?)
}

/// The row and its `attached{filename,size,by}` event.
pub(crate) fn add_attachment(tx: &Tx<'_>, req: &NewAttachment) -> DbResult<Attachment> {
    let filename = safe_attachment_name(&req.filename)?;
    if !req.stored_path.starts_with('/') {
        return Err(StoreError::invalid(format!(
            "attachment stored_path {:?} must be absolute",
            req.stored_path
        ))
        .into());
    }
    if req.size < 0 {
        return Err(StoreError::invalid("attachment size must not be negative").into());
    }
    tx.require_task(&req.task_id)?;
    tx.conn.execute(
        "INSERT INTO task_attachments \
         (task_id, filename, stored_path, content_type, size, uploaded_by, created_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![
            req.task_id,
            filename,
            req.stored_path,
            req.content_type,
            req.size,
            req.uploaded_by,
            tx.now
        ],
    )?;
    let id = tx.conn.last_insert_rowid();
    tx.append_event(
        &req.task_id,
        EventKind::Attached,
        Some(payload::attached(
            &filename,
            req.size,
            req.uploaded_by.as_deref(),
        )),
        None,
    )?;
    get_attachment(tx.conn, id)?.ok_or_else(|| {
        StoreError::Backend(BackendError::msg(format!("attachment {id} vanished"))).into()
    })
}

/// Delete the row (event `attachment_removed{filename}`); returns it so
/// the caller can remove the blob.
pub(crate) fn remove_attachment(tx: &Tx<'_>, id: i64) -> DbResult<Option<Attachment>> {
    let Some(att) = get_attachment(tx.conn, id)? else {
        return Ok(None);
    };
    tx.conn
        .execute("DELETE FROM task_attachments WHERE id = ?1", [id])?;
    tx.append_event(
        &att.task_id,
        EventKind::AttachmentRemoved,
        Some(payload::attachment_removed(&att.filename)),
        None,
    )?;
    Ok(Some(att))
}
