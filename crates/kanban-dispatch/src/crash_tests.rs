//! Which worker deaths count toward the breaker, against a real board with
//! fake workers: a supervisor gone with its worker excuses the death (for
//! a bounded streak); a lone death under a live supervisor counts.

use std::collections::HashMap;
use std::sync::Arc;

use kanban_core::Status;
use kanban_core::defaults::EXCUSED_DEATH_STREAK_LIMIT;
use kanban_hermes::layout::{Env, MapEnv};
use kanban_hermes::profiles::ProfileKind;

use crate::dispatcher::*;
use crate::liveness::{Liveness, StaticLiveness};
use crate::options::DispatchOptions;
use crate::pass::tests::{Fixture, MapProfiles};
use crate::spawner::StubSpawner;

fn dispatcher(f: &Fixture, liveness: &Arc<StaticLiveness>) -> Dispatcher {
    let spawner = Arc::new(StubSpawner::with_liveness(liveness.clone()));
    let mut profiles = HashMap::new();
    profiles.insert(
        "agent".to_string(),
        ProfileKind::Template {
            spec: kanban_hermes::config::ProfileSpec {
                command: vec!["agent".into()],
                ..Default::default()
            },
        },
    );
    Dispatcher::new(DispatcherParts {
        store: f.store.clone(),
        spawner,
        liveness: liveness.clone(),
        profiles: Arc::new(MapProfiles(profiles)),
        context: Arc::new(TitleBodyContext),
        env: Arc::new(MapEnv::new()) as Arc<dyn Env + Send + Sync>,
        board: f.board(),
    })
}

/// Kill the task's current (fake) worker without anyone seeing its exit.
fn kill_worker(f: &Fixture, liveness: &StaticLiveness, id: &str) {
    let pid = f.task(id).worker_pid.expect("a worker") as i32;
    liveness.remove(pid);
}

#[test]
fn deaths_with_their_supervisor_gone_are_excused_for_a_while() {
    let f = Fixture::new();
    // This process is not in the process table: as seen by the pass, the
    // dispatcher that started the workers (us) is gone.
    let liveness = Arc::new(StaticLiveness::new("h"));
    let d = dispatcher(&f, &liveness);
    let id = f.create("t", Some("agent"));
    assert_eq!(
        d.dispatch_once(&DispatchOptions::default())
            .unwrap()
            .spawned
            .len(),
        1
    );
    for n in 1..=EXCUSED_DEATH_STREAK_LIMIT {
        kill_worker(&f, &liveness, &id);
        let r = d.dispatch_once(&DispatchOptions::default()).unwrap();
        assert_eq!((r.reclaimed, r.crashed.len()), (1, 0), "death {n}: {r:?}");
        assert_eq!(r.spawned.len(), 1, "requeued and started again");
        assert_eq!(f.task(&id).consecutive_failures, 0);
    }
    let runs = f.store.runs(&id).unwrap();
    let meta = runs[0].metadata.as_ref().unwrap();
    assert_eq!(
        (meta["reason"].as_str(), meta["excused"].as_bool()),
        (Some("supervisor_gone"), Some(true))
    );
    // The excuses ran out: the next deaths count, and the breaker trips.
    kill_worker(&f, &liveness, &id);
    let r = d.dispatch_once(&DispatchOptions::default()).unwrap();
    assert_eq!(r.crashed, vec![id.clone()]);
    assert_eq!(f.task(&id).consecutive_failures, 1);
    kill_worker(&f, &liveness, &id);
    d.dispatch_once(&DispatchOptions::default()).unwrap();
    assert_eq!(f.task(&id).status, Status::Blocked);
}

#[test]
fn a_lone_death_under_a_live_supervisor_counts() {
    let f = Fixture::new();
    let liveness = Arc::new(StaticLiveness::new("h"));
    let me = std::process::id() as i32;
    liveness.add(me, 42);
    assert_eq!(liveness.start_time(me), Some(42));
    let d = dispatcher(&f, &liveness);
    let id = f.create("t", Some("agent"));
    d.dispatch_once(&DispatchOptions::default()).unwrap();
    kill_worker(&f, &liveness, &id);
    let r = d.dispatch_once(&DispatchOptions::default()).unwrap();
    assert_eq!((r.reclaimed, r.crashed.clone()), (0, vec![id.clone()]));
    assert_eq!(f.task(&id).consecutive_failures, 1);
}

#[test]
fn a_one_shot_dispatcher_supervises_nothing() {
    let f = Fixture::new();
    let liveness = Arc::new(StaticLiveness::new("h"));
    let d = dispatcher(&f, &liveness);
    let id = f.create("t", Some("agent"));
    let one_shot = DispatchOptions {
        supervises_workers: false,
        ..Default::default()
    };
    d.dispatch_once(&one_shot).unwrap();
    // Its end says nothing about the worker's death: counted.
    kill_worker(&f, &liveness, &id);
    let r = d.dispatch_once(&one_shot).unwrap();
    assert_eq!(r.crashed, vec![id.clone()]);
}
