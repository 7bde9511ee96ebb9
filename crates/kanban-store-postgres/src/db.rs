//! The transactions every operation runs in, on a connection borrowed
//! from the database's pool (`pool`) for the length of one call; its
//! statement cache is kept per board (`conn`).
//!
//! - [`PgStore::read`]: one statement (or reads that need no common
//!   snapshot) on the connection, in autocommit.
//! - [`PgStore::read_snapshot`]: several statements in one
//!   `REPEATABLE READ, READ ONLY` transaction, so they see one snapshot.
//! - [`PgStore::write`]: one transaction per state change. It first takes
//!   the board's transaction-scoped advisory lock, so the writers of a
//!   board (every process on every host) commit one at a time, as on
//!   SQLite. That single-writer rule is what keeps the store's contract
//!   simple on PostgreSQL too: ceilings are counted and the claim written
//!   with no other writer in between, and event ids (taken from a sequence
//!   while the lock is held) become visible in id order, so a feed cursor
//!   never skips an event. Every write bumps the board's version row and
//!   sends a `NOTIFY`, which change probes and waiting gateways see.
//!
//! Closures return [`DbResult`]: `?` works on PostgreSQL errors and
//! [`StoreError`]s alike; they are classified once, at the boundary.

use std::cell::RefCell;
use std::collections::HashMap;

use kanban_store::{BackendError, Result, StoreError};
use postgres::{Client, Row, Statement, Transaction};

use crate::PgStore;
use crate::conn::error_chain;
use crate::pool::CheckoutError;
use crate::schema::BoardSchema;

pub(crate) use crate::conn::{Conn, DbError, DbResult, Params};

enum Session<'a> {
    Plain(&'a mut Client),
    Tx(Transaction<'a>),
}

/// A connection (or an open transaction on it) as the query helpers see
/// it. Statements are prepared once per connection and reused.
pub(crate) struct Db<'a> {
    session: RefCell<Session<'a>>,
    statements: RefCell<&'a mut HashMap<String, Statement>>,
}

impl<'a> Db<'a> {
    fn statement(&self, session: &mut Session<'a>, sql: &str) -> DbResult<Statement> {
        if let Some(st) = self.statements.borrow().get(sql) {
            return Ok(st.clone());
        }
        let st = match session {
            Session::Plain(c) => c.prepare(sql)?,
            Session::Tx(t) => t.prepare(sql)?,
        };
        self.statements
            .borrow_mut()
            .insert(sql.to_string(), st.clone());
        Ok(st)
    }

    /// Every row of a query.
    pub(crate) fn query(&self, sql: &str, params: Params<'_>) -> DbResult<Vec<Row>> {
        let mut session = self.session.borrow_mut();
        let st = self.statement(&mut session, sql)?;
        Ok(match &mut *session {
            Session::Plain(c) => c.query(&st, params)?,
            Session::Tx(t) => t.query(&st, params)?,
        })
    }

    /// The rows of a query one at a time, as they arrive, without
    /// collecting the whole result first; `f` returns false to stop.
    pub(crate) fn for_each_row(
        &self,
        sql: &str,
        params: Params<'_>,
        mut f: impl FnMut(&Row) -> DbResult<bool>,
    ) -> DbResult<()> {
        use postgres::fallible_iterator::FallibleIterator;
        let mut session = self.session.borrow_mut();
        let st = self.statement(&mut session, sql)?;
        let args = params.iter().copied();
        let mut rows = match &mut *session {
            Session::Plain(c) => c.query_raw(&st, args)?,
            Session::Tx(t) => t.query_raw(&st, args)?,
        };
        while let Some(r) = rows.next()? {
            if !f(&r)? {
                break;
            }
        }
        Ok(())
    }

    /// The first row, if any.
    pub(crate) fn query_opt(&self, sql: &str, params: Params<'_>) -> DbResult<Option<Row>> {
        Ok(self.query(sql, params)?.into_iter().next())
    }

    /// Exactly one row (an aggregate, a `RETURNING`).
    pub(crate) fn query_one(&self, sql: &str, params: Params<'_>) -> DbResult<Row> {
        self.query_opt(sql, params)?.ok_or_else(|| {
            DbError::Store(StoreError::Backend(BackendError::msg(format!(
                "query returned no row: {sql}"
            ))))
        })
    }

