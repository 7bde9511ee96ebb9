//! Operator writes that are not lifecycle verbs: the dashboard's
//! drag-and-drop status move (reference `_set_status_direct`, with the
//! SPEC §4 fix that archived parents satisfy too) and recording the
//! workspace a hand claim resolved.

use kanban_core::validate::{normalize_branch, require_absolute_dir};
use kanban_core::{EventKind, Status, Task};
use rusqlite::params;
use serde_json::json;

use super::lifecycle::ended_worker;
use super::txn::{DbResult, RunEnd, Tx};
use crate::StoreError;
use crate::params::Transitioned;

/// Columns a direct move may target. Everything else has its own verb
/// (complete, block, archive) or belongs to the dispatcher (running).
pub(crate) const DIRECT_TARGETS: &[Status] = &[
    Status::Triage,
    Status::Todo,
    Status::Scheduled,
    Status::Ready,
];

/// Reason recorded on children a reopened parent pushes back to todo.
const PARENT_REOPENED: &str = "parent_reopened";

fn check_target(to: Status) -> DbResult<()> {
    if to == Status::Running {
        return Err(StoreError::invalid(
            "Cannot set status to 'running' directly; use the dispatcher/claim path",
        )
        .into());
    }
    if !DIRECT_TARGETS.contains(&to) {
        return Err(StoreError::invalid(format!(
            "status '{to}' cannot be set directly; use complete (done), block (blocked) or \
             archive (archived)"
        ))
        .into());
    }
    Ok(())
}

/// `'title' (id, status=s)` of each parent that is neither done nor archived.
fn blocking_parents(tx: &Tx<'_>, task_id: &str) -> DbResult<Vec<String>> {
    let mut st = tx.conn.prepare_cached(
        "SELECT p.id, p.title, p.status FROM task_links l JOIN tasks p ON p.id = l.parent_id \
         WHERE l.child_id = ?1 AND p.status NOT IN ('done', 'archived') ORDER BY p.id",
    )?;
    let rows = st.query_map([task_id], |r| {
        Ok(format!(
            "{:?} ({}, status={})",
            r.get::<_, String>(1)?,
            r.get::<_, String>(0)?,
            r.get::<_, String>(2)?
        ))
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Demote the ready children of a task that stopped satisfying them, each
/// with a `status` event naming the reopened parent.
fn demote_ready_children(tx: &Tx<'_>, parent: &Task) -> DbResult<()> {
    for child in tx.children(&parent.id)? {
        let n = tx.conn.execute(
            "UPDATE tasks SET status = 'todo' WHERE id = ?1 AND status = 'ready'",
            [&child],
        )?;
        if n == 1 {
            tx.append_event(
                &child,
                EventKind::StatusChanged,
                Some(json!({"status": "todo", "reason": PARENT_REOPENED, "parent": parent.id})),
                None,
            )?;
        }
    }
    Ok(())
}

/// Move a task straight to `to` (triage, todo, scheduled or ready).
///
/// `ready` is refused while a parent is neither done nor archived (the
/// refusal names them). The claim is cleared; an open run is closed as
/// `reclaimed` and the detached worker returned for the caller to end.
/// Leaving done/archived demotes children that were ready only because of
/// this task. One `status{status}` event. Moving to the current status of
/// an unclaimed task changes nothing.
pub(crate) fn set_status_direct(tx: &Tx<'_>, task_id: &str, to: Status) -> DbResult<Transitioned> {
    check_target(to)?;
    let task = tx.require_task(task_id)?;
    if task.status == to && task.claim_lock.is_none() && task.current_run_id.is_none() {
        return Ok(Transitioned {
            from: task.status,
            to,
            task,
            run_id: None,
            ended_worker: None,
        });
    }
    if to == Status::Ready {
        let blockers = blocking_parents(tx, &task.id)?;
        if !blockers.is_empty() {
            return Err(StoreError::Refused {
                action: "move",
                task_id: task.id.clone(),
                reason: format!(
                    "to 'ready': blocked by parent(s) not done — {}",
                    blockers.join(", ")
                ),
            }
            .into());
        }
    }
    tx.conn.execute(
        "UPDATE tasks SET status = ?1, claim_lock = NULL, claim_expires = NULL, worker_pid = NULL \
         WHERE id = ?2",
        params![to.as_str(), task.id],
    )?;
    let summary = format!("status changed to {to} (dashboard/direct)");
    let end = RunEnd {
        summary: Some(&summary),
        ..RunEnd::new("reclaimed")
    };
    let run_id = tx.end_run(&task.id, &end)?;
    tx.append_event(
        &task.id,
        EventKind::StatusChanged,
        Some(json!({"status": to.as_str()})),
        run_id,
    )?;
    if task.status.satisfies_children() {
        demote_ready_children(tx, &task)?;
    }
    Ok(Transitioned {
        from: task.status,
        to,
        task: tx.require_task(&task.id)?,
        run_id,
        ended_worker: ended_worker(&task),
    })
}

/// Record where a hand-claimed task's worker runs (reference
/// `set_workspace_path` / `set_branch_name`; no event, as there).
pub(crate) fn set_task_workspace(
    tx: &Tx<'_>,
    task_id: &str,
    path: &str,
    branch: Option<&str>,
) -> DbResult<Task> {
    let task = tx.require_task(task_id)?;
    let path = path.trim();
    require_absolute_dir(path)?;
    let branch = match branch.map(str::trim).filter(|b| !b.is_empty()) {
        Some(b) if task.workspace_kind != "worktree" => {
            return Err(StoreError::invalid(format!(
                "branch {b:?} is only valid for worktree workspaces (task {} is {})",
                task.id, task.workspace_kind
            ))
            .into());
        }
        Some(b) => Some(normalize_branch(b)?),
        None => None,
    };
    tx.conn.execute(
        "UPDATE tasks SET workspace_path = ?1, branch_name = COALESCE(?2, branch_name) \
         WHERE id = ?3",
        params![path, branch, task.id],
    )?;
    tx.require_task(&task.id)
}
