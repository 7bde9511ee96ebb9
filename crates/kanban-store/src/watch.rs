//! Cheap change detection for a board, for live feeds and the gateway's
//! dispatcher wake-up.
//!
//! A [`ChangeProbe`] answers "did anyone commit to this board since I last
//! asked?" without reading any table, so a watcher can ask every few
//! milliseconds. It must see commits by every writer: this process's own
//! store, the CLI, workers and the Python reference alike.
//!
//! # Concurrency contract
//!
//! - **No missed commit.** When a commit to the board (through any handle,
//!   in any process) returned before a call to [`ChangeProbe::version`]
//!   began, that call's value differs from the previous call's
//!   (conformance tests `probe_sees_commits_of_every_handle`,
//!   `probe_sees_concurrent_commits`).
//! - **Seen means readable.** After `version` reports a change, reads on
//!   any handle of the board see the commits behind it, so a watcher reads
//!   the events after its cursor next.
//! - A value may also change without a commit (a spurious change costs the
//!   watcher one read); backends keep that rare.
//! - A probe never writes and never holds a lock writers wait for.

use std::time::Duration;

use crate::Result;

/// A cheap "has the board changed" counter.
pub trait ChangeProbe: Send {
    /// An opaque value that differs from the previous call's whenever some
    /// connection committed a change to the board in between. Values are
    /// only comparable between calls on the same probe.
    fn version(&mut self) -> Result<u64>;

    /// Wait up to `timeout` between two calls of [`ChangeProbe::version`],
    /// returning early when the backend announces a commit (PostgreSQL's
    /// `LISTEN`). Only a hint that saves latency: the caller still compares
    /// versions, so a missed or spurious wake-up costs nothing but time.
    /// The default sleeps the whole `timeout`.
    fn wait_for_change(&mut self, timeout: Duration) {
        std::thread::sleep(timeout);
    }

    /// Also end [`ChangeProbe::wait_for_change`] on a poke: the datagram
    /// our own processes send after each commit (SQLite: see
    /// `crate::sqlite::poke`). Only the root's gateway asks, holding the
    /// root lock. Whether the probe listens now; the default (a backend
    /// that announces commits by itself, or has no pokes) does not.
    fn listen_for_pokes(&mut self) -> bool {
        false
    }

    /// Stop watching the board's files (tests of the other wake paths).
    fn drop_file_watch(&mut self) {}
}
