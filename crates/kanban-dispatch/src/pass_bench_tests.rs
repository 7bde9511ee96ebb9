//! Rough cost measurements of the pass (ignored by default; run with
//! `cargo test -p kanban-dispatch --release -- --ignored --nocapture`).
//! The benchmark harness owns the real numbers; these catch regressions
//! by an order of magnitude.

use std::sync::Arc;
use std::time::Instant;

use kanban_store::Store;
use kanban_store::layout::MapEnv;

use crate::pass::tests::{Fixture, MapProfiles};
use crate::pass::*;

/// Cost of an idle pass over a board of done tasks.
#[test]
#[ignore]
fn idle_pass_cost() {
    let f = Fixture::new();
    for i in 0..5_000 {
        let id = f.create(&format!("t{i}"), Some("lane"));
        let claim = kanban_store::ClaimRequest {
            task_id: id.clone(),
            claim_lock: "h:1".into(),
            ttl_seconds: 900,
            review: false,
            ceilings: Default::default(),
        };
        f.store.claim_task(&claim).unwrap();
        let done = kanban_store::CompleteRequest {
            task_id: id,
            summary: Some("ok".into()),
            ..Default::default()
        };
        f.store.complete_task(&done).unwrap();
    }
    let d = f.dispatcher();
    d.dispatch_once(&DispatchOptions::default()).unwrap();
    let n = 2_000;
    let t0 = Instant::now();
    for _ in 0..n {
        d.dispatch_once(&DispatchOptions::default()).unwrap();
    }
    eprintln!("idle pass: {:?}", t0.elapsed() / n);
}

/// Claims per second with the stub spawner.
#[test]
#[ignore]
fn claim_throughput() {
    use crate::liveness::StaticLiveness;
    use crate::spawner::StubSpawner;
    let mut f = Fixture::new();
    f.script_profile("agent", "exit 0\n");
    for i in 0..2_000 {
        f.create(&format!("t{i}"), Some("agent"));
    }
    let liveness = Arc::new(StaticLiveness::new("h"));
    let parts = DispatcherParts {
        store: f.store.clone(),
        spawner: Arc::new(StubSpawner::with_liveness(liveness.clone())),
        liveness,
        profiles: Arc::new(MapProfiles(f.profiles.0.clone())),
        context: Arc::new(TitleBodyContext),
        env: Arc::new(MapEnv::new()),
        board: f.board(),
    };
    let d = Dispatcher::new(parts);
    let t0 = Instant::now();
    let r = d.dispatch_once(&DispatchOptions::default()).unwrap();
    let el = t0.elapsed();
    assert_eq!(r.spawned.len(), 2_000);
    eprintln!(
        "{} claims in {el:?}: {:.0}/s",
        r.spawned.len(),
        2_000.0 / el.as_secs_f64()
    );
}
