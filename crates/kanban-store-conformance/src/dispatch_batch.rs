//! A dispatch pass's two batched writes on one handle: `claim_batch` (each
//! claim the usual compare-and-swap, the ceilings counted with the batch's
//! own claims) and `record_launches` (workspaces, workers, spawn failures,
//! each fenced to its attempt).

use kanban_core::Status;
use kanban_store::dispatch_ops::*;
use kanban_store::*;
use serde_json::json;

use crate::support::*;

/// The dispatcher process that claims the batches.
fn gateway() -> WorkerRecord {
    WorkerRecord {
        pid: 4000,
        start_time: Some(7),
        boot_id: Some("boot".into()),
        host: Some("h".into()),
    }
}

fn batch(ids: &[&String], ceilings: Ceilings) -> ClaimBatch {
    ClaimBatch {
        claims: ids
            .iter()
            .map(|id| BatchClaim {
                task_id: (*id).clone(),
                review: false,
            })
            .collect(),
        claim_lock: "h:4000".into(),
        ttl_seconds: 900,
        ceilings,
        launcher: Some(gateway()),
    }
}

fn of(s: &dyn Store, who: &str, n: usize) -> Vec<String> {
    (0..n)
        .map(|i| {
            let req = NewTask {
                assignee: Some(who.into()),
                ..new_task(&format!("{who}{i}"))
            };
            create_with(s, req).id
        })
        .collect()
}

/// One outcome per claim, in order: earlier claims of the batch count
/// toward later ones' ceilings, a full profile skips only that profile, a
/// full board reports the rest untried, a task deleted since the
/// candidates were read is lost without failing the batch.
pub fn claim_batch_counts_its_own_claims_toward_the_ceilings(s: &dyn DispatchStore) {
    let (a, b) = (of(s, "a", 3), of(s, "b", 3));
    let held = create(s, "held").id;
    claim(s, &held);
    let gone = create(s, "gone").id;
    s.delete_task(&gone, false).unwrap();
    let tail = create(s, "tail").id;
    let ceilings = Ceilings {
        max_running: Some(5),
        max_per_profile: Some(2),
        ..Default::default()
    };
    let order = [
        &a[0], &a[1], &gone, &held, &b[0], &a[2], &b[1], &b[2], &tail,
    ];
    let out = s.claim_batch(&batch(&order, ceilings)).unwrap();
    assert_eq!(out.len(), order.len(), "{out:?}");
    let label = |o: &ClaimOutcome| match o {
        ClaimOutcome::Claimed { .. } => "claimed".to_string(),
        ClaimOutcome::Lost { status, .. } => format!("lost:{status}"),
        ClaimOutcome::ParentsPending => "parents".to_string(),
        ClaimOutcome::CeilingReached(name) => {
            format!("ceiling:{}", name.split(' ').next().unwrap_or(""))
        }
    };
    assert_eq!(
        out.iter().map(label).collect::<Vec<_>>(),
        [
            "claimed",
            "claimed",
            "lost:archived",
            "lost:running",
            "claimed",
            "ceiling:max_per_profile[a]",
            "claimed",
            "ceiling:max_running",
            "ceiling:max_running",
        ]
    );
    let ClaimOutcome::Lost { claim_lock, .. } = &out[3] else {
        unreachable!()
    };
    assert_eq!(claim_lock.as_deref(), Some("host:1"), "the holder's lock");
    for (id, o) in order.iter().zip(&out) {
        if let ClaimOutcome::Claimed { task, run_id } = o {
            assert_eq!(task.current_run_id, Some(*run_id));
            assert_eq!(task.claim_lock.as_deref(), Some("h:4000"));
            let ev = last_event(s, id, "claimed");
            assert_eq!(ev.run_id, Some(*run_id));
            assert_eq!(running(s, id).launcher, Some(gateway()));
        } else if *id != &gone && *id != &held {
            assert_eq!(status(s, id), Status::Ready, "{id}: nothing written");
            assert!(s.runs(id).unwrap().is_empty());
        }
    }
    assert_eq!(running(s, &held).launcher, None, "a single claim");
    let counts = s.running_counts().unwrap();
    assert_eq!(counts.total, 5);
    assert_eq!((counts.by_assignee["a"], counts.by_assignee["b"]), (2, 2));
    assert!(s.get_task(&gone).unwrap().is_none());
    // A review claim of a ready task loses, as `claim_task` does.
    let review = ClaimBatch {
        claims: vec![BatchClaim {
            task_id: tail.clone(),
            review: true,
        }],
        ..batch(&[], Ceilings::default())
    };
    assert!(matches!(
        s.claim_batch(&review).unwrap()[..],
        [ClaimOutcome::Lost {
            status: Status::Ready,
            ..
        }]
    ));
}

