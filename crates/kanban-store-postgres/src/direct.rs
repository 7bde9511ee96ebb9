//! Operator writes that are not lifecycle verbs: the dashboard's
//! drag-and-drop status move (reference `_set_status_direct`, with the
//! SPEC §4 fix that archived parents satisfy too) and recording the
//! workspace a hand claim resolved. Mirrors the SQLite backend's
//! `direct.rs`.

use kanban_core::payload;
use kanban_core::transitions::{Action, Refusal, check_direct_target, decide};
use kanban_core::validate::{normalize_branch, require_absolute_dir};
use kanban_core::{Status, Task};
use kanban_store::StoreError;
use kanban_store::params::Transitioned;

use crate::db::{DbResult, Tx};
use crate::lifecycle::{ended_worker, refusal};
use crate::row::all;
use crate::txn::{RunEnd, facts_of};

/// The refusal of a target no direct move may have, worded for the UI.
fn invalid_target(to: Status) -> StoreError {
    if to == Status::Running {
        StoreError::invalid(
            "Cannot set status to 'running' directly; use the dispatcher/claim path",
        )
    } else {
        StoreError::invalid(format!(
            "status '{to}' cannot be set directly; use complete (done), block (blocked) or \
             archive (archived)"
        ))
    }
}

/// `'title' (id, status=s)` of each parent that is neither done nor archived.
fn blocking_parents(tx: &Tx<'_>, task_id: &str) -> DbResult<Vec<String>> {
    let rows = tx.query(
        "SELECT p.id, p.title, p.status FROM task_links l JOIN tasks p ON p.id = l.parent_id \
         WHERE l.child_id = $1 AND p.status NOT IN ('done', 'archived') \
         ORDER BY p.id COLLATE \"C\"",
        &[&task_id],
    )?;
    all(rows, |r| {
        Ok(format!(
            "{:?} ({}, status={})",
            r.try_get::<_, String>(1)?,
            r.try_get::<_, String>(0)?,
            r.try_get::<_, String>(2)?
        ))
    })
}

/// Demote the ready children of a task that stopped satisfying them, each
/// with a `status` event naming the reopened parent.
fn demote_ready_children(tx: &Tx<'_>, parent: &Task) -> DbResult<()> {
    for child in tx.children(&parent.id)? {
        let Some(task) = tx.task(&child)? else {
            continue;
        };
        // The parent is unfinished now, so the child's parents are too.
        let Ok(d) = decide(Action::ParentReopened, &facts_of(&task, false)) else {
            continue;
        };
        // The rule demotes ready children only.
        let n = tx.execute(
            "UPDATE tasks SET status = $1 WHERE id = $2 AND status = 'ready'",
            &[&d.to.as_str(), &child],
        )?;
        if n == 1 {
            tx.append_event(
                &child,
                d.event,
                Some(payload::parent_reopened(d.to, &parent.id)),
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
    check_direct_target(to).map_err(|_| invalid_target(to))?;
    let task = tx.require_task(task_id)?;
    let action = Action::Move(to);
    let d = match decide(action, &tx.facts(&task)?) {
        Ok(d) => d,
        Err(Refusal::ParentsPending) => {
            return Err(StoreError::Refused {
                action: "move",
                task_id: task.id.clone(),
                reason: format!(
                    "to 'ready': blocked by parent(s) not done — {}",
                    blocking_parents(tx, &task.id)?.join(", ")
                ),
            }
            .into());
        }
        Err(Refusal::NotDirectTarget) => return Err(invalid_target(to).into()),
        Err(why) => return Err(refusal(tx, action, &task, why)?.into()),
    };
    if d.effects.unchanged {
        return Ok(Transitioned {
            from: task.status,
            to,
            task,
            run_id: None,
            ended_worker: None,
        });
    }
    tx.execute(
        "UPDATE tasks SET status = $1, claim_lock = NULL, claim_expires = NULL, worker_pid = NULL \
         WHERE id = $2",
        &[&d.to.as_str(), &task.id],
    )?;
    let summary = payload::status_changed_run_summary(d.to);
    let end = RunEnd {
        summary: Some(&summary),
        ..RunEnd::new("reclaimed")
    };
    let run_id = tx.end_run(&task.id, &end)?;
    tx.append_event(
        &task.id,
        d.event,
        Some(payload::status_changed(d.to)),
        run_id,
    )?;
    if d.effects.demote_ready_children {
        demote_ready_children(tx, &task)?;
    }
    Ok(Transitioned {
        from: task.status,
        to: d.to,
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
    tx.execute(
        "UPDATE tasks SET workspace_path = $1, branch_name = COALESCE($2, branch_name) \
         WHERE id = $3",
        &[&path, &branch, &task.id],
    )?;
    tx.require_task(&task.id)
}
