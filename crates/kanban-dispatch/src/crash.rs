//! Step 4 of a pass: workers that died. Exit 0 = protocol violation
//! (bounded streak), 75 = rate limited (no failure), anything else a crash
//! (counted; three identical crashes in one pass are systemic) — unless the
//! death is explained by the host or the gateway going away (SPEC §6):
//! a reboot, the supervising gateway gone too, or several workers killed
//! from outside in the same moment. Those tasks are requeued (`reclaimed`,
//! marked `excused`) without counting a failure, for a bounded streak
//! ([`death_excused`]), so a task that keeps taking its host down with it
//! still trips the breaker.
//!
//! Also step 1b: releases decided before their worker was signalled
//! (timeouts, stale and TTL reclaims) are finished as decided, whoever
//! finds the worker gone, so a kill is never recorded as a crash.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use kanban_core::defaults::{
    MASS_DEATH_WINDOW_MS, PROTOCOL_VIOLATION_STREAK_LIMIT, SYSTEMIC_CRASH_THRESHOLD,
};
use kanban_core::transitions::breaker::PROTOCOL_VIOLATION_KEY;
use kanban_core::transitions::dispatcher::{
    DeathCause, DeathExit, DeathFacts, death_excused, explained_death, is_external_signal,
};
use kanban_core::{EventKind, RunOutcome};
use kanban_store::dispatch_ops::{
    EXCUSED_KEY, FailurePolicy, ReleaseRunning, RunningTask, WorkerRecord,
};
use regex::Regex;
use serde_json::json;

use crate::dispatcher::Dispatcher;
use crate::error::Result;
use crate::liveness::WorkerIdentity;
use crate::options::DispatchOptions;
use crate::reap::{ExitKind, WorkerExit, classify_exit};
use crate::reclaim::Locality;
use crate::release::ReleaseWhy;
use crate::result::DispatchResult;

/// How soon a pass looks again at a dead child whose exit is not recorded yet.
const EXIT_PENDING_RECHECK: Duration = Duration::from_millis(20);

/// The mass-death window.
const MASS_DEATH_WINDOW: Duration = Duration::from_millis(MASS_DEATH_WINDOW_MS);

/// A dead worker and what is known of its end.
struct Dead<'a> {
    rt: &'a RunningTask,
    id: WorkerIdentity,
    kind: ExitKind,
    code: Option<i32>,
    /// Why this death does not count, when it is excused.
    excuse: Option<DeathCause>,
}

fn death_exit(exit: Option<WorkerExit>) -> DeathExit {
    match exit {
        Some(WorkerExit::Exited(c)) => DeathExit::Code(c),
        Some(WorkerExit::Signaled(s)) => DeathExit::Signal(s),
        None => DeathExit::Unknown,
    }
}

impl Dispatcher {
    /// Step 1b: running attempts with a decided release (see
    /// `kanban_rs_intents`) whose worker is gone are released as decided.
    /// Our own termination still under way finishes on its own.
    pub(crate) fn honour_intents(
        &self,
        opts: &DispatchOptions,
        running: &[RunningTask],
        handled: &mut HashSet<String>,
        result: &mut DispatchResult,
    ) -> Result<()> {
        for rt in running {
            let Some(why) = rt.intent.as_ref().and_then(ReleaseWhy::from_intent) else {
                continue;
            };
            if handled.contains(&rt.id) {
                continue;
            }
            let pending = rt
                .worker_pid
                .and_then(|p| i32::try_from(p).ok())
                .is_some_and(|p| self.state().pending.contains_key(&p));
            if pending {
                handled.insert(rt.id.clone());
                continue;
            }
            let alive = match self.locality(rt) {
                // Decided on another machine: its dispatcher (or the TTL) ends it.
                Locality::Remote => continue,
                Locality::Rebooted => false,
                Locality::Local(id) => self.liveness.worker_alive(&id),
            };
            if alive {
                // Still running (its dispatcher died mid-termination): the
                // step that decided it decides again and ends it.
                continue;
            }
            handled.insert(rt.id.clone());
            self.release_or_terminate(opts, rt, None, why, result)?;
        }
        Ok(())
    }

    /// The long-lived dispatcher that started a worker is gone: dead (or
    /// its pid reused), or on this host before a reboot. On another machine
    /// nothing can be told.
    fn supervisor_gone(&self, s: &WorkerRecord) -> bool {
        let host = self.liveness.hostname();
        let same_host = s.host.as_deref() == Some(host.as_str());
        let same_boot = self
            .liveness
            .same_instance(s.boot_id.as_deref())
            .unwrap_or(same_host);
        if !same_boot {
            return same_host;
        }
        let Ok(pid) = i32::try_from(s.pid) else {
            return false;
        };
        let id = WorkerIdentity {
            pid,
            start_time: s.start_time.and_then(|t| u64::try_from(t).ok()),
        };
        !self.liveness.worker_alive(&id)
    }

