//! The SQLite board's dispatch lock: an exclusive, non-blocking `flock` on
//! `<db>.dispatch.lock`, the lock file the Python dispatcher takes, so a
//! Hermes gateway and ours never run a pass on one board at once.
//!
//! The file stays open between passes (opening it cost more than the lock
//! itself); each acquisition checks that the path still names the file we
//! lock, so a removed or replaced lock file is opened anew, never locked
//! in a stale copy that other processes no longer see.

use std::fs::{File, TryLockError};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use crate::dispatch_ops::{DispatchLock, HeldDispatchLock};
use crate::lockfile;
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
    let path = dispatch_lock_path(db);
    Arc::new(FileDispatchLock {
        what: path.display().to_string(),
        path,
        idle: Arc::default(),
    })
}

/// An exclusive `flock` on a lock file.
#[derive(Debug)]
struct FileDispatchLock {
    path: PathBuf,
    what: String,
    /// The lock file kept open while not held. Taken out while held, so a
    /// second acquisition through this handle opens a file description of
    /// its own (and is refused, as another process would be).
    idle: Arc<Mutex<Option<OpenLockFile>>>,
}

/// An open lock file and the identity (device, inode) it had when opened.
#[derive(Debug)]
struct OpenLockFile {
    file: File,
    id: (u64, u64),
}

/// The held lock: unlocked and handed back for the next pass when dropped.
struct HeldFile {
    open: Option<OpenLockFile>,
    home: Arc<Mutex<Option<OpenLockFile>>>,
}

impl Drop for HeldFile {
    fn drop(&mut self) {
        if let Some(open) = self.open.take() {
            // Unlock explicitly: a child forked by another thread shares
            // this open file description until its exec closes it.
            let _ = open.file.unlock();
            *self.home.lock().unwrap_or_else(PoisonError::into_inner) = Some(open);
        }
    }
}

impl FileDispatchLock {
    fn io_error(&self, e: std::io::Error) -> StoreError {
        StoreError::io(format!("dispatch lock {}", self.path.display()), e)
    }

    fn keep(&self, open: OpenLockFile) {
        *self.idle.lock().unwrap_or_else(PoisonError::into_inner) = Some(open);
    }

    fn held(&self, open: OpenLockFile) -> HeldDispatchLock {
        let guard = HeldFile {
            open: Some(open),
            home: Arc::clone(&self.idle),
        };
        HeldDispatchLock::new(guard, self.what.as_str())
    }

    /// The path still names the file `open` is (not removed or replaced).
    fn still_at_path(&self, open: &OpenLockFile) -> bool {
        std::fs::metadata(&self.path).is_ok_and(|m| (m.dev(), m.ino()) == open.id)
    }
}

impl DispatchLock for FileDispatchLock {
    fn try_acquire(&self) -> Result<Option<HeldDispatchLock>> {
        let kept = self
            .idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(open) = kept {
            match open.file.try_lock() {
                Ok(()) if self.still_at_path(&open) => return Ok(Some(self.held(open))),
                // Removed or replaced meanwhile: open the path again.
                Ok(()) => {
                    let _ = open.file.unlock();
                }
                Err(TryLockError::WouldBlock) => {
                    self.keep(open);
                    return Ok(None);
                }
                // Opening again reports what is wrong now.
                Err(TryLockError::Error(_)) => {}
            }
        }
        let file = lockfile::open(&self.path, PRIVATE_FILE_MODE).map_err(|e| self.io_error(e))?;
        let meta = file.metadata().map_err(|e| self.io_error(e))?;
        let open = OpenLockFile {
            file,
            id: (meta.dev(), meta.ino()),
        };
        match open.file.try_lock() {
            Ok(()) => Ok(Some(self.held(open))),
            Err(TryLockError::WouldBlock) => {
                self.keep(open);
                Ok(None)
            }
            Err(TryLockError::Error(e)) => Err(self.io_error(e)),
        }
    }

    fn describe(&self) -> String {
        self.what.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_kept_file_is_reused_and_a_replaced_one_is_opened_again() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("kanban.db");
        let lock = file_dispatch_lock(&db);
        let path = dispatch_lock_path(&db);
        let held = lock.try_acquire().unwrap().expect("free");
        // Held through this handle: a second acquisition is refused.
        assert!(lock.try_acquire().unwrap().is_none());
        drop(held);
        let held = lock.try_acquire().unwrap().expect("released");
        drop(held);
        // The file is replaced: the kept copy must not count as the lock.
        std::fs::remove_file(&path).unwrap();
        let held = lock.try_acquire().unwrap().expect("opened again");
        assert!(path.exists());
        assert!(lockfile::is_held(&path), "the new file is the one locked");
        drop(held);
        assert!(!lockfile::is_held(&path));
        // Replaced by something that cannot be locked: fail closed.
        std::fs::remove_file(&path).unwrap();
        std::fs::create_dir(&path).unwrap();
        assert!(lock.try_acquire().is_err());
    }
}
