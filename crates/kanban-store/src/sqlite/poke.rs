//! The poke: a datagram that tells a running gateway, right after a
//! commit, that its board changed.
//!
//! The file watch of [`super::watch`] wakes on a commit's first WAL write,
//! before the commit is published; the gateway then re-reads
//! `PRAGMA data_version` until it moves. A poke is sent *after* `COMMIT`
//! returned, so the version it wakes the gateway for is already readable
//! and no settling is needed.
//!
//! - **Where.** A Unix datagram socket next to the database file, named like
//!   SQLite's own siblings: `kanban.db` → `kanban.db-gateway.sock`
//!   ([`socket_path`]). Only a gateway binds it ([`PokeListener`], under the
//!   root's gateway lock); every store of the board sends to it
//!   ([`Poker`]): the CLI, workers, the MCP server, the gateway itself.
//! - **Never in the way.** Sending is one non-blocking `sendto` on a socket
//!   made once per store; an absent file (no gateway), a stale one (the
//!   gateway died) and a full queue (the gateway is already awake) are all
//!   ignored. A poke is only a hint: the gateway still compares versions,
//!   and the file watch and the poll still wake it for writers that do not
//!   poke (the Python reference).
//! - **Stale files.** A gateway that died leaves its socket file; the next
//!   one removes whatever is at the path before binding (it holds the
//!   root's gateway lock), and removes its own file when it closes the
//!   board — only if the file is still the one it bound.

use std::ffi::OsString;
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU8, Ordering};

/// Appended to the database file's name for the poke socket's.
pub const POKE_SOCKET_SUFFIX: &str = "-gateway.sock";

/// What a poke carries (its content is not looked at).
const POKE_MESSAGE: &[u8] = b"!";

/// Size of the buffer datagrams are drained into.
const DRAIN_BUFFER: usize = 64;

/// The poke socket of the board stored at `db`: `<db>-gateway.sock`.
pub fn socket_path(db: &Path) -> PathBuf {
    let mut name: OsString = db.as_os_str().to_owned();
    name.push(POKE_SOCKET_SUFFIX);
    PathBuf::from(name)
}

/// The sending side, one per store; the socket is made on first use.
#[derive(Debug)]
pub(crate) struct Poker {
    path: PathBuf,
    sock: OnceLock<Option<UnixDatagram>>,
    /// What the last poke found: [`HEARD`], [`UNHEARD`] or 0 (none yet).
    heard: AtomicU8,
}

const HEARD: u8 = 1;
const UNHEARD: u8 = 2;

impl Poker {
    pub(crate) fn new(db: &Path) -> Poker {
        Poker {
            path: socket_path(db),
            sock: OnceLock::new(),
            heard: AtomicU8::new(0),
        }
    }

    /// Tell a listening gateway the board changed; never blocks, never fails.
    pub(crate) fn poke(&self) {
        let sock = self.sock.get_or_init(|| {
            let s = UnixDatagram::unbound().ok()?;
            s.set_nonblocking(true).ok()?;
            Some(s)
        });
        if let Some(s) = sock {
            // ENOENT / ECONNREFUSED: no gateway; EAGAIN: it is awake anyway.
            let heard = match s.send_to(POKE_MESSAGE, &self.path) {
                Ok(_) => true,
                Err(e) => e.kind() == std::io::ErrorKind::WouldBlock,
            };
            self.heard
                .store(if heard { HEARD } else { UNHEARD }, Ordering::Relaxed);
        }
    }

    /// Whether the last poke reached a gateway (`None` before the first).
    pub(crate) fn gateway_heard(&self) -> Option<bool> {
        match self.heard.load(Ordering::Relaxed) {
            HEARD => Some(true),
            UNHEARD => Some(false),
            _ => None,
        }
    }
}

/// The receiving side: the bound socket of a gateway's board watcher.
#[derive(Debug)]
pub struct PokeListener {
    sock: UnixDatagram,
    path: PathBuf,
    /// Device and inode of the file bound, to remove only our own.
    file: (u64, u64),
}

