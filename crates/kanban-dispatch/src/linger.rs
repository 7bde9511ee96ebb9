//! Ending workers whose attempt is over: completing, blocking, reclaiming
//! or archiving a running task ends its worker's process group (the
//! reference leaves them running, #61923, #57596).
//!
//! Two paths: an operator's transition calls [`end_worker`] at once; a
//! worker that finished its own task (it ran `kanban complete` from inside
//! its own session) is given [`LINGER_GRACE_SECONDS`] to exit by itself,
//! after which each dispatch pass ends what is left.

use kanban_store::EndedWorker;
use kanban_store::dispatch_ops::{DispatchStore, WorkerRecord};
use serde::Serialize;

use crate::dispatcher::Dispatcher;
use crate::error::Result;
use crate::linger_scan::{LingerScan, linger_scan_wait};
use crate::liveness::{Liveness, WorkerIdentity};
use crate::terminate::{Begun, Terminator};

/// How long a worker may outlive its finished attempt before it is ended.
pub const LINGER_GRACE_SECONDS: i64 = 60;

/// What [`end_worker`] did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EndOutcome {
    /// SIGTERM sent to its process group (SIGKILL follows if needed).
    Signalled,
    /// Nothing of it is running.
    Gone,
    /// It runs on another machine (or before a reboot): nothing to do here.
    NotLocal,
    /// The caller is part of that worker (the worker finishing its own
    /// task): not signalled; it is ended later if it does not exit.
    OwnSession,
}

/// The identity of a recorded worker if it belongs to this machine and boot.
fn local_identity(liveness: &dyn Liveness, rec: &WorkerRecord) -> Option<WorkerIdentity> {
    let pid = i32::try_from(rec.pid).ok().filter(|p| *p > 1)?;
    let same_boot = liveness
        .same_instance(rec.boot_id.as_deref())
        .unwrap_or_else(|| rec.host.as_deref() == Some(liveness.hostname().as_str()));
    same_boot.then(|| WorkerIdentity {
        pid,
        start_time: rec.start_time.and_then(|t| u64::try_from(t).ok()),
    })
}

/// End the worker a transition just detached from its task (the
/// `ended_worker` of a complete/block/reclaim/archive), identified by our
/// record of its run when we have one, else by pid on a host-local claim.
pub fn end_worker(
    store: &dyn DispatchStore,
    liveness: &dyn Liveness,
    terminator: &Terminator,
    run_id: Option<i64>,
    ended: &EndedWorker,
) -> Result<EndOutcome> {
    let record = match run_id {
        Some(r) => store.worker_record(r)?.filter(|w| w.pid == ended.pid),
        None => None,
    };
    let identity = match &record {
        Some(rec) => local_identity(liveness, rec),
        None => {
            let local = ended
                .claim_lock
                .as_deref()
                .is_some_and(|l| liveness.lock_is_host_local(l));
            i32::try_from(ended.pid)
                .ok()
                .filter(|p| local && *p > 1)
                .map(WorkerIdentity::pid_only)
        }
    };
    let Some(id) = identity else {
        return Ok(EndOutcome::NotLocal);
    };
    if nix::unistd::getsid(None).is_ok_and(|sid| sid.as_raw() == id.pid) {
        return Ok(EndOutcome::OwnSession);
    }
    Ok(
        match terminator.begin(id, &format!("run {}", run_id.unwrap_or_default())) {
            Begun::Signalled | Begun::AlreadyPending => EndOutcome::Signalled,
            Begun::Done(_) => EndOutcome::Gone,
        },
    )
}

impl Dispatcher {
    /// End the worker a transition detached from its task (see [`end_worker`]).
    pub fn end_worker(&self, run_id: Option<i64>, ended: &EndedWorker) -> Result<EndOutcome> {
        end_worker(
            &*self.store,
            &*self.liveness,
            &self.terminator,
            run_id,
            ended,
        )
    }

    /// Workers still around [`LINGER_GRACE_SECONDS`] after their attempt
    /// ended are ended; records of gone workers are dropped. Returns when
    /// the next pass has work here with no board change (store time): the
    /// grace of a recorded worker ends, or now, while one is being ended
    /// (its record is dropped once it is gone).
    pub(crate) fn end_lingering_workers(&self, now: i64) -> Result<Option<i64>> {
        if let Some(wait) = linger_scan_wait(self.state().linger_scan, now) {
            return Ok(Some(wait));
        }
        let next_due = self.read_lingering_workers(now)?;
        self.state().linger_scan = Some(LingerScan { at: now, next_due });
        Ok(next_due)
    }

