//! Store operations only the dispatcher needs, as a separate capability
//! trait on top of [`Store`]. Each state-changing method is one write
//! transaction that writes the row(s), closes/opens the run and appends
//! the event(s) together, guarded by a compare-and-swap on what the
//! dispatcher saw (claim lock, run id, pid), so a decision made on a stale
//! read can never clobber a newer attempt.
//!
//! The dispatcher decides (is the worker alive? which exit class? is this
//! crash systemic?); the store applies and does the failure accounting
//! (circuit breaker) inside the same transaction as the release.
//!
//! # Concurrency contract
//!
//! On top of [`Store`]'s, for any number of dispatchers (processes, hosts)
//! on one board:
//! - **Claims and ceilings are atomic with respect to every other
//!   claimer.** Each claim of [`DispatchStore::claim_batch`] is the
//!   compare-and-swap of `Store::claim_task`, with the ceilings counted in
//!   the same transaction as the claim is written (claims earlier in the
//!   batch count toward later ones), so no interleaving of batches and
//!   single claims exceeds a cap or lets two claimers win one task.
//! - **Run-id fencing.** Every release, extension, deferral, spawn failure
//!   and worker/workspace record names the attempt it was decided on
//!   (claim lock, run id, pid) and is a compare-and-swap on it inside the
//!   write: when the attempt moved on it writes nothing and reports so
//!   (`false`, `Released::released == false`). A decision made on a stale
//!   read never touches a newer attempt.
//! - **First decision wins.** [`DispatchStore::record_intent`] keeps the
//!   first intent recorded for a run.
//! - **Reads are snapshots.** `running_tasks`, `dispatch_candidates`,
//!   `respawn_guard_facts(_of)` and the other reads each answer from one
//!   committed state; `regate`'s cursor is an event id under the
//!   [`Store`] event-order rule, so a `ChangedSince` pass misses no change.
//! - **No missed commit.** When a commit to the board returned before a
//!   call to [`DispatchStore::board_version`] began, that call's value
//!   differs from the previous call's on the same handle (the
//!   [`crate::watch::ChangeProbe`] rule, for the store's own handle).

use kanban_core::{EventKind, RunOutcome, Status};
use serde_json::Value;

use crate::{Ceilings, ClaimOutcome, ClaimRequest, Result, Store};

/// Our record of a worker process (table `kanban_rs_workers`, keyed by run
/// id): the pid plus what makes it unambiguous.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkerRecord {
    pub pid: i64,
    /// Process start time, clock ticks since boot (`/proc/<pid>/stat` 22).
    pub start_time: Option<i64>,
    /// `/proc/sys/kernel/random/boot_id` of the machine that spawned it.
    pub boot_id: Option<String>,
    pub host: Option<String>,
}

/// A running task with what the liveness checks need.
#[derive(Debug, Clone, PartialEq)]
pub struct RunningTask {
    pub id: String,
    pub assignee: Option<String>,
    pub claim_lock: Option<String>,
    pub claim_expires: Option<i64>,
    pub worker_pid: Option<i64>,
    pub last_heartbeat_at: Option<i64>,
    pub run_id: Option<i64>,
    /// Start of the current attempt: the open run's start, else the task's
    /// first start.
    pub attempt_started_at: Option<i64>,
    pub max_runtime_seconds: Option<i64>,
    /// Our record of the current attempt's worker, when we spawned it.
    pub worker: Option<WorkerRecord>,
    /// The dispatcher process that claimed the current attempt and has not
    /// recorded its worker yet (table `kanban_rs_launches`). A claim whose
    /// launcher is gone will never get a worker: it is released at once
    /// instead of waiting for the claim TTL.
    pub launcher: Option<WorkerRecord>,
    /// The long-lived dispatcher (gateway) that started the current
    /// attempt's worker and watches it (table `kanban_rs_supervisors`):
    /// a worker found dead with its supervisor gone died with it.
    pub supervisor: Option<WorkerRecord>,
    /// A release of the current attempt decided before its worker was
    /// signalled (table `kanban_rs_intents`): whoever finds the worker
    /// gone records that outcome, not a crash.
    pub intent: Option<TerminationIntent>,
}

