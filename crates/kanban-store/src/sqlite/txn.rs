//! The write transaction and the helpers every state change is built from.
//!
//! For the dispatcher (`sqlite/dispatch.rs`) and any other module of this
//! backend: run a state change with [`SqliteStore::write`], which opens a
//! `BEGIN IMMEDIATE` transaction (retried on busy like the reference:
//! 5 retries, 20–150 ms jitter), hands the closure a [`Tx`], commits when
//! the closure returns `Ok` and rolls back otherwise. Inside, read the
//! task with [`Tx::require_task`], decide with
//! `kanban_core::transitions::decide`, write the row, then append the
//! event with [`Tx::append_event`] and open/close runs with
//! [`Tx::open_run`] / [`Tx::end_run`] / [`Tx::synthesize_run`].
//!
//! Closures return [`DbResult`]: `?` works on both rusqlite errors and
//! [`StoreError`]s. At the boundary SQLite errors are classified once:
//! corruption → backup + `StoreError::Corrupt`, busy → `StoreError::Busy`.

use std::cell::Cell;
use std::time::Duration;

use kanban_core::transitions::TaskFacts;
use kanban_core::transitions::review::is_review_claim;
use kanban_core::{BlockKind, CoreError, EventKind, Status, Task};
use rand::RngExt;
use rusqlite::{Connection, ErrorCode, OptionalExtension, TransactionState, params};
use serde_json::Value;

use super::SqliteStore;
use super::corrupt::corrupt_error;
use super::row::task_from_row;
use super::schema::TASK_COLUMNS;
use crate::{Result, StoreError};

/// Retries of `BEGIN IMMEDIATE` / `COMMIT` on an immediate busy answer.
pub(crate) const BUSY_MAX_RETRIES: u32 = 5;
/// Jitter band between two retries, so colliding writers do not re-collide.
pub(crate) const BUSY_RETRY_MIN_MS: u64 = 20;
pub(crate) const BUSY_RETRY_MAX_MS: u64 = 150;

/// Error inside the backend: either SQLite's or an already-typed store error.
#[derive(Debug)]
pub(crate) enum DbError {
    Sql(rusqlite::Error),
    Store(StoreError),
}

pub(crate) type DbResult<T> = std::result::Result<T, DbError>;

impl From<rusqlite::Error> for DbError {
    fn from(e: rusqlite::Error) -> Self {
        DbError::Sql(e)
    }
}

impl From<StoreError> for DbError {
    fn from(e: StoreError) -> Self {
        DbError::Store(e)
    }
}

impl From<CoreError> for DbError {
    fn from(e: CoreError) -> Self {
        DbError::Store(StoreError::Invalid(e))
    }
}

pub(crate) fn sqlite_code(e: &rusqlite::Error) -> Option<ErrorCode> {
    e.sqlite_error_code()
}

/// Lock contention, never corruption.
pub(crate) fn is_busy(e: &rusqlite::Error) -> bool {
    matches!(
        sqlite_code(e),
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked)
    )
}

/// SQLite says the file is damaged or not a database.
pub(crate) fn is_corrupt(e: &rusqlite::Error) -> bool {
    matches!(
        sqlite_code(e),
        Some(ErrorCode::DatabaseCorrupt | ErrorCode::NotADatabase)
    )
}

fn jitter_sleep() {
    let ms = rand::rng().random_range(BUSY_RETRY_MIN_MS..=BUSY_RETRY_MAX_MS);
    std::thread::sleep(Duration::from_millis(ms));
}

/// Run a transaction boundary statement, retrying an immediate busy answer.
fn boundary_with_retry(conn: &Connection, sql: &str) -> rusqlite::Result<()> {
    let mut attempt = 0;
    loop {
        match conn.execute_batch(sql) {
            Err(e) if is_busy(&e) && attempt < BUSY_MAX_RETRIES => {
                attempt += 1;
                jitter_sleep();
            }
            other => return other,
        }
    }
}

