//! Exclusive advisory locks on sidecar files (`<db>.init.lock`,
//! `<db>.dispatch.lock`): `flock(2)` through std, the same lock the Python
//! reference takes with `fcntl.flock(LOCK_EX)`, so both implementations
//! exclude each other. One helper for every lock file of a board.

use std::fs::{File, OpenOptions, TryLockError};
use std::io;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// A held lock; released when dropped.
#[derive(Debug)]
pub struct FileLock {
    file: File,
    path: PathBuf,
}

impl FileLock {
    /// Open (creating with `mode`) the lock file at `path` and take its
    /// lock without waiting. `Ok(None)`: another open file description
    /// holds it (this process's included). `Err`: the file cannot be
    /// opened or locked at all.
    pub fn try_acquire(path: &Path, mode: u32) -> io::Result<Option<FileLock>> {
        let file = open(path, mode)?;
        match file.try_lock() {
            Ok(()) => Ok(Some(FileLock {
                file,
                path: path.to_path_buf(),
            })),
            Err(TryLockError::WouldBlock) => Ok(None),
            Err(TryLockError::Error(e)) => Err(e),
        }
    }

    /// Open the lock file (an `Err` when that fails), then try its lock
    /// every `poll` until `timeout`; the inner `Err` is the last refusal
    /// when it was not acquired in time (held elsewhere, or a filesystem
    /// without locks).
    pub fn acquire_within(
        path: &Path,
        mode: u32,
        timeout: Duration,
        poll: Duration,
    ) -> io::Result<Result<FileLock, TryLockError>> {
        let file = open(path, mode)?;
        let deadline = Instant::now() + timeout;
        loop {
            match file.try_lock() {
                Ok(()) => {
                    return Ok(Ok(FileLock {
                        file,
                        path: path.to_path_buf(),
                    }));
                }
                Err(_) if Instant::now() < deadline => std::thread::sleep(poll),
                Err(e) => return Ok(Err(e)),
            }
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The locked file (a copy of its descriptor does not keep the lock
    /// once this is dropped).
    pub fn file(&self) -> &File {
        &self.file
    }
}

impl Drop for FileLock {
    fn drop(&mut self) {
        // Unlock explicitly rather than relying on close: a child forked by
        // another thread shares this open file description until its exec
        // closes it, and would otherwise keep the lock meanwhile.
        let _ = self.file.unlock();
    }
}

/// Whether another open file description holds the lock of `path` (ours
/// included): a probe with a shared lock that is released at once. A
/// missing file is not held; a file that cannot be locked at all counts as
/// held (fail closed).
pub fn is_held(path: &Path) -> bool {
    let Ok(file) = File::open(path) else {
        return false;
    };
    file.try_lock_shared().is_err()
}

/// Open (creating with `mode`) a lock file, without locking it.
pub(crate) fn open(path: &Path, mode: u32) -> io::Result<File> {
    OpenOptions::new()
        .read(true)
        .append(true)
        .create(true)
        .mode(mode)
        .open(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_holder_and_a_bounded_wait() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.lock");
        let held = FileLock::try_acquire(&path, 0o600).unwrap().unwrap();
        assert_eq!(held.path(), path);
        assert!(FileLock::try_acquire(&path, 0o600).unwrap().is_none());
        let waited = FileLock::acquire_within(
            &path,
            0o600,
            Duration::from_millis(30),
            Duration::from_millis(10),
        )
        .unwrap();
        assert!(matches!(waited, Err(TryLockError::WouldBlock)));
        let copy = held.file().try_clone().unwrap();
        drop(held);
        assert!(FileLock::try_acquire(&path, 0o600).unwrap().is_some());
        drop(copy);
        let missing = dir.path().join("no/such/dir/x.lock");
        assert!(FileLock::try_acquire(&missing, 0o600).is_err());
    }
}
