//! Board-wide reads (stats, assignee counts), notify subscriptions and
//! event garbage collection. Mirrors the SQLite backend's `board.rs`.

use kanban_core::NotifySub;
use kanban_store::params::*;
use postgres::Row;

use crate::db::{Db, DbResult, Tx};
use crate::row::{all, i64_or, opt_str, str_or_empty};

/// Counts per status and per assignee (archived excluded) and the age of
/// the oldest ready task, as the reference `board_stats`.
pub(crate) fn stats(db: &Db<'_>, now: i64) -> DbResult<BoardStats> {
    let mut out = BoardStats {
        now,
        ..Default::default()
    };
    for r in db.query(
        "SELECT status, COUNT(*) FROM tasks WHERE status != 'archived' GROUP BY status",
        &[],
    )? {
        out.by_status.insert(r.try_get(0)?, r.try_get(1)?);
    }
    for (assignee, status, n) in assignee_counts(db)? {
        out.by_assignee
            .entry(assignee)
            .or_default()
            .insert(status, n);
    }
    let oldest: Option<i64> = db
        .query_one(
            "SELECT MIN(created_at) FROM tasks WHERE status = 'ready'",
            &[],
        )?
        .try_get(0)?;
    out.oldest_ready_age_seconds = oldest.map(|ts| now - ts);
    Ok(out)
}

/// `(assignee, status, count)` in SQLite's byte-wise order.
pub(crate) fn assignee_counts(db: &Db<'_>) -> DbResult<Vec<(String, String, i64)>> {
    let rows = db.query(
        "SELECT assignee, status, COUNT(*) FROM tasks \
         WHERE status != 'archived' AND assignee IS NOT NULL \
         GROUP BY assignee, status ORDER BY assignee COLLATE \"C\", status COLLATE \"C\"",
        &[],
    )?;
    all(rows, |r| Ok((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?)))
}

/// Insert unless present; a repeated subscription back-fills a missing
/// `notifier_profile` (reference `add_notify_sub`).
pub(crate) fn notify_subscribe(tx: &Tx<'_>, sub: &NewNotifySub) -> DbResult<bool> {
    let thread = sub.thread_id.as_deref().unwrap_or("");
    let added = tx.execute(
        "INSERT INTO kanban_notify_subs \
         (task_id, platform, chat_id, thread_id, user_id, notifier_profile, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING",
        &[
            &sub.task_id,
            &sub.platform,
            &sub.chat_id,
            &thread,
            &sub.user_id,
            &sub.notifier_profile,
            &tx.now,
        ],
    )? == 1;
    if let Some(profile) = sub.notifier_profile.as_deref().filter(|p| !p.is_empty()) {
        tx.execute(
            "UPDATE kanban_notify_subs SET notifier_profile = $1 \
             WHERE task_id = $2 AND platform = $3 AND chat_id = $4 AND thread_id = $5 \
             AND (notifier_profile IS NULL OR notifier_profile = '')",
            &[&profile, &sub.task_id, &sub.platform, &sub.chat_id, &thread],
        )?;
    }
    Ok(added)
}

/// Subscriptions, oldest first. SQLite breaks `created_at` ties by rowid
/// (insertion order); PostgreSQL has none, so ties go by the primary key.
const NOTIFY_ORDER: &str = "created_at, task_id COLLATE \"C\", platform COLLATE \"C\", \
                            chat_id COLLATE \"C\", thread_id COLLATE \"C\"";

fn notify_sub_from_row(r: &Row) -> DbResult<NotifySub> {
    Ok(NotifySub {
        task_id: str_or_empty(r, 0)?,
        platform: str_or_empty(r, 1)?,
        chat_id: str_or_empty(r, 2)?,
        thread_id: str_or_empty(r, 3)?,
        user_id: opt_str(r, 4)?,
        notifier_profile: opt_str(r, 5)?,
        created_at: i64_or(r, 6, 0)?,
        last_event_id: i64_or(r, 7, 0)?,
    })
}

pub(crate) fn notify_list(db: &Db<'_>, task_id: Option<&str>) -> DbResult<Vec<NotifySub>> {
    const COLS: &str = "task_id, platform, chat_id, thread_id, user_id, notifier_profile, \
                        created_at, last_event_id";
    let rows = match task_id {
        Some(t) => db.query(
            &format!(
                "SELECT {COLS} FROM kanban_notify_subs WHERE task_id = $1 ORDER BY {NOTIFY_ORDER}"
            ),
            &[&t],
        )?,
        None => db.query(
            &format!("SELECT {COLS} FROM kanban_notify_subs ORDER BY {NOTIFY_ORDER}"),
            &[],
        )?,
    };
    all(rows, notify_sub_from_row)
}

pub(crate) fn notify_unsubscribe(tx: &Tx<'_>, key: &NotifyKey) -> DbResult<bool> {
    let n = tx.execute(
        "DELETE FROM kanban_notify_subs WHERE task_id = $1 AND platform = $2 AND chat_id = $3 \
         AND thread_id = $4",
        &[
            &key.task_id,
            &key.platform,
            &key.chat_id,
            &key.thread_id.as_deref().unwrap_or(""),
        ],
    )?;
    Ok(n > 0)
}

/// Delete events older than `older_than` of done/archived tasks only; live
/// tasks keep their whole history.
pub(crate) fn gc_events(tx: &Tx<'_>, older_than: i64) -> DbResult<usize> {
    let n = tx.execute(
        "DELETE FROM task_events WHERE created_at < $1 AND task_id IN \
         (SELECT id FROM tasks WHERE status IN ('done', 'archived'))",
        &[&older_than],
    )?;
    Ok(usize::try_from(n).unwrap_or(usize::MAX))
}