    /// Workers of ours killed by an outside signal within the mass-death
    /// window around `at` (this one included).
    fn killed_together(&self, at: Instant) -> usize {
        let from = at.checked_sub(MASS_DEATH_WINDOW).unwrap_or(at);
        self.spawner
            .exits_between(from, at + MASS_DEATH_WINDOW)
            .into_iter()
            .filter(|e| matches!(e, WorkerExit::Signaled(s) if is_external_signal(*s)))
            .count()
            .max(1)
    }

    /// Step 4: workers that died (see the module comment).
    pub(crate) fn detect_crashes(
        &self,
        opts: &DispatchOptions,
        now: i64,
        running: &[RunningTask],
        handled: &mut HashSet<String>,
        result: &mut DispatchResult,
    ) -> Result<()> {
        let mut dead = Vec::new();
        for rt in running {
            if handled.contains(&rt.id) {
                continue;
            }
            let Some(pid) = rt.worker_pid else { continue };
            let (id, exit, rebooted) = match self.locality(rt) {
                Locality::Remote => continue,
                Locality::Rebooted => (WorkerIdentity::pid_only(pid as i32), None, true),
                Locality::Local(id) => {
                    // Without a recorded start time a young pid may not be
                    // visible yet: keep the reference's launch grace.
                    let young = rt
                        .attempt_started_at
                        .is_some_and(|s| now - s < opts.crash_grace_seconds);
                    if (id.start_time.is_none() && young) || self.liveness.worker_alive(&id) {
                        continue;
                    }
                    let exit = self.spawner.exit_status(&id);
                    if exit.is_none() && self.spawner.exit_pending(&id) {
                        // Dead, but our waiter has not recorded how yet
                        // (a loaded machine): judge it when it has.
                        handled.insert(rt.id.clone());
                        result.wake_in(EXIT_PENDING_RECHECK);
                        continue;
                    }
                    (id, exit, false)
                }
            };
            let mut killed_together = 1;
            if let Some(WorkerExit::Signaled(sig)) = exit
                && is_external_signal(sig)
                && let Some(at) = self.spawner.exited_at(&id)
            {
                // Judged once every death of its window is known.
                let settled = at + MASS_DEATH_WINDOW;
                let wait = settled.saturating_duration_since(Instant::now());
                if !wait.is_zero() {
                    handled.insert(rt.id.clone());
                    result.wake_in(wait);
                    continue;
                }
                killed_together = self.killed_together(at);
            }
            handled.insert(rt.id.clone());
            let facts = DeathFacts {
                rebooted,
                supervisor_gone: rt
                    .supervisor
                    .as_ref()
                    .is_some_and(|s| self.supervisor_gone(s)),
                exit: death_exit(exit),
                killed_together,
            };
            let excuse = match explained_death(&facts) {
                Some(cause) if death_excused(self.store.excused_death_streak(&rt.id)?) => {
                    Some(cause)
                }
                _ => None,
            };
            let (kind, code) = classify_exit(exit);
            dead.push(Dead {
                rt,
                id,
                kind,
                code,
                excuse,
            });
        }
        let errors: Vec<String> = dead
            .iter()
            .map(|d| crash_error(d.id.pid, d.kind, d.code))
            .collect();
        let mut fingerprints: HashMap<String, usize> = HashMap::new();
        for (d, err) in dead.iter().zip(&errors) {
            if d.excuse.is_none() && !matches!(d.kind, ExitKind::CleanExit | ExitKind::RateLimited)
            {
                *fingerprints.entry(fingerprint(err)).or_default() += 1;
            }
        }
        for (d, error) in dead.into_iter().zip(errors) {
            let rt = d.rt;
            if opts.dry_run {
                match (d.excuse, d.kind) {
                    (Some(_), _) => result.reclaimed += 1,
                    (None, ExitKind::RateLimited) => result.rate_limited.push(rt.id.clone()),
                    (None, _) => result.crashed.push(rt.id.clone()),
                }
                continue;
            }
            // The leader is gone; anything left in its group is ended too.
            self.terminator.begin(d.id, &rt.id);
            let mut payload = json!({"pid": rt.worker_pid, "claimer": rt.claim_lock});
            let (outcome, event, stamp, failure, error) = match (d.excuse, d.kind) {
                (Some(cause), kind) => {
                    payload["reason"] = json!(cause.as_str());
                    payload[EXCUSED_KEY] = json!(true);
                    payload["error"] = json!(error);
                    if kind != ExitKind::Unknown {
                        payload["exit_kind"] = json!(kind.as_str());
                        payload["exit_code"] = json!(d.code);
                    }
                    let error = format!(
                        "{error} ({}): requeued without counting a failure",
                        cause.as_str().replace('_', " ")
                    );
                    (
                        RunOutcome::Reclaimed,
                        EventKind::Reclaimed,
                        false,
                        FailurePolicy::NotCounted,
                        error,
                    )
                }
                (None, ExitKind::CleanExit) => {
                    payload["exit_code"] = json!(d.code);
                    // The mark the breaker's violation streak counts.
                    payload[PROTOCOL_VIOLATION_KEY] = json!(true);
                    let extra = json!({"pid": rt.worker_pid, "claimer": rt.claim_lock});
                    let policy = FailurePolicy::ViolationStreak {
                        default_limit: PROTOCOL_VIOLATION_STREAK_LIMIT,
                        extra,
                    };
                    (
                        RunOutcome::Crashed,
                        EventKind::ProtocolViolation,
                        true,
                        policy,
                        error,
                    )
                }
                (None, ExitKind::RateLimited) => {
                    payload["exit_code"] = json!(d.code);
                    (
                        RunOutcome::RateLimited,
                        EventKind::RateLimited,
                        true,
                        FailurePolicy::NotCounted,
                        error,
                    )
                }
                (None, kind) => {
                    if kind != ExitKind::Unknown {
                        payload["exit_kind"] = json!(kind.as_str());
                        payload["exit_code"] = json!(d.code);
                    }
                    let systemic = fingerprints.get(&fingerprint(&error)).copied().unwrap_or(0)
                        >= SYSTEMIC_CRASH_THRESHOLD;
                    let policy = FailurePolicy::Counted {
                        dispatcher_limit: opts.failure_limit,
                        forced_limit: systemic.then_some(1),
                        extra: json!({"pid": rt.worker_pid, "claimer": rt.claim_lock}),
                    };
                    (
                        RunOutcome::Crashed,
                        EventKind::Crashed,
                        false,
                        policy,
                        error,
                    )
                }
            };
            let released = self.store.release_running(&ReleaseRunning {
                task_id: rt.id.clone(),
                claim_lock: rt.claim_lock.clone(),
                run_id: rt.run_id,
                worker_pid: rt.worker_pid,
                require_expired: false,
                outcome,
                event,
                error,
                payload,
                run_metadata: None,
                clear_heartbeat: false,
                stamp_error: stamp,
                failure,
            })?;
            if released.released {
                match (d.excuse, d.kind) {
                    (Some(_), _) => result.reclaimed += 1,
                    (None, ExitKind::RateLimited) => result.rate_limited.push(rt.id.clone()),
                    (None, _) => result.crashed.push(rt.id.clone()),
                }
            }
            if released.auto_blocked {
                result.auto_blocked.push(rt.id.clone());
            }
        }
        Ok(())
    }
}

