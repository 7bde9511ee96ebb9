//! Host leases on SQLite: `kanban_rs_hosts` (ours; ignored by the Python
//! implementation), created with the dispatcher's other tables and on the
//! first renewal. One row per host id, renewed by its gateway.

use rusqlite::{Connection, Row};

use super::is_missing_table;
use crate::dispatch_ops::{HostLease, HostRecord};
use crate::sqlite::txn::{DbResult, Tx};

pub(super) const HOSTS_SQL: &str = "CREATE TABLE IF NOT EXISTS kanban_rs_hosts (
    host_id       TEXT PRIMARY KEY,
    gateway_pid   INTEGER NOT NULL,
    started_at    INTEGER NOT NULL,
    lease_expires INTEGER NOT NULL,
    last_seen     INTEGER NOT NULL
)";

const HOST_COLUMNS: &str = "host_id, gateway_pid, started_at, lease_expires, last_seen";

fn host_from_row(r: &Row<'_>) -> rusqlite::Result<HostRecord> {
    Ok(HostRecord {
        host_id: r.get(0)?,
        gateway_pid: r.get(1)?,
        started_at: r.get(2)?,
        lease_expires: r.get(3)?,
        last_seen: r.get(4)?,
    })
}

pub(super) fn renew(tx: &Tx<'_>, lease: &HostLease) -> DbResult<HostRecord> {
    tx.conn.execute_batch(HOSTS_SQL)?;
    let sql = format!(
        "INSERT INTO kanban_rs_hosts ({HOST_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5) \
         ON CONFLICT(host_id) DO UPDATE SET gateway_pid = excluded.gateway_pid, \
         started_at = excluded.started_at, lease_expires = excluded.lease_expires, \
         last_seen = excluded.last_seen RETURNING {HOST_COLUMNS}"
    );
    let row = tx.conn.prepare_cached(&sql)?.query_row(
        rusqlite::params![
            lease.host_id,
            lease.gateway_pid,
            lease.started_at,
            tx.now + lease.lease_seconds,
            tx.now,
        ],
        host_from_row,
    )?;
    Ok(row)
}

pub(super) fn hosts(conn: &Connection) -> DbResult<Vec<HostRecord>> {
    let sql = format!("SELECT {HOST_COLUMNS} FROM kanban_rs_hosts ORDER BY host_id");
    let mut st = match conn.prepare_cached(&sql) {
        Ok(st) => st,
        // No gateway registered yet.
        Err(e) if is_missing_table(&e) => return Ok(Vec::new()),
        Err(e) => return Err(e.into()),
    };
    let rows = st.query_map([], host_from_row)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}
