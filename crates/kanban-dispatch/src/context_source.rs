//! The full worker context (reference §5.3) read from a board's store: the
//! text `kanban context <id>` prints and template profiles get as
//! `{prompt}`. Shared by the CLI verbs, the MCP server, `kanban dispatch`
//! and the gateway, so a worker sees the same text whoever started it.
//!
//! Gathering (task, runs, comments, parents' handoffs, the assignee's
//! recent work, attachments) lives here; the rendering itself is
//! `kanban_core::context::build_worker_context`.

use std::sync::Arc;

use chrono::{Local, TimeZone};
use kanban_core::context::{ParentHandoff, RecentWork, WorkerContextInput, build_worker_context};
use kanban_core::defaults::CONTEXT_RECENT_ROLE_RUNS;
use kanban_core::{Run, Status, Task};
use kanban_store::{Clock, Store, StoreError};

use crate::dispatcher::{ContextSource, TitleBodyContext};

/// Environment variable whose value the context quotes as the worker's
/// terminal timeout (reference §5.3).
pub const ENV_TERMINAL_TIMEOUT: &str = "TERMINAL_TIMEOUT";

/// A timestamp as the CLI prints it: `YYYY-MM-DD HH:MM` in local time;
/// empty for 0 (never set) or an unrepresentable time.
pub fn format_local_minute(ts: i64) -> String {
    if ts == 0 {
        return String::new();
    }
    Local
        .timestamp_opt(ts, 0)
        .single()
        .map(|d| d.format("%Y-%m-%d %H:%M").to_string())
        .unwrap_or_default()
}

/// The latest `completed` run of a task, the handoff its children read.
fn latest_completed(runs: &[Run]) -> Option<&Run> {
    runs.iter()
        .filter(|r| r.outcome.as_deref() == Some("completed"))
        .max_by_key(|r| (r.started_at, r.id))
}

/// The assignee's latest completed runs on other tasks, newest first.
fn recent_work(store: &dyn Store, task: &Task) -> Result<Vec<RecentWork>, StoreError> {
    let Some(assignee) = &task.assignee else {
        return Ok(Vec::new());
    };
    store.recent_completed_runs(assignee, Some(&task.id), CONTEXT_RECENT_ROLE_RUNS)
}

/// Handoffs of the task's parents that are done, in id order.
fn parent_handoffs(store: &dyn Store, task_id: &str) -> Result<Vec<ParentHandoff>, StoreError> {
    let mut parent_ids = store.parents_of(task_id)?;
    parent_ids.sort();
    let mut parents = Vec::new();
    for pid in parent_ids {
        let Some(p) = store.get_task(&pid)? else {
            continue;
        };
        if p.status != Status::Done {
            continue;
        }
        let p_runs = store.runs(&pid)?;
        let run = latest_completed(&p_runs);
        parents.push(ParentHandoff {
            task_id: pid.clone(),
            summary: run.and_then(|r| r.summary.clone()),
            metadata: run.and_then(|r| r.metadata.clone()),
            result: p.result.clone(),
            completed_at: run.and_then(|r| r.ended_at).or(p.completed_at),
        });
    }
    Ok(parents)
}

/// Gather the rows of `task_id` and render its worker context.
/// `terminal_timeout` is the value of [`ENV_TERMINAL_TIMEOUT`] to quote.
pub fn render_worker_context(
    store: &dyn Store,
    now: i64,
    task_id: &str,
    terminal_timeout: Option<&str>,
    format_ts: &dyn Fn(i64) -> String,
) -> Result<String, StoreError> {
    let task = store
        .get_task(task_id)?
        .ok_or_else(|| StoreError::TaskNotFound(task_id.to_string()))?;
    let runs = store.runs(&task.id)?;
    let comments = store.comments(&task.id)?;
    let parents = parent_handoffs(store, &task.id)?;
    let recent = recent_work(store, &task)?;
    let attachments = store.attachments(&task.id)?;
    Ok(build_worker_context(&WorkerContextInput {
        task: &task,
        now,
        terminal_timeout_env: terminal_timeout,
        attachments: &attachments,
        runs: &runs,
        parents: &parents,
        recent_work: &recent,
        comments: &comments,
        format_ts,
    }))
}

/// [`render_worker_context`] with this process's `TERMINAL_TIMEOUT`.
pub fn render_worker_context_env(
    store: &dyn Store,
    now: i64,
    task_id: &str,
    format_ts: &dyn Fn(i64) -> String,
) -> Result<String, StoreError> {
    let terminal_timeout = std::env::var(ENV_TERMINAL_TIMEOUT).ok();
    render_worker_context(store, now, task_id, terminal_timeout.as_deref(), format_ts)
}

/// Timestamp formatter of a [`StoreContextSource`].
pub type FormatTs = Arc<dyn Fn(i64) -> String + Send + Sync>;

/// The dispatcher's [`ContextSource`] backed by the board's store: the
/// full context, or title and body if the board cannot be read (a worker
/// with a short prompt beats a task that cannot start).
pub struct StoreContextSource {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    format_ts: FormatTs,
}

impl StoreContextSource {
    /// Timestamps rendered with [`format_local_minute`].
    pub fn new(store: Arc<dyn Store>, clock: Arc<dyn Clock>) -> Self {
        StoreContextSource {
            store,
            clock,
            format_ts: Arc::new(format_local_minute),
        }
    }

    /// Use another timestamp formatter.
    pub fn with_format_ts(mut self, format_ts: FormatTs) -> Self {
        self.format_ts = format_ts;
        self
    }
}

impl ContextSource for StoreContextSource {
    fn worker_context(&self, task: &Task) -> String {
        let format_ts = |ts: i64| (self.format_ts)(ts);
        match render_worker_context_env(self.store.as_ref(), self.clock.now(), &task.id, &format_ts)
        {
            Ok(text) => text,
            Err(e) => {
                tracing::warn!(task = %task.id, error = %e, "worker context: falling back to title and body");
                TitleBodyContext.worker_context(task)
            }
        }
    }
}
