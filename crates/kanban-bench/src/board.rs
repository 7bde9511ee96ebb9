//! Building large boards fast. A 100k-task board is far too slow to create one
//! task at a time through either implementation (the reference needs minutes),
//! so the fixture rows are bulk-inserted in one transaction into a board whose
//! schema `kanban init` created (see `fixture`). Only fixture building uses SQL
//! directly; every measured operation goes through `kanban`, the store API or
//! the reference.

use crate::fixture::{Rows, RunRow, TaskRow, task_id};

/// Share of each status in a generated board, in percent (the rest are done).
const READY_PERCENT: usize = 10;
const TODO_PERCENT: usize = 5;
const BLOCKED_PERCENT: usize = 2;
const PROFILES: &[&str] = &["alice", "bob", "carol", "dave"];

/// The rows of a board of `n` tasks: mostly done, some ready, some todo
/// children waiting on a ready parent, a few blocked. Every task gets its
/// `created` event, done ones a run and a `completed` event.
pub fn rows(n: usize) -> Rows {
    let mut rows = Rows::default();
    let base: i64 = 1_700_000_000;
    let mut last_ready: Option<String> = None;
    for i in 0..n {
        let id = task_id(i);
        let slot = i % 100;
        let status = if slot < READY_PERCENT {
            "ready"
        } else if slot < READY_PERCENT + TODO_PERCENT {
            if last_ready.is_some() {
                "todo"
            } else {
                "ready"
            }
        } else if slot < READY_PERCENT + TODO_PERCENT + BLOCKED_PERCENT {
            "blocked"
        } else {
            "done"
        };
        let created = base + i as i64;
        let assignee = PROFILES[i % PROFILES.len()];
        let done = status == "done";
        rows.task(TaskRow {
            id: id.clone(),
            title: format!("Benchmark task {i}"),
            body: format!("Body of task {i}: do the thing, then report."),
            assignee: assignee.into(),
            status,
            priority: (i % 3) as i64,
            created_at: created,
            started_at: done.then_some(created + 5),
            completed_at: done.then_some(created + 60),
        });
        match status {
            "done" => rows.completed_run(RunRow {
                task_id: id,
                profile: assignee.into(),
                started_at: created + 5,
                ended_at: created + 60,
                summary: "done".into(),
            }),
            "todo" => {
                if let Some(parent) = &last_ready {
                    rows.links.push((parent.clone(), id));
                }
            }
            "ready" => last_ready = Some(id),
            _ => {}
        }
    }
    rows
}
