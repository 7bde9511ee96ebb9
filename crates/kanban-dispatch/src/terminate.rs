//! Ending a worker's process group without blocking the caller.
//!
//! The reference kills inline: SIGTERM, up to ten half-second polls, SIGKILL
//! — up to 5 s per task, serially, inside the dispatch tick (reference
//! §10.1.4). Here [`Terminator::begin`] verifies the worker's identity,
//! sends SIGTERM to its process group and returns at once; a background
//! thread escalates to SIGKILL after the grace period and reports each
//! finished termination through [`Terminator::take_finished`] (and an
//! optional wake-up hook), so the next dispatch pass can release the task.
//!
//! Identity is checked before every signal: a pid whose start time differs
//! from the recorded one belongs to someone else and is never signalled.

use std::collections::HashMap;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::sys::signal::{Signal, kill, killpg};
use nix::unistd::Pid;
use serde::Serialize;

use crate::liveness::{Liveness, WorkerIdentity, WorkerState};

/// Time between SIGTERM and SIGKILL (the reference's 10 × 0.5 s).
pub const TERMINATE_GRACE: Duration = Duration::from_secs(5);
/// Time after SIGKILL before a survivor (e.g. stuck in uninterruptible
/// I/O) is reported as such.
pub const KILL_WAIT: Duration = Duration::from_secs(5);
/// How often the background thread re-checks pending terminations.
const POLL_INTERVAL: Duration = Duration::from_millis(25);

/// How a termination ended (or why it never started).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TerminationOutcome {
    /// Nothing of the worker was left to signal.
    AlreadyGone,
    /// The pid now belongs to another process: not signalled.
    NotOurs,
    /// Ended after SIGTERM.
    Terminated,
    /// Ended after SIGKILL.
    Killed,
    /// Still alive after SIGKILL and the kill wait.
    Survived,
    /// Signalling failed (e.g. EPERM).
    Failed(String),
}

impl TerminationOutcome {
    /// Nothing of the worker runs any more (or it was never ours).
    pub fn worker_is_gone(&self) -> bool {
        matches!(
            self,
            TerminationOutcome::AlreadyGone
                | TerminationOutcome::NotOurs
                | TerminationOutcome::Terminated
                | TerminationOutcome::Killed
        )
    }
}

/// A finished termination.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TerminationReport {
    pub identity: WorkerIdentity,
    /// Caller's label (the task id).
    pub tag: String,
    pub outcome: TerminationOutcome,
    /// SIGTERM was sent.
    pub termination_attempted: bool,
    pub sigkill: bool,
    pub elapsed_ms: u64,
}

/// What [`Terminator::begin`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Begun {
    /// SIGTERM sent; the result arrives through `take_finished`.
    Signalled,
    /// A termination of this pid is already under way.
    AlreadyPending,
    /// Nothing to do or nothing allowed: finished at once.
    Done(TerminationReport),
}

#[derive(Debug, Clone, Copy)]
enum Phase {
    TermSent,
    KillSent(Instant),
}

#[derive(Debug)]
struct Pending {
    identity: WorkerIdentity,
    tag: String,
    /// Signal the whole group (the worker leads its own group).
    group: bool,
    started: Instant,
    phase: Phase,
}

#[derive(Default)]
struct State {
    pending: HashMap<i32, Pending>,
    finished: Vec<TerminationReport>,
    shutdown: bool,
}

type Hook = Arc<dyn Fn() + Send + Sync>;

struct Inner {
    state: Mutex<State>,
    cv: Condvar,
    liveness: Arc<dyn Liveness>,
    grace: Duration,
    kill_wait: Duration,
    hook: Mutex<Option<Hook>>,
}