/// The run error of a dead worker, by exit class.
pub(crate) fn crash_error(pid: i32, kind: ExitKind, code: Option<i32>) -> String {
    match (kind, code) {
        (ExitKind::CleanExit, _) => "worker exited cleanly (exit 0) without calling complete or block: \
             protocol violation. If the previous attempt already did the work, verify it and report it \
             with complete; an attempt that ends without complete or block counts as failed whatever it did."
            .to_string(),
        (ExitKind::RateLimited, _) => {
            format!("pid {pid} exited rate-limited (exit 75, quota wall); requeued without counting a failure")
        }
        (ExitKind::NonzeroExit, Some(c)) => format!("pid {pid} exited with code {c}"),
        (ExitKind::Signaled, Some(s)) => format!("pid {pid} killed by signal {s}"),
        _ => format!("pid {pid} not alive"),
    }
}

/// Errors with one root cause share a fingerprint: first 80 characters,
/// pids and long numbers (timestamps) normalised, lower-cased.
pub(crate) fn fingerprint(error: &str) -> String {
    static PID: std::sync::LazyLock<Regex> =
        std::sync::LazyLock::new(|| Regex::new(r"\bpid \d+\b").expect("regex"));
    static NUM: std::sync::LazyLock<Regex> =
        std::sync::LazyLock::new(|| Regex::new(r"\b\d{10,}\b").expect("regex"));
    let head: String = error.chars().take(80).collect();
    let fp = PID.replace_all(&head, "pid N");
    NUM.replace_all(&fp, "<TS>")
        .to_lowercase()
        .trim()
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_ignore_pids_and_timestamps() {
        assert_eq!(
            fingerprint("pid 12 exited with code 1"),
            fingerprint("pid 9999 exited with code 1")
        );
        assert_ne!(
            fingerprint("pid 12 exited with code 1"),
            fingerprint("pid 12 exited with code 2")
        );
        assert_eq!(fingerprint("at 1700000000 boom"), "at <ts> boom");
    }

    #[test]
    fn crash_errors_name_the_exit() {
        assert_eq!(
            crash_error(7, ExitKind::NonzeroExit, Some(3)),
            "pid 7 exited with code 3"
        );
        assert_eq!(
            crash_error(7, ExitKind::Signaled, Some(9)),
            "pid 7 killed by signal 9"
        );
        assert_eq!(crash_error(7, ExitKind::Unknown, None), "pid 7 not alive");
        assert!(crash_error(7, ExitKind::CleanExit, Some(0)).contains("protocol violation"));
    }

    #[test]
    fn exits_map_to_death_facts() {
        assert_eq!(death_exit(Some(WorkerExit::Exited(3))), DeathExit::Code(3));
        assert_eq!(
            death_exit(Some(WorkerExit::Signaled(9))),
            DeathExit::Signal(9)
        );
        assert_eq!(death_exit(None), DeathExit::Unknown);
    }
}

#[cfg(test)]
#[path = "crash_tests.rs"]
mod crash_tests;
