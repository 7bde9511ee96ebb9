//! Races between dispatchers, workers and operators on one board, each on
//! its own handle. Each test checks one clause of the concurrency contract
//! written on `kanban_store::dispatch_ops::DispatchStore`: batched and
//! single claims under ceilings, run-id fencing of releases, first intent
//! wins, `ChangedSince` cursors that miss no change.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};

use kanban_core::{RunOutcome, Status};
use kanban_store::dispatch_ops::*;
use kanban_store::*;
use serde_json::json;

use crate::Board;
use crate::support::*;

/// Claimers in the claim races; even ones claim in batches.
const CLAIMERS: usize = 4;
/// Tasks per batch of a batch claimer.
const BATCH: usize = 4;

/// `ids` from `offset` on, wrapping around, so claimers collide.
fn rotated(ids: &[String], offset: usize) -> Vec<&String> {
    ids.iter().cycle().skip(offset).take(ids.len()).collect()
}

fn batch_of(ids: &[&String], lock: &str, ceilings: &Ceilings, launcher: i64) -> ClaimBatch {
    ClaimBatch {
        claims: ids
            .iter()
            .map(|id| BatchClaim {
                task_id: (*id).clone(),
                review: false,
            })
            .collect(),
        claim_lock: lock.into(),
        ttl_seconds: 900,
        ceilings: ceilings.clone(),
        launcher: Some(worker(launcher)),
    }
}

/// Claimer `n` tries every task once (batches when `n` is even); the
/// tasks it won, with the lock it claimed them under.
fn claim_all(s: &dyn DispatchStore, n: usize, ids: &[String], c: &Ceilings) -> Vec<(String, i64)> {
    let order = rotated(ids, n * ids.len() / CLAIMERS);
    let lock = format!("claimer:{n}");
    let mut won = Vec::new();
    let mut note = |id: &String, outcome: ClaimOutcome| match outcome {
        ClaimOutcome::Claimed { run_id, .. } => won.push((id.clone(), run_id)),
        ClaimOutcome::Lost { .. } | ClaimOutcome::CeilingReached(_) => {}
        ClaimOutcome::ParentsPending => panic!("{id} has no parents"),
    };
    if n.is_multiple_of(2) {
        for chunk in order.chunks(BATCH) {
            let req = batch_of(chunk, &lock, c, n as i64 + 1);
            let out = s.claim_batch(&req).expect("claim batch");
            assert_eq!(out.len(), chunk.len(), "one outcome per claim");
            for (id, o) in chunk.iter().zip(out) {
                note(id, o);
            }
        }
    } else {
        for id in order {
            let req = ClaimRequest {
                ceilings: c.clone(),
                ..claim_req(id, &lock)
            };
            note(id, s.claim_task(&req).expect("claim"));
        }
    }
    won
}

/// Batched and single claims from several handles, no ceilings: every
/// task is won by exactly one claimer, with one run and one `claimed`
/// event, and the winner's lock (and, for a batch, its launcher) on it.
pub fn batch_and_single_claims_win_each_task_once(board: &Board<'_>) {
    let setup = board.open();
    let ids: Vec<String> = (0..32)
        .map(|i| create(&*setup, &format!("race {i}")).id)
        .collect();
    let wins = race(board, CLAIMERS, |n, s| {
        claim_all(s, n, &ids, &Ceilings::default())
    });
    let mut all: Vec<&String> = wins.iter().flatten().map(|(id, _)| id).collect();
    all.sort();
    let expected: Vec<&String> = {
        let mut e: Vec<&String> = ids.iter().collect();
        e.sort();
        e
    };
    assert_eq!(all, expected, "every task claimed exactly once");
    for (n, won) in wins.iter().enumerate() {
        for (id, run) in won {
            let task = get(&*setup, id);
            assert_eq!(task.claim_lock, Some(format!("claimer:{n}")));
            assert_eq!(task.current_run_id, Some(*run));
            let runs = setup.runs(id).unwrap();
            assert_eq!(runs.iter().map(|r| r.id).collect::<Vec<_>>(), [*run]);
            let claimed = kinds(&*setup, id)
                .iter()
                .filter(|k| *k == "claimed")
                .count();
            assert_eq!(claimed, 1, "{id}");
            let launcher = running(&*setup, id).launcher.map(|l| l.pid);
            let want = n.is_multiple_of(2).then_some(n as i64 + 1);
            assert_eq!(launcher, want, "{id} won by claimer {n}");
        }
    }
}

