//! Batched claims: workers recorded together, ceilings inside the batch,
//! and the prompt release of claims whose launching dispatcher died.

use std::collections::HashMap;
use std::os::unix::fs::PermissionsExt;
use std::sync::Arc;

use kanban_hermes::layout::{Env, MapEnv};
use kanban_hermes::profiles::ProfileKind;
use kanban_store::dispatch_ops::{BatchClaim, ClaimBatch, WorkerRecord};
use kanban_store::{ClaimOutcome, EventQuery};

use crate::dispatcher::*;
use crate::liveness::StaticLiveness;
use crate::options::DispatchOptions;
use crate::pass::tests::{Fixture, MapProfiles};
use crate::spawner::StubSpawner;

/// A dispatcher with fake workers and a hand-set process table (host `h`,
/// boot `boot-1`), profiles `agent` (spawnable) only.
fn stub_dispatcher(f: &Fixture, liveness: &Arc<StaticLiveness>) -> (Dispatcher, Arc<StubSpawner>) {
    let spawner = Arc::new(StubSpawner::with_liveness(liveness.clone()));
    let mut profiles = HashMap::new();
    profiles.insert(
        "agent".to_string(),
        ProfileKind::Template {
            spec: kanban_hermes::config::ProfileSpec {
                command: vec!["agent".into(), "{task_id}".into()],
                ..Default::default()
            },
        },
    );
    let parts = DispatcherParts {
        store: f.store.clone(),
        spawner: spawner.clone(),
        liveness: liveness.clone(),
        profiles: Arc::new(MapProfiles(profiles)),
        context: Arc::new(TitleBodyContext),
        env: Arc::new(MapEnv::new()) as Arc<dyn Env + Send + Sync>,
        board: f.board(),
    };
    (Dispatcher::new(parts), spawner)
}

fn launcher(pid: i64, host: &str, boot: &str) -> WorkerRecord {
    WorkerRecord {
        pid,
        start_time: Some(77),
        boot_id: Some(boot.into()),
        host: Some(host.into()),
    }
}

/// Claim `ids` the way a dispatcher does, as `launcher`, and stop there
/// (as if it died before starting the workers).
fn claim_as(f: &Fixture, ids: &[String], launcher: WorkerRecord) {
    let batch = ClaimBatch {
        claims: ids
            .iter()
            .map(|id| BatchClaim {
                task_id: id.clone(),
                review: false,
            })
            .collect(),
        claim_lock: format!("{}:{}", launcher.host.clone().unwrap(), launcher.pid),
        ttl_seconds: 900,
        ceilings: Default::default(),
        launcher: Some(launcher),
    };
    let out = f.store.claim_batch(&batch).unwrap();
    assert!(
        out.iter()
            .all(|o| matches!(o, ClaimOutcome::Claimed { .. })),
        "{out:?}"
    );
}

fn payloads(f: &Fixture, id: &str, kind: &str) -> Vec<serde_json::Value> {
    let q = EventQuery {
        task_id: Some(id.into()),
        ..Default::default()
    };
    f.store
        .events(&q)
        .unwrap()
        .into_iter()
        .filter(|e| e.kind == kind)
        .map(|e| e.payload)
        .collect()
}

#[test]
fn a_batch_records_every_worker_and_leaves_no_launch_behind() {
    let f = Fixture::new();
    let liveness = Arc::new(StaticLiveness::new("h"));
    let ids: Vec<String> = (0..7)
        .map(|i| f.create(&format!("t{i}"), Some("agent")))
        .collect();
    let (d, spawner) = stub_dispatcher(&f, &liveness);
    let r = d.dispatch_once(&DispatchOptions::default()).unwrap();
    assert_eq!(r.spawned.len(), 7);
    // Candidate order is kept (oldest first at equal priority).
    let order: Vec<&str> = r.spawned.iter().map(|s| s.task_id.as_str()).collect();
    assert_eq!(order, ids.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(spawner.spawned().len(), 7);
    let running = f.store.running_tasks().unwrap();
    assert_eq!(running.len(), 7);
    for rt in &running {
        assert!(rt.worker_pid.is_some(), "{rt:?}");
        assert!(rt.worker.is_some(), "{rt:?}");
        assert!(rt.launcher.is_none(), "launch row left: {rt:?}");
        let t = f.task(&rt.id);
        assert!(t.workspace_path.is_some());
        assert_eq!(payloads(&f, &rt.id, "spawned").len(), 1);
        assert_eq!(payloads(&f, &rt.id, "claimed").len(), 1);
    }
    // The next pass finds every worker alive: nothing released.
    let r = d.dispatch_once(&DispatchOptions::default()).unwrap();
    assert_eq!(r.reclaimed, 0);
    assert!(r.spawned.is_empty());
}

#[test]
fn a_big_batch_makes_its_scratch_workspaces_while_it_claims() {
    let f = Fixture::new();
    let liveness = Arc::new(StaticLiveness::new("h"));
    let n = super::SCRATCH_AHEAD_MIN_PICKS + 4;
    let ids: Vec<String> = (0..n)
        .map(|i| f.create(&format!("t{i}"), Some("agent")))
        .collect();
    let (d, spawner) = stub_dispatcher(&f, &liveness);
    let r = d.dispatch_once(&DispatchOptions::default()).unwrap();
    assert_eq!(r.spawned.len(), n, "{r:?}");
    assert_eq!(spawner.spawned().len(), n);
    let root = f.board().workspaces_root;
    for id in &ids {
        let dir = root.join(id);
        assert_eq!(f.task(id).workspace_path, Some(dir.display().to_string()));
        let mode = std::fs::metadata(&dir).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700, "{}", dir.display());
    }
    // One directory per claimed task, nothing else.
    assert_eq!(std::fs::read_dir(&root).unwrap().count(), n);
}

