//! Status transitions. Each function reads the task inside the caller's
//! write transaction, asks `kanban_core::transitions::decide`, then writes
//! the row, the run and the event(s) the reference writes, in that same
//! transaction. Payload keys are the reference's.

use std::collections::HashSet;

use kanban_core::payload::{self, CompletedFacts, ManualReclaim};
use kanban_core::transitions::review::decide_release;
use kanban_core::transitions::{Action, Decision, Refusal, decide};
use kanban_core::{EventKind, Status, Task};
use rusqlite::{OptionalExtension, params};
use serde_json::Value;

pub(crate) use super::claim::{claim, heartbeat};
#[path = "complete_files.rs"]
mod complete_files;
pub(crate) use super::recompute::{Scope, recompute_ready};
use super::txn::{DbResult, RunEnd, Tx};
use crate::StoreError;
use crate::params::*;

fn nonempty(s: Option<&str>) -> bool {
    s.is_some_and(|s| !s.is_empty())
}

pub(super) fn ended_worker(task: &Task) -> Option<EndedWorker> {
    task.worker_pid.map(|pid| EndedWorker {
        pid,
        claim_lock: task.claim_lock.clone(),
    })
}

/// What to do next, by the status the task is stuck in.
pub(super) fn status_hint(task: &Task) -> String {
    let id = &task.id;
    match task.status {
        Status::Running => {
            format!("its worker still holds it; wait, or reclaim it with `kanban reclaim {id}`")
        }
        Status::Todo => {
            format!("it waits on its parents; promote it with `kanban promote {id}` or wait")
        }
        Status::Triage => "it is in triage; specify it (move it to todo) first".into(),
        Status::Blocked | Status::Scheduled => {
            format!("unblock it first with `kanban unblock {id}`")
        }
        Status::Ready => "it is waiting for a worker".into(),
        Status::Review => "it is waiting for review".into(),
        Status::Done => "it is already done".into(),
        Status::Archived => "it is archived; only deletion applies".into(),
    }
}

fn list_statuses(s: &[Status]) -> String {
    s.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")
}

/// The refusal of `action` on `task`, worded with the status and a way out.
pub(crate) fn refusal(
    tx: &Tx<'_>,
    action: Action,
    task: &Task,
    why: Refusal,
) -> DbResult<StoreError> {
    let reason = match why {
        Refusal::WrongStatus { allowed } => format!(
            "task is {}; {} applies only to {} tasks ({})",
            task.status,
            action.verb(),
            list_statuses(allowed),
            status_hint(task)
        ),
        Refusal::ParentsPending => {
            let ids: Vec<String> = tx
                .unsatisfied_parents(&task.id)?
                .into_iter()
                .map(|p| p.0)
                .collect();
            format!(
                "unsatisfied parent dependencies: {} (use --force to override)",
                ids.join(", ")
            )
        }
        Refusal::Claimed => format!(
            "task is {} and claimed by {}; reclaim it first with `kanban reclaim {}`",
            task.status,
            task.claim_lock.as_deref().unwrap_or("another worker"),
            task.id
        ),
        Refusal::Demote { .. } => format!("task is {}; its parents are not done", task.status),
        Refusal::NotDirectTarget => {
            format!("{} does not apply to a {} task", action.verb(), task.status)
        }
    };
    Ok(StoreError::Refused {
        action: action.verb(),
        task_id: task.id.clone(),
        reason,
    })
}

pub(crate) fn decide_or_refuse(tx: &Tx<'_>, action: Action, task: &Task) -> DbResult<Decision> {
    let facts = tx.facts(task)?;
    match decide(action, &facts) {
        Ok(d) => Ok(d),
        Err(why) => Err(refusal(tx, action, task, why)?.into()),
    }
}

/// Compare-and-swap on the attempt a worker presents.
pub(super) fn check_run(action: &'static str, task: &Task, expected: Option<i64>) -> DbResult<()> {
    match expected {
        Some(r) if task.current_run_id != Some(r) => Err(StoreError::Stale {
            action,
            task_id: task.id.clone(),
            reason: format!(
                "run {r} is not the task's current run ({}); this attempt was reclaimed or \
                 finished, nothing was changed",
                task.current_run_id
                    .map_or("none".to_string(), |c| c.to_string())
            ),
        }
        .into()),
        _ => Ok(()),
    }
}

fn transitioned(
    tx: &Tx<'_>,
    before: &Task,
    run_id: Option<i64>,
    ended: Option<EndedWorker>,
) -> DbResult<Transitioned> {
    let task = tx.require_task(&before.id)?;
    Ok(Transitioned {
        from: before.status,
        to: task.status,
        task,
        run_id,
        ended_worker: ended,
    })
}

