//! Small helpers the suite's tests share: requests with defaults, reads
//! that panic with context, event kinds, the dispatcher's requests.

use std::sync::Barrier;

use kanban_core::{Event, EventKind, RunOutcome, Status, Task};
use kanban_store::dispatch_ops::*;
use kanban_store::*;
use serde_json::{Value, json};

use crate::{Board, SuiteStore};

pub fn new_task(title: &str) -> NewTask {
    NewTask {
        title: title.into(),
        assignee: Some("coder".into()),
        ..Default::default()
    }
}

pub fn create(s: &dyn Store, title: &str) -> Task {
    s.create_task(&new_task(title)).expect("create").task
}

pub fn create_with(s: &dyn Store, req: NewTask) -> Task {
    s.create_task(&req).expect("create").task
}

pub fn child_of(s: &dyn Store, title: &str, parents: &[&str]) -> Task {
    let req = NewTask {
        parents: parents.iter().map(|p| p.to_string()).collect(),
        ..new_task(title)
    };
    create_with(s, req)
}

pub fn get(s: &dyn Store, id: &str) -> Task {
    s.get_task(id).expect("get").expect("task exists")
}

pub fn status(s: &dyn Store, id: &str) -> Status {
    get(s, id).status
}

pub fn events(s: &dyn Store, id: &str) -> Vec<Event> {
    s.events(&EventQuery {
        task_id: Some(id.into()),
        ..Default::default()
    })
    .expect("events")
}

pub fn kinds(s: &dyn Store, id: &str) -> Vec<String> {
    events(s, id).into_iter().map(|e| e.kind).collect()
}

/// The newest event of that kind on the task.
pub fn last_event(s: &dyn Store, id: &str, kind: &str) -> Event {
    events(s, id)
        .into_iter()
        .rev()
        .find(|e| e.kind == kind)
        .unwrap_or_else(|| panic!("no {kind} event on {id}: {:?}", kinds(s, id)))
}

/// The payload is an object with exactly these keys.
pub fn assert_keys(payload: &Value, keys: &[&str]) {
    let obj = payload
        .as_object()
        .unwrap_or_else(|| panic!("payload is not an object: {payload}"));
    let mut got: Vec<&str> = obj.keys().map(String::as_str).collect();
    got.sort_unstable();
    let mut want = keys.to_vec();
    want.sort_unstable();
    assert_eq!(got, want, "payload keys of {payload}");
}

pub fn claim_req(id: &str, lock: &str) -> ClaimRequest {
    ClaimRequest {
        task_id: id.into(),
        claim_lock: lock.into(),
        ttl_seconds: 900,
        review: false,
        ceilings: Ceilings::default(),
    }
}

/// Claim and return the run id, panicking when the claim does not win.
pub fn claim(s: &dyn Store, id: &str) -> i64 {
    match s.claim_task(&claim_req(id, "host:1")).expect("claim") {
        ClaimOutcome::Claimed { run_id, .. } => run_id,
        other => panic!("claim of {id} did not win: {other:?}"),
    }
}

/// The run ids of a batch whose every claim must have won.
pub fn claimed_runs(outcomes: Vec<ClaimOutcome>) -> Vec<i64> {
    outcomes
        .into_iter()
        .map(|o| match o {
            ClaimOutcome::Claimed { run_id, .. } => run_id,
            other => panic!("claim did not win: {other:?}"),
        })
        .collect()
}

pub fn complete(s: &dyn Store, id: &str) -> Completion {
    s.complete_task(&CompleteRequest {
        task_id: id.into(),
        ..Default::default()
    })
    .expect("complete")
}

