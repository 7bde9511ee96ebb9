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
use std::time::{Duration, Instant};

use kanban_core::defaults::BUSY_TIMEOUT_MS;
use rusqlite::{Connection, OpenFlags, OptionalExtension};
use sha2::{Digest, Sha256};

use super::OpenOptions;
use super::schema::*;
use super::txn::{DbError, DbResult, is_busy, is_corrupt, write_txn};
use crate::{Result, StoreError};

/// First 16 bytes of every SQLite 3 database file.
pub(crate) const SQLITE_HEADER: &[u8; 16] = b"SQLite format 3\0";
/// Bounded wait for `<db>.init.lock` before proceeding without it (the
/// migration is idempotent, so a wedged holder must not block us forever).
pub(crate) const INIT_LOCK_TIMEOUT: Duration = Duration::from_secs(10);
pub(crate) const INIT_LOCK_POLL: Duration = Duration::from_millis(50);
/// Environment override of the busy timeout.
pub(crate) const BUSY_TIMEOUT_ENV: &str = "HERMES_KANBAN_BUSY_TIMEOUT_MS";
/// Prepared statements kept per connection.
const STATEMENT_CACHE: usize = 64;
/// Journal-mode errors that mean "this filesystem cannot do WAL".
const WAL_INCOMPAT_MARKERS: &[&str] = &["locking protocol", "not authorized"];

/// Per-connection pragmas (reference §1.1); none of them writes the file.
const SESSION_PRAGMAS: &str = "PRAGMA synchronous=FULL; PRAGMA wal_autocheckpoint=100; \
     PRAGMA foreign_keys=ON; PRAGMA secure_delete=ON; PRAGMA cell_size_check=ON;";

/// Busy timeout: explicit option › `HERMES_KANBAN_BUSY_TIMEOUT_MS` (> 0) › default.
pub(crate) fn busy_timeout_ms(opts: &OpenOptions) -> u64 {
    opts.busy_timeout_ms
        .filter(|ms| *ms > 0)
        .unwrap_or_else(|| {
            std::env::var(BUSY_TIMEOUT_ENV)
                .ok()
                .and_then(|v| v.trim().parse::<u64>().ok())
                .filter(|ms| *ms > 0)
                .unwrap_or(BUSY_TIMEOUT_MS)
        })
}

fn sidecar(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_os_string();
    s.push(suffix);
    PathBuf::from(s)
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

fn sql_err(path: &Path, e: rusqlite::Error) -> StoreError {
    if is_corrupt(&e) {
        corrupt_error(path, &e.to_string())
    } else if is_busy(&e) {
        StoreError::Busy(e.to_string())
    } else {
        StoreError::Backend(format!("{}: {e}", path.display()))
    }
}

pub(crate) fn connect(path: &Path, busy_ms: u64) -> Result<Connection> {
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
        | OpenFlags::SQLITE_OPEN_CREATE
        | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags).map_err(|e| sql_err(path, e))?;
    conn.busy_timeout(Duration::from_millis(busy_ms))
        .map_err(|e| sql_err(path, e))?;
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

/// Copy the corrupt file (and its `-wal`/`-shm`) to a content-addressed
/// `<db>.corrupt.<sha256[:16]>.bak` next to it, then describe the refusal.
/// Repeated failures on the same bytes reuse one backup.
pub(crate) fn corrupt_error(path: &Path, detail: &str) -> StoreError {
    match backup_corrupt(path) {
        Ok(backup) => StoreError::Corrupt {
            path: path.to_path_buf(),
            backup,
            detail: detail.to_string(),
        },
        Err(e) => StoreError::io(
            format!(
                "{}: database is corrupt ({detail}) and could not be backed up; the original was left untouched",
                path.display()
            ),
            e,
        ),
    }
}

fn backup_corrupt(path: &Path) -> std::io::Result<PathBuf> {
    let mut file = File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    let digest = hex::encode(hasher.finalize());
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let backup = path.with_file_name(format!("{name}.corrupt.{}.bak", &digest[..16]));
    if !backup.exists() {
        std::fs::copy(path, &backup)?;
    }
    for suffix in ["-wal", "-shm"] {
        let side = sidecar(path, suffix);
        let side_backup = sidecar(&backup, suffix);
        if side.exists() && !side_backup.exists() {
            // Best effort, like the reference: the main copy is what matters.
            let _ = std::fs::copy(&side, &side_backup);
        }
    }
    Ok(backup)
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
    std::os::unix::fs::DirBuilderExt::mode(&mut b, 0o700);
    b.create(dir)
        .map_err(|e| StoreError::io(format!("cannot create {}", dir.display()), e))
}

/// Create the (empty) database file with mode 0600 before SQLite opens it;
/// SQLite gives its `-wal`/`-shm` files the same mode.
fn create_private_file(path: &Path) -> Result<()> {
    let mut o = std::fs::OpenOptions::new();
    o.write(true).create(true).truncate(false);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut o, 0o600);
    o.open(path)
        .map(drop)
        .map_err(|e| StoreError::io(format!("cannot create {}", path.display()), e))
}

/// `<db>.init.lock`, the same flock the reference takes around first-open
/// work, so Python and Rust processes never migrate a board concurrently.
struct InitLock {
    file: Option<File>,
}

impl InitLock {
    fn acquire(db: &Path) -> Result<InitLock> {
        let lock_path = sidecar(db, ".init.lock");
        let mut o = std::fs::OpenOptions::new();
        o.read(true).append(true).create(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut o, 0o600);
        let file = o
            .open(&lock_path)
            .map_err(|e| StoreError::io(format!("cannot open {}", lock_path.display()), e))?;
        let deadline = Instant::now() + INIT_LOCK_TIMEOUT;
        loop {
            match fs4::FileExt::try_lock(&file) {
                Ok(()) => return Ok(InitLock { file: Some(file) }),
                Err(_) if Instant::now() < deadline => std::thread::sleep(INIT_LOCK_POLL),
                Err(e) => {
                    tracing::warn!(
                        lock = %lock_path.display(),
                        error = %e,
                        "init lock not acquired within {}s; proceeding without it (migration is idempotent)",
                        INIT_LOCK_TIMEOUT.as_secs()
                    );
                    return Ok(InitLock { file: None });
                }
            }
        }
    }
}

impl Drop for InitLock {
    fn drop(&mut self) {
        if let Some(f) = self.file.take() {
            let _ = fs4::FileExt::unlock(&f);
        }
    }
}

fn table_columns(conn: &Connection, table: &str) -> rusqlite::Result<Vec<(String, String, bool)>> {
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
