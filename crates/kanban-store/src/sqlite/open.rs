//! Opening a board file: private directories and file modes, the
//! cross-process init lock, header check, integrity check, pragmas and the
//! idempotent migration pass (reference §1.5).
//!
//! A healthy, up-to-date board takes the fast path: a 16-byte header read,
//! the per-connection pragmas and one `kanban_rs_meta` lookup. The init
//! lock, the integrity check and the migration pass run only when the file
//! is new, was last migrated by an older version of ours (or only by the
//! Python implementation), or SQLite reports corruption.

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Duration;

use kanban_core::defaults::BUSY_TIMEOUT_MS;
use rusqlite::{Connection, OpenFlags, OptionalExtension};

use super::OpenOptions;
use super::busy::wait_when_busy;
use super::corrupt::{corrupt_error, sidecar};
pub(crate) use super::migrate::migrate;
use super::migrate::table_columns;
use super::schema::*;
use super::txn::{DbError, is_busy, is_corrupt};
use crate::lockfile::FileLock;
use crate::private_fs::{PRIVATE_DIR_MODE, PRIVATE_FILE_MODE};
use crate::{BackendError, Result, StoreError};

/// First 16 bytes of every SQLite 3 database file.
pub(crate) const SQLITE_HEADER: &[u8; 16] = b"SQLite format 3\0";
/// Bounded wait for `<db>.init.lock` before proceeding without it (the
/// migration is idempotent, so a wedged holder must not block us forever).
pub(crate) const INIT_LOCK_TIMEOUT: Duration = Duration::from_secs(10);
pub(crate) const INIT_LOCK_POLL: Duration = Duration::from_millis(50);
/// Prepared statements kept per connection.
const STATEMENT_CACHE: usize = 64;
/// Journal-mode errors that mean "this filesystem cannot do WAL".
const WAL_INCOMPAT_MARKERS: &[&str] = &["locking protocol", "not authorized"];

/// Per-connection pragmas (reference §1.1); none of them writes the file.
const SESSION_PRAGMAS: &str = "PRAGMA synchronous=FULL; PRAGMA wal_autocheckpoint=100; \
     PRAGMA foreign_keys=ON; PRAGMA secure_delete=ON; PRAGMA cell_size_check=ON;";

/// Busy timeout: a positive option, else the default. The store reads no
/// environment: adapters resolve `HERMES_KANBAN_BUSY_TIMEOUT_MS` and pass
/// it in [`OpenOptions::busy_timeout_ms`].
pub(crate) fn busy_timeout_ms(opts: &OpenOptions) -> u64 {
    opts.busy_timeout_ms
        .filter(|ms| *ms > 0)
        .unwrap_or(BUSY_TIMEOUT_MS)
}

/// Boards whose header this process has verified. POSIX record locks are
/// per process and per file: closing ANY descriptor of the database file
/// silently drops every lock SQLite holds on it through other connections.
/// So once a board is open in this process we never read it with a plain
/// file handle again, and first opens of one path are serialised.
static VERIFIED_BOARDS: std::sync::Mutex<Vec<PathBuf>> = std::sync::Mutex::new(Vec::new());

/// Open (creating and migrating when needed) the board at `path`.
pub(crate) fn open_board(path: &Path, opts: &OpenOptions, now: i64) -> Result<Connection> {
    let key = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    let mut verified = VERIFIED_BOARDS.lock().unwrap_or_else(|p| p.into_inner());
    if verified.contains(&key) {
        drop(verified);
        let busy = busy_timeout_ms(opts);
        if let Some(conn) = fast_open(path, busy)? {
            return Ok(conn);
        }
        return slow_open(path, busy, now, false);
    }
    // Held across the first open so no other thread has a connection to
    // this file while we read its header with a plain descriptor.
    let conn = first_open(path, opts, now)?;
    let key = std::fs::canonicalize(path).unwrap_or(key);
    verified.push(key);
    Ok(conn)
}

