//! The row/event/run helpers every state change is built from, on an open
//! write transaction ([`Tx`], see `db.rs`). Same vocabulary as the SQLite
//! backend: read the task with [`Tx::require_task`], decide with
//! `kanban_core::transitions::decide`, write the row, then append the event
//! with [`Tx::append_event`] and open/close runs with [`Tx::open_run`] /
//! [`Tx::end_run`] / [`Tx::synthesize_run`].

use kanban_core::transitions::TaskFacts;
use kanban_core::transitions::review::is_review_claim;
use kanban_core::{BlockKind, EventKind, Status, Task};
use kanban_store::StoreError;
use serde_json::Value;

use crate::db::{Db, DbError, DbResult, Tx, json_text};
use crate::row::{status_of, task_from_row};
use crate::schema::TASK_COLUMNS;

/// How a run ends: the semantic outcome, the row status, and the handoff.
#[derive(Debug, Clone, Default)]
pub(crate) struct RunEnd<'a> {
    pub outcome: &'a str,
    /// Row status; `None` = same as the outcome.
    pub status: Option<&'a str>,
    pub summary: Option<&'a str>,
    pub error: Option<&'a str>,
    pub metadata: Option<&'a Value>,
}

impl<'a> RunEnd<'a> {
    pub(crate) fn new(outcome: &'a str) -> Self {
        RunEnd {
            outcome,
            ..Default::default()
        }
    }
}

/// `SELECT <all columns> FROM tasks WHERE id = $1`.
pub(crate) fn load_task(db: &Db<'_>, id: &str) -> DbResult<Option<Task>> {
    let sql = format!("SELECT {TASK_COLUMNS} FROM tasks WHERE id = $1");
    db.query_opt(&sql, &[&id])?
        .map(|r| task_from_row(&r))
        .transpose()
}

/// The facts of `task` for `transitions::decide`, its parents' state
/// already known.
pub(crate) fn facts_of(task: &Task, parents_satisfied: bool) -> TaskFacts {
    TaskFacts {
        status: task.status,
        parents_satisfied,
        claimed: task.claim_lock.is_some(),
        open_run: task.current_run_id.is_some(),
        block_kind: task
            .block_kind
            .as_deref()
            .and_then(|k| k.parse::<BlockKind>().ok()),
        block_recurrences: task.block_recurrences,
    }
}

