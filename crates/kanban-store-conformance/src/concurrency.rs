//! Races between handles (connections) on one board: claims and ceilings,
//! idempotency keys, run-id fencing. Each test checks one clause of the
//! concurrency contract written on `kanban_store::Store`.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};

use kanban_core::Status;
use kanban_store::*;

use crate::Board;
use crate::support::*;

const RACERS: usize = 8;

/// 8 threads, each with its own handle, claim every task at once:
/// exactly one winner per task.
pub fn claim_race_has_one_winner(board: &Board<'_>) {
    let setup = board.open();
    let ids: Vec<String> = (0..25)
        .map(|i| create(&*setup, &format!("race {i}")).id)
        .collect();
    let wins = race(board, RACERS, |n, s| {
        let mut won = Vec::new();
        for id in &ids {
            let req = claim_req(id, &format!("racer:{n}"));
            if let ClaimOutcome::Claimed { .. } = s.claim_task(&req).expect("claim") {
                won.push(id.clone());
            }
        }
        won
    });
    let mut all: Vec<String> = wins.into_iter().flatten().collect();
    all.sort();
    let mut expected = ids.clone();
    expected.sort();
    assert_eq!(all, expected, "every task claimed exactly once");
    for id in &ids {
        assert_eq!(setup.runs(id).unwrap().len(), 1, "one run per task");
        assert_eq!(
            kinds(&*setup, id)
                .iter()
                .filter(|k| *k == "claimed")
                .count(),
            1
        );
    }
}

