//! [`ChangeProbe`] for SQLite: `PRAGMA data_version` on a dedicated
//! connection.
//!
//! SQLite bumps `data_version` for commits made by *other* connections
//! only, so the probe never shares the store's own connection: with its own
//! connection it sees the store's writes, the CLI's, workers' and the Python
//! implementation's alike. The pragma reads the WAL index in shared memory
//! (no table, no page read), cheap enough to ask every few milliseconds.
//!
//! Between two questions the probe sleeps on an inotify watch of the
//! board's directory: every commit writes the `-wal` file (or the database
//! file itself), whoever the writer is, so the watcher wakes within
//! microseconds of a commit instead of at the next poll. Where inotify is
//! unavailable (or on a file system that does not report changes, such as
//! NFS) the caller's poll interval still bounds the delay.
//!
//! A gateway's probe also listens for pokes ([`super::poke`]): our own
//! processes send one after each commit, which wakes the probe with the
//! commit already readable, so the common path skips the settling below.

use std::ffi::OsString;
use std::os::fd::AsFd;
use std::path::Path;
use std::time::{Duration, Instant};

use nix::poll::{PollFd, PollFlags, ppoll};
use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify};
use nix::sys::time::TimeSpec;

use super::SqliteStore;
use super::poke::PokeListener;
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
    /// Set up before the first version is read, so no write falls between
    /// a reading and the watch.
    files: Option<FileWatch>,
    /// The bound poke socket, once [`ChangeProbe::listen_for_pokes`] asked.
    pokes: Option<PokeListener>,
    /// When a board file was last written and no new version was read
    /// since: the commit behind the write may not be visible yet.
    settling_since: Option<Instant>,
    last_version: Option<u64>,
}

/// A commit's WAL frames are written before it is synced and published in
/// the WAL index, which is shared memory and wakes nobody. After a write
/// the probe therefore checks again every [`SETTLE_STEP`], for at most
/// [`SETTLE_WINDOW`], rather than sleeping until the next write.
const SETTLE_STEP: Duration = Duration::from_micros(500);
const SETTLE_WINDOW: Duration = Duration::from_millis(100);

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
        let mut files = FileWatch::new(path);
        let conn = connect(path, busy_timeout_ms)?;
        if let Some(files) = files.as_mut() {
            let mode: Option<String> = conn.query_row("PRAGMA journal_mode", [], |r| r.get(0)).ok();
            files.set_journal_mode(mode.as_deref());
        }
        Ok(SqliteChangeProbe {
            conn,
            path: path.to_path_buf(),
            files,
            pokes: None,
            settling_since: None,
            last_version: None,
        })
    }
}

impl ChangeProbe for SqliteChangeProbe {
    fn version(&mut self) -> Result<u64> {
        let v: i64 = self
            .conn
            .query_row(DATA_VERSION_QUERY, [], |r| r.get(0))
            .map_err(|e| probe_err(&self.path, e))?;
        let v = v as u64;
        if self.last_version != Some(v) {
            self.settling_since = None;
            self.last_version = Some(v);
        }
        Ok(v)
    }

    fn wait_for_change(&mut self, timeout: Duration) {
        if self.files.is_none() && self.pokes.is_none() {
            return std::thread::sleep(timeout);
        }
        if let Some(since) = self.settling_since {
            if since.elapsed() < SETTLE_WINDOW {
                // Events queued meanwhile belong to the same commit; its
                // poke (if its writer pokes) ends the step early.
                if let Some(files) = &self.files {
                    files.drain_board_events();
                }
                wait_any(None, self.pokes.as_ref(), SETTLE_STEP.min(timeout));
                return;
            }
            self.settling_since = None;
        }
        match wait_any(self.files.as_ref(), self.pokes.as_ref(), timeout) {
            Wake::CommitWrite => self.settling_since = Some(Instant::now()),
            // Opened, closed, checkpointed: one look at the version (the
            // caller's next read) is enough, nothing is being committed.
            Wake::Touched => {}
            // Sent after the commit: readable now. Its file events are
            // stale.
            Wake::Poke => {
                if let Some(files) = &self.files {
                    files.drain_board_events();
                }
            }
            Wake::Timeout => {}
        }
    }

    fn listen_for_pokes(&mut self) -> bool {
        if self.pokes.is_none() {
            self.pokes = PokeListener::bind(&self.path);
        }
        self.pokes.is_some()
    }

    fn drop_file_watch(&mut self) {
        self.files = None;
        self.settling_since = None;
    }
}

/// What ended a [`wait_any`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Wake {
    /// The file a commit writes was written (the commit may not be
    /// readable yet).
    CommitWrite,
    /// Another event on a board file.
    Touched,
    /// A poke: a commit returned.
    Poke,
    Timeout,
}

