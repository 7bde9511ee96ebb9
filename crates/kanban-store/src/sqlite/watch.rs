//! [`ChangeProbe`] for SQLite: `PRAGMA data_version` on a dedicated
//! connection.
//!
//! SQLite bumps `data_version` for commits made by *other* connections
//! only, so the probe never shares the store's own connection: with its own
//! connection it sees the store's writes, the CLI's, workers' and the Python
//! implementation's alike. The pragma reads the WAL index in shared memory
//! (no table, no page read), cheap enough to ask every few milliseconds.

use std::path::Path;

use super::SqliteStore;
use kanban_core::defaults::BUSY_TIMEOUT_MS;

use super::open::connect;
use super::txn::is_busy;
use crate::watch::ChangeProbe;
use crate::{BackendError, Result, StoreError};

const DATA_VERSION_QUERY: &str = "PRAGMA data_version";

/// Change probe of one SQLite board file.
pub struct SqliteChangeProbe {
    conn: rusqlite::Connection,
    path: std::path::PathBuf,
}

impl std::fmt::Debug for SqliteChangeProbe {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteChangeProbe")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl SqliteChangeProbe {
    /// Probe the existing board at `path` (never creates or migrates it),
    /// with the default busy timeout.
    pub fn open(path: &Path) -> Result<SqliteChangeProbe> {
        SqliteChangeProbe::open_with(path, BUSY_TIMEOUT_MS)
    }

    /// [`SqliteChangeProbe::open`] with this busy timeout (milliseconds).
    pub fn open_with(path: &Path, busy_timeout_ms: u64) -> Result<SqliteChangeProbe> {
        if !path.exists() {
            return Err(StoreError::io(
                format!("no board database at {}", path.display()),
                std::io::Error::from(std::io::ErrorKind::NotFound),
            ));
        }
        let conn = connect(path, busy_timeout_ms)?;
        Ok(SqliteChangeProbe {
            conn,
            path: path.to_path_buf(),
        })
    }
}

impl ChangeProbe for SqliteChangeProbe {
    fn version(&mut self) -> Result<u64> {
        let v: i64 = self
            .conn
            .query_row(DATA_VERSION_QUERY, [], |r| r.get(0))
            .map_err(|e| probe_err(&self.path, e))?;
        Ok(v as u64)
    }
}

fn probe_err(path: &Path, e: rusqlite::Error) -> StoreError {
    if is_busy(&e) {
        StoreError::Busy(e.to_string())
    } else {
        StoreError::Backend(BackendError::context(path.display().to_string(), e))
    }
}

impl SqliteStore {
    /// A probe on its own connection that sees every commit to this board,
    /// including the ones made through this store.
    pub fn change_probe(&self) -> Result<SqliteChangeProbe> {
        SqliteChangeProbe::open_with(self.path(), self.busy_timeout_ms)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::sqlite::OpenOptions;
    use crate::{NewTask, Store, SystemClock};

    #[test]
    fn probe_sees_writes_through_the_store_and_other_connections() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("kanban.db");
        let store = SqliteStore::open(&db, OpenOptions::create(), Arc::new(SystemClock)).unwrap();
        let mut probe = store.change_probe().unwrap();
        let v0 = probe.version().unwrap();
        assert_eq!(probe.version().unwrap(), v0, "no write, no change");
        store
            .create_task(&NewTask {
                title: "a".into(),
                ..Default::default()
            })
            .unwrap();
        let v1 = probe.version().unwrap();
        assert_ne!(v1, v0, "a write through the store is seen");
        let other = SqliteStore::open(&db, OpenOptions::default(), Arc::new(SystemClock)).unwrap();
        other
            .create_task(&NewTask {
                title: "b".into(),
                ..Default::default()
            })
            .unwrap();
        assert_ne!(
            probe.version().unwrap(),
            v1,
            "a write by another connection is seen"
        );
    }
}