/// Non-blocking process-group terminator with a background escalation
/// thread. Dropping it stops the thread; terminations still pending then
/// got their SIGTERM but no SIGKILL (call [`Terminator::wait_idle`] first
/// in short-lived processes).
pub struct Terminator {
    inner: Arc<Inner>,
    thread: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for Terminator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Terminator")
            .field("pending", &self.pending_count())
            .finish()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Terminator {
    pub fn new(liveness: Arc<dyn Liveness>) -> Self {
        Self::with_timing(liveness, TERMINATE_GRACE, KILL_WAIT)
    }

    pub fn with_timing(liveness: Arc<dyn Liveness>, grace: Duration, kill_wait: Duration) -> Self {
        let inner = Arc::new(Inner {
            state: Mutex::default(),
            cv: Condvar::new(),
            liveness,
            grace,
            kill_wait,
            hook: Mutex::new(None),
        });
        let bg = Arc::clone(&inner);
        let thread = std::thread::Builder::new()
            .name("kanban-terminator".into())
            .spawn(move || bg.run())
            .ok();
        Terminator { inner, thread }
    }

    /// Run `hook` (on the terminator thread) whenever a termination finishes.
    pub fn on_finished(&self, hook: Hook) {
        *lock(&self.inner.hook) = Some(hook);
    }

    /// Start ending the worker `identity` (and its process group).
    pub fn begin(&self, identity: WorkerIdentity, tag: &str) -> Begun {
        let mut st = lock(&self.inner.state);
        if st.pending.contains_key(&identity.pid) {
            return Begun::AlreadyPending;
        }
        let report = |outcome, attempted| TerminationReport {
            identity,
            tag: tag.to_string(),
            outcome,
            termination_attempted: attempted,
            sigkill: false,
            elapsed_ms: 0,
        };
        let l = &*self.inner.liveness;
        let leader = l.worker_state(&identity);
        if leader == WorkerState::Replaced {
            return Begun::Done(report(TerminationOutcome::NotOurs, false));
        }
        let group = leads_own_group(l, &identity, leader);
        let leftovers = group && !l.group_members(identity.pid).is_empty();
        if !leader.is_alive() && !leftovers {
            return Begun::Done(report(TerminationOutcome::AlreadyGone, false));
        }
        match send(identity.pid, group, Signal::SIGTERM) {
            Ok(()) => {}
            Err(Errno::ESRCH) => return Begun::Done(report(TerminationOutcome::AlreadyGone, true)),
            Err(e) => {
                return Begun::Done(report(TerminationOutcome::Failed(e.desc().into()), true));
            }
        }
        st.pending.insert(
            identity.pid,
            Pending {
                identity,
                tag: tag.to_string(),
                group,
                started: Instant::now(),
                phase: Phase::TermSent,
            },
        );
        drop(st);
        self.inner.cv.notify_all();
        Begun::Signalled
    }

    /// Advance every pending termination now (the background thread does
    /// this on its own; tests and single-threaded callers may too).
    pub fn poll(&self) {
        self.inner.poll();
    }

    /// Terminations finished since the last call.
    pub fn take_finished(&self) -> Vec<TerminationReport> {
        std::mem::take(&mut lock(&self.inner.state).finished)
    }

    pub fn is_pending(&self, pid: i32) -> bool {
        lock(&self.inner.state).pending.contains_key(&pid)
    }

    pub fn pending_count(&self) -> usize {
        lock(&self.inner.state).pending.len()
    }

    /// Block until nothing is pending or `timeout` passes; true when idle.
    /// For short-lived processes (a one-shot `kanban dispatch`) that must
    /// not exit before the SIGKILL escalation.
    pub fn wait_idle(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut st = lock(&self.inner.state);
        while !st.pending.is_empty() {
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            let wait = (deadline - now).min(POLL_INTERVAL);
            st = self
                .inner
                .cv
                .wait_timeout(st, wait)
                .unwrap_or_else(|p| p.into_inner())
                .0;
            if self.thread.is_none() {
                drop(st);
                self.inner.poll();
                st = lock(&self.inner.state);
            }
        }
        true
    }
}

impl Drop for Terminator {
    fn drop(&mut self) {
        lock(&self.inner.state).shutdown = true;
        self.inner.cv.notify_all();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Inner {
    fn run(&self) {
        let mut st = lock(&self.state);
        loop {
            if st.shutdown {
                return;
            }
            st = if st.pending.is_empty() {
                self.cv.wait(st).unwrap_or_else(|p| p.into_inner())
            } else {
                self.cv
                    .wait_timeout(st, POLL_INTERVAL)
                    .unwrap_or_else(|p| p.into_inner())
                    .0
            };
            if st.shutdown {
                return;
            }
            drop(st);
            self.poll();
            st = lock(&self.state);
        }
    }

    fn poll(&self) {
        let now = Instant::now();
        let l = &*self.liveness;
        let mut done = Vec::new();
        {
            let mut st = lock(&self.state);
            st.pending.retain(|_, p| {
                let leader = l.worker_state(&p.identity);
                let leftovers = p.group && !l.group_members(p.identity.pid).is_empty();
                let finished = |outcome| TerminationReport {
                    identity: p.identity,
                    tag: p.tag.clone(),
                    outcome,
                    termination_attempted: true,
                    sigkill: matches!(p.phase, Phase::KillSent(_)),
                    elapsed_ms: now.saturating_duration_since(p.started).as_millis() as u64,
                };
                if !leader.is_alive() && !leftovers {
                    let outcome = match p.phase {
                        Phase::TermSent => TerminationOutcome::Terminated,
                        Phase::KillSent(_) => TerminationOutcome::Killed,
                    };
                    done.push(finished(outcome));
                    return false;
                }
                match p.phase {
                    Phase::TermSent if now.saturating_duration_since(p.started) >= self.grace => {
                        // Still something alive here: either our verified
                        // leader, or members of its group, whose id the
                        // kernel cannot recycle while they exist. Either
                        // way the signal reaches only the worker's tree.
                        match send(p.identity.pid, p.group, Signal::SIGKILL) {
                            Ok(()) | Err(Errno::ESRCH) => p.phase = Phase::KillSent(now),
                            Err(e) => {
                                done.push(finished(TerminationOutcome::Failed(e.desc().into())));
                                return false;
                            }
                        }
                        true
                    }
                    Phase::KillSent(at) if now.saturating_duration_since(at) >= self.kill_wait => {
                        done.push(finished(TerminationOutcome::Survived));
                        false
                    }
                    _ => true,
                }
            });
            st.finished.extend(done.iter().cloned());
        }
        if !done.is_empty() {
            self.cv.notify_all();
            let hook = lock(&self.hook).clone();
            if let Some(hook) = hook {
                hook();
            }
        }
    }
}

/// Whether to signal the worker's whole process group: it must lead its
/// own group, which must not be ours (never signal the dispatcher itself).
fn leads_own_group(l: &dyn Liveness, id: &WorkerIdentity, leader: WorkerState) -> bool {
    let own_group = nix::unistd::getpgrp().as_raw();
    if id.pid <= 1 || id.pid == own_group {
        return false;
    }
    match l.stat(id.pid) {
        Some(st) => st.pgrp == id.pid,
        // The leader is gone: leftover members keep its pid as their group
        // id, and no new group can take that id while they live.
        None => leader == WorkerState::Gone && id.start_time.is_some(),
    }
}

fn send(pid: i32, group: bool, sig: Signal) -> Result<(), Errno> {
    if pid <= 1 {
        return Err(Errno::EINVAL);
    }
    if group {
        killpg(Pid::from_raw(pid), sig)
    } else {
        kill(Pid::from_raw(pid), sig)
    }
}

#[cfg(test)]
#[path = "terminate_tests.rs"]
mod tests;
