//! Domain core of the kanban board: statuses, tasks, runs, events, ids,
//! durations, validation, the state-transition rules (with the circuit
//! breaker, the concurrency ceilings and automatic promotion) and the event
//! payloads, as pure functions.
//!
//! This crate never does I/O: no files, no clocks, no processes. Callers pass
//! the current time and the facts a rule needs; rules return a decision.

pub mod bytescan;
pub mod context;
pub mod defaults;
pub mod diagnostics;
pub mod error;
pub mod event;
pub mod fetch_policy;
pub mod ids;
pub mod json_text;
pub mod model;
pub mod payload;
pub mod redact;
pub mod status;
pub mod swarm;
pub mod transitions;
pub mod validate;

pub use error::CoreError;
pub use event::EventKind;
pub use model::*;
pub use status::{BlockKind, RunOutcome, Status};
