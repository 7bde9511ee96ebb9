//! Steps 2, 3 and 5 of a pass: TTL reclaim, stale-heartbeat reclaim and
//! max-runtime kills, plus releasing tasks whose worker termination has
//! finished (crash detection is in [`crate::crash`]).
//!
//! A task is only released once its worker is provably gone (dead, not
//! ours, or on another host), so a task never runs twice at once; while
//! its process group is being terminated it stays running. The release is
//! decided before the worker is signalled and recorded with the attempt
//! (`record_intent`): whichever process later finds the worker gone
//! records that outcome, never a crash by the signal that ended it.

use std::collections::HashSet;

use kanban_core::defaults::{LIVE_PID_HEARTBEAT_STALE_SECONDS, RECLAIM_DEFER_SECONDS};
use kanban_core::payload::{self, ClaimRelease};
use kanban_core::{EventKind, RunOutcome};
use kanban_store::dispatch_ops::{
    DeferReclaim, ExtendClaim, FailurePolicy, HostRecord, ReleaseRunning, Released, RunningTask,
    SetWorker, TerminationIntent, WorkerRecord,
};
use serde_json::{Value, json};

use crate::dispatcher::Dispatcher;
use crate::error::Result;
use crate::host_lease::{lease_live, lock_host};
use crate::liveness::WorkerIdentity;
use crate::options::DispatchOptions;
use crate::release::{PendingRelease, ReleaseWhy};
use crate::result::DispatchResult;
use crate::terminate::{Begun, TerminationOutcome, TerminationReport};

/// Heartbeat gap after which a long-running task counts as stale.
const STALE_HEARTBEAT_GAP_SECONDS: i64 = 3_600;

/// Where a running task's worker lives, from this process's point of view.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Locality {
    /// On this machine, this boot: liveness applies.
    Local(WorkerIdentity),
    /// Spawned on this machine before a reboot: certainly gone.
    Rebooted,
    /// Another machine, or no worker recorded: only the TTL applies.
    Remote,
}

impl Dispatcher {
    pub(crate) fn locality(&self, rt: &RunningTask) -> Locality {
        let Some(pid) = rt
            .worker_pid
            .and_then(|p| i32::try_from(p).ok())
            .filter(|p| *p > 0)
        else {
            return Locality::Remote;
        };
        let host = self.liveness.hostname();
        let lock_local = rt
            .claim_lock
            .as_deref()
            .is_some_and(|l| self.liveness.lock_is_host_local(l));
        if let Some(w) = rt.worker.as_ref().filter(|w| w.pid == i64::from(pid)) {
            let id = WorkerIdentity {
                pid,
                start_time: w.start_time.and_then(|t| u64::try_from(t).ok()),
            };
            // The instance (host or machine id and boot id), not the
            // hostname, decides: renaming the host must not orphan live
            // workers (#73277), and hosts sharing a kernel share pids.
            return match self.liveness.same_instance(w.boot_id.as_deref()) {
                Some(true) => Locality::Local(id),
                Some(false) if lock_local || w.host.as_deref() == Some(host.as_str()) => {
                    Locality::Rebooted
                }
                Some(false) => Locality::Remote,
                None if lock_local => Locality::Local(id),
                None => Locality::Remote,
            };
        }
        if lock_local {
            Locality::Local(WorkerIdentity::pid_only(pid))
        } else {
            Locality::Remote
        }
    }

    /// The claim is another host's and that host's gateway holds a live
    /// lease on the board.
    fn owner_holds_a_lease(
        &self,
        rt: &RunningTask,
        now: i64,
        hosts: &mut Option<Vec<HostRecord>>,
    ) -> Result<bool> {
        if self.locality(rt) != Locality::Remote {
            return Ok(false);
        }
        let Some(owner) = rt.claim_lock.as_deref().and_then(lock_host) else {
            return Ok(false);
        };
        if owner == self.liveness.hostname() {
            return Ok(false);
        }
        Ok(lease_live(self.hosts_once(hosts)?, owner, now))
    }

    fn live_identity(&self, rt: &RunningTask) -> Option<WorkerIdentity> {
        match self.locality(rt) {
            Locality::Local(id) if self.liveness.worker_alive(&id) => Some(id),
            _ => None,
        }
    }