/// A release decided for a running attempt, recorded before its worker is
/// signalled, so the kill and its classification are one decision whatever
/// process later finds the worker gone (ours; ignored by the reference).
#[derive(Debug, Clone, PartialEq)]
pub struct TerminationIntent {
    pub run_id: i64,
    pub task_id: String,
    /// What the release will record (`timeout`, `stale`, `ttl`).
    pub kind: String,
    /// Facts of the decision, for the release's event and run.
    pub detail: Value,
    pub decided_at: i64,
}

/// A spawn failure whose retry time is not recorded yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingSpawnRetry {
    pub task_id: String,
    /// The `spawn_failed` run.
    pub run_id: i64,
    /// Consecutive failures, this one included.
    pub failures: i64,
    pub failed_at: i64,
}

/// When a task whose worker could not be started may be tried again,
/// kept as `next_attempt_at` in the `spawn_failed` run's metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpawnRetry {
    pub task_id: String,
    pub run_id: i64,
    pub next_attempt_at: i64,
}

/// Key of the retry time in a `spawn_failed` run's metadata.
pub const NEXT_ATTEMPT_KEY: &str = "next_attempt_at";
/// Key marking a run released without a failure because its worker's
/// death was explained by its host or gateway going away.
pub use kanban_core::transitions::dispatcher::EXCUSED_KEY;

/// Running tasks, board-wide and per assignee.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunningCounts {
    pub total: i64,
    pub by_assignee: std::collections::BTreeMap<String, i64>,
}

/// A claimable task (ready or review, unclaimed), in dispatch order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    pub id: String,
    pub assignee: Option<String>,
    pub status: Status,
    /// The task's workspace kind and stored path, so the dispatcher can
    /// make a scratch workspace while the claim commits.
    pub workspace_kind: String,
    pub workspace_path: Option<String>,
}

/// What the respawn guard looks at, for one task.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GuardFacts {
    pub last_failure_error: Option<String>,
    /// Outcome and end time of the most recently ended run.
    pub latest_run: Option<(String, i64)>,
    /// End time of the newest `completed` run ended at or after the
    /// success window's start.
    pub recent_completion: Option<i64>,
    /// A `status`/`promoted`/`unblocked`/`reclaimed` event at or after that
    /// completion (an explicit "run it again").
    pub requeued_after_completion: bool,
    /// Bodies of comments created at or after the PR window's start.
    pub recent_comments: Vec<String>,
    /// The latest run failed to spawn: when the next attempt is due.
    pub spawn_retry_at: Option<i64>,
}

/// Extend the expired claim of a worker that is alive and heartbeating.
#[derive(Debug, Clone)]
pub struct ExtendClaim {
    pub task_id: String,
    /// CAS: the lock seen.
    pub claim_lock: Option<String>,
    /// CAS: the attempt seen. One dispatcher claims every attempt under
    /// the same lock, so only the run id tells attempt 1 from attempt 2.
    pub run_id: Option<i64>,
    pub new_expires: i64,
    /// For the event payload.
    pub worker_pid: Option<i64>,
    pub claim_expires_was: Option<i64>,
    pub last_heartbeat_at: Option<i64>,
}

/// Hold a claim whose worker is still being terminated (or survived it).
#[derive(Debug, Clone)]
pub struct DeferReclaim {
    pub task_id: String,
    pub claim_lock: Option<String>,
    /// CAS: the attempt the deferral was decided for (see [`ExtendClaim`]).
    pub run_id: Option<i64>,
    pub until: i64,
    /// `reason` of the `reclaim_deferred` event.
    pub reason: String,
    /// Merged into the event payload (termination facts).
    pub extra: Value,
}