pub fn refused_reason(e: StoreError) -> String {
    match e {
        StoreError::Refused { reason, .. } => reason,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

/// Runs `racer(n, handle)` on `racers` threads at once, each on its own
/// handle (connection) to the board; their results in thread order.
/// Handles are opened before any thread starts, so a failing open cannot
/// leave the others waiting at the start line.
pub fn race<T: Send>(
    board: &Board<'_>,
    racers: usize,
    racer: impl Fn(usize, &dyn SuiteStore) -> T + Sync,
) -> Vec<T> {
    let handles: Vec<Box<dyn SuiteStore>> = (0..racers).map(|_| board.open()).collect();
    let start = Barrier::new(racers);
    std::thread::scope(|sc| {
        let threads: Vec<_> = handles
            .into_iter()
            .enumerate()
            .map(|(n, s)| {
                let (start, racer) = (&start, &racer);
                sc.spawn(move || {
                    start.wait();
                    racer(n, &*s)
                })
            })
            .collect();
        threads
            .into_iter()
            .map(|t| t.join().expect("racer panicked"))
            .collect()
    })
}

/// Run ids, oldest first, and which of them is still open.
pub fn open_runs(s: &dyn Store, id: &str) -> Vec<i64> {
    s.runs(id)
        .expect("runs")
        .into_iter()
        .filter(|r| r.ended_at.is_none())
        .map(|r| r.id)
        .collect()
}

// ---- dispatcher requests -------------------------------------------------

/// A worker record with this pid and a full identity.
pub fn worker(pid: i64) -> WorkerRecord {
    WorkerRecord {
        pid,
        start_time: Some(99),
        boot_id: Some("boot".into()),
        host: Some("h".into()),
    }
}

/// Record `worker` as the worker of `run` (must win).
pub fn spawn(s: &dyn DispatchStore, id: &str, run: i64, worker: WorkerRecord) {
    let req = SetWorker {
        task_id: id.into(),
        run_id: Some(run),
        worker,
    };
    assert!(s.set_worker(&req).expect("set_worker"), "worker of {id}");
}

/// The dispatcher's release of attempt `run` (claim lock `host:1`) as a
/// crash, counted by `policy`.
pub fn crash(id: &str, run: i64, policy: FailurePolicy) -> ReleaseRunning {
    ReleaseRunning {
        task_id: id.into(),
        claim_lock: Some("host:1".into()),
        run_id: Some(run),
        worker_pid: None,
        require_expired: false,
        outcome: RunOutcome::Crashed,
        event: EventKind::Crashed,
        error: "pid 5 exited with code 1".into(),
        payload: json!({"pid": 5}),
        run_metadata: None,
        clear_heartbeat: false,
        stamp_error: false,
        failure: policy,
    }
}

/// A crash counted toward the breaker with the dispatcher's `limit`.
pub fn counted(limit: i64) -> FailurePolicy {
    FailurePolicy::Counted {
        dispatcher_limit: limit,
        forced_limit: None,
        extra: json!({"pid": 5}),
    }
}

/// A release that does not count toward the breaker, ending the run with
/// `outcome` and the `reclaimed` event.
pub fn release_as(id: &str, run: i64, outcome: RunOutcome, payload: Value) -> ReleaseRunning {
    ReleaseRunning {
        outcome,
        event: EventKind::Reclaimed,
        error: "x".into(),
        payload,
        ..crash(id, run, FailurePolicy::NotCounted)
    }
}

/// Claim `id` and fail to start its worker (below any limit); the run id.
pub fn fail_spawn(s: &dyn DispatchStore, id: &str) -> i64 {
    let run = claim(s, id);
    let f = SpawnFailure {
        task_id: id.into(),
        run_id: Some(run),
        error: "`ghost` not found".into(),
        failure_limit: 100,
    };
    assert!(s.record_spawn_failure(&f).expect("spawn failure").released);
    run
}

/// End time of a task's run.
pub fn ended_at(s: &dyn Store, id: &str, run: i64) -> i64 {
    s.runs(id)
        .expect("runs")
        .into_iter()
        .find(|r| r.id == run)
        .and_then(|r| r.ended_at)
        .unwrap_or_else(|| panic!("run {run} of {id} has not ended"))
}

/// The running task `id` as the dispatcher reads it.
pub fn running(s: &dyn DispatchStore, id: &str) -> RunningTask {
    s.running_tasks()
        .expect("running tasks")
        .into_iter()
        .find(|r| r.id == id)
        .unwrap_or_else(|| panic!("{id} is not running"))
}