fn first_open(path: &Path, opts: &OpenOptions, now: i64) -> Result<Connection> {
    let busy = busy_timeout_ms(opts);
    let len = match std::fs::metadata(path) {
        Ok(m) if m.is_dir() => {
            return Err(StoreError::invalid(format!(
                "{} is a directory, not a board database",
                path.display()
            )));
        }
        Ok(m) => Some(m.len()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(StoreError::io(format!("cannot read {}", path.display()), e)),
    };
    match len {
        None if !opts.create => {
            return Err(StoreError::io(
                format!("no board database at {}", path.display()),
                std::io::Error::from(std::io::ErrorKind::NotFound),
            ));
        }
        None => {
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                create_private_dirs(dir)?;
            }
        }
        Some(n) if n > 0 => {
            check_header(path)?;
            if let Some(conn) = fast_open(path, busy)? {
                return Ok(conn);
            }
        }
        Some(_) => {}
    }
    slow_open(path, busy, now, true)
}

/// Healthy, already-migrated board: pragmas + one meta lookup, no lock.
fn fast_open(path: &Path, busy: u64) -> Result<Option<Connection>> {
    let conn = connect(path, busy)?;
    let version: Option<String> = match conn
        .query_row(META_VERSION_QUERY, [], |r| r.get(0))
        .optional()
    {
        Ok(v) => v,
        Err(e) if is_corrupt(&e) => return Err(corrupt_error(path, &e.to_string())),
        Err(e) if is_busy(&e) => return Err(StoreError::Busy(e.to_string())),
        // No meta table yet (a Python-only or brand-new board): migrate.
        Err(_) => None,
    };
    // A newer version of ours migrated it already: never downgrade the mark.
    if version
        .and_then(|v| v.parse::<i64>().ok())
        .is_some_and(|v| v >= SCHEMA_VERSION)
    {
        apply_session_pragmas(&conn).map_err(|e| sql_err(path, e))?;
        Ok(Some(conn))
    } else {
        Ok(None)
    }
}

/// New or not-yet-migrated board, under the cross-process init lock.
/// `raw_reads_allowed` is false when this process may already hold a
/// connection to the file (see [`VERIFIED_BOARDS`]).
fn slow_open(path: &Path, busy: u64, now: i64, raw_reads_allowed: bool) -> Result<Connection> {
    // Before the lock file: refusing another program's database must add
    // nothing next to it either.
    if std::fs::metadata(path).is_ok_and(|m| m.len() > 0) {
        refuse_foreign(path, busy)?;
    }
    let _lock = InitLock::acquire(path)?;
    let created = match std::fs::metadata(path) {
        Ok(m) if m.len() > 0 => {
            if raw_reads_allowed {
                check_header(path)?;
            }
            integrity_check(path, busy)?;
            false
        }
        Ok(_) => false,
        Err(_) => {
            create_private_file(path)?;
            true
        }
    };
    let conn = connect(path, busy)?;
    set_wal(&conn, path).map_err(|e| sql_err(path, e))?;
    apply_session_pragmas(&conn).map_err(|e| sql_err(path, e))?;
    migrate(&conn, now).map_err(|e| match e {
        DbError::Store(s) => s,
        DbError::Sql(e) => sql_err(path, e),
    })?;
    if created {
        tracing::debug!(path = %path.display(), "created board database");
    }
    Ok(conn)
}

/// Columns every version of the reference's `tasks` table has: a SQLite
/// file is a kanban board when its `tasks` table has them.
const KANBAN_TASK_COLUMNS: [&str; 3] = ["id", "title", "status"];
/// Table names quoted in a refusal, at most.
const FOREIGN_TABLES_SHOWN: usize = 8;

/// Refuse a SQLite file that holds tables but no kanban schema (another
/// program's database): the migration would add our tables to it. A file
/// without tables is a new board and is initialised, as the reference does.
/// Read-only; errors other than busy are left to the integrity check.
fn refuse_foreign(path: &Path, busy: u64) -> Result<()> {
    let conn = connect(path, busy)?;
    let tables: Vec<String> = match conn
        .prepare(
            "SELECT name FROM sqlite_master WHERE type = 'table' \
             AND name NOT LIKE 'sqlite_%' ORDER BY name",
        )
        .and_then(|mut st| st.query_map([], |r| r.get(0))?.collect())
    {
        Ok(t) => t,
        Err(e) if is_busy(&e) => return Err(StoreError::Busy(e.to_string())),
        Err(_) => return Ok(()),
    };
    if tables.is_empty() {
        return Ok(());
    }
    if !tables.iter().any(|t| t == "tasks") {
        return Err(foreign_error(path, &tables));
    }
    let cols: Vec<String> = match table_columns(&conn, "tasks") {
        Ok(c) => c.into_iter().map(|c| c.0).collect(),
        Err(e) if is_busy(&e) => return Err(StoreError::Busy(e.to_string())),
        Err(_) => return Ok(()),
    };
    if KANBAN_TASK_COLUMNS
        .iter()
        .all(|c| cols.iter().any(|have| have == c))
    {
        Ok(())
    } else {
        Err(foreign_error(path, &tables))
    }
}