/// Concurrent claimers with a global and a per-profile cap never exceed them.
pub fn ceilings_hold_under_concurrency(board: &Board<'_>) {
    let setup = board.open();
    let ids: Vec<String> = (0..40)
        .map(|i| {
            let who = if i % 2 == 0 { "even" } else { "odd" };
            create_with(
                &*setup,
                NewTask {
                    assignee: Some(who.into()),
                    ..new_task(&format!("c{i}"))
                },
            )
            .id
        })
        .collect();
    let ceilings = Ceilings {
        max_running: Some(5),
        max_per_profile: Some(3),
        ..Default::default()
    };
    let claimed: usize = race(board, RACERS, |n, s| {
        let mut won = 0;
        for id in ids.iter().skip(n) {
            let req = ClaimRequest {
                ceilings: ceilings.clone(),
                ..claim_req(id, &format!("c:{n}"))
            };
            if let ClaimOutcome::Claimed { .. } = s.claim_task(&req).expect("claim") {
                won += 1;
            }
        }
        won
    })
    .into_iter()
    .sum();
    let running = setup
        .list_tasks(&TaskQuery {
            status: Some(Status::Running),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(claimed, running.len());
    assert_eq!(running.len(), 5, "global cap reached exactly");
    for who in ["even", "odd"] {
        let n = running
            .iter()
            .filter(|t| t.assignee.as_deref() == Some(who))
            .count();
        assert!(n <= 3, "{who} has {n} running");
    }
}

/// Creators racing with one idempotency key produce one task.
pub fn idempotency_race_creates_one_task(board: &Board<'_>) {
    let ids = race(board, RACERS, |_, s| {
        let req = NewTask {
            idempotency_key: Some("same-key".into()),
            ..new_task("once")
        };
        s.create_task(&req).expect("create").task.id
    });
    assert!(ids.windows(2).all(|w| w[0] == w[1]), "{ids:?}");
    let list = board.open().list_tasks(&TaskQuery::default()).unwrap();
    assert_eq!(list.len(), 1);
}

/// Claimers and operators reclaiming race on a few tasks for many rounds:
/// each task's claims and reclaims strictly alternate in its event log,
/// every claim opened exactly one run, and at the end at most one run per
/// task is open (exactly one when it is running).
pub fn claim_and_reclaim_race_keeps_one_open_run(board: &Board<'_>) {
    const TASKS: usize = 6;
    const ROUNDS: usize = 15;
    let setup = board.open();
    let ids: Vec<String> = (0..TASKS)
        .map(|i| create(&*setup, &format!("hot {i}")).id)
        .collect();
    race(board, 6, |n, s| {
        for _ in 0..ROUNDS {
            for id in &ids {
                if n % 2 == 0 {
                    s.claim_task(&claim_req(id, &format!("claimer:{n}")))
                        .expect("claim");
                } else {
                    match s.reclaim_task(id, Some("race")) {
                        Ok(_) | Err(StoreError::Refused { .. }) => {}
                        Err(e) => panic!("reclaim of {id}: {e}"),
                    }
                }
            }
        }
    });
    for id in &ids {
        let log: Vec<String> = kinds(&*setup, id)
            .into_iter()
            .filter(|k| k == "claimed" || k == "reclaimed")
            .collect();
        for pair in log.windows(2) {
            assert_ne!(pair[0], pair[1], "claims and reclaims alternate: {log:?}");
        }
        let runs = setup.runs(id).unwrap();
        let claims = log.iter().filter(|k| *k == "claimed").count();
        assert_eq!(runs.len(), claims, "one run per claim");
        let open = open_runs(&*setup, id);
        let task = get(&*setup, id);
        match task.status {
            Status::Running => assert_eq!(open, vec![task.current_run_id.unwrap()]),
            other => {
                assert_eq!(other, Status::Ready);
                assert!(open.is_empty(), "{open:?}");
            }
        }
    }
}

/// A worker completing with its run id races an operator who reclaims the
/// task and claims it again: exactly one of complete and reclaim wins, and
/// the losing completion is refused as stale and changes nothing.
pub fn run_fencing_decides_one_winner(board: &Board<'_>) {
    const TASKS: usize = 24;
    let setup = board.open();
    let attempts: Vec<(String, i64)> = (0..TASKS)
        .map(|i| {
            let id = create(&*setup, &format!("fenced {i}")).id;
            let run = claim(&*setup, &id);
            (id, run)
        })
        .collect();
    // Racer 0 is the worker of every first attempt, racer 1 the operator.
    let results = race(board, 2, |n, s| {
        attempts
            .iter()
            .map(|(id, run)| {
                if n == 0 {
                    let req = CompleteRequest {
                        task_id: id.clone(),
                        summary: Some("done".into()),
                        expected_run_id: Some(*run),
                        ..Default::default()
                    };
                    match s.complete_task(&req) {
                        Ok(_) => true,
                        Err(StoreError::Stale { .. }) => false,
                        Err(e) => panic!("complete of {id}: {e}"),
                    }
                } else {
                    match s.reclaim_task(id, Some("operator")) {
                        Ok(_) => {
                            claim(s, id);
                            true
                        }
                        Err(StoreError::Refused { .. }) => false,
                        Err(e) => panic!("reclaim of {id}: {e}"),
                    }
                }
            })
            .collect::<Vec<bool>>()
    });
    for (i, (id, run)) in attempts.iter().enumerate() {
        let (completed, reclaimed) = (results[0][i], results[1][i]);
        assert!(completed != reclaimed, "{id}: exactly one wins");
        let task = get(&*setup, id);
        let runs = setup.runs(id).unwrap();
        let first = runs.iter().find(|r| r.id == *run).expect("first run");
        if completed {
            assert_eq!(task.status, Status::Done);
            assert_eq!(first.outcome.as_deref(), Some("completed"));
            assert_eq!(runs.len(), 1);
        } else {
            assert_eq!(task.status, Status::Running);
            assert_eq!(first.outcome.as_deref(), Some("reclaimed"));
            assert_eq!(runs.len(), 2);
            assert!(!kinds(&*setup, id).contains(&"completed".to_string()));
        }
    }
}

/// A worker heartbeating its attempt while the operator replaces the
/// attempt: once the `reclaimed` event is written, no heartbeat of the old
/// run is recorded, and the old worker's heartbeats are refused as stale.
pub fn heartbeats_of_a_replaced_attempt_are_refused(board: &Board<'_>) {
    const TASKS: usize = 10;
    let setup = board.open();
    let attempts: Vec<(String, i64)> = (0..TASKS)
        .map(|i| {
            let id = create(&*setup, &format!("beating {i}")).id;
            let run = claim(&*setup, &id);
            (id, run)
        })
        .collect();
    let replaced = AtomicBool::new(false);
    let refused = race(board, 2, |n, s| {
        let mut refused = HashSet::new();
        if n == 1 {
            for (id, _) in &attempts {
                s.reclaim_task(id, Some("replace")).expect("reclaim");
                let req = claim_req(id, "operator:2");
                assert!(matches!(
                    s.claim_task(&req).expect("claim"),
                    ClaimOutcome::Claimed { .. }
                ));
            }
            replaced.store(true, Ordering::SeqCst);
            return refused;
        }
        // The old worker beats until every attempt was replaced, then once
        // more per task, which must be refused.
        let mut last_round = false;
        loop {
            for (id, run) in &attempts {
                let req = HeartbeatRequest {
                    task_id: id.clone(),
                    run_id: Some(*run),
                    claim_lock: Some("host:1".into()),
                    ..Default::default()
                };
                match s.heartbeat(&req) {
                    Ok(()) => assert!(!last_round, "{id}: stale heartbeat accepted"),
                    Err(StoreError::Stale { .. } | StoreError::Refused { .. }) => {
                        refused.insert(id.clone());
                    }
                    Err(e) => panic!("heartbeat of {id}: {e}"),
                }
            }
            if last_round {
                return refused;
            }
            last_round = replaced.load(Ordering::SeqCst);
        }
    });
    assert_eq!(refused[0].len(), TASKS, "every old attempt was refused");
    for (id, run) in &attempts {
        let log = events(&*setup, id);
        let cut = log
            .iter()
            .position(|e| e.kind == "reclaimed")
            .expect("reclaimed event");
        assert_eq!(log[cut].run_id, Some(*run));
        let late: Vec<_> = log[cut..]
            .iter()
            .filter(|e| e.kind == "heartbeat" && e.run_id == Some(*run))
            .collect();
        assert!(
            late.is_empty(),
            "{id}: heartbeats after the reclaim: {late:?}"
        );
    }
}
