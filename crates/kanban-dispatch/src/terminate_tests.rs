//! Terminator tests with real worker processes.

use std::path::Path;

use super::*;
use crate::env::EnvPlan;
use crate::liveness::ProcLiveness;
use crate::spawner::{LogSpec, ProcessSpawner, SpawnedWorker, Spawner, WorkerSpec};
use crate::testutil::wait_for;

fn start(sp: &ProcessSpawner, dir: &Path, script: &str) -> SpawnedWorker {
    let spec = WorkerSpec {
        task_id: "t_1".into(),
        run_id: None,
        argv: vec!["/bin/sh".into(), "-c".into(), script.into()],
        env: EnvPlan::default(),
        cwd: None,
        log: LogSpec::for_task(dir, "t_1"),
        not_found_hint: String::new(),
    };
    sp.spawn(&spec).unwrap()
}

fn terminator(grace_ms: u64) -> (Terminator, Arc<ProcLiveness>) {
    let l = Arc::new(ProcLiveness::new());
    let t = Terminator::with_timing(
        l.clone(),
        Duration::from_millis(grace_ms),
        Duration::from_secs(5),
    );
    (t, l)
}

fn finished(t: &Terminator) -> TerminationReport {
    let mut got = Vec::new();
    wait_for(Duration::from_secs(15), || {
        got.extend(t.take_finished());
        !got.is_empty()
    });
    got.remove(0)
}

/// Wait until the group has `n` live members (the script's children started).
fn wait_group(l: &ProcLiveness, pgid: i32, n: usize) {
    wait_for(Duration::from_secs(5), || l.group_members(pgid).len() >= n);
}

#[test]
fn sigterm_ends_the_whole_group_without_blocking() {
    let dir = tempfile::tempdir().unwrap();
    let sp = ProcessSpawner::new();
    let (t, l) = terminator(5_000);
    let w = start(&sp, dir.path(), "sleep 30 & sleep 30 & wait");
    wait_group(&l, w.pid, 3);
    let t0 = Instant::now();
    assert_eq!(t.begin(w.identity(), "t_1"), Begun::Signalled);
    assert!(
        t0.elapsed() < Duration::from_millis(200),
        "begin blocked for {:?}",
        t0.elapsed()
    );
    let r = finished(&t);
    assert_eq!(r.outcome, TerminationOutcome::Terminated);
    assert!(!r.sigkill && r.termination_attempted);
    assert_eq!(r.tag, "t_1");
    assert!(l.group_members(w.pid).is_empty());
    assert!(!t.is_pending(w.pid));
}

#[test]
fn a_worker_ignoring_sigterm_gets_sigkill_after_the_grace() {
    let dir = tempfile::tempdir().unwrap();
    let sp = ProcessSpawner::new();
    let (t, l) = terminator(300);
    let woke = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let w2 = Arc::clone(&woke);
    t.on_finished(Arc::new(move || {
        w2.store(true, std::sync::atomic::Ordering::SeqCst)
    }));
    // The ignored disposition is inherited by the sleeps too.
    let w = start(&sp, dir.path(), "trap '' TERM; sleep 30 & sleep 30 & wait");
    wait_group(&l, w.pid, 3);
    let t0 = Instant::now();
    assert_eq!(t.begin(w.identity(), "t_1"), Begun::Signalled);
    assert!(t0.elapsed() < Duration::from_millis(200));
    assert_eq!(t.begin(w.identity(), "t_1"), Begun::AlreadyPending);
    let r = finished(&t);
    assert_eq!(r.outcome, TerminationOutcome::Killed);
    assert!(r.sigkill);
    assert!(t0.elapsed() >= Duration::from_millis(300));
    assert!(l.group_members(w.pid).is_empty());
    wait_for(Duration::from_secs(5), || {
        woke.load(std::sync::atomic::Ordering::SeqCst)
    });
}

#[test]
fn a_recycled_pid_is_never_signalled() {
    let dir = tempfile::tempdir().unwrap();
    let sp = ProcessSpawner::new();
    let (t, l) = terminator(100);
    let w = start(&sp, dir.path(), "sleep 30");
    wait_group(&l, w.pid, 1);
    let ghost = WorkerIdentity::new(w.pid, w.start_time.unwrap() + 7);
    match t.begin(ghost, "t_1") {
        Begun::Done(r) => assert_eq!(r.outcome, TerminationOutcome::NotOurs),
        other => panic!("{other:?}"),
    }
    std::thread::sleep(Duration::from_millis(200));
    assert!(
        l.worker_alive(&w.identity()),
        "the unrelated process was signalled"
    );
    // The real identity is ended.
    assert_eq!(t.begin(w.identity(), "t_1"), Begun::Signalled);
    assert!(finished(&t).outcome.worker_is_gone());
}

#[test]
fn leftovers_of_an_exited_leader_are_still_ended() {
    let dir = tempfile::tempdir().unwrap();
    let sp = ProcessSpawner::new();
    let (t, l) = terminator(5_000);
    // The leader exits at once; its background child stays in the group.
    let w = start(&sp, dir.path(), "sleep 30 & exit 0");
    wait_for(Duration::from_secs(5), || l.stat(w.pid).is_none());
    wait_group(&l, w.pid, 1);
    assert_eq!(t.begin(w.identity(), "t_1"), Begun::Signalled);
    assert_eq!(finished(&t).outcome, TerminationOutcome::Terminated);
    assert!(l.group_members(w.pid).is_empty());
}

#[test]
fn a_dead_worker_needs_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let sp = ProcessSpawner::new();
    let (t, l) = terminator(100);
    let w = start(&sp, dir.path(), "exit 0");
    wait_for(Duration::from_secs(5), || l.stat(w.pid).is_none());
    match t.begin(w.identity(), "t_1") {
        Begun::Done(r) => {
            assert_eq!(r.outcome, TerminationOutcome::AlreadyGone);
            assert!(!r.termination_attempted);
        }
        other => panic!("{other:?}"),
    }
    assert!(t.wait_idle(Duration::from_millis(10)));
}

#[test]
fn wait_idle_waits_for_escalation() {
    let dir = tempfile::tempdir().unwrap();
    let sp = ProcessSpawner::new();
    let (t, l) = terminator(200);
    // Two members means the trap is in place (the sleep starts after it).
    let w = start(&sp, dir.path(), "trap '' TERM; sleep 30 & wait");
    wait_group(&l, w.pid, 2);
    t.begin(w.identity(), "t_1");
    assert!(t.wait_idle(Duration::from_secs(10)));
    assert_eq!(t.take_finished()[0].outcome, TerminationOutcome::Killed);
}
