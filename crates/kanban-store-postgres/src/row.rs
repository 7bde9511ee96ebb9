//! Row → domain struct mapping, by column position in the order of the
//! `*_COLUMNS` constants in `schema.rs`. Columns are typed here (BIGINT,
//! TEXT), so a cell of the wrong type is a schema error, reported as such.

use kanban_core::{Comment, Event, Run, Status, Task};
use postgres::Row;
use serde_json::Value;

use crate::db::DbResult;

pub(crate) fn opt_i64(r: &Row, idx: usize) -> DbResult<Option<i64>> {
    Ok(r.try_get::<_, Option<i64>>(idx)?)
}

pub(crate) fn i64_or(r: &Row, idx: usize, default: i64) -> DbResult<i64> {
    Ok(opt_i64(r, idx)?.unwrap_or(default))
}

pub(crate) fn opt_str(r: &Row, idx: usize) -> DbResult<Option<String>> {
    Ok(r.try_get::<_, Option<String>>(idx)?)
}

pub(crate) fn str_or_empty(r: &Row, idx: usize) -> DbResult<String> {
    Ok(opt_str(r, idx)?.unwrap_or_default())
}

/// Stored status; an unknown value is shown as `todo`, as on SQLite.
pub(crate) fn status_of(s: &str) -> Status {
    Status::ALL
        .iter()
        .copied()
        .find(|st| st.as_str() == s)
        .unwrap_or_else(|| s.parse().unwrap_or(Status::Todo))
}

pub(crate) fn status_at(r: &Row, idx: usize) -> DbResult<Status> {
    Ok(r.try_get::<_, Option<&str>>(idx)?
        .map(status_of)
        .unwrap_or(Status::Todo))
}

fn skills_of(raw: Option<String>) -> Option<Vec<String>> {
    skills_from_json(&raw?)
}

use kanban_store::task_row_cells::skills_from_json;

/// JSON text → value; NULL, empty or invalid JSON → `None`.
pub(crate) fn json_of(raw: Option<String>) -> Option<Value> {
    serde_json::from_str(&raw.filter(|r| !r.is_empty())?).ok()
}

/// Reads a row selected with `schema::TASK_COLUMNS`.
pub(crate) fn task_from_row(r: &Row) -> DbResult<Task> {
    Ok(Task {
        id: str_or_empty(r, 0)?,
        title: str_or_empty(r, 1)?,
        body: opt_str(r, 2)?,
        assignee: opt_str(r, 3)?,
        status: status_at(r, 4)?,
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
pub(crate) fn run_from_row(r: &Row) -> DbResult<Run> {
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
pub(crate) fn event_from_row(r: &Row) -> DbResult<Event> {
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
pub(crate) fn comment_from_row(r: &Row) -> DbResult<Comment> {
    Ok(Comment {
        id: i64_or(r, 0, 0)?,
        task_id: str_or_empty(r, 1)?,
        author: str_or_empty(r, 2)?,
        body: str_or_empty(r, 3)?,
        created_at: i64_or(r, 4, 0)?,
    })
}

/// Map every row with `f`.
pub(crate) fn all<T>(rows: Vec<Row>, f: impl Fn(&Row) -> DbResult<T>) -> DbResult<Vec<T>> {
    rows.iter().map(f).collect()
}
