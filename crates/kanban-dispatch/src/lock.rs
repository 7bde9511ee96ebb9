//! The board's dispatch lock: `<db>.dispatch.lock`, a non-blocking
//! exclusive `flock`, the same lock the Python dispatcher takes, so a
//! Hermes gateway and ours never run a pass on one board at once.
//!
//! Unlike the reference, it fails closed: a lock file that cannot be
//! opened or locked means "skip this pass" with a clear message, never
//! "dispatch unguarded".

use std::fs::{File, OpenOptions, TryLockError};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use crate::error::{DispatchError, Result};

/// A held dispatch lock; released when dropped.
#[derive(Debug)]
pub struct DispatchLock {
    file: File,
    path: PathBuf,
}

impl Drop for DispatchLock {
    fn drop(&mut self) {
        // Unlock explicitly rather than relying on close: a child forked by
        // another thread shares this open file description until its exec
        // closes it, and would otherwise keep the board locked meanwhile.
        let _ = self.file.unlock();
    }
}

impl DispatchLock {
    /// Take the lock without waiting. `Ok(None)`: another process holds
    /// it. `Err`: it cannot be taken at all (fail closed).
    pub fn try_acquire(path: &Path) -> Result<Option<DispatchLock>> {
        let lock_err = |source| DispatchError::Lock {
            path: path.to_path_buf(),
            source,
        };
        let file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .mode(0o600)
            .open(path)
            .map_err(lock_err)?;
        match file.try_lock() {
            Ok(()) => Ok(Some(DispatchLock {
                file,
                path: path.to_path_buf(),
            })),
            Err(TryLockError::WouldBlock) => Ok(None),
            Err(TryLockError::Error(e)) => Err(lock_err(e)),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

#[cfg(test)]
mod tests {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};

    use super::*;

    #[test]
    fn only_one_holder_at_a_time() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kanban.db.dispatch.lock");
        let held = DispatchLock::try_acquire(&path).unwrap().unwrap();
        // A second open file description conflicts, even in this process.
        assert!(DispatchLock::try_acquire(&path).unwrap().is_none());
        drop(held);
        assert!(DispatchLock::try_acquire(&path).unwrap().is_some());
    }

    #[test]
    fn a_copy_of_the_descriptor_does_not_keep_the_lock() {
        // What a child forked by another thread holds until its exec.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kanban.db.dispatch.lock");
        let held = DispatchLock::try_acquire(&path).unwrap().unwrap();
        let inherited = held.file.try_clone().unwrap();
        drop(held);
        assert!(DispatchLock::try_acquire(&path).unwrap().is_some());
        drop(inherited);
    }

    #[test]
    fn fails_closed_when_the_file_cannot_be_opened() {
        let dir = tempfile::tempdir().unwrap();
        let err = DispatchLock::try_acquire(&dir.path().join("missing/dir/x.lock")).unwrap_err();
        assert!(err.to_string().starts_with("dispatch lock "), "{err}");
    }

    #[test]
    fn interlocks_with_the_python_dispatcher_lock() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kanban.db.dispatch.lock");
        // The reference takes fcntl.flock(LOCK_EX | LOCK_NB) on this file.
        let script = format!(
            "import fcntl,sys,time\nf=open({:?},'a+b')\nfcntl.flock(f.fileno(),fcntl.LOCK_EX|fcntl.LOCK_NB)\n\
             print('held',flush=True)\nsys.stdin.readline()\n",
            path.display().to_string()
        );
        let mut py = match Command::new("python3")
            .args(["-c", &script])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
        {
            Ok(c) => c,
            Err(_) => return eprintln!("python3 not available; skipped"),
        };
        let mut line = String::new();
        BufReader::new(py.stdout.as_mut().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert_eq!(line.trim(), "held");
        assert!(DispatchLock::try_acquire(&path).unwrap().is_none());
        drop(py.stdin.take());
        py.wait().unwrap();
        assert!(DispatchLock::try_acquire(&path).unwrap().is_some());
    }
}
