//! Worker logs and scratch workspaces made ahead, off the dispatch pass.
//!
//! Every started worker gets a new log file and, for a scratch task, a new
//! directory. On ext4 the inode allocator checks each candidate inode for a
//! recent deletion (`find_inode_bit` → `recently_deleted`), and on a disk
//! where many files come and go that was a third of a gateway's CPU in the
//! pipeline bench, all of it on the pass thread between a claim and its
//! worker's start. A gateway therefore keeps a few empty files and
//! directories ready in a `.spare` directory beside the targets, made by a
//! background thread, and moves one into place with
//! `renameat2(RENAME_NOREPLACE)`: a directory-entry change, no allocation,
//! and never over an existing log or workspace (a retried task keeps
//! appending to its log and reuses its workspace, as before). An empty
//! pool, or any error, falls back to creating the file or directory as
//! before. Only a process that called [`enable`] (the gateway) uses spares;
//! a CLI pass makes its files directly and starts no thread.

use std::collections::HashMap;
use std::fs::{DirBuilder, File, OpenOptions};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::time::SystemTime;

use nix::fcntl::{AT_FDCWD, RenameFlags, renameat2};

/// Name of the directory of spares, inside the targets' directory (so a
/// spare is on the same file system as its target).
pub const SPARE_DIR_NAME: &str = ".spare";
/// Spares kept ready per directory: a full batch of claims and more.
pub const SPARES_PER_DIR: usize = 32;
/// Stack of a refill thread: it only creates files.
const REFILL_STACK_BYTES: usize = 64 * 1024;
/// Nice value of a refill thread: it makes spares when nothing else wants
/// the CPU, never in the way of a pass or of a worker starting.
const REFILL_NICE: libc::c_int = 10;

/// What a pool hands out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SpareKind {
    /// An empty file, mode 0600 (a worker log).
    File,
    /// An empty directory, mode 0700 (a scratch workspace).
    Dir,
}

static ENABLED: AtomicBool = AtomicBool::new(false);
/// The pools of this process, by target directory and kind.
type Pools = HashMap<(PathBuf, SpareKind), Arc<Pool>>;
static POOLS: OnceLock<Mutex<Pools>> = OnceLock::new();

/// Use spares in this process from now on (a gateway, at start-up).
pub fn enable() {
    ENABLED.store(true, Ordering::SeqCst);
}

/// Move a spare of `kind` to `target` when spares are enabled, one is
/// ready and nothing is at `target`; its times are set to now. `false`
/// otherwise: the caller creates `target` itself.
pub fn place(target: &Path, kind: SpareKind) -> bool {
    if !ENABLED.load(Ordering::Relaxed) {
        return false;
    }
    let Some(parent) = target.parent().filter(|p| !p.as_os_str().is_empty()) else {
        return false;
    };
    let pool = {
        let mut pools = POOLS
            .get_or_init(Default::default)
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        match pools.get(&(parent.to_path_buf(), kind)) {
            Some(pool) => Arc::clone(pool),
            None => {
                // The first target of a directory starts its pool; this
                // one is made directly.
                if let Some(pool) = Pool::start(parent.join(SPARE_DIR_NAME), kind) {
                    pools.insert((parent.to_path_buf(), kind), pool);
                }
                return false;
            }
        }
    };
    pool.place(target)
}

/// Stop the pools of `parents` (a board the gateway closed): their threads
/// end; the spares stay on disk for whoever opens the board next.
pub fn forget(parents: &[&Path]) {
    let Some(pools) = POOLS.get() else {
        return;
    };
    let mut pools = pools.lock().unwrap_or_else(|p| p.into_inner());
    pools.retain(|(parent, _), pool| {
        let gone = parents.contains(&parent.as_path());
        if gone {
            pool.stopped.store(true, Ordering::SeqCst);
            pool.wanted.notify_all();
        }
        !gone
    });
}

/// The spares of one directory and the thread that makes them.
#[derive(Debug)]
struct Pool {
    dir: PathBuf,
    kind: SpareKind,
    ready: Mutex<Vec<PathBuf>>,
    wanted: Condvar,
    next: AtomicU64,
    /// Set by [`forget`]: the refill thread ends.
    stopped: AtomicBool,
}