/// Batched and single claimers race a dispatcher releasing whatever runs,
/// under a global cap and per-profile caps (one overridden): no snapshot
/// of the running counts ever exceeds a cap, and each task's claims and
/// releases alternate, each claim with its own run.
pub fn batch_and_single_claims_keep_the_ceilings(board: &Board<'_>) {
    const PASSES: usize = 3;
    let setup = board.open();
    let ids: Vec<String> = (0..24)
        .map(|i| {
            let who = if i % 2 == 0 { "even" } else { "odd" };
            let req = NewTask {
                assignee: Some(who.into()),
                ..new_task(&format!("c{i}"))
            };
            create_with(&*setup, req).id
        })
        .collect();
    let ceilings = Ceilings {
        max_running: Some(4),
        max_per_profile: Some(3),
        profile_limits: BTreeMap::from([("odd".to_string(), 2)]),
        ..Default::default()
    };
    let caps = [("even", 3), ("odd", 2)];
    let claimers_done = AtomicUsize::new(0);
    let check = |c: &RunningCounts| {
        assert!(c.total <= 4, "{c:?}");
        for (who, cap) in caps {
            assert!(c.by_assignee.get(who).copied().unwrap_or(0) <= cap, "{c:?}");
        }
    };
    let counts = race(board, CLAIMERS + 2, |n, s| {
        if n < CLAIMERS {
            let mut won = 0;
            for _ in 0..PASSES {
                won += claim_all(s, n, &ids, &ceilings).len();
            }
            claimers_done.fetch_add(1, Ordering::SeqCst);
            return won;
        }
        let mut work = 0;
        loop {
            let last = claimers_done.load(Ordering::SeqCst) == CLAIMERS;
            if n == CLAIMERS {
                // The releaser: every attempt it sees, fenced to it.
                for r in s.running_tasks().expect("running tasks") {
                    let req = ReleaseRunning {
                        claim_lock: r.claim_lock.clone(),
                        ..release_as(
                            &r.id,
                            r.run_id.expect("run"),
                            RunOutcome::Reclaimed,
                            json!({}),
                        )
                    };
                    work += usize::from(s.release_running(&req).expect("release").released);
                }
            } else {
                // The observer: one snapshot at a time.
                check(&s.running_counts().expect("running counts"));
                work += 1;
                std::thread::yield_now();
            }
            if last {
                return work;
            }
        }
    });
    let claims: usize = counts[..CLAIMERS].iter().sum();
    check(&setup.running_counts().unwrap());
    let mut runs_total = 0;
    for id in &ids {
        let log: Vec<String> = kinds(&*setup, id)
            .into_iter()
            .filter(|k| k == "claimed" || k == "reclaimed")
            .collect();
        for pair in log.windows(2) {
            assert_ne!(pair[0], pair[1], "{id}: claims and releases alternate");
        }
        let runs = setup.runs(id).unwrap();
        let claimed = log.iter().filter(|k| *k == "claimed").count();
        assert_eq!(runs.len(), claimed, "{id}: one run per claim");
        runs_total += runs.len();
        let task = get(&*setup, id);
        let open = open_runs(&*setup, id);
        match task.status {
            Status::Running => assert_eq!(open, vec![task.current_run_id.unwrap()]),
            other => {
                assert_eq!(other, Status::Ready);
                assert!(open.is_empty(), "{id}: {open:?}");
            }
        }
    }
    assert_eq!(runs_total, claims, "every won claim, and only those");
}

