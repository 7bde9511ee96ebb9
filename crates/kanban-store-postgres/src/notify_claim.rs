//! [`NotifyStore`] for PostgreSQL: claim / rewind of notify cursors, each
//! one write transaction with a compare-and-swap on
//! `kanban_notify_subs.last_event_id`, the way the reference's
//! `claim_unseen_events_for_sub` / `rewind_notify_cursor` do, so our
//! notifier and a Hermes gateway never send one event twice.
//!
//! Failure counts live in `kanban_rs_notify_failures` (ours). A count row
//! remembers the subscription's `created_at`, so a subscription removed by
//! someone else and re-created later starts from zero.

use kanban_core::{Event, NotifySub};
use kanban_store::notify_ops::*;
use kanban_store::{NotifyKey, Result};
use postgres::Row;

use crate::PgStore;
use crate::db::{Db, DbResult, Tx};
use crate::row::{all, event_from_row, i64_or, opt_str, str_or_empty};
use crate::schema::EVENT_COLUMNS;

const SUB_COLUMNS: &str = "s.task_id, s.platform, s.chat_id, s.thread_id, s.user_id, \
     s.notifier_profile, s.created_at, s.last_event_id";

/// `WHERE` clause matching one subscription by its primary key ($1..$4).
const SUB_KEY: &str = "task_id = $1 AND platform = $2 AND chat_id = $3 AND thread_id = $4";

fn thread(key: &NotifyKey) -> &str {
    key.thread_id.as_deref().unwrap_or("")
}

