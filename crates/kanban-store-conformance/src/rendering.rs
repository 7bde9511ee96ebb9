//! Rendered listings (`Store::render_tasks`, `kanban list --json`): every
//! task of the query exactly once, at its position, in the query's order,
//! as streaming it would give; an early stop; and one snapshot while
//! another handle reorders the board. The board is big enough for a
//! backend to render on several threads (SQLite does from 2,000 rows).

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};

use kanban_core::ids::new_task_id;
use kanban_store::*;

use crate::Board;

/// Tasks on the board: past the SQLite backend's threshold for lanes.
const BIG_BOARD: usize = 2_500;

/// Priorities and assignees interleave, so the default order jumps
/// around the table and every lane gets rows of every kind.
fn big_board(s: &dyn Store) -> Vec<String> {
    let tasks: Vec<BatchTask> = (0..BIG_BOARD)
        .map(|i| BatchTask {
            id: new_task_id(),
            task: NewTask {
                title: format!("render {i} \"quoted\" é"),
                body: (i % 2 == 0).then(|| format!("body {i}")),
                assignee: Some(["alice", "bob", "carol"][i % 3].into()),
                priority: (i % 4) as i64,
                ..Default::default()
            },
            complete: None,
        })
        .collect();
    let ids = tasks.iter().map(|t| t.id.clone()).collect();
    s.create_task_batch(&NewTaskBatch {
        tasks,
        comments: Vec::new(),
    })
    .expect("batch of tasks");
    ids
}

/// One line per task: position, id, status, priority, title.
fn line(position: usize, t: &TaskRow<'_>, text: &mut Vec<u8>) {
    let l = format!(
        "{position} {} {} {} {}\n",
        t.id,
        t.status.as_str(),
        t.priority,
        t.title
    );
    text.extend_from_slice(l.as_bytes());
}

fn rendered(s: &dyn Store, q: &TaskQuery) -> String {
    let mut out = Vec::new();
    s.render_tasks(q, &line, &mut |text| {
        out.extend_from_slice(text);
        true
    })
    .expect("render_tasks");
    String::from_utf8(out).expect("utf-8")
}

fn streamed(s: &dyn Store, q: &TaskQuery) -> String {
    let mut out = Vec::new();
    let mut position = 0;
    s.for_each_task(q, &mut |t| {
        line(position, &t, &mut out);
        position += 1;
        true
    })
    .expect("for_each_task");
    String::from_utf8(out).expect("utf-8")
}

pub fn render_tasks_renders_what_streaming_gives(s: &dyn Store) {
    big_board(s);
    let queries = [
        TaskQuery::default(),
        TaskQuery {
            order: TaskOrder::CreatedDesc,
            ..Default::default()
        },
        TaskQuery {
            assignee: Some("bob".into()),
            order: TaskOrder::Title,
            ..Default::default()
        },
        TaskQuery {
            status: Some(kanban_core::Status::Done),
            ..Default::default()
        },
    ];
    for q in &queries {
        let whole = rendered(s, q);
        assert_eq!(whole, streamed(s, q), "{q:?}");
    }
    assert_eq!(rendered(s, &queries[0]).lines().count(), BIG_BOARD);
    assert_eq!(
        rendered(s, &queries[3]),
        "",
        "nothing matches: nothing rendered"
    );
}

pub fn render_tasks_stops_when_emit_says_so(s: &dyn Store) {
    big_board(s);
    let q = TaskQuery::default();
    let mut pieces = 0;
    let mut first = Vec::new();
    s.render_tasks(&q, &line, &mut |text| {
        pieces += 1;
        first.extend_from_slice(text);
        false
    })
    .expect("render_tasks");
    assert_eq!(pieces, 1, "no piece after a stop");
    let whole = rendered(s, &q);
    assert!(
        whole.as_bytes().starts_with(&first),
        "the first piece leads"
    );
    // The store is usable right after an early stop.
    assert_eq!(whole, streamed(s, &q));
}

/// While another handle keeps moving tasks between priorities (so rows
/// jump across the order), each rendering is one snapshot: every task
/// exactly once, positions 0, 1, 2, … with no gap, each with the
/// priority the order sorted it by.
pub fn render_tasks_reads_one_snapshot_under_writes(board: &Board<'_>) {
    let s = board.open();
    let ids = big_board(&*s);
    let stop = AtomicBool::new(false);
    std::thread::scope(|scope| {
        let writer = board.open();
        let (ids, stop) = (&ids, &stop);
        scope.spawn(move || {
            let mut n = 0usize;
            while !stop.load(Ordering::Relaxed) {
                let id = &ids[(n * 7919) % ids.len()];
                writer
                    .edit_task(&EditTask {
                        task_id: id.clone(),
                        priority: Some((n % 5) as i64 + 10),
                        ..Default::default()
                    })
                    .expect("reprioritize");
                n += 1;
            }
        });
        // Stops the writer however the checks end (a failed assertion
        // too), or the scope would wait for it forever.
        struct StopOnDrop<'a>(&'a AtomicBool);
        impl Drop for StopOnDrop<'_> {
            fn drop(&mut self) {
                self.0.store(true, Ordering::Relaxed);
            }
        }
        let _stop_writer = StopOnDrop(stop);
        for _ in 0..4 {
            let text = rendered(&*s, &TaskQuery::default());
            let mut seen = HashSet::new();
            let mut last_priority = i64::MAX;
            for (expected, l) in text.lines().enumerate() {
                let mut parts = l.split(' ');
                let position: usize = parts.next().unwrap().parse().unwrap();
                assert_eq!(position, expected, "positions run without a gap");
                let id = parts.next().unwrap().to_string();
                assert!(seen.insert(id.clone()), "{id} rendered twice");
                // Rows read in another snapshot than the order would
                // show priorities the order did not sort by.
                let priority: i64 = parts.nth(1).unwrap().parse().unwrap();
                assert!(priority <= last_priority, "{id} out of order: {l}");
                last_priority = priority;
            }
            assert_eq!(seen.len(), ids.len(), "every task once");
        }
    });
}