/// How a run ends: the semantic outcome, the row status, and the handoff.
#[derive(Debug, Clone, Default)]
pub(crate) struct RunEnd<'a> {
    pub outcome: &'a str,
    /// Row status; `None` = same as the outcome.
    pub status: Option<&'a str>,
    pub summary: Option<&'a str>,
    pub error: Option<&'a str>,
    pub metadata: Option<&'a Value>,
}

impl<'a> RunEnd<'a> {
    pub(crate) fn new(outcome: &'a str) -> Self {
        RunEnd {
            outcome,
            ..Default::default()
        }
    }
}

/// JSON text of an event payload / run metadata; empty objects and null
/// are stored as NULL, as the reference does.
pub(crate) fn json_text(v: Option<&Value>) -> Option<String> {
    match v {
        None | Some(Value::Null) => None,
        Some(Value::Object(m)) if m.is_empty() => None,
        Some(v) => Some(v.to_string()),
    }
}

/// An open write transaction, with the time every row of it is stamped with.
pub(crate) struct Tx<'c> {
    pub(crate) conn: &'c Connection,
    pub(crate) now: i64,
}

impl<'c> Tx<'c> {
    /// The task row, or `None`.
    pub(crate) fn task(&self, id: &str) -> DbResult<Option<Task>> {
        load_task(self.conn, id)
    }

    /// The task row, or `StoreError::TaskNotFound`.
    pub(crate) fn require_task(&self, id: &str) -> DbResult<Task> {
        self.task(id)?
            .ok_or_else(|| DbError::Store(StoreError::TaskNotFound(id.to_string())))
    }

    /// Append one event row; returns its id (the feed cursor).
    pub(crate) fn append_event(
        &self,
        task_id: &str,
        kind: EventKind,
        payload: Option<Value>,
        run_id: Option<i64>,
    ) -> DbResult<i64> {
        let mut st = self.conn.prepare_cached(
            "INSERT INTO task_events (task_id, run_id, kind, payload, created_at) \
             VALUES (?1, ?2, ?3, ?4, ?5)",
        )?;
        st.execute(params![
            task_id,
            run_id,
            kind.as_str(),
            json_text(payload.as_ref()),
            self.now
        ])?;
        Ok(self.conn.last_insert_rowid())
    }

    /// Close the task's open run (if any) and clear `current_run_id`.
    /// Returns the closed run id, `None` when no run was open.
    pub(crate) fn end_run(&self, task_id: &str, end: &RunEnd<'_>) -> DbResult<Option<i64>> {
        let current: Option<i64> = self
            .conn
            .prepare_cached("SELECT current_run_id FROM tasks WHERE id = ?1")?
            .query_row([task_id], |r| r.get::<_, Option<i64>>(0))
            .optional()?
            .flatten()
            .filter(|id| *id != 0);
        let Some(run_id) = current else {
            return Ok(None);
        };
        self.conn
            .prepare_cached(
                "UPDATE task_runs SET status = ?1, outcome = ?2, summary = ?3, error = ?4, \
                 metadata = ?5, ended_at = ?6, claim_lock = NULL, claim_expires = NULL, \
                 worker_pid = NULL WHERE id = ?7 AND ended_at IS NULL",
            )?
            .execute(params![
                end.status.unwrap_or(end.outcome),
                end.outcome,
                end.summary,
                end.error,
                json_text(end.metadata),
                self.now,
                run_id
            ])?;
        self.conn
            .prepare_cached("UPDATE tasks SET current_run_id = NULL WHERE id = ?1")?
            .execute([task_id])?;
        Ok(Some(run_id))
    }

