//! Shared state of the HTTP layer and the options it is built from.

use std::sync::Arc;
use std::time::Duration;

use kanban_hermes::config::KanbanConfig;
use kanban_hermes::layout::{ProcessEnv, Root};
use kanban_store::{Clock, SystemClock};
use tokio::sync::watch;

use crate::dispatch::DispatchPass;
use crate::error::{ApiError, ApiResult};
use crate::hosts::AllowedHosts;
use crate::hub::{Board, BoardHub, CHANGE_POLL_INTERVAL};
use crate::worker::{Ending, LeaveWorkersRunning, WorkerEnder};

/// Largest JSON body accepted by any route.
pub const DEFAULT_BODY_LIMIT_BYTES: usize = 1024 * 1024;

/// Whether a dispatcher will pick up ready tasks, for the create warning
/// (seed 001): the dashboard shows it as a banner.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DispatcherPresence {
    /// This gateway runs the dispatcher loop; whether it dispatches right
    /// now is [`BoardHub::dispatching`] (the live `dispatch_in_gateway`).
    Hosted,
    /// `HERMES_KANBAN_DISPATCH_IN_GATEWAY=0|false|no|off` at start-up.
    DisabledByEnv,
    /// This gateway was started without a dispatch pass to run.
    NoDispatcher,
    /// Serving the API only (e.g. embedded in tests); the lock file decides
    /// whether another gateway dispatches.
    NotHosted,
}

const WARN_CONFIG_OFF: &str = "The gateway is running but kanban.dispatch_in_gateway is false in \
    config.yaml, so nothing will pick this task up. Set it to true, or run `kanban dispatch` yourself.";
const WARN_ENV_OFF: &str = "The gateway is running with HERMES_KANBAN_DISPATCH_IN_GATEWAY turned \
    off, so nothing will pick this task up. Unset it and restart `kanban gateway start`, or run \
    `kanban dispatch` yourself.";
const WARN_NO_DISPATCHER: &str = "This gateway has no dispatcher, so nothing will pick this task \
    up. Run `kanban dispatch` yourself.";
const WARN_NO_GATEWAY: &str = "No gateway is running, so this task will sit in 'ready'. Start one \
    with `kanban gateway start`, or run one pass with `kanban dispatch`.";

/// How the API is served.
#[derive(Clone)]
pub struct ServerOptions {
    pub root: Root,
    /// Bearer token required on every route when set.
    pub token: Option<String>,
    /// Backs `POST /dispatch`; `None` answers 501.
    pub dispatch: Option<Arc<dyn DispatchPass>>,
    pub presence: DispatcherPresence,
    pub body_limit: usize,
    pub poll_interval: Duration,
    pub clock: Arc<dyn Clock>,
    /// `Host` values served besides loopback ones when there is no token
    /// (DNS-rebinding guard).
    pub allowed_hosts: Vec<String>,
    /// Ends the worker a transition or a delete detached from its task;
    /// `None` leaves workers running ([`LeaveWorkersRunning`]).
    pub workers: Option<Arc<dyn WorkerEnder>>,
}

impl ServerOptions {
    pub fn new(root: Root) -> ServerOptions {
        ServerOptions {
            root,
            token: None,
            dispatch: None,
            presence: DispatcherPresence::NotHosted,
            body_limit: DEFAULT_BODY_LIMIT_BYTES,
            poll_interval: CHANGE_POLL_INTERVAL,
            clock: Arc::new(SystemClock),
            allowed_hosts: Vec::new(),
            workers: None,
        }
    }
}

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub hub: Arc<BoardHub>,
    pub token: Option<Arc<str>>,
    pub dispatch: Option<Arc<dyn DispatchPass>>,
    pub presence: DispatcherPresence,
    /// Flips to `true` when the gateway stops: open WebSockets close.
    pub shutdown: watch::Receiver<bool>,
    /// Hosts served without a token (see [`crate::auth::host_guard`]).
    pub allowed_hosts: Arc<AllowedHosts>,
    pub workers: Arc<dyn WorkerEnder>,
}

impl AppState {
    /// The server's worker ending on one of its boards.
    pub fn ending<'a>(&'a self, board: &'a Board) -> Ending<'a> {
        Ending::new(self.workers.as_ref(), &board.store)
    }

    /// The state of a server built from `opts` around `hub`.
    pub fn new(opts: &ServerOptions, hub: Arc<BoardHub>, shutdown: watch::Receiver<bool>) -> Self {
        AppState {
            hub,
            token: opts.token.as_deref().map(Arc::from),
            dispatch: opts.dispatch.clone(),
            presence: opts.presence,
            shutdown,
            allowed_hosts: Arc::new(AllowedHosts::new(&opts.allowed_hosts)),
            workers: opts
                .workers
                .clone()
                .unwrap_or_else(|| Arc::new(LeaveWorkersRunning)),
        }
    }

    pub fn root(&self) -> &Root {
        self.hub.root()
    }

    /// The `kanban:` config, read afresh (hot reload). A broken file is a
    /// 500 naming it rather than silent defaults.
    pub fn config(&self) -> ApiResult<KanbanConfig> {
        KanbanConfig::load(self.root(), &ProcessEnv).map_err(|e| ApiError::internal(e.to_string()))
    }

    /// The warning `POST /tasks` returns for a ready, assigned task that no
    /// dispatcher will pick up; `None` when one will. Never fails: a probe
    /// problem must not break task creation.
    pub fn dispatcher_warning(&self) -> Option<String> {
        let msg = match self.presence {
            // The value the dispatcher loop acts on, not a second reading
            // of config.yaml (the env switch is `DisabledByEnv`).
            DispatcherPresence::Hosted if self.hub.dispatching() => return None,
            DispatcherPresence::Hosted => WARN_CONFIG_OFF,
            DispatcherPresence::DisabledByEnv => WARN_ENV_OFF,
            DispatcherPresence::NoDispatcher => WARN_NO_DISPATCHER,
            DispatcherPresence::NotHosted if crate::lock::dispatcher_lock_held(self.root()) => {
                return None;
            }
            DispatcherPresence::NotHosted => WARN_NO_GATEWAY,
        };
        Some(msg.to_string())
    }
}
