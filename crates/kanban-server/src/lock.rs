//! The root-wide gateway lock and pidfile.
//!
//! `<root>/kanban/.dispatcher.lock` is the file the Python gateway locks
//! too, so a Hermes gateway and ours never dispatch one root at the same
//! time. Unlike the reference we fail closed: if the lock cannot be taken
//! for any reason, this gateway does not start.

use std::fs::File;
use std::io::Write;
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;

use kanban_store::layout::Root;
use serde::{Deserialize, Serialize};

/// Private files: the pidfile and state file name a local process.
const PRIVATE_FILE_MODE: u32 = 0o600;

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
    _file: File,
    root: Root,
}

fn flock(file: &File, op: libc::c_int) -> std::io::Result<()> {
    // SAFETY: flock on a descriptor owned by `file`, valid for the call.
    let rc = unsafe { libc::flock(file.as_raw_fd(), op) };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

impl GatewayLock {
    /// Take the lock without waiting and write the pidfile.
    pub fn acquire(root: &Root) -> Result<GatewayLock, LockError> {
        let path = root.gateway_lock();
        let io = |source| LockError::Io {
            lock: path.display().to_string(),
            source,
        };
        kanban_store::layout::create_private_dir(&root.kanban_dir())
            .map_err(|e| io(std::io::Error::other(e.to_string())))?;
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .mode(PRIVATE_FILE_MODE)
            .open(&path)
            .map_err(io)?;
        if let Err(e) = flock(&file, libc::LOCK_EX | libc::LOCK_NB) {
            if e.kind() != std::io::ErrorKind::WouldBlock {
                return Err(io(e));
            }
            return Err(match read_pid(root) {
                Some(pid) => LockError::HeldBy {
                    root: root.path().display().to_string(),
                    pid,
                },
                None => LockError::HeldByUnknown {
                    lock: path.display().to_string(),
                },
            });
        }
        write_private(
            &pidfile_path(root),
            format!("{}\n", std::process::id()).as_bytes(),
        )
        .map_err(io)?;
        Ok(GatewayLock {
            _file: file,
            root: root.clone(),
        })
    }

    /// Record where we listen (for `kanban gateway status`).
    pub fn write_record(&self, record: &GatewayRecord) -> std::io::Result<()> {
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

fn write_private(path: &std::path::Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    {
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(true)
            .mode(PRIVATE_FILE_MODE)
            .open(&tmp)?;
        f.write_all(bytes)?;
    }
    std::fs::rename(&tmp, path)
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

/// True when some process (ours or a Hermes gateway) holds the lock.
pub fn dispatcher_lock_held(root: &Root) -> bool {
    let Ok(file) = File::open(root.gateway_lock()) else {
        return false;
    };
    flock(&file, libc::LOCK_SH | libc::LOCK_NB).is_err()
}
