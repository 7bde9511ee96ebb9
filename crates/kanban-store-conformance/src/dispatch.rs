//! The dispatcher's store operations ([`DispatchStore`]) on one handle:
//! worker records, releases and the circuit breaker, claim extension and
//! deferral, spawn failures, batched claims and launches, re-gating,
//! candidates and the respawn guard's facts.
//!
//! Time comes from the backend's own clock: tests read it
//! (`DispatchStore::now`, run start and end times) instead of setting it,
//! and expire a claim by deferring it into the past.

use kanban_core::{EventKind, RunOutcome, Status};
use kanban_store::dispatch_ops::*;
use kanban_store::*;
use serde_json::json;

use crate::support::*;

pub fn set_worker_records_identity_and_running_tasks_reads_it_back(s: &dyn DispatchStore) {
    let id = create(s, "a").id;
    let run = claim(s, &id);
    assert!(running(s, &id).worker.is_none());
    spawn(s, &id, run, worker(4242));
    let running = s.running_tasks().unwrap();
    assert_eq!(running.len(), 1);
    let r = &running[0];
    let started = s.runs(&id).unwrap()[0].started_at;
    assert_eq!(
        (r.worker_pid, r.run_id, r.attempt_started_at),
        (Some(4242), Some(run), Some(started))
    );
    assert_eq!(r.worker, Some(worker(4242)));
    assert_eq!(r.launcher, None, "a single claim names no launcher");
    assert_eq!(kinds(s, &id).last().unwrap(), "spawned");
    assert_eq!(last_event(s, &id, "spawned").payload, json!({"pid": 4242}));
    assert_eq!(s.runs(&id).unwrap()[0].worker_pid, Some(4242));
    // Another attempt's pid cannot be recorded over this one.
    let stale = SetWorker {
        task_id: id.clone(),
        run_id: Some(run + 1),
        worker: worker(1),
    };
    assert!(!s.set_worker(&stale).unwrap());
    assert_eq!(s.worker_record(run).unwrap(), Some(worker(4242)));
    let counts = s.running_counts().unwrap();
    assert_eq!((counts.total, counts.by_assignee["coder"]), (1, 1));
}

/// `complete_task` hands back the worker it detached, for the caller to end.
pub fn complete_reports_the_ended_worker(s: &dyn DispatchStore) {
    let id = create(s, "w").id;
    let run = s
        .claim_task(&ClaimRequest {
            ttl_seconds: 60,
            ..claim_req(&id, "h:9")
        })
        .unwrap();
    let ClaimOutcome::Claimed { run_id, .. } = run else {
        panic!("{run:?}")
    };
    spawn(s, &id, run_id, worker(4242));
    let done = complete(s, &id);
    let w = done.ended_worker.expect("the worker is reported");
    assert_eq!((w.pid, w.claim_lock.as_deref()), (4242, Some("h:9")));
    assert_eq!(done.task.worker_pid, None);
}

