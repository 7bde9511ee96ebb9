//! The respawn guard's reads on PostgreSQL: the facts of one task (a
//! probe first, which alone answers for a fresh task), and the facts of a
//! whole batch of candidates in ONE statement, so a pass pays one round
//! trip for its candidates instead of one per candidate.

use kanban_core::RunOutcome;
use kanban_store::dispatch_ops::GuardFacts;

use crate::db::{Db, DbResult};
use crate::dispatch_recovery as recovery;
use crate::row::{all, opt_i64, opt_str};

/// Every fact of [`guard_facts`] for the tasks of `$1` (each id's position
/// in `n`), windows `$2` (success) and `$3` (comments). One statement is
/// one snapshot. Each lateral look-up is the per-task query of
/// [`guard_facts`], index-backed (`idx_runs_task`, `idx_events_task`,
/// `idx_comments_task`); ids that are no task return no row.
const GUARD_FACTS_OF_SQL: &str = "SELECT u.n, t.last_failure_error, \
     lr.outcome, lr.ended_at, lr.metadata, rc.ended_at, \
     rc.ended_at IS NOT NULL AND EXISTS (SELECT 1 FROM task_events e WHERE e.task_id = t.id \
       AND e.created_at >= rc.ended_at AND e.kind IN ('status', 'promoted', 'unblocked', 'reclaimed')), \
     cm.bodies \
     FROM unnest($1::text[]) WITH ORDINALITY AS u(id, n) JOIN tasks t ON t.id = u.id \
     LEFT JOIN LATERAL (SELECT COALESCE(r.outcome, '') AS outcome, r.ended_at, r.metadata \
       FROM task_runs r WHERE r.task_id = t.id AND r.ended_at IS NOT NULL \
       ORDER BY r.ended_at DESC, r.id DESC LIMIT 1) lr ON TRUE \
     LEFT JOIN LATERAL (SELECT r.ended_at FROM task_runs r WHERE r.task_id = t.id \
       AND r.outcome = 'completed' AND r.ended_at >= $2 ORDER BY r.ended_at DESC LIMIT 1) rc ON TRUE \
     LEFT JOIN LATERAL (SELECT array_agg(c.body ORDER BY c.created_at, c.id) AS bodies \
       FROM task_comments c WHERE c.task_id = t.id AND c.created_at >= $3) cm ON TRUE";

/// [`guard_facts`] of every id, in order, in one statement.
pub(crate) fn guard_facts_of(
    db: &Db<'_>,
    task_ids: &[String],
    success_since: i64,
    comments_since: i64,
) -> DbResult<Vec<GuardFacts>> {
    let mut out = vec![GuardFacts::default(); task_ids.len()];
    if task_ids.is_empty() {
        return Ok(out);
    }
    let rows = db.query(
        GUARD_FACTS_OF_SQL,
        &[&task_ids, &success_since, &comments_since],
    )?;
    for r in &rows {
        let n: i64 = r.try_get(0)?;
        let Some(slot) = usize::try_from(n - 1).ok().and_then(|i| out.get_mut(i)) else {
            continue;
        };
        let outcome = opt_str(r, 2)?;
        let ended = opt_i64(r, 3)?;
        let metadata = opt_str(r, 4)?;
        let spawn_retry_at = outcome
            .as_deref()
            .filter(|o| *o == RunOutcome::SpawnFailed.as_str())
            .and_then(|_| recovery::spawn_retry_at(metadata.as_deref()));
        *slot = GuardFacts {
            last_failure_error: opt_str(r, 1)?,
            latest_run: outcome.zip(ended),
            recent_completion: opt_i64(r, 5)?,
            requeued_after_completion: r.try_get(6)?,
            recent_comments: r.try_get::<_, Option<Vec<String>>>(7)?.unwrap_or_default(),
            spawn_retry_at,
        };
    }
    Ok(out)
}

/// What the first look-up of [`guard_facts`] tells.
pub(crate) enum GuardProbe {
    /// The whole answer (no such task, or one that never ended a run and
    /// has no recent comment: every fresh task).
    Done(GuardFacts),
    /// More look-ups needed; what the probe read.
    More {
        last_failure_error: Option<String>,
        comments: bool,
    },
}

pub(crate) fn guard_probe(db: &Db<'_>, task_id: &str, comments_since: i64) -> DbResult<GuardProbe> {
    let Some(probe) = db.query_opt(
        "SELECT last_failure_error, \
         EXISTS (SELECT 1 FROM task_runs WHERE task_id = $1 AND ended_at IS NOT NULL), \
         EXISTS (SELECT 1 FROM task_comments WHERE task_id = $1 AND created_at >= $2) \
         FROM tasks WHERE id = $1",
        &[&task_id, &comments_since],
    )?
    else {
        return Ok(GuardProbe::Done(GuardFacts::default()));
    };
    let last_failure_error = opt_str(&probe, 0)?;
    let ended_runs: bool = probe.try_get(1)?;
    let comments: bool = probe.try_get(2)?;
    Ok(if !ended_runs && !comments {
        GuardProbe::Done(GuardFacts {
            last_failure_error,
            ..GuardFacts::default()
        })
    } else {
        GuardProbe::More {
            last_failure_error,
            comments,
        }
    })
}

pub(crate) fn guard_facts(
    db: &Db<'_>,
    task_id: &str,
    success_since: i64,
    comments_since: i64,
) -> DbResult<GuardFacts> {
    // One probe first: a fresh task needs no other look-up.
    let (last_failure_error, comments) = match guard_probe(db, task_id, comments_since)? {
        GuardProbe::Done(facts) => return Ok(facts),
        GuardProbe::More {
            last_failure_error,
            comments,
        } => (last_failure_error, comments),
    };
    let latest: Option<(String, i64, Option<String>)> = db
        .query_opt(
            "SELECT COALESCE(outcome, ''), ended_at, metadata FROM task_runs WHERE task_id = $1 \
             AND ended_at IS NOT NULL ORDER BY ended_at DESC, id DESC LIMIT 1",
            &[&task_id],
        )?
        .map(|r| DbResult::Ok((r.try_get(0)?, r.try_get(1)?, opt_str(&r, 2)?)))
        .transpose()?;
    let spawn_retry_at = latest
        .as_ref()
        .filter(|(outcome, _, _)| outcome == RunOutcome::SpawnFailed.as_str())
        .and_then(|(_, _, meta)| recovery::spawn_retry_at(meta.as_deref()));
    let latest_run = latest.map(|(outcome, ended, _)| (outcome, ended));
    let recent_completion: Option<i64> = db
        .query_opt(
            "SELECT ended_at FROM task_runs WHERE task_id = $1 AND outcome = 'completed' \
             AND ended_at >= $2 ORDER BY ended_at DESC LIMIT 1",
            &[&task_id, &success_since],
        )?
        .map(|r| r.try_get(0))
        .transpose()?;
    let requeued_after_completion = match recent_completion {
        Some(at) => db
            .query_opt(
                "SELECT 1 FROM task_events WHERE task_id = $1 AND created_at >= $2 \
                 AND kind IN ('status', 'promoted', 'unblocked', 'reclaimed') LIMIT 1",
                &[&task_id, &at],
            )?
            .is_some(),
        None => false,
    };
    let recent_comments = if comments {
        all(
            db.query(
                "SELECT body FROM task_comments WHERE task_id = $1 AND created_at >= $2 \
                 ORDER BY created_at, id",
                &[&task_id, &comments_since],
            )?,
            |r| Ok(r.try_get::<_, String>(0)?),
        )?
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
