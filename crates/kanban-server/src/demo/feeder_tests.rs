use std::path::Path;

use kanban_hermes::layout::Root;
use kanban_store::{CompleteRequest, NewTask};

use super::*;
use crate::demo::{open_demo_board, prepare};

/// A fresh demo board (opening seeded) and its store.
fn board() -> (tempfile::TempDir, Arc<dyn Store>) {
    let dir = tempfile::tempdir().unwrap();
    let root = Root::at(dir.path());
    prepare(&root, Path::new("/bin/kanban")).unwrap();
    let store = open_demo_board(&root).unwrap().store();
    (dir, store)
}

fn count(store: &dyn Store, status: Status) -> usize {
    store
        .list_tasks(&TaskQuery {
            status: Some(status),
            include_archived: status == Status::Archived,
            ..TaskQuery::default()
        })
        .unwrap()
        .len()
}

fn complete(store: &dyn Store, id: &str) {
    store
        .complete_task(&CompleteRequest {
            task_id: id.into(),
            result: None,
            summary: Some("done".into()),
            metadata: None,
            created_cards: Vec::new(),
            expected_run_id: None,
            files: None,
        })
        .unwrap();
}

#[test]
fn rates_read_like_people_write_them() {
    let ms = |n| Some(Duration::from_millis(n));
    for (text, every) in [
        ("500ms", ms(500)),
        ("2s", ms(2000)),
        ("1.5s", ms(1500)),
        (" 1m ", ms(60_000)),
        ("1h", ms(3_600_000)),
        ("3", ms(3000)),
        ("0", None),
        ("0s", None),
        ("off", None),
        ("OFF", None),
    ] {
        let rate: DemoRate = text.parse().unwrap_or_else(|e| panic!("{text}: {e}"));
        assert_eq!(rate.every(), every, "{text}");
    }
    for bad in ["", "fast", "-1s", "10ms", "2h", "3x", "1..5s", "s", "ms"] {
        let err = bad.parse::<DemoRate>().unwrap_err().to_string();
        assert!(err.contains("500ms, 3s or 1m"), "{bad}: {err}");
    }
    assert_eq!(DemoRate::default().every(), ms(3000));
    let shown: Vec<String> = ["500ms", "3s", "off"]
        .iter()
        .map(|t| t.parse::<DemoRate>().unwrap().to_string())
        .collect();
    assert_eq!(shown, ["500ms", "3s", "off"]);
}

#[test]
fn a_seed_replays_the_same_trickle() {
    let titles = |seed| {
        let (_dir, store) = board();
        let mut f = Feeder::new(store, seed);
        (0..12)
            .flat_map(|_| f.tick().unwrap().created)
            .collect::<Vec<_>>()
    };
    let a = titles(7);
    assert!(a.len() >= 12, "{a:?}");
    assert_eq!(a, titles(7));
    assert_ne!(a, titles(8));
}

#[test]
fn the_trickle_uses_every_profile_twist_and_kind_of_work() {
    let (_dir, store) = board();
    let mut f = Feeder::new(store.clone(), 1).with_tuning(Tuning {
        max_open: usize::MAX,
        answer_after: u64::MAX,
        wake_after: u64::MAX,
        triage_after: u64::MAX,
        ..Tuning::default()
    });
    for _ in 0..80 {
        f.tick().unwrap();
    }
    let tasks = f.demo_tasks(&TaskQuery::default()).unwrap();
    let fed: Vec<&Task> = tasks
        .iter()
        .filter(|t| t.idempotency_key.is_none())
        .collect();
    for who in [RESEARCHER, CODER, REVIEWER, FLAKY_API] {
        assert!(
            fed.iter().any(|t| t.assignee.as_deref() == Some(who)),
            "{who}"
        );
    }
    for twist in ["none", "fail-once", "rate-limit-once", "needs-human"] {
        let line = format!("twist={twist}]");
        assert!(
            fed.iter()
                .any(|t| t.body.as_deref().unwrap().contains(&line)),
            "{twist}"
        );
    }
    for status in [
        Status::Todo,
        Status::Triage,
        Status::Scheduled,
        Status::Ready,
    ] {
        assert!(fed.iter().any(|t| t.status == status), "{status}");
    }
    // Rate limits belong to the partner-API profile only.
    assert!(
        fed.iter()
            .filter(|t| t.body.as_deref().unwrap().contains("rate-limit-once"))
            .all(|t| t.assignee.as_deref() == Some(FLAKY_API))
    );
}