/// `n` tasks, each claimed once by `host:1`: (id, run).
fn claimed_attempts(board: &Board<'_>, n: usize) -> Vec<(String, i64)> {
    let setup = board.open();
    (0..n)
        .map(|i| {
            let id = create(&*setup, &format!("attempt {i}")).id;
            let run = claim(&*setup, &id);
            (id, run)
        })
        .collect()
}

/// The dispatcher releasing an attempt it found crashed races the
/// attempt's worker completing it: exactly one wins, the loser writes
/// nothing, and no run stays open.
pub fn release_and_complete_race_has_one_winner(board: &Board<'_>) {
    let attempts = claimed_attempts(board, 24);
    let results = race(board, 2, |n, s| {
        attempts
            .iter()
            .map(|(id, run)| {
                if n == 0 {
                    let req = crash(id, *run, counted(100));
                    return s.release_running(&req).expect("release").released;
                }
                let req = CompleteRequest {
                    task_id: id.clone(),
                    summary: Some("done".into()),
                    expected_run_id: Some(*run),
                    ..Default::default()
                };
                match s.complete_task(&req) {
                    Ok(_) => true,
                    Err(StoreError::Stale { .. } | StoreError::Refused { .. }) => false,
                    Err(e) => panic!("complete of {id}: {e}"),
                }
            })
            .collect::<Vec<bool>>()
    });
    let s = board.open();
    for (i, (id, run)) in attempts.iter().enumerate() {
        let (released, completed) = (results[0][i], results[1][i]);
        assert!(released != completed, "{id}: exactly one wins");
        let task = get(&*s, id);
        let runs = s.runs(id).unwrap();
        assert_eq!(runs.len(), 1);
        assert!(open_runs(&*s, id).is_empty());
        let ks = kinds(&*s, id);
        let (want, outcome, failures, absent) = if released {
            (Status::Ready, "crashed", 1, "completed")
        } else {
            (Status::Done, "completed", 0, "crashed")
        };
        assert_eq!((task.status, task.consecutive_failures), (want, failures));
        assert_eq!(
            (runs[0].id, runs[0].outcome.as_deref()),
            (*run, Some(outcome))
        );
        assert!(!ks.iter().any(|k| k == absent), "{id}: {ks:?}");
    }
}

/// A release decided on a stale read of attempt 1 races an operator who
/// reclaims the task and claims it again under the SAME lock (only the
/// run id tells the attempts apart): exactly one of release and reclaim
/// ends attempt 1, the new attempt is never released by the stale
/// decision, and exactly one run stays open.
pub fn release_races_a_new_claim_and_leaves_one_open_run(board: &Board<'_>) {
    let attempts = claimed_attempts(board, 24);
    let results = race(board, 2, |n, s| {
        attempts
            .iter()
            .map(|(id, run)| {
                if n == 0 {
                    let req = crash(id, *run, FailurePolicy::NotCounted);
                    return (s.release_running(&req).expect("release").released, 0);
                }
                let reclaimed = match s.reclaim_task(id, Some("operator")) {
                    Ok(_) => true,
                    Err(StoreError::Refused { .. }) => false,
                    Err(e) => panic!("reclaim of {id}: {e}"),
                };
                (reclaimed, claim(s, id))
            })
            .collect::<Vec<(bool, i64)>>()
    });
    let s = board.open();
    for (i, (id, run)) in attempts.iter().enumerate() {
        let (released, (reclaimed, new_run)) = (results[0][i].0, results[1][i]);
        assert!(released != reclaimed, "{id}: exactly one ends attempt 1");
        let task = get(&*s, id);
        assert_eq!(task.status, Status::Running);
        assert_eq!(task.current_run_id, Some(new_run));
        assert_ne!(new_run, *run);
        assert_eq!(open_runs(&*s, id), vec![new_run]);
        let first = s
            .runs(id)
            .unwrap()
            .into_iter()
            .find(|r| r.id == *run)
            .unwrap();
        let want = if released { "crashed" } else { "reclaimed" };
        assert_eq!(first.outcome.as_deref(), Some(want), "{id}");
        let endings = events(&*s, id)
            .into_iter()
            .filter(|e| matches!(e.kind.as_str(), "crashed" | "reclaimed"))
            .collect::<Vec<_>>();
        assert_eq!(endings.len(), 1, "{id}: {endings:?}");
        assert_eq!(endings[0].run_id, Some(*run));
    }
}

