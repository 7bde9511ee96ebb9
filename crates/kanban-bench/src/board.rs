//! Building large boards fast. A 100k-task board is far too slow to create one
//! task at a time through either implementation (the reference needs minutes),
//! so the fixture rows are bulk-inserted in one transaction into a board whose
//! schema `kanban init` created. Only fixture building uses SQL directly; every
//! measured operation goes through `kanban`, the store API or the reference.

use std::path::Path;

use anyhow::{Context, Result};
use rusqlite::{Connection, params};

/// Share of each status in a generated board, in percent (the rest are done).
const READY_PERCENT: usize = 10;
const TODO_PERCENT: usize = 5;
const BLOCKED_PERCENT: usize = 2;
const PROFILES: &[&str] = &["alice", "bob", "carol", "dave"];

/// Fills an initialised, empty board with `n` tasks: mostly done, some ready,
/// some todo children waiting on a ready parent, a few blocked. Every task gets
/// its `created` event, done ones a run and a `completed` event.
pub fn fill(db: &Path, n: usize) -> Result<()> {
    let mut conn = Connection::open(db).with_context(|| format!("open {}", db.display()))?;
    let tx = conn.transaction()?;
    let base: i64 = 1_700_000_000;
    {
        let mut task = tx.prepare(
            "INSERT INTO tasks (id, title, body, assignee, status, priority, created_by, created_at, \
             started_at, completed_at, workspace_kind) VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'bench', ?7, ?8, ?9, 'scratch')",
        )?;
        let mut event = tx.prepare(
            "INSERT INTO task_events (task_id, run_id, kind, payload, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
        )?;
        let mut run = tx.prepare(
            "INSERT INTO task_runs (task_id, profile, status, started_at, ended_at, outcome, summary) \
             VALUES (?1, ?2, 'done', ?3, ?4, 'completed', ?5)",
        )?;
        let mut link =
            tx.prepare("INSERT INTO task_links (parent_id, child_id) VALUES (?1, ?2)")?;
        let mut last_ready: Option<String> = None;
        for i in 0..n {
            let id = format!(
                "t_{:08x}",
                (i as u64).wrapping_mul(2_654_435_761) & 0xffff_ffff
            );
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
            let (started, completed) = if status == "done" {
                (Some(created + 5), Some(created + 60))
            } else {
                (None, None)
            };
            task.execute(params![
                id,
                format!("Benchmark task {i}"),
                format!("Body of task {i}: do the thing, then report."),
                assignee,
                status,
                (i % 3) as i64,
                created,
                started,
                completed,
            ])?;
            let payload = serde_json::json!({"assignee": assignee, "status": status}).to_string();
            event.execute(params![id, None::<i64>, "created", payload, created])?;
            match status {
                "done" => {
                    run.execute(params![id, assignee, created + 5, created + 60, "done"])?;
                    let run_id = tx.last_insert_rowid();
                    event.execute(params![id, run_id, "completed", "{}", created + 60])?;
                }
                "todo" => {
                    if let Some(parent) = &last_ready {
                        link.execute(params![parent, id])?;
                    }
                }
                "ready" => last_ready = Some(id.clone()),
                _ => {}
            }
        }
    }
    tx.commit()?;
    Ok(())
}