    /// Insert a zero-length, already closed run (a terminal transition of
    /// a never-claimed task, so the handoff text is not lost).
    pub(crate) fn synthesize_run(&self, task_id: &str, end: &RunEnd<'_>) -> DbResult<i64> {
        let (profile, step): (Option<String>, Option<String>) = self
            .conn
            .prepare_cached("SELECT assignee, current_step_key FROM tasks WHERE id = ?1")?
            .query_row([task_id], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?
            .unwrap_or((None, None));
        self.conn
            .prepare_cached(
                "INSERT INTO task_runs (task_id, profile, step_key, status, outcome, summary, \
                 error, metadata, started_at, ended_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?9)",
            )?
            .execute(params![
                task_id,
                profile,
                step,
                end.outcome, // a synthesized run: status = outcome, as in the reference
                end.outcome,
                end.summary,
                end.error,
                json_text(end.metadata),
                self.now
            ])?;
        Ok(self.conn.last_insert_rowid())
    }

    /// End the open run, or synthesize one when there was none and the
    /// caller has handoff text (`summary`/`metadata`) worth keeping.
    pub(crate) fn end_or_synthesize_run(
        &self,
        task_id: &str,
        end: &RunEnd<'_>,
        keep_if_unclaimed: bool,
    ) -> DbResult<Option<i64>> {
        match self.end_run(task_id, end)? {
            Some(id) => Ok(Some(id)),
            None if keep_if_unclaimed => Ok(Some(self.synthesize_run(task_id, end)?)),
            None => Ok(None),
        }
    }

    /// Open a `running` run for a claim and point the task at it.
    pub(crate) fn open_run(&self, task: &Task, lock: &str, expires: i64) -> DbResult<i64> {
        self.conn
            .prepare_cached(
                "INSERT INTO task_runs (task_id, profile, step_key, status, claim_lock, \
                 claim_expires, max_runtime_seconds, started_at) \
                 VALUES (?1, ?2, ?3, 'running', ?4, ?5, ?6, ?7)",
            )?
            .execute(params![
                task.id,
                task.assignee,
                task.current_step_key,
                lock,
                expires,
                task.max_runtime_seconds,
                self.now
            ])?;
        let run_id = self.conn.last_insert_rowid();
        self.conn
            .prepare_cached("UPDATE tasks SET current_run_id = ?1 WHERE id = ?2")?
            .execute(params![run_id, task.id])?;
        Ok(run_id)
    }

    /// Close a run the task still points at although its status says no
    /// run should be open (an invariant broken by some other writer).
    pub(crate) fn close_leaked_run(&self, run_id: i64, note: &str) -> DbResult<()> {
        self.conn
            .prepare_cached(
                "UPDATE task_runs SET status = 'reclaimed', outcome = 'reclaimed', \
                 summary = COALESCE(summary, ?1), ended_at = ?2, claim_lock = NULL, \
                 claim_expires = NULL, worker_pid = NULL WHERE id = ?3 AND ended_at IS NULL",
            )?
            .execute(params![note, self.now, run_id])?;
        Ok(())
    }

    /// Parents that are neither done nor archived, as `(id, status)`.
    pub(crate) fn unsatisfied_parents(&self, task_id: &str) -> DbResult<Vec<(String, Status)>> {
        let mut st = self.conn.prepare_cached(
            "SELECT p.id, p.status FROM task_links l JOIN tasks p ON p.id = l.parent_id \
             WHERE l.child_id = ?1 AND p.status NOT IN ('done', 'archived') ORDER BY p.id",
        )?;
        let rows = st.query_map([task_id], |r| {
            Ok((
                r.get::<_, String>(0)?,
                super::row::status_of(&r.get::<_, String>(1)?),
            ))
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Every parent is done or archived (true without parents).
    pub(crate) fn parents_satisfied(&self, task_id: &str) -> DbResult<bool> {
        let pending: Option<i64> = self
            .conn
            .prepare_cached(
                "SELECT 1 FROM task_links l JOIN tasks p ON p.id = l.parent_id \
                 WHERE l.child_id = ?1 AND p.status NOT IN ('done', 'archived') LIMIT 1",
            )?
            .query_row([task_id], |r| r.get(0))
            .optional()?;
        Ok(pending.is_none())
    }

    /// Whether `run` was claimed from the review column: its `claimed`
    /// event says `source_status: review` (the reference's
    /// `claim_review_task` writes it the same way).
    pub(crate) fn is_review_run(&self, task_id: &str, run: Option<i64>) -> DbResult<bool> {
        let Some(run) = run else {
            return Ok(false);
        };
        let text: Option<Option<String>> = self
            .conn
            .prepare_cached(
                "SELECT payload FROM task_events WHERE run_id = ?1 AND task_id = ?2 \
                 AND kind = 'claimed' ORDER BY id DESC LIMIT 1",
            )?
            .query_row(params![run, task_id], |r| r.get(0))
            .optional()?;
        Ok(text
            .flatten()
            .and_then(|t| serde_json::from_str::<Value>(&t).ok())
            .is_some_and(|p| is_review_claim(&p)))
    }

    /// What `transitions::decide` needs to know about `task`.
    pub(crate) fn facts(&self, task: &Task) -> DbResult<TaskFacts> {
        Ok(facts_of(task, self.parents_satisfied(&task.id)?))
    }

    /// Child ids of a task.
    pub(crate) fn children(&self, task_id: &str) -> DbResult<Vec<String>> {
        let mut st = self.conn.prepare_cached(
            "SELECT child_id FROM task_links WHERE parent_id = ?1 ORDER BY child_id",
        )?;
        let rows = st.query_map([task_id], |r| r.get::<_, String>(0))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }
}

/// The facts of `task` for `transitions::decide`, its parents' state
/// already known.
pub(crate) fn facts_of(task: &Task, parents_satisfied: bool) -> TaskFacts {
    TaskFacts {
        status: task.status,
        parents_satisfied,
        claimed: task.claim_lock.is_some(),
        open_run: task.current_run_id.is_some(),
        block_kind: task
            .block_kind
            .as_deref()
            .and_then(|k| k.parse::<BlockKind>().ok()),
        block_recurrences: task.block_recurrences,
    }
}

/// `SELECT <all columns> FROM tasks WHERE id = ?`.
pub(crate) fn load_task(conn: &Connection, id: &str) -> DbResult<Option<Task>> {
    let sql = format!("SELECT {TASK_COLUMNS} FROM tasks WHERE id = ?1");
    Ok(conn
        .prepare_cached(&sql)?
        .query_row([id], task_from_row)
        .optional()?)
}

impl SqliteStore {
    /// Current time of the store's clock (integer Unix seconds).
    pub(crate) fn now(&self) -> i64 {
        self.clock.now()
    }

    /// The connection, outside any transaction unless `keep_shared_read`
    /// and the open one is this thread's shared read transaction.
    fn lock_conn(&self, keep_shared_read: bool) -> std::sync::MutexGuard<'_, Connection> {
        // A panic while holding the lock leaves SQLite itself consistent
        // (the transaction is rolled back below or on the next BEGIN), so a
        // poisoned mutex is safe to keep using.
        let conn = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        let keep = conn.is_autocommit() || (keep_shared_read && only_reading(&conn));
        if !keep {
            // A panic inside a transaction closure leaves one open, and a
            // read scope its read-only one: ending that loses nothing.
            rollback(&conn);
        }
        conn
    }

    /// Run one read-only statement (or reads that need no common snapshot)
    /// on the connection. A single statement always sees one snapshot.
    pub(crate) fn read<T>(&self, f: impl FnOnce(&Connection) -> DbResult<T>) -> Result<T> {
        if self.in_read_scope() {
            return self.shared_read(f);
        }
        let conn = self.lock_conn(false);
        f(&conn).map_err(|e| self.classify(e))
    }

    /// Let this thread's reads share one read transaction until the guard
    /// drops (see `DispatchStore::read_scope`): one read lock instead of
    /// one per statement. A write ends it first, and so does a read of
    /// another thread (it must not see an old snapshot).
    pub(crate) fn begin_read_scope(&self) -> crate::dispatch_ops::ReadScope<'_> {
        let outer = READ_SCOPE.replace(self.scope_key());
        crate::dispatch_ops::ReadScope::new(move || {
            READ_SCOPE.set(outer);
            drop(self.lock_conn(false));
        })
    }

    fn scope_key(&self) -> usize {
        std::ptr::from_ref(self) as usize
    }

    fn in_read_scope(&self) -> bool {
        READ_SCOPE.get() == self.scope_key()
    }

    /// `f` inside this thread's shared read transaction, begun if needed.
    fn shared_read<T>(&self, f: impl FnOnce(&Connection) -> DbResult<T>) -> Result<T> {
        let conn = self.lock_conn(true);
        let out = if conn.is_autocommit() {
            conn.prepare_cached("BEGIN")
                .and_then(|mut st| st.execute([]))
                .map_err(DbError::from)
                .and_then(|_| f(&conn))
        } else {
            f(&conn)
        };
        drop(conn);
        out.map_err(|e| self.classify(e))
    }

    /// Run several read-only statements in one deferred read transaction,
    /// so a read made of several queries (card facts, stats) sees one
    /// snapshot, never half of a concurrent commit (the store's
    /// concurrency contract). Costs two cached statements more than
    /// [`SqliteStore::read`], which the hot single-query reads avoid.
    pub(crate) fn read_snapshot<T>(&self, f: impl FnOnce(&Connection) -> DbResult<T>) -> Result<T> {
        if self.in_read_scope() {
            return self.shared_read(f);
        }
        let conn = self.lock_conn(false);
        let out = read_txn(&conn, f);
        drop(conn);
        out.map_err(|e| self.classify(e))
    }

    /// The connection without a transaction around `f`, for tests that
    /// drive `open`/`migrate` (which open their own) on a live store.
    #[cfg(test)]
    pub(crate) fn raw<T>(&self, f: impl FnOnce(&Connection) -> DbResult<T>) -> Result<T> {
        let conn = self.lock_conn(false);
        f(&conn).map_err(|e| self.classify(e))
    }

    /// Run `f` in one `BEGIN IMMEDIATE` transaction: commit on `Ok`,
    /// roll back on `Err`. Every state change of the board goes through here.
    pub(crate) fn write<T>(&self, f: impl FnOnce(&Tx<'_>) -> DbResult<T>) -> Result<T> {
        // Ends a shared read transaction: the write sees the latest state.
        let conn = self.lock_conn(false);
        let out = write_txn(&conn, self.now(), f);
        drop(conn);
        if out.is_ok() {
            // Committed: a running gateway looks at once (never blocks).
            self.poker.poke();
        }
        out.map_err(|e| self.classify(e))
    }

    /// Turn a backend error into the public one, quarantining a corrupt file.
    pub(crate) fn classify(&self, e: DbError) -> StoreError {
        match e {
            DbError::Store(s) => s,
            DbError::Sql(e) if is_corrupt(&e) => corrupt_error(&self.path, &e.to_string()),
            DbError::Sql(e) if is_busy(&e) => StoreError::Busy(e.to_string()),
            DbError::Sql(e) => StoreError::backend(e),
        }
    }
}

thread_local! {
    // The store (by address) whose reads on this thread share one read
    // transaction (`SqliteStore::begin_read_scope`); 0 = none.
    static READ_SCOPE: Cell<usize> = const { Cell::new(0) };
}

/// The open transaction has only read (a shared read one, begun or not).
fn only_reading(conn: &Connection) -> bool {
    matches!(
        conn.transaction_state(None::<&str>),
        Ok(TransactionState::None | TransactionState::Read)
    )
}

fn rollback(conn: &Connection) {
    if conn
        .prepare_cached("ROLLBACK")
        .and_then(|mut st| st.execute([]))
        .is_err()
    {
        let _ = conn.execute_batch("ROLLBACK");
    }
}

/// A read transaction on a bare connection. `BEGIN` (deferred) takes no
/// lock until the first query, and the snapshot it then pins lasts until
/// `COMMIT`; the statements are cached, so a read pays two cheap steps.
fn read_txn<T>(conn: &Connection, f: impl FnOnce(&Connection) -> DbResult<T>) -> DbResult<T> {
    conn.prepare_cached("BEGIN")?.execute([])?;
    let out = f(conn);
    // Ending a read transaction cannot lose data; if COMMIT fails, roll
    // back so the connection is usable for the next one.
    if conn
        .prepare_cached("COMMIT")
        .and_then(|mut c| c.execute([]))
        .is_err()
    {
        let _ = conn.execute_batch("ROLLBACK");
    }
    out
}

/// The transaction itself, usable on a bare connection (open/migrate).
pub(crate) fn write_txn<T>(
    conn: &Connection,
    now: i64,
    f: impl FnOnce(&Tx<'_>) -> DbResult<T>,
) -> DbResult<T> {
    boundary_with_retry(conn, "BEGIN IMMEDIATE")?;
    let tx = Tx { conn, now };
    match f(&tx) {
        Ok(v) => match boundary_with_retry(conn, "COMMIT") {
            Ok(()) => Ok(v),
            Err(e) => {
                // Leave the connection usable for the next BEGIN.
                let _ = conn.execute_batch("ROLLBACK");
                Err(e.into())
            }
        },
        Err(e) => {
            // SQLite may already have rolled back (I/O error, corruption);
            // a failing ROLLBACK must not hide the real error.
            let _ = conn.execute_batch("ROLLBACK");
            Err(e)
        }
    }
}

#[cfg(test)]
mod read_scope_tests {
    use std::sync::Arc;

    use super::super::{OpenOptions, SqliteStore};
    use crate::clock::ManualClock;
    use crate::{NewTask, Store};

    fn store_at(path: &std::path::Path) -> SqliteStore {
        SqliteStore::open(
            path,
            OpenOptions::create(),
            Arc::new(ManualClock::new(1_700_000_000)),
        )
        .unwrap()
    }

    fn count(s: &SqliteStore) -> i64 {
        s.read(|c| Ok(c.query_row("SELECT COUNT(*) FROM tasks", [], |r| r.get(0))?))
            .unwrap()
    }

    fn in_txn(s: &SqliteStore) -> bool {
        s.conn
            .lock()
            .unwrap()
            .is_autocommit()
            .then_some(())
            .is_none()
    }

    fn task(title: &str) -> NewTask {
        NewTask {
            title: title.into(),
            ..Default::default()
        }
    }

    #[test]
    fn scoped_reads_share_a_snapshot_until_a_write_or_the_end() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kanban.db");
        let ours = store_at(&path);
        let other = store_at(&path);
        let scope = ours.begin_read_scope();
        assert_eq!(count(&ours), 0);
        assert!(in_txn(&ours), "the scope keeps its read transaction");
        other.create_task(&task("elsewhere")).unwrap();
        assert_eq!(count(&ours), 0, "one snapshot for the scope's reads");
        // Another thread reads the latest state, ending the shared one.
        std::thread::scope(|t| {
            t.spawn(|| assert_eq!(count(&ours), 1)).join().unwrap();
        });
        assert_eq!(count(&ours), 1);
        other.create_task(&task("again")).unwrap();
        // Our own write sees the latest state, and so do the reads after it.
        ours.create_task(&task("ours")).unwrap();
        assert_eq!(count(&ours), 3);
        other.create_task(&task("and again")).unwrap();
        assert_eq!(count(&ours), 3);
        drop(scope);
        assert!(!in_txn(&ours), "the scope's end ends its transaction");
        assert_eq!(count(&ours), 4);
    }

    #[test]
    fn a_write_left_open_by_a_panic_is_rolled_back_in_a_scope() {
        let dir = tempfile::tempdir().unwrap();
        let s = store_at(&dir.path().join("kanban.db"));
        let _scope = s.begin_read_scope();
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let _ = s.write(|tx| -> super::DbResult<()> {
                tx.conn
                    .execute_batch("INSERT INTO tasks (id, title, status, created_at) VALUES ('t_x', 'x', 'todo', 0)")?;
                panic!("boom");
            });
        }));
        assert!(r.is_err());
        assert_eq!(count(&s), 0, "the half-done write is not read");
    }
}