    /// Step 2: expired claims.
    pub(crate) fn reclaim_expired(
        &self,
        opts: &DispatchOptions,
        now: i64,
        running: &[RunningTask],
        handled: &mut HashSet<String>,
        result: &mut DispatchResult,
    ) -> Result<()> {
        let mut hosts = None;
        for rt in running
            .iter()
            .filter(|r| r.claim_expires.is_some_and(|e| e < now))
        {
            handled.insert(rt.id.clone());
            if self.owner_holds_a_lease(rt, now, &mut hosts)? {
                // Its gateway is alive: it extends or releases the claim
                // itself; only it can see whether the worker runs.
                continue;
            }
            let heartbeat_stale = rt
                .last_heartbeat_at
                .is_some_and(|h| now - h > LIVE_PID_HEARTBEAT_STALE_SECONDS);
            let live = self.live_identity(rt);
            if live.is_some() && !heartbeat_stale {
                if !opts.dry_run {
                    self.store.extend_claim(&ExtendClaim {
                        task_id: rt.id.clone(),
                        claim_lock: rt.claim_lock.clone(),
                        run_id: rt.run_id,
                        new_expires: now + opts.claim_ttl_seconds,
                        worker_pid: rt.worker_pid,
                        claim_expires_was: rt.claim_expires,
                        last_heartbeat_at: rt.last_heartbeat_at,
                    })?;
                }
                continue;
            }
            let host_local = matches!(self.locality(rt), Locality::Local(_));
            let payload = reclaimed_payload(rt, now, host_local, heartbeat_stale);
            self.release_or_terminate(opts, rt, live, ReleaseWhy::Ttl { payload }, result)?;
        }
        Ok(())
    }

    /// Step 2b: claims whose launching dispatcher died between claiming
    /// and recording the worker (`RunningTask::launcher`). They would never
    /// get a worker; release them now rather than after the claim TTL.
    pub(crate) fn reclaim_orphaned_launches(
        &self,
        opts: &DispatchOptions,
        now: i64,
        running: &[RunningTask],
        handled: &mut HashSet<String>,
        result: &mut DispatchResult,
    ) -> Result<()> {
        for rt in running {
            if handled.contains(&rt.id) || rt.worker_pid.is_some_and(|p| p > 0) {
                continue;
            }
            let Some(launcher) = rt.launcher.as_ref().filter(|l| self.launcher_gone(l)) else {
                continue;
            };
            handled.insert(rt.id.clone());
            // The launcher may have died after spawning: adopt a worker of
            // this very attempt instead of releasing the task under it, or
            // the next spawn would run the task twice at once.
            if let Some(orphan) = rt
                .run_id
                .and_then(|run| self.liveness.find_attempt_worker(&rt.id, run))
            {
                if !opts.dry_run {
                    self.store.set_worker(&SetWorker {
                        task_id: rt.id.clone(),
                        run_id: rt.run_id,
                        worker: WorkerRecord {
                            pid: i64::from(orphan.pid),
                            start_time: orphan.start_time.and_then(|t| i64::try_from(t).ok()),
                            boot_id: self.liveness.instance_id(),
                            host: Some(self.liveness.hostname()),
                        },
                    })?;
                }
                continue;
            }
            if opts.dry_run {
                result.reclaimed += 1;
                continue;
            }
            let facts = json!({"reason": "launcher_gone", "launcher_pid": launcher.pid});
            let payload = reclaimed_payload(rt, now, true, false);
            let released = self.store.release_running(&ReleaseRunning {
                task_id: rt.id.clone(),
                claim_lock: rt.claim_lock.clone(),
                run_id: rt.run_id,
                worker_pid: None,
                require_expired: false,
                outcome: RunOutcome::Reclaimed,
                event: EventKind::Reclaimed,
                error: format!("stale_lock={}", rt.claim_lock.as_deref().unwrap_or("None")),
                payload: payload::merge(payload, &facts),
                run_metadata: Some(facts),
                clear_heartbeat: false,
                stamp_error: false,
                failure: FailurePolicy::NotCounted,
            })?;
            if released.released {
                result.reclaimed += 1;
            }
        }
        Ok(())
    }

    /// The process that claimed an attempt is certainly gone: dead (or its
    /// pid reused), or on this host before a reboot. This very process
    /// counts as gone too: its launches end within the pass that made them
    /// (under the dispatch lock), so one seen by a later pass was left by a
    /// failed record. Another machine's launcher: only the TTL applies.
    pub(crate) fn launcher_gone(&self, l: &WorkerRecord) -> bool {
        let host = self.liveness.hostname();
        let same_host = l.host.as_deref() == Some(host.as_str());
        let same_boot = self
            .liveness
            .same_instance(l.boot_id.as_deref())
            .unwrap_or(same_host);
        if !same_boot {
            return same_host;
        }
        let Ok(pid) = i32::try_from(l.pid) else {
            return false;
        };
        if i64::from(pid) == i64::from(std::process::id()) {
            return true;
        }
        let id = WorkerIdentity {
            pid,
            start_time: l.start_time.and_then(|t| u64::try_from(t).ok()),
        };
        !self.liveness.worker_alive(&id)
    }

