//! Claims of another host on one kernel: its pids mean nothing here, its
//! claims wait while its gateway's lease runs, and once the lease has
//! expired the TTL releases them once, without counting a failure.

use std::sync::Arc;

use kanban_core::Status;
use kanban_hermes::layout::{Env, MapEnv};
use kanban_store::dispatch_ops::{HostLease, SetWorker, WorkerRecord};
use kanban_store::{ClaimOutcome, ClaimRequest, EventQuery};

use crate::dispatcher::*;
use crate::liveness::{Liveness, StaticLiveness};
use crate::options::DispatchOptions;
use crate::pass::tests::{Fixture, MapProfiles};
use crate::spawner::StubSpawner;

const TTL: i64 = 10;
/// Host a's worker, whose pid host b also runs (a process of its own).
const PID: i32 = 5;
const START: u64 = 100;

fn dispatcher(f: &Fixture, liveness: &Arc<StaticLiveness>) -> Dispatcher {
    Dispatcher::new(DispatcherParts {
        store: f.store.clone(),
        spawner: Arc::new(StubSpawner::with_liveness(liveness.clone())),
        liveness: liveness.clone(),
        profiles: Arc::new(MapProfiles::default()),
        context: Arc::new(TitleBodyContext),
        env: Arc::new(MapEnv::new()) as Arc<dyn Env + Send + Sync>,
        board: f.board(),
    })
}

fn reclaimed_events(f: &Fixture, id: &str) -> usize {
    let q = EventQuery {
        task_id: Some(id.into()),
        ..Default::default()
    };
    f.store
        .events(&q)
        .unwrap()
        .iter()
        .filter(|e| e.kind.as_str() == "reclaimed")
        .count()
}

/// A task running on host a (`node-a`), its worker recorded as a's.
fn claimed_by_node_a(f: &Fixture, a: &StaticLiveness) -> String {
    let id = f.create("t", None);
    let claim = ClaimRequest {
        task_id: id.clone(),
        claim_lock: format!("node-a:{PID}"),
        ttl_seconds: TTL,
        review: false,
        ceilings: Default::default(),
    };
    let ClaimOutcome::Claimed { run_id, .. } = f.store.claim_task(&claim).unwrap() else {
        panic!("claim lost");
    };
    f.store
        .set_worker(&SetWorker {
            task_id: id.clone(),
            run_id: Some(run_id),
            worker: WorkerRecord {
                pid: i64::from(PID),
                start_time: Some(START as i64),
                boot_id: a.instance_id(),
                host: Some(a.hostname()),
            },
        })
        .unwrap();
    id
}

#[test]
fn another_hosts_claim_waits_for_its_lease_then_is_released_once_without_a_failure() {
    let f = Fixture::new();
    // Two hosts on one kernel: same boot id, and b runs a pid 5 of its
    // own with the very start time a recorded.
    let a = StaticLiveness::sharing_kernel("node-a", "boot-1");
    let b = Arc::new(StaticLiveness::sharing_kernel("node-b", "boot-1"));
    b.add(PID, START);
    let id = claimed_by_node_a(&f, &a);
    f.store
        .renew_host_lease(&HostLease {
            host_id: "node-a".into(),
            gateway_pid: 1,
            started_at: f.store.now(),
            lease_seconds: 3 * TTL,
        })
        .unwrap();
    let d = dispatcher(&f, &b);
    let opts = DispatchOptions {
        claim_ttl_seconds: TTL,
        ..Default::default()
    };

    // The claim expired but a's gateway is alive: b neither extends it
    // (pid 5 here is not a's worker) nor releases it.
    f.clock.advance(TTL + 1);
    let expires = f.task(&id).claim_expires;
    let r = d.dispatch_once(&opts).unwrap();
    assert_eq!(r.reclaimed, 0, "{r:?}");
    assert!(r.crashed.is_empty(), "{r:?}");
    let t = f.task(&id);
    assert_eq!((t.status, t.claim_expires), (Status::Running, expires));
    assert!(b.pid_alive(PID), "b signals nothing of a's");

    // a's lease runs out: the TTL releases its claim, not as a failure.
    f.clock.advance(3 * TTL);
    let r = d.dispatch_once(&opts).unwrap();
    assert_eq!(r.reclaimed, 1, "{r:?}");
    let t = f.task(&id);
    assert_eq!(t.status, Status::Ready);
    assert_eq!(t.consecutive_failures, 0);
    assert_eq!(t.claim_lock, None);
    assert!(b.pid_alive(PID), "b's own pid 5 is never signalled");
    // Exactly once.
    let r = d.dispatch_once(&opts).unwrap();
    assert_eq!(r.reclaimed, 0);
    assert_eq!(reclaimed_events(&f, &id), 1);
}

#[test]
fn a_claim_of_a_host_without_a_lease_is_released_on_its_ttl() {
    let f = Fixture::new();
    let a = StaticLiveness::sharing_kernel("node-a", "boot-1");
    let b = Arc::new(StaticLiveness::sharing_kernel("node-b", "boot-1"));
    let id = claimed_by_node_a(&f, &a);
    let d = dispatcher(&f, &b);
    let opts = DispatchOptions {
        claim_ttl_seconds: TTL,
        ..Default::default()
    };
    assert_eq!(
        d.dispatch_once(&opts).unwrap().reclaimed,
        0,
        "not expired yet"
    );
    f.clock.advance(TTL + 1);
    assert_eq!(d.dispatch_once(&opts).unwrap().reclaimed, 1);
    let t = f.task(&id);
    assert_eq!((t.status, t.consecutive_failures), (Status::Ready, 0));
}

#[test]
fn a_gateway_pass_renews_its_hosts_lease() {
    let f = Fixture::new();
    let b = Arc::new(StaticLiveness::sharing_kernel("node-b", "boot-1"));
    let d = dispatcher(&f, &b);
    d.dispatch_once(&DispatchOptions::default()).unwrap();
    assert!(
        f.store.hosts().unwrap().is_empty(),
        "one-shot passes register nothing"
    );
    let opts = DispatchOptions {
        host_lease_seconds: Some(30),
        ..Default::default()
    };
    d.dispatch_once(&opts).unwrap();
    let hosts = f.store.hosts().unwrap();
    assert_eq!(hosts.len(), 1);
    assert_eq!(hosts[0].host_id, "node-b");
    assert_eq!(hosts[0].gateway_pid, i64::from(std::process::id()));
    assert_eq!(hosts[0].lease_expires, f.store.now() + 30);
    // Not due again yet: the next pass writes nothing.
    f.clock.advance(10);
    d.dispatch_once(&opts).unwrap();
    assert_eq!(f.store.hosts().unwrap()[0].last_seen, hosts[0].last_seen);
}