/// Whether and how a release counts toward the circuit breaker.
#[derive(Debug, Clone, PartialEq)]
pub enum FailurePolicy {
    /// TTL reclaim, stale reclaim, rate limit: no failure.
    NotCounted,
    /// Crash / timeout: counter + 1; trips at the task's `max_retries`,
    /// else `dispatcher_limit`. `forced_limit` (a systemic crash) wins over
    /// both. `extra` is merged into the `gave_up` payload.
    Counted {
        dispatcher_limit: i64,
        forced_limit: Option<i64>,
        extra: Value,
    },
    /// Protocol violation: trips only when the trailing streak of
    /// violation runs (rate-limited runs skipped) reaches the task's
    /// `max_retries`, else `default_limit`; below it the counter is not
    /// touched.
    ViolationStreak { default_limit: i64, extra: Value },
}

/// running → ready (or blocked when the breaker trips).
#[derive(Debug, Clone)]
pub struct ReleaseRunning {
    pub task_id: String,
    /// CAS: `claim_lock IS ?`.
    pub claim_lock: Option<String>,
    /// CAS: `current_run_id IS ?`.
    pub run_id: Option<i64>,
    /// CAS: `worker_pid = ?` when set.
    pub worker_pid: Option<i64>,
    /// TTL path: only while the claim is still expired.
    pub require_expired: bool,
    /// Outcome (and status) of the closed run.
    pub outcome: RunOutcome,
    pub event: EventKind,
    /// The run's `error`.
    pub error: String,
    pub payload: Value,
    /// Run metadata; `None` stores the payload.
    pub run_metadata: Option<Value>,
    /// Clear `last_heartbeat_at` (timeout, stale).
    pub clear_heartbeat: bool,
    /// Stamp `last_failure_error` without counting (rate limit, violation).
    pub stamp_error: bool,
    pub failure: FailurePolicy,
}

/// What a release did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Released {
    /// False when the CAS lost (the task moved on): nothing written.
    pub released: bool,
    /// The breaker tripped: the task is blocked (`gave_up` event).
    pub auto_blocked: bool,
    pub run_id: Option<i64>,
    pub failures: i64,
}

/// The claim succeeded but the worker could not be started.
#[derive(Debug, Clone)]
pub struct SpawnFailure {
    pub task_id: String,
    /// CAS: the run the claim opened.
    pub run_id: Option<i64>,
    pub error: String,
    pub failure_limit: i64,
}

/// Persist the resolved workspace of a claimed attempt.
#[derive(Debug, Clone)]
pub struct SetWorkspace {
    pub task_id: String,
    pub run_id: Option<i64>,
    pub path: String,
    pub branch: Option<String>,
    /// One-time `tip_scratch_workspace` message to record with it.
    pub tip: Option<String>,
}

/// Record the worker the dispatcher just started.
#[derive(Debug, Clone)]
pub struct SetWorker {
    pub task_id: String,
    pub run_id: Option<i64>,
    pub worker: WorkerRecord,
}

/// One task of a [`ClaimBatch`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchClaim {
    pub task_id: String,
    /// review → running (`claim_review_task`) instead of ready → running.
    pub review: bool,
}

/// Several claims in ONE write transaction, each exactly the compare-and-
/// swap of `Store::claim_task` with the ceilings counted inside the same
/// transaction (a claim of this batch counts toward the next one's
/// ceiling).
#[derive(Debug, Clone)]
pub struct ClaimBatch {
    pub claims: Vec<BatchClaim>,
    pub claim_lock: String,
    pub ttl_seconds: i64,
    pub ceilings: Ceilings,
    /// The claiming process, recorded with every claim until its worker
    /// (or spawn failure) is recorded, so the claims of a dispatcher that
    /// dies in between can be released promptly.
    pub launcher: Option<WorkerRecord>,
}

impl ClaimBatch {
    /// The single-claim request of one batch entry.
    pub fn request(&self, claim: &BatchClaim) -> ClaimRequest {
        ClaimRequest {
            task_id: claim.task_id.clone(),
            claim_lock: self.claim_lock.clone(),
            ttl_seconds: self.ttl_seconds,
            review: claim.review,
            ceilings: self.ceilings.clone(),
        }
    }
}

