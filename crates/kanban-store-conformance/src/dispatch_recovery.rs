//! What lets the dispatcher recover without blaming tasks: spawn-retry
//! times, decided releases (intents), supervisors, excused deaths, one
//! guard note per hold.

use kanban_core::{RunOutcome, Status};
use kanban_store::dispatch_ops::*;
use serde_json::json;

use crate::support::*;

fn guard_facts(s: &dyn DispatchStore, id: &str) -> GuardFacts {
    let now = s.now();
    s.respawn_guard_facts(id, now - 3600, now - 86_400).unwrap()
}

pub fn spawn_failures_get_one_retry_time_in_their_run(s: &dyn DispatchStore) {
    let id = create(s, "a").id;
    let other = create(s, "b").id;
    assert!(s.pending_spawn_retries().unwrap().is_empty());
    let run = fail_spawn(s, &id);
    let pending = s.pending_spawn_retries().unwrap();
    assert_eq!(
        pending,
        vec![PendingSpawnRetry {
            task_id: id.clone(),
            run_id: run,
            failures: 1,
            failed_at: ended_at(s, &id, run),
        }]
    );
    assert_eq!(guard_facts(s, &id).spawn_retry_at, None);
    let at = s.now() + 5;
    let retry = |run_id, at| SpawnRetry {
        task_id: id.clone(),
        run_id,
        next_attempt_at: at,
    };
    // Another run of the task is left alone; so is an empty list.
    assert_eq!(s.schedule_spawn_retries(&[retry(run + 99, at)]).unwrap(), 0);
    assert_eq!(s.schedule_spawn_retries(&[]).unwrap(), 0);
    assert_eq!(s.schedule_spawn_retries(&[retry(run, at)]).unwrap(), 1);
    // The first time stays.
    assert_eq!(s.schedule_spawn_retries(&[retry(run, at + 45)]).unwrap(), 0);
    assert!(s.pending_spawn_retries().unwrap().is_empty());
    let facts = guard_facts(s, &id);
    assert_eq!(facts.spawn_retry_at, Some(at));
    assert_eq!(facts.latest_run.unwrap().0, "spawn_failed");
    let meta = s.runs(&id).unwrap()[0].metadata.clone().unwrap();
    assert_eq!(meta, json!({"failures": 1, NEXT_ATTEMPT_KEY: at}));
    assert_eq!(guard_facts(s, &other).spawn_retry_at, None);
    // The next attempt starts and fails again: a new run, a new time.
    let run2 = fail_spawn(s, &id);
    assert_eq!(s.pending_spawn_retries().unwrap()[0].failures, 2);
    assert_eq!(guard_facts(s, &id).spawn_retry_at, None);
    assert_eq!(
        s.schedule_spawn_retries(&[retry(run, at + 7)]).unwrap(),
        0,
        "no longer the latest run"
    );
    assert_eq!(
        s.schedule_spawn_retries(&[retry(run2, at + 10)]).unwrap(),
        1
    );
    assert_eq!(guard_facts(s, &id).spawn_retry_at, Some(at + 10));
    // A claimed task has no pending retry.
    claim(s, &id);
    assert!(s.pending_spawn_retries().unwrap().is_empty());
}

pub fn a_guard_note_is_written_once_per_hold(s: &dyn DispatchStore) {
    let id = create(s, "a").id;
    let count = || {
        kinds(s, &id)
            .iter()
            .filter(|k| *k == "respawn_guarded")
            .count()
    };
    for _ in 0..5 {
        s.note_respawn_guarded(&id, "rate_limit_cooldown").unwrap();
    }
    assert_eq!(count(), 1);
    // Another reason is news; so is the same one after anything else.
    s.note_respawn_guarded(&id, "active_pr").unwrap();
    assert_eq!(count(), 2);
    s.add_comment(&id, "me", "hi").unwrap();
    s.note_respawn_guarded(&id, "active_pr").unwrap();
    assert_eq!(count(), 3);
}

fn intent(run_id: i64, task_id: &str, kind: &str, decided_at: i64) -> TerminationIntent {
    TerminationIntent {
        run_id,
        task_id: task_id.into(),
        kind: kind.into(),
        detail: json!({"elapsed": 5, "limit": 2}),
        decided_at,
    }
}

