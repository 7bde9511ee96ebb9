//! The gateway's dispatcher, plugged into `kanban-server`: one
//! [`Dispatcher`] per board behind the [`DispatchPass`] the server's loop
//! calls, and the identity-checked ending of workers the API detaches.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Instant;

use anyhow::Result;
use kanban_dispatch::{
    BoardContext, DispatchOptions, Dispatcher, DispatcherParts, ProcLiveness, ProcessSpawner,
    ProfileSource, RecordingSpawner, Spawner, StoreContextSource, StuckDetector, Terminator,
};
use kanban_hermes::config::EnvTunables;
use kanban_hermes::layout::{ProcessEnv, Root};
use kanban_hermes::profiles::{ProfileKind, Profiles};
use kanban_server::demo;
use kanban_server::{DispatchPass, PassRequest, WorkerEnder};
use kanban_store::dispatch_ops::DispatchStore;
use kanban_store::{Store, SystemClock};
use serde_json::Value;

use super::gateway_exits::{ExitLedger, LedgerSpawner};
use crate::output::fmt_ts;

/// The dispatcher's identity-checked ending of a worker (the run's recorded
/// pid, start time and boot) for every worker the API detaches (complete,
/// block, reclaim, reassign, archive, delete, ...): the same ending the CLI
/// uses, escalating to SIGKILL on its own thread.
pub(super) struct IdentityEnder {
    liveness: Arc<ProcLiveness>,
    terminator: Terminator,
}

impl IdentityEnder {
    pub(super) fn new() -> IdentityEnder {
        let liveness = Arc::new(ProcLiveness::new());
        IdentityEnder {
            terminator: Terminator::new(liveness.clone()),
            liveness,
        }
    }
}

impl WorkerEnder for IdentityEnder {
    fn end_worker(
        &self,
        store: &Arc<dyn DispatchStore>,
        run_id: Option<i64>,
        worker: &kanban_store::EndedWorker,
    ) {
        let ended = kanban_dispatch::end_worker(
            store.as_ref(),
            self.liveness.as_ref(),
            &self.terminator,
            run_id,
            worker,
        );
        if let Err(e) = ended {
            tracing::warn!(pid = worker.pid, error = %e, "cannot end a detached worker");
        }
    }
}

/// Profiles re-read every pass (hot reload of `kanban.profiles`).
struct LiveProfiles(RwLock<Profiles>);

impl ProfileSource for LiveProfiles {
    fn resolve_profile(&self, name: &str) -> Option<ProfileKind> {
        self.0
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .resolve_profile(name)
    }
}

/// A board's dispatcher, the profiles it resolves against and its stuck
/// telemetry.
#[derive(Clone)]
struct BoardDispatcher {
    /// The hub's store of the board this was made for: a board closed and
    /// opened again (archived, then made anew) has another.
    store: Arc<dyn DispatchStore>,
    dispatcher: Arc<Dispatcher>,
    profiles: Arc<LiveProfiles>,
    stuck: Arc<Mutex<StuckDetector>>,
}

/// `kanban-dispatch` plugged into the gateway: one [`Dispatcher`] per board,
/// kept across passes (it remembers terminations in flight and its
/// promotion cursor), sharing one spawner so every child is reaped. The
/// same parts as `kanban dispatch`: the full worker context and, when the
/// wrapper is known, exit-recording workers.
#[derive(Default)]
pub(super) struct KanbanPass {
    boards: Mutex<HashMap<String, BoardDispatcher>>,
    spawner: Arc<ProcessSpawner>,
    liveness: Arc<ProcLiveness>,
    /// Argv prefix of the exit-recording wrapper (`kanban __worker-exec`);
    /// `None` runs workers unwrapped.
    pub(super) worker_wrapper: Option<Vec<String>>,
    /// Profiles added to every config read (`--demo`); config.yaml wins.
    pub(super) overlay: demo::DemoOverlay,
    /// Worker exits per board, for the pass log line.
    exits: Arc<ExitLedger>,
}

impl Drop for KanbanPass {
    /// The last reference goes away in async code (the server's or the
    /// dispatcher loop's task): the stores' connections close elsewhere.
    fn drop(&mut self) {
        let boards = std::mem::take(self.boards.get_mut().unwrap_or_else(|p| p.into_inner()));
        kanban_server::hub::drop_off_runtime(boards);
    }
}

impl KanbanPass {
    /// Start the helper that forks worker wrappers (see
    /// `kanban_dispatch::fork_server`), unless the wrapper is unknown or
    /// `KANBAN_WORKER_FORK_SERVER` turns it off; without it, each wrapper
    /// is a process started from the binary.
    pub(super) fn start_fork_server(&self) {
        use kanban_dispatch::fork_server::{ENV_FORK_SERVER, ForkServer, fork_server_wanted};
        let Some(prefix) = &self.worker_wrapper else {
            return;
        };
        if !fork_server_wanted(std::env::var(ENV_FORK_SERVER).ok().as_deref()) {
            return;
        }
        let args = [crate::worker_process::FORK_SERVER_VERB.to_string()];
        let started = ForkServer::start(&prefix[0], &args, prefix.clone())
            .and_then(|server| self.spawner.use_fork_server(server));
        match started {
            Ok(()) => {
                tracing::debug!(pid = ?self.spawner.fork_server_pid(), "worker fork server started")
            }
            Err(e) => kanban_server::hub::log_warning(&format!(
                "cannot start the worker fork server ({e}); wrappers start directly"
            )),
        }
    }

