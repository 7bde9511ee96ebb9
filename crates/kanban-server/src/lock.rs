//! The root-wide gateway lock and pidfile.
//!
//! `<root>/kanban/.dispatcher.lock` is the file the Python gateway locks
//! too, so a Hermes gateway and ours never dispatch one root at the same
//! time. Unlike the reference we fail closed: if the lock cannot be taken
//! for any reason, this gateway does not start.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use kanban_hermes::layout::Root;
use kanban_store::lockfile::{self, FileLock};
use serde::{Deserialize, Serialize};

/// Private files: the pidfile and state file name a local process.
const PRIVATE_FILE_MODE: u32 = 0o600;
/// How long a starting gateway waits for a brief holder of the lock: a
/// `kanban` command probing it (shared, for a moment), or the child a
/// gateway killed mid-spawn had forked, which shares the lock until its
/// `exec`. A running gateway holds it for good and is still refused.
const LOCK_HOLDER_GRACE: std::time::Duration = std::time::Duration::from_secs(2);
const LOCK_RETRY_POLL: std::time::Duration = std::time::Duration::from_millis(20);

/// `<root>/kanban/gateway.pid`: the pid of the gateway holding the lock.
pub fn pidfile_path(root: &Root) -> PathBuf {
    root.kanban_dir().join("gateway.pid")
}

/// `<root>/kanban/gateway.json`: where the running gateway listens.
pub fn state_path(root: &Root) -> PathBuf {
    root.kanban_dir().join("gateway.json")
}

/// `<root>/kanban/logs/gateway.log`: output of a background gateway.
pub fn log_path(root: &Root) -> PathBuf {
    root.kanban_dir().join("logs").join("gateway.log")
}

/// What `gateway.json` records about the running gateway.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GatewayRecord {
    pub pid: u32,
    pub url: String,
    pub host: String,
    pub port: u16,
    pub started_at: i64,
    pub dispatch: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error(
        "another gateway is already running for {root} (pid {pid}); stop it with `kanban gateway stop`"
    )]
    HeldBy { root: String, pid: u32 },
    #[error("another process holds {lock} (a Hermes gateway?); only one gateway may run per root")]
    HeldByUnknown { lock: String },
    #[error("cannot take the gateway lock {lock}: {source}")]
    Io {
        lock: String,
        source: std::io::Error,
    },
}

/// The held lock; released (and the pidfile removed) on drop.
#[derive(Debug)]
pub struct GatewayLock {
    _lock: FileLock,
    root: Root,
}

impl GatewayLock {
    /// Take the lock without waiting and write the pidfile.
    pub fn acquire(root: &Root) -> Result<GatewayLock, LockError> {
        let path = root.gateway_lock();
        let io = |source| LockError::Io {
            lock: path.display().to_string(),
            source,
        };
        kanban_hermes::layout::create_private_dir(&root.kanban_dir())
            .map_err(|e| io(std::io::Error::other(e.to_string())))?;
        let held =
            FileLock::acquire_within(&path, PRIVATE_FILE_MODE, LOCK_HOLDER_GRACE, LOCK_RETRY_POLL)
                .map_err(io)?;
        let Ok(lock) = held else {
            return Err(match read_pid(root) {
                Some(pid) => LockError::HeldBy {
                    root: root.path().display().to_string(),
                    pid,
                },
                None => LockError::HeldByUnknown {
                    lock: path.display().to_string(),
                },
            });
        };
        write_private(
            &pidfile_path(root),
            format!("{}\n", std::process::id()).as_bytes(),
        )
        .map_err(io)?;
        Ok(GatewayLock {
            _lock: lock,
            root: root.clone(),
        })
    }

    /// Record where we listen (for `kanban gateway status`).
    pub fn write_record(&self, record: &GatewayRecord) -> std::io::Result<()> {
        self.publisher().write(record)
    }

