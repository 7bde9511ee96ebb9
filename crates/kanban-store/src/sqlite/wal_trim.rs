//! Keeping the WAL of a board without a long-lived connection short.
//!
//! Our connections keep the WAL on close (`SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE`,
//! see `open::connect`). When no other connection has the board open (no
//! gateway), each new process rebuilds the WAL index by reading and
//! checksumming every valid frame, and that recovery forgets how far the
//! last checkpoint got, so no process ever restarts the WAL: it grows by
//! every commit of every CLI process, and each later command reads all of
//! it (a 5 MB WAL doubled the CPU time of `kanban create`).
//!
//! So a store that goes away with its WAL file over [`WAL_TRIM_BYTES`]
//! runs `PRAGMA wal_checkpoint(TRUNCATE)` without waiting: a checkpoint
//! under SQLite's shared-memory locks like any other (readers and writers
//! of other connections, the Python reference's too, are excluded by those
//! locks, and SQLite gives up with `SQLITE_BUSY` rather than wait when one
//! is active), which empties the file but never deletes it, unlike the
//! close-time checkpoint the flag turns off. While a gateway holds the board
//! open its writes restart the WAL, so the file stays under the bound and
//! nothing extra runs.

use std::path::Path;
use std::time::Duration;

use rusqlite::Connection;

/// WAL size above which a closing store empties it (≈ 250 frames of 4 KiB
/// pages; a board with a gateway running stays near 100 frames, its
/// `wal_autocheckpoint`).
pub(crate) const WAL_TRIM_BYTES: u64 = 1024 * 1024;

/// Empty the WAL of the board at `db` when it is over [`WAL_TRIM_BYTES`];
/// never waits for another connection, and ignores a busy board.
pub(crate) fn trim_wal(conn: &Connection, db: &Path) {
    let mut wal = db.as_os_str().to_owned();
    wal.push("-wal");
    let big = std::fs::metadata(&wal).is_ok_and(|m| m.len() > WAL_TRIM_BYTES);
    if !big || conn.busy_timeout(Duration::ZERO).is_err() {
        return;
    }
    if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(())) {
        tracing::debug!(error = %e, "WAL not trimmed");
    }
}