fn foreign_error(path: &Path, tables: &[String]) -> StoreError {
    let mut shown: Vec<&str> = tables
        .iter()
        .take(FOREIGN_TABLES_SHOWN)
        .map(String::as_str)
        .collect();
    if tables.len() > FOREIGN_TABLES_SHOWN {
        shown.push("...");
    }
    StoreError::NotADatabase {
        path: path.to_path_buf(),
        detail: format!(
            "not a kanban board: it is a SQLite database of another program (tables: {}) \
             without the kanban schema; the file was left untouched. Point \
             HERMES_KANBAN_DB, HERMES_KANBAN_HOME or --board at a kanban board",
            shown.join(", ")
        ),
    }
}

fn sql_err(path: &Path, e: rusqlite::Error) -> StoreError {
    if is_corrupt(&e) {
        corrupt_error(path, &e.to_string())
    } else if is_busy(&e) {
        StoreError::Busy(e.to_string())
    } else {
        StoreError::Backend(BackendError::context(path.display().to_string(), e))
    }
}

pub(crate) fn connect(path: &Path, busy_ms: u64) -> Result<Connection> {
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
        | OpenFlags::SQLITE_OPEN_CREATE
        | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let mut conn = Connection::open_with_flags(path, flags).map_err(|e| sql_err(path, e))?;
    wait_when_busy(&mut conn, Duration::from_millis(busy_ms)).map_err(|e| sql_err(path, e))?;
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    // Never checkpoint-and-delete the WAL when this connection closes: the
    // Python reference drops its own POSIX locks after every commit (it
    // re-opens the file to check its size), so our close could otherwise
    // believe we are the last user and remove a WAL its writers still use.
    conn.set_db_config(
        rusqlite::config::DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE,
        true,
    )
    .map_err(|e| sql_err(path, e))?;
    // One plan per statement whatever its bound values: SQLite otherwise
    // marks a statement with `LIMIT ?` to be compiled again at every new
    // binding, so each use of a cached one parsed and planned its SQL anew
    // (a tenth of a busy gateway's pass thread).
    conn.set_db_config(
        rusqlite::config::DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG,
        true,
    )
    .map_err(|e| sql_err(path, e))?;
    Ok(conn)
}

/// One more connection to a board this process has open already (no
/// checks, no migration): the session pragmas and `busy_ms` of its own.
pub(crate) fn extra_connection(path: &Path, busy_ms: u64) -> Result<Connection> {
    let conn = connect(path, busy_ms)?;
    apply_session_pragmas(&conn).map_err(|e| sql_err(path, e))?;
    Ok(conn)
}

fn apply_session_pragmas(conn: &Connection) -> rusqlite::Result<()> {
    conn.execute_batch(SESSION_PRAGMAS)
}

/// WAL, falling back to DELETE (one warning) where the filesystem refuses
/// it; never downgrades a file that is already in WAL mode.
fn set_wal(conn: &Connection, path: &Path) -> rusqlite::Result<()> {
    let current: String = conn.query_row("PRAGMA journal_mode", [], |r| r.get(0))?;
    if current.eq_ignore_ascii_case("wal") {
        return Ok(());
    }
    match conn.query_row("PRAGMA journal_mode=WAL", [], |r| r.get::<_, String>(0)) {
        Ok(mode) if mode.eq_ignore_ascii_case("wal") => Ok(()),
        Ok(mode) => {
            tracing::warn!(path = %path.display(), %mode, "kanban.db: WAL refused by the filesystem; using DELETE journal mode");
            conn.query_row("PRAGMA journal_mode=DELETE", [], |_| Ok(()))
        }
        Err(e) => {
            let msg = e.to_string().to_lowercase();
            if !WAL_INCOMPAT_MARKERS.iter().any(|m| msg.contains(m)) {
                return Err(e);
            }
            tracing::warn!(path = %path.display(), error = %e, "kanban.db: WAL not supported here; falling back to DELETE journal mode");
            conn.query_row("PRAGMA journal_mode=DELETE", [], |_| Ok(()))
        }
    }
}

