//! Reads of runs and attachments by their own ids, the assignee's recent
//! work, the board cards' aggregates, and attachment rows (the blobs are
//! the adapter's files, see `kanban_store::attachments`, copied into the
//! board by `board_files`). Mirrors the SQLite backend's `runs.rs`.

use std::collections::HashMap;

use kanban_core::context::RecentWork;
use kanban_core::{Attachment, EventKind, Run, payload};
use kanban_store::attachments::safe_attachment_name;
use kanban_store::params::{CardFacts, NewAttachment};
use kanban_store::{BackendError, StoreError};
use postgres::Row;

use crate::db::{Db, DbResult, Tx};
use crate::row::{all, i64_or, opt_str, run_from_row, str_or_empty};
use crate::schema::RUN_COLUMNS;

/// Cap of a card summary cut in SQL (`substr` takes an INTEGER length).
const MAX_SUBSTR_CHARS: i64 = i32::MAX as i64;

pub(crate) fn get_run(db: &Db<'_>, run_id: i64) -> DbResult<Option<Run>> {
    let sql = format!("SELECT {RUN_COLUMNS} FROM task_runs WHERE id = $1");
    db.query_opt(&sql, &[&run_id])?
        .map(|r| run_from_row(&r))
        .transpose()
}

/// Latest completed runs of `profile` on tasks other than `exclude`,
/// newest first (reference "Recent work by @assignee").
pub(crate) fn recent_completed_runs(
    db: &Db<'_>,
    profile: &str,
    exclude: Option<&str>,
    limit: usize,
) -> DbResult<Vec<RecentWork>> {
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let rows = db.query(
        "SELECT t.id, t.title, r.summary, COALESCE(r.ended_at, r.started_at) AS ended \
         FROM task_runs r JOIN tasks t ON t.id = r.task_id \
         WHERE r.profile = $1 AND r.outcome = 'completed' \
         AND r.task_id IS DISTINCT FROM $2::TEXT \
         ORDER BY ended DESC, r.id DESC LIMIT $3",
        &[&profile, &exclude, &limit],
    )?;
    all(rows, |r| {
        Ok(RecentWork {
            task_id: str_or_empty(r, 0)?,
            title: str_or_empty(r, 1)?,
            summary: opt_str(r, 2)?,
            ended_at: i64_or(r, 3, 0)?,
        })
    })
}

/// Link, comment and progress counts and the latest run summary of every
/// task, in four set-based queries whatever the board size.
pub(crate) fn card_facts(
    db: &Db<'_>,
    summary_chars: Option<usize>,
) -> DbResult<HashMap<String, CardFacts>> {
    let mut out: HashMap<String, CardFacts> = HashMap::new();
    for r in db.query(
        "SELECT child_id, COUNT(*) FROM task_links GROUP BY child_id",
        &[],
    )? {
        out.entry(r.try_get(0)?).or_default().parents = r.try_get(1)?;
    }
    for r in db.query(
        "SELECT l.parent_id, COUNT(*), COUNT(*) FILTER (WHERE c.status = 'done') \
         FROM task_links l LEFT JOIN tasks c ON c.id = l.child_id GROUP BY l.parent_id",
        &[],
    )? {
        let f = out.entry(r.try_get(0)?).or_default();
        f.children = r.try_get(1)?;
        f.children_done = r.try_get(2)?;
    }
    for r in db.query(
        "SELECT task_id, COUNT(*) FROM task_comments GROUP BY task_id",
        &[],
    )? {
        out.entry(r.try_get(0)?).or_default().comments = r.try_get(1)?;
    }
    // Newest non-empty summary per task (reference `latest_summaries`
    // order), cut in SQL so large handoffs are not copied for a card.
    let max = summary_chars.map_or(-1, |n| {
        i64::try_from(n)
            .unwrap_or(MAX_SUBSTR_CHARS)
            .min(MAX_SUBSTR_CHARS)
    });
    for r in db.query(
        "SELECT task_id, CASE WHEN $1::BIGINT < 0 THEN summary \
           ELSE substr(summary, 1, GREATEST($1::BIGINT, 0)::INTEGER) END FROM ( \
           SELECT task_id, summary, ROW_NUMBER() OVER ( \
             PARTITION BY task_id ORDER BY COALESCE(ended_at, started_at) DESC, id DESC) AS rn \
           FROM task_runs WHERE summary IS NOT NULL AND summary != '') AS latest \
         WHERE rn = 1",
        &[&max],
    )? {
        out.entry(r.try_get(0)?).or_default().latest_summary = Some(r.try_get(1)?);
    }
    Ok(out)
}

const ATTACHMENT_COLUMNS: &str =
    "id, task_id, filename, stored_path, content_type, size, uploaded_by, created_at";

fn attachment_from_row(r: &Row) -> DbResult<Attachment> {
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

pub(crate) fn attachments(db: &Db<'_>, task_id: &str) -> DbResult<Vec<Attachment>> {
    let sql = format!(
        "SELECT {ATTACHMENT_COLUMNS} FROM task_attachments WHERE task_id = $1 \
         ORDER BY created_at ASC, id ASC"
    );
    all(db.query(&sql, &[&task_id])?, attachment_from_row)
}

pub(crate) fn get_attachment(db: &Db<'_>, id: i64) -> DbResult<Option<Attachment>> {
    let sql = format!("SELECT {ATTACHMENT_COLUMNS} FROM task_attachments WHERE id = $1");
    db.query_opt(&sql, &[&id])?
        .map(|r| attachment_from_row(&r))
        .transpose()
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
    let id: i64 = tx
        .query_one(
            "INSERT INTO task_attachments \
             (task_id, filename, stored_path, content_type, size, uploaded_by, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
            &[
                &req.task_id,
                &filename,
                &req.stored_path,
                &req.content_type,
                &req.size,
                &req.uploaded_by,
                &tx.now,
            ],
        )?
        .try_get(0)?;
    crate::board_files::keep_blob(tx, id, std::path::Path::new(&req.stored_path))?;
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
    get_attachment(tx, id)?.ok_or_else(|| {
        StoreError::Backend(BackendError::msg(format!("attachment {id} vanished"))).into()
    })
}

/// Delete the row (event `attachment_removed{filename}`); returns it so
/// the caller can remove the blob.
pub(crate) fn remove_attachment(tx: &Tx<'_>, id: i64) -> DbResult<Option<Attachment>> {
    let Some(att) = get_attachment(tx, id)? else {
        return Ok(None);
    };
    tx.execute("DELETE FROM task_attachments WHERE id = $1", &[&id])?;
    tx.append_event(
        &att.task_id,
        EventKind::AttachmentRemoved,
        Some(payload::attachment_removed(&att.filename)),
        None,
    )?;
    Ok(Some(att))
}