// ---- complete ------------------------------------------------------------

/// A completion either happened, or was refused after recording the
/// refusal's audit event (which must commit, so it is not an `Err` here).
pub(crate) enum CompleteStep {
    Done(Box<Completion>),
    Rejected(StoreError),
}

impl CompleteStep {
    pub(crate) fn into_result(self) -> crate::Result<Completion> {
        match self {
            CompleteStep::Done(c) => Ok(*c),
            CompleteStep::Rejected(e) => Err(e),
        }
    }
}

/// Partition claimed card ids into (verified, phantom), reference rules:
/// a card is verified when it exists and was created by the completing
/// task's assignee or by the task itself, or is linked as its child.
fn verify_created_cards(
    tx: &Tx<'_>,
    task: &Task,
    claimed: &[String],
) -> DbResult<(Vec<String>, Vec<String>)> {
    let mut seen = HashSet::new();
    let ordered: Vec<&str> = claimed
        .iter()
        .map(|c| c.trim())
        .filter(|c| !c.is_empty() && seen.insert(*c))
        .collect();
    let children: HashSet<String> = tx.children(&task.id)?.into_iter().collect();
    let mut st = tx
        .conn
        .prepare_cached("SELECT created_by FROM tasks WHERE id = ?1")?;
    let (mut verified, mut phantom) = (Vec::new(), Vec::new());
    for id in ordered {
        let created_by: Option<String> = st.query_row([id], |r| r.get(0)).optional()?.flatten();
        let ok = match created_by.as_deref() {
            // Missing, or a row with no author: nothing vouches for it.
            None => false,
            Some(by) => {
                task.assignee
                    .as_deref()
                    .is_some_and(|a| !a.is_empty() && a == by)
                    || by == task.id
                    || children.contains(id)
            }
        };
        if ok {
            verified.push(id.to_string())
        } else {
            phantom.push(id.to_string())
        }
    }
    Ok((verified, phantom))
}

/// `t_<hex>` ids in the text that are not tasks (deduplicated, in order).
fn phantom_refs(tx: &Tx<'_>, text: &str) -> DbResult<Vec<String>> {
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for id in kanban_core::ids::task_id_mentions(text) {
        // Prepared only once an id turns up: most summaries name none.
        if seen.insert(id)
            && !tx
                .conn
                .prepare_cached("SELECT 1 FROM tasks WHERE id = ?1")?
                .exists([id])?
        {
            out.push(id.to_string());
        }
    }
    Ok(out)
}

pub(crate) fn complete(tx: &Tx<'_>, req: &CompleteRequest) -> DbResult<CompleteStep> {
    let task = tx.require_task(&req.task_id)?;
    if req.metadata.as_ref().is_some_and(|v| !v.is_object()) {
        return Err(StoreError::invalid("metadata must be a JSON object").into());
    }
    let mut verified = Vec::new();
    if !req.created_cards.is_empty() {
        let (ok, phantom) = verify_created_cards(tx, &task, &req.created_cards)?;
        if !phantom.is_empty() {
            let summary = req.summary.as_deref().or(req.result.as_deref());
            tx.append_event(
                &task.id,
                EventKind::CompletionBlockedHallucination,
                Some(payload::completion_blocked_hallucination(
                    &phantom, &ok, summary,
                )),
                None,
            )?;
            return Ok(CompleteStep::Rejected(StoreError::Refused {
                action: "complete",
                task_id: task.id.clone(),
                reason: format!(
                    "completion blocked: claimed created_cards that do not exist or were not \
                     created by this worker: {}. The task is unchanged; retry without those ids \
                     (or create/link them first)",
                    phantom.join(", ")
                ),
            }));
        }
        verified = ok;
    }
    // Scratch deliverables (reference §5.4): the ones prose names are
    // declared too, and all are copied before the workspace goes.
    let mut declared = complete_files::declared_metadata(&task, req);
    let d = decide_or_refuse(tx, Action::Complete, &task)?;
    check_run("complete", &task, req.expected_run_id)?;
    tx.conn.execute(
        "UPDATE tasks SET status = ?1, result = ?2, completed_at = ?3, claim_lock = NULL, \
         claim_expires = NULL, worker_pid = NULL, block_kind = NULL, block_recurrences = 0, \
         consecutive_failures = 0, last_failure_error = NULL WHERE id = ?4",
        params![d.to.as_str(), req.result, tx.now, task.id],
    )?;
    complete_files::keep_artifacts(tx, &task, req, &mut declared)?;
    let metadata = declared.as_ref();
    let summary = req.summary.as_deref().or(req.result.as_deref());
    let keep = nonempty(req.summary.as_deref())
        || nonempty(req.result.as_deref())
        || metadata
            .and_then(Value::as_object)
            .is_some_and(|m| !m.is_empty());
    let end = RunEnd {
        status: Some("done"),
        summary,
        metadata,
        ..RunEnd::new("completed")
    };
    let run_id = tx.end_or_synthesize_run(&task.id, &end, keep)?;
    let payload = payload::completed(&CompletedFacts {
        result: req.result.as_deref(),
        summary,
        verified_cards: &verified,
        metadata,
    });
    tx.append_event(&task.id, d.event, Some(payload), run_id)?;
    let scan: Vec<&str> = [req.summary.as_deref(), req.result.as_deref()]
        .into_iter()
        .flatten()
        .filter(|s| !s.is_empty())
        .collect();
    let mut suspected = phantom_refs(tx, &scan.join(" "))?;
    suspected.retain(|p| !verified.contains(p));
    if !suspected.is_empty() {
        tx.append_event(
            &task.id,
            EventKind::SuspectedHallucinatedReferences,
            Some(payload::suspected_hallucinated_references(&suspected)),
            run_id,
        )?;
    }
    if d.effects.regate_children {
        recompute_ready(tx, None, Some(Scope::ChildrenOf(&task.id)))?;
    }
    Ok(CompleteStep::Done(Box::new(Completion {
        task: tx.require_task(&task.id)?,
        run_id,
        ended_worker: ended_worker(&task),
        suspected_phantoms: suspected,
        release_scratch: complete_files::released_scratch(tx, &task, req)?,
    })))
}