/// What became of a batch of claimed attempts, recorded in ONE write
/// transaction: workspaces, then workers, then spawn failures.
#[derive(Debug, Clone, Default)]
pub struct LaunchBatch {
    pub workspaces: Vec<SetWorkspace>,
    pub workers: Vec<SetWorker>,
    pub failures: Vec<SpawnFailure>,
}

impl LaunchBatch {
    pub fn is_empty(&self) -> bool {
        self.workspaces.is_empty() && self.workers.is_empty() && self.failures.is_empty()
    }
}

/// Per entry of a [`LaunchBatch`], in order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LaunchesRecorded {
    /// False when the attempt moved on before its worker was recorded.
    pub workers: Vec<bool>,
    pub failures: Vec<Released>,
}

/// Which tasks a promotion pass re-gates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RegateScope {
    /// Every todo/blocked task (the safety-net sweep).
    All,
    /// Tasks touched by events after this cursor, and their children.
    ChangedSince(i64),
}

#[derive(Debug, Clone, Copy)]
pub struct Regate {
    pub scope: RegateScope,
    pub failure_limit: Option<i64>,
    /// Count what would be promoted; write nothing.
    pub dry_run: bool,
}

impl Regate {
    /// Every todo and blocked task of the board, promoted for real: what
    /// `Store::recompute_ready` does in each backend. The regate reads
    /// first and takes the write lock only for what it found, so a sweep
    /// that finds nothing (the usual `kanban list`) never holds the lock
    /// while workers wait.
    pub fn whole_board(failure_limit: Option<i64>) -> Regate {
        Regate {
            scope: RegateScope::All,
            failure_limit,
            dry_run: false,
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Regated {
    pub promoted: usize,
    /// Highest event id seen: the cursor for the next `ChangedSince`.
    pub cursor: i64,
}

/// A worker we spawned whose run has ended (completed, blocked, reclaimed,
/// archived...): it should exit on its own; if it lingers, it is ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FinishedWorker {
    pub run_id: i64,
    pub task_id: String,
    pub ended_at: i64,
    pub worker: WorkerRecord,
}

/// A gateway's renewal of its host's lease on a board (table
/// `kanban_rs_hosts`, one row per host id).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostLease {
    /// The host part of the gateway's claim locks (`KANBAN_HOST_ID` or
    /// the host name).
    pub host_id: String,
    pub gateway_pid: i64,
    /// When this gateway started (a restarted gateway replaces the row).
    pub started_at: i64,
    /// The lease runs until the store's now plus this.
    pub lease_seconds: i64,
}

/// A host as the board knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostRecord {
    pub host_id: String,
    pub gateway_pid: i64,
    pub started_at: i64,
    pub lease_expires: i64,
    /// The last renewal.
    pub last_seen: i64,
}

impl HostRecord {
    /// The lease still runs at `now`: its gateway is presumed alive.
    pub fn lease_live(&self, now: i64) -> bool {
        self.lease_expires >= now
    }
}

