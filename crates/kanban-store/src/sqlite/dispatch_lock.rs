//! The SQLite board's dispatch lock: an exclusive, non-blocking `flock` on
//! `<db>.dispatch.lock`, the lock file the Python dispatcher takes, so a
//! Hermes gateway and ours never run a pass on one board at once.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::dispatch_ops::{DispatchLock, HeldDispatchLock};
use crate::lockfile::FileLock;
use crate::private_fs::PRIVATE_FILE_MODE;
use crate::{Result, StoreError};

/// Suffix of a board file's dispatch lock.
const DISPATCH_LOCK_SUFFIX: &str = ".dispatch.lock";

/// `<db>.dispatch.lock`, a sibling of the board file: the lock the
/// reference's dispatcher takes, so both never dispatch one board at once.
pub fn dispatch_lock_path(db: &Path) -> PathBuf {
    let mut name = db.file_name().map(|n| n.to_os_string()).unwrap_or_default();
    name.push(DISPATCH_LOCK_SUFFIX);
    db.with_file_name(name)
}

/// The SQLite board's dispatch lock: an `flock` on `<db>.dispatch.lock`.
pub fn file_dispatch_lock(db: &Path) -> Arc<dyn DispatchLock> {
    Arc::new(FileDispatchLock {
        path: dispatch_lock_path(db),
    })
}

/// An exclusive `flock` on a lock file.
#[derive(Debug)]
struct FileDispatchLock {
    path: PathBuf,
}

impl DispatchLock for FileDispatchLock {
    fn try_acquire(&self) -> Result<Option<HeldDispatchLock>> {
        let held = FileLock::try_acquire(&self.path, PRIVATE_FILE_MODE)
            .map_err(|e| StoreError::io(format!("dispatch lock {}", self.path.display()), e))?;
        Ok(held.map(|lock| HeldDispatchLock::new(lock, self.describe())))
    }

    fn describe(&self) -> String {
        self.path.display().to_string()
    }
}