    /// Step 3: running for longer than the stale timeout without a recent
    /// heartbeat.
    pub(crate) fn reclaim_stale(
        &self,
        opts: &DispatchOptions,
        now: i64,
        running: &[RunningTask],
        handled: &mut HashSet<String>,
        result: &mut DispatchResult,
    ) -> Result<()> {
        if opts.stale_timeout_seconds <= 0 {
            return Ok(());
        }
        for rt in running {
            if handled.contains(&rt.id) {
                continue;
            }
            let Some(started) = rt.attempt_started_at else {
                continue;
            };
            let elapsed = now - started;
            let hb_age = rt.last_heartbeat_at.map(|h| now - h);
            if elapsed < opts.stale_timeout_seconds
                || hb_age.is_some_and(|a| a < STALE_HEARTBEAT_GAP_SECONDS)
            {
                continue;
            }
            handled.insert(rt.id.clone());
            let error = match hb_age {
                Some(a) => format!("no heartbeat for {a}s after {elapsed}s running"),
                None => format!("no heartbeat ever after {elapsed}s running"),
            };
            let payload = json!({
                "elapsed_seconds": elapsed, "last_heartbeat_at": rt.last_heartbeat_at,
                "heartbeat_age_seconds": hb_age, "timeout_seconds": opts.stale_timeout_seconds,
                "pid": rt.worker_pid,
            });
            let live = self.live_identity(rt);
            self.release_or_terminate(
                opts,
                rt,
                live,
                ReleaseWhy::Stale { payload, error },
                result,
            )?;
        }
        Ok(())
    }

    /// Step 5: attempts over their max runtime.
    pub(crate) fn enforce_max_runtime(
        &self,
        opts: &DispatchOptions,
        now: i64,
        running: &[RunningTask],
        handled: &mut HashSet<String>,
        result: &mut DispatchResult,
    ) -> Result<()> {
        for rt in running {
            if handled.contains(&rt.id) {
                continue;
            }
            let (Some(limit), Some(started)) = (rt.max_runtime_seconds, rt.attempt_started_at)
            else {
                continue;
            };
            let elapsed = now - started;
            if elapsed < limit || rt.worker_pid.is_none() {
                continue;
            }
            let Locality::Local(id) = self.locality(rt) else {
                continue;
            };
            handled.insert(rt.id.clone());
            let live = self.liveness.worker_alive(&id).then_some(id);
            self.release_or_terminate(
                opts,
                rt,
                live,
                ReleaseWhy::Timeout { elapsed, limit },
                result,
            )?;
        }
        Ok(())
    }

    /// Release now when nothing of the worker is running here; otherwise
    /// record the decision, start ending its process group and release
    /// once it is gone.
    pub(crate) fn release_or_terminate(
        &self,
        opts: &DispatchOptions,
        rt: &RunningTask,
        live: Option<WorkerIdentity>,
        why: ReleaseWhy,
        result: &mut DispatchResult,
    ) -> Result<()> {
        let pending = PendingRelease {
            task_id: rt.id.clone(),
            claim_lock: rt.claim_lock.clone(),
            run_id: rt.run_id,
            worker_pid: rt.worker_pid,
            host_local: matches!(self.locality(rt), Locality::Local(_)),
            why,
        };
        if opts.dry_run {
            // Report what a real pass would release.
            match &pending.why {
                ReleaseWhy::Ttl { .. } => result.reclaimed += 1,
                ReleaseWhy::Stale { .. } => result.stale.push(rt.id.clone()),
                ReleaseWhy::Timeout { .. } => result.timed_out.push(rt.id.clone()),
            }
            return Ok(());
        }
        let Some(id) = live else {
            let report = TerminationReport {
                identity: WorkerIdentity::pid_only(rt.worker_pid.unwrap_or(0) as i32),
                tag: rt.id.clone(),
                outcome: TerminationOutcome::AlreadyGone,
                termination_attempted: false,
                sigkill: false,
                elapsed_ms: 0,
            };
            // Leftovers of a dead leader's group are still ended.
            if let Locality::Local(dead) = self.locality(rt) {
                self.terminator.begin(dead, &rt.id);
            }
            return self.finish_release(opts, pending, &report, result);
        };
        if self.state().pending.contains_key(&id.pid) {
            return Ok(());
        }
        if let Some(run_id) = rt.run_id {
            let intent = TerminationIntent {
                run_id,
                task_id: rt.id.clone(),
                kind: pending.why.kind().into(),
                detail: pending.why.detail(),
                decided_at: self.store.now(),
            };
            if !self.store.record_intent(&intent)? {
                // The attempt moved on meanwhile: nothing of ours to end.
                return Ok(());
            }
        }
        match self.terminator.begin(id, &rt.id) {
            Begun::Signalled | Begun::AlreadyPending => {
                self.state().pending.insert(id.pid, pending);
                Ok(())
            }
            Begun::Done(report) => self.finish_release(opts, pending, &report, result),
        }
    }

