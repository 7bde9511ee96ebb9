//! Issue 10 item 6: every worker the API detaches (reclaim, block,
//! complete, schedule, a direct move, reassign with reclaim, archive, bulk
//! archive, terminate) is ended through the dispatcher's identity check:
//! a process that merely holds the recorded pid (pid reuse) is never
//! signalled (SPEC §4), while the recorded worker itself is ended.

use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use kanban_store::dispatch_ops::{DispatchStore, SetWorker, WorkerRecord};
use kanban_store::host_identity::{claim_lock_for, hostname};
use kanban_store::{ClaimOutcome, ClaimRequest};
use kanban_testkit::gateway::SETTLE_WAIT;
use kanban_testkit::process::start_time;
use kanban_testkit::{GatewayChild, Sandbox, pid_alive, wait_for};
use serde_json::{Value, json};

/// How long a process that must survive is watched after the request.
const SURVIVAL_WATCH: Duration = Duration::from_millis(1500);

/// A process of its own group that is nobody's worker, killed on drop.
struct Stranger(Child);

impl Stranger {
    fn spawn() -> Stranger {
        let child = Command::new("sleep")
            .arg("120")
            .process_group(0)
            .stdin(Stdio::null())
            .spawn()
            .expect("spawn sleep");
        Stranger(child)
    }

    fn pid(&self) -> i32 {
        self.0.id() as i32
    }
}

impl Drop for Stranger {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A running task whose claim and worker record name `pid` on this host,
/// with the recorded start time shifted by `skew` ticks (non-zero: the
/// worker that had this pid is gone and `pid` now belongs to a stranger).
/// Returns the task id and its run id.
fn running_task(store: &dyn DispatchStore, title: &str, pid: i32, skew: i64) -> (String, i64) {
    let task = store
        .create_task(&kanban_store::NewTask {
            title: title.into(),
            assignee: Some("alice".into()),
            ..Default::default()
        })
        .unwrap()
        .task;
    let claim = ClaimRequest {
        task_id: task.id.clone(),
        claim_lock: claim_lock_for(&hostname(), pid as u32),
        ttl_seconds: 900,
        review: false,
        ceilings: Default::default(),
    };
    let run_id = match store.claim_task(&claim).unwrap() {
        ClaimOutcome::Claimed { run_id, .. } => run_id,
        other => panic!("claim failed: {other:?}"),
    };
    let start = start_time(pid).expect("live process") as i64;
    let set = SetWorker {
        task_id: task.id.clone(),
        run_id: Some(run_id),
        worker: WorkerRecord {
            pid: pid.into(),
            start_time: Some(start + skew),
            boot_id: None,
            host: Some(hostname()),
        },
    };
    assert!(store.set_worker(&set).unwrap());
    (task.id, run_id)
}

/// The API request that detaches the worker of `id` (run `run_id`).
type Ending = fn(&str, i64) -> (&'static str, String, Option<Value>);

const ENDINGS: [(&str, Ending); 9] = [
    ("reclaim", |id, _| {
        ("POST", format!("/api/v1/tasks/{id}/reclaim"), None)
    }),
    ("block", |id, _| {
        let body = json!({"status": "blocked"});
        ("PATCH", format!("/api/v1/tasks/{id}"), Some(body))
    }),
    ("complete", |id, _| {
        let body = json!({"status": "done", "summary": "x"});
        ("PATCH", format!("/api/v1/tasks/{id}"), Some(body))
    }),
    ("schedule", |id, _| {
        let body = json!({"status": "scheduled"});
        ("PATCH", format!("/api/v1/tasks/{id}"), Some(body))
    }),
    ("direct move", |id, _| {
        let body = json!({"status": "todo"});
        ("PATCH", format!("/api/v1/tasks/{id}"), Some(body))
    }),
    ("archive", |id, _| {
        let body = json!({"status": "archived"});
        ("PATCH", format!("/api/v1/tasks/{id}"), Some(body))
    }),
    ("reassign", |id, _| {
        let body = json!({"profile": "bob", "reclaim_first": true});
        ("POST", format!("/api/v1/tasks/{id}/reassign"), Some(body))
    }),
    ("bulk archive", |id, _| {
        let body = json!({"ids": [id], "archive": true});
        ("POST", "/api/v1/tasks/bulk".to_string(), Some(body))
    }),
    ("terminate", |_, run| {
        ("POST", format!("/api/v1/runs/{run}/terminate"), None)
    }),
];

fn gateway(board: &Sandbox) -> GatewayChild {
    // No dispatcher: nothing but the request under test touches the task.
    board.gateway_with(&[("HERMES_KANBAN_DISPATCH_IN_GATEWAY", "0")], &[])
}

#[test]
fn api_endings_never_signal_a_process_that_reused_the_workers_pid() {
    let board = Sandbox::new();
    let gw = gateway(&board);
    let store = board.store();
    let stranger = Stranger::spawn();
    for (name, ending) in ENDINGS {
        let (id, run_id) = running_task(&*store, name, stranger.pid(), 7);
        let (method, path, body) = ending(&id, run_id);
        let r = gw.request(method, &path, body.as_ref());
        assert_eq!(r.status, 200, "{name}: {}", r.body);
        let t = store.get_task(&id).unwrap().unwrap();
        assert_eq!(t.worker_pid, None, "{name}: the task let go of its worker");
        std::thread::sleep(SURVIVAL_WATCH);
        assert!(
            pid_alive(stranger.pid()),
            "{name}: a process that reused the worker's pid was signalled"
        );
    }
}

#[test]
fn api_endings_end_the_recorded_worker() {
    let board = Sandbox::new();
    let gw = gateway(&board);
    let store = board.store();
    for (name, ending) in ENDINGS {
        let worker = Stranger::spawn();
        let (id, run_id) = running_task(&*store, name, worker.pid(), 0);
        let (method, path, body) = ending(&id, run_id);
        let r = gw.request(method, &path, body.as_ref());
        assert_eq!(r.status, 200, "{name}: {}", r.body);
        let ended = wait_for(SETTLE_WAIT, || (!pid_alive(worker.pid())).then_some(()));
        assert!(ended.is_some(), "{name}: the worker still runs");
    }
}
