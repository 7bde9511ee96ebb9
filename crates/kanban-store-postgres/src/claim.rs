//! Claiming a task (the compare-and-swap every dispatcher races on, with
//! the concurrency ceilings counted inside the same transaction) and
//! heartbeats fenced to the claimed attempt.

use std::collections::HashMap;

use kanban_core::defaults::CLAIM_TTL_SECONDS;
use kanban_core::payload;
use kanban_core::transitions::ceilings::{self, FullCeiling, Running};
use kanban_core::transitions::{Action, Refusal, decide};
use kanban_core::{EventKind, Status, Task};
use kanban_store::StoreError;
use kanban_store::params::*;

use crate::db::{DbResult, Tx};
use crate::lifecycle::{check_run, status_hint};

/// Claim TTL: a positive request value, else the default. The store reads
/// no environment: adapters resolve `HERMES_KANBAN_CLAIM_TTL_SECONDS` and
/// put it in the request.
pub(crate) fn claim_ttl(requested: Option<i64>) -> i64 {
    requested.filter(|t| *t > 0).unwrap_or(CLAIM_TTL_SECONDS)
}

/// ready → running (review → running with `req.review`), atomically.
pub(crate) fn claim(tx: &Tx<'_>, req: &ClaimRequest) -> DbResult<ClaimOutcome> {
    claim_tallied(tx, req, &mut RunningTally::default())
}

/// Running counts inside one write transaction: counted on first need,
/// then kept up to date by the claims the transaction makes, so a batch of
/// claims does not re-count the table per claim (nothing else can change
/// them while the transaction holds the board's write lock).
#[derive(Debug, Default)]
pub(crate) struct RunningTally {
    total: Option<i64>,
    by_assignee: HashMap<String, i64>,
}

impl RunningTally {
    fn total(&mut self, tx: &Tx<'_>) -> DbResult<i64> {
        if let Some(n) = self.total {
            return Ok(n);
        }
        let n = count_running(tx, None)?;
        self.total = Some(n);
        Ok(n)
    }

    fn of(&mut self, tx: &Tx<'_>, assignee: &str) -> DbResult<i64> {
        if let Some(n) = self.by_assignee.get(assignee) {
            return Ok(*n);
        }
        let n = count_running(tx, Some(assignee))?;
        self.by_assignee.insert(assignee.to_string(), n);
        Ok(n)
    }

    pub(crate) fn claimed(&mut self, assignee: Option<&str>) {
        if let Some(n) = self.total.as_mut() {
            *n += 1;
        }
        if let Some(n) = assignee.and_then(|a| self.by_assignee.get_mut(a)) {
            *n += 1;
        }
    }
}

/// [`claim`] with the running counts of the enclosing transaction.
pub(crate) fn claim_tallied(
    tx: &Tx<'_>,
    req: &ClaimRequest,
    tally: &mut RunningTally,
) -> DbResult<ClaimOutcome> {
    let task = tx.require_task(&req.task_id)?;
    let action = if req.review {
        Action::ClaimReview
    } else {
        Action::Claim
    };
    let facts = tx.facts(&task)?;
    let d = match decide(action, &facts) {
        Ok(d) => d,
        Err(Refusal::Demote { to, event }) => {
            // Only a ready task is demoted (the rule's precondition).
            tx.execute(
                "UPDATE tasks SET status = $1 WHERE id = $2 AND status = 'ready'",
                &[&to.as_str(), &task.id],
            )?;
            tx.append_event(&task.id, event, Some(payload::claim_rejected()), None)?;
            return Ok(ClaimOutcome::ParentsPending);
        }
        Err(_) => {
            return Ok(ClaimOutcome::Lost {
                status: task.status,
                claim_lock: task.claim_lock,
            });
        }
    };
    if let Some(full) = ceiling_reached(tx, &task, &req.ceilings, tally)? {
        return Ok(ClaimOutcome::CeilingReached(full.to_string()));
    }
    if let Some(leaked) = task.current_run_id {
        tx.close_leaked_run(leaked, "invariant recovery on re-claim")?;
    }
    let expires = tx.now + claim_ttl(Some(req.ttl_seconds));
    let n = tx.execute(
        "UPDATE tasks SET status = $1, claim_lock = $2, claim_expires = $3, \
         started_at = COALESCE(started_at, $4), current_run_id = NULL \
         WHERE id = $5 AND status = $6 AND claim_lock IS NULL",
        &[
            &d.to.as_str(),
            &req.claim_lock,
            &expires,
            &tx.now,
            &task.id,
            &task.status.as_str(),
        ],
    )?;
    if n != 1 {
        return Ok(ClaimOutcome::Lost {
            status: task.status,
            claim_lock: task.claim_lock,
        });
    }
    let run_id = tx.open_run(&task, &req.claim_lock, expires)?;
    let payload = payload::claimed(&req.claim_lock, expires, run_id, req.review);
    tx.append_event(&task.id, d.event, Some(payload), Some(run_id))?;
    tally.claimed(task.assignee.as_deref());
    // Exactly what the two writes above changed (no re-read needed).
    let mut task = task;
    task.status = d.to;
    task.claim_lock = Some(req.claim_lock.clone());
    task.claim_expires = Some(expires);
    task.started_at = task.started_at.or(Some(tx.now));
    task.current_run_id = Some(run_id);
    Ok(ClaimOutcome::Claimed { task, run_id })
}

