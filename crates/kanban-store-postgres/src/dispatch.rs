//! [`DispatchStore`] for PostgreSQL: the dispatcher's state changes, each
//! one write transaction writing row + run + event together, with the
//! reference's payload keys (port of the SQLite backend's `dispatch.rs`).
//!
//! Our worker identities live in `kanban_rs_workers`: one row per run we
//! spawned, so liveness can check the process start time and boot id, not
//! just a reusable pid. Every table of ours exists from the migration on.

use std::sync::{Arc, LazyLock};

use kanban_core::defaults::PROTOCOL_VIOLATION_SCAN_RUNS;
use kanban_core::payload::{self, ClaimExtension};
use kanban_core::transitions::breaker::{
    self, Counting, FailureFacts, Trip, Verdict, failure_error,
};
use kanban_core::transitions::review::decide_release;
use kanban_core::transitions::{Action, TaskFacts, decide};
use kanban_core::{EventKind, Status};
use kanban_store::Result;
use kanban_store::dispatch_ops::*;
use postgres::Row;
use serde_json::Value;

use crate::PgStore;
use crate::db::{Db, DbResult, Tx};
use crate::dispatch_batch as batch;
use crate::dispatch_guard::{GuardProbe, guard_facts, guard_facts_of, guard_probe};
use crate::dispatch_recovery as recovery;
use crate::ended_runs::{as_ended, ended_runs_newest_first};
use crate::recompute::{Scope, promotable, recompute_ready};
use crate::row::{all, opt_i64, opt_str, status_of};
use crate::schema::VERSION_QUERY;
use crate::txn::RunEnd;

/// `source` of the `assigned` event of `kanban.default_assignee`.
const DEFAULT_ASSIGNEE_SOURCE: &str = "kanban.default_assignee";

/// Events after which a task or its children may need re-gating.
const REGATE_KINDS: &str = "'completed', 'archived', 'status', 'unlinked', 'unblocked', 'created'";

/// Running tasks with their attempt, worker, launcher, supervisor and
/// decided release (our tables joined by the attempt's run id).
const RUNNING_SQL: &str = "SELECT t.id, t.assignee, t.claim_lock, t.claim_expires, t.worker_pid, \
     t.last_heartbeat_at, t.current_run_id, COALESCE(r.started_at, t.started_at), t.max_runtime_seconds, \
     w.pid, w.start_time, w.boot_id, w.host, \
     l.pid, l.start_time, l.boot_id, l.host, \
     s.pid, s.start_time, s.boot_id, s.host, \
     i.kind, i.detail, i.decided_at \
     FROM tasks t LEFT JOIN task_runs r ON r.id = t.current_run_id \
     LEFT JOIN kanban_rs_workers w ON w.run_id = t.current_run_id \
     LEFT JOIN kanban_rs_launches l ON l.run_id = t.current_run_id \
     LEFT JOIN kanban_rs_supervisors s ON s.run_id = t.current_run_id \
     LEFT JOIN kanban_rs_intents i ON i.run_id = t.current_run_id \
     WHERE t.status = 'running'";

/// A [`WorkerRecord`] from four columns starting at `at` (NULL pid = none).
fn record_at(r: &Row, at: usize) -> DbResult<Option<WorkerRecord>> {
    let Some(pid) = opt_i64(r, at)? else {
        return Ok(None);
    };
    Ok(Some(WorkerRecord {
        pid,
        start_time: opt_i64(r, at + 1)?,
        boot_id: opt_str(r, at + 2)?,
        host: opt_str(r, at + 3)?,
    }))
}

fn running_tasks(db: &Db<'_>) -> DbResult<Vec<RunningTask>> {
    all(db.query(RUNNING_SQL, &[])?, |r| {
        let id: String = r.try_get(0)?;
        let run_id = opt_i64(r, 6)?;
        Ok(RunningTask {
            intent: recovery::intent_at(r, 21, run_id, &id)?,
            id,
            assignee: opt_str(r, 1)?,
            claim_lock: opt_str(r, 2)?,
            claim_expires: opt_i64(r, 3)?,
            worker_pid: opt_i64(r, 4)?,
            last_heartbeat_at: opt_i64(r, 5)?,
            run_id,
            attempt_started_at: opt_i64(r, 7)?,
            max_runtime_seconds: opt_i64(r, 8)?,
            worker: record_at(r, 9)?,
            launcher: record_at(r, 13)?,
            supervisor: record_at(r, 17)?,
        })
    })
}