/// Dispatchers record different releases for the same attempts at once:
/// every call succeeds (the attempt is current), and the intent a racer
/// reads right after its own call is the one that stays: the first
/// recorded is never replaced.
pub fn first_recorded_intent_wins_under_concurrency(board: &Board<'_>) {
    const KINDS: [&str; 4] = ["timeout", "stale", "ttl", "timeout"];
    let attempts = claimed_attempts(board, 12);
    let seen = race(board, KINDS.len(), |n, s| {
        attempts
            .iter()
            .map(|(id, run)| {
                let i = TerminationIntent {
                    run_id: *run,
                    task_id: id.clone(),
                    kind: KINDS[n].into(),
                    detail: json!({"racer": n}),
                    decided_at: s.now(),
                };
                assert!(s.record_intent(&i).expect("record intent"), "{id}");
                running(s, id).intent.expect("an intent is recorded")
            })
            .collect::<Vec<_>>()
    });
    let s = board.open();
    for (k, (id, run)) in attempts.iter().enumerate() {
        let kept = running(&*s, id).intent.expect("intent");
        assert_eq!((kept.run_id, kept.task_id.as_str()), (*run, id.as_str()));
        let racer = kept.detail["racer"].as_u64().expect("racer") as usize;
        assert_eq!(kept.kind, KINDS[racer]);
        for (n, reads) in seen.iter().enumerate() {
            assert_eq!(reads[k], kept, "{id}: racer {n} saw another intent");
        }
    }
}

/// Operators park children in todo (their parent is done, so each must
/// be promoted again) while a dispatcher re-gates with `ChangedSince`
/// cursors, each pass starting from the last one's: after one more pass
/// once they stopped, every child was promoted back exactly once.
pub fn changed_since_passes_miss_no_concurrent_change(board: &Board<'_>) {
    const WRITERS: usize = 3;
    const PER_WRITER: usize = 15;
    let setup = board.open();
    let parent = create(&*setup, "parent").id;
    complete(&*setup, &parent);
    let children: Vec<String> = (0..WRITERS * PER_WRITER)
        .map(|i| child_of(&*setup, &format!("child {i}"), &[&parent]).id)
        .collect();
    assert!(children.iter().all(|c| status(&*setup, c) == Status::Ready));
    let all = Regate {
        scope: RegateScope::All,
        failure_limit: None,
        dry_run: false,
    };
    let start = setup.regate(&all).unwrap();
    assert_eq!(start.promoted, 0);
    let writers_done = AtomicUsize::new(0);
    let promoted = race(board, WRITERS + 1, |n, s| {
        if n < WRITERS {
            for id in children.iter().skip(n).step_by(WRITERS) {
                s.set_status_direct(id, Status::Todo).expect("park");
            }
            writers_done.fetch_add(1, Ordering::SeqCst);
            return 0;
        }
        let (mut cursor, mut promoted) = (start.cursor, 0);
        loop {
            let last = writers_done.load(Ordering::SeqCst) == WRITERS;
            let req = Regate {
                scope: RegateScope::ChangedSince(cursor),
                ..all
            };
            let out = s.regate(&req).expect("regate");
            assert!(out.cursor >= cursor, "the cursor never goes back");
            (cursor, promoted) = (out.cursor, promoted + out.promoted);
            if last {
                return promoted;
            }
        }
    });
    let s = board.open();
    for id in &children {
        assert_eq!(status(&*s, id), Status::Ready, "{id}: change missed");
        let tail: Vec<String> = kinds(&*s, id).into_iter().skip(1).collect();
        assert_eq!(tail, ["status", "promoted"], "{id}");
    }
    assert_eq!(promoted[WRITERS], children.len());
}
