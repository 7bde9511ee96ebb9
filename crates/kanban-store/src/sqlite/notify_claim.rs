//! [`NotifyStore`] for SQLite: claim / rewind of notify cursors, each one
//! `BEGIN IMMEDIATE` transaction with a compare-and-swap on
//! `kanban_notify_subs.last_event_id`, the way the reference's
//! `claim_unseen_events_for_sub` / `rewind_notify_cursor` do, so our
//! notifier and a Hermes gateway never send one event twice.
//!
//! Failure counts live in `kanban_rs_notify_failures` (ours; the Python
//! code ignores it), created on the first failure. A count row remembers
//! the subscription's `created_at`, so a subscription removed by someone
//! else and re-created later starts from zero.

use kanban_core::{Event, NotifySub};
use rusqlite::types::Value as SqlValue;
use rusqlite::{Connection, OptionalExtension, params, params_from_iter};

use super::SqliteStore;
use super::row::{event_from_row, i64_or, opt_str, str_or_empty};
use super::schema::EVENT_COLUMNS;
use super::txn::{DbResult, Tx};
use crate::notify_ops::*;
use crate::{NotifyKey, Result};

const FAILURES_TABLE: &str = "kanban_rs_notify_failures";

/// Our per-subscription consecutive-failure counter.
const FAILURES_SQL: &str = "CREATE TABLE IF NOT EXISTS kanban_rs_notify_failures (
    task_id        TEXT NOT NULL,
    platform       TEXT NOT NULL,
    chat_id        TEXT NOT NULL,
    thread_id      TEXT NOT NULL DEFAULT '',
    sub_created_at INTEGER NOT NULL,
    failures       INTEGER NOT NULL,
    last_error     TEXT,
    updated_at     INTEGER NOT NULL,
    PRIMARY KEY (task_id, platform, chat_id, thread_id)
)";

const SUB_COLUMNS: &str = "s.task_id, s.platform, s.chat_id, s.thread_id, s.user_id, \
     s.notifier_profile, s.created_at, s.last_event_id";

/// `WHERE` clause matching one subscription by its primary key (?1..?4).
const SUB_KEY: &str = "task_id = ?1 AND platform = ?2 AND chat_id = ?3 AND thread_id = ?4";

fn thread(key: &NotifyKey) -> &str {
    key.thread_id.as_deref().unwrap_or("")
}

fn key_params(key: &NotifyKey) -> [SqlValue; 4] {
    [
        SqlValue::Text(key.task_id.clone()),
        SqlValue::Text(key.platform.clone()),
        SqlValue::Text(key.chat_id.clone()),
        SqlValue::Text(thread(key).to_string()),
    ]
}