fn count_running(tx: &Tx<'_>, assignee: Option<&str>) -> DbResult<i64> {
    let row = match assignee {
        None => tx.query_one("SELECT COUNT(*) FROM tasks WHERE status = 'running'", &[])?,
        Some(a) => tx.query_one(
            "SELECT COUNT(*) FROM tasks WHERE assignee = $1 AND status = 'running'",
            &[&a],
        )?,
    };
    Ok(row.try_get(0)?)
}

/// The first full ceiling, or `None` (rule: `transitions::ceilings`).
/// Counted inside the claim transaction, under the board's write lock, so
/// concurrent claimers (on any host) can never overshoot a cap.
pub(crate) fn ceiling_reached(
    tx: &Tx<'_>,
    task: &Task,
    c: &Ceilings,
    tally: &mut RunningTally,
) -> DbResult<Option<FullCeiling>> {
    ceilings::first_full(c, task.assignee.as_deref(), |count| match count {
        Running::Total => tally.total(tx),
        Running::Of(assignee) => tally.of(tx, assignee),
    })
}

/// Record a heartbeat; with `run_id`/`claim_lock` it is fenced to that
/// attempt and also extends the claim.
pub(crate) fn heartbeat(tx: &Tx<'_>, req: &HeartbeatRequest) -> DbResult<()> {
    let task = tx.require_task(&req.task_id)?;
    if task.status != Status::Running {
        return Err(StoreError::Refused {
            action: "heartbeat",
            task_id: task.id.clone(),
            reason: format!(
                "task is {}; only a running task heartbeats ({})",
                task.status,
                status_hint(&task)
            ),
        }
        .into());
    }
    check_run("heartbeat", &task, req.run_id)?;
    if let Some(lock) = &req.claim_lock
        && task.claim_lock.as_deref() != Some(lock.as_str())
    {
        return Err(StoreError::Stale {
            action: "heartbeat",
            task_id: task.id.clone(),
            reason: format!(
                "claim {lock} no longer holds the task (held by {}); nothing was changed",
                task.claim_lock.as_deref().unwrap_or("nobody")
            ),
        }
        .into());
    }
    let run_id = task.current_run_id;
    if req.claim_lock.is_some() || req.run_id.is_some() {
        let expires = tx.now + claim_ttl(req.ttl_seconds);
        tx.execute(
            "UPDATE tasks SET claim_expires = $1 WHERE id = $2",
            &[&expires, &task.id],
        )?;
        if let Some(r) = run_id {
            tx.execute(
                "UPDATE task_runs SET claim_expires = $1 WHERE id = $2",
                &[&expires, &r],
            )?;
        }
    }
    tx.execute(
        "UPDATE tasks SET last_heartbeat_at = $1 WHERE id = $2",
        &[&tx.now, &task.id],
    )?;
    if let Some(r) = run_id {
        tx.execute(
            "UPDATE task_runs SET last_heartbeat_at = $1 WHERE id = $2",
            &[&tx.now, &r],
        )?;
    }
    let payload = payload::heartbeat(req.note.as_deref());
    tx.append_event(&task.id, EventKind::Heartbeat, payload, run_id)?;
    Ok(())
}
