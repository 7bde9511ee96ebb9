//! Fixture rows, generated once and written into either backend, so a
//! SQLite board and a PostgreSQL board of one figure hold the same rows in
//! the same order (same ids, same event order, same run order).
//!
//! Only fixture building writes SQL directly; every measured operation goes
//! through `kanban`, the store API or the reference.
// Shared by several bench binaries, each of which uses a part.
#![allow(dead_code)]

use std::collections::HashMap;
use std::path::Path;

use anyhow::{Context, Result};
use rusqlite::{Connection, params};

/// One `tasks` row (the other columns keep their defaults).
#[derive(Debug, Clone)]
pub struct TaskRow {
    pub id: String,
    pub title: String,
    pub body: String,
    pub assignee: String,
    pub status: &'static str,
    pub priority: i64,
    pub created_at: i64,
    pub started_at: Option<i64>,
    pub completed_at: Option<i64>,
}

/// One finished `task_runs` row (status `done`, outcome `completed`).
#[derive(Debug, Clone)]
pub struct RunRow {
    pub task_id: String,
    pub profile: String,
    pub started_at: i64,
    pub ended_at: i64,
    pub summary: String,
}

/// One `task_events` row; `run` indexes [`Rows::runs`].
#[derive(Debug, Clone)]
pub struct EventRow {
    pub task_id: String,
    pub run: Option<usize>,
    pub kind: &'static str,
    pub payload: String,
    pub created_at: i64,
}

/// Every fixture row of a board; events and runs keep insertion order.
#[derive(Debug, Default)]
pub struct Rows {
    pub tasks: Vec<TaskRow>,
    pub runs: Vec<RunRow>,
    pub events: Vec<EventRow>,
    /// `(parent_id, child_id)`.
    pub links: Vec<(String, String)>,
}

/// Distinct `t_` + 8 hex ids (an odd multiplier is a bijection mod 2^32).
pub fn task_id(i: usize) -> String {
    format!(
        "t_{:08x}",
        (i as u64).wrapping_mul(2_654_435_761) & 0xffff_ffff
    )
}

impl Rows {
    /// Adds a task and its `created` event.
    pub fn task(&mut self, row: TaskRow) {
        let payload =
            serde_json::json!({"assignee": row.assignee, "status": row.status}).to_string();
        self.events.push(EventRow {
            task_id: row.id.clone(),
            run: None,
            kind: "created",
            payload,
            created_at: row.created_at,
        });
        self.tasks.push(row);
    }

    /// Adds a finished run of `task_id` and its `completed` event.
    pub fn completed_run(&mut self, run: RunRow) {
        self.events.push(EventRow {
            task_id: run.task_id.clone(),
            run: Some(self.runs.len()),
            kind: "completed",
            payload: "{}".into(),
            created_at: run.ended_at,
        });
        self.runs.push(run);
    }

    /// Writes the rows into an initialised, empty SQLite board in one
    /// transaction: runs, tasks, events (in order), links.
    pub fn write_sqlite(&self, db: &Path) -> Result<()> {
        let mut conn = Connection::open(db).with_context(|| format!("open {}", db.display()))?;
        let tx = conn.transaction()?;
        {
            let mut run = tx.prepare(
                "INSERT INTO task_runs (task_id, profile, status, started_at, ended_at, outcome, summary) \
                 VALUES (?1, ?2, 'done', ?3, ?4, 'completed', ?5)",
            )?;
            let mut run_ids = Vec::with_capacity(self.runs.len());
            for r in &self.runs {
                run.execute(params![
                    r.task_id,
                    r.profile,
                    r.started_at,
                    r.ended_at,
                    r.summary
                ])?;
                run_ids.push(tx.last_insert_rowid());
            }
            let mut task = tx.prepare(
                "INSERT INTO tasks (id, title, body, assignee, status, priority, created_by, created_at, \
                 started_at, completed_at, workspace_kind) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'bench', ?7, ?8, ?9, 'scratch')",
            )?;
            for t in &self.tasks {
                task.execute(params![
                    t.id,
                    t.title,
                    t.body,
                    t.assignee,
                    t.status,
                    t.priority,
                    t.created_at,
                    t.started_at,
                    t.completed_at
                ])?;
            }
            let mut event = tx.prepare(
                "INSERT INTO task_events (task_id, run_id, kind, payload, created_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5)",
            )?;
            for e in &self.events {
                let run_id = e.run.map(|i| run_ids[i]);
                event.execute(params![e.task_id, run_id, e.kind, e.payload, e.created_at])?;
            }
            let mut link =
                tx.prepare("INSERT INTO task_links (parent_id, child_id) VALUES (?1, ?2)")?;
            for (p, c) in &self.links {
                link.execute(params![p, c])?;
            }
        }
        tx.commit()?;
        conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
        Ok(())
    }

