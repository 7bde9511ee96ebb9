//! One dispatch pass (reference `dispatch_once`, §3.1), step by step:
//!
//! 0. when the last pass found nothing to do and neither the board (its
//!    version) nor anything else it depended on changed and nothing is
//!    due, return its answer without reading ([`crate::quiet`]); else take
//!    the board's dispatch lock (fail closed; a dry run reads only);
//! 1. reap our exited workers, release tasks whose termination finished,
//!    end workers that outlived their finished attempt; carry out releases
//!    decided before their worker was signalled (by any process);
//! 2. TTL reclaim (extend claims of live, heartbeating workers), and at
//!    once the claims whose launching dispatcher died before recording
//!    a worker;
//! 3. stale-heartbeat reclaim;
//! 4. crash detection with exit classification (deaths explained by the
//!    host or the gateway going away requeue without a failure);
//! 5. max-runtime kills;
//! 6. promotion (scoped to what changed, with a periodic full sweep);
//! 7. capacity;
//! 8. ready candidates: assignee / profile / per-profile cap / respawn
//!    guard; then, per batch of candidates, one transaction claiming them
//!    all (ceilings checked inside it), workspaces and spawns, and one
//!    transaction recording every worker (or spawn failure, counted by the
//!    circuit breaker);
//! 9. review candidates (unless `kanban.review_dispatch` is off), under
//!    the same ceilings, per-profile caps and respawn guards (bar the
//!    active-PR one) as ready ones;
//! 10. retry times for failed spawns (exponential backoff with jitter),
//!     and when a long-lived caller should run the next pass without a
//!     board change ([`DispatchResult::next_pass_in_ms`]).
//!
//! Terminations never block the pass: SIGTERM is sent and the pass moves
//! on; the task is released once its process group is gone (later in the
//! same pass if it died at once, else on a later pass).

use std::time::{Duration, Instant};

use kanban_store::dispatch_ops::{Regate, RegateScope, SpawnRetry};

use crate::dispatcher::{Dispatcher, DispatcherParts};
use crate::error::Result;
use crate::options::DispatchOptions;
use crate::quiet::{PassFacts, QuietCheck};
use crate::result::DispatchResult;
use crate::terminate::{KILL_WAIT, TERMINATE_GRACE};

/// How often promotion re-gates the whole board as a safety net (events
/// that do not name the task they free, e.g. a Python-side delete).
pub const FULL_REGATE_INTERVAL: Duration = Duration::from_secs(300);
/// While terminations are under way, how soon to look again (their tasks
/// are released by the next pass after their worker is gone).
pub const TERMINATION_RECHECK: Duration = Duration::from_millis(500);
/// Added to a wake-up at a whole second, so the store's clock (integer
/// seconds) has reached it.
const WAKE_MARGIN: Duration = Duration::from_millis(50);

impl Dispatcher {
    /// One pass over the board.
    pub fn dispatch_once(&self, opts: &DispatchOptions) -> Result<DispatchResult> {
        // Before the lock: a pass skipped because another host holds it
        // still shows this host alive.
        self.renew_host_lease_if_due(opts);
        // Nothing changed and nothing is due: the last pass's answer stands.
        let version = match self.quiet_check(opts, self.full_regate_due())? {
            QuietCheck::Quiet {
                result,
                now,
                due_at,
            } => {
                let mut result = *result;
                if let Some(at) = due_at {
                    wake_at(&mut result, now, at);
                }
                return Ok(result);
            }
            QuietCheck::Full(version) => version,
        };
        let mut facts = PassFacts {
            version,
            ..PassFacts::default()
        };
        // A dry run writes nothing, so it does not need the writer's lock.
        let _lock = if opts.dry_run {
            None
        } else {
            match self.dispatch_lock.try_acquire() {
                Ok(Some(lock)) => Some(lock),
                Ok(None) => return Ok(DispatchResult::locked(None)),
                Err(e) => {
                    tracing::warn!(board = %self.board.slug, "dispatch skipped: {e}");
                    return Ok(DispatchResult::locked(Some(e.to_string())));
                }
            }
        };
        let mut result = DispatchResult {
            dry_run: opts.dry_run,
            ..Default::default()
        };
        // The reads that decide what to do share one read transaction (one
        // read lock instead of one per read): each write ends it and the
        // next read starts a fresh one; it ends for good at the first claim.
        let mut reads = Some(self.store.read_scope());
        let now = self.store.now();
        if !opts.dry_run {
            if !self.state().prepared {
                self.store.prepare_dispatch()?;
                self.state().prepared = true;
            }
            self.spawner.reap();
            self.apply_finished_terminations(opts, &mut result)?;
            facts.due(self.end_lingering_workers(now)?);
        }
        let running = self.store.running_tasks()?;
        facts.running = !running.is_empty();
        let mut handled = std::collections::HashSet::new();
        self.honour_intents(opts, &running, &mut handled, &mut result)?;
        self.reclaim_expired(opts, now, &running, &mut handled, &mut result)?;
        self.reclaim_orphaned_launches(opts, now, &running, &mut handled, &mut result)?;
        self.reclaim_stale(opts, now, &running, &mut handled, &mut result)?;
        self.detect_crashes(opts, now, &running, &mut handled, &mut result)?;
        self.enforce_max_runtime(opts, now, &running, &mut handled, &mut result)?;
        result.promoted = self.promote(opts)?;
        // Failures left by another dispatcher first, then our own.
        self.schedule_spawn_retries(opts, now, &mut result)?;
        let notes = self.dispatch_candidates(opts, now, &mut result, &mut reads)?;
        facts.due(notes.guard_until);
        facts.unresolved = notes.unresolved;
        // Spawn failures are recorded only for tasks this pass claimed
        // (another dispatcher waits for our lock).
        if !result.claim_durations.is_empty() {
            self.schedule_spawn_retries(opts, now, &mut result)?;
        }
        if !opts.dry_run && !opts.supervises_workers && !result.spawned.is_empty() {
            let ids: Vec<String> = result.spawned.iter().map(|s| s.task_id.clone()).collect();
            self.store.release_supervision(&ids)?;
        }
        if let Some(at) = notes.guard_until {
            // The earliest respawn guard of this pass ends.
            wake_at(&mut result, now, at);
        }
        // Before the terminations, which may wait.
        drop(reads);
        if !opts.dry_run {
            // Workers that died at once on SIGTERM are released now.
            self.terminator.poll();
            self.apply_finished_terminations(opts, &mut result)?;
            if let Some(wait) = opts.settle_terminations
                && self.terminator.pending_count() > 0
            {
                self.terminator.wait_idle(wait);
                self.apply_finished_terminations(opts, &mut result)?;
            }
        }
        result.terminating = self
            .state()
            .pending
            .values()
            .map(|p| p.task_id.clone())
            .collect();
        result.terminating.sort();
        if !result.terminating.is_empty() {
            result.wake_in(TERMINATION_RECHECK);
        }
        self.remember_quiet(opts, facts, &result);
        Ok(result)
    }

