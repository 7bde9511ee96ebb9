//! Races between handles (connections) on one board.

use std::sync::{Arc, Barrier};

use kanban_core::Status;
use kanban_store::*;

use super::*;

const RACERS: usize = 8;

/// 8 threads, each with its own handle, claim every task at once:
/// exactly one winner per task.
pub fn claim_race_has_one_winner(open: Opener<'_>) {
    let setup = open();
    let ids: Vec<String> = (0..25)
        .map(|i| create(&*setup, &format!("race {i}")).id)
        .collect();
    let barrier = Arc::new(Barrier::new(RACERS));
    let wins: Vec<Vec<String>> = std::thread::scope(|sc| {
        let handles: Vec<_> = (0..RACERS)
            .map(|n| {
                let (ids, barrier) = (&ids, barrier.clone());
                sc.spawn(move || {
                    let s = open();
                    barrier.wait();
                    let mut won = Vec::new();
                    for id in ids {
                        let req = claim_req(id, &format!("racer:{n}"));
                        if let ClaimOutcome::Claimed { .. } = s.claim_task(&req).expect("claim") {
                            won.push(id.clone());
                        }
                    }
                    won
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("racer"))
            .collect()
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
pub fn ceilings_hold_under_concurrency(open: Opener<'_>) {
    let setup = open();
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
    let barrier = Arc::new(Barrier::new(RACERS));
    let claimed: usize = std::thread::scope(|sc| {
        let handles: Vec<_> = (0..RACERS)
            .map(|n| {
                let (ids, barrier, ceilings) = (&ids, barrier.clone(), ceilings.clone());
                sc.spawn(move || {
                    let s = open();
                    barrier.wait();
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
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("claimer"))
            .sum()
    });
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
pub fn idempotency_race_creates_one_task(open: Opener<'_>) {
    let barrier = Arc::new(Barrier::new(RACERS));
    let ids: Vec<String> = std::thread::scope(|sc| {
        let handles: Vec<_> = (0..RACERS)
            .map(|_| {
                let barrier = barrier.clone();
                sc.spawn(move || {
                    let s = open();
                    barrier.wait();
                    let req = NewTask {
                        idempotency_key: Some("same-key".into()),
                        ..new_task("once")
                    };
                    s.create_task(&req).expect("create").task.id
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("creator"))
            .collect()
    });
    assert!(ids.windows(2).all(|w| w[0] == w[1]), "{ids:?}");
    assert_eq!(open().list_tasks(&TaskQuery::default()).unwrap().len(), 1);
}
