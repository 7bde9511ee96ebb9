//! The file side of a completion, inside its transaction (reference §5.4,
//! `kanban_store::scratch` does the file work): declared scratch artifacts
//! become attachments, and the scratch workspaces the completion releases
//! are listed for removal after commit. The board's file root comes with
//! the request (`CompleteRequest::files`), exactly as on SQLite.

use std::path::PathBuf;

use kanban_core::{EventKind, Task, payload};
use kanban_store::StoreError;
use kanban_store::params::CompleteRequest;
use kanban_store::scratch::{
    ARTIFACT_REFUSAL, ARTIFACT_UPLOADER, BoardFiles, keep_scratch_artifacts, with_prose_artifacts,
};
use serde_json::Value;

use crate::db::{DbResult, Tx};

/// Statuses of a child that no longer needs its parent's scratch files.
const FINISHED: &str = "'done', 'archived'";

/// The metadata to record: the request's, plus scratch files the summary
/// or result names (before the task changes, while they still exist).
pub(super) fn declared_metadata(task: &Task, req: &CompleteRequest) -> Option<Value> {
    match &req.files {
        Some(files) => with_prose_artifacts(
            files,
            task,
            req.metadata.as_ref(),
            &[req.summary.as_deref(), req.result.as_deref()],
        ),
        None => req.metadata.clone(),
    }
}

/// Copy the declared scratch artifacts and record each as an attachment
/// (`attached{filename,size,by}`); refuses the completion when one cannot
/// be kept, so the transaction rolls back and the task stays in flight.
pub(super) fn keep_artifacts(
    tx: &Tx<'_>,
    task: &Task,
    req: &CompleteRequest,
    metadata: &mut Option<Value>,
) -> DbResult<()> {
    let Some(files) = &req.files else {
        return Ok(());
    };
    let kept =
        keep_scratch_artifacts(files, task, metadata).map_err(|why| StoreError::Refused {
            action: "complete",
            task_id: task.id.clone(),
            reason: format!(
                "{ARTIFACT_REFUSAL}: {why}. The task is still in flight and its scratch workspace \
             was kept"
            ),
        })?;
    for k in kept {
        let size = i64::try_from(k.size).unwrap_or(i64::MAX);
        let stored_path = k.stored_path.to_string_lossy();
        let id: i64 = tx
            .query_one(
                "INSERT INTO task_attachments \
                 (task_id, filename, stored_path, content_type, size, uploaded_by, created_at) \
                 VALUES ($1, $2, $3, NULL, $4, $5, $6) RETURNING id",
                &[
                    &task.id,
                    &k.filename,
                    &stored_path.as_ref(),
                    &size,
                    &ARTIFACT_UPLOADER,
                    &tx.now,
                ],
            )?
            .try_get(0)?;
        // Other hosts serve the kept artifact from the database (ADR 0002).
        crate::board_files::keep_blob(tx, id, &k.stored_path)?;
        tx.append_event(
            &task.id,
            EventKind::Attached,
            Some(payload::attached(
                &k.filename,
                size,
                Some(ARTIFACT_UPLOADER),
            )),
            None,
        )?;
    }
    Ok(())
}

fn scratch_dir(files: &BoardFiles, kind: &str, path: Option<&str>) -> Option<PathBuf> {
    let path = path.filter(|p| !p.is_empty())?;
    (kind == "scratch" && files.is_managed(std::path::Path::new(path))).then(|| path.into())
}

fn has_unfinished_children(tx: &Tx<'_>, task_id: &str) -> DbResult<bool> {
    let sql = format!(
        "SELECT 1 FROM task_links l JOIN tasks t ON t.id = l.child_id \
         WHERE l.parent_id = $1 AND t.status NOT IN ({FINISHED}) LIMIT 1"
    );
    Ok(tx.query_opt(&sql, &[&task_id])?.is_some())
}

/// The scratch workspaces free to go once the completion commits: the
/// task's own unless a child still runs on it (its files are the child's
/// handoff), then those of parents whose children are now all finished.
/// Like the reference, a task that keeps its own workspace for a child
/// releases no parent's either.
pub(super) fn released_scratch(
    tx: &Tx<'_>,
    task: &Task,
    req: &CompleteRequest,
) -> DbResult<Vec<PathBuf>> {
    let Some(files) = &req.files else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    if task.workspace_kind == "scratch" && task.workspace_path.is_some() {
        if has_unfinished_children(tx, &task.id)? {
            return Ok(out);
        }
        out.extend(scratch_dir(
            files,
            &task.workspace_kind,
            task.workspace_path.as_deref(),
        ));
    }
    let rows = tx.query(
        "SELECT t.id, t.workspace_kind, t.workspace_path FROM task_links l \
         JOIN tasks t ON t.id = l.parent_id WHERE l.child_id = $1",
        &[&task.id],
    )?;
    for r in rows {
        let id: String = r.try_get(0)?;
        // A NULL kind reads as `scratch`, as `row::task_from_row` reads it.
        let kind: Option<String> = r.try_get(1)?;
        let path: Option<String> = r.try_get(2)?;
        let kind = kind.as_deref().unwrap_or("scratch");
        if let Some(dir) = scratch_dir(files, kind, path.as_deref())
            && !has_unfinished_children(tx, &id)?
        {
            out.push(dir);
        }
    }
    Ok(out)
}