/// Refuse a non-empty file that does not start with the SQLite magic.
pub(crate) fn check_header(path: &Path) -> Result<()> {
    let mut head = Vec::with_capacity(64);
    let file = File::open(path)
        .map_err(|e| StoreError::io(format!("cannot read {}", path.display()), e))?;
    file.take(64)
        .read_to_end(&mut head)
        .map_err(|e| StoreError::io(format!("cannot read {}", path.display()), e))?;
    if head.is_empty() || head.starts_with(SQLITE_HEADER) {
        return Ok(());
    }
    let tls = if head.starts_with(b"SQLit") && looks_like_tls_record(&head, 5) {
        " (TLS record header detected at byte offset 5)"
    } else if looks_like_tls_record(&head, 0) {
        " (TLS record header detected at byte offset 0)"
    } else {
        ""
    };
    let hex: Vec<String> = head.iter().take(32).map(|b| format!("{b:02x}")).collect();
    Err(StoreError::NotADatabase {
        path: path.to_path_buf(),
        detail: format!(
            "invalid SQLite header{tls}; first_32={}; the file was left untouched",
            hex.join(" ")
        ),
    })
}

fn looks_like_tls_record(data: &[u8], offset: usize) -> bool {
    if data.len() < offset + 5 {
        return false;
    }
    let len = u16::from_be_bytes([data[offset + 3], data[offset + 4]]);
    matches!(data[offset], 0x14..=0x17)
        && data[offset + 1] == 0x03
        && data[offset + 2] <= 0x04
        && len > 0
        && len <= 18_432
}

/// `PRAGMA integrity_check` on a separate probe connection. Busy/locked
/// propagates as `Busy` (no backup); anything else that is not `ok`
/// quarantines the file.
fn integrity_check(path: &Path, busy: u64) -> Result<()> {
    let probe = connect(path, busy)?;
    let verdict = probe.query_row("PRAGMA integrity_check", [], |r| {
        r.get::<_, Option<String>>(0)
    });
    drop(probe);
    match verdict {
        Ok(Some(v)) if v.eq_ignore_ascii_case("ok") => Ok(()),
        Ok(v) => Err(corrupt_error(
            path,
            &format!(
                "integrity_check returned {:?}",
                v.unwrap_or_else(|| "<no row>".into())
            ),
        )),
        Err(e) if is_busy(&e) => Err(StoreError::Busy(e.to_string())),
        Err(e) => Err(corrupt_error(
            path,
            &format!("sqlite refused to open file: {e}"),
        )),
    }
}

/// Create missing directories with mode 0700; existing ones are left as
/// they are (they may be shared, e.g. `/tmp`).
fn create_private_dirs(dir: &Path) -> Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    let mut b = std::fs::DirBuilder::new();
    b.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut b, PRIVATE_DIR_MODE);
    b.create(dir)
        .map_err(|e| StoreError::io(format!("cannot create {}", dir.display()), e))
}

/// Create the (empty) database file with mode 0600 before SQLite opens it;
/// SQLite gives its `-wal`/`-shm` files the same mode.
fn create_private_file(path: &Path) -> Result<()> {
    let mut o = std::fs::OpenOptions::new();
    o.write(true).create(true).truncate(false);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut o, PRIVATE_FILE_MODE);
    o.open(path)
        .map(drop)
        .map_err(|e| StoreError::io(format!("cannot create {}", path.display()), e))
}

/// `<db>.init.lock`, the same flock the reference takes around first-open
/// work, so Python and Rust processes never migrate a board concurrently.
/// Released when dropped.
struct InitLock {
    /// `None` when it was not acquired in time.
    _held: Option<FileLock>,
}

impl InitLock {
    fn acquire(db: &Path) -> Result<InitLock> {
        let lock_path = sidecar(db, ".init.lock");
        let held = FileLock::acquire_within(
            &lock_path,
            PRIVATE_FILE_MODE,
            INIT_LOCK_TIMEOUT,
            INIT_LOCK_POLL,
        )
        .map_err(|e| StoreError::io(format!("cannot open {}", lock_path.display()), e))?;
        match held {
            Ok(lock) => Ok(InitLock { _held: Some(lock) }),
            Err(e) => {
                tracing::warn!(
                    lock = %lock_path.display(),
                    error = %e,
                    "init lock not acquired within {}s; proceeding without it (migration is idempotent)",
                    INIT_LOCK_TIMEOUT.as_secs()
                );
                Ok(InitLock { _held: None })
            }
        }
    }
}