/// `?{first}, ?{first+1}, ...` for `n` values.
fn marks(first: usize, n: usize) -> String {
    (first..first + n)
        .map(|i| format!("?{i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn texts<'a>(values: &'a [&'a str]) -> impl Iterator<Item = SqlValue> + 'a {
    values.iter().map(|v| SqlValue::Text((*v).to_string()))
}

fn table_exists(conn: &Connection, name: &str) -> DbResult<bool> {
    Ok(conn
        .prepare_cached("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?1")?
        .query_row([name], |_| Ok(()))
        .optional()?
        .is_some())
}

fn sub_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<NotifySub> {
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

fn pending_subs(conn: &Connection, platforms: &[&str], kinds: &[&str]) -> DbResult<Vec<NotifySub>> {
    if platforms.is_empty() || kinds.is_empty() {
        return Ok(Vec::new());
    }
    // The reference matches platforms case-insensitively.
    let sql = format!(
        "SELECT {SUB_COLUMNS} FROM kanban_notify_subs s WHERE lower(s.platform) IN ({}) \
         AND EXISTS (SELECT 1 FROM task_events e WHERE e.task_id = s.task_id \
         AND e.id > s.last_event_id AND e.kind IN ({})) ORDER BY s.created_at, s.rowid",
        marks(1, platforms.len()),
        marks(1 + platforms.len(), kinds.len()),
    );
    let lowered: Vec<String> = platforms.iter().map(|p| p.to_lowercase()).collect();
    let args: Vec<SqlValue> = lowered
        .into_iter()
        .map(SqlValue::Text)
        .chain(texts(kinds))
        .collect();
    let mut st = conn.prepare_cached(&sql)?;
    let rows = st.query_map(params_from_iter(args), sub_from_row)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

fn cursor_of(conn: &Connection, key: &NotifyKey) -> DbResult<Option<(i64, i64)>> {
    let sql = format!(
        "SELECT COALESCE(last_event_id, 0), created_at FROM kanban_notify_subs WHERE {SUB_KEY}"
    );
    Ok(conn
        .prepare_cached(&sql)?
        .query_row(params_from_iter(key_params(key)), |r| {
            Ok((r.get(0)?, i64_or(r, 1, 0)?))
        })
        .optional()?)
}

/// Unseen events among `kinds` after `cursor`, oldest first.
fn unseen(
    conn: &Connection,
    task_id: &str,
    cursor: i64,
    kinds: &[&str],
    limit: usize,
) -> DbResult<Vec<Event>> {
    if kinds.is_empty() {
        return Ok(Vec::new());
    }
    let sql = format!(
        "SELECT {EVENT_COLUMNS} FROM task_events WHERE task_id = ?1 AND id > ?2 \
         AND kind IN ({}) ORDER BY id ASC LIMIT {limit}",
        marks(3, kinds.len())
    );
    let args: Vec<SqlValue> = [SqlValue::Text(task_id.into()), SqlValue::Integer(cursor)]
        .into_iter()
        .chain(texts(kinds))
        .collect();
    let mut st = conn.prepare_cached(&sql)?;
    let rows = st.query_map(params_from_iter(args), event_from_row)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

fn claim(tx: &Tx<'_>, key: &NotifyKey, kinds: &[&str]) -> DbResult<ClaimedEvents> {
    let Some((old, _)) = cursor_of(tx.conn, key)? else {
        return Ok(ClaimedEvents::default());
    };
    let events = unseen(tx.conn, &key.task_id, old, kinds, NOTIFY_CLAIM_BATCH)?;
    let Some(last) = events.last().map(|e| e.id) else {
        return Ok(ClaimedEvents {
            old_cursor: old,
            new_cursor: old,
            events,
        });
    };
    let sql = format!(
        "UPDATE kanban_notify_subs SET last_event_id = ?5 WHERE {SUB_KEY} AND last_event_id = ?6"
    );
    let n = tx.conn.execute(
        &sql,
        params![
            key.task_id,
            key.platform,
            key.chat_id,
            thread(key),
            last,
            old
        ],
    )?;
    if n != 1 {
        // Cannot happen under BEGIN IMMEDIATE; never send what we did not claim.
        return Ok(ClaimedEvents {
            old_cursor: old,
            new_cursor: old,
            events: Vec::new(),
        });
    }
    Ok(ClaimedEvents {
        old_cursor: old,
        new_cursor: last,
        events,
    })
}

fn failures_of(conn: &Connection, key: &NotifyKey, sub_created_at: i64) -> DbResult<i64> {
    if !table_exists(conn, FAILURES_TABLE)? {
        return Ok(0);
    }
    let sql = format!("SELECT failures, sub_created_at FROM {FAILURES_TABLE} WHERE {SUB_KEY}");
    let row: Option<(i64, i64)> = conn
        .prepare_cached(&sql)?
        .query_row(params_from_iter(key_params(key)), |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .optional()?;
    // A row of an earlier subscription with the same key does not count.
    Ok(row
        .filter(|(_, created)| *created == sub_created_at)
        .map_or(0, |(n, _)| n))
}

fn forget_failures(conn: &Connection, key: &NotifyKey) -> DbResult<()> {
    if table_exists(conn, FAILURES_TABLE)? {
        let sql = format!("DELETE FROM {FAILURES_TABLE} WHERE {SUB_KEY}");
        conn.execute(&sql, params_from_iter(key_params(key)))?;
    }
    Ok(())
}

fn delete_sub(conn: &Connection, key: &NotifyKey) -> DbResult<()> {
    let sql = format!("DELETE FROM kanban_notify_subs WHERE {SUB_KEY}");
    conn.execute(&sql, params_from_iter(key_params(key)))?;
    forget_failures(conn, key)
}

fn failed(tx: &Tx<'_>, f: &DeliveryFailure) -> DbResult<FailureOutcome> {
    let key = &f.key;
    let Some((_, created_at)) = cursor_of(tx.conn, key)? else {
        forget_failures(tx.conn, key)?;
        return Ok(FailureOutcome::Gone);
    };
    let failures = if f.rewind_to > f.old_cursor {
        1
    } else {
        failures_of(tx.conn, key, created_at)? + 1
    };
    if failures >= MAX_SEND_FAILURES {
        delete_sub(tx.conn, key)?;
        return Ok(FailureOutcome::Dropped { failures });
    }
    let sql = format!(
        "UPDATE kanban_notify_subs SET last_event_id = ?5 WHERE {SUB_KEY} AND last_event_id = ?6"
    );
    let rewound = tx.conn.execute(
        &sql,
        params![
            key.task_id,
            key.platform,
            key.chat_id,
            thread(key),
            f.rewind_to,
            f.claimed_cursor
        ],
    )? == 1;
    tx.conn.execute_batch(FAILURES_SQL)?;
    tx.conn.execute(
        "INSERT INTO kanban_rs_notify_failures \
         (task_id, platform, chat_id, thread_id, sub_created_at, failures, last_error, updated_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) \
         ON CONFLICT (task_id, platform, chat_id, thread_id) DO UPDATE SET \
         sub_created_at = excluded.sub_created_at, failures = excluded.failures, \
         last_error = excluded.last_error, updated_at = excluded.updated_at",
        params![
            key.task_id,
            key.platform,
            key.chat_id,
            thread(key),
            created_at,
            failures,
            f.error,
            tx.now
        ],
    )?;
    Ok(FailureOutcome::Retry { failures, rewound })
}

fn delivered(tx: &Tx<'_>, key: &NotifyKey, kinds: &[&str]) -> DbResult<DeliveredOutcome> {
    forget_failures(tx.conn, key)?;
    let Some((cursor, _)) = cursor_of(tx.conn, key)? else {
        return Ok(DeliveredOutcome::Kept);
    };
    let status: Option<String> = tx
        .conn
        .prepare_cached("SELECT status FROM tasks WHERE id = ?1")?
        .query_row([&key.task_id], |r| r.get(0))
        .optional()?;
    let finished = status.is_none_or(|s| NOTIFY_FINAL_STATUSES.contains(&s.as_str()));
    if !finished || !unseen(tx.conn, &key.task_id, cursor, kinds, 1)?.is_empty() {
        return Ok(DeliveredOutcome::Kept);
    }
    delete_sub(tx.conn, key)?;
    Ok(DeliveredOutcome::Unsubscribed)
}

impl NotifyStore for SqliteStore {
    fn pending_notify_subs(&self, platforms: &[&str], kinds: &[&str]) -> Result<Vec<NotifySub>> {
        self.read(|c| pending_subs(c, platforms, kinds))
    }

    fn claim_notify_events(&self, key: &NotifyKey, kinds: &[&str]) -> Result<ClaimedEvents> {
        self.write(|tx| claim(tx, key, kinds))
    }

    fn notify_delivery_failed(&self, failure: &DeliveryFailure) -> Result<FailureOutcome> {
        self.write(|tx| failed(tx, failure))
    }

    fn notify_delivered(&self, key: &NotifyKey, kinds: &[&str]) -> Result<DeliveredOutcome> {
        self.write(|tx| delivered(tx, key, kinds))
    }

    fn notify_failures(&self, key: &NotifyKey) -> Result<i64> {
        self.read(|c| match cursor_of(c, key)? {
            Some((_, created_at)) => failures_of(c, key, created_at),
            None => Ok(0),
        })
    }
}
