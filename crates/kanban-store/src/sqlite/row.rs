//! Row → domain struct mapping. Columns are read by position, in the
//! order of the `*_COLUMNS` constants in `schema.rs`, so wide scans
//! (`kanban list` on 100k tasks) pay no per-row name lookups.
//!
//! Readers are lenient about types: boards written by older tools may
//! hold a timestamp as REAL or TEXT, and one odd cell must not make the
//! whole board unreadable.

use std::borrow::Cow;

use kanban_core::{Comment, Event, Run, Status, Task};
use rusqlite::Row;
use rusqlite::types::ValueRef;
use serde_json::Value;

/// Integer cell, tolerating REAL and numeric TEXT; anything else is NULL.
pub(crate) fn opt_i64(row: &Row<'_>, idx: usize) -> rusqlite::Result<Option<i64>> {
    Ok(match row.get_ref(idx)? {
        ValueRef::Integer(i) => Some(i),
        ValueRef::Real(f) if f.is_finite() => Some(f as i64),
        ValueRef::Text(t) => std::str::from_utf8(t).ok().and_then(|s| {
            let s = s.trim();
            s.parse::<i64>()
                .ok()
                .or_else(|| s.parse::<f64>().ok().map(|f| f as i64))
        }),
        _ => None,
    })
}

pub(crate) fn i64_or(row: &Row<'_>, idx: usize, default: i64) -> rusqlite::Result<i64> {
    Ok(opt_i64(row, idx)?.unwrap_or(default))
}

/// A text cell's bytes as text, borrowed. Valid UTF-8 is the norm; only a
/// foreign writer's odd bytes take the lossy (several times slower) path.
pub(crate) fn text_of(t: &[u8]) -> Cow<'_, str> {
    match std::str::from_utf8(t) {
        Ok(s) => Cow::Borrowed(s),
        Err(_) => String::from_utf8_lossy(t),
    }
}

/// Text cell; numbers are rendered, blobs decoded lossily.
pub(crate) fn opt_str(row: &Row<'_>, idx: usize) -> rusqlite::Result<Option<String>> {
    Ok(match row.get_ref(idx)? {
        ValueRef::Null => None,
        ValueRef::Text(t) | ValueRef::Blob(t) => Some(text_of(t).into_owned()),
        ValueRef::Integer(i) => Some(i.to_string()),
        ValueRef::Real(f) => Some(f.to_string()),
    })
}

pub(crate) fn str_or_empty(row: &Row<'_>, idx: usize) -> rusqlite::Result<String> {
    Ok(opt_str(row, idx)?.unwrap_or_default())
}

/// Stored status; an unknown value (written by some future tool) is shown
/// as `todo`, the column the reference dashboard buckets it into.
pub(crate) fn status_of(s: &str) -> Status {
    // Exact match first: this runs once per row of every scan.
    Status::ALL
        .iter()
        .copied()
        .find(|st| st.as_str() == s)
        .unwrap_or_else(|| s.parse().unwrap_or(Status::Todo))
}

/// Status cell read without allocating.
pub(crate) fn status_of_ref(row: &Row<'_>, idx: usize) -> rusqlite::Result<Status> {
    Ok(match row.get_ref(idx)? {
        ValueRef::Text(t) => std::str::from_utf8(t)
            .map(status_of)
            .unwrap_or(Status::Todo),
        _ => Status::Todo,
    })
}

fn skills_of(raw: Option<String>) -> Option<Vec<String>> {
    skills_from_json(&raw?)
}

pub(crate) use crate::task_row_cells::skills_from_json;

/// JSON text → value; NULL, empty or invalid JSON → `None`.
pub(crate) fn json_of(raw: Option<String>) -> Option<Value> {
    let raw = raw?;
    if raw.is_empty() {
        return None;
    }
    serde_json::from_str(&raw).ok()
}

