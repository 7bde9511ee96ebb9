//! The dispatcher: turns ready tasks into running workers and keeps the
//! board true when workers crash, hang, fail to start or finish.
//!
//! Process layer (this crate's own I/O): [`liveness`] (is a worker alive,
//! and is it still ours), [`spawner`] (start a worker in its own session
//! with its log and environment, reap it, remember how it exited),
//! [`command`] (the worker's argv), [`env`](mod@env) (its environment),
//! [`terminate`] (end a process group without blocking), [`workspace`]
//! (scratch / dir / git worktree), [`linger`] (end the worker of a
//! finished attempt), [`recording`] (exit records, so a dispatcher process
//! classifies workers it did not spawn), [`context_source`] (the full
//! worker context read from the store) and [`health`] (stuck telemetry).
//!
//! The pass ([`Dispatcher::dispatch_once`] in [`pass`], reference
//! `dispatch_once`) runs the steps of reference §3.1 in order ([`reclaim`]
//! for the reclaim and timeout steps, [`crash`] for crash detection,
//! [`launch`] for claim → workspace → spawn, [`linger`] for finished
//! attempts' workers) under the board's dispatch lock
//! (`DispatchStore::dispatch_lock`), and reports every bucket of §3.2
//! ([`result::DispatchResult`]); a pass that would find what the last one
//! found answers without reading the board ([`quiet`]). Each step is an `impl Dispatcher` block in
//! its own module; they share the [`dispatcher`] object, its [`options`]
//! and the pending releases (`release`), and only [`pass`] names the
//! steps, so the modules form no cycle (`scripts/module_cycles.py`).
//!
//! This crate never talks SQL: board state changes go through the store's
//! traits (`Store` + `DispatchStore`), one transaction per state change.

pub mod command;
pub mod context_source;
pub mod crash;
pub mod dispatcher;
pub mod env;
pub mod error;
pub mod fork_server;
pub mod guard;
pub mod health;
pub mod host_lease;
pub mod launch;
pub mod linger;
pub mod linger_scan;
pub mod liveness;
pub mod log_cap;
pub mod log_mirror;
pub mod options;
pub mod pass;
pub mod quiet;
pub mod reap;
pub mod reclaim;
pub mod recording;
pub(crate) mod release;
pub mod result;
pub(crate) mod session_spawn;
pub mod spare;
pub mod spawner;
pub mod terminate;
pub mod workspace;

#[cfg(test)]
mod testutil;

pub use context_source::StoreContextSource;
pub use dispatcher::{
    BoardContext, ContextSource, Dispatcher, DispatcherParts, ProfileSource, TitleBodyContext,
};
pub use error::{DispatchError, Result};
pub use health::{StuckDetector, StuckWarning, TickSummary};
pub use linger::{EndOutcome, end_worker};
pub use liveness::{Liveness, ProcLiveness, StaticLiveness, WorkerIdentity, WorkerState};
pub use options::DispatchOptions;
pub use pass::dispatch_once;
pub use reap::{ExitKind, WorkerExit, classify_exit};
pub use recording::RecordingSpawner;
pub use result::DispatchResult;
pub use spawner::{LogSpec, ProcessSpawner, SpawnedWorker, Spawner, StubSpawner, WorkerSpec};
pub use terminate::{Begun, TerminationOutcome, TerminationReport, Terminator};
