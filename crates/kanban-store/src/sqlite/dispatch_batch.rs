//! Batched claim and launch records: a dispatch pass claims a batch of
//! candidates in ONE write transaction (each claim is the usual compare-and-
//! swap with the ceilings counted inside the transaction), starts their
//! workers, then records every workspace, worker and spawn failure in ONE
//! more transaction; two commits per batch instead of three per task.
//!
//! Crash safety: each claim of a batch also writes a `kanban_rs_launches`
//! row naming the claiming process (pid, start time, boot id, host). The
//! row goes away when the attempt's worker or spawn failure is recorded, or
//! the attempt is released. A running task whose launch row outlives its
//! launcher (the dispatcher died between the two transactions) is released
//! by the next pass at once, not after the claim TTL.

use kanban_core::payload;
use kanban_core::transitions::breaker::{self, Counting, FailureFacts, Verdict, failure_error};
use kanban_core::transitions::ceilings::is_per_profile;
use kanban_core::transitions::review::decide_release;
use kanban_core::transitions::{Action, TaskFacts, decide};
use kanban_core::{EventKind, RunOutcome, Status};
use rusqlite::{Connection, params};

use super::super::claim::{RunningTally, claim_tallied};
use super::super::txn::{DbError, DbResult, RunEnd, Tx};
use super::{WORKERS_SQL, is_missing_table};
use crate::dispatch_ops::*;
use crate::{ClaimOutcome, StoreError};

/// Claims whose worker is not recorded yet, with the process that claimed
/// them (ours; ignored by the Python implementation).
pub(super) const LAUNCHES_SQL: &str = "CREATE TABLE IF NOT EXISTS kanban_rs_launches (
    run_id     INTEGER PRIMARY KEY,
    task_id    TEXT NOT NULL,
    pid        INTEGER NOT NULL,
    start_time INTEGER,
    boot_id    TEXT,
    host       TEXT,
    claimed_at INTEGER NOT NULL
)";

/// Our tables exist (a read), else create them (one write).
pub(super) fn prepare(conn: &Connection) -> DbResult<bool> {
    let n: i64 = conn
        .prepare_cached(
            "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' \
             AND name IN ('kanban_rs_workers', 'kanban_rs_launches', 'kanban_rs_supervisors', \
             'kanban_rs_intents', 'kanban_rs_hosts')",
        )?
        .query_row([], |r| r.get(0))?;
    Ok(n == 5)
}

pub(super) fn create_tables(tx: &Tx<'_>) -> DbResult<()> {
    tx.conn.execute_batch(WORKERS_SQL)?;
    tx.conn.execute_batch(LAUNCHES_SQL)?;
    tx.conn.execute_batch(super::recovery::SUPERVISORS_SQL)?;
    tx.conn.execute_batch(super::recovery::INTENTS_SQL)?;
    tx.conn.execute_batch(super::hosts::HOSTS_SQL)?;
    Ok(())
}

