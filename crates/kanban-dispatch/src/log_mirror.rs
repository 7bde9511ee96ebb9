//! A copy of a run's log in the board, for boards that hosts share without
//! sharing a disk (ADR 0002): the dashboard of any gateway shows the log of
//! a worker running on another host.
//!
//! Who copies: the worker wrapper, which already pumps the worker's output
//! into the capped log file ([`crate::log_cap`]). It sees every byte as it
//! is written, lives exactly as long as the run, needs no gateway (a
//! one-shot `kanban dispatch` spawns wrappers too), and knows when the cap
//! cut the file, so the copy holds what the file holds. A mirror flushes
//! the file's new bytes every [`LOG_MIRROR_INTERVAL`], or sooner once
//! [`LOG_MIRROR_BATCH_BYTES`] are waiting; after a cut it sends the run's
//! output again from the cap's head on. A failed flush (database away) is
//! retried at the next one: the file still holds every byte.

use std::sync::Mutex;
use std::time::Duration;

use kanban_store::board_files::WorkerLogAppend;
use kanban_store::{BackendError, Store, StoreError};

use crate::log_cap::CappedLog;

/// Longest time new output waits before it is copied to the board.
pub const LOG_MIRROR_INTERVAL: Duration = Duration::from_secs(1);
/// Waiting output that triggers a copy before the interval ends.
pub const LOG_MIRROR_BATCH_BYTES: u64 = 64 * 1024;

/// What one run's copy in the board already holds.
#[derive(Debug, Clone)]
pub struct LogMirror {
    task_id: String,
    run_id: i64,
    /// Run-relative bytes the board holds.
    shipped: u64,
    /// `CappedLog::cut_bytes` at the last flush: a change means a cut.
    cut_seen: u64,
}

impl LogMirror {
    pub fn new(task_id: impl Into<String>, run_id: i64) -> LogMirror {
        LogMirror {
            task_id: task_id.into(),
            run_id,
            shipped: 0,
            cut_seen: 0,
        }
    }

    /// Bytes written to the log that the board does not hold yet.
    pub fn waiting(&self, log: &CappedLog) -> u64 {
        log.run_len().saturating_sub(self.shipped)
    }

    /// Copy what the board lacks. The log is locked only while its bytes
    /// are read, not while the board is written.
    pub fn flush(&mut self, log: &Mutex<CappedLog>, store: &dyn Store) -> kanban_store::Result<()> {
        let (req, len, cut) = {
            let log = log.lock().unwrap_or_else(|p| p.into_inner());
            let (len, cut) = (log.run_len(), log.cut_bytes());
            let replace = cut != self.cut_seen;
            // A cut keeps the head and rewrites everything after it.
            let from = if replace {
                self.shipped.min(log.cap().head_bytes())
            } else {
                self.shipped
            };
            if from >= len && !replace {
                return Ok(());
            }
            let bytes = log.read_run(from, len).map_err(|e| {
                StoreError::Backend(BackendError::context("cannot read the worker log", e))
            })?;
            let req = WorkerLogAppend {
                task_id: self.task_id.clone(),
                run_id: self.run_id,
                offset: from,
                bytes,
                replace,
                max_run_bytes: log.cap().max_bytes(),
            };
            (req, len, cut)
        };
        store.append_worker_log(&req)?;
        self.shipped = len;
        self.cut_seen = cut;
        Ok(())
    }
}
