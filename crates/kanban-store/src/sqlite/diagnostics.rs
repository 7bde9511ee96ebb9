//! The diagnostic rules' reads: only the event kinds and run outcomes they
//! fold, payloads only where a rule reads one, and the tasks whose events
//! moved past a cursor (a range on the event primary key).

use kanban_core::Event;
use kanban_core::diagnostics::{self as kd, ERROR_SNIPPET_CHARS, RunSummary, TaskHistory};
use rusqlite::{Connection, params};

use super::row::{i64_or, json_of, opt_i64, opt_str, str_or_empty};
use super::txn::DbResult;
use crate::diagnostics::group_histories;

/// `?1` kinds, `?2` kinds with payload, `?3` task ids (JSON arrays).
const EVENTS_OF_TASKS: &str = "SELECT id, task_id, run_id, kind, \
       CASE WHEN kind IN (SELECT value FROM json_each(?2)) THEN payload END, created_at \
     FROM task_events \
     WHERE task_id IN (SELECT value FROM json_each(?3)) \
       AND kind IN (SELECT value FROM json_each(?1)) \
     ORDER BY id";
const EVENTS_OF_BOARD: &str = "SELECT id, task_id, run_id, kind, \
       CASE WHEN kind IN (SELECT value FROM json_each(?2)) THEN payload END, created_at \
     FROM task_events \
     WHERE task_id IN (SELECT id FROM tasks WHERE status != 'archived') \
       AND kind IN (SELECT value FROM json_each(?1)) \
     ORDER BY id";
/// `?1` outcomes, `?2` error length, `?3` task ids.
const RUNS_OF_TASKS: &str = "SELECT id, task_id, outcome, \
       CASE WHEN outcome = 'crashed' THEN substr(error, 1, ?2) END \
     FROM task_runs \
     WHERE task_id IN (SELECT value FROM json_each(?3)) \
       AND outcome IN (SELECT value FROM json_each(?1)) \
     ORDER BY id";
const RUNS_OF_BOARD: &str = "SELECT id, task_id, outcome, \
       CASE WHEN outcome = 'crashed' THEN substr(error, 1, ?2) END \
     FROM task_runs \
     WHERE task_id IN (SELECT id FROM tasks WHERE status != 'archived') \
       AND outcome IN (SELECT value FROM json_each(?1)) \
     ORDER BY id";
/// A range on the primary key. No `DISTINCT` / `ORDER BY` here: with them
/// SQLite prefers scanning the whole `(task_id, created_at)` index.
const TASKS_WITH_EVENTS_AFTER: &str = "SELECT task_id FROM task_events WHERE id > ?1";

fn json_list<S: AsRef<str>>(items: &[S]) -> String {
    serde_json::Value::from(items.iter().map(|s| s.as_ref()).collect::<Vec<_>>()).to_string()
}

pub(crate) fn diagnostic_histories(
    conn: &Connection,
    task_ids: Option<&[String]>,
) -> DbResult<Vec<TaskHistory>> {
    let kinds = json_list(&kd::fact_event_kinds());
    let payload_kinds = json_list(&kd::payload_event_kinds());
    let outcomes = json_list(&kd::fact_run_outcomes());
    let ids = task_ids.map(json_list).unwrap_or_default();
    let error_chars = (ERROR_SNIPPET_CHARS + 1) as i64;

    let mut events = Vec::new();
    let mut st = conn.prepare_cached(if task_ids.is_some() {
        EVENTS_OF_TASKS
    } else {
        EVENTS_OF_BOARD
    })?;
    let mut rows = if task_ids.is_some() {
        st.query(params![kinds, payload_kinds, ids])?
    } else {
        st.query(params![kinds, payload_kinds])?
    };
    while let Some(r) = rows.next()? {
        events.push(Event {
            id: i64_or(r, 0, 0)?,
            task_id: str_or_empty(r, 1)?,
            run_id: opt_i64(r, 2)?,
            kind: str_or_empty(r, 3)?,
            payload: json_of(opt_str(r, 4)?).unwrap_or(serde_json::Value::Null),
            created_at: i64_or(r, 5, 0)?,
        });
    }
    drop(rows);

    let mut runs = Vec::new();
    let mut st = conn.prepare_cached(if task_ids.is_some() {
        RUNS_OF_TASKS
    } else {
        RUNS_OF_BOARD
    })?;
    let mut rows = if task_ids.is_some() {
        st.query(params![outcomes, error_chars, ids])?
    } else {
        st.query(params![outcomes, error_chars])?
    };
    while let Some(r) = rows.next()? {
        runs.push((
            str_or_empty(r, 1)?,
            RunSummary {
                id: i64_or(r, 0, 0)?,
                outcome: opt_str(r, 2)?,
                error: opt_str(r, 3)?,
            },
        ));
    }
    Ok(group_histories(events, runs))
}

pub(crate) fn tasks_with_events_after(conn: &Connection, after_id: i64) -> DbResult<Vec<String>> {
    let mut st = conn.prepare_cached(TASKS_WITH_EVENTS_AFTER)?;
    let mut ids = st
        .query_map([after_id], |r| r.get::<_, String>(0))?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    ids.sort_unstable();
    ids.dedup();
    Ok(ids)
}
