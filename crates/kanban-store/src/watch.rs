//! Cheap change detection for a board, for live feeds and the gateway's
//! dispatcher wake-up.
//!
//! A [`ChangeProbe`] answers "did anyone commit to this board since I last
//! asked?" without reading any table, so a watcher can ask every few
//! milliseconds. It must see commits by every writer: this process's own
//! store, the CLI, workers and the Python reference alike.

use crate::Result;

/// A cheap "has the board changed" counter.
pub trait ChangeProbe: Send {
    /// An opaque value that differs from the previous call's whenever some
    /// connection committed a change to the board in between. Values are
    /// only comparable between calls on the same probe.
    fn version(&mut self) -> Result<u64>;
}