pub fn release_is_a_compare_and_swap_and_counts_toward_the_breaker(s: &dyn DispatchStore) {
    let id = create(s, "a").id;
    let run = claim(s, &id);
    let mut wrong = crash(&id, run, counted(2));
    wrong.claim_lock = Some("other:9".into());
    assert!(!s.release_running(&wrong).unwrap().released);
    let wrong_run = crash(&id, run + 1, counted(2));
    assert!(!s.release_running(&wrong_run).unwrap().released);
    let wrong_pid = ReleaseRunning {
        worker_pid: Some(77),
        ..crash(&id, run, counted(2))
    };
    assert!(
        !s.release_running(&wrong_pid).unwrap().released,
        "no worker 77 recorded"
    );
    assert_eq!(status(s, &id), Status::Running, "a lost CAS writes nothing");
    let r = s.release_running(&crash(&id, run, counted(2))).unwrap();
    assert!(r.released && !r.auto_blocked);
    assert_eq!((r.failures, r.run_id), (1, Some(run)));
    let t = get(s, &id);
    assert_eq!(
        (t.status, t.claim_lock.as_deref(), t.consecutive_failures),
        (Status::Ready, None, 1)
    );
    assert_eq!(
        t.last_failure_error.as_deref(),
        Some("pid 5 exited with code 1")
    );
    let run_row = &s.runs(&id).unwrap()[0];
    assert_eq!(run_row.outcome.as_deref(), Some("crashed"));
    assert_eq!(run_row.metadata, Some(json!({"pid": 5})));
    let ev = last_event(s, &id, "crashed");
    assert_eq!((ev.payload, ev.run_id), (json!({"pid": 5}), Some(run)));
    // Second crash trips the default limit 2.
    let run2 = claim(s, &id);
    let r = s.release_running(&crash(&id, run2, counted(2))).unwrap();
    assert!(r.auto_blocked);
    let t = get(s, &id);
    assert_eq!((t.status, t.consecutive_failures), (Status::Blocked, 2));
    let gave_up = last_event(s, &id, "gave_up").payload;
    assert_eq!(gave_up["limit_source"], "dispatcher");
    assert_eq!(gave_up["trigger_outcome"], "crashed");
    assert_eq!(gave_up["pid"], 5);
    assert_eq!(
        (
            gave_up["failures"].as_i64(),
            gave_up["effective_limit"].as_i64()
        ),
        (Some(2), Some(2))
    );
}

pub fn task_max_retries_wins_but_a_systemic_crash_blocks_at_once(s: &dyn DispatchStore) {
    let id = create_with(
        s,
        NewTask {
            max_retries: Some(5),
            ..new_task("a")
        },
    )
    .id;
    let run = claim(s, &id);
    let r = s.release_running(&crash(&id, run, counted(1))).unwrap();
    assert!(r.released && !r.auto_blocked, "the task's 5 wins over 1");
    let run = claim(s, &id);
    let systemic = FailurePolicy::Counted {
        dispatcher_limit: 2,
        forced_limit: Some(1),
        extra: json!({}),
    };
    assert!(
        s.release_running(&crash(&id, run, systemic))
            .unwrap()
            .auto_blocked
    );
    assert_eq!(
        last_event(s, &id, "gave_up").payload["limit_source"],
        "systemic"
    );
}

pub fn protocol_violations_trip_on_a_streak_only(s: &dyn DispatchStore) {
    let id = create(s, "a").id;
    let violation = |run| ReleaseRunning {
        event: EventKind::ProtocolViolation,
        error: "worker exited cleanly without calling complete or block: protocol violation".into(),
        payload: json!({"pid": 5, "protocol_violation": true}),
        stamp_error: true,
        ..crash(
            &id,
            run,
            FailurePolicy::ViolationStreak {
                default_limit: 3,
                extra: json!({}),
            },
        )
    };
    for i in 1..=2 {
        let run = claim(s, &id);
        let r = s.release_running(&violation(run)).unwrap();
        assert!(r.released && !r.auto_blocked, "violation {i}");
        let t = get(s, &id);
        assert_eq!(
            t.consecutive_failures, 0,
            "below budget the counter is untouched"
        );
        assert!(t.last_failure_error.unwrap().contains("protocol violation"));
    }
    // A rate-limited run in between is neutral.
    let run = claim(s, &id);
    let rl = ReleaseRunning {
        outcome: RunOutcome::RateLimited,
        event: EventKind::RateLimited,
        ..crash(&id, run, FailurePolicy::NotCounted)
    };
    assert!(s.release_running(&rl).unwrap().released);
    let run = claim(s, &id);
    let r = s.release_running(&violation(run)).unwrap();
    assert!(r.auto_blocked);
    assert_eq!(status(s, &id), Status::Blocked);
    let gave_up = last_event(s, &id, "gave_up").payload;
    assert_eq!(gave_up["protocol_violations"], 3);
}

