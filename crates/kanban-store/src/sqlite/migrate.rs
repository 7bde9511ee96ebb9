//! The idempotent migration pass (reference §1.5 step 4): the reference
//! schema, additive columns and indexes, the run back-fill, event renames,
//! rebuilds of drifted legacy tables, and our meta row. Safe to run any
//! number of times, by any number of processes (Python ones included).

use rusqlite::Connection;

use super::schema::*;
use super::txn::{DbResult, write_txn};

pub(crate) fn table_columns(
    conn: &Connection,
    table: &str,
) -> rusqlite::Result<Vec<(String, String, bool)>> {
    let mut st = conn.prepare(&format!("PRAGMA table_info({table})"))?;
    let rows = st.query_map([], |r| {
        Ok((
            r.get::<_, String>(1)?,
            r.get::<_, Option<String>>(2)?.unwrap_or_default(),
            r.get::<_, i64>(5)? != 0,
        ))
    })?;
    rows.collect()
}

/// `ALTER TABLE ADD COLUMN`, tolerating a concurrent migrator that added
/// it first. Returns whether this call added it.
fn add_column(conn: &Connection, table: &str, def: &str) -> rusqlite::Result<bool> {
    match conn.execute_batch(&format!("ALTER TABLE {table} ADD COLUMN {def}")) {
        Ok(()) => Ok(true),
        Err(e) if e.to_string().to_lowercase().contains("duplicate column") => Ok(false),
        Err(e) => Err(e),
    }
}

/// The idempotent migration pass: reference schema, additive columns and
/// indexes, run back-fill, event renames, drifted-table rebuild, then our
/// meta row. Safe to run any number of times, by any number of processes.
pub(crate) fn migrate(conn: &Connection, now: i64) -> DbResult<()> {
    conn.execute_batch(SCHEMA_SQL)?;
    let cols: Vec<String> = table_columns(conn, "tasks")?
        .into_iter()
        .map(|c| c.0)
        .collect();
    let has = |n: &str| cols.iter().any(|c| c == n);
    for (name, def) in ADDITIVE_TASK_COLUMNS {
        if has(name) {
            continue;
        }
        let added = add_column(conn, "tasks", def)?;
        // Legacy counters are carried over, never renamed in place.
        if added && *name == "consecutive_failures" && has("spawn_failures") {
            conn.execute_batch(
                "UPDATE tasks SET consecutive_failures = COALESCE(spawn_failures, 0)",
            )?;
        }
        if added && *name == "last_failure_error" && has("last_spawn_error") {
            conn.execute_batch("UPDATE tasks SET last_failure_error = last_spawn_error")?;
        }
    }
    conn.execute_batch(ADDITIVE_INDEXES_SQL)?;
    if !table_columns(conn, "task_events")?
        .iter()
        .any(|c| c.0 == "run_id")
    {
        add_column(conn, "task_events", "run_id INTEGER")?;
    }
    conn.execute_batch(EVENTS_RUN_INDEX_SQL)?;
    if !table_columns(conn, "kanban_notify_subs")?
        .iter()
        .any(|c| c.0 == "notifier_profile")
    {
        add_column(conn, "kanban_notify_subs", "notifier_profile TEXT")?;
    }
    backfill_running_runs(conn, now)?;
    for (old, new) in EVENT_RENAMES {
        conn.execute(
            "UPDATE task_events SET kind = ?1 WHERE kind = ?2",
            [new, old],
        )?;
    }
    rebuild_drifted_tables(conn, now)?;
    conn.execute_batch(LIST_INDEX_SQL)?;
    conn.execute_batch(RECENT_RUNS_INDEX_SQL)?;
    conn.execute_batch(FAILING_TASKS_INDEX_SQL)?;
    conn.execute_batch(META_SQL)?;
    conn.execute(META_VERSION_UPSERT, [SCHEMA_VERSION.to_string()])?;
    Ok(())
}