impl Tx<'_> {
    /// The task row, or `None`.
    pub(crate) fn task(&self, id: &str) -> DbResult<Option<Task>> {
        load_task(&self.conn, id)
    }

    /// The task row, or `StoreError::TaskNotFound`.
    pub(crate) fn require_task(&self, id: &str) -> DbResult<Task> {
        self.task(id)?
            .ok_or_else(|| DbError::Store(StoreError::TaskNotFound(id.to_string())))
    }

    /// Append one event row; returns its id (the feed cursor).
    pub(crate) fn append_event(
        &self,
        task_id: &str,
        kind: EventKind,
        payload: Option<Value>,
        run_id: Option<i64>,
    ) -> DbResult<i64> {
        let row = self.query_one(
            "INSERT INTO task_events (task_id, run_id, kind, payload, created_at) \
             VALUES ($1, $2, $3, $4, $5) RETURNING id",
            &[
                &task_id,
                &run_id,
                &kind.as_str(),
                &json_text(payload.as_ref()),
                &self.now,
            ],
        )?;
        Ok(row.try_get(0)?)
    }

    /// Close the task's open run (if any) and clear `current_run_id`.
    /// Returns the closed run id, `None` when no run was open.
    pub(crate) fn end_run(&self, task_id: &str, end: &RunEnd<'_>) -> DbResult<Option<i64>> {
        let current: Option<i64> = self
            .query_opt(
                "SELECT current_run_id FROM tasks WHERE id = $1",
                &[&task_id],
            )?
            .map(|r| r.try_get::<_, Option<i64>>(0))
            .transpose()?
            .flatten()
            .filter(|id| *id != 0);
        let Some(run_id) = current else {
            return Ok(None);
        };
        self.execute(
            "UPDATE task_runs SET status = $1, outcome = $2, summary = $3, error = $4, \
             metadata = $5, ended_at = $6, claim_lock = NULL, claim_expires = NULL, \
             worker_pid = NULL WHERE id = $7 AND ended_at IS NULL",
            &[
                &end.status.unwrap_or(end.outcome),
                &end.outcome,
                &end.summary,
                &end.error,
                &json_text(end.metadata),
                &self.now,
                &run_id,
            ],
        )?;
        self.execute(
            "UPDATE tasks SET current_run_id = NULL WHERE id = $1",
            &[&task_id],
        )?;
        Ok(Some(run_id))
    }

    /// Insert a zero-length, already closed run (a terminal transition of
    /// a never-claimed task, so the handoff text is not lost).
    pub(crate) fn synthesize_run(&self, task_id: &str, end: &RunEnd<'_>) -> DbResult<i64> {
        let (profile, step): (Option<String>, Option<String>) = match self.query_opt(
            "SELECT assignee, current_step_key FROM tasks WHERE id = $1",
            &[&task_id],
        )? {
            Some(r) => (r.try_get(0)?, r.try_get(1)?),
            None => (None, None),
        };
        let row = self.query_one(
            "INSERT INTO task_runs (task_id, profile, step_key, status, outcome, summary, \
             error, metadata, started_at, ended_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9) RETURNING id",
            &[
                &task_id,
                &profile,
                &step,
                &end.outcome, // a synthesized run: status = outcome, as in the reference
                &end.outcome,
                &end.summary,
                &end.error,
                &json_text(end.metadata),
                &self.now,
            ],
        )?;
        Ok(row.try_get(0)?)
    }

    /// End the open run, or synthesize one when there was none and the
    /// caller has handoff text (`summary`/`metadata`) worth keeping.
    pub(crate) fn end_or_synthesize_run(
        &self,
        task_id: &str,
        end: &RunEnd<'_>,
        keep_if_unclaimed: bool,
    ) -> DbResult<Option<i64>> {
        match self.end_run(task_id, end)? {
            Some(id) => Ok(Some(id)),
            None if keep_if_unclaimed => Ok(Some(self.synthesize_run(task_id, end)?)),
            None => Ok(None),
        }
    }

    /// Open a `running` run for a claim and point the task at it.
    pub(crate) fn open_run(&self, task: &Task, lock: &str, expires: i64) -> DbResult<i64> {
        let row = self.query_one(
            "INSERT INTO task_runs (task_id, profile, step_key, status, claim_lock, \
             claim_expires, max_runtime_seconds, started_at) \
             VALUES ($1, $2, $3, 'running', $4, $5, $6, $7) RETURNING id",
            &[
                &task.id,
                &task.assignee,
                &task.current_step_key,
                &lock,
                &expires,
                &task.max_runtime_seconds,
                &self.now,
            ],
        )?;
        let run_id: i64 = row.try_get(0)?;
        self.execute(
            "UPDATE tasks SET current_run_id = $1 WHERE id = $2",
            &[&run_id, &task.id],
        )?;
        Ok(run_id)
    }

    /// Close a run the task still points at although its status says no
    /// run should be open (an invariant broken by some other writer).
    pub(crate) fn close_leaked_run(&self, run_id: i64, note: &str) -> DbResult<()> {
        self.execute(
            "UPDATE task_runs SET status = 'reclaimed', outcome = 'reclaimed', \
             summary = COALESCE(summary, $1), ended_at = $2, claim_lock = NULL, \
             claim_expires = NULL, worker_pid = NULL WHERE id = $3 AND ended_at IS NULL",
            &[&note, &self.now, &run_id],
        )?;
        Ok(())
    }

    /// Parents that are neither done nor archived, as `(id, status)`.
    pub(crate) fn unsatisfied_parents(&self, task_id: &str) -> DbResult<Vec<(String, Status)>> {
        self.query(
            "SELECT p.id, p.status FROM task_links l JOIN tasks p ON p.id = l.parent_id \
             WHERE l.child_id = $1 AND p.status NOT IN ('done', 'archived') ORDER BY p.id COLLATE \"C\"",
            &[&task_id],
        )?
        .iter()
        .map(|r| Ok((r.try_get::<_, String>(0)?, status_of(r.try_get(1)?))))
        .collect()
    }

    /// Every parent is done or archived (true without parents).
    pub(crate) fn parents_satisfied(&self, task_id: &str) -> DbResult<bool> {
        Ok(self
            .query_opt(
                "SELECT 1 FROM task_links l JOIN tasks p ON p.id = l.parent_id \
                 WHERE l.child_id = $1 AND p.status NOT IN ('done', 'archived') LIMIT 1",
                &[&task_id],
            )?
            .is_none())
    }

    /// Whether `run` was claimed from the review column: its `claimed`
    /// event says `source_status: review` (the reference's
    /// `claim_review_task` writes it the same way).
    pub(crate) fn is_review_run(&self, task_id: &str, run: Option<i64>) -> DbResult<bool> {
        let Some(run) = run else {
            return Ok(false);
        };
        let row = self.query_opt(
            "SELECT payload FROM task_events WHERE run_id = $1 AND task_id = $2 \
             AND kind = 'claimed' ORDER BY id DESC LIMIT 1",
            &[&run, &task_id],
        )?;
        let text: Option<String> = match row {
            Some(r) => r.try_get(0)?,
            None => None,
        };
        Ok(text
            .and_then(|t| serde_json::from_str::<Value>(&t).ok())
            .is_some_and(|p| is_review_claim(&p)))
    }

    /// What `transitions::decide` needs to know about `task`.
    pub(crate) fn facts(&self, task: &Task) -> DbResult<TaskFacts> {
        Ok(facts_of(task, self.parents_satisfied(&task.id)?))
    }

    /// Child ids of a task.
    pub(crate) fn children(&self, task_id: &str) -> DbResult<Vec<String>> {
        self.query(
            "SELECT child_id FROM task_links WHERE parent_id = $1 ORDER BY child_id COLLATE \"C\"",
            &[&task_id],
        )?
        .iter()
        .map(|r| Ok(r.try_get(0)?))
        .collect()
    }
}