/// Expire the claim of `id` through the trait: a deferral into the past.
fn expire_claim(s: &dyn DispatchStore, id: &str) {
    let d = DeferReclaim {
        task_id: id.into(),
        claim_lock: Some("host:1".into()),
        run_id: None,
        until: s.now() - 60,
        reason: "test_expiry".into(),
        extra: json!({}),
    };
    assert!(s.defer_reclaim(&d).unwrap());
}

pub fn ttl_release_and_extension_only_apply_to_expired_claims(s: &dyn DispatchStore) {
    let id = create(s, "a").id;
    let run = claim(s, &id);
    let expires_was = get(s, &id).claim_expires;
    let new_expires = s.now() + 5000;
    let ext = ExtendClaim {
        task_id: id.clone(),
        claim_lock: Some("host:1".into()),
        run_id: Some(run),
        new_expires,
        worker_pid: Some(7),
        claim_expires_was: expires_was,
        last_heartbeat_at: None,
    };
    assert!(!s.extend_claim(&ext).unwrap(), "not expired yet");
    let ttl = ReleaseRunning {
        require_expired: true,
        outcome: RunOutcome::Reclaimed,
        event: EventKind::Reclaimed,
        ..crash(&id, run, FailurePolicy::NotCounted)
    };
    assert!(!s.release_running(&ttl).unwrap().released);
    expire_claim(s, &id);
    let other_lock = ExtendClaim {
        claim_lock: Some("other:1".into()),
        ..ext.clone()
    };
    assert!(!s.extend_claim(&other_lock).unwrap(), "CAS on the lock");
    let other_run = ExtendClaim {
        run_id: Some(run + 1000),
        ..ext.clone()
    };
    assert!(!s.extend_claim(&other_run).unwrap(), "CAS on the attempt");
    assert!(s.extend_claim(&ext).unwrap());
    let t = get(s, &id);
    assert_eq!(t.claim_expires, Some(new_expires));
    assert_eq!(s.runs(&id).unwrap()[0].claim_expires, Some(new_expires));
    let ev = last_event(s, &id, "claim_extended");
    assert_eq!(ev.run_id, Some(run));
    assert_eq!(ev.payload["claim_expires_now"], new_expires);
    assert_eq!(ev.payload["worker_pid"], 7);
    assert!(
        !s.release_running(&ttl).unwrap().released,
        "extended: not expired"
    );
    expire_claim(s, &id);
    let r = s.release_running(&ttl).unwrap();
    assert!(r.released && r.failures == 0);
    let t = get(s, &id);
    assert_eq!((t.status, t.claim_expires), (Status::Ready, None));
}

pub fn deferring_holds_the_claim(s: &dyn DispatchStore) {
    let id = create(s, "a").id;
    let run = claim(s, &id);
    let until = s.now() + 120;
    let d = DeferReclaim {
        task_id: id.clone(),
        claim_lock: Some("host:1".into()),
        run_id: Some(run),
        until,
        reason: "ttl_expired_worker_alive".into(),
        extra: json!({"sigkill": true}),
    };
    let stale = DeferReclaim {
        claim_lock: Some("other:2".into()),
        ..d.clone()
    };
    assert!(!s.defer_reclaim(&stale).unwrap(), "CAS on the lock");
    let earlier_attempt = DeferReclaim {
        run_id: Some(run + 1000),
        ..d.clone()
    };
    assert!(
        !s.defer_reclaim(&earlier_attempt).unwrap(),
        "CAS on the attempt: a deferral decided for another run never lands"
    );
    assert!(s.defer_reclaim(&d).unwrap());
    let ev = events(s, &id).pop().unwrap();
    assert_eq!(
        (ev.kind.as_str(), ev.run_id),
        ("reclaim_deferred", Some(run))
    );
    assert_eq!(ev.payload["sigkill"], true);
    assert_eq!(ev.payload["reason"], "ttl_expired_worker_alive");
    assert_eq!(get(s, &id).claim_expires, Some(until));
    assert_eq!(status(s, &id), Status::Running);
}