    /// A writer of this gateway's record for background tasks. Stop them
    /// before the lock is dropped (the drop removes the record).
    pub fn publisher(&self) -> RecordPublisher {
        RecordPublisher {
            root: self.root.clone(),
        }
    }
}

/// Writes `gateway.json` atomically (see [`GatewayLock::publisher`]).
#[derive(Debug, Clone)]
pub struct RecordPublisher {
    root: Root,
}

impl RecordPublisher {
    pub fn write(&self, record: &GatewayRecord) -> std::io::Result<()> {
        let text = serde_json::to_string_pretty(record).map_err(std::io::Error::other)?;
        write_private(&state_path(&self.root), format!("{text}\n").as_bytes())
    }
}

impl Drop for GatewayLock {
    fn drop(&mut self) {
        // Only remove files that still name us: a successor may own them.
        if read_pid(&self.root) == Some(std::process::id()) {
            let _ = std::fs::remove_file(pidfile_path(&self.root));
            let _ = std::fs::remove_file(state_path(&self.root));
        }
    }
}

/// Distinguishes temp files of concurrent writers within one process.
static TEMP_SEQ: AtomicU64 = AtomicU64::new(0);

/// Write `bytes` to `path` atomically (readers see the old or the new
/// content, never a partial one). The temp file name is unique per file,
/// process and write, so the pidfile and the state file never share one.
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = path.with_file_name(format!(
        ".{name}.{}.{}.tmp",
        std::process::id(),
        TEMP_SEQ.fetch_add(1, Ordering::Relaxed)
    ));
    let written = (|| {
        let mut f = std::fs::OpenOptions::new()
            .create_new(true)
            .write(true)
            .mode(PRIVATE_FILE_MODE)
            .open(&tmp)?;
        f.write_all(bytes)?;
        std::fs::rename(&tmp, path)
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written
}

/// The pid in the pidfile, if any.
pub fn read_pid(root: &Root) -> Option<u32> {
    std::fs::read_to_string(pidfile_path(root))
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// The running gateway's record, if any.
pub fn read_record(root: &Root) -> Option<GatewayRecord> {
    serde_json::from_str(&std::fs::read_to_string(state_path(root)).ok()?).ok()
}

/// The record of the gateway holding the lock right now: `None` while
/// none runs, or while one is still starting (it publishes its record
/// before it serves, so a `Some` here means the record is current).
pub fn current_record(root: &Root) -> Option<GatewayRecord> {
    if !dispatcher_lock_held(root) {
        return None;
    }
    let pid = read_pid(root)?;
    read_record(root).filter(|r| r.pid == pid)
}

/// True when some process (ours or a Hermes gateway) holds the lock.
pub fn dispatcher_lock_held(root: &Root) -> bool {
    lockfile::is_held(&root.gateway_lock())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Issue 9 item 14: the pidfile and the state file are written through
    /// temp files of their own, so concurrent writes never swap contents.
    #[test]
    fn pidfile_and_state_file_never_share_a_temp_file() {
        let dir = tempfile::tempdir().unwrap();
        let root = Root::at(dir.path());
        std::fs::create_dir_all(root.kanban_dir()).unwrap();
        let record = GatewayRecord {
            pid: 42,
            url: "http://127.0.0.1:1".into(),
            host: "127.0.0.1".into(),
            port: 1,
            started_at: 0,
            dispatch: true,
        };
        let publisher = RecordPublisher { root: root.clone() };
        std::thread::scope(|s| {
            s.spawn(|| {
                for _ in 0..300 {
                    write_private(&pidfile_path(&root), b"42\n").unwrap();
                }
            });
            s.spawn(|| {
                for _ in 0..300 {
                    publisher.write(&record).unwrap();
                }
            });
        });
        assert_eq!(read_pid(&root), Some(42));
        assert_eq!(read_record(&root), Some(record));
        let leftovers: Vec<_> = std::fs::read_dir(root.kanban_dir())
            .unwrap()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
            .collect();
        assert!(leftovers.is_empty(), "{leftovers:?}");
    }
}