impl Pool {
    /// Adopt the empty spares a previous gateway left and start refilling;
    /// `None` when the spare directory cannot be made.
    fn start(dir: PathBuf, kind: SpareKind) -> Option<Arc<Pool>> {
        make_spare_dir(&dir)?;
        let pool = Arc::new(Pool {
            ready: Mutex::new(leftovers(&dir, kind)),
            dir,
            kind,
            wanted: Condvar::new(),
            next: AtomicU64::new(0),
            stopped: AtomicBool::new(false),
        });
        let refill = Arc::clone(&pool);
        std::thread::Builder::new()
            .name("kanban-spares".into())
            .stack_size(REFILL_STACK_BYTES)
            .spawn(move || {
                lower_this_threads_priority();
                refill.refill_forever()
            })
            .ok()?;
        Some(pool)
    }

    fn place(&self, target: &Path) -> bool {
        let spare = self.ready.lock().unwrap_or_else(|p| p.into_inner()).pop();
        // Every wake-up below comes after the lock is released (the refill
        // thread would only wait for it), and only when a spare is wanted.
        let Some(spare) = spare else {
            self.wanted.notify_one();
            return false;
        };
        if renameat2(
            AT_FDCWD,
            &spare,
            AT_FDCWD,
            target,
            RenameFlags::RENAME_NOREPLACE,
        )
        .is_err()
        {
            // Taken (EEXIST): the spare stays for the next target. Gone:
            // the refill thread makes another.
            if spare.exists() {
                self.ready
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .push(spare);
            } else {
                self.wanted.notify_one();
            }
            return false;
        }
        self.wanted.notify_one();
        // A spare may have waited for days: give the target its own time,
        // as a freshly made one would have (clean-ups go by age).
        let now = SystemTime::now();
        let _ = File::open(target).and_then(|f| f.set_modified(now));
        true
    }

    fn refill_forever(&self) {
        loop {
            {
                let mut ready = self.ready.lock().unwrap_or_else(|p| p.into_inner());
                while ready.len() >= SPARES_PER_DIR && !self.stopped.load(Ordering::SeqCst) {
                    ready = self.wanted.wait(ready).unwrap_or_else(|p| p.into_inner());
                }
            }
            if self.stopped.load(Ordering::SeqCst) {
                return;
            }
            match self.make_one() {
                Some(path) => self
                    .ready
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .push(path),
                // Cannot make spares here (full disk, removed directory):
                // targets are made directly; try again when asked.
                None => {
                    let ready = self.ready.lock().unwrap_or_else(|p| p.into_inner());
                    drop(self.wanted.wait(ready).unwrap_or_else(|p| p.into_inner()));
                }
            }
        }
    }

    fn make_one(&self) -> Option<PathBuf> {
        self.try_make_one().or_else(|| {
            // The spare directory may have been removed: make it again,
            // unless its parent went too (a removed board stays removed).
            make_spare_dir(&self.dir)?;
            self.try_make_one()
        })
    }

    fn try_make_one(&self) -> Option<PathBuf> {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        let path = self.dir.join(format!("{}-{n}", std::process::id()));
        let made = match self.kind {
            SpareKind::File => OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&path)
                .map(drop),
            SpareKind::Dir => DirBuilder::new().mode(0o700).create(&path),
        };
        made.ok().map(|()| path)
    }
}

/// [`REFILL_NICE`] for the calling thread only (Linux nice values are per
/// thread). Best effort: a refused change leaves the thread as it was.
fn lower_this_threads_priority() {
    // SAFETY: plain system calls on this thread's own id.
    unsafe {
        let tid = libc::gettid();
        libc::setpriority(libc::PRIO_PROCESS, tid as libc::id_t, REFILL_NICE);
    }
}

/// Make the spare directory `dir` (mode 0700) if missing, never its
/// parent: spares only go where their targets already live.
fn make_spare_dir(dir: &Path) -> Option<()> {
    match DirBuilder::new().mode(0o700).create(dir) {
        Ok(()) => Some(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && dir.is_dir() => Some(()),
        Err(_) => None,
    }
}

/// The empty spares of `kind` already in `dir`.
fn leftovers(dir: &Path, kind: SpareKind) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter(|e| {
            let Ok(meta) = std::fs::symlink_metadata(e.path()) else {
                return false;
            };
            match kind {
                SpareKind::File => meta.is_file() && meta.len() == 0,
                SpareKind::Dir => {
                    meta.is_dir()
                        && std::fs::read_dir(e.path()).is_ok_and(|mut d| d.next().is_none())
                }
            }
        })
        .map(|e| e.path())
        .collect()
}

#[cfg(test)]
#[path = "spare_tests.rs"]
mod tests;