/// Until a board file changed, a poke arrived or `timeout` passed; sleeps
/// the timeout when there is nothing to wait on.
fn wait_any(files: Option<&FileWatch>, pokes: Option<&PokeListener>, timeout: Duration) -> Wake {
    let deadline = Instant::now() + timeout;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Wake::Timeout;
        }
        let mut fds = Vec::with_capacity(2);
        if let Some(p) = pokes {
            fds.push(PollFd::new(p.as_fd(), PollFlags::POLLIN));
        }
        if let Some(f) = files {
            fds.push(PollFd::new(f.inotify.as_fd(), PollFlags::POLLIN));
        }
        if fds.is_empty() {
            std::thread::sleep(left);
            return Wake::Timeout;
        }
        // `ppoll`: the settling steps are shorter than `poll`'s millisecond.
        match ppoll(&mut fds, Some(TimeSpec::from_duration(left)), None) {
            Ok(0) => return Wake::Timeout,
            Ok(_) => {}
            Err(nix::errno::Errno::EINTR) => continue,
            Err(_) => {
                std::thread::sleep(left);
                return Wake::Timeout;
            }
        }
        drop(fds);
        if pokes.is_some_and(PokeListener::drain) {
            return Wake::Poke;
        }
        let seen = files.map(FileWatch::drain_board_events).unwrap_or_default();
        if seen.commit_write {
            return Wake::CommitWrite;
        }
        if seen.touched {
            return Wake::Touched;
        }
    }
}

/// An inotify watch on the directory of a board file, reporting writes to
/// the file and its `-wal`/`-journal` siblings (the directory, not the
/// files: the WAL file comes and goes).
struct FileWatch {
    inotify: Inotify,
    /// The database file's name; sibling names start with it.
    name: OsString,
    /// The files a commit writes: only a write to one of these starts the
    /// settling. In WAL mode that is the `-wal` file alone; the database
    /// file itself is then written by checkpoints, which commit nothing.
    /// Every process that closes the board also reports its files
    /// (`IN_CLOSE_WRITE`): treated as settling, each CLI exit cost the
    /// watcher 100 ms of 500 µs wake-ups.
    commit_files: Vec<OsString>,
}

/// What the queued events said about the board's files.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct BoardEvents {
    /// A write to a file a commit writes, or an overflowed queue (which
    /// may have hidden one): a commit may be under way.
    commit_write: bool,
    /// Any other event on a board file: worth one look at the version.
    touched: bool,
}

/// Suffixes of the write-ahead log and of the rollback journal.
const WAL_SUFFIX: &str = "-wal";
const JOURNAL_SUFFIX: &str = "-journal";

/// What a commit does to the board's files.
const COMMIT_EVENTS: AddWatchFlags = AddWatchFlags::IN_MODIFY
    .union(AddWatchFlags::IN_CREATE)
    .union(AddWatchFlags::IN_MOVED_TO)
    .union(AddWatchFlags::IN_CLOSE_WRITE);

