//! Batched claim and launch records: a dispatch pass claims a batch of
//! candidates in ONE write transaction (each claim is the usual compare-and-
//! swap with the ceilings counted inside the transaction, the batch's own
//! claims included), starts their workers, then records every workspace,
//! worker and spawn failure in ONE more transaction.
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
use kanban_store::dispatch_ops::*;
use kanban_store::{ClaimOutcome, StoreError};

use crate::claim::{RunningTally, claim_tallied};
use crate::db::{DbError, DbResult, Tx};
use crate::dispatch_recovery::keep_supervisor;
use crate::txn::RunEnd;

/// The attempt no longer waits for its worker to be recorded.
pub(crate) fn forget_launch(tx: &Tx<'_>, run_id: Option<i64>) -> DbResult<()> {
    let Some(run) = run_id else { return Ok(()) };
    tx.execute("DELETE FROM kanban_rs_launches WHERE run_id = $1", &[&run])?;
    Ok(())
}

/// Record the launcher of a claim.
fn insert_launch(tx: &Tx<'_>, run_id: i64, task_id: &str, l: &WorkerRecord) -> DbResult<()> {
    tx.execute(
        "INSERT INTO kanban_rs_launches \
         (run_id, task_id, pid, start_time, boot_id, host, claimed_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7) \
         ON CONFLICT (run_id) DO UPDATE SET task_id = EXCLUDED.task_id, pid = EXCLUDED.pid, \
         start_time = EXCLUDED.start_time, boot_id = EXCLUDED.boot_id, host = EXCLUDED.host, \
         claimed_at = EXCLUDED.claimed_at",
        &[
            &run_id,
            &task_id,
            &l.pid,
            &l.start_time,
            &l.boot_id,
            &l.host,
            &tx.now,
        ],
    )?;
    Ok(())
}

pub(crate) fn claim_batch(tx: &Tx<'_>, batch: &ClaimBatch) -> DbResult<Vec<ClaimOutcome>> {
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

pub(crate) fn set_workspace(tx: &Tx<'_>, req: &SetWorkspace) -> DbResult<bool> {
    let n = tx.execute(
        "UPDATE tasks SET workspace_path = $1, branch_name = COALESCE($2::TEXT, branch_name) \
         WHERE id = $3 AND current_run_id IS NOT DISTINCT FROM $4::BIGINT",
        &[&req.path, &req.branch, &req.task_id, &req.run_id],
    )?;
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

/// Worker pid on task and run, our identity row, `spawned` event.
pub(crate) fn set_worker(tx: &Tx<'_>, req: &SetWorker) -> DbResult<bool> {
    let w = &req.worker;
    let n = tx.execute(
        "UPDATE tasks SET worker_pid = $1 WHERE id = $2 AND status = 'running' \
         AND current_run_id IS NOT DISTINCT FROM $3::BIGINT",
        &[&w.pid, &req.task_id, &req.run_id],
    )?;
    if n != 1 {
        return set_worker_of_ended_run(tx, req);
    }
    if let Some(run) = req.run_id {
        record_run_worker(tx, req, run)?;
        // The launcher watches the worker it started (a gateway does; a
        // one-shot `kanban dispatch` releases this right after its pass).
        keep_supervisor(tx, run)?;
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
    tx.execute(
        "UPDATE task_runs SET worker_pid = $1 WHERE id = $2",
        &[&w.pid, &run],
    )?;
    tx.execute(
        "INSERT INTO kanban_rs_workers \
         (run_id, task_id, pid, start_time, boot_id, host, spawned_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7) \
         ON CONFLICT (run_id) DO UPDATE SET task_id = EXCLUDED.task_id, pid = EXCLUDED.pid, \
         start_time = EXCLUDED.start_time, boot_id = EXCLUDED.boot_id, host = EXCLUDED.host, \
         spawned_at = EXCLUDED.spawned_at",
        &[
            &run,
            &req.task_id,
            &w.pid,
            &w.start_time,
            &w.boot_id,
            &w.host,
            &tx.now,
        ],
    )?;
    Ok(())
}

/// A worker quick enough to end its run before its launch was recorded:
/// the run still gets its worker and its `spawned` event; the task, which
/// has moved on, is left alone (as the SQLite store does).
fn set_worker_of_ended_run(tx: &Tx<'_>, req: &SetWorker) -> DbResult<bool> {
    let Some(run) = req.run_id else {
        return Ok(false);
    };
    let ended = tx.query_opt(
        "SELECT 1 FROM task_runs WHERE id = $1 AND task_id = $2 \
         AND ended_at IS NOT NULL AND worker_pid IS NULL",
        &[&run, &req.task_id],
    )?;
    if ended.is_none() {
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

pub(crate) fn record_launches(tx: &Tx<'_>, batch: &LaunchBatch) -> DbResult<LaunchesRecorded> {
    for w in &batch.workspaces {
        set_workspace(tx, w)?;
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

pub(crate) fn spawn_failure(tx: &Tx<'_>, req: &SpawnFailure) -> DbResult<Released> {
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
    tx.execute(
        "UPDATE tasks SET status = $1, claim_lock = NULL, claim_expires = NULL, worker_pid = NULL, \
         consecutive_failures = $2, last_failure_error = $3 WHERE id = $4",
        &[&d.to.as_str(), &failures, &error, &task.id],
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
