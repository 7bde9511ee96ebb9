//! What readers see while writers commit from other handles: event
//! cursors, multi-query reads, change probes. Each test checks one clause
//! of the concurrency contract written on `kanban_store::Store` and
//! `kanban_store::watch::ChangeProbe`.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, mpsc};

use kanban_core::Status;
use kanban_store::*;

use crate::support::*;
use crate::{Board, SuiteStore};

/// Writer threads next to the reader in these tests.
const WRITERS: usize = 4;
/// Writes per writer thread.
const WRITES: usize = 30;

/// Every event id on the board, in id order.
fn all_event_ids(s: &dyn Store) -> Vec<i64> {
    s.events(&EventQuery::default())
        .expect("events")
        .into_iter()
        .map(|e| e.id)
        .collect()
}

/// Writer `n`'s writes: tasks, and comments on its last task (two kinds
/// of rows, one event each).
fn append_events(n: usize, s: &dyn SuiteStore) {
    let mut last: Option<String> = None;
    for i in 0..WRITES {
        match last.as_deref() {
            Some(id) if i % 2 == 1 => {
                s.add_comment(id, &format!("writer{n}"), "note")
                    .expect("comment");
            }
            _ => last = Some(create(s, &format!("w{n} {i}")).id),
        }
    }
}

/// [`WRITERS`] threads run `write` while one more runs `read` over and
/// over until they are all done, then once more; the reads' results.
fn read_while_writing<T: Send>(
    board: &Board<'_>,
    write: impl Fn(usize, &dyn SuiteStore) + Sync,
    read: impl Fn(&dyn SuiteStore) -> T + Sync,
) -> Vec<T> {
    let writing = AtomicUsize::new(WRITERS);
    let mut out = race(board, WRITERS + 1, |n, s| {
        let mut reads = Vec::new();
        if n == 0 {
            loop {
                let last = writing.load(Ordering::SeqCst) == 0;
                reads.push(read(s));
                if last {
                    return reads;
                }
            }
        }
        write(n, s);
        writing.fetch_sub(1, Ordering::SeqCst);
        reads
    });
    out.swap_remove(0)
}

/// A reader tailing the feed with a cursor (`events` after the highest id
/// it has seen) while writers append from several handles never skips an
/// event: an id below the cursor never appears later.
pub fn event_cursor_never_skips_a_commit(board: &Board<'_>) {
    // (cursor, ids seen), only touched by the reader thread.
    let tail = Mutex::new((0i64, Vec::new()));
    let follow = |s: &dyn Store, limit: Option<usize>| -> bool {
        let mut tail = tail.lock().unwrap();
        let batch = s
            .events(&EventQuery {
                after_id: Some(tail.0),
                limit,
                ..Default::default()
            })
            .expect("tail events");
        for e in &batch {
            assert!(
                e.id > tail.0,
                "feed went backwards: {} after {}",
                e.id,
                tail.0
            );
            tail.0 = e.id;
            tail.1.push(e.id);
        }
        !batch.is_empty()
    };
    read_while_writing(board, append_events, |s| follow(s, Some(25)));
    // Drain what the last rounds' limit left.
    let s = board.open();
    while follow(&*s, None) {}
    let seen = tail.into_inner().unwrap().1;
    let all = all_event_ids(&*s);
    assert_eq!(all.len(), WRITERS * WRITES);
    let missed: Vec<i64> = all
        .iter()
        .filter(|id| !seen.contains(id))
        .copied()
        .collect();
    assert!(missed.is_empty(), "the cursor skipped events {missed:?}");
}

/// `latest_event_id` read during concurrent writes is a safe start cursor:
/// every event at or below it is already visible, none appears later.
pub fn latest_event_id_is_a_safe_start_cursor(board: &Board<'_>) {
    let samples = read_while_writing(board, append_events, |s| {
        let latest = s.latest_event_id().expect("latest event id");
        let visible: BTreeSet<i64> = all_event_ids(s)
            .into_iter()
            .filter(|id| *id <= latest)
            .collect();
        (latest, visible)
    });
    let all = all_event_ids(&*board.open());
    assert!(samples.len() > 1);
    for (latest, visible) in samples {
        let later: BTreeSet<i64> = all.iter().filter(|id| **id <= latest).copied().collect();
        assert_eq!(
            visible, later,
            "events at or below {latest} appeared after it was read"
        );
    }
}