pub fn a_decided_release_is_read_with_the_attempt_and_cleared_by_it(s: &dyn DispatchStore) {
    let id = create(s, "a").id;
    let run = claim(s, &id);
    s.prepare_dispatch().unwrap();
    s.prepare_dispatch().unwrap();
    let first = intent(run, &id, "timeout", s.now());
    assert!(s.record_intent(&first).unwrap());
    // The first decision stays.
    assert!(
        s.record_intent(&intent(run, &id, "stale", s.now() + 1))
            .unwrap()
    );
    assert_eq!(running(s, &id).intent, Some(first.clone()));
    // Not for another attempt, nor for a task that is not running.
    assert!(!s.record_intent(&intent(run + 1, &id, "ttl", 0)).unwrap());
    let idle = create(s, "idle").id;
    assert!(!s.record_intent(&intent(run, &idle, "ttl", 0)).unwrap());
    let rel = s
        .release_running(&ReleaseRunning {
            outcome: RunOutcome::TimedOut,
            event: kanban_core::EventKind::TimedOut,
            error: "elapsed 5s > limit 2s".into(),
            payload: json!({}),
            clear_heartbeat: true,
            ..crash(&id, run, FailurePolicy::NotCounted)
        })
        .unwrap();
    assert!(rel.released);
    let run2 = claim(s, &id);
    assert!(run2 > run);
    assert_eq!(running(s, &id).intent, None);
}

/// Every query works before `prepare_dispatch` ran (a board the reference
/// created, a dispatcher of an older version).
pub fn intents_work_without_prepare_dispatch(s: &dyn DispatchStore) {
    let id = create(s, "a").id;
    let run = claim(s, &id);
    assert_eq!(running(s, &id).intent, None);
    assert_eq!(s.excused_death_streak(&id).unwrap(), 0);
    s.release_supervision(std::slice::from_ref(&id)).unwrap();
    s.release_supervision(&[]).unwrap();
    let i = TerminationIntent {
        detail: json!({"payload": {}}),
        ..intent(run, &id, "ttl", s.now())
    };
    assert!(s.record_intent(&i).unwrap());
    assert_eq!(running(s, &id).intent, Some(i));
}

pub fn the_launcher_of_a_worker_stays_its_supervisor_unless_released(s: &dyn DispatchStore) {
    s.prepare_dispatch().unwrap();
    let a = create(s, "a").id;
    let b = create(s, "b").id;
    let gateway = worker(4000);
    let batch = ClaimBatch {
        claims: [&a, &b]
            .iter()
            .map(|id| BatchClaim {
                task_id: (*id).clone(),
                review: false,
            })
            .collect(),
        claim_lock: "h:4000".into(),
        ttl_seconds: 900,
        ceilings: Default::default(),
        launcher: Some(gateway.clone()),
    };
    let runs = claimed_runs(s.claim_batch(&batch).unwrap());
    let launches = LaunchBatch {
        workers: [(&a, runs[0], 10), (&b, runs[1], 11)]
            .iter()
            .map(|(id, run, pid)| SetWorker {
                task_id: (*id).clone(),
                run_id: Some(*run),
                worker: WorkerRecord {
                    pid: *pid,
                    ..gateway.clone()
                },
            })
            .collect(),
        ..Default::default()
    };
    assert_eq!(s.record_launches(&launches).unwrap().workers, [true, true]);
    let running = s.running_tasks().unwrap();
    assert!(running.iter().all(|r| r.launcher.is_none()));
    assert!(
        running
            .iter()
            .all(|r| r.supervisor.as_ref() == Some(&gateway))
    );
    s.release_supervision(std::slice::from_ref(&b)).unwrap();
    for r in s.running_tasks().unwrap() {
        assert_eq!(r.supervisor.is_some(), r.id == a, "{r:?}");
    }
}

pub fn excused_deaths_streak_through_crashes_until_anything_else_ends_a_run(s: &dyn DispatchStore) {
    let id = create(s, "a").id;
    assert_eq!(s.excused_death_streak(&id).unwrap(), 0);
    let end = |outcome: RunOutcome, excused: bool| {
        let run = claim(s, &id);
        let payload = if excused {
            json!({"reason": "supervisor_gone", EXCUSED_KEY: true})
        } else {
            json!({})
        };
        let rel = s
            .release_running(&release_as(&id, run, outcome, payload))
            .unwrap();
        assert!(rel.released);
    };
    end(RunOutcome::Reclaimed, true);
    end(RunOutcome::Reclaimed, true);
    assert_eq!(s.excused_death_streak(&id).unwrap(), 2);
    end(RunOutcome::Reclaimed, false);
    assert_eq!(s.excused_death_streak(&id).unwrap(), 0);
    end(RunOutcome::Reclaimed, true);
    assert_eq!(s.excused_death_streak(&id).unwrap(), 1);
    // A counted crash does not give the excuses back.
    end(RunOutcome::Crashed, false);
    assert_eq!(s.excused_death_streak(&id).unwrap(), 1);
    end(RunOutcome::Reclaimed, true);
    assert_eq!(s.excused_death_streak(&id).unwrap(), 2);
    end(RunOutcome::TimedOut, false);
    assert_eq!(s.excused_death_streak(&id).unwrap(), 0);
    assert_eq!(status(s, &id), Status::Ready);
}
