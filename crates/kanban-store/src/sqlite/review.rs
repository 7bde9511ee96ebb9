//! The review flow (newer Hermes) on SQLite: each function reads the task
//! in the caller's write transaction, asks
//! `kanban_core::transitions::review::decide_review`, and writes the row,
//! the run and the event in that same transaction.

use kanban_core::transitions::Decision;
use kanban_core::transitions::review::{
    self as rules, OUTCOME_CHANGES_REQUESTED, OUTCOME_REVIEW_REQUESTED, ReviewAction, ReviewFacts,
    ReviewRefusal, decide_review,
};
use kanban_core::{EventKind, Task};
use rusqlite::{OptionalExtension, params};
use serde_json::Value;

use super::lifecycle::{Scope, check_run, ended_worker, recompute_ready, status_hint};
use super::txn::{DbResult, RunEnd, Tx};
use crate::StoreError;
use crate::params::Transitioned;
use crate::review::{ChangesRequest, ReviewRequest};

/// The payload of the task's latest event of `kind` (for `run_id` when given).
fn latest_payload(
    tx: &Tx<'_>,
    task_id: &str,
    kind: EventKind,
    run_id: Option<i64>,
) -> DbResult<Option<Value>> {
    let text: Option<Option<String>> = tx
        .conn
        .prepare_cached(
            "SELECT payload FROM task_events WHERE task_id = ?1 AND kind = ?2 \
             AND (?3 IS NULL OR run_id = ?3) ORDER BY id DESC LIMIT 1",
        )?
        .query_row(params![task_id, kind.as_str(), run_id], |r| r.get(0))
        .optional()?;
    Ok(text.flatten().and_then(|t| serde_json::from_str(&t).ok()))
}

/// Who implemented the card: the `implementer` of its latest
/// `review_requested` event, else the current assignee.
fn implementer(tx: &Tx<'_>, task: &Task) -> DbResult<Option<String>> {
    let named = latest_payload(tx, &task.id, EventKind::ReviewRequested, None)?
        .as_ref()
        .and_then(rules::implementer_of);
    Ok(named.or_else(|| task.assignee.clone()))
}

fn decide_or_refuse(tx: &Tx<'_>, action: ReviewAction, task: &Task) -> DbResult<Decision> {
    let review_run = tx.is_review_run(&task.id, task.current_run_id)?;
    let facts = ReviewFacts {
        status: task.status,
        parents_satisfied: tx.parents_satisfied(&task.id)?,
        claimed: task.claim_lock.is_some(),
        review_run,
    };
    decide_review(action, &facts).map_err(|why| refusal(action, task, why).into())
}

/// The refusal of a review action, worded with the status and a way out.
pub(crate) fn refusal(action: ReviewAction, task: &Task, why: ReviewRefusal) -> StoreError {
    let reason = match why {
        ReviewRefusal::WrongStatus { allowed } => format!(
            "task is {}; {} applies only to {} tasks ({})",
            task.status,
            action.verb(),
            allowed
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(", "),
            status_hint(task)
        ),
        ReviewRefusal::NotAReviewRun => format!(
            "task is running but not under review; request-changes is a reviewer's verdict \
             (the implementer uses `kanban request-review {}`)",
            task.id
        ),
        ReviewRefusal::Claimed => format!(
            "task is claimed by reviewer {}; wait for its verdict or reclaim it first",
            task.claim_lock.as_deref().unwrap_or("another worker")
        ),
    };
    StoreError::Refused {
        action: action.verb(),
        task_id: task.id.clone(),
        reason,
    }
}

fn transitioned(
    tx: &Tx<'_>,
    before: &Task,
    run_id: Option<i64>,
    ended: bool,
) -> DbResult<Transitioned> {
    let task = tx.require_task(&before.id)?;
    Ok(Transitioned {
        from: before.status,
        to: task.status,
        task,
        run_id,
        ended_worker: if ended { ended_worker(before) } else { None },
    })
}

pub(crate) fn request_review(tx: &Tx<'_>, req: &ReviewRequest) -> DbResult<Transitioned> {
    req.validate()?;
    let task = tx.require_task(&req.task_id)?;
    let d = decide_or_refuse(tx, ReviewAction::RequestReview, &task)?;
    check_run("request-review", &task, req.expected_run_id)?;
    let implementer = task.assignee.clone();
    let reviewer = req
        .reviewer
        .as_deref()
        .map(str::trim)
        .map(str::to_string)
        .or_else(|| implementer.clone());
    tx.conn.execute(
        "UPDATE tasks SET status = ?1, assignee = ?2, claim_lock = NULL, claim_expires = NULL, \
         worker_pid = NULL, consecutive_failures = 0, last_failure_error = NULL WHERE id = ?3",
        params![d.to.as_str(), reviewer, task.id],
    )?;
    let end = RunEnd {
        summary: Some(&req.summary),
        metadata: req.metadata.as_ref(),
        ..RunEnd::new(OUTCOME_REVIEW_REQUESTED)
    };
    let run_id = tx.end_or_synthesize_run(&task.id, &end, true)?;
    let payload =
        rules::review_requested_payload(&req.summary, reviewer.as_deref(), implementer.as_deref());
    tx.append_event(&task.id, d.event, Some(payload), run_id)?;
    // The worker that asked is the caller itself: it exits on its own.
    transitioned(tx, &task, run_id, false)
}