/// `card_facts` reads links from both ends in one snapshot: while writers
/// link and unlink tasks, the parents counted over the board always equal
/// the children counted.
pub fn card_facts_read_one_snapshot(board: &Board<'_>) {
    const TASKS: usize = 10;
    let setup = board.open();
    let ids: Vec<String> = (0..TASKS)
        .map(|i| create(&*setup, &format!("n{i}")).id)
        .collect();
    // Links always go from a lower to a higher index: never a cycle.
    let relink = |n: usize, s: &dyn SuiteStore| {
        for i in 0..WRITES {
            let a = (n * 7 + i * 3) % TASKS;
            let b = (a + 1 + (i + n) % (TASKS - 1)) % TASKS;
            let (p, c) = (a.min(b), a.max(b));
            if i % 3 == 2 {
                s.unlink_tasks(&ids[p], &ids[c]).expect("unlink");
            } else {
                s.link_tasks(&ids[p], &ids[c]).expect("link");
            }
        }
    };
    read_while_writing(board, relink, |s| {
        let facts = s.card_facts(None).expect("card facts");
        let parents: i64 = facts.values().map(|f| f.parents).sum();
        let children: i64 = facts.values().map(|f| f.children).sum();
        assert_eq!(parents, children, "links counted from both ends differ");
        assert!(facts.values().all(|f| f.children_done <= f.children));
    });
}

/// `stats` reads its counts in one snapshot: while writers create, claim
/// and complete tasks (all assigned), the per-status and per-assignee
/// counts always add up to the same total.
pub fn stats_read_one_snapshot(board: &Board<'_>) {
    let work = |n: usize, s: &dyn SuiteStore| {
        for i in 0..WRITES {
            let t = create(s, &format!("s{n} {i}"));
            match i % 3 {
                0 => {}
                1 => {
                    claim(s, &t.id);
                }
                _ => {
                    complete(s, &t.id);
                }
            }
        }
    };
    read_while_writing(board, work, |s| {
        let stats = s.stats().expect("stats");
        let by_status: i64 = stats.by_status.values().sum();
        let by_assignee: i64 = stats.by_assignee.values().flat_map(|m| m.values()).sum();
        assert_eq!(by_status, by_assignee, "{stats:?}");
    });
    let stats = board.open().stats().unwrap();
    assert_eq!(
        stats.by_status.values().sum::<i64>(),
        (WRITERS * WRITES) as i64
    );
    assert_eq!(
        stats.by_status.get(Status::Done.as_str()).copied(),
        Some((WRITERS * WRITES / 3) as i64)
    );
}

/// A change probe sees a commit through any handle of the board: the
/// store it was made next to, another handle, a handle opened after it.
pub fn probe_sees_commits_of_every_handle(board: &Board<'_>) {
    let first = board.open();
    let mut probe = board.probe();
    let mut last = probe.version().expect("version");
    let second = board.open();
    let handles: [&dyn Store; 2] = [&*first, &*second];
    for (i, s) in handles.into_iter().enumerate() {
        create(s, &format!("p{i}"));
        let now = probe.version().unwrap();
        assert_ne!(now, last, "a commit through handle {i} is seen");
        last = now;
    }
    let later = board.open();
    let t = create(&*later, "later");
    assert_ne!(
        probe.version().unwrap(),
        last,
        "a handle opened after the probe"
    );
    last = probe.version().unwrap();
    claim(&*later, &t.id);
    assert_ne!(probe.version().unwrap(), last, "a claim is a commit too");
}

/// A commit made on another thread is seen by the probe's next call once
/// the commit has returned (what the gateway's wake-up relies on).
pub fn probe_sees_concurrent_commits(board: &Board<'_>) {
    const COMMITS: usize = 20;
    let writer = board.open();
    let mut probe = board.probe();
    let mut last = probe.version().expect("version");
    let (committed, commits) = mpsc::channel::<()>();
    let (next, go) = mpsc::channel::<()>();
    std::thread::scope(|sc| {
        sc.spawn(move || {
            for i in 0..COMMITS {
                go.recv().expect("go");
                create(&*writer, &format!("c{i}"));
                committed.send(()).expect("report");
            }
        });
        for i in 0..COMMITS {
            next.send(()).unwrap();
            commits.recv().expect("commit");
            let now = probe.version().unwrap();
            assert_ne!(now, last, "commit {i} not seen");
            last = now;
        }
    });
}