pub fn spawn_failures_requeue_then_give_up(s: &dyn DispatchStore) {
    let id = create(s, "a").id;
    let run = claim(s, &id);
    let f = |run| SpawnFailure {
        task_id: id.clone(),
        run_id: Some(run),
        error: "`hermes` not found".into(),
        failure_limit: 2,
    };
    let r = s.record_spawn_failure(&f(run)).unwrap();
    assert!(r.released && !r.auto_blocked);
    assert_eq!(status(s, &id), Status::Ready);
    assert_eq!(
        s.runs(&id).unwrap()[0].outcome.as_deref(),
        Some("spawn_failed")
    );
    assert!(
        !s.record_spawn_failure(&f(run)).unwrap().released,
        "stale run"
    );
    let run = claim(s, &id);
    assert!(s.record_spawn_failure(&f(run)).unwrap().auto_blocked);
    let t = get(s, &id);
    assert_eq!(
        (t.status, t.consecutive_failures, t.claim_lock),
        (Status::Blocked, 2, None)
    );
    assert_eq!(s.runs(&id).unwrap()[1].outcome.as_deref(), Some("gave_up"));
    assert_eq!(kinds(s, &id).last().unwrap(), "gave_up");
}

pub fn regate_follows_changes_and_dry_run_writes_nothing(s: &dyn DispatchStore) {
    let parent = create(s, "p").id;
    let child = child_of(s, "c", &[&parent]).id;
    let all = Regate {
        scope: RegateScope::All,
        failure_limit: None,
        dry_run: false,
    };
    let first = s.regate(&all).unwrap();
    assert_eq!(first.promoted, 0);
    assert_eq!(first.cursor, s.latest_event_id().unwrap());
    complete(s, &parent);
    assert_eq!(status(s, &child), Status::Ready, "promoted inline");
    // An operator parks the child in todo; its parents are done, so the
    // dispatcher's scoped re-gate finds it and promotes it again.
    s.set_status_direct(&child, Status::Todo).unwrap();
    let dry = Regate {
        scope: RegateScope::ChangedSince(first.cursor),
        failure_limit: None,
        dry_run: true,
    };
    assert_eq!(s.regate(&dry).unwrap().promoted, 1);
    assert_eq!(status(s, &child), Status::Todo, "dry run wrote");
    let real = s
        .regate(&Regate {
            dry_run: false,
            ..dry
        })
        .unwrap();
    assert_eq!(real.promoted, 1);
    assert_eq!(status(s, &child), Status::Ready);
    assert_eq!(kinds(s, &child).last().unwrap(), "promoted");
    // The cursor is the newest event the pass looked at: its own
    // `promoted` events may come after it.
    assert!(real.cursor > first.cursor && real.cursor <= s.latest_event_id().unwrap());
    let again = Regate {
        scope: RegateScope::ChangedSince(real.cursor),
        failure_limit: None,
        dry_run: false,
    };
    let idle = s.regate(&again).unwrap();
    assert_eq!(idle.promoted, 0);
    assert_eq!(idle.cursor, s.latest_event_id().unwrap());
    // The full sweep finds a parked child too, without any cursor.
    s.set_status_direct(&child, Status::Todo).unwrap();
    assert_eq!(s.regate(&all).unwrap().promoted, 1);
    assert_eq!(status(s, &child), Status::Ready);
}

pub fn default_assignee_only_fills_an_empty_assignee(s: &dyn DispatchStore) {
    let id = create_with(
        s,
        NewTask {
            title: "u".into(),
            ..Default::default()
        },
    )
    .id;
    assert!(s.assign_default(&id, "coder").unwrap());
    assert!(!s.assign_default(&id, "other").unwrap());
    assert_eq!(get(s, &id).assignee.as_deref(), Some("coder"));
    assert_eq!(
        events(s, &id).pop().unwrap().payload,
        json!({"assignee": "coder", "source": "kanban.default_assignee"})
    );
}

