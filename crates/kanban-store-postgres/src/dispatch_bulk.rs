//! The dispatch pass's two write transactions, set-based: a batch of
//! claims, then its launch records, each in a handful of statements
//! instead of several per task. Every statement is a round trip to the
//! server, and per-task round trips bounded a pass to a few hundred claims
//! per second.
//!
//! The decisions and their order are those of the per-task versions in
//! `dispatch_batch.rs` (kept for batches naming a task twice, where a
//! later entry must see an earlier one's write): tasks are read once, each
//! entry is decided in order with the same rules and the same running
//! tally, and the rows are then written with `unnest` arrays. Events are
//! appended in one statement in entry order, so their ids come out in the
//! order the per-task versions give them.

use std::collections::{HashMap, HashSet};

use kanban_core::payload;
use kanban_core::transitions::ceilings::is_per_profile;
use kanban_core::transitions::{Action, Refusal, decide};
use kanban_core::{EventKind, Status, Task};
use kanban_store::ClaimOutcome;
use kanban_store::dispatch_ops::*;
use serde_json::Value;

use crate::claim::{RunningTally, ceiling_reached, claim_ttl};
use crate::db::{DbResult, Tx, json_text};
use crate::row::task_from_row;
use crate::schema::TASK_COLUMNS;
use crate::txn::facts_of;

/// An event to append (see [`append_events`]).
struct NewEvent {
    task_id: String,
    kind: EventKind,
    payload: Option<Value>,
    run_id: Option<i64>,
}

/// Append events in order, in one statement (ids follow the order).
fn append_events(tx: &Tx<'_>, events: &[NewEvent]) -> DbResult<()> {
    if events.is_empty() {
        return Ok(());
    }
    let tasks: Vec<&str> = events.iter().map(|e| e.task_id.as_str()).collect();
    let runs: Vec<Option<i64>> = events.iter().map(|e| e.run_id).collect();
    let kinds: Vec<&str> = events.iter().map(|e| e.kind.as_str()).collect();
    let payloads: Vec<Option<String>> = events
        .iter()
        .map(|e| json_text(e.payload.as_ref()))
        .collect();
    tx.execute(
        "INSERT INTO task_events (task_id, run_id, kind, payload, created_at) \
         SELECT t, r, k, p, $5 \
         FROM unnest($1::text[], $2::bigint[], $3::text[], $4::text[]) \
         WITH ORDINALITY AS u(t, r, k, p, n) ORDER BY n",
        &[&tasks, &runs, &kinds, &payloads, &tx.now],
    )?;
    Ok(())
}

/// Does any id occur twice?
fn has_duplicates<'a>(ids: impl Iterator<Item = &'a str>) -> bool {
    let mut seen = HashSet::new();
    ids.into_iter().any(|id| !seen.insert(id))
}

/// The rows of `ids`, each with whether all its parents are done or
/// archived, in one statement.
fn load_tasks(tx: &Tx<'_>, ids: &[&str]) -> DbResult<HashMap<String, (Task, bool)>> {
    let sql = format!(
        "SELECT {TASK_COLUMNS}, NOT EXISTS (SELECT 1 FROM task_links l \
         JOIN tasks p ON p.id = l.parent_id \
         WHERE l.child_id = t.id AND p.status NOT IN ('done', 'archived')) \
         FROM tasks t WHERE t.id = ANY($1)"
    );
    let rows = tx.query(&sql, &[&ids])?;
    let satisfied_at = rows.first().map_or(0, |r| r.len() - 1);
    rows.iter()
        .map(|r| {
            let task = task_from_row(r)?;
            Ok((task.id.clone(), (task, r.try_get(satisfied_at)?)))
        })
        .collect()
}

/// A claim decided in entry order, written with the others.
struct Winner {
    entry: usize,
    task: Task,
    to: Status,
    event: EventKind,
    review: bool,
    /// Where its `claimed` event goes among the batch's events.
    event_at: usize,
}