    /// Step 10: give every spawn failure without one its retry time, and
    /// ask to be woken for the earliest.
    fn schedule_spawn_retries(
        &self,
        opts: &DispatchOptions,
        now: i64,
        result: &mut DispatchResult,
    ) -> Result<()> {
        if opts.dry_run {
            return Ok(());
        }
        let pending = self.store.pending_spawn_retries()?;
        if pending.is_empty() {
            return Ok(());
        }
        let retries: Vec<SpawnRetry> = pending
            .into_iter()
            .map(|p| SpawnRetry {
                next_attempt_at: opts
                    .spawn_retry
                    .next_attempt(&p.task_id, p.failures, p.failed_at),
                task_id: p.task_id,
                run_id: p.run_id,
            })
            .collect();
        self.store.schedule_spawn_retries(&retries)?;
        if let Some(first) = retries.iter().map(|r| r.next_attempt_at).min() {
            wake_at(result, now, first);
        }
        Ok(())
    }

    /// The next promotion re-gates the whole board: the first pass, and
    /// every [`FULL_REGATE_INTERVAL`].
    fn full_regate_due(&self) -> bool {
        let st = self.state();
        st.regate_cursor.is_none()
            || st
                .last_full_regate
                .is_none_or(|t| t.elapsed() >= FULL_REGATE_INTERVAL)
    }

    /// Step 6: re-gate what changed since the last pass; the whole board
    /// on the first pass and every [`FULL_REGATE_INTERVAL`].
    fn promote(&self, opts: &DispatchOptions) -> Result<usize> {
        let full = self.full_regate_due();
        let cursor = self.state().regate_cursor;
        let scope = match cursor {
            Some(c) if !full => RegateScope::ChangedSince(c),
            _ => RegateScope::All,
        };
        let out = self.store.regate(&Regate {
            scope,
            failure_limit: Some(opts.failure_limit),
            dry_run: opts.dry_run,
        })?;
        if !opts.dry_run {
            let mut st = self.state();
            st.regate_cursor = Some(out.cursor);
            if full {
                st.last_full_regate = Some(Instant::now());
            }
        }
        Ok(out.promoted)
    }
}

/// Ask `result` for a pass once the store's clock reads `at` (Unix seconds;
/// `now` is the store's reading, floored, so the wait is never short).
fn wake_at(result: &mut DispatchResult, now: i64, at: i64) {
    let secs = u64::try_from(at.saturating_sub(now)).unwrap_or(0);
    result.wake_in(Duration::from_secs(secs) + WAKE_MARGIN);
}

/// Convenience for short-lived callers: one pass with a throw-away
/// dispatcher. Its terminations cannot outlive it, so unless the options
/// say otherwise it waits for them (grace + kill wait) before returning.
pub fn dispatch_once(parts: DispatcherParts, opts: &DispatchOptions) -> Result<DispatchResult> {
    let mut opts = opts.clone();
    opts.settle_terminations
        .get_or_insert(TERMINATE_GRACE + KILL_WAIT + Duration::from_secs(1));
    Dispatcher::new(parts).dispatch_once(&opts)
}

#[cfg(test)]
#[path = "pass_tests.rs"]
pub(crate) mod tests;

#[cfg(test)]
#[path = "interop_tests.rs"]
mod interop_tests;

#[cfg(test)]
#[path = "retry_tests.rs"]
mod retry_tests;
