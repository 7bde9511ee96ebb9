//! The diagnostic rules' reads (mirrors the SQLite backend's
//! `diagnostics.rs`): only the event kinds and run outcomes they fold,
//! payloads only where a rule reads one, and the tasks whose events moved
//! past a cursor (a range on the event primary key).

use kanban_core::diagnostics::{self as kd, ERROR_SNIPPET_CHARS, RunSummary, TaskHistory};
use kanban_store::diagnostics::group_histories;

use crate::db::{Db, DbResult};
use crate::row::{all, event_from_row, i64_or, opt_str, str_or_empty};

/// `$1` kinds, `$2` kinds with payload, `$3` task ids.
const EVENTS_OF_TASKS: &str = "SELECT id, task_id, run_id, kind, \
       CASE WHEN kind = ANY($2) THEN payload END, created_at \
     FROM task_events WHERE task_id = ANY($3) AND kind = ANY($1) ORDER BY id";
const EVENTS_OF_BOARD: &str = "SELECT id, task_id, run_id, kind, \
       CASE WHEN kind = ANY($2) THEN payload END, created_at \
     FROM task_events \
     WHERE task_id IN (SELECT id FROM tasks WHERE status != 'archived') AND kind = ANY($1) \
     ORDER BY id";
/// `$1` outcomes, `$2` error length, `$3` task ids.
const RUNS_OF_TASKS: &str = "SELECT id, task_id, outcome, \
       CASE WHEN outcome = 'crashed' THEN substr(error, 1, $2) END \
     FROM task_runs WHERE task_id = ANY($3) AND outcome = ANY($1) ORDER BY id";
const RUNS_OF_BOARD: &str = "SELECT id, task_id, outcome, \
       CASE WHEN outcome = 'crashed' THEN substr(error, 1, $2) END \
     FROM task_runs \
     WHERE task_id IN (SELECT id FROM tasks WHERE status != 'archived') AND outcome = ANY($1) \
     ORDER BY id";
const TASKS_WITH_EVENTS_AFTER: &str =
    "SELECT DISTINCT task_id FROM task_events WHERE id > $1 ORDER BY task_id";

fn owned(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
}

pub(crate) fn diagnostic_histories(
    db: &Db<'_>,
    task_ids: Option<&[String]>,
) -> DbResult<Vec<TaskHistory>> {
    let kinds = owned(&kd::fact_event_kinds());
    let payload_kinds = owned(&kd::payload_event_kinds());
    let outcomes = owned(&kd::fact_run_outcomes());
    let error_chars = (ERROR_SNIPPET_CHARS + 1) as i32;
    let (event_rows, run_rows) = match task_ids {
        Some(ids) => {
            let ids = ids.to_vec();
            (
                db.query(EVENTS_OF_TASKS, &[&kinds, &payload_kinds, &ids])?,
                db.query(RUNS_OF_TASKS, &[&outcomes, &error_chars, &ids])?,
            )
        }
        None => (
            db.query(EVENTS_OF_BOARD, &[&kinds, &payload_kinds])?,
            db.query(RUNS_OF_BOARD, &[&outcomes, &error_chars])?,
        ),
    };
    let events = all(event_rows, event_from_row)?;
    let mut runs = Vec::with_capacity(run_rows.len());
    for r in &run_rows {
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

pub(crate) fn tasks_with_events_after(db: &Db<'_>, after_id: i64) -> DbResult<Vec<String>> {
    let mut ids = Vec::new();
    for r in db.query(TASKS_WITH_EVENTS_AFTER, &[&after_id])? {
        ids.push(str_or_empty(&r, 0)?);
    }
    Ok(ids)
}