/// [`ClaimBatch`]: every claim in one transaction, in a fixed number of
/// statements (see the module docs).
pub(crate) fn claim_batch(tx: &Tx<'_>, batch: &ClaimBatch) -> DbResult<Vec<ClaimOutcome>> {
    if has_duplicates(batch.claims.iter().map(|c| c.task_id.as_str())) {
        return crate::dispatch_batch::claim_batch(tx, batch);
    }
    let ids: Vec<&str> = batch.claims.iter().map(|c| c.task_id.as_str()).collect();
    let mut loaded = load_tasks(tx, &ids)?;
    let mut tally = RunningTally::default();
    let mut full: Option<String> = None;
    let mut out = Vec::with_capacity(batch.claims.len());
    // `None` marks a claimed event, filled in once its run id is known.
    let mut events: Vec<Option<NewEvent>> = Vec::new();
    let mut winners = Vec::new();
    for (entry, c) in batch.claims.iter().enumerate() {
        if let Some(name) = &full {
            out.push(ClaimOutcome::CeilingReached(name.clone()));
            continue;
        }
        // Deleted since the candidates were read: nothing to claim.
        let Some((task, satisfied)) = loaded.remove(&c.task_id) else {
            out.push(ClaimOutcome::Lost {
                status: Status::Archived,
                claim_lock: None,
            });
            continue;
        };
        let action = if c.review {
            Action::ClaimReview
        } else {
            Action::Claim
        };
        let d = match decide(action, &facts_of(&task, satisfied)) {
            Ok(d) => d,
            Err(Refusal::Demote { to, event }) => {
                tx.execute(
                    "UPDATE tasks SET status = $1 WHERE id = $2 AND status = 'ready'",
                    &[&to.as_str(), &task.id],
                )?;
                events.push(Some(NewEvent {
                    task_id: task.id.clone(),
                    kind: event,
                    payload: Some(payload::claim_rejected()),
                    run_id: None,
                }));
                out.push(ClaimOutcome::ParentsPending);
                continue;
            }
            Err(_) => {
                out.push(ClaimOutcome::Lost {
                    status: task.status,
                    claim_lock: task.claim_lock,
                });
                continue;
            }
        };
        let req = batch.request(c);
        if let Some(reached) = ceiling_reached(tx, &task, &req.ceilings, &mut tally)? {
            let name = reached.to_string();
            if !is_per_profile(&name) {
                full = Some(name.clone());
            }
            out.push(ClaimOutcome::CeilingReached(name));
            continue;
        }
        if let Some(leaked) = task.current_run_id {
            tx.close_leaked_run(leaked, "invariant recovery on re-claim")?;
        }
        tally.claimed(task.assignee.as_deref());
        winners.push(Winner {
            entry,
            task,
            to: d.to,
            event: d.event,
            review: c.review,
            event_at: events.len(),
        });
        events.push(None);
        // Replaced below by the claim's outcome.
        out.push(ClaimOutcome::ParentsPending);
    }
    if !winners.is_empty() {
        write_claims(tx, batch, &winners, &mut out, &mut events)?;
    }
    let events: Vec<NewEvent> = events.into_iter().flatten().collect();
    append_events(tx, &events)?;
    Ok(out)
}