fn sub_from_row(r: &Row) -> DbResult<NotifySub> {
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

fn pending_subs(db: &Db<'_>, platforms: &[&str], kinds: &[&str]) -> DbResult<Vec<NotifySub>> {
    if platforms.is_empty() || kinds.is_empty() {
        return Ok(Vec::new());
    }
    // The reference matches platforms case-insensitively. Ties in
    // `created_at` by key (SQLite's are in insertion order).
    let sql = format!(
        "SELECT {SUB_COLUMNS} FROM kanban_notify_subs s WHERE lower(s.platform) = ANY($1) \
         AND EXISTS (SELECT 1 FROM task_events e WHERE e.task_id = s.task_id \
         AND e.id > s.last_event_id AND e.kind = ANY($2)) \
         ORDER BY s.created_at, s.task_id, s.platform, s.chat_id, s.thread_id"
    );
    let lowered: Vec<String> = platforms.iter().map(|p| p.to_lowercase()).collect();
    all(db.query(&sql, &[&lowered, &kinds])?, sub_from_row)
}

/// `(cursor, created_at)` of a subscription.
fn cursor_of(db: &Db<'_>, key: &NotifyKey) -> DbResult<Option<(i64, i64)>> {
    let sql = format!(
        "SELECT COALESCE(last_event_id, 0), created_at FROM kanban_notify_subs WHERE {SUB_KEY}"
    );
    db.query_opt(
        &sql,
        &[&key.task_id, &key.platform, &key.chat_id, &thread(key)],
    )?
    .map(|r| Ok((r.try_get(0)?, i64_or(&r, 1, 0)?)))
    .transpose()
}

/// Unseen events among `kinds` after `cursor`, oldest first.
fn unseen(
    db: &Db<'_>,
    task_id: &str,
    cursor: i64,
    kinds: &[&str],
    limit: usize,
) -> DbResult<Vec<Event>> {
    if kinds.is_empty() {
        return Ok(Vec::new());
    }
    let sql = format!(
        "SELECT {EVENT_COLUMNS} FROM task_events WHERE task_id = $1 AND id > $2 \
         AND kind = ANY($3) ORDER BY id ASC LIMIT {limit}"
    );
    all(
        db.query(&sql, &[&task_id, &cursor, &kinds])?,
        event_from_row,
    )
}

/// Move the cursor from `from` to `to`; false when it had moved already.
fn move_cursor(tx: &Tx<'_>, key: &NotifyKey, to: i64, from: i64) -> DbResult<bool> {
    let sql = format!(
        "UPDATE kanban_notify_subs SET last_event_id = $5 WHERE {SUB_KEY} AND last_event_id = $6"
    );
    Ok(tx.execute(
        &sql,
        &[
            &key.task_id,
            &key.platform,
            &key.chat_id,
            &thread(key),
            &to,
            &from,
        ],
    )? == 1)
}

fn claim(tx: &Tx<'_>, key: &NotifyKey, kinds: &[&str]) -> DbResult<ClaimedEvents> {
    let Some((old, _)) = cursor_of(tx, key)? else {
        return Ok(ClaimedEvents::default());
    };
    let events = unseen(tx, &key.task_id, old, kinds, NOTIFY_CLAIM_BATCH)?;
    let Some(last) = events.last().map(|e| e.id) else {
        return Ok(ClaimedEvents {
            old_cursor: old,
            new_cursor: old,
            events,
        });
    };
    if !move_cursor(tx, key, last, old)? {
        // Cannot happen under the board's write lock; never send what we
        // did not claim.
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

fn failures_of(db: &Db<'_>, key: &NotifyKey, sub_created_at: i64) -> DbResult<i64> {
    let sql =
        format!("SELECT failures, sub_created_at FROM kanban_rs_notify_failures WHERE {SUB_KEY}");
    let row = db.query_opt(
        &sql,
        &[&key.task_id, &key.platform, &key.chat_id, &thread(key)],
    )?;
    let Some(row) = row else { return Ok(0) };
    let (failures, created): (i64, i64) = (row.try_get(0)?, row.try_get(1)?);
    // A row of an earlier subscription with the same key does not count.
    Ok(if created == sub_created_at {
        failures
    } else {
        0
    })
}

fn forget_failures(db: &Db<'_>, key: &NotifyKey) -> DbResult<()> {
    let sql = format!("DELETE FROM kanban_rs_notify_failures WHERE {SUB_KEY}");
    db.execute(
        &sql,
        &[&key.task_id, &key.platform, &key.chat_id, &thread(key)],
    )?;
    Ok(())
}

fn delete_sub(db: &Db<'_>, key: &NotifyKey) -> DbResult<()> {
    let sql = format!("DELETE FROM kanban_notify_subs WHERE {SUB_KEY}");
    db.execute(
        &sql,
        &[&key.task_id, &key.platform, &key.chat_id, &thread(key)],
    )?;
    forget_failures(db, key)
}

fn failed(tx: &Tx<'_>, f: &DeliveryFailure) -> DbResult<FailureOutcome> {
    let key = &f.key;
    let Some((_, created_at)) = cursor_of(tx, key)? else {
        forget_failures(tx, key)?;
        return Ok(FailureOutcome::Gone);
    };
    let failures = if f.rewind_to > f.old_cursor {
        1
    } else {
        failures_of(tx, key, created_at)? + 1
    };
    if failures >= MAX_SEND_FAILURES {
        delete_sub(tx, key)?;
        return Ok(FailureOutcome::Dropped { failures });
    }
    let rewound = move_cursor(tx, key, f.rewind_to, f.claimed_cursor)?;
    tx.execute(
        "INSERT INTO kanban_rs_notify_failures \
         (task_id, platform, chat_id, thread_id, sub_created_at, failures, last_error, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
         ON CONFLICT (task_id, platform, chat_id, thread_id) DO UPDATE SET \
         sub_created_at = EXCLUDED.sub_created_at, failures = EXCLUDED.failures, \
         last_error = EXCLUDED.last_error, updated_at = EXCLUDED.updated_at",
        &[
            &key.task_id,
            &key.platform,
            &key.chat_id,
            &thread(key),
            &created_at,
            &failures,
            &f.error,
            &tx.now,
        ],
    )?;
    Ok(FailureOutcome::Retry { failures, rewound })
}

fn delivered(tx: &Tx<'_>, key: &NotifyKey, kinds: &[&str]) -> DbResult<DeliveredOutcome> {
    forget_failures(tx, key)?;
    let Some((cursor, _)) = cursor_of(tx, key)? else {
        return Ok(DeliveredOutcome::Kept);
    };
    let status: Option<String> = tx
        .query_opt("SELECT status FROM tasks WHERE id = $1", &[&key.task_id])?
        .map(|r| opt_str(&r, 0))
        .transpose()?
        .flatten();
    let finished = status.is_none_or(|s| NOTIFY_FINAL_STATUSES.contains(&s.as_str()));
    if !finished || !unseen(tx, &key.task_id, cursor, kinds, 1)?.is_empty() {
        return Ok(DeliveredOutcome::Kept);
    }
    delete_sub(tx, key)?;
    Ok(DeliveredOutcome::Unsubscribed)
}

impl NotifyStore for PgStore {
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