impl FileWatch {
    /// `None` when inotify cannot watch the directory (then the caller
    /// sleeps its poll interval, as before).
    fn new(db: &Path) -> Option<FileWatch> {
        let name = db.file_name()?.to_os_string();
        let dir = match db.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        };
        let inotify = Inotify::init(InitFlags::IN_NONBLOCK | InitFlags::IN_CLOEXEC).ok()?;
        inotify.add_watch(dir, COMMIT_EVENTS).ok()?;
        let mut watch = FileWatch {
            inotify,
            name,
            commit_files: Vec::new(),
        };
        watch.set_journal_mode(None);
        Some(watch)
    }

    /// Which files a commit writes, by the board's journal mode (`None`:
    /// unknown, every candidate).
    fn set_journal_mode(&mut self, mode: Option<&str>) {
        let sibling = |suffix: &str| {
            let mut n = self.name.clone();
            n.push(suffix);
            n
        };
        self.commit_files = match mode.map(str::to_ascii_lowercase).as_deref() {
            Some("wal") => vec![sibling(WAL_SUFFIX)],
            Some(_) => vec![self.name.clone(), sibling(JOURNAL_SUFFIX)],
            None => vec![
                self.name.clone(),
                sibling(WAL_SUFFIX),
                sibling(JOURNAL_SUFFIX),
            ],
        };
    }

    /// Read every queued event and sort what they say about the board.
    fn drain_board_events(&self) -> BoardEvents {
        let mut seen = BoardEvents::default();
        while let Ok(events) = self.inotify.read_events() {
            if events.is_empty() {
                break;
            }
            for e in &events {
                if e.mask.contains(AddWatchFlags::IN_Q_OVERFLOW) {
                    seen.commit_write = true;
                    continue;
                }
                let Some(name) = e.name.as_ref() else {
                    continue;
                };
                if !name
                    .as_encoded_bytes()
                    .starts_with(self.name.as_encoded_bytes())
                {
                    continue;
                }
                if e.mask.contains(AddWatchFlags::IN_MODIFY)
                    && self.commit_files.iter().any(|f| f == name)
                {
                    seen.commit_write = true;
                } else {
                    seen.touched = true;
                }
            }
        }
        seen
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

    /// The wait ends on a commit by another connection, long before its
    /// timeout (an hour: only a missing wake-up would reach it).
    #[test]
    fn waiting_wakes_on_a_commit_by_another_connection() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("kanban.db");
        let store = SqliteStore::open(&db, OpenOptions::create(), Arc::new(SystemClock)).unwrap();
        let mut probe = store.change_probe().unwrap();
        assert!(probe.files.is_some(), "inotify watches the board directory");
        let v0 = probe.version().unwrap();
        let writer = std::thread::spawn(move || {
            let other =
                SqliteStore::open(&db, OpenOptions::default(), Arc::new(SystemClock)).unwrap();
            std::thread::sleep(Duration::from_millis(50));
            other
                .create_task(&NewTask {
                    title: "b".into(),
                    ..Default::default()
                })
                .unwrap();
        });
        let hour = Duration::from_secs(3600);
        let t0 = Instant::now();
        // A wake may come from the writer opening its connection; the
        // commit itself changes the version.
        while probe.version().unwrap() == v0 {
            probe.wait_for_change(hour);
            assert!(t0.elapsed() < hour);
        }
        writer.join().unwrap();
    }

    /// Without a file watch, a probe listening for pokes wakes on a commit
    /// by another store (which pokes), long before its hour-long timeout,
    /// and the commit is readable at once.
    #[test]
    fn a_poke_wakes_a_listening_probe_without_a_file_watch() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("kanban.db");
        let store = SqliteStore::open(&db, OpenOptions::create(), Arc::new(SystemClock)).unwrap();
        let mut probe = store.change_probe().unwrap();
        probe.drop_file_watch();
        assert!(probe.listen_for_pokes(), "the socket is bound");
        assert!(super::super::poke::socket_path(&db).exists());
        let v0 = probe.version().unwrap();
        let writer = std::thread::spawn(move || {
            let other =
                SqliteStore::open(&db, OpenOptions::default(), Arc::new(SystemClock)).unwrap();
            std::thread::sleep(Duration::from_millis(50));
            other
                .create_task(&NewTask {
                    title: "b".into(),
                    ..Default::default()
                })
                .unwrap();
        });
        probe.wait_for_change(Duration::from_secs(3600));
        assert_ne!(
            probe.version().unwrap(),
            v0,
            "woken by the poke, after the commit"
        );
        writer.join().unwrap();
        drop(probe);
        assert!(
            !super::super::poke::socket_path(dir.path().join("kanban.db").as_path()).exists(),
            "the probe removes its socket"
        );
    }

    /// Writes to other files of the directory do not end the wait early.
    #[test]
    fn other_files_of_the_directory_are_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("kanban.db");
        let store = SqliteStore::open(&db, OpenOptions::create(), Arc::new(SystemClock)).unwrap();
        let probe = store.change_probe().unwrap();
        let files = probe.files.as_ref().unwrap();
        files.drain_board_events();
        std::fs::write(dir.path().join("gateway.log"), "line\n").unwrap();
        assert_eq!(
            files.drain_board_events(),
            BoardEvents::default(),
            "a log write is not about the board"
        );
        std::fs::write(dir.path().join("kanban.db-wal-probe"), "x").unwrap();
        assert_eq!(
            files.drain_board_events(),
            BoardEvents {
                commit_write: false,
                touched: true
            },
            "another board file is looked at, not settled on"
        );
    }

    /// In WAL mode only a write to the WAL starts the settling: a process
    /// closing the board or a checkpoint writing the database file do not.
    #[test]
    fn only_a_wal_write_starts_the_settling() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("kanban.db");
        let store = SqliteStore::open(&db, OpenOptions::create(), Arc::new(SystemClock)).unwrap();
        let mut probe = store.change_probe().unwrap();
        assert_eq!(
            probe.files.as_ref().unwrap().commit_files,
            vec![OsString::from("kanban.db-wal")]
        );
        let task = |title: &str| NewTask {
            title: title.into(),
            ..Default::default()
        };
        let v0 = probe.version().unwrap();
        // Another process's commit, then its exit (which may trim the WAL).
        let other = SqliteStore::open(&db, OpenOptions::default(), Arc::new(SystemClock)).unwrap();
        other.create_task(&task("b")).unwrap();
        drop(other);
        probe.wait_for_change(Duration::from_secs(3600));
        assert!(
            probe.settling_since.is_some(),
            "a commit's WAL write settles until its version is read"
        );
        let v1 = probe.version().unwrap();
        assert_ne!(v1, v0);
        assert!(probe.settling_since.is_none(), "the new version ends it");
        store.create_task(&task("c")).unwrap();
        probe.wait_for_change(Duration::from_secs(3600));
        assert_ne!(probe.version().unwrap(), v1);
        // A checkpoint writes the database file, and a connection that
        // closes reports the files it had open for writing.
        let raw = rusqlite::Connection::open(&db).unwrap();
        raw.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()))
            .unwrap();
        drop(raw);
        probe.wait_for_change(Duration::from_secs(3600));
        assert!(
            probe.settling_since.is_none(),
            "neither a checkpoint nor a close is a commit"
        );
    }
}
