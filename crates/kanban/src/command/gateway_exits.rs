//! Which worker exits each gateway pass collected, for the pass's log line
//! (`reaped`). One spawner reaps the children of every board (whichever
//! board's pass asks first), so each exit is filed under the board whose
//! dispatcher spawned it and handed to that board's next pass.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use kanban_dispatch::{SpawnedWorker, Spawner, WorkerExit, WorkerIdentity, WorkerSpec};
use serde::Serialize;

/// Most exits kept for a board whose passes stopped asking (closed):
/// the ledger never grows without bound.
const MAX_FILED_PER_BOARD: usize = 1_024;

/// A worker of the board that exited and was reaped.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReapedWorker {
    pub task_id: String,
    pub pid: i32,
    pub exit: WorkerExit,
}

#[derive(Default)]
struct Ledger {
    /// Live children: pid → (board, task).
    spawned: HashMap<i32, (String, String)>,
    /// Reaped, not yet handed to a pass of their board.
    reaped: HashMap<String, Vec<ReapedWorker>>,
}

/// The exits of every board's workers, filed per board.
#[derive(Default)]
pub struct ExitLedger(Mutex<Ledger>);

impl ExitLedger {
    fn lock(&self) -> MutexGuard<'_, Ledger> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The exits of `board`'s workers reaped since the last call.
    pub fn take(&self, board: &str) -> Vec<ReapedWorker> {
        self.lock().reaped.remove(board).unwrap_or_default()
    }

    /// `board` was closed: drop what is filed for it.
    pub fn forget(&self, board: &str) {
        self.lock().reaped.remove(board);
    }

    fn file(&self, exits: &[(i32, WorkerExit)]) {
        let mut ledger = self.lock();
        for (pid, exit) in exits {
            // Not spawned through a ledger spawner: nobody's to report.
            let Some((board, task_id)) = ledger.spawned.remove(pid) else {
                continue;
            };
            let filed = ledger.reaped.entry(board).or_default();
            if filed.len() < MAX_FILED_PER_BOARD {
                filed.push(ReapedWorker {
                    task_id,
                    pid: *pid,
                    exit: *exit,
                });
            }
        }
    }
}

/// A board's spawner that tells the ledger what it spawns and files
/// whatever its `reap` collects; the rest is the inner spawner's.
pub struct LedgerSpawner {
    pub inner: Arc<dyn Spawner>,
    pub board: String,
    pub ledger: Arc<ExitLedger>,
}

impl Spawner for LedgerSpawner {
    fn spawn(&self, spec: &WorkerSpec) -> kanban_dispatch::Result<SpawnedWorker> {
        kanban_dispatch::spawner::spawn_one(self, spec)
    }

    fn spawn_all(&self, specs: &[WorkerSpec]) -> Vec<kanban_dispatch::Result<SpawnedWorker>> {
        let started = self.inner.spawn_all(specs);
        let mut ledger = self.ledger.lock();
        for (spec, worker) in specs.iter().zip(&started) {
            if let Ok(worker) = worker {
                ledger
                    .spawned
                    .insert(worker.pid, (self.board.clone(), spec.task_id.clone()));
            }
        }
        drop(ledger);
        started
    }

    fn reap(&self) -> Vec<(i32, WorkerExit)> {
        let exits = self.inner.reap();
        self.ledger.file(&exits);
        exits
    }

    fn exit_status(&self, id: &WorkerIdentity) -> Option<WorkerExit> {
        self.inner.exit_status(id)
    }

    fn exited_at(&self, id: &WorkerIdentity) -> Option<Instant> {
        self.inner.exited_at(id)
    }

    fn exits_between(&self, from: Instant, to: Instant) -> Vec<WorkerExit> {
        self.inner.exits_between(from, to)
    }

    fn exit_pending(&self, id: &WorkerIdentity) -> bool {
        self.inner.exit_pending(id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spawned(ledger: &ExitLedger, pid: i32, board: &str, task: &str) {
        ledger
            .lock()
            .spawned
            .insert(pid, (board.into(), task.into()));
    }

    #[test]
    fn exits_go_to_the_board_that_spawned_them_once() {
        let ledger = ExitLedger::default();
        spawned(&ledger, 10, "a", "t_a");
        spawned(&ledger, 20, "b", "t_b");
        // Board b's pass reaps both children of the shared spawner.
        ledger.file(&[
            (10, WorkerExit::Exited(0)),
            (20, WorkerExit::Signaled(9)),
            (30, WorkerExit::Exited(1)),
        ]);
        let a = ledger.take("a");
        assert_eq!(a.len(), 1);
        assert_eq!(
            (a[0].task_id.as_str(), a[0].exit),
            ("t_a", WorkerExit::Exited(0))
        );
        assert_eq!(ledger.take("b")[0].pid, 20);
        assert!(ledger.take("a").is_empty(), "handed out once");
        assert!(ledger.lock().spawned.is_empty());
    }

    #[test]
    fn a_forgotten_board_keeps_nothing() {
        let ledger = ExitLedger::default();
        spawned(&ledger, 10, "a", "t_a");
        ledger.file(&[(10, WorkerExit::Exited(0))]);
        ledger.forget("a");
        assert!(ledger.take("a").is_empty());
    }
}
