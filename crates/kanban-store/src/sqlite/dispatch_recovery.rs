//! What lets the dispatcher recover without blaming tasks for things they
//! did not do: spawn-retry times (kept in the `spawn_failed` run's
//! metadata), the supervisor of each worker, decided releases recorded
//! before a worker is signalled, and the streak of excused deaths.
//!
//! Our tables (`kanban_rs_supervisors`, `kanban_rs_intents`) are ignored by
//! the Python implementation; every read works without them.

use std::sync::LazyLock;

use kanban_core::transitions::dispatcher;
use kanban_core::{EventKind, RunOutcome};
use rusqlite::{Connection, OptionalExtension, params};
use serde_json::{Map, Value};

use super::super::txn::{DbResult, Tx};
use super::{is_missing_table, table_exists};
use crate::dispatch_ops::*;

/// Who started and watches the worker of a run: a copy of the run's
/// launch row, kept once the worker is recorded.
pub(super) const SUPERVISORS_SQL: &str = "CREATE TABLE IF NOT EXISTS kanban_rs_supervisors (
    run_id     INTEGER PRIMARY KEY,
    task_id    TEXT NOT NULL,
    pid        INTEGER NOT NULL,
    start_time INTEGER,
    boot_id    TEXT,
    host       TEXT
)";

/// Releases decided before their worker was signalled.
pub(super) const INTENTS_SQL: &str = "CREATE TABLE IF NOT EXISTS kanban_rs_intents (
    run_id     INTEGER PRIMARY KEY,
    task_id    TEXT NOT NULL,
    kind       TEXT NOT NULL,
    detail     TEXT,
    decided_at INTEGER NOT NULL
)";

/// How far back the excused-death streak looks.
const EXCUSED_SCAN_RUNS: i64 = 50;

/// Run `sql` with `params`, ignoring that one of our tables is missing.
fn exec_if_table(conn: &Connection, sql: &str, p: impl rusqlite::Params) -> DbResult<usize> {
    match conn.prepare_cached(sql) {
        Ok(mut st) => Ok(st.execute(p)?),
        Err(e) if is_missing_table(&e) => Ok(0),
        Err(e) => Err(e.into()),
    }
}

/// The worker of `run_id` was just recorded: its launcher becomes its
/// supervisor.
pub(super) fn keep_supervisor(tx: &Tx<'_>, run_id: i64) -> DbResult<()> {
    const SQL: &str = "INSERT OR REPLACE INTO kanban_rs_supervisors \
         (run_id, task_id, pid, start_time, boot_id, host) \
         SELECT run_id, task_id, pid, start_time, boot_id, host FROM kanban_rs_launches WHERE run_id = ?1";
    match tx.conn.prepare_cached(SQL) {
        Ok(mut st) => {
            st.execute([run_id])?;
        }
        Err(e) if is_missing_table(&e) => {
            if table_exists(tx.conn, "kanban_rs_launches")? {
                tx.conn.execute_batch(SUPERVISORS_SQL)?;
                tx.conn.prepare_cached(SQL)?.execute([run_id])?;
            }
        }
        Err(e) => return Err(e.into()),
    }
    Ok(())
}

/// The attempt is over: its supervisor and decided release no longer matter.
pub(super) fn forget_run_records(tx: &Tx<'_>, run_id: Option<i64>) -> DbResult<()> {
    let Some(run) = run_id else { return Ok(()) };
    exec_if_table(
        tx.conn,
        "DELETE FROM kanban_rs_supervisors WHERE run_id = ?1",
        [run],
    )?;
    exec_if_table(
        tx.conn,
        "DELETE FROM kanban_rs_intents WHERE run_id = ?1",
        [run],
    )?;
    Ok(())
}

/// Parse a run's metadata as a JSON object (anything else: empty).
fn metadata_object(text: Option<&str>) -> Map<String, Value> {
    text.and_then(|t| serde_json::from_str::<Value>(t).ok())
        .and_then(|v| match v {
            Value::Object(m) => Some(m),
            _ => None,
        })
        .unwrap_or_default()
}

/// `next_attempt_at` of a `spawn_failed` run's metadata.
pub(super) fn spawn_retry_at(metadata: Option<&str>) -> Option<i64> {
    metadata_object(metadata)
        .get(NEXT_ATTEMPT_KEY)
        .and_then(Value::as_i64)
}

/// The newest ended run of a task (the one the respawn guard looks at).
const LATEST_RUN_SQL: &str = "SELECT id FROM task_runs WHERE task_id = ?1 AND ended_at IS NOT NULL \
     ORDER BY ended_at DESC, id DESC LIMIT 1";

/// Ready tasks whose latest ended run failed to spawn. Built once: every
/// pass asks, and formatting it per call cost more than the idle query.
pub(in crate::sqlite) static PENDING_SPAWN_RETRIES_SQL: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT t.id, t.consecutive_failures, r.id, r.ended_at, r.metadata FROM tasks t \
         JOIN task_runs r ON r.id = ({}) \
         WHERE t.status = 'ready' AND t.claim_lock IS NULL AND COALESCE(t.consecutive_failures, 0) > 0 \
         AND r.outcome = '{}'",
        LATEST_RUN_SQL.replace("?1", "t.id"),
        RunOutcome::SpawnFailed.as_str()
    )
});

