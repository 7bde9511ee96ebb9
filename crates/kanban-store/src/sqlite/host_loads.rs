//! `/metrics`' view of a board's hosts on SQLite, in one read: the leases
//! of `kanban_rs_hosts` (missing until a gateway registers) and the claim
//! locks of the running tasks.

use rusqlite::Connection;

use super::dispatch::is_missing_table;
use super::txn::DbResult;
use crate::backend::{HostLoad, host_loads};

/// Running claims, one row per claim lock (`NULL` tells them from leases).
const RUNNING_SQL: &str = "SELECT claim_lock, NULL, COUNT(*) FROM tasks \
     WHERE status = 'running' AND claim_lock IS NOT NULL GROUP BY claim_lock";

/// Leases (never `NULL`) and running claims in one statement.
fn loads_sql() -> String {
    format!("SELECT host_id, lease_expires, 0 FROM kanban_rs_hosts UNION ALL {RUNNING_SQL}")
}

pub(crate) fn host_loads_of(conn: &Connection) -> DbResult<Vec<HostLoad>> {
    let mut st = match conn.prepare_cached(&loads_sql()) {
        Ok(st) => st,
        // No gateway registered yet: running claims only.
        Err(e) if is_missing_table(&e) => conn.prepare_cached(RUNNING_SQL)?,
        Err(e) => return Err(e.into()),
    };
    let (mut leases, mut locks) = (Vec::new(), Vec::new());
    let mut rows = st.query([])?;
    while let Some(r) = rows.next()? {
        let key: String = r.get(0)?;
        match r.get::<_, Option<i64>>(1)? {
            Some(expires) => leases.push((key, expires)),
            None => locks.push((key, r.get(2)?)),
        }
    }
    Ok(host_loads(leases, locks))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use crate::backend::{BoardStore, HostLoad};
    use crate::clock::ManualClock;
    use crate::dispatch_ops::{DispatchStore, HostLease};
    use crate::sqlite::{OpenOptions, SqliteStore};
    use crate::{ClaimOutcome, ClaimRequest, NewTask, Store};

    fn load(host: &str, lease_expires: Option<i64>, running: i64) -> HostLoad {
        HostLoad {
            host_id: host.into(),
            lease_expires,
            running,
        }
    }

    #[test]
    fn leases_and_running_claims_in_one_read() {
        let dir = tempfile::tempdir().unwrap();
        let clock = Arc::new(ManualClock::new(1_000));
        let s = SqliteStore::open(&dir.path().join("k.db"), OpenOptions::create(), clock).unwrap();
        let id = s
            .create_task(&NewTask {
                title: "x".into(),
                ..NewTask::default()
            })
            .unwrap()
            .task
            .id;
        let claim = ClaimRequest {
            task_id: id,
            claim_lock: "node-a:12".into(),
            ttl_seconds: 60,
            review: false,
            ceilings: Default::default(),
        };
        assert!(matches!(
            s.claim_task(&claim).unwrap(),
            ClaimOutcome::Claimed { .. }
        ));
        // No gateway registered yet: no lease table, the claim still counts.
        assert_eq!(s.host_loads().unwrap(), [load("node-a", None, 1)]);

        let lease = HostLease {
            host_id: "node-b".into(),
            gateway_pid: 7,
            started_at: 1_000,
            lease_seconds: 30,
        };
        s.renew_host_lease(&lease).unwrap();
        assert_eq!(
            s.host_loads().unwrap(),
            [load("node-a", None, 1), load("node-b", Some(1_030), 0)]
        );
    }
}