    /// Release the tasks whose worker termination has finished.
    pub(crate) fn apply_finished_terminations(
        &self,
        opts: &DispatchOptions,
        result: &mut DispatchResult,
    ) -> Result<()> {
        for report in self.terminator.take_finished() {
            let pending = self.state().pending.remove(&report.identity.pid);
            if let Some(p) = pending {
                self.finish_release(opts, p, &report, result)?;
            }
        }
        Ok(())
    }

    fn finish_release(
        &self,
        opts: &DispatchOptions,
        p: PendingRelease,
        report: &TerminationReport,
        result: &mut DispatchResult,
    ) -> Result<()> {
        let termination = json!({
            "prev_pid": p.worker_pid, "host_local": p.host_local,
            "termination_attempted": report.termination_attempted,
            "terminated": report.outcome.worker_is_gone(), "sigkill": report.sigkill,
        });
        if !report.outcome.worker_is_gone() {
            // Never release a claim while our worker may still run: hold
            // it and retry on a later pass.
            let reason = match p.why {
                ReleaseWhy::Ttl { .. } => "ttl_expired_worker_alive",
                ReleaseWhy::Stale { .. } => "heartbeat_stale_worker_alive",
                ReleaseWhy::Timeout { .. } => "timed_out_worker_alive",
            };
            self.store.defer_reclaim(&DeferReclaim {
                task_id: p.task_id.clone(),
                claim_lock: p.claim_lock.clone(),
                run_id: p.run_id,
                until: self.store.now() + RECLAIM_DEFER_SECONDS,
                reason: reason.into(),
                extra: termination,
            })?;
            return Ok(());
        }
        let base = ReleaseRunning {
            task_id: p.task_id.clone(),
            claim_lock: p.claim_lock.clone(),
            run_id: p.run_id,
            worker_pid: None,
            require_expired: false,
            outcome: RunOutcome::Reclaimed,
            event: EventKind::Reclaimed,
            error: String::new(),
            payload: Value::Null,
            run_metadata: None,
            clear_heartbeat: false,
            stamp_error: false,
            failure: FailurePolicy::NotCounted,
        };
        let req = match &p.why {
            ReleaseWhy::Ttl { payload } => ReleaseRunning {
                require_expired: true,
                error: format!("stale_lock={}", p.claim_lock.as_deref().unwrap_or("None")),
                payload: payload::merge(payload.clone(), &termination),
                run_metadata: Some(termination.clone()),
                ..base
            },
            ReleaseWhy::Stale { payload, error } => ReleaseRunning {
                outcome: RunOutcome::Stale,
                event: EventKind::Stale,
                error: error.clone(),
                payload: payload::merge(payload.clone(), &termination),
                clear_heartbeat: true,
                ..base
            },
            ReleaseWhy::Timeout { elapsed, limit } => {
                let payload = json!({
                    "pid": p.worker_pid, "elapsed_seconds": elapsed, "limit_seconds": limit, "sigkill": report.sigkill,
                });
                ReleaseRunning {
                    outcome: RunOutcome::TimedOut,
                    event: EventKind::TimedOut,
                    error: format!("elapsed {elapsed}s > limit {limit}s"),
                    payload,
                    clear_heartbeat: true,
                    failure: FailurePolicy::Counted {
                        dispatcher_limit: opts.failure_limit,
                        forced_limit: None,
                        extra: json!({"pid": p.worker_pid, "sigkill": report.sigkill}),
                    },
                    ..base
                }
            }
        };
        let released = self.store.release_running(&req)?;
        record(result, &p, released);
        Ok(())
    }
}

fn record(result: &mut DispatchResult, p: &PendingRelease, released: Released) {
    if released.released {
        match p.why {
            ReleaseWhy::Ttl { .. } => result.reclaimed += 1,
            ReleaseWhy::Stale { .. } => result.stale.push(p.task_id.clone()),
            ReleaseWhy::Timeout { .. } => result.timed_out.push(p.task_id.clone()),
        }
    }
    if released.auto_blocked {
        result.auto_blocked.push(p.task_id.clone());
    }
}

/// Payload keys of the reference's `reclaimed` event for a released claim.
fn reclaimed_payload(rt: &RunningTask, now: i64, host_local: bool, heartbeat_stale: bool) -> Value {
    payload::reclaimed(&ClaimRelease {
        stale_lock: rt.claim_lock.as_deref(),
        worker_pid: rt.worker_pid,
        claim_expires: rt.claim_expires,
        last_heartbeat_at: rt.last_heartbeat_at,
        now,
        host_local,
        heartbeat_stale,
    })
}
