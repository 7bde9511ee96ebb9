//! Board-wide reads (stats, assignee counts), notify subscriptions and
//! event garbage collection.

use kanban_core::NotifySub;
use rusqlite::{Connection, params};

use super::row::{i64_or, opt_str, str_or_empty};
use super::txn::{DbResult, Tx};
use crate::params::*;

/// Counts per status and per assignee (archived excluded) and the age of
/// the oldest ready task, as the reference `board_stats`.
pub(crate) fn stats(conn: &Connection, now: i64) -> DbResult<BoardStats> {
    let mut out = BoardStats {
        now,
        ..Default::default()
    };
    let mut st = conn.prepare_cached(
        "SELECT status, COUNT(*) FROM tasks WHERE status != 'archived' GROUP BY status",
    )?;
    for row in st.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))? {
        let (status, n) = row?;
        out.by_status.insert(status, n);
    }
    for (assignee, status, n) in assignee_counts(conn)? {
        out.by_assignee
            .entry(assignee)
            .or_default()
            .insert(status, n);
    }
    let oldest: Option<i64> = conn
        .prepare_cached("SELECT MIN(created_at) FROM tasks WHERE status = 'ready'")?
        .query_row([], |r| r.get(0))?;
    out.oldest_ready_age_seconds = oldest.map(|ts| now - ts);
    Ok(out)
}

pub(crate) fn assignee_counts(conn: &Connection) -> DbResult<Vec<(String, String, i64)>> {
    let mut st = conn.prepare_cached(
        "SELECT assignee, status, COUNT(*) FROM tasks \
         WHERE status != 'archived' AND assignee IS NOT NULL \
         GROUP BY assignee, status ORDER BY assignee, status",
    )?;
    let rows = st.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// `INSERT OR IGNORE`; a repeated subscription back-fills a missing
/// `notifier_profile` (reference `add_notify_sub`).
pub(crate) fn notify_subscribe(tx: &Tx<'_>, sub: &NewNotifySub) -> DbResult<bool> {
    let thread = sub.thread_id.as_deref().unwrap_or("");
    let added = tx.conn.execute(
        "INSERT OR IGNORE INTO kanban_notify_subs \
         (task_id, platform, chat_id, thread_id, user_id, notifier_profile, created_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![
            sub.task_id,
            sub.platform,
            sub.chat_id,
            thread,
            sub.user_id,
            sub.notifier_profile,
            tx.now
        ],
    )? == 1;
    if let Some(profile) = sub.notifier_profile.as_deref().filter(|p| !p.is_empty()) {
        tx.conn.execute(
            "UPDATE kanban_notify_subs SET notifier_profile = ?1 \
             WHERE task_id = ?2 AND platform = ?3 AND chat_id = ?4 AND thread_id = ?5 \
             AND (notifier_profile IS NULL OR notifier_profile = '')",
            params![profile, sub.task_id, sub.platform, sub.chat_id, thread],
        )?;
    }
    Ok(added)
}

pub(crate) fn notify_list(conn: &Connection, task_id: Option<&str>) -> DbResult<Vec<NotifySub>> {
    const COLS: &str = "task_id, platform, chat_id, thread_id, user_id, notifier_profile, \
                        created_at, last_event_id";
    let map = |r: &rusqlite::Row<'_>| {
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
    };
    let rows = match task_id {
        Some(t) => {
            let sql = format!(
                "SELECT {COLS} FROM kanban_notify_subs WHERE task_id = ?1 ORDER BY created_at, rowid"
            );
            let mut st = conn.prepare_cached(&sql)?;
            st.query_map([t], map)?.collect::<rusqlite::Result<_>>()?
        }
        None => {
            let sql = format!("SELECT {COLS} FROM kanban_notify_subs ORDER BY created_at, rowid");
            let mut st = conn.prepare_cached(&sql)?;
            st.query_map([], map)?.collect::<rusqlite::Result<_>>()?
        }
    };
    Ok(rows)
}

pub(crate) fn notify_unsubscribe(tx: &Tx<'_>, key: &NotifyKey) -> DbResult<bool> {
    let n = tx.conn.execute(
        "DELETE FROM kanban_notify_subs WHERE task_id = ?1 AND platform = ?2 AND chat_id = ?3 \
         AND thread_id = ?4",
        params![
            key.task_id,
            key.platform,
            key.chat_id,
            key.thread_id.as_deref().unwrap_or("")
        ],
    )?;
    Ok(n > 0)
}

/// Delete events older than `older_than` of done/archived tasks only; live
/// tasks keep their whole history.
pub(crate) fn gc_events(tx: &Tx<'_>, older_than: i64) -> DbResult<usize> {
    Ok(tx.conn.execute(
        "DELETE FROM task_events WHERE created_at < ?1 AND task_id IN \
         (SELECT id FROM tasks WHERE status IN ('done', 'archived'))",
        [older_than],
    )?)
}