    /// A statement's affected row count.
    pub(crate) fn execute(&self, sql: &str, params: Params<'_>) -> DbResult<u64> {
        let mut session = self.session.borrow_mut();
        let st = self.statement(&mut session, sql)?;
        Ok(match &mut *session {
            Session::Plain(c) => c.execute(&st, params)?,
            Session::Tx(t) => t.execute(&st, params)?,
        })
    }

    fn commit(self) -> DbResult<()> {
        match self.session.into_inner() {
            Session::Plain(_) => Ok(()),
            Session::Tx(t) => Ok(t.commit()?),
        }
    }
}

/// An open write transaction, with the time every row of it is stamped
/// with. Derefs to [`Db`] for the query helpers.
pub(crate) struct Tx<'a> {
    pub(crate) conn: Db<'a>,
    pub(crate) now: i64,
}

impl<'a> std::ops::Deref for Tx<'a> {
    type Target = Db<'a>;
    fn deref(&self) -> &Db<'a> {
        &self.conn
    }
}

/// A transaction on `conn`; with `read_only`, a `REPEATABLE READ` one.
fn begin<'a>(conn: &'a mut Conn, read_only: bool) -> DbResult<Db<'a>> {
    let mut builder = conn.client.build_transaction();
    if read_only {
        builder = builder
            .isolation_level(postgres::IsolationLevel::RepeatableRead)
            .read_only(true);
    }
    let tx = builder.start()?;
    Ok(Db {
        session: RefCell::new(Session::Tx(tx)),
        statements: RefCell::new(&mut conn.statements),
    })
}

/// An open write transaction on a client, rolled back when dropped
/// before [`WriteTxn::commit`] (an error, or a panic in the closure).
struct WriteTxn<'c> {
    client: &'c mut Client,
    open: bool,
}

impl<'c> WriteTxn<'c> {
    /// `BEGIN` and the board's advisory lock: one round trip.
    fn begin(client: &'c mut Client, schema: &BoardSchema) -> DbResult<WriteTxn<'c>> {
        client.batch_execute(&format!(
            "BEGIN; SELECT pg_advisory_xact_lock({})",
            schema.write_lock_key()
        ))?;
        Ok(WriteTxn { client, open: true })
    }

    /// The version bump, the `NOTIFY` and `COMMIT`: one round trip.
    fn commit(mut self, schema: &BoardSchema) -> DbResult<()> {
        let sql = format!(
            "{}; {}; COMMIT",
            crate::schema::BUMP_VERSION_SQL,
            schema.notify_sql()
        );
        let out = self.client.batch_execute(&sql);
        // A failed COMMIT ends the transaction too; a failed bump leaves it
        // aborted, and the drop below rolls it back.
        self.open = out.is_err();
        Ok(out?)
    }
}

impl Drop for WriteTxn<'_> {
    fn drop(&mut self) {
        if self.open {
            let _ = self.client.batch_execute("ROLLBACK");
        }
    }
}

