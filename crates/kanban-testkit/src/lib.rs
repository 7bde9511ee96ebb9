//! Shared fixtures of the black-box tests of `kanban` and `kanban-server`
//! (a dev-only crate, never published).
//!
//! - [`Sandbox`]: one private Hermes root in a temporary directory and the
//!   built `kanban` binary run in an environment holding nothing but what
//!   the test sets (no `HERMES_*` leaks in from the developer's shell);
//!   the CLI runner, board snapshots, worker ids, the board's store.
//! - [`workers`]: worker scripts and `kanban.profiles` config.
//! - [`gateway`]: a `kanban gateway run` child and a raw HTTP client.
//! - [`reference`]: the Python reference (hermes-agent 0.19.0) on the same
//!   board, failing loudly when it is required and missing.
//! - [`process`]: liveness of pids and process groups, polling helpers.
//! - [`mcp`]: a minimal MCP client for `kanban mcp`.
//! - [`fake_model`]: a scripted chat-completions server on loopback.
//! - [`postgres`]: a real PostgreSQL server on a Unix socket, one per test
//!   process, removed when the process ends.
//!
//! The binary is [`kanban_bin`]: `$KANBAN_BIN`, else the `kanban` cargo
//! built next to the running test (`cargo test -p kanban` builds it; tests
//! of other crates need `cargo build -p kanban` first).
//!
//! What a test inspects it reads through the CLI, the board's store (from
//! the backend factory) or, for the on-disk contract, raw SQL.

pub mod fake_model;
pub mod gateway;
pub mod mcp;
pub mod postgres;
pub mod process;
pub mod reference;
pub mod sandbox;
pub mod workers;

pub use gateway::{GatewayChild, Response, http};
pub use process::{
    SETTLE_TIMEOUT, expect_until, group_members, output_within, pid_alive, wait_for, wait_until,
};
pub use sandbox::{Sandbox, event_kinds, kanban_bin, open_board_at, stderr, stdout, text};