    /// [`Self::end_lingering_workers`]'s read of every finished worker.
    fn read_lingering_workers(&self, now: i64) -> Result<Option<i64>> {
        let mut next_due: Option<i64> = None;
        let mut due = |at: i64| next_due = Some(next_due.map_or(at, |d: i64| d.min(at)));
        // Every finished worker, the ones still in their grace included, so
        // the pass learns when the next one is due.
        for fin in self.store.finished_workers(i64::MAX)? {
            if fin.ended_at >= now - LINGER_GRACE_SECONDS {
                due(fin.ended_at + LINGER_GRACE_SECONDS + 1);
                continue;
            }
            let Some(id) = local_identity(&*self.liveness, &fin.worker) else {
                // Another boot of this host: long gone. Another host: theirs.
                if fin.worker.host.as_deref() == Some(self.liveness.hostname().as_str()) {
                    self.store.forget_worker(fin.run_id)?;
                }
                continue;
            };
            if self.terminator.is_pending(id.pid) {
                due(now);
                continue;
            }
            match self.terminator.begin(id, &fin.task_id) {
                Begun::Done(_) => self.store.forget_worker(fin.run_id)?,
                Begun::Signalled | Begun::AlreadyPending => {
                    due(now);
                    tracing::info!(task = %fin.task_id, pid = id.pid, "ending a worker that outlived its attempt");
                }
            }
        }
        Ok(next_due)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use kanban_core::Status;
    use kanban_store::CompleteRequest;

    use crate::options::DispatchOptions;
    use crate::pass::tests::{Fixture, T0};
    use crate::testutil::wait_for;

    use super::*;

    #[test]
    fn a_worker_outliving_its_completed_task_is_ended_after_the_grace() {
        let mut f = Fixture::new();
        f.script_profile("clingy", "sleep 30\n");
        let id = f.create("c", Some("clingy"));
        let d = f.dispatcher();
        d.dispatch_once(&DispatchOptions::default()).unwrap();
        let pid = f.task(&id).worker_pid.unwrap() as i32;
        let done = CompleteRequest {
            task_id: id.clone(),
            summary: Some("done".into()),
            ..Default::default()
        };
        f.store.complete_task(&done).unwrap();
        assert_eq!(f.task(&id).status, Status::Done);
        d.dispatch_once(&DispatchOptions::default()).unwrap();
        let l = crate::liveness::ProcLiveness::new();
        assert!(l.pid_alive(pid), "still within the grace");
        f.clock.set(T0 + LINGER_GRACE_SECONDS + 1);
        d.dispatch_once(&DispatchOptions::default()).unwrap();
        wait_for(Duration::from_secs(10), || l.group_members(pid).is_empty());
        // Once gone (and reaped: until then its pid still answers), a pass
        // drops its record.
        wait_for(Duration::from_secs(10), || {
            d.dispatch_once(&DispatchOptions::default()).unwrap();
            f.store.finished_workers(T0 + 10_000).unwrap().is_empty()
        });
    }

    #[test]
    fn an_operator_reclaim_ends_the_worker_at_once() {
        let mut f = Fixture::new();
        f.script_profile("busy", "sleep 30\n");
        let id = f.create("b", Some("busy"));
        let d = f.dispatcher();
        d.dispatch_once(&DispatchOptions::default()).unwrap();
        let run_id = f.task(&id).current_run_id;
        let t = f.store.reclaim_task(&id, Some("operator")).unwrap();
        let ended = t.ended_worker.unwrap();
        assert_eq!(d.end_worker(run_id, &ended).unwrap(), EndOutcome::Signalled);
        let l = crate::liveness::ProcLiveness::new();
        assert!(d.terminator.wait_idle(Duration::from_secs(10)));
        assert!(l.group_members(ended.pid as i32).is_empty());
        assert_eq!(d.end_worker(run_id, &ended).unwrap(), EndOutcome::Gone);
        let remote = EndedWorker {
            pid: ended.pid,
            claim_lock: Some("elsewhere:1".into()),
        };
        assert_eq!(d.end_worker(None, &remote).unwrap(), EndOutcome::NotLocal);
    }
}
