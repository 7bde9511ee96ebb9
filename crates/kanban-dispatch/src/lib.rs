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
//! The pass ([`pass::Dispatcher::dispatch_once`], reference `dispatch_once`)
//! runs the steps of reference §3.1 in order ([`reclaim`] for the reclaim,
//! crash and timeout steps, [`launch`] for claim → workspace → spawn),
//! under the board's dispatch [`lock`], and reports every bucket of §3.2
//! ([`result::DispatchResult`]).
//!
//! This crate never talks SQL: board state changes go through the store's
//! traits (`Store` + `DispatchStore`), one transaction per state change.

pub mod command;
pub mod context_source;
pub mod env;
pub mod error;
pub mod guard;
pub mod health;
pub mod launch;
pub mod linger;
pub mod liveness;
pub mod lock;
pub mod pass;
pub mod reap;
pub mod reclaim;
pub mod recording;
pub mod result;
pub mod spawner;
pub mod terminate;
pub mod workspace;

#[cfg(test)]
mod testutil;

pub use context_source::StoreContextSource;
pub use error::{DispatchError, Result};
pub use health::{StuckDetector, StuckWarning, TickSummary};
pub use linger::{EndOutcome, end_worker};
pub use liveness::{Liveness, ProcLiveness, StaticLiveness, WorkerIdentity, WorkerState};
pub use pass::{
    BoardContext, ContextSource, DispatchOptions, Dispatcher, DispatcherParts, ProfileSource,
    TitleBodyContext, dispatch_once,
};
pub use reap::{ExitKind, WorkerExit, classify_exit};
pub use recording::RecordingSpawner;
pub use result::DispatchResult;
pub use spawner::{LogSpec, ProcessSpawner, SpawnedWorker, Spawner, StubSpawner, WorkerSpec};
pub use terminate::{Begun, TerminationOutcome, TerminationReport, Terminator};