#[test]
fn ceilings_are_counted_inside_the_batch() {
    let f = Fixture::new();
    let liveness = Arc::new(StaticLiveness::new("h"));
    for i in 0..6 {
        f.create(&format!("t{i}"), Some("agent"));
    }
    let (d, _) = stub_dispatcher(&f, &liveness);
    let opts = DispatchOptions {
        max_spawn: Some(4),
        max_in_progress_per_profile: Some(3),
        ..Default::default()
    };
    let r = d.dispatch_once(&opts).unwrap();
    assert_eq!(r.spawned.len(), 3, "{r:?}");
    assert_eq!(f.store.running_counts().unwrap().total, 3);
    assert_eq!(r.skipped_per_profile_capped.len(), 3, "{r:?}");
    // A store-level batch with a global ceiling stops at it.
    let ready: Vec<String> = f
        .store
        .dispatch_candidates(kanban_core::Status::Ready)
        .unwrap()
        .into_iter()
        .map(|c| c.id)
        .collect();
    let out = f
        .store
        .claim_batch(&ClaimBatch {
            claims: ready
                .iter()
                .map(|id| BatchClaim {
                    task_id: id.clone(),
                    review: false,
                })
                .collect(),
            claim_lock: "h:1".into(),
            ttl_seconds: 900,
            ceilings: kanban_store::Ceilings {
                max_running: Some(4),
                ..Default::default()
            },
            launcher: None,
        })
        .unwrap();
    let claimed = out
        .iter()
        .filter(|o| matches!(o, ClaimOutcome::Claimed { .. }))
        .count();
    assert_eq!(claimed, 1, "{out:?}");
    assert!(
        out[1..]
            .iter()
            .all(|o| matches!(o, ClaimOutcome::CeilingReached(n) if n.starts_with("max_running"))),
        "{out:?}"
    );
}

#[test]
fn claims_of_a_dead_launcher_are_released_at_once() {
    let f = Fixture::new();
    let liveness = Arc::new(StaticLiveness::new("h"));
    // Lanes: never spawned, so a released task stays visible in ready.
    let ids: Vec<String> = (0..3)
        .map(|i| f.create(&format!("t{i}"), Some("lane")))
        .collect();
    claim_as(&f, &ids[..2], launcher(4242, "h", "boot-1"));
    claim_as(&f, &ids[2..], launcher(4343, "h", "boot-1"));
    liveness.add(4343, 77); // this launcher is still at work
    let running = f.store.running_tasks().unwrap();
    assert!(running.iter().all(|r| r.launcher.is_some()));
    let (d, _) = stub_dispatcher(&f, &liveness);
    let r = d.dispatch_once(&DispatchOptions::default()).unwrap();
    assert_eq!(r.reclaimed, 2, "{r:?}");
    for id in &ids[..2] {
        assert_eq!(f.task(id).status, kanban_core::Status::Ready);
        assert!(f.task(id).claim_lock.is_none());
        let p = payloads(&f, id, "reclaimed");
        assert_eq!(p.len(), 1);
        assert_eq!(p[0]["reason"], "launcher_gone");
        assert_eq!(p[0]["launcher_pid"], 4242);
        let runs = f.store.runs(id).unwrap();
        assert_eq!(runs.last().unwrap().outcome.as_deref(), Some("reclaimed"));
        assert_eq!(f.task(id).consecutive_failures, 0, "not counted");
    }
    assert_eq!(f.task(&ids[2]).status, kanban_core::Status::Running);
    // Once that launcher is gone too (pid reused by another process), it goes.
    liveness.add(4343, 99);
    let r = d.dispatch_once(&DispatchOptions::default()).unwrap();
    assert_eq!(r.reclaimed, 1);
    assert_eq!(f.task(&ids[2]).status, kanban_core::Status::Ready);
}

#[test]
fn launches_of_another_machine_wait_for_the_ttl_and_a_reboot_releases_ours() {
    let f = Fixture::new();
    let liveness = Arc::new(StaticLiveness::new("h"));
    let remote = f.create("remote", Some("lane"));
    let rebooted = f.create("rebooted", Some("lane"));
    claim_as(
        &f,
        std::slice::from_ref(&remote),
        launcher(4242, "other", "boot-9"),
    );
    claim_as(
        &f,
        std::slice::from_ref(&rebooted),
        launcher(4242, "h", "boot-0"),
    );
    let (d, _) = stub_dispatcher(&f, &liveness);
    let dry = d
        .dispatch_once(&DispatchOptions {
            dry_run: true,
            ..Default::default()
        })
        .unwrap();
    assert_eq!(dry.reclaimed, 1);
    assert_eq!(f.task(&rebooted).status, kanban_core::Status::Running);
    let r = d.dispatch_once(&DispatchOptions::default()).unwrap();
    assert_eq!(r.reclaimed, 1);
    assert_eq!(f.task(&rebooted).status, kanban_core::Status::Ready);
    assert_eq!(f.task(&remote).status, kanban_core::Status::Running);
}

#[test]
fn a_launch_left_by_this_process_is_stale_on_the_next_pass() {
    // A failed record leaves this very process as the launcher; its
    // launches never outlive the pass that made them.
    let f = Fixture::new();
    let liveness = Arc::new(StaticLiveness::new("h"));
    let id = f.create("mine", Some("lane"));
    let me = i64::from(std::process::id());
    claim_as(&f, std::slice::from_ref(&id), launcher(me, "h", "boot-1"));
    let (d, _) = stub_dispatcher(&f, &liveness);
    let r = d.dispatch_once(&DispatchOptions::default()).unwrap();
    assert_eq!(r.reclaimed, 1);
    assert_eq!(f.task(&id).status, kanban_core::Status::Ready);
}
