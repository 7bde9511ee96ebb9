//! The board's dispatch lock on PostgreSQL: a session advisory lock, held
//! on a connection of its own for as long as the pass runs, so one
//! dispatch pass runs at a time across every process on every host. A
//! dispatcher that dies (or loses its connection) releases it with its
//! session.

use std::sync::{Arc, Mutex};

use kanban_store::Result;
use kanban_store::dispatch_ops::{DispatchLock, HeldDispatchLock};

use crate::connect::Connector;
use crate::db::{Conn, classify_sql};

const TRY_LOCK_SQL: &str = "SELECT pg_try_advisory_lock($1)";
const UNLOCK_SQL: &str = "SELECT pg_advisory_unlock($1)";

/// Run one of the lock statements, prepared once per connection: a pass
/// then costs one round trip to lock and one to unlock (a statement given
/// as text would be parsed, run and closed each time).
fn lock_call(conn: &mut Conn, sql: &str, key: i64) -> std::result::Result<bool, postgres::Error> {
    let st = match conn.statements.get(sql) {
        Some(st) => st.clone(),
        None => {
            let st = conn.client.prepare(sql)?;
            conn.statements.insert(sql.to_string(), st.clone());
            st
        }
    };
    conn.client.query_one(&st, &[&key])?.try_get(0)
}

/// One lock object: its connection is opened on first use and kept.
pub(crate) struct AdvisoryDispatchLock {
    connector: Arc<Connector>,
    key: i64,
    /// The lock's connection; `None` while a pass holds it (the guard has
    /// it) or before first use.
    idle: Arc<Mutex<Option<Conn>>>,
}

impl std::fmt::Debug for AdvisoryDispatchLock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.describe())
    }
}

impl AdvisoryDispatchLock {
    pub(crate) fn new(connector: Arc<Connector>, key: i64) -> AdvisoryDispatchLock {
        AdvisoryDispatchLock {
            connector,
            key,
            idle: Arc::new(Mutex::new(None)),
        }
    }
}

/// The held lock: unlocks and returns the connection when dropped.
struct Held {
    conn: Mutex<Option<Conn>>,
    key: i64,
    idle: Arc<Mutex<Option<Conn>>>,
}

impl Drop for Held {
    fn drop(&mut self) {
        let taken = self
            .conn
            .get_mut()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        let Some(mut conn) = taken else {
            return;
        };
        let unlocked = lock_call(&mut conn, UNLOCK_SQL, self.key).unwrap_or(false);
        // A connection that could not unlock is closed, which releases
        // the lock with the session.
        if unlocked && !conn.client.is_closed() {
            *self.idle.lock().unwrap_or_else(|p| p.into_inner()) = Some(conn);
        }
    }
}

impl DispatchLock for AdvisoryDispatchLock {
    fn try_acquire(&self) -> Result<Option<HeldDispatchLock>> {
        let taken = self.idle.lock().unwrap_or_else(|p| p.into_inner()).take();
        let mut conn = match taken {
            Some(c) if !c.client.is_closed() => c,
            _ => {
                // Either first use, a broken connection, or a pass of this
                // very object still holds the lock (its guard has the
                // connection): a second session then simply fails to get it.
                self.connector.connect().map_err(|e| match e {
                    crate::db::DbError::Store(s) => s,
                    crate::db::DbError::Sql(e) => classify_sql(e),
                })?
            }
        };
        let got = lock_call(&mut conn, TRY_LOCK_SQL, self.key).map_err(classify_sql)?;
        if !got {
            *self.idle.lock().unwrap_or_else(|p| p.into_inner()) = Some(conn);
            return Ok(None);
        }
        let held = Held {
            conn: Mutex::new(Some(conn)),
            key: self.key,
            idle: self.idle.clone(),
        };
        Ok(Some(HeldDispatchLock::new(held, self.describe())))
    }

    fn describe(&self) -> String {
        format!(
            "advisory lock {} on {}",
            self.key,
            self.connector.redacted()
        )
    }
}