pub fn candidates_and_guard_facts(s: &dyn DispatchStore) {
    let low = create(s, "low").id;
    let high = create_with(
        s,
        NewTask {
            title: "high".into(),
            priority: 5,
            ..Default::default()
        },
    )
    .id;
    let c = s.dispatch_candidates(Status::Ready).unwrap();
    assert_eq!(
        c.iter().map(|c| c.id.as_str()).collect::<Vec<_>>(),
        vec![high.as_str(), low.as_str()]
    );
    assert_eq!(
        (c[0].assignee.as_deref(), c[0].status),
        (None, Status::Ready)
    );
    assert_eq!(c[1].assignee.as_deref(), Some("coder"));
    assert!(s.dispatch_candidates(Status::Review).unwrap().is_empty());
    let fresh = s
        .respawn_guard_facts(&high, s.now() - 3600, s.now() - 86_400)
        .unwrap();
    assert_eq!(fresh, GuardFacts::default(), "a fresh task has no history");
    let run = claim(s, &low);
    let ids: Vec<String> = s
        .dispatch_candidates(Status::Ready)
        .unwrap()
        .into_iter()
        .map(|c| c.id)
        .collect();
    assert_eq!(ids, vec![high.clone()], "claimed tasks are no candidates");
    s.complete_task(&CompleteRequest {
        task_id: low.clone(),
        summary: Some("ok".into()),
        expected_run_id: Some(run),
        ..Default::default()
    })
    .unwrap();
    let completed_at = ended_at(s, &low, run);
    s.add_comment(&low, "w", "PR: https://github.com/a/b/pull/12")
        .unwrap();
    let now = s.now();
    let g = s
        .respawn_guard_facts(&low, now - 3600, now - 86_400)
        .unwrap();
    assert_eq!(g.recent_completion, Some(completed_at));
    assert!(!g.requeued_after_completion);
    assert_eq!(g.latest_run, Some(("completed".to_string(), completed_at)));
    assert_eq!(
        g.recent_comments,
        vec!["PR: https://github.com/a/b/pull/12"]
    );
    assert_eq!(g.spawn_retry_at, None);
    let outside = s
        .respawn_guard_facts(&low, completed_at + 1, now + 1)
        .unwrap();
    assert_eq!(outside.recent_completion, None, "outside the window");
    assert!(outside.recent_comments.is_empty());
    // An explicit "run it again" after the completion.
    s.set_status_direct(&low, Status::Ready).unwrap();
    let g = s
        .respawn_guard_facts(&low, now - 3600, now - 86_400)
        .unwrap();
    assert!(g.requeued_after_completion);
    s.note_respawn_guarded(&low, "recent_success").unwrap();
    let ev = events(s, &low).pop().unwrap();
    assert_eq!(
        (ev.kind.as_str(), ev.payload),
        ("respawn_guarded", json!({"reason": "recent_success"}))
    );
}

pub fn finished_workers_are_listed_until_forgotten(s: &dyn DispatchStore) {
    let id = create(s, "a").id;
    let later = s.now() + 10;
    assert!(
        s.finished_workers(later).unwrap().is_empty(),
        "nothing recorded yet"
    );
    let run = claim(s, &id);
    assert_eq!(s.worker_record(run).unwrap(), None);
    let w = WorkerRecord {
        pid: 77,
        start_time: Some(5),
        boot_id: Some("b".into()),
        host: None,
    };
    spawn(s, &id, run, w.clone());
    assert_eq!(s.worker_record(run).unwrap(), Some(w.clone()));
    assert!(
        s.finished_workers(later).unwrap().is_empty(),
        "run still open"
    );
    complete(s, &id);
    let ended = ended_at(s, &id, run);
    assert!(
        s.finished_workers(ended).unwrap().is_empty(),
        "ended at `ended`, not before"
    );
    let fin = s.finished_workers(ended + 1).unwrap();
    assert_eq!(
        fin,
        vec![FinishedWorker {
            run_id: run,
            task_id: id,
            ended_at: ended,
            worker: w
        }]
    );
    s.forget_worker(run).unwrap();
    assert!(s.finished_workers(ended + 1).unwrap().is_empty());
    assert_eq!(s.worker_record(run).unwrap(), None);
    s.forget_worker(run).unwrap();
}
