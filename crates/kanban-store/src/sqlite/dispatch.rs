//! [`DispatchStore`] for SQLite: the dispatcher's state changes, each one
//! `BEGIN IMMEDIATE` transaction writing row + run + event together, with
//! the reference's payload keys.
//!
//! Our worker identities live in `kanban_rs_workers` (ignored by the
//! Python implementation): one row per run we spawned, so liveness can
//! check the process start time and boot id, not just a reusable pid.

use std::sync::LazyLock;

use kanban_core::defaults::PROTOCOL_VIOLATION_SCAN_RUNS;
use kanban_core::payload::{self, ClaimExtension};
use kanban_core::transitions::breaker::{
    self, Counting, EndedRun, FailureFacts, Trip, Verdict, failure_error,
};
use kanban_core::transitions::review::decide_release;
use kanban_core::transitions::{Action, TaskFacts, decide};
use kanban_core::{EventKind, Status};
use rusqlite::{Connection, OptionalExtension, params};
use serde_json::Value;

use super::SqliteStore;
use super::lifecycle::{Scope, recompute_ready};
use super::recompute::promotable;
use super::row::status_of;
use super::txn::{DbResult, RunEnd, Tx};
use crate::Result;
use crate::dispatch_ops::*;

/// Our worker identity table (extra; the reference schema only has
/// `worker_pid`). Created on first use, idempotently.
pub(super) const WORKERS_SQL: &str = "CREATE TABLE IF NOT EXISTS kanban_rs_workers (
    run_id     INTEGER PRIMARY KEY,
    task_id    TEXT NOT NULL,
    pid        INTEGER NOT NULL,
    start_time INTEGER,
    boot_id    TEXT,
    host       TEXT,
    spawned_at INTEGER NOT NULL
)";

#[path = "dispatch_batch.rs"]
mod batch;
#[path = "dispatch_guard.rs"]
mod guard;
#[path = "dispatch_hosts.rs"]
mod hosts;
#[path = "dispatch_recovery.rs"]
pub(super) mod recovery;

/// `source` of the `assigned` event of `kanban.default_assignee`.
const DEFAULT_ASSIGNEE_SOURCE: &str = "kanban.default_assignee";

/// Events after which a task or its children may need re-gating.
const REGATE_KINDS: &str = "'completed', 'archived', 'status', 'unlinked', 'unblocked', 'created'";

/// SQLite's answer when one of our own tables is not created yet.
pub(super) fn is_missing_table(e: &rusqlite::Error) -> bool {
    matches!(e, rusqlite::Error::SqliteFailure(_, Some(m)) if m.starts_with("no such table"))
}

pub(super) fn table_exists(conn: &Connection, name: &str) -> DbResult<bool> {
    Ok(conn
        .prepare_cached("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?1")?
        .query_row([name], |_| Ok(()))
        .optional()?
        .is_some())
}

const RUNNING_SQL: &str = "SELECT t.id, t.assignee, t.claim_lock, t.claim_expires, t.worker_pid, \
     t.last_heartbeat_at, t.current_run_id, COALESCE(r.started_at, t.started_at), t.max_runtime_seconds";

/// Our tables joined to the running tasks, by alias, with their columns.
const RUNNING_JOINS: [(&str, &str, &str); 4] = [
    (
        "kanban_rs_workers",
        "w",
        "w.pid, w.start_time, w.boot_id, w.host",
    ),
    (
        "kanban_rs_launches",
        "l",
        "l.pid, l.start_time, l.boot_id, l.host",
    ),
    (
        "kanban_rs_supervisors",
        "s",
        "s.pid, s.start_time, s.boot_id, s.host",
    ),
    ("kanban_rs_intents", "i", "i.kind, i.detail, i.decided_at"),
];