pub(super) fn pending_spawn_retries(conn: &Connection) -> DbResult<Vec<PendingSpawnRetry>> {
    let mut st = conn.prepare_cached(&PENDING_SPAWN_RETRIES_SQL)?;
    let rows = st.query_map([], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, Option<i64>>(1)?,
            r.get::<_, i64>(2)?,
            r.get::<_, i64>(3)?,
            r.get::<_, Option<String>>(4)?,
        ))
    })?;
    let mut out = Vec::new();
    for row in rows {
        let (task_id, failures, run_id, failed_at, meta) = row?;
        if spawn_retry_at(meta.as_deref()).is_none() {
            out.push(PendingSpawnRetry {
                task_id,
                run_id,
                failures: failures.unwrap_or(1).max(1),
                failed_at,
            });
        }
    }
    Ok(out)
}

pub(super) fn schedule_spawn_retries(tx: &Tx<'_>, retries: &[SpawnRetry]) -> DbResult<usize> {
    let mut written = 0;
    for r in retries {
        let latest: Option<(i64, Option<String>, Option<String>)> = tx
            .conn
            .prepare_cached(&format!(
                "SELECT id, outcome, metadata FROM task_runs WHERE id = ({LATEST_RUN_SQL})"
            ))?
            .query_row([&r.task_id], |row| {
                Ok((row.get(0)?, row.get(1)?, row.get(2)?))
            })
            .optional()?;
        let Some((id, outcome, meta)) = latest else {
            continue;
        };
        if id != r.run_id || outcome.as_deref() != Some(RunOutcome::SpawnFailed.as_str()) {
            continue;
        }
        let mut m = metadata_object(meta.as_deref());
        if m.contains_key(NEXT_ATTEMPT_KEY) {
            continue;
        }
        m.insert(NEXT_ATTEMPT_KEY.into(), Value::from(r.next_attempt_at));
        tx.conn
            .prepare_cached("UPDATE task_runs SET metadata = ?1 WHERE id = ?2")?
            .execute(params![Value::Object(m).to_string(), id])?;
        written += 1;
    }
    Ok(written)
}

pub(super) fn record_intent(tx: &Tx<'_>, i: &TerminationIntent) -> DbResult<bool> {
    let current: Option<i64> = tx
        .conn
        .prepare_cached(
            "SELECT 1 FROM tasks WHERE id = ?1 AND status = 'running' AND current_run_id = ?2",
        )?
        .query_row(params![i.task_id, i.run_id], |r| r.get(0))
        .optional()?;
    if current.is_none() {
        return Ok(false);
    }
    const SQL: &str = "INSERT OR IGNORE INTO kanban_rs_intents (run_id, task_id, kind, detail, decided_at) \
         VALUES (?1, ?2, ?3, ?4, ?5)";
    let detail = i.detail.to_string();
    let p = params![i.run_id, i.task_id, i.kind, detail, i.decided_at];
    match tx.conn.prepare_cached(SQL) {
        Ok(mut st) => {
            st.execute(p)?;
        }
        Err(e) if is_missing_table(&e) => {
            tx.conn.execute_batch(INTENTS_SQL)?;
            tx.conn.prepare_cached(SQL)?.execute(p)?;
        }
        Err(e) => return Err(e.into()),
    }
    Ok(true)
}

/// An intent from its three columns starting at `at` (NULL kind = none).
pub(super) fn intent_at(
    r: &rusqlite::Row<'_>,
    at: usize,
    run_id: Option<i64>,
    task_id: &str,
) -> rusqlite::Result<Option<TerminationIntent>> {
    let (Some(kind), Some(run_id)) = (r.get::<_, Option<String>>(at)?, run_id) else {
        return Ok(None);
    };
    let detail: Option<String> = r.get(at + 1)?;
    Ok(Some(TerminationIntent {
        run_id,
        task_id: task_id.to_string(),
        kind,
        detail: detail
            .and_then(|d| serde_json::from_str(&d).ok())
            .unwrap_or(Value::Null),
        decided_at: r.get::<_, Option<i64>>(at + 2)?.unwrap_or(0),
    }))
}

pub(super) fn excused_death_streak(conn: &Connection, task_id: &str) -> DbResult<i64> {
    let runs = super::ended_runs_newest_first(conn, task_id, EXCUSED_SCAN_RUNS)?;
    Ok(dispatcher::excused_death_streak(super::as_ended(&runs)))
}

pub(super) fn release_supervision(tx: &Tx<'_>, task_ids: &[String]) -> DbResult<()> {
    for id in task_ids {
        exec_if_table(
            tx.conn,
            "DELETE FROM kanban_rs_supervisors WHERE run_id = \
             (SELECT current_run_id FROM tasks WHERE id = ?1)",
            [id],
        )?;
    }
    Ok(())
}

/// The task's newest event is a `respawn_guarded` note with this reason.
pub(super) fn last_event_is_guard(
    conn: &Connection,
    task_id: &str,
    reason: &str,
) -> DbResult<bool> {
    let last: Option<(String, Option<String>)> = conn
        .prepare_cached(
            "SELECT kind, payload FROM task_events WHERE task_id = ?1 \
             ORDER BY created_at DESC, id DESC LIMIT 1",
        )?
        .query_row([task_id], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    Ok(last.is_some_and(|(kind, payload)| {
        kind == EventKind::RespawnGuarded.as_str()
            && payload
                .and_then(|p| serde_json::from_str::<Value>(&p).ok())
                .is_some_and(|p| p.get("reason").and_then(Value::as_str) == Some(reason))
    }))
}
