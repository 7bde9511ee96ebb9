//! Worker logs and attachment blobs kept *in the board* by backends that
//! several hosts share (ADR 0002). On such a board a worker's log file and
//! an attachment's file exist only on the host that wrote them, so the
//! backend also keeps a copy every gateway can read: attachment blobs under
//! the attachment size cap, and each run's log as it grows, under the
//! per-run log cap. A SQLite board keeps neither: the files are the
//! Hermes contract and every reader is on the same host.
//!
//! The types here are the requests and answers of those `Store` methods;
//! [`LogRange`] and [`slice_of_parts`] are shared so every backend cuts a
//! log window exactly as the file readers do.

/// Runs of one task whose log a backend keeps (older runs' copies are
/// dropped when a new run starts, as the log file rotates).
pub const LOG_RUNS_KEPT: i64 = 3;

/// New output of one run's log, at `offset` bytes into the run's output
/// (as the worker wrapper's capped log holds it).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WorkerLogAppend {
    pub task_id: String,
    pub run_id: i64,
    /// Run-relative offset of `bytes`.
    pub offset: u64,
    pub bytes: Vec<u8>,
    /// Drop what the board holds of this run from `offset` on first: the
    /// capped log cut its middle, so everything after its head changed.
    pub replace: bool,
    /// The run's cap (`worker_log_max_run_bytes`): bytes past it are not
    /// kept, whatever the caller sends.
    pub max_run_bytes: u64,
}

/// Which bytes of a log to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogRange {
    /// The last `n` bytes.
    Tail(u64),
    /// `limit` bytes from `offset`.
    Page { offset: u64, limit: u64 },
}

impl LogRange {
    /// `(start, len)` of this range in a log of `size` bytes.
    pub fn bounds(self, size: u64) -> (u64, u64) {
        match self {
            LogRange::Tail(t) => (size.saturating_sub(t), t.min(size)),
            LogRange::Page { offset, limit } => {
                (offset.min(size), limit.min(size.saturating_sub(offset)))
            }
        }
    }
}

/// A window of a log the board keeps.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogSlice {
    /// Size of the whole log (every kept run, oldest first).
    pub size: u64,
    /// Where `bytes` start in it.
    pub offset: u64,
    pub bytes: Vec<u8>,
}

/// The window `range` of a log made of `parts` (each part's length, in
/// log order): which parts to read, and from where in each. Returns the
/// log's size, the window's start, and `(part index, from, len)` triples.
pub fn slice_of_parts(parts: &[u64], range: LogRange) -> (u64, u64, Vec<(usize, u64, u64)>) {
    let size: u64 = parts.iter().sum();
    let (start, len) = range.bounds(size);
    let end = start + len;
    let mut out = Vec::new();
    let mut at = 0u64;
    for (i, &n) in parts.iter().enumerate() {
        let (lo, hi) = (at.max(start), (at + n).min(end));
        if lo < hi {
            out.push((i, lo - at, hi - lo));
        }
        at += n;
    }
    (size, start, out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_cut_across_parts() {
        let parts = [4, 3, 5];
        assert_eq!(
            slice_of_parts(&parts, LogRange::Tail(6)),
            (12, 6, vec![(1, 2, 1), (2, 0, 5)])
        );
        assert_eq!(
            slice_of_parts(
                &parts,
                LogRange::Page {
                    offset: 3,
                    limit: 2
                }
            ),
            (12, 3, vec![(0, 3, 1), (1, 0, 1)])
        );
        assert_eq!(
            slice_of_parts(
                &parts,
                LogRange::Page {
                    offset: 20,
                    limit: 2
                }
            ),
            (12, 12, vec![])
        );
        assert_eq!(slice_of_parts(&[], LogRange::Tail(5)), (0, 0, vec![]));
    }
}