    /// Writes the rows into an initialised, empty PostgreSQL board (the
    /// client's `search_path` is the board's schema) in one transaction,
    /// one `INSERT … SELECT FROM unnest(…)` per table, in the same order as
    /// [`Rows::write_sqlite`]; then `VACUUM (ANALYZE)`, so the board is
    /// settled as autovacuum would leave it.
    pub fn write_postgres(&self, client: &mut postgres::Client) -> Result<()> {
        let mut tx = client.transaction()?;
        let col = |f: &dyn Fn(&RunRow) -> String| self.runs.iter().map(f).collect::<Vec<_>>();
        let (rt, rp, rs) = (
            col(&|r| r.task_id.clone()),
            col(&|r| r.profile.clone()),
            col(&|r| r.summary.clone()),
        );
        let rst: Vec<i64> = self.runs.iter().map(|r| r.started_at).collect();
        let ren: Vec<i64> = self.runs.iter().map(|r| r.ended_at).collect();
        let mut run_ids: HashMap<String, i64> = HashMap::with_capacity(self.runs.len());
        for row in tx.query(
            "INSERT INTO task_runs (task_id, profile, status, started_at, ended_at, outcome, summary) \
             SELECT t, p, 'done', s, e, 'completed', m \
             FROM unnest($1::text[], $2::text[], $3::bigint[], $4::bigint[], $5::text[]) \
             WITH ORDINALITY AS u(t, p, s, e, m, n) ORDER BY n RETURNING id, task_id",
            &[&rt, &rp, &rst, &ren, &rs],
        )? {
            run_ids.insert(row.get(1), row.get(0));
        }
        let t = &self.tasks;
        let ids: Vec<&str> = t.iter().map(|r| r.id.as_str()).collect();
        let titles: Vec<&str> = t.iter().map(|r| r.title.as_str()).collect();
        let bodies: Vec<&str> = t.iter().map(|r| r.body.as_str()).collect();
        let assignees: Vec<&str> = t.iter().map(|r| r.assignee.as_str()).collect();
        let statuses: Vec<&str> = t.iter().map(|r| r.status).collect();
        let priorities: Vec<i64> = t.iter().map(|r| r.priority).collect();
        let created: Vec<i64> = t.iter().map(|r| r.created_at).collect();
        let started: Vec<Option<i64>> = t.iter().map(|r| r.started_at).collect();
        let completed: Vec<Option<i64>> = t.iter().map(|r| r.completed_at).collect();
        tx.execute(
            "INSERT INTO tasks (id, title, body, assignee, status, priority, created_by, created_at, \
             started_at, completed_at, workspace_kind) \
             SELECT i, ti, b, a, st, p, 'bench', c, s, co, 'scratch' \
             FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::bigint[], \
                         $7::bigint[], $8::bigint[], $9::bigint[]) \
             WITH ORDINALITY AS u(i, ti, b, a, st, p, c, s, co, n) ORDER BY n",
            &[
                &ids,
                &titles,
                &bodies,
                &assignees,
                &statuses,
                &priorities,
                &created,
                &started,
                &completed,
            ],
        )?;
        let e = &self.events;
        let etask: Vec<&str> = e.iter().map(|r| r.task_id.as_str()).collect();
        let erun: Vec<Option<i64>> = e
            .iter()
            .map(|r| r.run.map(|i| run_ids[&self.runs[i].task_id]))
            .collect();
        let ekind: Vec<&str> = e.iter().map(|r| r.kind).collect();
        let epayload: Vec<&str> = e.iter().map(|r| r.payload.as_str()).collect();
        let eat: Vec<i64> = e.iter().map(|r| r.created_at).collect();
        tx.execute(
            "INSERT INTO task_events (task_id, run_id, kind, payload, created_at) \
             SELECT t, r, k, p, c \
             FROM unnest($1::text[], $2::bigint[], $3::text[], $4::text[], $5::bigint[]) \
             WITH ORDINALITY AS u(t, r, k, p, c, n) ORDER BY n",
            &[&etask, &erun, &ekind, &epayload, &eat],
        )?;
        let parents: Vec<&str> = self.links.iter().map(|l| l.0.as_str()).collect();
        let children: Vec<&str> = self.links.iter().map(|l| l.1.as_str()).collect();
        tx.execute(
            "INSERT INTO task_links (parent_id, child_id) \
             SELECT * FROM unnest($1::text[], $2::text[])",
            &[&parents, &children],
        )?;
        tx.commit()?;
        client.batch_execute("VACUUM (ANALYZE) tasks, task_runs, task_events, task_links")?;
        Ok(())
    }
}
