//! The kanban gateway: REST + WebSocket API over the board store, the
//! embedded dispatcher loop, Prometheus metrics, auth and the root-wide
//! gateway lock.
//!
//! The server never talks SQL: every board operation goes through the
//! `kanban_store::Store` trait, run on blocking threads because the store
//! is synchronous. One store and one change watcher per open board, shared
//! by every request, WebSocket client and the dispatcher loop. The
//! dispatcher pass itself is injected ([`dispatch::DispatchPass`]).

pub mod api;
pub mod assets;
pub mod auth;
pub mod auto_decompose;
mod config_cache;
pub mod demo;
pub mod dispatch;
mod drop_off;
pub mod error;
pub mod gateway;
pub mod hosts;
pub mod hub;
pub mod lock;
pub mod logging;
pub mod markdown;
pub mod metrics;
pub mod notifier;
pub mod routes;
pub mod state;
pub mod wake;
pub mod worker;
pub mod ws;

pub use dispatch::{DispatchPass, PassRequest, PassWake};
pub use error::{ApiError, ErrorBody};
pub use gateway::{
    DEFAULT_HOST, DEFAULT_PORT, ENV_GATEWAY_TOKEN, Gateway, GatewayConfig, GatewayError,
    RunningServer,
};
pub use state::{DispatcherPresence, ServerOptions};
pub use worker::WorkerEnder;