/// Workspaces, workers and spawn failures of a batch, each applied only
/// to the attempt it names; a recorded worker ends the launch record and
/// its launcher becomes its supervisor.
pub fn record_launches_applies_each_entry_to_its_attempt(s: &dyn DispatchStore) {
    let ids = of(s, "coder", 5);
    let refs: Vec<&String> = ids.iter().collect();
    let runs = claimed_runs(s.claim_batch(&batch(&refs, Ceilings::default())).unwrap());
    let ws = |i: usize, run: i64, tip: Option<&str>| SetWorkspace {
        task_id: ids[i].clone(),
        run_id: Some(run),
        path: format!("/srv/ws/{i}"),
        branch: None,
        tip: tip.map(str::to_string),
    };
    let set_worker = |i: usize, run: i64, pid: i64| SetWorker {
        task_id: ids[i].clone(),
        run_id: Some(run),
        worker: WorkerRecord { pid, ..gateway() },
    };
    let failure = |i: usize, run: i64| SpawnFailure {
        task_id: ids[i].clone(),
        run_id: Some(run),
        error: "`ghost` not found".into(),
        failure_limit: 100,
    };
    let launches = LaunchBatch {
        workspaces: vec![
            ws(0, runs[0], Some("scratch tip")),
            ws(1, runs[1] + 99, None),
            // A workspace without a worker: its spawn failed.
            ws(2, runs[2], None),
        ],
        workers: vec![
            set_worker(0, runs[0], 10),
            set_worker(1, runs[1] + 99, 11),
            // A worker without a workspace entry (it runs in the board's workdir).
            set_worker(4, runs[4], 12),
        ],
        failures: vec![failure(2, runs[2]), failure(3, runs[3] + 99)],
    };
    assert!(!launches.is_empty());
    let rec = s.record_launches(&launches).unwrap();
    assert_eq!(rec.workers, vec![true, false, true]);
    assert_eq!(rec.failures.len(), 2);
    assert!(rec.failures[0].released && !rec.failures[0].auto_blocked);
    assert_eq!(
        (rec.failures[0].run_id, rec.failures[0].failures),
        (Some(runs[2]), 1)
    );
    assert_eq!(rec.failures[1], Released::default(), "stale: nothing");

    let t0 = get(s, &ids[0]);
    assert_eq!(t0.workspace_path.as_deref(), Some("/srv/ws/0"));
    assert_eq!(t0.worker_pid, Some(10));
    assert_eq!(
        last_event(s, &ids[0], "tip_scratch_workspace").payload,
        json!({"message": "scratch tip"})
    );
    let r0 = running(s, &ids[0]);
    assert_eq!((r0.launcher, r0.supervisor), (None, Some(gateway())));
    assert_eq!(r0.worker.map(|w| w.pid), Some(10));

    assert_ne!(get(s, &ids[1]).workspace_path.as_deref(), Some("/srv/ws/1"));
    let r1 = running(s, &ids[1]);
    assert_eq!((r1.worker, r1.supervisor), (None, None));
    assert_eq!(r1.launcher, Some(gateway()), "still waiting for its worker");

    assert_eq!(status(s, &ids[2]), Status::Ready);
    assert_eq!(get(s, &ids[2]).workspace_path.as_deref(), Some("/srv/ws/2"));
    assert_eq!(
        s.runs(&ids[2]).unwrap()[0].outcome.as_deref(),
        Some("spawn_failed")
    );
    assert_eq!(
        last_event(s, &ids[2], "spawn_failed").payload["failures"],
        1
    );
    assert_eq!(status(s, &ids[3]), Status::Running);
    let t4 = get(s, &ids[4]);
    assert_eq!((t4.worker_pid, t4.workspace_path), (Some(12), None));
    assert_eq!(running(s, &ids[4]).worker.map(|w| w.pid), Some(12));
    assert!(LaunchBatch::default().is_empty());
    assert_eq!(
        s.record_launches(&LaunchBatch::default()).unwrap(),
        LaunchesRecorded::default()
    );
}