/// Reads a row selected with `schema::TASK_COLUMNS`.
pub(crate) fn task_from_row(r: &Row<'_>) -> rusqlite::Result<Task> {
    Ok(Task {
        id: str_or_empty(r, 0)?,
        title: str_or_empty(r, 1)?,
        body: opt_str(r, 2)?,
        assignee: opt_str(r, 3)?,
        status: status_of_ref(r, 4)?,
        priority: i64_or(r, 5, 0)?,
        created_by: opt_str(r, 6)?,
        created_at: i64_or(r, 7, 0)?,
        started_at: opt_i64(r, 8)?,
        completed_at: opt_i64(r, 9)?,
        workspace_kind: opt_str(r, 10)?.unwrap_or_else(|| "scratch".to_string()),
        workspace_path: opt_str(r, 11)?,
        branch_name: opt_str(r, 12)?,
        project_id: opt_str(r, 13)?,
        claim_lock: opt_str(r, 14)?,
        claim_expires: opt_i64(r, 15)?,
        tenant: opt_str(r, 16)?,
        result: opt_str(r, 17)?,
        idempotency_key: opt_str(r, 18)?,
        consecutive_failures: i64_or(r, 19, 0)?,
        worker_pid: opt_i64(r, 20)?,
        last_failure_error: opt_str(r, 21)?,
        max_runtime_seconds: opt_i64(r, 22)?,
        last_heartbeat_at: opt_i64(r, 23)?,
        current_run_id: opt_i64(r, 24)?.filter(|id| *id != 0),
        workflow_template_id: opt_str(r, 25)?,
        current_step_key: opt_str(r, 26)?,
        skills: skills_of(opt_str(r, 27)?),
        model_override: opt_str(r, 28)?,
        max_retries: opt_i64(r, 29)?,
        goal_mode: i64_or(r, 30, 0)? != 0,
        goal_max_turns: opt_i64(r, 31)?,
        session_id: opt_str(r, 32)?,
        block_kind: opt_str(r, 33)?,
        block_recurrences: i64_or(r, 34, 0)?,
    })
}

/// Reads a row selected with `schema::RUN_COLUMNS`.
pub(crate) fn run_from_row(r: &Row<'_>) -> rusqlite::Result<Run> {
    Ok(Run {
        id: i64_or(r, 0, 0)?,
        task_id: str_or_empty(r, 1)?,
        profile: opt_str(r, 2)?,
        step_key: opt_str(r, 3)?,
        status: str_or_empty(r, 4)?,
        claim_lock: opt_str(r, 5)?,
        claim_expires: opt_i64(r, 6)?,
        worker_pid: opt_i64(r, 7)?,
        max_runtime_seconds: opt_i64(r, 8)?,
        last_heartbeat_at: opt_i64(r, 9)?,
        started_at: i64_or(r, 10, 0)?,
        ended_at: opt_i64(r, 11)?,
        outcome: opt_str(r, 12)?,
        summary: opt_str(r, 13)?,
        metadata: json_of(opt_str(r, 14)?).filter(Value::is_object),
        error: opt_str(r, 15)?,
    })
}

/// Reads a row selected with `schema::EVENT_COLUMNS`.
pub(crate) fn event_from_row(r: &Row<'_>) -> rusqlite::Result<Event> {
    Ok(Event {
        id: i64_or(r, 0, 0)?,
        task_id: str_or_empty(r, 1)?,
        run_id: opt_i64(r, 2)?,
        kind: str_or_empty(r, 3)?,
        payload: json_of(opt_str(r, 4)?).unwrap_or(Value::Null),
        created_at: i64_or(r, 5, 0)?,
    })
}

/// Reads `id, task_id, author, body, created_at`.
pub(crate) fn comment_from_row(r: &Row<'_>) -> rusqlite::Result<Comment> {
    Ok(Comment {
        id: i64_or(r, 0, 0)?,
        task_id: str_or_empty(r, 1)?,
        author: str_or_empty(r, 2)?,
        body: str_or_empty(r, 3)?,
        created_at: i64_or(r, 4, 0)?,
    })
}