/// The dispatcher's store capability.
pub trait DispatchStore: Store {
    /// The store clock's "now" (integer Unix seconds).
    fn now(&self) -> i64;
    /// Every running task (one query).
    fn running_tasks(&self) -> Result<Vec<RunningTask>>;
    fn running_counts(&self) -> Result<RunningCounts>;
    /// Unclaimed tasks in `status` (ready or review), priority DESC then
    /// oldest first.
    fn dispatch_candidates(&self, status: Status) -> Result<Vec<Candidate>>;
    /// Facts for the respawn guard, windows given as their start times.
    fn respawn_guard_facts(
        &self,
        task_id: &str,
        success_since: i64,
        comments_since: i64,
    ) -> Result<GuardFacts>;
    /// [`DispatchStore::respawn_guard_facts`] of several tasks in one read
    /// (one snapshot): one entry per id, in order; an unknown id gets the
    /// empty facts. A pass asks once for its candidates instead of once
    /// per candidate (a round trip each on a server backend).
    fn respawn_guard_facts_of(
        &self,
        task_ids: &[String],
        success_since: i64,
        comments_since: i64,
    ) -> Result<Vec<GuardFacts>>;
    /// `claim_extended`; false when the CAS lost.
    fn extend_claim(&self, req: &ExtendClaim) -> Result<bool>;
    /// `reclaim_deferred`; false when the CAS lost.
    fn defer_reclaim(&self, req: &DeferReclaim) -> Result<bool>;
    fn release_running(&self, req: &ReleaseRunning) -> Result<Released>;
    /// `spawn_failed` below the limit, `gave_up` (blocked) at it.
    fn record_spawn_failure(&self, req: &SpawnFailure) -> Result<Released>;
    fn set_workspace(&self, req: &SetWorkspace) -> Result<bool>;
    /// Worker pid on task and run, our identity row, `spawned` event.
    fn set_worker(&self, req: &SetWorker) -> Result<bool>;
    /// `kanban.default_assignee` for a still-unassigned task; `assigned`
    /// event with `source`.
    fn assign_default(&self, task_id: &str, assignee: &str) -> Result<bool>;
    /// `respawn_guarded{reason}` event.
    fn note_respawn_guarded(&self, task_id: &str, reason: &str) -> Result<()>;
    fn regate(&self, req: &Regate) -> Result<Regated>;
    /// Our record of the worker of run `run_id`, if we spawned one.
    fn worker_record(&self, run_id: i64) -> Result<Option<WorkerRecord>>;
    /// Recorded workers whose run ended before `ended_before`.
    fn finished_workers(&self, ended_before: i64) -> Result<Vec<FinishedWorker>>;
    /// Drop the record of a worker known to be gone (bookkeeping only, no
    /// board state: no event).
    fn forget_worker(&self, run_id: i64) -> Result<()>;
    /// Ready tasks whose latest run failed to spawn and has no retry time.
    fn pending_spawn_retries(&self) -> Result<Vec<PendingSpawnRetry>>;
    /// Record retry times (one transaction; a run that is no longer its
    /// task's latest, or already has one, is left alone). Returns how many
    /// were written.
    fn schedule_spawn_retries(&self, retries: &[SpawnRetry]) -> Result<usize>;
    /// Record a release decided for a running attempt before signalling
    /// its worker; false when the attempt moved on (do not signal). The
    /// first decision for a run stays.
    fn record_intent(&self, intent: &TerminationIntent) -> Result<bool>;
    /// Excused deaths in the trailing run of deaths (excused or crashed)
    /// of a task: how many excuses it has used.
    fn excused_death_streak(&self, task_id: &str) -> Result<i64>;
    /// Forget who supervises the current attempts of these tasks (their
    /// dispatcher is short-lived and does not watch them).
    fn release_supervision(&self, task_ids: &[String]) -> Result<()>;
    /// Register or renew a host's lease in one atomic upsert: `last_seen`
    /// is now and `lease_expires` now plus `lease_seconds`. Bookkeeping
    /// only (no event). Returns the row as written.
    fn renew_host_lease(&self, lease: &HostLease) -> Result<HostRecord>;
    /// Every host registered on the board, by host id (expired leases
    /// included: a reader decides what an expired lease means).
    fn hosts(&self) -> Result<Vec<HostRecord>>;

    /// The board's change counter: an opaque value that differs from this
    /// handle's previous reading whenever any connection (this one
    /// included) committed a change to the board in between. Time passing
    /// changes nothing here. Read it outside a [`DispatchStore::read_scope`].
    /// A dispatcher whose last pass found nothing to do skips the next
    /// one's reads while it is unchanged and nothing is due. `None`: the
    /// store cannot tell, and every pass reads everything (the default).
    fn board_version(&self) -> Result<Option<u64>> {
        Ok(None)
    }