/// Run `f` in one write transaction on `conn`: the board's advisory lock
/// first, the version bump and `NOTIFY` last; commit on `Ok`. Two round
/// trips besides `f`'s own statements.
pub(crate) fn write_txn<T>(
    conn: &mut Conn,
    schema: &BoardSchema,
    now: i64,
    f: impl FnOnce(&Tx<'_>) -> DbResult<T>,
) -> DbResult<T> {
    let txn = WriteTxn::begin(&mut conn.client, schema)?;
    let out = {
        let tx = Tx {
            conn: Db {
                session: RefCell::new(Session::Plain(txn.client)),
                statements: RefCell::new(&mut conn.statements),
            },
            now,
        };
        f(&tx)?
    };
    txn.commit(schema)?;
    Ok(out)
}

impl PgStore {
    /// Current time of the store's clock (integer Unix seconds).
    pub(crate) fn now(&self) -> i64 {
        self.clock.now()
    }

    /// A connection of the pool with the board's schema on its search
    /// path, for one call; back to the pool afterwards (or closed, when it
    /// broke or may hold stale prepared statements).
    pub(crate) fn with_conn<T>(&self, f: impl FnOnce(&mut Conn) -> DbResult<T>) -> Result<T> {
        let mut conn = self.pool.checkout().map_err(|e| self.checkout_error(e))?;
        let out = conn
            .use_schema(self.schema.name(), &self.schema.quoted())
            .map_err(DbError::from)
            .and_then(|()| f(&mut conn));
        if let Err(DbError::Sql(e)) = &out
            && leaves_session_unusable(e)
        {
            conn.broken = true;
        }
        out.map_err(|e| self.classify(e))
    }

    fn checkout_error(&self, e: CheckoutError) -> StoreError {
        e.at(self.connector.redacted())
    }

    /// Run read-only statements that need no common snapshot.
    pub(crate) fn read<T>(&self, f: impl FnOnce(&Db<'_>) -> DbResult<T>) -> Result<T> {
        self.with_conn(|conn| {
            let db = Db {
                session: RefCell::new(Session::Plain(&mut conn.client)),
                statements: RefCell::new(&mut conn.statements),
            };
            f(&db)
        })
    }

    /// Run several read-only statements on one snapshot.
    pub(crate) fn read_snapshot<T>(&self, f: impl FnOnce(&Db<'_>) -> DbResult<T>) -> Result<T> {
        self.with_conn(|conn| {
            let db = begin(conn, true)?;
            let out = f(&db)?;
            db.commit()?;
            Ok(out)
        })
    }

    /// Run `f` as one state change of the board (see the module docs).
    pub(crate) fn write<T>(&self, f: impl FnOnce(&Tx<'_>) -> DbResult<T>) -> Result<T> {
        let now = self.now();
        self.with_conn(|conn| write_txn(conn, &self.schema, now, f))
    }

    /// Turn a backend error into the public one; errors of the
    /// connection itself name the (redacted) location.
    pub(crate) fn classify(&self, e: DbError) -> StoreError {
        match e {
            DbError::Store(s) => s,
            DbError::Sql(e) => classify_sql_at(e, Some(self.connector.redacted())),
        }
    }
}

/// Errors after which the session must not serve another call: its
/// prepared statements no longer match the tables (a board dropped and
/// made again with other columns), or were dropped under it.
pub(crate) fn leaves_session_unusable(e: &postgres::Error) -> bool {
    use postgres::error::SqlState;
    e.code().is_some_and(|c| {
        *c == SqlState::FEATURE_NOT_SUPPORTED || *c == SqlState::INVALID_SQL_STATEMENT_NAME
    })
}

/// Serialization failures, deadlocks and lock timeouts are worth a retry
/// by the caller (`Busy`); everything else keeps PostgreSQL's error.
pub(crate) fn classify_sql(e: postgres::Error) -> StoreError {
    classify_sql_at(e, None)
}

fn classify_sql_at(e: postgres::Error, location: Option<&str>) -> StoreError {
    use postgres::error::SqlState;
    let message = error_chain(&e);
    match e.code() {
        Some(c)
            if *c == SqlState::T_R_SERIALIZATION_FAILURE
                || *c == SqlState::T_R_DEADLOCK_DETECTED
                || *c == SqlState::LOCK_NOT_AVAILABLE =>
        {
            StoreError::Busy(message)
        }
        code => {
            let message = match (location, code) {
                // No SQL state: the connection failed, so say where to.
                (Some(at), None) => format!("{at}: {message}"),
                _ => message,
            };
            StoreError::Backend(BackendError::new(PgError { message, source: e }))
        }
    }
}

/// A PostgreSQL error with its whole cause chain in the message.
#[derive(Debug)]
struct PgError {
    message: String,
    #[allow(dead_code)] // kept for debugging output
    source: postgres::Error,
}

impl std::fmt::Display for PgError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for PgError {}

/// A JSON value stored as text, as the SQLite board does (`NULL` for none,
/// `null` and `{}`).
pub(crate) fn json_text(v: Option<&serde_json::Value>) -> Option<String> {
    match v {
        None | Some(serde_json::Value::Null) => None,
        Some(serde_json::Value::Object(m)) if m.is_empty() => None,
        Some(v) => Some(v.to_string()),
    }
}
