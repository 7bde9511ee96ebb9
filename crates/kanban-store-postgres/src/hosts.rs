//! Host leases on PostgreSQL: `kanban_rs_hosts` (migration 3), one row
//! per host id, renewed by its gateway. A renewal is one autocommit
//! upsert outside the board's write lock and version bump: it changes no
//! task, so it must not wake every gateway's watcher.

use kanban_store::backend::HostLoad;
use kanban_store::dispatch_ops::{HostLease, HostRecord};
use postgres::Row;

use crate::db::{Db, DbResult};

const RENEW_SQL: &str = "INSERT INTO kanban_rs_hosts \
     (host_id, gateway_pid, started_at, lease_expires, last_seen) VALUES ($1, $2, $3, $4, $5) \
     ON CONFLICT (host_id) DO UPDATE SET gateway_pid = EXCLUDED.gateway_pid, \
     started_at = EXCLUDED.started_at, lease_expires = EXCLUDED.lease_expires, \
     last_seen = EXCLUDED.last_seen \
     RETURNING host_id, gateway_pid, started_at, lease_expires, last_seen";

const HOSTS_QUERY: &str = "SELECT host_id, gateway_pid, started_at, lease_expires, last_seen \
     FROM kanban_rs_hosts ORDER BY host_id";

/// Leases (never `NULL`) and running claims (`NULL` lease, one row per
/// claim lock) in one statement, for `/metrics`.
const LOADS_QUERY: &str = "SELECT host_id, lease_expires, 0::BIGINT FROM kanban_rs_hosts \
     UNION ALL SELECT claim_lock, NULL, COUNT(*) FROM tasks \
     WHERE status = 'running' AND claim_lock IS NOT NULL GROUP BY claim_lock";

fn host_from_row(r: &Row) -> HostRecord {
    HostRecord {
        host_id: r.get(0),
        gateway_pid: r.get(1),
        started_at: r.get(2),
        lease_expires: r.get(3),
        last_seen: r.get(4),
    }
}

pub(crate) fn renew(db: &Db<'_>, lease: &HostLease, now: i64) -> DbResult<HostRecord> {
    let row = db.query_one(
        RENEW_SQL,
        &[
            &lease.host_id,
            &lease.gateway_pid,
            &lease.started_at,
            &(now + lease.lease_seconds),
            &now,
        ],
    )?;
    Ok(host_from_row(&row))
}

pub(crate) fn hosts(db: &Db<'_>) -> DbResult<Vec<HostRecord>> {
    Ok(db
        .query(HOSTS_QUERY, &[])?
        .iter()
        .map(host_from_row)
        .collect())
}

pub(crate) fn host_loads(db: &Db<'_>) -> DbResult<Vec<HostLoad>> {
    let (mut leases, mut locks) = (Vec::new(), Vec::new());
    for r in db.query(LOADS_QUERY, &[])? {
        match r.get::<_, Option<i64>>(1) {
            Some(expires) => leases.push((r.get(0), expires)),
            None => locks.push((r.get(0), r.get(2))),
        }
    }
    Ok(kanban_store::backend::host_loads(leases, locks))
}