// ---- block / unblock / schedule / promote ----------------------------------

pub(crate) fn block(tx: &Tx<'_>, req: &BlockRequest) -> DbResult<Transitioned> {
    let task = tx.require_task(&req.task_id)?;
    let action = Action::Block(req.kind);
    let d = decide_or_refuse(tx, action, &task)?;
    check_run("block", &task, req.expected_run_id)?;
    let kind = req.kind.map(|k| k.as_str());
    tx.conn.execute(
        "UPDATE tasks SET status = ?1, claim_lock = NULL, claim_expires = NULL, worker_pid = NULL, \
         block_kind = ?2, block_recurrences = COALESCE(?3, block_recurrences) WHERE id = ?4",
        params![d.to.as_str(), kind, d.block_recurrences, task.id],
    )?;
    let reason = req.reason.as_deref();
    let end = RunEnd {
        status: Some("blocked"),
        summary: reason,
        ..RunEnd::new("blocked")
    };
    let run_id = tx.end_or_synthesize_run(&task.id, &end, nonempty(reason))?;
    let payload = payload::blocked(d.event, reason, kind, d.block_recurrences);
    tx.append_event(&task.id, d.event, Some(payload), run_id)?;
    transitioned(tx, &task, run_id, ended_worker(&task))
}

pub(crate) fn unblock(tx: &Tx<'_>, task_id: &str, reason: Option<&str>) -> DbResult<Transitioned> {
    let task = tx.require_task(task_id)?;
    let d = decide_or_refuse(tx, Action::Unblock, &task)?;
    if let Some(leaked) = task.current_run_id {
        tx.close_leaked_run(leaked, "invariant recovery on unblock")?;
    }
    // block_kind / block_recurrences survive on purpose: they detect a
    // block → unblock → same block loop. The dispatcher's failure budget
    // starts afresh.
    tx.conn.execute(
        "UPDATE tasks SET status = ?1, current_run_id = NULL, consecutive_failures = 0, \
         last_failure_error = NULL WHERE id = ?2",
        params![d.to.as_str(), task.id],
    )?;
    tx.append_event(
        &task.id,
        d.event,
        Some(payload::unblocked(d.to, reason)),
        None,
    )?;
    transitioned(tx, &task, None, None)
}

pub(crate) fn schedule(tx: &Tx<'_>, task_id: &str, reason: Option<&str>) -> DbResult<Transitioned> {
    let task = tx.require_task(task_id)?;
    let d = decide_or_refuse(tx, Action::Schedule, &task)?;
    tx.conn.execute(
        "UPDATE tasks SET status = ?1, claim_lock = NULL, claim_expires = NULL, \
         worker_pid = NULL WHERE id = ?2",
        params![d.to.as_str(), task.id],
    )?;
    let end = RunEnd {
        summary: reason,
        ..RunEnd::new("scheduled")
    };
    let run_id = tx.end_or_synthesize_run(&task.id, &end, nonempty(reason))?;
    tx.append_event(&task.id, d.event, Some(payload::scheduled(reason)), run_id)?;
    transitioned(tx, &task, run_id, ended_worker(&task))
}

