//! What lets the dispatcher recover without blaming tasks for things they
//! did not do: spawn-retry times (kept in the `spawn_failed` run's
//! metadata), the supervisor of each worker, decided releases recorded
//! before a worker is signalled, and the streak of excused deaths.
//!
//! Our tables (`kanban_rs_supervisors`, `kanban_rs_intents`) are ignored by
//! the Python implementation; here they exist from the migration on.

use std::sync::LazyLock;

use kanban_core::transitions::dispatcher;
use kanban_core::{EventKind, RunOutcome};
use kanban_store::dispatch_ops::*;
use postgres::Row;
use serde_json::{Map, Value};

use crate::db::{Db, DbResult, Tx};
use crate::ended_runs::{as_ended, ended_runs_newest_first};
use crate::row::{opt_i64, opt_str};

/// How far back the excused-death streak looks.
const EXCUSED_SCAN_RUNS: i64 = 50;

/// The worker of `run_id` was just recorded: its launcher becomes its
/// supervisor (nothing changes when the run has no launch row).
pub(crate) fn keep_supervisor(tx: &Tx<'_>, run_id: i64) -> DbResult<()> {
    tx.execute(
        "INSERT INTO kanban_rs_supervisors (run_id, task_id, pid, start_time, boot_id, host) \
         SELECT run_id, task_id, pid, start_time, boot_id, host FROM kanban_rs_launches \
         WHERE run_id = $1 \
         ON CONFLICT (run_id) DO UPDATE SET task_id = EXCLUDED.task_id, pid = EXCLUDED.pid, \
         start_time = EXCLUDED.start_time, boot_id = EXCLUDED.boot_id, host = EXCLUDED.host",
        &[&run_id],
    )?;
    Ok(())
}

/// The attempt is over: its supervisor and decided release no longer matter.
pub(crate) fn forget_run_records(tx: &Tx<'_>, run_id: Option<i64>) -> DbResult<()> {
    let Some(run) = run_id else { return Ok(()) };
    tx.execute(
        "DELETE FROM kanban_rs_supervisors WHERE run_id = $1",
        &[&run],
    )?;
    tx.execute("DELETE FROM kanban_rs_intents WHERE run_id = $1", &[&run])?;
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
pub(crate) fn spawn_retry_at(metadata: Option<&str>) -> Option<i64> {
    metadata_object(metadata)
        .get(NEXT_ATTEMPT_KEY)
        .and_then(Value::as_i64)
}

/// The newest ended run of a task (the one the respawn guard looks at).
const LATEST_RUN_SQL: &str = "SELECT id FROM task_runs WHERE task_id = $1 AND ended_at IS NOT NULL \
     ORDER BY ended_at DESC, id DESC LIMIT 1";

/// Ready tasks whose latest ended run failed to spawn. Built once.
static PENDING_SPAWN_RETRIES_SQL: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT t.id, t.consecutive_failures, r.id, r.ended_at, r.metadata FROM tasks t \
         JOIN task_runs r ON r.id = ({}) \
         WHERE t.status = 'ready' AND t.claim_lock IS NULL AND COALESCE(t.consecutive_failures, 0) > 0 \
         AND r.outcome = '{}' ORDER BY t.created_at, t.id",
        LATEST_RUN_SQL.replace("$1", "t.id"),
        RunOutcome::SpawnFailed.as_str()
    )
});

/// A task's latest ended run with its outcome and metadata.
static LATEST_RUN_ROW_SQL: LazyLock<String> = LazyLock::new(|| {
    format!("SELECT id, outcome, metadata FROM task_runs WHERE id = ({LATEST_RUN_SQL})")
});

pub(crate) fn pending_spawn_retries(db: &Db<'_>) -> DbResult<Vec<PendingSpawnRetry>> {
    let mut out = Vec::new();
    for r in db.query(&PENDING_SPAWN_RETRIES_SQL, &[])? {
        let meta = opt_str(&r, 4)?;
        if spawn_retry_at(meta.as_deref()).is_none() {
            out.push(PendingSpawnRetry {
                task_id: r.try_get(0)?,
                run_id: r.try_get(2)?,
                failures: opt_i64(&r, 1)?.unwrap_or(1).max(1),
                failed_at: r.try_get(3)?,
            });
        }
    }
    Ok(out)
}

