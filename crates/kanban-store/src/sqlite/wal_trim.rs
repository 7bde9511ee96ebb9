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
//! Worse, once the WAL holds 100 frames or more (`wal_autocheckpoint`),
//! every process's first commit checkpoints all of it again, with its
//! fsyncs, since recovery counted nothing as checkpointed.
//!
//! So a store that goes away with its WAL file over a bound runs
//! `PRAGMA wal_checkpoint(TRUNCATE)` without waiting: a checkpoint
//! under SQLite's shared-memory locks like any other (readers and writers
//! of other connections, the Python reference's too, are excluded by those
//! locks, and SQLite gives up with `SQLITE_BUSY` rather than wait when one
//! is active), which empties the file but never deletes it, unlike the
//! close-time checkpoint the flag turns off. The bound is
//! [`WAL_TRIM_ALONE_BYTES`], under the autocheckpoint's 100 frames, when
//! this store's last commit found no gateway listening (see `poke`);
//! otherwise [`WAL_TRIM_BYTES`]: a gateway's writes restart the WAL, so the
//! file stays under that bound and nothing extra runs beside its passes
//! (a trim takes the writer lock, which a claim would wait for).

use std::path::Path;
use std::time::Duration;

use rusqlite::Connection;

/// WAL size above which a closing store empties it (≈ 250 frames of 4 KiB
/// pages; a board with a gateway running stays near 100 frames, its
/// `wal_autocheckpoint`).
pub(crate) const WAL_TRIM_BYTES: u64 = 1024 * 1024;

/// WAL size above which a store that found no gateway empties it: about
/// 60 frames, so the next process reads little back and its commit stays
/// under the 100-frame autocheckpoint.
pub(crate) const WAL_TRIM_ALONE_BYTES: u64 = 256 * 1024;

/// Empty the WAL of the board at `db` when it is over `bound` bytes;
/// never waits for another connection, and ignores a busy board.
pub(crate) fn trim_wal(conn: &Connection, db: &Path, bound: u64) {
    let mut wal = db.as_os_str().to_owned();
    wal.push("-wal");
    let big = std::fs::metadata(&wal).is_ok_and(|m| m.len() > bound);
    if !big || conn.busy_timeout(Duration::ZERO).is_err() {
        return;
    }
    if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(())) {
        tracing::debug!(error = %e, "WAL not trimmed");
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::clock::ManualClock;
    use crate::sqlite::poke::PokeListener;
    use crate::sqlite::{OpenOptions, SqliteStore};
    use crate::{NewTask, Store};

    /// WAL sizes after each of `n` short-lived stores created one task.
    fn wal_sizes_after_short_lived_writers(db: &Path, n: usize) -> Vec<u64> {
        let wal = db.with_extension("db-wal");
        (0..n)
            .map(|i| {
                let store = SqliteStore::open(
                    db,
                    OpenOptions::create(),
                    Arc::new(ManualClock::new(1_700_000_000)),
                )
                .unwrap();
                store
                    .create_task(&NewTask {
                        title: format!("task {i}"),
                        ..Default::default()
                    })
                    .unwrap();
                drop(store);
                std::fs::metadata(&wal).map(|m| m.len()).unwrap_or(0)
            })
            .collect()
    }

    #[test]
    fn without_a_gateway_short_lived_writers_keep_the_wal_under_the_autocheckpoint() {
        let dir = tempfile::tempdir().unwrap();
        let sizes = wal_sizes_after_short_lived_writers(&dir.path().join("kanban.db"), 60);
        let most = *sizes.iter().max().unwrap();
        assert!(
            most <= WAL_TRIM_ALONE_BYTES,
            "WAL grew to {most} bytes: {sizes:?}"
        );
        assert!(
            sizes.iter().skip(1).any(|s| *s == 0),
            "never emptied: {sizes:?}"
        );
    }

    #[test]
    fn with_a_gateway_listening_the_wal_is_left_to_it() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("kanban.db");
        // Made first, so the listener's socket sits next to a board.
        drop(wal_sizes_after_short_lived_writers(&db, 1));
        let _gateway = PokeListener::bind(&db).expect("bind the poke socket");
        let sizes = wal_sizes_after_short_lived_writers(&db, 40);
        let most = *sizes.iter().max().unwrap();
        assert!(
            most > WAL_TRIM_ALONE_BYTES && most <= WAL_TRIM_BYTES + 64 * 1024,
            "{sizes:?}"
        );
    }
}