    /// Create the dispatcher's own tables and indexes when missing (once
    /// per dispatcher; every query also works without them).
    fn prepare_dispatch(&self) -> Result<()> {
        Ok(())
    }

    /// Claim a batch; one outcome per claim, in order. Once a board-wide
    /// ceiling is reached the remaining claims report it untried; a
    /// candidate deleted meanwhile reports `Lost` and the batch goes on;
    /// each winner's `launcher` is recorded with its claim. Required: a
    /// loop over `claim_task` would fail the batch on a deleted task and
    /// drop the launcher records.
    fn claim_batch(&self, batch: &ClaimBatch) -> Result<Vec<ClaimOutcome>>;

    /// The board's dispatch lock (not taken): one pass at a time on a
    /// board, across processes and hosts (see [`DispatchLock`]).
    fn dispatch_lock(&self) -> std::sync::Arc<dyn DispatchLock>;

    /// Let this thread's reads share one read transaction until the guard
    /// drops: a pass makes many small reads, and each one on its own pays
    /// for taking and releasing the backend's read lock. A write of this
    /// store ends the shared transaction first (it always sees the latest
    /// state), and the next read starts a fresh one. Other threads read as
    /// usual. The default reads as usual.
    fn read_scope(&self) -> ReadScope<'_> {
        ReadScope::default()
    }

    /// Record a batch of launches (see [`LaunchBatch`]).
    fn record_launches(&self, batch: &LaunchBatch) -> Result<LaunchesRecorded> {
        for w in &batch.workspaces {
            self.set_workspace(w)?;
        }
        Ok(LaunchesRecorded {
            workers: batch
                .workers
                .iter()
                .map(|w| self.set_worker(w))
                .collect::<Result<_>>()?,
            failures: batch
                .failures
                .iter()
                .map(|f| self.record_spawn_failure(f))
                .collect::<Result<_>>()?,
        })
    }
}

/// Guard of [`DispatchStore::read_scope`]: ends the shared read
/// transaction when dropped.
#[derive(Default)]
pub struct ReadScope<'a> {
    end: Option<Box<dyn FnOnce() + 'a>>,
}

impl<'a> ReadScope<'a> {
    /// A scope that runs `end` when dropped.
    pub fn new(end: impl FnOnce() + 'a) -> ReadScope<'a> {
        ReadScope {
            end: Some(Box::new(end)),
        }
    }
}

impl Drop for ReadScope<'_> {
    fn drop(&mut self) {
        if let Some(end) = self.end.take() {
            end();
        }
    }
}

impl std::fmt::Debug for ReadScope<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReadScope")
            .field("shared", &self.end.is_some())
            .finish()
    }
}

/// The lock that lets one dispatch pass run on a board at a time, across
/// processes and hosts (and, on SQLite, against the Python dispatcher).
///
/// It fails closed: `Err` means "cannot tell", and the caller skips its
/// pass rather than dispatch unguarded.
pub trait DispatchLock: Send + Sync + std::fmt::Debug {
    /// Take the lock without waiting. `Ok(None)`: someone else holds it
    /// (another handle of this process included).
    fn try_acquire(&self) -> Result<Option<HeldDispatchLock>>;
    /// What the lock is, for messages (`<db>.dispatch.lock`).
    fn describe(&self) -> String;
}

/// A held dispatch lock; released when dropped.
pub struct HeldDispatchLock {
    _guard: Box<dyn Send + Sync>,
    what: String,
}

impl HeldDispatchLock {
    /// Wrap a backend's guard; `what` describes the lock.
    pub fn new(guard: impl Send + Sync + 'static, what: impl Into<String>) -> HeldDispatchLock {
        HeldDispatchLock {
            _guard: Box::new(guard),
            what: what.into(),
        }
    }
}

impl std::fmt::Debug for HeldDispatchLock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HeldDispatchLock")
            .field("lock", &self.what)
            .finish_non_exhaustive()
    }
}