/// `(consecutive_failures, max_retries)` of a task.
fn failure_state(tx: &Tx<'_>, task_id: &str) -> DbResult<(i64, Option<i64>)> {
    let r = tx.query_one(
        "SELECT consecutive_failures, max_retries FROM tasks WHERE id = $1",
        &[&task_id],
    )?;
    Ok((opt_i64(&r, 0)?.unwrap_or(0), opt_i64(&r, 1)?))
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
    tx.execute(
        "UPDATE tasks SET status = $1, consecutive_failures = $2, last_failure_error = $3 \
         WHERE id = $4 AND status = $5",
        &[
            &d.to.as_str(),
            &trip.failures,
            &error,
            &task_id,
            &released.as_str(),
        ],
    )?;
    tx.append_event(task_id, d.event, Some(payload), None)?;
    Ok(())
}

/// A running attempt released to the decided status ($8), with every CAS
/// the request asks for (inert when unset).
const RELEASE_SQL: &str = "UPDATE tasks SET status = $8, claim_lock = NULL, claim_expires = NULL, \
     worker_pid = NULL, last_heartbeat_at = CASE WHEN $4::BOOLEAN THEN NULL ELSE last_heartbeat_at END \
     WHERE id = $1 AND status = 'running' AND claim_lock IS NOT DISTINCT FROM $2::TEXT \
     AND current_run_id IS NOT DISTINCT FROM $3::BIGINT \
     AND ($5::BIGINT IS NULL OR worker_pid = $5) \
     AND (NOT $6::BOOLEAN OR (claim_expires IS NOT NULL AND claim_expires < $7))";

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
    let n = tx.execute(
        RELEASE_SQL,
        &[
            &req.task_id,
            &req.claim_lock,
            &req.run_id,
            &req.clear_heartbeat,
            &req.worker_pid,
            &req.require_expired,
            &tx.now,
            &d.to.as_str(),
        ],
    )?;
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
        tx.execute(
            "UPDATE tasks SET last_failure_error = $1 WHERE id = $2",
            &[&error, &req.task_id],
        )?;
    }
    let (before, max_retries) = failure_state(tx, &req.task_id)?;
    let (counting, extra) = counting(&req.failure);
    let violation_streak = if matches!(counting, Counting::ViolationStreak { .. }) {
        let runs = ended_runs_newest_first(tx, &req.task_id, PROTOCOL_VIOLATION_SCAN_RUNS)?;
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
            tx.execute(
                "UPDATE tasks SET consecutive_failures = $1, last_failure_error = $2 WHERE id = $3",
                &[&failures, &error, &req.task_id],
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

/// Unclaimed tasks of `status`, best first (ties in creation order, as
/// SQLite's insertion order; a NULL priority last, as SQLite sorts it).
fn candidates_sql(status: Status) -> String {
    format!(
        "SELECT id, assignee, status, workspace_kind, workspace_path FROM tasks \
         WHERE status = '{}' \
         AND claim_lock IS NULL ORDER BY priority DESC NULLS LAST, created_at ASC, id ASC",
        status.as_str()
    )
}

/// The two candidate queries of every pass, built once.
static CANDIDATES_READY_SQL: LazyLock<String> = LazyLock::new(|| candidates_sql(Status::Ready));
static CANDIDATES_REVIEW_SQL: LazyLock<String> = LazyLock::new(|| candidates_sql(Status::Review));

/// Tasks whose events in `($1, $2]` may change their own or their
/// children's gate.
static REGATE_CHANGED_SQL: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT DISTINCT task_id FROM task_events WHERE id > $1 AND id <= $2 AND kind IN ({REGATE_KINDS}) \
         UNION SELECT l.child_id FROM task_links l WHERE l.parent_id IN \
         (SELECT task_id FROM task_events WHERE id > $1 AND id <= $2 AND kind IN ({REGATE_KINDS}))"
    )
});

/// The highest event id (the promotion cursor).
fn latest_event(db: &Db<'_>) -> DbResult<i64> {
    Ok(db
        .query_one("SELECT COALESCE(MAX(id), 0)::BIGINT FROM task_events", &[])?
        .try_get(0)?)
}

