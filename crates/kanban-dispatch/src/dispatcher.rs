//! The dispatcher object and what it is built from: the board it works
//! on, its collaborators (store, spawner, liveness, profiles, context) and
//! the state it keeps between passes. The steps of a pass live in their
//! own modules (`reclaim`, `crash`, `launch`, `linger`) as `impl
//! Dispatcher` blocks; [`crate::pass`] runs them in order. This module
//! names none of them, so they all depend on it and not on each other.

use std::collections::{BTreeSet, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use kanban_core::Task;
use kanban_hermes::layout::{BoardPaths, Env, Root};
use kanban_hermes::profiles::{ProfileKind, Profiles};
use kanban_store::dispatch_ops::{DispatchLock, DispatchStore};

use crate::liveness::Liveness;
use crate::options::DispatchOptions;
use crate::release::PendingRelease;
use crate::result::DispatchResult;
use crate::spawner::Spawner;
use crate::terminate::Terminator;

/// Which profiles can be spawned, and how.
pub trait ProfileSource: Send + Sync {
    fn resolve_profile(&self, name: &str) -> Option<ProfileKind>;
}

impl ProfileSource for Profiles {
    fn resolve_profile(&self, name: &str) -> Option<ProfileKind> {
        Profiles::resolve_profile(self, name)
    }
}

/// The worker context text (reference §5.3) given to template agents.
pub trait ContextSource: Send + Sync {
    fn worker_context(&self, task: &Task) -> String;
}

/// Minimal context: header and body. The CLI wires the full builder.
#[derive(Debug, Default, Clone, Copy)]
pub struct TitleBodyContext;

impl ContextSource for TitleBodyContext {
    fn worker_context(&self, task: &Task) -> String {
        let body = task.body.as_deref().unwrap_or("").trim();
        format!("# Kanban task {}: {}\n\n{body}\n", task.id, task.title)
    }
}

/// The board a dispatcher works on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BoardContext {
    pub slug: String,
    pub db_path: PathBuf,
    /// The board's PostgreSQL database URL (password included: it reaches
    /// workers through their environment, never their command line);
    /// `None` for a SQLite board.
    pub database_url: Option<String>,
    pub workspaces_root: PathBuf,
    pub logs_dir: PathBuf,
    /// Anchor of worktree tasks without a path (`board.json`).
    pub default_workdir: Option<String>,
    /// `<root>/.scratch_tip_shown`; `None` never shows the tip.
    pub scratch_tip_sentinel: Option<PathBuf>,
}

impl BoardContext {
    pub fn new(root: &Root, paths: &BoardPaths, default_workdir: Option<String>) -> Self {
        BoardContext {
            slug: paths.slug.clone(),
            db_path: paths.db.clone(),
            database_url: paths
                .database
                .as_ref()
                .map(|pg| pg.connection_url().to_string()),
            workspaces_root: paths.workspaces_root.clone(),
            logs_dir: paths.logs_dir.clone(),
            default_workdir,
            scratch_tip_sentinel: Some(root.path().join(".scratch_tip_shown")),
        }
    }
}

/// Everything a dispatcher talks to.
pub struct DispatcherParts {
    pub store: Arc<dyn DispatchStore>,
    pub spawner: Arc<dyn Spawner>,
    pub liveness: Arc<dyn Liveness>,
    pub profiles: Arc<dyn ProfileSource>,
    pub context: Arc<dyn ContextSource>,
    /// The dispatcher's environment (HERMES_BIN, PATH, terminal timeouts).
    pub env: Arc<dyn Env + Send + Sync>,
    pub board: BoardContext,
}

/// A full pass that found nothing to do, kept to answer the next passes
/// while it stands (see [`crate::quiet`]).
#[derive(Debug, Clone)]
pub(crate) struct QuietMemo {
    /// The board's version read before the pass's first read.
    pub(crate) version: u64,
    pub(crate) opts: DispatchOptions,
    /// Store time when something time-based falls due.
    pub(crate) due_at: Option<i64>,
    pub(crate) taken: Instant,
    /// Assignees that named no spawnable profile.
    pub(crate) unresolved: BTreeSet<String>,
    /// What the pass returned (what the same pass would return again).
    pub(crate) result: DispatchResult,
}

/// State kept between passes.
#[derive(Default)]
pub(crate) struct PassState {
    pub(crate) regate_cursor: Option<i64>,
    pub(crate) last_full_regate: Option<Instant>,
    /// Releases waiting for a termination, by worker pid.
    pub(crate) pending: HashMap<i32, PendingRelease>,
    /// The store's dispatch tables exist (checked once per dispatcher).
    pub(crate) prepared: bool,
    /// When this dispatcher last renewed its host's lease.
    pub(crate) last_lease_renewal: Option<Instant>,
    /// The last full pass, while it stands for the next ones
    /// ([`crate::quiet`]).
    pub(crate) quiet: Option<QuietMemo>,
    /// Passes answered from `quiet`.
    pub(crate) quiet_passes: u64,
    /// The last read of the finished workers' records ([`crate::linger_scan`]).
    pub(crate) linger_scan: Option<crate::linger_scan::LingerScan>,
}

/// A board's dispatcher: one per board per process, reused across passes
/// (it remembers terminations in flight and the promotion cursor).
pub struct Dispatcher {
    pub(crate) store: Arc<dyn DispatchStore>,
    pub(crate) spawner: Arc<dyn Spawner>,
    pub(crate) liveness: Arc<dyn Liveness>,
    pub(crate) profiles: Arc<dyn ProfileSource>,
    pub(crate) context: Arc<dyn ContextSource>,
    pub(crate) env: Arc<dyn Env + Send + Sync>,
    pub(crate) board: BoardContext,
    pub(crate) terminator: Terminator,
    pub(crate) state: Mutex<PassState>,
    /// The board's dispatch lock, kept: its handle may keep the lock's
    /// file open between passes.
    pub(crate) dispatch_lock: Arc<dyn DispatchLock>,
}

impl Dispatcher {
    pub fn new(parts: DispatcherParts) -> Self {
        let terminator = Terminator::new(Arc::clone(&parts.liveness));
        Self::with_terminator(parts, terminator)
    }

    /// With a terminator of custom timing (tests).
    pub fn with_terminator(parts: DispatcherParts, terminator: Terminator) -> Self {
        Dispatcher {
            dispatch_lock: parts.store.dispatch_lock(),
            store: parts.store,
            spawner: parts.spawner,
            liveness: parts.liveness,
            profiles: parts.profiles,
            context: parts.context,
            env: parts.env,
            board: parts.board,
            terminator,
            state: Mutex::default(),
        }
    }

    pub fn board(&self) -> &BoardContext {
        &self.board
    }

    /// Run `hook` whenever a termination finishes (a gateway schedules a
    /// pass so the task is released at once).
    pub fn on_termination_finished(&self, hook: Arc<dyn Fn() + Send + Sync>) {
        self.terminator.on_finished(hook);
    }

    pub(crate) fn state(&self) -> MutexGuard<'_, PassState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}
