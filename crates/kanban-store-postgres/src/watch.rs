//! The change probe of a PostgreSQL board: the board's version row, which
//! every write transaction bumps in the same commit. One indexed
//! single-row read per call, on a connection of the probe's own, sees
//! commits of every process on every host.
//!
//! The probe's connection also `LISTEN`s on the board's channel, which every
//! write transaction notifies at commit, so [`ChangeProbe::wait_for_change`]
//! wakes a gateway on any host as soon as another commits.
//!
//! The connection is reopened on the next call after it broke (a database
//! restart), so one probe outlives any number of outages; while the
//! database is away every call fails, which is how its caller (the
//! gateway's watcher) learns of the outage.

use std::sync::Arc;
use std::time::Duration;

use kanban_store::Result;
use kanban_store::watch::ChangeProbe;
use postgres::fallible_iterator::FallibleIterator;

use crate::connect::Connector;
use crate::db::{Conn, DbError, classify_sql};
use crate::schema::VERSION_QUERY;

pub struct PgChangeProbe {
    connector: Arc<Connector>,
    /// `None` after the connection broke, until the next call reconnects.
    conn: Option<Conn>,
}

/// A connection listening on the board's channel.
fn connect(connector: &Connector) -> Result<Conn> {
    let mut conn = connector.connect().map_err(|e| match e {
        DbError::Store(s) => s,
        DbError::Sql(e) => classify_sql(e),
    })?;
    conn.client
        .batch_execute(&connector.schema().listen_sql())
        .map_err(classify_sql)?;
    Ok(conn)
}

impl PgChangeProbe {
    /// A probe connected now: an unreachable database is an error here.
    pub(crate) fn open(connector: &Arc<Connector>) -> Result<PgChangeProbe> {
        let conn = connect(connector)?;
        Ok(PgChangeProbe {
            connector: connector.clone(),
            conn: Some(conn),
        })
    }
}

impl ChangeProbe for PgChangeProbe {
    fn wait_for_change(&mut self, timeout: Duration) {
        let Some(conn) = self.conn.as_mut().filter(|c| !c.client.is_closed()) else {
            std::thread::sleep(timeout);
            return;
        };
        let mut notifications = conn.client.notifications();
        // Errors end the wait; the next `version` call reports them.
        let woken = matches!(notifications.timeout_iter(timeout).next(), Ok(Some(_)));
        if woken {
            // Several commits may have been announced: one wake-up is enough.
            while let Ok(Some(_)) = notifications.iter().next() {}
        }
    }

    fn version(&mut self) -> Result<u64> {
        if self.conn.as_ref().is_none_or(|c| c.client.is_closed()) {
            self.conn = None;
            self.conn = Some(connect(&self.connector)?);
        }
        let conn = self.conn.as_mut().expect("connected above");
        match conn.client.query_one(VERSION_QUERY, &[]) {
            Ok(row) => Ok(row.get::<_, i64>(0) as u64),
            Err(e) => {
                // A broken session is replaced on the next call; an error
                // on a live one (a statement timeout) keeps it.
                if conn.client.is_closed() {
                    self.conn = None;
                }
                Err(classify_sql(e))
            }
        }
    }
}