/// A `running` task from before runs existed gets a matching open run.
fn backfill_running_runs(conn: &Connection, now: i64) -> DbResult<()> {
    write_txn(conn, now, |tx| {
        let mut st = tx.conn.prepare(
            "SELECT id, assignee, claim_lock, claim_expires, worker_pid, max_runtime_seconds, \
             last_heartbeat_at, started_at FROM tasks \
             WHERE status = 'running' AND current_run_id IS NULL",
        )?;
        type Inflight = (
            String,
            Option<String>,
            Option<String>,
            Option<i64>,
            Option<i64>,
            Option<i64>,
            Option<i64>,
            Option<i64>,
        );
        let rows: Vec<Inflight> = st
            .query_map([], |r| {
                Ok((
                    r.get(0)?,
                    r.get(1)?,
                    r.get(2)?,
                    r.get(3)?,
                    r.get(4)?,
                    r.get(5)?,
                    r.get(6)?,
                    r.get(7)?,
                ))
            })?
            .collect::<rusqlite::Result<_>>()?;
        for (id, assignee, lock, expires, pid, max_rt, hb, started) in rows {
            tx.conn.execute(
                "INSERT INTO task_runs (task_id, profile, status, claim_lock, claim_expires, \
                 worker_pid, max_runtime_seconds, last_heartbeat_at, started_at) \
                 VALUES (?1, ?2, 'running', ?3, ?4, ?5, ?6, ?7, ?8)",
                rusqlite::params![
                    id,
                    assignee,
                    lock,
                    expires,
                    pid,
                    max_rt,
                    hb,
                    started.unwrap_or(now)
                ],
            )?;
            let run_id = tx.conn.last_insert_rowid();
            let n = tx.conn.execute(
                "UPDATE tasks SET current_run_id = ?1 WHERE id = ?2 AND current_run_id IS NULL",
                rusqlite::params![run_id, id],
            )?;
            if n != 1 {
                tx.conn.execute(
                    "UPDATE task_runs SET status = 'reclaimed', outcome = 'reclaimed', ended_at = ?1 WHERE id = ?2",
                    rusqlite::params![now, run_id],
                )?;
            }
        }
        Ok(())
    })
}

fn table_has_drifted(conn: &Connection, table: &str) -> rusqlite::Result<bool> {
    let info = table_columns(conn, table)?;
    if info.is_empty() {
        return Ok(false);
    }
    if table == "kanban_notify_subs" {
        return Ok(info
            .iter()
            .find(|c| c.0 == "last_event_id")
            .is_some_and(|c| !c.1.eq_ignore_ascii_case("INTEGER")));
    }
    Ok(match info.iter().find(|c| c.0 == "id") {
        None => false,
        Some((_, ty, pk)) => !(ty.eq_ignore_ascii_case("INTEGER") && *pk),
    })
}

/// Legacy tables with TEXT ids (or a TEXT notify cursor) are rebuilt to the
/// current shape in one transaction; legacy ids are dropped, cursors reset.
fn rebuild_drifted_tables(conn: &Connection, now: i64) -> DbResult<()> {
    let mut drifted = Vec::new();
    for spec in REBUILD_SPECS {
        if table_has_drifted(conn, spec.0)? {
            drifted.push(spec);
        }
    }
    if drifted.is_empty() {
        return Ok(());
    }
    write_txn(conn, now, |tx| {
        for (table, create, indexes) in drifted {
            tracing::info!(
                table,
                "kanban migration: rebuilding table to match the current schema"
            );
            let old: Vec<String> = table_columns(tx.conn, table)?
                .into_iter()
                .map(|c| c.0)
                .collect();
            tx.conn
                .execute_batch(&format!("ALTER TABLE {table} RENAME TO {table}_legacy"))?;
            tx.conn.execute_batch(create)?;
            let new: Vec<String> = table_columns(tx.conn, table)?
                .into_iter()
                .map(|c| c.0)
                .collect();
            if *table == "kanban_notify_subs" {
                let shared: Vec<&str> = old
                    .iter()
                    .filter(|c| new.contains(c) && *c != "last_event_id")
                    .map(String::as_str)
                    .collect();
                let csv = shared.join(", ");
                tx.conn.execute_batch(&format!(
                    "INSERT INTO {table} ({csv}, last_event_id) SELECT {csv}, \
                     COALESCE(CAST(last_event_id AS INTEGER), 0) FROM {table}_legacy"
                ))?;
            } else {
                let shared: Vec<&str> = old
                    .iter()
                    .filter(|c| new.contains(c) && *c != "id")
                    .map(String::as_str)
                    .collect();
                let csv = shared.join(", ");
                tx.conn.execute_batch(&format!(
                    "INSERT INTO {table} ({csv}) SELECT {csv} FROM {table}_legacy"
                ))?;
            }
            tx.conn
                .execute_batch(&format!("DROP TABLE {table}_legacy"))?;
            for ix in *indexes {
                tx.conn.execute_batch(ix)?;
            }
        }
        Ok(())
    })
}