pub(crate) fn promote(tx: &Tx<'_>, req: &PromoteRequest) -> DbResult<Transitioned> {
    let task = tx.require_task(&req.task_id)?;
    let d = decide_or_refuse(tx, Action::Promote { force: req.force }, &task)?;
    if req.dry_run {
        return Ok(Transitioned {
            from: task.status,
            to: d.to,
            task,
            run_id: None,
            ended_worker: None,
        });
    }
    tx.conn.execute(
        "UPDATE tasks SET status = ?1 WHERE id = ?2",
        params![d.to.as_str(), task.id],
    )?;
    let payload = payload::promoted_manual(req.actor.as_deref(), req.reason.as_deref(), req.force);
    tx.append_event(&task.id, d.event, Some(payload), None)?;
    transitioned(tx, &task, None, None)
}

// ---- reclaim / archive / delete --------------------------------------------

/// Operator reclaim: back to ready (a reviewer's attempt: back to review),
/// claim cleared, failure budget reset. The store cannot signal the
/// worker; the caller ends `ended_worker`.
pub(crate) fn reclaim(
    tx: &Tx<'_>,
    task_id: &str,
    reason: Option<&str>,
    local_host: &str,
) -> DbResult<Transitioned> {
    let task = tx.require_task(task_id)?;
    let review_run = tx.is_review_run(&task.id, task.current_run_id)?;
    let d = match decide_release(Action::Reclaim, &tx.facts(&task)?, review_run) {
        Ok(d) => d,
        Err(why) => return Err(refusal(tx, Action::Reclaim, &task, why)?.into()),
    };
    tx.conn.execute(
        "UPDATE tasks SET status = ?1, claim_lock = NULL, claim_expires = NULL, worker_pid = NULL, \
         consecutive_failures = 0, last_failure_error = NULL WHERE id = ?2",
        params![d.to.as_str(), task.id],
    )?;
    let prev_lock = task.claim_lock.as_deref();
    let facts = ManualReclaim {
        reason,
        prev_lock,
        prev_pid: task.worker_pid,
        host_local: prev_lock.is_some_and(|l| crate::host_identity::lock_is_local(l, local_host)),
    };
    let error = facts.run_error();
    let termination = facts.run_metadata();
    let end = RunEnd {
        error: Some(&error),
        metadata: Some(&termination),
        ..RunEnd::new("reclaimed")
    };
    let run_id = tx.end_run(&task.id, &end)?;
    tx.append_event(&task.id, d.event, Some(facts.event()), run_id)?;
    transitioned(tx, &task, run_id, ended_worker(&task))
}

pub(crate) fn archive(tx: &Tx<'_>, task_id: &str) -> DbResult<Transitioned> {
    let task = tx.require_task(task_id)?;
    let d = decide_or_refuse(tx, Action::Archive, &task)?;
    tx.conn.execute(
        "UPDATE tasks SET status = ?1, claim_lock = NULL, claim_expires = NULL, \
         worker_pid = NULL WHERE id = ?2",
        params![d.to.as_str(), task.id],
    )?;
    let end = RunEnd {
        summary: Some("task archived with run still active"),
        ..RunEnd::new("reclaimed")
    };
    let run_id = tx.end_run(&task.id, &end)?;
    tx.append_event(&task.id, d.event, None, run_id)?;
    if d.effects.regate_children {
        recompute_ready(tx, None, Some(Scope::ChildrenOf(&task.id)))?;
    }
    transitioned(tx, &task, run_id, ended_worker(&task))
}

/// Hard delete with the full cascade, attachment rows included (the
/// reference leaves those behind). Children are re-gated afterwards.
pub(crate) fn delete(tx: &Tx<'_>, task_id: &str, require_archived: bool) -> DbResult<()> {
    let task = tx.require_task(task_id)?;
    if require_archived {
        decide_or_refuse(tx, Action::DeleteArchived, &task)?;
    }
    let children = tx.children(task_id)?;
    tx.conn.execute(
        "DELETE FROM task_links WHERE parent_id = ?1 OR child_id = ?1",
        [task_id],
    )?;
    for table in [
        "task_comments",
        "task_events",
        "task_runs",
        "kanban_notify_subs",
        "task_attachments",
    ] {
        tx.conn.execute(
            &format!("DELETE FROM {table} WHERE task_id = ?1"),
            [task_id],
        )?;
    }
    tx.conn
        .execute("DELETE FROM tasks WHERE id = ?1", [task_id])?;
    recompute_ready(tx, None, Some(Scope::Ids(&children)))?;
    Ok(())
}