/// The running-tasks query joining whichever of our tables exist.
fn running_sql(present: [bool; 4]) -> String {
    let mut cols = String::from(RUNNING_SQL);
    let mut joins = String::new();
    for ((table, alias, columns), here) in RUNNING_JOINS.iter().zip(present) {
        cols.push_str(", ");
        if here {
            cols.push_str(columns);
            joins.push_str(&format!(
                " LEFT JOIN {table} {alias} ON {alias}.run_id = t.current_run_id"
            ));
        } else {
            let n = columns.split(',').count();
            cols.push_str(&vec!["NULL"; n].join(", "));
        }
    }
    format!(
        "{cols} FROM tasks t LEFT JOIN task_runs r ON r.id = t.current_run_id{joins} \
         WHERE t.status = 'running'"
    )
}

/// A [`WorkerRecord`] from four columns starting at `at` (NULL pid = none).
fn record_at(r: &rusqlite::Row<'_>, at: usize) -> rusqlite::Result<Option<WorkerRecord>> {
    let Some(pid) = r.get::<_, Option<i64>>(at)? else {
        return Ok(None);
    };
    Ok(Some(WorkerRecord {
        pid,
        start_time: r.get(at + 1)?,
        boot_id: r.get(at + 2)?,
        host: r.get(at + 3)?,
    }))
}

/// The running-tasks query with every table of ours, built once (every
/// pass runs it; formatting it per call cost more than the idle query).
static RUNNING_ALL_SQL: LazyLock<String> = LazyLock::new(|| running_sql([true; 4]));