/// The attempt no longer waits for its worker to be recorded.
pub(super) fn forget_launch(tx: &Tx<'_>, run_id: Option<i64>) -> DbResult<()> {
    let Some(run) = run_id else { return Ok(()) };
    let st = tx
        .conn
        .prepare_cached("DELETE FROM kanban_rs_launches WHERE run_id = ?1");
    match st {
        Ok(mut st) => {
            st.execute([run])?;
            Ok(())
        }
        Err(e) if is_missing_table(&e) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// Record the launcher of a claim (creating our table on first use).
fn insert_launch(tx: &Tx<'_>, run_id: i64, task_id: &str, l: &WorkerRecord) -> DbResult<()> {
    const SQL: &str = "INSERT OR REPLACE INTO kanban_rs_launches \
         (run_id, task_id, pid, start_time, boot_id, host, claimed_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)";
    let mut st = match tx.conn.prepare_cached(SQL) {
        Err(e) if is_missing_table(&e) => {
            tx.conn.execute_batch(LAUNCHES_SQL)?;
            tx.conn.prepare_cached(SQL)?
        }
        other => other?,
    };
    st.execute(params![
        run_id,
        task_id,
        l.pid,
        l.start_time,
        l.boot_id,
        l.host,
        tx.now
    ])?;
    Ok(())
}

pub(super) fn claim_batch(tx: &Tx<'_>, batch: &ClaimBatch) -> DbResult<Vec<ClaimOutcome>> {
    let mut tally = RunningTally::default();
    let mut full: Option<String> = None;
    let mut out = Vec::with_capacity(batch.claims.len());
    for c in &batch.claims {
        if let Some(name) = &full {
            out.push(ClaimOutcome::CeilingReached(name.clone()));
            continue;
        }
        let outcome = match claim_tallied(tx, &batch.request(c), &mut tally) {
            // Deleted since the candidates were read: nothing to claim, and
            // no reason to give up the rest of the batch.
            Err(DbError::Store(StoreError::TaskNotFound(_))) => ClaimOutcome::Lost {
                status: Status::Archived,
                claim_lock: None,
            },
            other => other?,
        };
        match (&outcome, &batch.launcher) {
            (ClaimOutcome::Claimed { run_id, .. }, Some(l)) => {
                insert_launch(tx, *run_id, &c.task_id, l)?;
            }
            // A board-wide ceiling: every later claim would hit it too.
            (ClaimOutcome::CeilingReached(name), _) if !is_per_profile(name) => {
                full = Some(name.clone());
            }
            _ => {}
        }
        out.push(outcome);
    }
    Ok(out)
}

pub(super) fn set_workspace(tx: &Tx<'_>, req: &SetWorkspace) -> DbResult<bool> {
    let n = tx
        .conn
        .prepare_cached(
            "UPDATE tasks SET workspace_path = ?1, branch_name = COALESCE(?2, branch_name) \
             WHERE id = ?3 AND current_run_id IS ?4",
        )?
        .execute(params![req.path, req.branch, req.task_id, req.run_id])?;
    if n == 1
        && let Some(msg) = &req.tip
    {
        tx.append_event(
            &req.task_id,
            EventKind::TipScratchWorkspace,
            Some(payload::tip_scratch_workspace(msg)),
            None,
        )?;
    }
    Ok(n == 1)
}

/// Worker pid on task and run, our identity row, `spawned` event. The
/// workers table must exist (`WORKERS_SQL`).
pub(super) fn set_worker(tx: &Tx<'_>, req: &SetWorker) -> DbResult<bool> {
    let w = &req.worker;
    let n = tx
        .conn
        .prepare_cached(
            "UPDATE tasks SET worker_pid = ?1 WHERE id = ?2 AND status = 'running' \
             AND current_run_id IS ?3",
        )?
        .execute(params![w.pid, req.task_id, req.run_id])?;
    if n != 1 {
        return set_worker_of_ended_run(tx, req);
    }
    if let Some(run) = req.run_id {
        record_run_worker(tx, req, run)?;
        // The launcher watches the worker it started (a gateway does; a
        // one-shot `kanban dispatch` releases this right after its pass).
        super::recovery::keep_supervisor(tx, run)?;
        forget_launch(tx, Some(run))?;
    }
    tx.append_event(
        &req.task_id,
        EventKind::Spawned,
        Some(payload::spawned(w.pid)),
        req.run_id,
    )?;
    Ok(true)
}

/// The worker's pid on its run and our identity row for it.
fn record_run_worker(tx: &Tx<'_>, req: &SetWorker, run: i64) -> DbResult<()> {
    let w = &req.worker;
    tx.conn
        .prepare_cached("UPDATE task_runs SET worker_pid = ?1 WHERE id = ?2")?
        .execute(params![w.pid, run])?;
    tx.conn
        .prepare_cached(
            "INSERT OR REPLACE INTO kanban_rs_workers \
             (run_id, task_id, pid, start_time, boot_id, host, spawned_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        )?
        .execute(params![
            run,
            req.task_id,
            w.pid,
            w.start_time,
            w.boot_id,
            w.host,
            tx.now
        ])?;
    Ok(())
}

/// A worker quick enough to end its run (`kanban complete` committed)
/// before its launch was recorded: the run still gets its worker and its
/// `spawned` event (after the run's end, in commit order), so the history
/// shows who ran it and a worker that lingers can be ended; the task, which
/// has moved on, is left alone. `false` when the run is not this task's
/// or is still open under another state (claim lost: nothing to record).
fn set_worker_of_ended_run(tx: &Tx<'_>, req: &SetWorker) -> DbResult<bool> {
    let Some(run) = req.run_id else {
        return Ok(false);
    };
    let ended = tx
        .conn
        .prepare_cached(
            "SELECT 1 FROM task_runs WHERE id = ?1 AND task_id = ?2 \
             AND ended_at IS NOT NULL AND worker_pid IS NULL",
        )?
        .exists(params![run, req.task_id])?;
    if !ended {
        return Ok(false);
    }
    record_run_worker(tx, req, run)?;
    forget_launch(tx, Some(run))?;
    tx.append_event(
        &req.task_id,
        EventKind::Spawned,
        Some(payload::spawned(req.worker.pid)),
        Some(run),
    )?;
    Ok(true)
}

pub(super) fn record_launches(tx: &Tx<'_>, batch: &LaunchBatch) -> DbResult<LaunchesRecorded> {
    for w in &batch.workspaces {
        set_workspace(tx, w)?;
    }
    if !batch.workers.is_empty() && !super::table_exists(tx.conn, "kanban_rs_workers")? {
        tx.conn.execute_batch(WORKERS_SQL)?;
    }
    let workers = batch
        .workers
        .iter()
        .map(|w| set_worker(tx, w))
        .collect::<DbResult<_>>()?;
    let failures = batch
        .failures
        .iter()
        .map(|f| spawn_failure(tx, f))
        .collect::<DbResult<_>>()?;
    Ok(LaunchesRecorded { workers, failures })
}

pub(super) fn spawn_failure(tx: &Tx<'_>, req: &SpawnFailure) -> DbResult<Released> {
    let Some(task) = tx.task(&req.task_id)? else {
        return Ok(Released::default());
    };
    if task.status != Status::Running || task.current_run_id != req.run_id {
        return Ok(Released::default());
    }
    let verdict = breaker::judge(
        Counting::Counted {
            dispatcher_limit: req.failure_limit,
            forced_limit: None,
        },
        &FailureFacts {
            failures: task.consecutive_failures,
            max_retries: task.max_retries,
            violation_streak: 0,
        },
    );
    let failures = verdict.failures(task.consecutive_failures);
    // Released to ready (a review claim: to review), and blocked at once
    // when the breaker trips.
    let review_run = tx.is_review_run(&task.id, task.current_run_id)?;
    let released = decide_release(
        Action::Release(EventKind::SpawnFailed),
        &TaskFacts::new(task.status),
        review_run,
    );
    let Ok(mut d) = released else {
        return Ok(Released::default());
    };
    if let Verdict::Trip(_) = verdict
        && let Ok(blocked) = decide(Action::GiveUp, &TaskFacts::new(d.to))
    {
        d = blocked;
    }
    let error = failure_error(&req.error);
    tx.conn.execute(
        "UPDATE tasks SET status = ?1, claim_lock = NULL, claim_expires = NULL, worker_pid = NULL, \
         consecutive_failures = ?2, last_failure_error = ?3 WHERE id = ?4",
        params![d.to.as_str(), failures, error, task.id],
    )?;
    let trigger = RunOutcome::SpawnFailed.as_str();
    let (run_id, payload) = match verdict {
        Verdict::Trip(t) => {
            let meta = t.run_metadata(trigger);
            let end = RunEnd {
                error: Some(&error),
                metadata: Some(&meta),
                ..RunEnd::new(RunOutcome::GaveUp.as_str())
            };
            (
                tx.end_run(&task.id, &end)?,
                t.gave_up_payload(&error, trigger),
            )
        }
        _ => {
            let meta = payload::spawn_failed_run_metadata(failures);
            let end = RunEnd {
                error: Some(&error),
                metadata: Some(&meta),
                ..RunEnd::new(trigger)
            };
            (
                tx.end_run(&task.id, &end)?,
                payload::spawn_failed(&error, failures),
            )
        }
    };
    tx.append_event(&task.id, d.event, Some(payload), run_id)?;
    forget_launch(tx, run_id)?;
    Ok(Released {
        released: true,
        auto_blocked: matches!(verdict, Verdict::Trip(_)),
        run_id,
        failures,
    })
}