/// The cursor (highest event id) and what `req` would promote, read-only:
/// an idle pass costs one index look-up and never takes the write lock.
fn regate_read(db: &Db<'_>, req: &Regate) -> DbResult<(i64, Vec<String>)> {
    let cursor = latest_event(db)?;
    let ids = match req.scope {
        RegateScope::All => promotable(db, req.failure_limit, None)?,
        RegateScope::ChangedSince(since) if since >= cursor => Vec::new(),
        RegateScope::ChangedSince(since) => {
            let changed: Vec<String> =
                all(db.query(&REGATE_CHANGED_SQL, &[&since, &cursor])?, |r| {
                    Ok(r.try_get(0)?)
                })?;
            if changed.is_empty() {
                Vec::new()
            } else {
                promotable(db, req.failure_limit, Some(Scope::Ids(&changed)))?
            }
        }
    };
    Ok((cursor, ids))
}

impl DispatchStore for PgStore {
    fn dispatch_lock(&self) -> Arc<dyn DispatchLock> {
        Arc::new(crate::lock::AdvisoryDispatchLock::new(
            self.connector.clone(),
            self.schema.dispatch_lock_key(),
        ))
    }

    fn now(&self) -> i64 {
        PgStore::now(self)
    }

    fn running_tasks(&self) -> Result<Vec<RunningTask>> {
        self.read(running_tasks)
    }