/// The compare-and-swap of every winner, their runs and launch rows.
fn write_claims(
    tx: &Tx<'_>,
    batch: &ClaimBatch,
    winners: &[Winner],
    out: &mut [ClaimOutcome],
    events: &mut [Option<NewEvent>],
) -> DbResult<()> {
    let expires = tx.now + claim_ttl(Some(batch.ttl_seconds));
    // Run ids in claim order, as one INSERT per claim would take them.
    let mut run_ids: Vec<i64> = tx
        .query(
            "SELECT nextval(pg_get_serial_sequence('task_runs', 'id')) \
             FROM generate_series(1, $1::bigint)",
            &[&(winners.len() as i64)],
        )?
        .iter()
        .map(|r| r.try_get(0))
        .collect::<Result<_, _>>()?;
    run_ids.sort_unstable();
    let ids: Vec<&str> = winners.iter().map(|w| w.task.id.as_str()).collect();
    let from: Vec<&str> = winners.iter().map(|w| w.task.status.as_str()).collect();
    let to: Vec<&str> = winners.iter().map(|w| w.to.as_str()).collect();
    let won: HashSet<String> = tx
        .query(
            "UPDATE tasks t SET status = u.to_status, claim_lock = $2, claim_expires = $3, \
             started_at = COALESCE(t.started_at, $4), current_run_id = u.run_id \
             FROM unnest($1::text[], $5::text[], $6::text[], $7::bigint[]) \
             AS u(id, from_status, to_status, run_id) \
             WHERE t.id = u.id AND t.status = u.from_status AND t.claim_lock IS NULL \
             RETURNING t.id",
            &[
                &ids,
                &batch.claim_lock,
                &expires,
                &tx.now,
                &from,
                &to,
                &run_ids,
            ],
        )?
        .iter()
        .map(|r| r.try_get(0))
        .collect::<Result<_, _>>()?;
    let mut runs = (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for (w, run_id) in winners.iter().zip(&run_ids) {
        if !won.contains(&w.task.id) {
            // Cannot happen under the write lock; answered as the
            // per-task claim would.
            out[w.entry] = ClaimOutcome::Lost {
                status: w.task.status,
                claim_lock: w.task.claim_lock.clone(),
            };
            continue;
        }
        runs.0.push(*run_id);
        runs.1.push(w.task.id.as_str());
        runs.2.push(w.task.assignee.as_deref());
        runs.3.push(w.task.current_step_key.as_deref());
        runs.4.push(w.task.max_runtime_seconds);
        let payload = payload::claimed(&batch.claim_lock, expires, *run_id, w.review);
        events[w.event_at] = Some(NewEvent {
            task_id: w.task.id.clone(),
            kind: w.event,
            payload: Some(payload),
            run_id: Some(*run_id),
        });
        let mut task = w.task.clone();
        task.status = w.to;
        task.claim_lock = Some(batch.claim_lock.clone());
        task.claim_expires = Some(expires);
        task.started_at = task.started_at.or(Some(tx.now));
        task.current_run_id = Some(*run_id);
        out[w.entry] = ClaimOutcome::Claimed {
            task,
            run_id: *run_id,
        };
    }
    tx.execute(
        "INSERT INTO task_runs (id, task_id, profile, step_key, status, claim_lock, \
         claim_expires, max_runtime_seconds, started_at) \
         SELECT id, task_id, profile, step, 'running', $6, $7, max_runtime, $8 \
         FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::bigint[]) \
         WITH ORDINALITY AS u(id, task_id, profile, step, max_runtime, n) ORDER BY n",
        &[
            &runs.0,
            &runs.1,
            &runs.2,
            &runs.3,
            &runs.4,
            &batch.claim_lock,
            &expires,
            &tx.now,
        ],
    )?;
    if let Some(l) = &batch.launcher {
        tx.execute(
            "INSERT INTO kanban_rs_launches \
             (run_id, task_id, pid, start_time, boot_id, host, claimed_at) \
             SELECT r, t, $3, $4, $5, $6, $7 FROM unnest($1::bigint[], $2::text[]) AS u(r, t) \
             ON CONFLICT (run_id) DO UPDATE SET task_id = EXCLUDED.task_id, pid = EXCLUDED.pid, \
             start_time = EXCLUDED.start_time, boot_id = EXCLUDED.boot_id, host = EXCLUDED.host, \
             claimed_at = EXCLUDED.claimed_at",
            &[
                &runs.0,
                &runs.1,
                &l.pid,
                &l.start_time,
                &l.boot_id,
                &l.host,
                &tx.now,
            ],
        )?;
    }
    Ok(())
}

/// The workspace (fenced to the attempt) and the worker pid (fenced to the
/// running attempt) of every task of a launch batch, in ONE update of each
/// task row: a second update of the same rows would write every row (and
/// each of its index entries) once more. Both fences are read on the row
/// as it was, which neither write changes (status, current run), so this
/// is the workspace update followed by the worker update; RETURNING sees
/// the same status and run, so it repeats the fences. One array row per
/// task (the client merges the two lists): joining two lists in SQL cost
/// as much as the update itself. Returns, per updated task, whether its
/// workspace and whether its worker was set.
const RECORD_TASKS_SQL: &str = "UPDATE tasks t SET \
     workspace_path = CASE WHEN u.has_ws AND t.current_run_id IS NOT DISTINCT FROM u.ws_run \
       THEN u.path ELSE t.workspace_path END, \
     branch_name = CASE WHEN u.has_ws AND t.current_run_id IS NOT DISTINCT FROM u.ws_run \
       THEN COALESCE(u.branch, t.branch_name) ELSE t.branch_name END, \
     worker_pid = CASE WHEN u.has_wk AND t.status = 'running' \
       AND t.current_run_id IS NOT DISTINCT FROM u.wk_run THEN u.pid ELSE t.worker_pid END \
     FROM unnest($1::text[], $2::bool[], $3::bigint[], $4::text[], $5::text[], $6::bool[], \
       $7::bigint[], $8::bigint[]) AS u(id, has_ws, ws_run, path, branch, has_wk, wk_run, pid) \
     WHERE t.id = u.id \
       AND ((u.has_ws AND t.current_run_id IS NOT DISTINCT FROM u.ws_run) \
         OR (u.has_wk AND t.status = 'running' AND t.current_run_id IS NOT DISTINCT FROM u.wk_run)) \
     RETURNING t.id, u.has_ws AND t.current_run_id IS NOT DISTINCT FROM u.ws_run, \
       u.has_wk AND t.status = 'running' AND t.current_run_id IS NOT DISTINCT FROM u.wk_run";

/// [`LaunchBatch`]: workspaces, then workers, then spawn failures, as the
/// per-task version records them, in a fixed number of statements.
pub(crate) fn record_launches(tx: &Tx<'_>, batch: &LaunchBatch) -> DbResult<LaunchesRecorded> {
    if has_duplicates(batch.workspaces.iter().map(|w| w.task_id.as_str()))
        || has_duplicates(batch.workers.iter().map(|w| w.task_id.as_str()))
    {
        return crate::dispatch_batch::record_launches(tx, batch);
    }
    let (ws_set, wk_set) = record_tasks(tx, &batch.workspaces, &batch.workers)?;
    let mut events = Vec::new();
    for w in &batch.workspaces {
        if let Some(msg) = &w.tip
            && ws_set.contains(&w.task_id)
        {
            events.push(NewEvent {
                task_id: w.task_id.clone(),
                kind: EventKind::TipScratchWorkspace,
                payload: Some(payload::tip_scratch_workspace(msg)),
                run_id: None,
            });
        }
    }
    let workers = record_workers(tx, &batch.workers, &wk_set, &mut events)?;
    append_events(tx, &events)?;
    let failures = batch
        .failures
        .iter()
        .map(|f| crate::dispatch_batch::spawn_failure(tx, f))
        .collect::<DbResult<_>>()?;
    Ok(LaunchesRecorded { workers, failures })
}

/// [`RECORD_TASKS_SQL`]: the tasks whose workspace, and those whose
/// worker, was set.
fn record_tasks(
    tx: &Tx<'_>,
    ws: &[SetWorkspace],
    workers: &[SetWorker],
) -> DbResult<(HashSet<String>, HashSet<String>)> {
    let mut ws_set = HashSet::new();
    let mut wk_set = HashSet::new();
    if ws.is_empty() && workers.is_empty() {
        return Ok((ws_set, wk_set));
    }
    // One entry per task, in first-seen order (neither list repeats a task).
    let mut at: HashMap<&str, usize> = HashMap::new();
    let mut tasks: Vec<(&str, Option<&SetWorkspace>, Option<&SetWorker>)> = Vec::new();
    for w in ws {
        at.insert(&w.task_id, tasks.len());
        tasks.push((&w.task_id, Some(w), None));
    }
    for w in workers {
        match at.get(w.task_id.as_str()) {
            Some(&i) => tasks[i].2 = Some(w),
            None => tasks.push((&w.task_id, None, Some(w))),
        }
    }
    let ids: Vec<&str> = tasks.iter().map(|t| t.0).collect();
    let has_ws: Vec<bool> = tasks.iter().map(|t| t.1.is_some()).collect();
    let ws_runs: Vec<Option<i64>> = tasks.iter().map(|t| t.1.and_then(|w| w.run_id)).collect();
    let paths: Vec<Option<&str>> = tasks.iter().map(|t| t.1.map(|w| w.path.as_str())).collect();
    let branches: Vec<Option<&str>> = tasks
        .iter()
        .map(|t| t.1.and_then(|w| w.branch.as_deref()))
        .collect();
    let has_wk: Vec<bool> = tasks.iter().map(|t| t.2.is_some()).collect();
    let wk_runs: Vec<Option<i64>> = tasks.iter().map(|t| t.2.and_then(|w| w.run_id)).collect();
    let pids: Vec<Option<i64>> = tasks.iter().map(|t| t.2.map(|w| w.worker.pid)).collect();
    let rows = tx.query(
        RECORD_TASKS_SQL,
        &[
            &ids, &has_ws, &ws_runs, &paths, &branches, &has_wk, &wk_runs, &pids,
        ],
    )?;
    for r in &rows {
        let id: String = r.try_get(0)?;
        if r.try_get::<_, bool>(1)? {
            ws_set.insert(id.clone());
        }
        if r.try_get::<_, bool>(2)? {
            wk_set.insert(id);
        }
    }
    Ok((ws_set, wk_set))
}

/// For the workers whose task took their pid (`set`): pid on the run,
/// the worker's identity row, its launcher as supervisor, the launch row
/// gone, and a `spawned` event each.
fn record_workers(
    tx: &Tx<'_>,
    workers: &[SetWorker],
    set: &HashSet<String>,
    events: &mut Vec<NewEvent>,
) -> DbResult<Vec<bool>> {
    if workers.is_empty() {
        return Ok(Vec::new());
    }
    let ok: Vec<bool> = workers.iter().map(|w| set.contains(&w.task_id)).collect();
    let recorded: Vec<(&SetWorker, i64)> = workers
        .iter()
        .zip(&ok)
        .filter(|(_, ok)| **ok)
        .filter_map(|(w, _)| w.run_id.map(|r| (w, r)))
        .collect();
    if !recorded.is_empty() {
        let run_ids: Vec<i64> = recorded.iter().map(|(_, r)| *r).collect();
        let tasks: Vec<&str> = recorded.iter().map(|(w, _)| w.task_id.as_str()).collect();
        let pids: Vec<i64> = recorded.iter().map(|(w, _)| w.worker.pid).collect();
        let starts: Vec<Option<i64>> = recorded.iter().map(|(w, _)| w.worker.start_time).collect();
        let boots: Vec<Option<&str>> = recorded
            .iter()
            .map(|(w, _)| w.worker.boot_id.as_deref())
            .collect();
        let hosts: Vec<Option<&str>> = recorded
            .iter()
            .map(|(w, _)| w.worker.host.as_deref())
            .collect();
        // Every sub-statement sees the snapshot from before the statement:
        // the supervisors are copied from the launch rows it deletes.
        tx.execute(
            "WITH u AS (SELECT * FROM unnest($1::bigint[], $2::text[], $3::bigint[], \
             $4::bigint[], $5::text[], $6::text[]) AS u(run_id, task_id, pid, start_time, boot_id, host)), \
             runs AS (UPDATE task_runs r SET worker_pid = u.pid FROM u WHERE r.id = u.run_id), \
             workers AS (INSERT INTO kanban_rs_workers \
             (run_id, task_id, pid, start_time, boot_id, host, spawned_at) \
             SELECT run_id, task_id, pid, start_time, boot_id, host, $7 FROM u \
             ON CONFLICT (run_id) DO UPDATE SET task_id = EXCLUDED.task_id, pid = EXCLUDED.pid, \
             start_time = EXCLUDED.start_time, boot_id = EXCLUDED.boot_id, host = EXCLUDED.host, \
             spawned_at = EXCLUDED.spawned_at), \
             supervisors AS (INSERT INTO kanban_rs_supervisors \
             (run_id, task_id, pid, start_time, boot_id, host) \
             SELECT l.run_id, l.task_id, l.pid, l.start_time, l.boot_id, l.host \
             FROM kanban_rs_launches l JOIN u ON l.run_id = u.run_id \
             ON CONFLICT (run_id) DO UPDATE SET task_id = EXCLUDED.task_id, pid = EXCLUDED.pid, \
             start_time = EXCLUDED.start_time, boot_id = EXCLUDED.boot_id, host = EXCLUDED.host) \
             DELETE FROM kanban_rs_launches l USING u WHERE l.run_id = u.run_id",
            &[&run_ids, &tasks, &pids, &starts, &boots, &hosts, &tx.now],
        )?;
    }
    for (w, ok) in workers.iter().zip(&ok) {
        if *ok {
            events.push(NewEvent {
                task_id: w.task_id.clone(),
                kind: EventKind::Spawned,
                payload: Some(payload::spawned(w.worker.pid)),
                run_id: w.run_id,
            });
        }
    }
    Ok(ok)
}