/// Mode of the poke socket: the owner's alone, as the board file.
const SOCKET_MODE: u32 = 0o600;

impl PokeListener {
    /// Bind the poke socket of the board at `db`, replacing a file left
    /// there (a dead gateway's; the caller holds the root's lock). `None`
    /// when the socket cannot be bound (a read-only directory, a path too
    /// long for a socket address): the board then wakes as before.
    pub fn bind(db: &Path) -> Option<PokeListener> {
        let path = socket_path(db);
        let sock = match UnixDatagram::bind(&path) {
            Ok(s) => s,
            Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => {
                std::fs::remove_file(&path).ok()?;
                UnixDatagram::bind(&path).ok()?
            }
            Err(_) => return None,
        };
        sock.set_nonblocking(true).ok()?;
        // Only the board's owner may poke (sending needs write access to
        // the file); the umask would leave it open to others.
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(SOCKET_MODE)).ok()?;
        let meta = std::fs::symlink_metadata(&path).ok()?;
        Some(PokeListener {
            sock,
            path,
            file: (meta.dev(), meta.ino()),
        })
    }

    /// The socket, for `poll`.
    pub fn as_fd(&self) -> BorrowedFd<'_> {
        self.sock.as_fd()
    }

    /// Read every queued poke; whether there was one.
    pub fn drain(&self) -> bool {
        let mut buf = [0u8; DRAIN_BUFFER];
        let mut poked = false;
        while self.sock.recv(&mut buf).is_ok() {
            poked = true;
        }
        poked
    }

    /// The socket file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for PokeListener {
    fn drop(&mut self) {
        let ours =
            std::fs::symlink_metadata(&self.path).is_ok_and(|m| (m.dev(), m.ino()) == self.file);
        if ours {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_socket_sits_beside_the_database() {
        assert_eq!(
            socket_path(Path::new("/r/kanban.db")),
            PathBuf::from("/r/kanban.db-gateway.sock")
        );
    }

    #[test]
    fn a_poke_reaches_the_listener_and_is_drained() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("kanban.db");
        let listener = PokeListener::bind(&db).expect("bound");
        let mode = std::fs::metadata(listener.path())
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, SOCKET_MODE, "the owner's alone");
        assert!(!listener.drain(), "nothing sent yet");
        let poker = Poker::new(&db);
        poker.poke();
        poker.poke();
        assert!(listener.drain(), "the pokes arrived");
        assert!(!listener.drain(), "drained at once");
    }

    #[test]
    fn poking_nobody_is_silent() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("kanban.db");
        // No file at all.
        Poker::new(&db).poke();
        // A stale file: bound once, its socket gone.
        let stale = UnixDatagram::bind(socket_path(&db)).unwrap();
        drop(stale);
        assert!(socket_path(&db).exists(), "the stale file stays");
        Poker::new(&db).poke();
    }

    #[test]
    fn a_stale_file_is_replaced_and_only_our_file_removed() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("kanban.db");
        drop(UnixDatagram::bind(socket_path(&db)).unwrap());
        let first = PokeListener::bind(&db).expect("a stale file does not stop the bind");
        Poker::new(&db).poke();
        assert!(first.drain(), "the new socket receives");
        // A second listener takes the path over; the first one's drop
        // must not remove the second one's file.
        let second = PokeListener::bind(&db).expect("rebound");
        drop(first);
        assert!(second.path().exists(), "not removed by the old listener");
        Poker::new(&db).poke();
        assert!(second.drain());
        let path = second.path().to_path_buf();
        drop(second);
        assert!(!path.exists(), "removed by its own listener");
    }

    #[test]
    fn a_full_queue_does_not_block_the_sender() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("kanban.db");
        let listener = PokeListener::bind(&db).expect("bound");
        let poker = Poker::new(&db);
        // Far more than a datagram queue holds: must return each time.
        for _ in 0..10_000 {
            poker.poke();
        }
        assert!(listener.drain());
    }
}
