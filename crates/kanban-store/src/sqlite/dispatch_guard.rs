//! The facts the respawn guard decides on, read for one task: its latest
//! ended run, a recent completion and whether it was requeued since, and
//! its recent comments. A fresh task costs one probe.

use kanban_core::RunOutcome;
use rusqlite::{Connection, OptionalExtension, params};

use super::super::txn::DbResult;
use super::recovery;
use crate::dispatch_ops::GuardFacts;

pub(super) fn guard_facts(
    conn: &Connection,
    task_id: &str,
    success_since: i64,
    comments_since: i64,
) -> DbResult<GuardFacts> {
    // One probe first: a task that never ended a run and has no recent
    // comment (every fresh task) needs no other look-up.
    let probe: Option<(Option<String>, bool, bool)> = conn
        .prepare_cached(
            "SELECT last_failure_error, \
             EXISTS (SELECT 1 FROM task_runs WHERE task_id = ?1 AND ended_at IS NOT NULL), \
             EXISTS (SELECT 1 FROM task_comments WHERE task_id = ?1 AND created_at >= ?2) \
             FROM tasks WHERE id = ?1",
        )?
        .query_row(params![task_id, comments_since], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })
        .optional()?;
    let Some((last_failure_error, ended_runs, comments)) = probe else {
        return Ok(GuardFacts::default());
    };
    if !ended_runs && !comments {
        return Ok(GuardFacts {
            last_failure_error,
            ..GuardFacts::default()
        });
    }
    let latest: Option<(String, i64, Option<String>)> = conn
        .prepare_cached(
            "SELECT COALESCE(outcome, ''), ended_at, metadata FROM task_runs WHERE task_id = ?1 \
             AND ended_at IS NOT NULL ORDER BY ended_at DESC, id DESC LIMIT 1",
        )?
        .query_row([task_id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .optional()?;
    let spawn_retry_at = latest
        .as_ref()
        .filter(|(outcome, _, _)| outcome == RunOutcome::SpawnFailed.as_str())
        .and_then(|(_, _, meta)| recovery::spawn_retry_at(meta.as_deref()));
    let latest_run = latest.map(|(outcome, ended, _)| (outcome, ended));
    let recent_completion: Option<i64> = conn
        .prepare_cached(
            "SELECT ended_at FROM task_runs WHERE task_id = ?1 AND outcome = 'completed' \
             AND ended_at >= ?2 ORDER BY ended_at DESC LIMIT 1",
        )?
        .query_row(params![task_id, success_since], |r| r.get(0))
        .optional()?;
    let requeued_after_completion = match recent_completion {
        Some(at) => conn
            .prepare_cached(
                "SELECT 1 FROM task_events WHERE task_id = ?1 AND created_at >= ?2 \
                 AND kind IN ('status', 'promoted', 'unblocked', 'reclaimed') LIMIT 1",
            )?
            .query_row(params![task_id, at], |_| Ok(()))
            .optional()?
            .is_some(),
        None => false,
    };
    let recent_comments = if comments {
        conn.prepare_cached(
            "SELECT body FROM task_comments WHERE task_id = ?1 AND created_at >= ?2",
        )?
        .query_map(params![task_id, comments_since], |r| r.get::<_, String>(0))?
        .collect::<rusqlite::Result<_>>()?
    } else {
        Vec::new()
    };
    Ok(GuardFacts {
        last_failure_error,
        latest_run,
        recent_completion,
        requeued_after_completion,
        recent_comments,
        spawn_retry_at,
    })
}