pub(crate) fn schedule_spawn_retries(tx: &Tx<'_>, retries: &[SpawnRetry]) -> DbResult<usize> {
    let mut written = 0;
    for r in retries {
        let Some(row) = tx.query_opt(&LATEST_RUN_ROW_SQL, &[&r.task_id])? else {
            continue;
        };
        let id: i64 = row.try_get(0)?;
        let outcome = opt_str(&row, 1)?;
        let meta = opt_str(&row, 2)?;
        if id != r.run_id || outcome.as_deref() != Some(RunOutcome::SpawnFailed.as_str()) {
            continue;
        }
        let mut m = metadata_object(meta.as_deref());
        if m.contains_key(NEXT_ATTEMPT_KEY) {
            continue;
        }
        m.insert(NEXT_ATTEMPT_KEY.into(), Value::from(r.next_attempt_at));
        tx.execute(
            "UPDATE task_runs SET metadata = $1 WHERE id = $2",
            &[&Value::Object(m).to_string(), &id],
        )?;
        written += 1;
    }
    Ok(written)
}

/// Record a decided release of the task's current attempt; the first one
/// recorded for a run wins.
pub(crate) fn record_intent(tx: &Tx<'_>, i: &TerminationIntent) -> DbResult<bool> {
    let current = tx.query_opt(
        "SELECT 1 FROM tasks WHERE id = $1 AND status = 'running' AND current_run_id = $2",
        &[&i.task_id, &i.run_id],
    )?;
    if current.is_none() {
        return Ok(false);
    }
    let detail = i.detail.to_string();
    tx.execute(
        "INSERT INTO kanban_rs_intents (run_id, task_id, kind, detail, decided_at) \
         VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
        &[&i.run_id, &i.task_id, &i.kind, &detail, &i.decided_at],
    )?;
    Ok(true)
}

/// An intent from its three columns starting at `at` (NULL kind = none).
pub(crate) fn intent_at(
    r: &Row,
    at: usize,
    run_id: Option<i64>,
    task_id: &str,
) -> DbResult<Option<TerminationIntent>> {
    let (Some(kind), Some(run_id)) = (opt_str(r, at)?, run_id) else {
        return Ok(None);
    };
    let detail = opt_str(r, at + 1)?;
    Ok(Some(TerminationIntent {
        run_id,
        task_id: task_id.to_string(),
        kind,
        detail: detail
            .and_then(|d| serde_json::from_str(&d).ok())
            .unwrap_or(Value::Null),
        decided_at: opt_i64(r, at + 2)?.unwrap_or(0),
    }))
}

pub(crate) fn excused_death_streak(db: &Db<'_>, task_id: &str) -> DbResult<i64> {
    let runs = ended_runs_newest_first(db, task_id, EXCUSED_SCAN_RUNS)?;
    Ok(dispatcher::excused_death_streak(as_ended(&runs)))
}

pub(crate) fn release_supervision(tx: &Tx<'_>, task_ids: &[String]) -> DbResult<()> {
    for id in task_ids {
        tx.execute(
            "DELETE FROM kanban_rs_supervisors WHERE run_id = \
             (SELECT current_run_id FROM tasks WHERE id = $1)",
            &[id],
        )?;
    }
    Ok(())
}

/// The task's newest event is a `respawn_guarded` note with this reason.
pub(crate) fn last_event_is_guard(db: &Db<'_>, task_id: &str, reason: &str) -> DbResult<bool> {
    let Some(last) = db.query_opt(
        "SELECT kind, payload FROM task_events WHERE task_id = $1 \
         ORDER BY created_at DESC, id DESC LIMIT 1",
        &[&task_id],
    )?
    else {
        return Ok(false);
    };
    let kind: String = last.try_get(0)?;
    let payload = opt_str(&last, 1)?;
    Ok(kind == EventKind::RespawnGuarded.as_str()
        && payload
            .and_then(|p| serde_json::from_str::<Value>(&p).ok())
            .is_some_and(|p| p.get("reason").and_then(Value::as_str) == Some(reason)))
}
