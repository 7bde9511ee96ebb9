//! A task's ended runs as the streak rules read them (protocol
//! violations, excused deaths): shared by the dispatcher's release and its
//! recovery facts.

use kanban_core::transitions::breaker::EndedRun;

use crate::conn::DbResult;
use crate::db::Db;
use crate::row::{all, opt_str};

/// `(outcome, error, metadata)` of an ended run.
pub(crate) type EndedRunRow = (Option<String>, Option<String>, Option<String>);

/// The task's ended runs, newest first, as the streak rules read them.
pub(crate) fn ended_runs_newest_first(
    db: &Db<'_>,
    task_id: &str,
    limit: i64,
) -> DbResult<Vec<EndedRunRow>> {
    all(
        db.query(
            "SELECT outcome, error, metadata FROM task_runs WHERE task_id = $1 \
             AND ended_at IS NOT NULL ORDER BY id DESC LIMIT $2",
            &[&task_id, &limit],
        )?,
        |r| Ok((opt_str(r, 0)?, opt_str(r, 1)?, opt_str(r, 2)?)),
    )
}

/// [`EndedRun`] views of [`ended_runs_newest_first`] rows.
pub(crate) fn as_ended(rows: &[EndedRunRow]) -> impl Iterator<Item = EndedRun<'_>> {
    rows.iter().map(|(outcome, error, metadata)| EndedRun {
        outcome: outcome.as_deref(),
        error: error.as_deref(),
        metadata: metadata.as_deref(),
    })
}