pub(crate) fn request_changes(tx: &Tx<'_>, req: &ChangesRequest) -> DbResult<Transitioned> {
    req.validate()?;
    let task = tx.require_task(&req.task_id)?;
    let d = decide_or_refuse(tx, ReviewAction::RequestChanges, &task)?;
    check_run("request-changes", &task, req.expected_run_id)?;
    let back_to = implementer(tx, &task)?;
    tx.conn.execute(
        "UPDATE tasks SET status = ?1, assignee = ?2, claim_lock = NULL, claim_expires = NULL, \
         worker_pid = NULL WHERE id = ?3",
        params![d.to.as_str(), back_to, task.id],
    )?;
    let end = RunEnd {
        summary: Some(&req.reason),
        ..RunEnd::new(OUTCOME_CHANGES_REQUESTED)
    };
    let run_id = tx.end_run(&task.id, &end)?;
    let payload = rules::review_reopened_payload(
        Some(&req.reason),
        d.to,
        back_to.as_deref(),
        rules::SOURCE_REQUEST_CHANGES,
    );
    tx.append_event(&task.id, d.event, Some(payload), run_id)?;
    transitioned(tx, &task, run_id, true)
}

pub(crate) fn reopen_review(
    tx: &Tx<'_>,
    task_id: &str,
    reason: Option<&str>,
) -> DbResult<Transitioned> {
    let task = tx.require_task(task_id)?;
    let d = decide_or_refuse(tx, ReviewAction::ReopenReview, &task)?;
    if let Some(leaked) = task.current_run_id {
        tx.close_leaked_run(leaked, "invariant recovery on reopen-review")?;
    }
    let back_to = implementer(tx, &task)?;
    tx.conn.execute(
        "UPDATE tasks SET status = ?1, assignee = ?2, current_run_id = NULL WHERE id = ?3",
        params![d.to.as_str(), back_to, task.id],
    )?;
    let reason = reason.map(str::trim).filter(|r| !r.is_empty());
    let end = RunEnd {
        summary: reason,
        ..RunEnd::new(OUTCOME_CHANGES_REQUESTED)
    };
    let run_id = tx.end_or_synthesize_run(&task.id, &end, reason.is_some())?;
    let payload = rules::review_reopened_payload(
        reason,
        d.to,
        back_to.as_deref(),
        rules::SOURCE_REOPEN_REVIEW,
    );
    tx.append_event(&task.id, d.event, Some(payload), run_id)?;
    transitioned(tx, &task, run_id, false)
}

/// review → done by an operator: the card's attempt (none is open; a
/// leaked one is closed) ends as `completed` with the verdict.
pub(crate) fn approve_review(
    tx: &Tx<'_>,
    task_id: &str,
    summary: Option<&str>,
) -> DbResult<Transitioned> {
    let task = tx.require_task(task_id)?;
    let d = decide_or_refuse(tx, ReviewAction::Approve, &task)?;
    if let Some(leaked) = task.current_run_id {
        tx.close_leaked_run(leaked, "invariant recovery on approve")?;
    }
    tx.conn.execute(
        "UPDATE tasks SET status = ?1, completed_at = ?2, current_run_id = NULL, \
         block_kind = NULL, block_recurrences = 0, consecutive_failures = 0, \
         last_failure_error = NULL WHERE id = ?3",
        params![d.to.as_str(), tx.now, task.id],
    )?;
    let summary = summary.map(str::trim).filter(|s| !s.is_empty());
    let end = RunEnd {
        status: Some("done"),
        summary,
        ..RunEnd::new("completed")
    };
    let run_id = tx.end_or_synthesize_run(&task.id, &end, true)?;
    tx.append_event(
        &task.id,
        d.event,
        Some(rules::approved_payload(summary)),
        run_id,
    )?;
    if d.effects.regate_children {
        recompute_ready(tx, None, Some(Scope::ChildrenOf(&task.id)))?;
    }
    transitioned(tx, &task, run_id, false)
}
