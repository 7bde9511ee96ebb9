//! Ending the worker a transition detached from its task (complete, block,
//! schedule, reclaim, reassign, archive or a direct move through the API)
//! or whose task was deleted, without blocking the request.
//!
//! The server never signals a process itself: every ending goes through
//! the injected [`WorkerEnder`]. The binary plugs in the dispatcher's
//! identity-checked ending (the run's recorded pid, process start time and
//! boot), so a reused pid never gets a signal (SPEC §4).

use std::sync::Arc;

use kanban_store::EndedWorker;
use kanban_store::dispatch_ops::DispatchStore;

/// Ends a worker detached from its task.
pub trait WorkerEnder: Send + Sync + 'static {
    /// `run_id` is the run the worker was started for (its recorded
    /// identity is checked when there is one). Must not block for long.
    fn end_worker(&self, store: &Arc<dyn DispatchStore>, run_id: Option<i64>, worker: &EndedWorker);
}

/// The ending of a server built without one (an embedded API): workers are
/// left running, never signalled unidentified. Logged so it is noticed.
pub struct LeaveWorkersRunning;

impl WorkerEnder for LeaveWorkersRunning {
    fn end_worker(&self, _: &Arc<dyn DispatchStore>, run_id: Option<i64>, worker: &EndedWorker) {
        tracing::warn!(
            pid = worker.pid,
            run_id,
            "no worker ending configured: the worker is left running"
        );
    }
}

/// One request's way to end workers: the injected ender and the board's
/// store (where the runs' worker records live).
#[derive(Clone, Copy)]
pub struct Ending<'a> {
    ender: &'a dyn WorkerEnder,
    store: &'a Arc<dyn DispatchStore>,
}

impl<'a> Ending<'a> {
    pub fn new(ender: &'a dyn WorkerEnder, store: &'a Arc<dyn DispatchStore>) -> Ending<'a> {
        Ending { ender, store }
    }

    /// End the worker a transition detached, if any; `run_id` is the run
    /// that transition closed.
    pub fn end(&self, run_id: Option<i64>, worker: Option<&EndedWorker>) {
        if let Some(w) = worker {
            self.ender.end_worker(self.store, run_id, w);
        }
    }
}