fn running_tasks(conn: &Connection) -> DbResult<Vec<RunningTask>> {
    // Fast path: both tables exist (the dispatcher creates them); a board
    // without them takes the sqlite_master look-up.
    let mut st = match conn.prepare_cached(&RUNNING_ALL_SQL) {
        Ok(st) => st,
        Err(e) if is_missing_table(&e) => {
            let mut present = [false; 4];
            for (p, (table, _, _)) in present.iter_mut().zip(RUNNING_JOINS) {
                *p = table_exists(conn, table)?;
            }
            conn.prepare_cached(&running_sql(present))?
        }
        Err(e) => return Err(e.into()),
    };
    let rows = st.query_map([], |r| {
        let id: String = r.get(0)?;
        let run_id: Option<i64> = r.get(6)?;
        Ok(RunningTask {
            intent: recovery::intent_at(r, 21, run_id, &id)?,
            id,
            assignee: r.get(1)?,
            claim_lock: r.get(2)?,
            claim_expires: r.get(3)?,
            worker_pid: r.get(4)?,
            last_heartbeat_at: r.get(5)?,
            run_id,
            attempt_started_at: r.get(7)?,
            max_runtime_seconds: r.get(8)?,
            worker: record_at(r, 9)?,
            launcher: record_at(r, 13)?,
            supervisor: record_at(r, 17)?,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// `(outcome, error, metadata)` of an ended run.
pub(super) type EndedRunRow = (Option<String>, Option<String>, Option<String>);

/// The task's ended runs, newest first, as the streak rules read them.
pub(super) fn ended_runs_newest_first(
    conn: &Connection,
    task_id: &str,
    limit: i64,
) -> DbResult<Vec<EndedRunRow>> {
    let mut st = conn.prepare_cached(
        "SELECT outcome, error, metadata FROM task_runs WHERE task_id = ?1 AND ended_at IS NOT NULL \
         ORDER BY id DESC LIMIT ?2",
    )?;
    let rows = st.query_map(params![task_id, limit], |r| {
        Ok((r.get(0)?, r.get(1)?, r.get(2)?))
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// [`EndedRun`] views of [`ended_runs_newest_first`] rows.
pub(super) fn as_ended(rows: &[EndedRunRow]) -> impl Iterator<Item = EndedRun<'_>> {
    rows.iter().map(|(outcome, error, metadata)| EndedRun {
        outcome: outcome.as_deref(),
        error: error.as_deref(),
        metadata: metadata.as_deref(),
    })
}

/// `(consecutive_failures, max_retries)` of a task.
fn failure_state(tx: &Tx<'_>, task_id: &str) -> DbResult<(i64, Option<i64>)> {
    Ok(tx
        .conn
        .prepare_cached("SELECT consecutive_failures, max_retries FROM tasks WHERE id = ?1")?
        .query_row([task_id], |r| {
            Ok((r.get::<_, Option<i64>>(0)?.unwrap_or(0), r.get(1)?))
        })?)
}

/// The breaker's view of a release's failure policy.
fn counting(policy: &FailurePolicy) -> (Counting, Option<&Value>) {
    match policy {
        FailurePolicy::NotCounted => (Counting::NotCounted, None),
        FailurePolicy::Counted {
            dispatcher_limit,
            forced_limit,
            extra,
        } => (
            Counting::Counted {
                dispatcher_limit: *dispatcher_limit,
                forced_limit: *forced_limit,
            },
            Some(extra),
        ),
        FailurePolicy::ViolationStreak {
            default_limit,
            extra,
        } => (
            Counting::ViolationStreak {
                default_limit: *default_limit,
            },
            Some(extra),
        ),
    }
}

/// Trip the breaker on a task already released (to ready, or to review
/// after a review attempt): blocked, counter stored, `gave_up` event.
fn trip(
    tx: &Tx<'_>,
    released: Status,
    task_id: &str,
    trip: &Trip,
    error: &str,
    payload: Value,
) -> DbResult<()> {
    // Decided on the released task, which the CAS below requires.
    let Ok(d) = decide(Action::GiveUp, &TaskFacts::new(released)) else {
        return Ok(());
    };
    tx.conn.execute(
        "UPDATE tasks SET status = ?1, consecutive_failures = ?2, last_failure_error = ?3 \
         WHERE id = ?4 AND status = ?5",
        params![
            d.to.as_str(),
            trip.failures,
            error,
            task_id,
            released.as_str()
        ],
    )?;
    tx.append_event(task_id, d.event, Some(payload), None)?;
    Ok(())
}

/// A running attempt released to the decided status (?8), with every CAS
/// the request asks for (inert when unset). The status compared is spelled
/// out, not bound: a bound value on the indexed `status` column has SQLite
/// (STAT4) re-prepare the cached statement on every call.
const RELEASE_SQL: &str = "UPDATE tasks SET status = ?8, claim_lock = NULL, claim_expires = NULL, \
     worker_pid = NULL, last_heartbeat_at = CASE WHEN ?4 THEN NULL ELSE last_heartbeat_at END \
     WHERE id = ?1 AND status = 'running' AND claim_lock IS ?2 AND current_run_id IS ?3 \
     AND (?5 IS NULL OR worker_pid = ?5) \
     AND (NOT ?6 OR (claim_expires IS NOT NULL AND claim_expires < ?7))";

fn release(tx: &Tx<'_>, req: &ReleaseRunning) -> DbResult<Released> {
    // Decided on the state the compare-and-swap below requires (a running
    // attempt): when the CAS loses, nothing is written.
    // A review attempt goes back to review: the CAS pins the run, so the
    // run read here is the one released.
    let review_run = tx.is_review_run(&req.task_id, req.run_id)?;
    let facts = TaskFacts::new(Status::Running);
    let Ok(d) = decide_release(Action::Release(req.event), &facts, review_run) else {
        return Ok(Released::default());
    };
    let n = tx.conn.prepare_cached(RELEASE_SQL)?.execute(params![
        req.task_id,
        req.claim_lock,
        req.run_id,
        req.clear_heartbeat,
        req.worker_pid,
        req.require_expired,
        tx.now,
        d.to.as_str(),
    ])?;
    if n != 1 {
        return Ok(Released::default());
    }
    let metadata = req.run_metadata.as_ref().unwrap_or(&req.payload);
    let end = RunEnd {
        error: Some(&req.error),
        metadata: Some(metadata),
        ..RunEnd::new(req.outcome.as_str())
    };
    let run_id = tx.end_run(&req.task_id, &end)?;
    batch::forget_launch(tx, run_id)?;
    recovery::forget_run_records(tx, run_id)?;
    tx.append_event(&req.task_id, d.event, Some(req.payload.clone()), run_id)?;
    let error = failure_error(&req.error);
    if req.stamp_error {
        tx.conn.execute(
            "UPDATE tasks SET last_failure_error = ?1 WHERE id = ?2",
            params![error, req.task_id],
        )?;
    }
    let (before, max_retries) = failure_state(tx, &req.task_id)?;
    let (counting, extra) = counting(&req.failure);
    let violation_streak = if matches!(counting, Counting::ViolationStreak { .. }) {
        let runs = ended_runs_newest_first(tx.conn, &req.task_id, PROTOCOL_VIOLATION_SCAN_RUNS)?;
        breaker::violation_streak(as_ended(&runs))
    } else {
        0
    };
    let verdict = breaker::judge(
        counting,
        &FailureFacts {
            failures: before,
            max_retries,
            violation_streak,
        },
    );
    match verdict {
        Verdict::Unchanged => {}
        Verdict::Counted { failures } => {
            tx.conn.execute(
                "UPDATE tasks SET consecutive_failures = ?1, last_failure_error = ?2 WHERE id = ?3",
                params![failures, error, req.task_id],
            )?;
        }
        Verdict::Trip(t) => {
            let payload = t.gave_up_payload(&error, req.outcome.as_str());
            let payload = match extra {
                Some(extra) => payload::merge(payload, extra),
                None => payload,
            };
            trip(tx, d.to, &req.task_id, &t, &error, payload)?;
        }
    }
    Ok(Released {
        released: true,
        auto_blocked: matches!(verdict, Verdict::Trip(_)),
        run_id,
        failures: verdict.failures(before),
    })
}

/// Unclaimed tasks of `status`, best first. The status is spelled out, not
/// bound: with `status = ?1` the statement was re-prepared on every call
/// with a new binding.
fn candidates_sql(status: Status) -> String {
    format!(
        "SELECT id, assignee, status, workspace_kind, workspace_path FROM tasks \
         WHERE status = '{}' \
         AND claim_lock IS NULL ORDER BY priority DESC, created_at ASC",
        status.as_str()
    )
}

/// The two candidate queries of every pass, built once.
static CANDIDATES_READY_SQL: LazyLock<String> = LazyLock::new(|| candidates_sql(Status::Ready));
static CANDIDATES_REVIEW_SQL: LazyLock<String> = LazyLock::new(|| candidates_sql(Status::Review));

/// The cursor (highest event id) and what `req` would promote, read-only:
/// an idle pass costs one index look-up and never takes the write lock.
fn regate_read(conn: &Connection, req: &Regate) -> DbResult<(i64, Vec<String>)> {
    let cursor: i64 = conn
        .prepare_cached("SELECT COALESCE(MAX(id), 0) FROM task_events")?
        .query_row([], |r| r.get(0))?;
    let ids = match req.scope {
        RegateScope::All => promotable(conn, req.failure_limit, None)?,
        RegateScope::ChangedSince(since) if since >= cursor => Vec::new(),
        RegateScope::ChangedSince(since) => {
            let sql = format!(
                "SELECT DISTINCT task_id FROM task_events WHERE id > ?1 AND id <= ?2 AND kind IN ({REGATE_KINDS}) \
                 UNION SELECT l.child_id FROM task_links l WHERE l.parent_id IN \
                 (SELECT task_id FROM task_events WHERE id > ?1 AND id <= ?2 AND kind IN ({REGATE_KINDS}))"
            );
            let changed: Vec<String> = conn
                .prepare_cached(&sql)?
                .query_map(params![since, cursor], |r| r.get(0))?
                .collect::<rusqlite::Result<_>>()?;
            if changed.is_empty() {
                Vec::new()
            } else {
                promotable(conn, req.failure_limit, Some(Scope::Ids(&changed)))?
            }
        }
    };
    Ok((cursor, ids))
}

impl DispatchStore for SqliteStore {
    fn dispatch_lock(&self) -> std::sync::Arc<dyn DispatchLock> {
        super::dispatch_lock::file_dispatch_lock(self.path())
    }

    fn now(&self) -> i64 {
        SqliteStore::now(self)
    }

    fn running_tasks(&self) -> Result<Vec<RunningTask>> {
        self.read(running_tasks)
    }

    fn read_scope(&self) -> ReadScope<'_> {
        self.begin_read_scope()
    }

    fn running_counts(&self) -> Result<RunningCounts> {
        self.read(|c| {
            let mut st = c.prepare_cached(
                "SELECT COALESCE(assignee, ''), COUNT(*) FROM tasks WHERE status = 'running' GROUP BY assignee",
            )?;
            let mut counts = RunningCounts::default();
            for row in st.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))? {
                let (assignee, n) = row?;
                counts.total += n;
                if !assignee.is_empty() {
                    counts.by_assignee.insert(assignee, n);
                }
            }
            Ok(counts)
        })
    }

    fn dispatch_candidates(&self, status: Status) -> Result<Vec<Candidate>> {
        self.read(|c| {
            let owned;
            let sql: &str = match status {
                Status::Ready => &CANDIDATES_READY_SQL,
                Status::Review => &CANDIDATES_REVIEW_SQL,
                other => {
                    owned = candidates_sql(other);
                    &owned
                }
            };
            let mut st = c.prepare_cached(sql)?;
            let rows = st.query_map([], |r| {
                Ok(Candidate {
                    id: r.get(0)?,
                    assignee: r
                        .get::<_, Option<String>>(1)?
                        .filter(|a| !a.trim().is_empty()),
                    status: status_of(&r.get::<_, String>(2)?),
                    workspace_kind: r.get::<_, Option<String>>(3)?.unwrap_or_default(),
                    workspace_path: r.get(4)?,
                })
            })?;
            Ok(rows.collect::<rusqlite::Result<_>>()?)
        })
    }

    fn respawn_guard_facts(
        &self,
        task_id: &str,
        success_since: i64,
        comments_since: i64,
    ) -> Result<GuardFacts> {
        self.read_snapshot(|c| guard::guard_facts(c, task_id, success_since, comments_since))
    }

    fn respawn_guard_facts_of(
        &self,
        task_ids: &[String],
        success_since: i64,
        comments_since: i64,
    ) -> Result<Vec<GuardFacts>> {
        // The per-task look-ups (cached statements) in one snapshot: no
        // round trips to save here, only a transaction per task.
        self.read_snapshot(|c| {
            task_ids
                .iter()
                .map(|id| guard::guard_facts(c, id, success_since, comments_since))
                .collect()
        })
    }

    fn board_version(&self) -> Result<Option<u64>> {
        // `data_version` moves on commits of other connections only; this
        // connection's own commits show in its change count. Neither reads
        // a page. Packed in one value: a collision needs 2^32 row changes
        // between two readings and no other connection committing.
        self.read(|c| {
            let others: i64 = c
                .prepare_cached("PRAGMA data_version")?
                .query_row([], |r| r.get(0))?;
            let own = c.total_changes();
            Ok(Some(((others as u64) << 32) | (own & 0xffff_ffff)))
        })
    }

    fn extend_claim(&self, req: &ExtendClaim) -> Result<bool> {
        self.write(|tx| {
            let n = tx.conn.execute(
                "UPDATE tasks SET claim_expires = ?1 WHERE id = ?2 AND status = 'running' \
                 AND claim_lock IS ?3 AND claim_expires IS NOT NULL AND claim_expires < ?4 \
                 AND (?5 IS NULL OR current_run_id IS ?5)",
                params![
                    req.new_expires,
                    req.task_id,
                    req.claim_lock,
                    tx.now,
                    req.run_id
                ],
            )?;
            if n != 1 {
                return Ok(false);
            }
            let run_id = tx.task(&req.task_id)?.and_then(|t| t.current_run_id);
            if let Some(run) = run_id {
                tx.conn.execute(
                    "UPDATE task_runs SET claim_expires = ?1 WHERE id = ?2",
                    params![req.new_expires, run],
                )?;
            }
            let payload = payload::claim_extended(&ClaimExtension {
                worker_pid: req.worker_pid,
                claim_lock: req.claim_lock.as_deref(),
                claim_expires_was: req.claim_expires_was,
                claim_expires_now: req.new_expires,
                last_heartbeat_at: req.last_heartbeat_at,
            });
            tx.append_event(
                &req.task_id,
                EventKind::ClaimExtended,
                Some(payload),
                run_id,
            )?;
            Ok(true)
        })
    }

    fn defer_reclaim(&self, req: &DeferReclaim) -> Result<bool> {
        self.write(|tx| {
            let n = tx.conn.execute(
                "UPDATE tasks SET claim_expires = ?1 WHERE id = ?2 AND status = 'running' AND claim_lock IS ?3 \
                 AND (?4 IS NULL OR current_run_id IS ?4)",
                params![req.until, req.task_id, req.claim_lock, req.run_id],
            )?;
            if n != 1 {
                return Ok(false);
            }
            let run_id = tx.task(&req.task_id)?.and_then(|t| t.current_run_id);
            if let Some(run) = run_id {
                tx.conn.execute("UPDATE task_runs SET claim_expires = ?1 WHERE id = ?2", params![req.until, run])?;
            }
            let payload = payload::reclaim_deferred(
                &req.reason,
                req.claim_lock.as_deref(),
                req.until,
                &req.extra,
            );
            tx.append_event(&req.task_id, EventKind::ReclaimDeferred, Some(payload), run_id)?;
            Ok(true)
        })
    }

    fn release_running(&self, req: &ReleaseRunning) -> Result<Released> {
        self.write(|tx| release(tx, req))
    }

    fn record_spawn_failure(&self, req: &SpawnFailure) -> Result<Released> {
        self.write(|tx| batch::spawn_failure(tx, req))
    }

    fn set_workspace(&self, req: &SetWorkspace) -> Result<bool> {
        self.write(|tx| batch::set_workspace(tx, req))
    }

    fn set_worker(&self, req: &SetWorker) -> Result<bool> {
        self.write(|tx| {
            tx.conn.execute_batch(WORKERS_SQL)?;
            batch::set_worker(tx, req)
        })
    }

    fn assign_default(&self, task_id: &str, assignee: &str) -> Result<bool> {
        self.write(|tx| {
            let n = tx.conn.execute(
                "UPDATE tasks SET assignee = ?1 WHERE id = ?2 AND (assignee IS NULL OR assignee = '')",
                params![assignee, task_id],
            )?;
            if n == 1 {
                let payload = payload::assigned(Some(assignee), Some(DEFAULT_ASSIGNEE_SOURCE));
                tx.append_event(task_id, EventKind::Assigned, Some(payload), None)?;
            }
            Ok(n == 1)
        })
    }

    fn note_respawn_guarded(&self, task_id: &str, reason: &str) -> Result<()> {
        // Once per hold: while nothing else happened to the task since the
        // same note, another one would only repeat it (and wake every
        // watcher, the gateway's dispatcher included, for nothing).
        if self.read(|c| recovery::last_event_is_guard(c, task_id, reason))? {
            return Ok(());
        }
        self.write(|tx| {
            if recovery::last_event_is_guard(tx.conn, task_id, reason)? {
                return Ok(());
            }
            tx.append_event(
                task_id,
                EventKind::RespawnGuarded,
                Some(payload::respawn_guarded(reason)),
                None,
            )?;
            Ok(())
        })
    }

    fn worker_record(&self, run_id: i64) -> Result<Option<WorkerRecord>> {
        self.read(|c| {
            let mut st = match c.prepare_cached(
                "SELECT pid, start_time, boot_id, host FROM kanban_rs_workers WHERE run_id = ?1",
            ) {
                Ok(st) => st,
                Err(e) if is_missing_table(&e) => return Ok(None),
                Err(e) => return Err(e.into()),
            };
            Ok(st
                .query_row([run_id], |r| record_at(r, 0))
                .optional()?
                .flatten())
        })
    }

    fn finished_workers(&self, ended_before: i64) -> Result<Vec<FinishedWorker>> {
        self.read(|c| {
            let mut st = match c.prepare_cached(
                "SELECT w.run_id, w.task_id, r.ended_at, w.pid, w.start_time, w.boot_id, w.host \
                 FROM kanban_rs_workers w JOIN task_runs r ON r.id = w.run_id \
                 WHERE r.ended_at IS NOT NULL AND r.ended_at < ?1 ORDER BY w.run_id",
            ) {
                Ok(st) => st,
                Err(e) if is_missing_table(&e) => return Ok(Vec::new()),
                Err(e) => return Err(e.into()),
            };
            let rows = st.query_map([ended_before], |r| {
                Ok(FinishedWorker {
                    run_id: r.get(0)?,
                    task_id: r.get(1)?,
                    ended_at: r.get(2)?,
                    worker: WorkerRecord {
                        pid: r.get(3)?,
                        start_time: r.get(4)?,
                        boot_id: r.get(5)?,
                        host: r.get(6)?,
                    },
                })
            })?;
            Ok(rows.collect::<rusqlite::Result<_>>()?)
        })
    }

    fn forget_worker(&self, run_id: i64) -> Result<()> {
        self.write(|tx| {
            match tx
                .conn
                .execute("DELETE FROM kanban_rs_workers WHERE run_id = ?1", [run_id])
            {
                Err(e) if is_missing_table(&e) => {}
                other => {
                    other?;
                }
            }
            recovery::forget_run_records(tx, Some(run_id))
        })
    }

    fn pending_spawn_retries(&self) -> Result<Vec<PendingSpawnRetry>> {
        self.read(recovery::pending_spawn_retries)
    }

    fn schedule_spawn_retries(&self, retries: &[SpawnRetry]) -> Result<usize> {
        if retries.is_empty() {
            return Ok(0);
        }
        self.write(|tx| recovery::schedule_spawn_retries(tx, retries))
    }

    fn record_intent(&self, intent: &TerminationIntent) -> Result<bool> {
        self.write(|tx| recovery::record_intent(tx, intent))
    }

    fn excused_death_streak(&self, task_id: &str) -> Result<i64> {
        self.read(|c| recovery::excused_death_streak(c, task_id))
    }

    fn release_supervision(&self, task_ids: &[String]) -> Result<()> {
        if task_ids.is_empty() {
            return Ok(());
        }
        self.write(|tx| recovery::release_supervision(tx, task_ids))
    }

    fn renew_host_lease(&self, lease: &HostLease) -> Result<HostRecord> {
        self.write(|tx| hosts::renew(tx, lease))
    }

    fn hosts(&self) -> Result<Vec<HostRecord>> {
        self.read(hosts::hosts)
    }

    fn prepare_dispatch(&self) -> Result<()> {
        if !self.read(batch::prepare)? {
            self.write(batch::create_tables)?;
        }
        Ok(())
    }

    fn claim_batch(&self, req: &ClaimBatch) -> Result<Vec<crate::ClaimOutcome>> {
        self.write(|tx| batch::claim_batch(tx, req))
    }

    fn record_launches(&self, req: &LaunchBatch) -> Result<LaunchesRecorded> {
        self.write(|tx| batch::record_launches(tx, req))
    }

    fn regate(&self, req: &Regate) -> Result<Regated> {
        let (cursor, ids) = self.read_snapshot(|c| regate_read(c, req))?;
        let promoted = if ids.is_empty() {
            0
        } else if req.dry_run {
            ids.len()
        } else {
            // Re-checked under the write lock: only what is still promotable.
            self.write(|tx| recompute_ready(tx, req.failure_limit, Some(Scope::Ids(&ids))))?
        };
        Ok(Regated { promoted, cursor })
    }
}