#[test]
fn waiting_tasks_move_on_after_their_ticks() {
    let (_dir, store) = board();
    let tuning = Tuning {
        max_open: 0,
        answer_after: 2,
        wake_after: 3,
        triage_after: 4,
        ..Tuning::default()
    };
    let mut f = Feeder::new(store.clone(), 1).with_tuning(tuning);
    let one = |s| count(store.as_ref(), s);
    assert_eq!(
        (
            one(Status::Blocked),
            one(Status::Scheduled),
            one(Status::Triage)
        ),
        (1, 1, 1)
    );
    let r = f.tick().unwrap();
    assert!(r.created.is_empty(), "max_open 0 pauses the trickle");
    assert_eq!((r.answered, r.woken, r.triaged), (0, 0, 0));
    assert_eq!(f.tick().unwrap(), TickReport::default());
    let r = f.tick().unwrap();
    assert_eq!((r.answered, r.woken, r.triaged), (1, 0, 0));
    assert_eq!(one(Status::Blocked), 0);
    assert_eq!(f.tick().unwrap().woken, 1);
    assert_eq!(one(Status::Scheduled), 0);
    assert_eq!(f.tick().unwrap().triaged, 1);
    assert_eq!(one(Status::Triage), 0);
    let blocked = store
        .list_tasks(&TaskQuery::default())
        .unwrap()
        .into_iter()
        .find(|t| t.title == "Choose the default greeting language")
        .unwrap();
    assert_eq!(blocked.status, Status::Ready);
    let said = store.comments(&blocked.id).unwrap();
    assert!(said.iter().any(|c| c.author == STAND_IN_HUMAN), "{said:?}");
}

#[test]
fn old_done_tasks_are_archived_and_old_archived_ones_deleted() {
    // A board without an opening: which of several tasks done in the same
    // second is "older" is not defined.
    let dir = tempfile::tempdir().unwrap();
    let store = open_demo_board(&Root::at(dir.path())).unwrap().store();
    let tuning = Tuning {
        max_open: 0,
        keep_done: 4,
        keep_archived: 2,
        ..Tuning::default()
    };
    let mut f = Feeder::new(store.clone(), 1).with_tuning(tuning);
    let done = |f: &Feeder, n: usize| {
        for i in 0..n {
            let t = f
                .create(
                    &format!("t{i}"),
                    CODER,
                    Plan::new(1, Twist::None),
                    &[],
                    false,
                )
                .unwrap();
            complete(store.as_ref(), &t.id);
        }
    };
    // An opening's task is never deleted: it numbers the rounds.
    let opening = store
        .create_task(&NewTask {
            title: "opening".into(),
            created_by: Some(DEMO_AUTHOR.into()),
            idempotency_key: Some("kanban-demo:round-1:x".into()),
            ..NewTask::default()
        })
        .unwrap()
        .task;
    store.archive_task(&opening.id).unwrap();
    done(&f, 6);
    assert_eq!(f.tick().unwrap().archived, 2);
    assert_eq!(count(store.as_ref(), Status::Done), 4);
    for _ in 1..SWEEP_EVERY_TICKS {
        assert_eq!(f.tick().unwrap().deleted, 0);
    }
    done(&f, 3);
    assert_eq!(f.tick().unwrap().archived, 3);
    assert_eq!(count(store.as_ref(), Status::Archived), 6);
    let deleted: usize = (1..SWEEP_EVERY_TICKS)
        .map(|_| f.tick().unwrap().deleted)
        .sum();
    assert_eq!(deleted, 3);
    assert_eq!(count(store.as_ref(), Status::Archived), 3);
    assert!(store.get_task(&opening.id).unwrap().is_some());
}

#[test]
fn a_stopped_feeder_adds_nothing_more() {
    let (_dir, store) = board();
    let before = store.list_tasks(&TaskQuery::default()).unwrap().len();
    let handle =
        FeederHandle::spawn(Feeder::new(store.clone(), 3), Duration::from_millis(20)).unwrap();
    let grew = (0..200).any(|_| {
        std::thread::sleep(Duration::from_millis(10));
        store.list_tasks(&TaskQuery::default()).unwrap().len() > before
    });
    assert!(grew, "the feeder added nothing");
    handle.stop();
    let after = store.list_tasks(&TaskQuery::default()).unwrap().len();
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(
        store.list_tasks(&TaskQuery::default()).unwrap().len(),
        after
    );
}

#[test]
fn a_task_someone_else_moved_first_is_skipped_not_an_error() {
    let (_dir, store) = board();
    let ready = store
        .list_tasks(&TaskQuery {
            status: Some(Status::Ready),
            ..TaskQuery::default()
        })
        .unwrap()
        .remove(0);
    let refused = store.unblock_task(&ready.id, None).map(drop);
    assert_eq!(
        unless_overtaken(refused.map_err(DemoError::from)).ok(),
        Some(false)
    );
    let gone = store.archive_task("t_00000000").map(drop);
    assert_eq!(
        unless_overtaken(gone.map_err(DemoError::from)).ok(),
        Some(false)
    );
    let busy = Err(DemoError::Store(StoreError::Busy("locked".into())));
    assert!(unless_overtaken(busy).is_err(), "other errors still count");
}