    /// The board's spawner: the shared one, wrapped to record exits under
    /// the board's logs.
    fn board_spawner(&self, req: &PassRequest<'_>) -> Arc<dyn Spawner> {
        match &self.worker_wrapper {
            Some(wrapper) => Arc::new(RecordingSpawner::with_inner(
                self.spawner.clone(),
                wrapper.clone(),
                &req.board.logs_dir,
            )),
            None => self.spawner.clone(),
        }
    }

    fn dispatcher(&self, req: &PassRequest<'_>) -> BoardDispatcher {
        let mut boards = self.boards.lock().unwrap_or_else(|p| p.into_inner());
        if boards
            .get(&req.board.slug)
            .is_some_and(|b| !Arc::ptr_eq(&b.store, req.store))
        {
            kanban_server::hub::drop_off_runtime(boards.remove(&req.board.slug));
        }
        boards
            .entry(req.board.slug.clone())
            .or_insert_with(|| {
                let profiles = Arc::new(LiveProfiles(RwLock::new(Profiles::new(
                    req.root, req.config,
                ))));
                let workdir = board_default_workdir(req.root, &req.board.slug);
                let store: Arc<dyn Store> = req.store.clone();
                let context = StoreContextSource::new(store, Arc::new(SystemClock))
                    .with_format_ts(Arc::new(|ts| fmt_ts(Some(ts))));
                let parts = DispatcherParts {
                    store: req.store.clone(),
                    spawner: Arc::new(LedgerSpawner {
                        inner: self.board_spawner(req),
                        board: req.board.slug.clone(),
                        ledger: self.exits.clone(),
                    }),
                    liveness: self.liveness.clone(),
                    profiles: profiles.clone(),
                    context: Arc::new(context),
                    env: Arc::new(ProcessEnv),
                    board: BoardContext::new(req.root, req.board, workdir),
                };
                BoardDispatcher {
                    store: req.store.clone(),
                    dispatcher: Arc::new(Dispatcher::new(parts)),
                    profiles,
                    stuck: Arc::new(Mutex::new(StuckDetector::default())),
                }
            })
            .clone()
    }
}

/// The board's default workdir from the root's catalogue; unreadable
/// (the database is away) is logged and means none.
fn board_default_workdir(root: &Root, slug: &str) -> Option<String> {
    let catalogue = kanban_hermes::catalogue::for_root(root);
    kanban_hermes::catalogue::default_workdir(&*catalogue, slug).unwrap_or_else(|e| {
        tracing::warn!(board = slug, error = %e, "cannot read the board's default workdir");
        None
    })
}

/// Log a stuck warning (the gateway log: `kanban_server::logging`).
fn warn_stuck(slug: &str, warning: &kanban_dispatch::StuckWarning) {
    tracing::warn!(board = %slug, bad_ticks = warning.bad_ticks, "{warning}");
}

impl DispatchPass for KanbanPass {
    fn set_wake(&self, wake: kanban_server::PassWake) {
        // Every board's workers come from this one spawner.
        self.spawner.on_exit(Arc::new(move |_, _| wake.wake()));
    }

    fn forget_board(&self, slug: &str) {
        let gone = self
            .boards
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(slug);
        if let Some(board) = &gone {
            let paths = board.dispatcher.board();
            kanban_dispatch::spare::forget(&[&paths.logs_dir, &paths.workspaces_root]);
        }
        kanban_server::hub::drop_off_runtime(gone);
        self.exits.forget(slug);
    }

    fn run_pass(&self, req: &PassRequest<'_>) -> Result<Value> {
        let overlaid;
        let req = if self.overlay.is_empty() {
            req
        } else {
            let mut config = req.config.clone();
            demo::apply_overlay(&mut config, &self.overlay);
            overlaid = (config, req);
            &PassRequest {
                config: &overlaid.0,
                ..*overlaid.1
            }
        };
        let board = self.dispatcher(req);
        *board.profiles.0.write().unwrap_or_else(|p| p.into_inner()) =
            Profiles::new(req.root, req.config);
        let mut opts =
            DispatchOptions::from_config(req.config, &EnvTunables::from_env(&ProcessEnv));
        opts.dry_run = req.dry_run;
        // A gateway registers its host on the board and keeps it alive.
        opts.host_lease_seconds = Some(kanban_dispatch::host_lease::host_lease_seconds(
            req.config.dispatch_interval(),
        ));
        if let Some(max) = req.max_spawn {
            opts.max_spawn = Some(i64::from(max));
        }
        if let Some(secs) = self.overlay.rate_limit_cooldown_seconds {
            opts.rate_limit_cooldown_seconds = secs;
        }
        if let Ok(exe) = std::env::current_exe() {
            opts.kanban_command = exe.display().to_string();
        }
        let result = board.dispatcher.dispatch_once(&opts)?;
        if !req.dry_run {
            let warning = board
                .stuck
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .observe(&result.health, Instant::now());
            if let Some(w) = warning {
                warn_stuck(&req.board.slug, &w);
            }
        }
        let mut value = serde_json::to_value(&result)?;
        // For the gateway's claim-latency histogram only.
        if let Some(obj) = value.as_object_mut() {
            let secs: Vec<f64> = result
                .claim_durations
                .iter()
                .map(|d| d.as_secs_f64())
                .collect();
            obj.insert("claim_seconds".into(), serde_json::json!(secs));
            if !req.dry_run {
                let reaped = self.exits.take(&req.board.slug);
                obj.insert("reaped".into(), serde_json::json!(reaped));
            }
        }
        Ok(value)
    }
}