/// A worker that finished its run before its launch was recorded (its
/// `kanban complete` committed first): the run still gets its worker pid
/// and its `spawned` event, the finished task is left as it is; a worker
/// for another task's run, or for a run still open, records nothing.
pub fn a_launch_recorded_after_its_worker_finished_still_names_the_worker(s: &dyn DispatchStore) {
    let ids = of(s, "coder", 2);
    let refs: Vec<&String> = ids.iter().collect();
    let runs = claimed_runs(s.claim_batch(&batch(&refs, Ceilings::default())).unwrap());
    s.complete_task(&CompleteRequest {
        task_id: ids[0].clone(),
        expected_run_id: Some(runs[0]),
        summary: Some("quick".into()),
        ..Default::default()
    })
    .unwrap();
    let set_worker = |task: usize, run: i64, pid: i64| SetWorker {
        task_id: ids[task].clone(),
        run_id: Some(run),
        worker: WorkerRecord { pid, ..gateway() },
    };
    let launches = LaunchBatch {
        workers: vec![
            set_worker(0, runs[0], 21),
            // Another task's run: not this worker's to name.
            set_worker(0, runs[1], 22),
        ],
        ..Default::default()
    };
    assert_eq!(s.record_launches(&launches).unwrap().workers, [true, false]);
    let done = get(s, &ids[0]);
    assert_eq!(done.status, Status::Done);
    assert_eq!(done.worker_pid, None, "the finished task is left alone");
    let run = s
        .runs(&ids[0])
        .unwrap()
        .into_iter()
        .find(|r| r.id == runs[0])
        .unwrap();
    assert_eq!(run.worker_pid, Some(21));
    let spawned = last_event(s, &ids[0], "spawned");
    assert_eq!(
        (spawned.run_id, spawned.payload["pid"].clone()),
        (Some(runs[0]), json!(21))
    );
    assert_eq!(
        kinds(s, &ids[0]).iter().filter(|k| *k == "spawned").count(),
        1
    );
    // Recorded once: a second report of the same launch adds nothing.
    assert_eq!(
        s.record_launches(&launches).unwrap().workers,
        [false, false]
    );
    assert_eq!(
        kinds(s, &ids[0]).iter().filter(|k| *k == "spawned").count(),
        1
    );
    // The other task still runs, without a worker named.
    assert_eq!(status(s, &ids[1]), Status::Running);
    assert_eq!(get(s, &ids[1]).worker_pid, None);
}

/// `set_workspace` keeps the branch it is not given and is fenced to the
/// attempt.
pub fn set_workspace_is_fenced_to_the_attempt(s: &dyn DispatchStore) {
    let id = create_with(
        s,
        NewTask {
            workspace_kind: Some("worktree".into()),
            ..new_task("wt")
        },
    )
    .id;
    let run = claim(s, &id);
    let req = |run, path: &str, branch: Option<&str>| SetWorkspace {
        task_id: id.clone(),
        run_id: Some(run),
        path: path.into(),
        branch: branch.map(str::to_string),
        tip: None,
    };
    assert!(
        s.set_workspace(&req(run, "/repo/.wt/a", Some("wt/a")))
            .unwrap()
    );
    assert!(s.set_workspace(&req(run, "/repo/.wt/b", None)).unwrap());
    let t = get(s, &id);
    assert_eq!(
        (t.workspace_path.as_deref(), t.branch_name.as_deref()),
        (Some("/repo/.wt/b"), Some("wt/a"))
    );
    assert!(!s.set_workspace(&req(run + 1, "/elsewhere", None)).unwrap());
    assert_eq!(get(s, &id).workspace_path.as_deref(), Some("/repo/.wt/b"));
    assert!(
        !kinds(s, &id).contains(&"tip_scratch_workspace".to_string()),
        "no tip, no event"
    );
}