    fn running_counts(&self) -> Result<RunningCounts> {
        self.read(|c| {
            let rows = c.query(
                "SELECT COALESCE(assignee, ''), COUNT(*) FROM tasks WHERE status = 'running' \
                 GROUP BY assignee",
                &[],
            )?;
            let mut counts = RunningCounts::default();
            for r in &rows {
                let assignee: String = r.try_get(0)?;
                let n: i64 = r.try_get(1)?;
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
            all(c.query(sql, &[])?, |r| {
                Ok(Candidate {
                    id: r.try_get(0)?,
                    assignee: opt_str(r, 1)?.filter(|a| !a.trim().is_empty()),
                    status: status_of(r.try_get(2)?),
                    workspace_kind: opt_str(r, 3)?.unwrap_or_default(),
                    workspace_path: opt_str(r, 4)?,
                })
            })
        })
    }

    fn respawn_guard_facts(
        &self,
        task_id: &str,
        success_since: i64,
        comments_since: i64,
    ) -> Result<GuardFacts> {
        // The probe alone answers for a fresh task (nearly every
        // candidate): one statement, no snapshot transaction around it.
        if let GuardProbe::Done(facts) = self.read(|c| guard_probe(c, task_id, comments_since))? {
            return Ok(facts);
        }
        self.read_snapshot(|c| guard_facts(c, task_id, success_since, comments_since))
    }

    fn respawn_guard_facts_of(
        &self,
        task_ids: &[String],
        success_since: i64,
        comments_since: i64,
    ) -> Result<Vec<GuardFacts>> {
        // One statement (one snapshot, one round trip) for the batch.
        self.read(|c| guard_facts_of(c, task_ids, success_since, comments_since))
    }

    fn board_version(&self) -> Result<Option<u64>> {
        // The version row every write transaction bumps in its commit: one
        // indexed single-row read in autocommit (one round trip).
        self.read(|c| {
            let v: i64 = c.query_one(VERSION_QUERY, &[])?.try_get(0)?;
            Ok(Some(v as u64))
        })
    }

    fn extend_claim(&self, req: &ExtendClaim) -> Result<bool> {
        self.write(|tx| {
            let n = tx.execute(
                "UPDATE tasks SET claim_expires = $1 WHERE id = $2 AND status = 'running' \
                 AND claim_lock IS NOT DISTINCT FROM $3::TEXT AND claim_expires IS NOT NULL \
                 AND claim_expires < $4 \
                 AND ($5::BIGINT IS NULL OR current_run_id IS NOT DISTINCT FROM $5)",
                &[
                    &req.new_expires,
                    &req.task_id,
                    &req.claim_lock,
                    &tx.now,
                    &req.run_id,
                ],
            )?;
            if n != 1 {
                return Ok(false);
            }
            let run_id = tx.task(&req.task_id)?.and_then(|t| t.current_run_id);
            if let Some(run) = run_id {
                tx.execute(
                    "UPDATE task_runs SET claim_expires = $1 WHERE id = $2",
                    &[&req.new_expires, &run],
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
            let n = tx.execute(
                "UPDATE tasks SET claim_expires = $1 WHERE id = $2 AND status = 'running' \
                 AND claim_lock IS NOT DISTINCT FROM $3::TEXT \
                 AND ($4::BIGINT IS NULL OR current_run_id IS NOT DISTINCT FROM $4)",
                &[&req.until, &req.task_id, &req.claim_lock, &req.run_id],
            )?;
            if n != 1 {
                return Ok(false);
            }
            let run_id = tx.task(&req.task_id)?.and_then(|t| t.current_run_id);
            if let Some(run) = run_id {
                tx.execute(
                    "UPDATE task_runs SET claim_expires = $1 WHERE id = $2",
                    &[&req.until, &run],
                )?;
            }
            let payload = payload::reclaim_deferred(
                &req.reason,
                req.claim_lock.as_deref(),
                req.until,
                &req.extra,
            );
            tx.append_event(
                &req.task_id,
                EventKind::ReclaimDeferred,
                Some(payload),
                run_id,
            )?;
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
        self.write(|tx| batch::set_worker(tx, req))
    }

    fn assign_default(&self, task_id: &str, assignee: &str) -> Result<bool> {
        self.write(|tx| {
            let n = tx.execute(
                "UPDATE tasks SET assignee = $1 WHERE id = $2 \
                 AND (assignee IS NULL OR assignee = '')",
                &[&assignee, &task_id],
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
            if recovery::last_event_is_guard(tx, task_id, reason)? {
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
            match c.query_opt(
                "SELECT pid, start_time, boot_id, host FROM kanban_rs_workers WHERE run_id = $1",
                &[&run_id],
            )? {
                Some(r) => record_at(&r, 0),
                None => Ok(None),
            }
        })
    }

    fn finished_workers(&self, ended_before: i64) -> Result<Vec<FinishedWorker>> {
        self.read(|c| {
            all(
                c.query(
                    "SELECT w.run_id, w.task_id, r.ended_at, w.pid, w.start_time, w.boot_id, w.host \
                     FROM kanban_rs_workers w JOIN task_runs r ON r.id = w.run_id \
                     WHERE r.ended_at IS NOT NULL AND r.ended_at < $1 ORDER BY w.run_id",
                    &[&ended_before],
                )?,
                |r| {
                    Ok(FinishedWorker {
                        run_id: r.try_get(0)?,
                        task_id: r.try_get(1)?,
                        ended_at: r.try_get(2)?,
                        worker: WorkerRecord {
                            pid: r.try_get(3)?,
                            start_time: opt_i64(r, 4)?,
                            boot_id: opt_str(r, 5)?,
                            host: opt_str(r, 6)?,
                        },
                    })
                },
            )
        })
    }

    fn forget_worker(&self, run_id: i64) -> Result<()> {
        self.write(|tx| {
            tx.execute(
                "DELETE FROM kanban_rs_workers WHERE run_id = $1",
                &[&run_id],
            )?;
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

    fn renew_host_lease(&self, lease: &HostLease) -> Result<HostRecord> {
        let now = self.now();
        self.read(|db| crate::hosts::renew(db, lease, now))
    }

    fn hosts(&self) -> Result<Vec<HostRecord>> {
        self.read(crate::hosts::hosts)
    }

    fn release_supervision(&self, task_ids: &[String]) -> Result<()> {
        if task_ids.is_empty() {
            return Ok(());
        }
        self.write(|tx| recovery::release_supervision(tx, task_ids))
    }

    fn claim_batch(&self, req: &ClaimBatch) -> Result<Vec<kanban_store::ClaimOutcome>> {
        self.write(|tx| crate::dispatch_bulk::claim_batch(tx, req))
    }

    fn record_launches(&self, req: &LaunchBatch) -> Result<LaunchesRecorded> {
        self.write(|tx| crate::dispatch_bulk::record_launches(tx, req))
    }

    fn regate(&self, req: &Regate) -> Result<Regated> {
        // Nothing new since the last pass (the idle case): one statement
        // in autocommit, no snapshot transaction (two round trips fewer).
        if let RegateScope::ChangedSince(since) = req.scope {
            let cursor = self.read(latest_event)?;
            if since >= cursor {
                return Ok(Regated {
                    promoted: 0,
                    cursor,
                });
            }
        }
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
