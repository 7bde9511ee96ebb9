//! One dispatch pass (reference `dispatch_once`, §3.1), step by step:
//!
//! 0. take the board's dispatch lock (fail closed; a dry run reads only);
//! 1. reap our exited workers, release tasks whose termination finished,
//!    end workers that outlived their finished attempt;
//! 2. TTL reclaim (extend claims of live, heartbeating workers), and at
//!    once the claims whose launching dispatcher died before recording
//!    a worker;
//! 3. stale-heartbeat reclaim;
//! 4. crash detection with exit classification;
//! 5. max-runtime kills;
//! 6. promotion (scoped to what changed, with a periodic full sweep);
//! 7. capacity;
//! 8. ready candidates: assignee / profile / per-profile cap / respawn
//!    guard; then, per batch of candidates, one transaction claiming them
//!    all (ceilings checked inside it), workspaces and spawns, and one
//!    transaction recording every worker (or spawn failure, counted by the
//!    circuit breaker);
//! 9. review candidates, sharing the same capacity.
//!
//! Terminations never block the pass: SIGTERM is sent and the pass moves
//! on; the task is released once its process group is gone (later in the
//! same pass if it died at once, else on a later pass).

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use kanban_core::Task;
use kanban_core::defaults::{
    CLAIM_TTL_SECONDS, CRASH_GRACE_SECONDS, FAILURE_LIMIT, RATE_LIMIT_COOLDOWN_SECONDS,
    WORKER_LOG_BACKUP_COUNT, WORKER_LOG_ROTATE_BYTES,
};
use kanban_store::Ceilings;
use kanban_store::config::{EnvTunables, KanbanConfig};
use kanban_store::dispatch_ops::{DispatchStore, Regate, RegateScope};
use kanban_store::layout::{BoardPaths, Env, ProfileKind, Profiles, Root};

use crate::error::Result;
use crate::liveness::Liveness;
use crate::lock::DispatchLock;
use crate::reclaim::PendingRelease;
use crate::result::DispatchResult;
use crate::spawner::Spawner;
use crate::terminate::{KILL_WAIT, TERMINATE_GRACE, Terminator};

/// How often promotion re-gates the whole board as a safety net (events
/// that do not name the task they free, e.g. a Python-side delete).
pub const FULL_REGATE_INTERVAL: Duration = Duration::from_secs(300);

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
    pub workspaces_root: PathBuf,
    pub logs_dir: PathBuf,
    pub dispatch_lock: PathBuf,
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
            workspaces_root: paths.workspaces_root.clone(),
            logs_dir: paths.logs_dir.clone(),
            dispatch_lock: paths.dispatch_lock.clone(),
            default_workdir,
            scratch_tip_sentinel: Some(root.path().join(".scratch_tip_shown")),
        }
    }
}

/// Knobs of one pass. `Default` is the reference's defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DispatchOptions {
    /// Decide and report, write nothing, signal nothing, spawn nothing.
    pub dry_run: bool,
    /// Live ceiling on running tasks (`kanban.max_spawn` / `--max`).
    pub max_spawn: Option<i64>,
    pub max_in_progress: Option<i64>,
    pub max_in_progress_per_profile: Option<i64>,
    /// Per-profile ceilings (`kanban.profile_limits`), winning over the above.
    pub profile_limits: BTreeMap<String, i64>,
    pub failure_limit: i64,
    pub default_assignee: Option<String>,
    pub claim_ttl_seconds: i64,
    /// 0 disables stale-heartbeat reclaim.
    pub stale_timeout_seconds: i64,
    pub crash_grace_seconds: i64,
    pub rate_limit_cooldown_seconds: i64,
    pub log_rotate_bytes: u64,
    pub log_backup_count: u32,
    /// How template agents are told to invoke this board's CLI.
    pub kanban_command: String,
    /// Short-lived callers (one-shot `kanban dispatch`): wait this long at
    /// the end for terminations to finish and release their tasks.
    pub settle_terminations: Option<Duration>,
}

impl Default for DispatchOptions {
    fn default() -> Self {
        DispatchOptions {
            dry_run: false,
            max_spawn: None,
            max_in_progress: None,
            max_in_progress_per_profile: None,
            profile_limits: BTreeMap::new(),
            failure_limit: FAILURE_LIMIT,
            default_assignee: None,
            claim_ttl_seconds: CLAIM_TTL_SECONDS,
            stale_timeout_seconds: 0,
            crash_grace_seconds: CRASH_GRACE_SECONDS,
            rate_limit_cooldown_seconds: RATE_LIMIT_COOLDOWN_SECONDS,
            log_rotate_bytes: WORKER_LOG_ROTATE_BYTES,
            log_backup_count: WORKER_LOG_BACKUP_COUNT,
            kanban_command: "kanban".into(),
            settle_terminations: None,
        }
    }
}

impl DispatchOptions {
    /// From the `kanban:` config and the env tunables.
    pub fn from_config(cfg: &KanbanConfig, tun: &EnvTunables) -> Self {
        DispatchOptions {
            max_spawn: cfg.max_spawn.map(i64::from),
            max_in_progress: cfg.max_in_progress.map(i64::from),
            max_in_progress_per_profile: cfg.max_in_progress_per_profile.map(i64::from),
            profile_limits: cfg
                .profile_limits
                .iter()
                .map(|(k, v)| (k.clone(), i64::from(*v)))
                .collect(),
            failure_limit: cfg.failure_limit,
            default_assignee: cfg.default_assignee.clone(),
            claim_ttl_seconds: tun.claim_ttl_seconds,
            stale_timeout_seconds: cfg.dispatch_stale_timeout_seconds,
            crash_grace_seconds: tun.crash_grace_seconds,
            rate_limit_cooldown_seconds: tun.rate_limit_cooldown_seconds,
            log_rotate_bytes: cfg.worker_log_rotate_bytes,
            log_backup_count: cfg.worker_log_backup_count,
            ..Default::default()
        }
    }

    /// The ceilings the store checks inside the claim transaction.
    pub fn ceilings(&self) -> Ceilings {
        Ceilings {
            max_running: self.max_spawn,
            max_in_progress: self.max_in_progress,
            max_per_profile: self.max_in_progress_per_profile,
            profile_limits: self.profile_limits.clone(),
        }
    }

    /// Running ceiling of one profile, as the store applies it: a
    /// `profile_limits` entry (0 = never), else a positive default.
    pub fn profile_cap(&self, assignee: &str) -> Option<i64> {
        match self.profile_limits.get(assignee).filter(|n| **n >= 0) {
            Some(n) => Some(*n),
            None => self.max_in_progress_per_profile.filter(|n| *n > 0),
        }
    }

    /// Lowest global ceiling.
    pub(crate) fn global_cap(&self) -> Option<i64> {
        [self.max_spawn, self.max_in_progress]
            .into_iter()
            .flatten()
            .min()
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

/// State kept between passes.
#[derive(Default)]
pub(crate) struct PassState {
    pub(crate) regate_cursor: Option<i64>,
    pub(crate) last_full_regate: Option<Instant>,
    /// Releases waiting for a termination, by worker pid.
    pub(crate) pending: HashMap<i32, PendingRelease>,
    /// The store's dispatch tables exist (checked once per dispatcher).
    pub(crate) prepared: bool,
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
}

impl Dispatcher {
    pub fn new(parts: DispatcherParts) -> Self {
        let terminator = Terminator::new(Arc::clone(&parts.liveness));
        Self::with_terminator(parts, terminator)
    }

    /// With a terminator of custom timing (tests).
    pub fn with_terminator(parts: DispatcherParts, terminator: Terminator) -> Self {
        Dispatcher {
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

    /// One pass over the board.
    pub fn dispatch_once(&self, opts: &DispatchOptions) -> Result<DispatchResult> {
        // A dry run writes nothing, so it does not need the writer's lock.
        let _lock = if opts.dry_run {
            None
        } else {
            match DispatchLock::try_acquire(&self.board.dispatch_lock) {
                Ok(Some(lock)) => Some(lock),
                Ok(None) => return Ok(DispatchResult::locked(None)),
                Err(e) => {
                    tracing::warn!(board = %self.board.slug, "dispatch skipped: {e}");
                    return Ok(DispatchResult::locked(Some(e.to_string())));
                }
            }
        };
        let mut result = DispatchResult {
            dry_run: opts.dry_run,
            ..Default::default()
        };
        let now = self.store.now();
        if !opts.dry_run {
            if !self.state().prepared {
                self.store.prepare_dispatch()?;
                self.state().prepared = true;
            }
            self.spawner.reap();
            self.apply_finished_terminations(opts, &mut result)?;
            self.end_lingering_workers(now)?;
        }
        let running = self.store.running_tasks()?;
        let mut handled = std::collections::HashSet::new();
        self.reclaim_expired(opts, now, &running, &mut handled, &mut result)?;
        self.reclaim_orphaned_launches(opts, now, &running, &mut handled, &mut result)?;
        self.reclaim_stale(opts, now, &running, &mut handled, &mut result)?;
        self.detect_crashes(opts, now, &running, &mut handled, &mut result)?;
        self.enforce_max_runtime(opts, now, &running, &mut handled, &mut result)?;
        result.promoted = self.promote(opts)?;
        self.dispatch_candidates(opts, now, &mut result)?;
        if !opts.dry_run {
            // Workers that died at once on SIGTERM are released now.
            self.terminator.poll();
            self.apply_finished_terminations(opts, &mut result)?;
            if let Some(wait) = opts.settle_terminations
                && self.terminator.pending_count() > 0
            {
                self.terminator.wait_idle(wait);
                self.apply_finished_terminations(opts, &mut result)?;
            }
        }
        result.terminating = self
            .state()
            .pending
            .values()
            .map(|p| p.task_id.clone())
            .collect();
        result.terminating.sort();
        Ok(result)
    }

    /// Step 6: re-gate what changed since the last pass; the whole board
    /// on the first pass and every [`FULL_REGATE_INTERVAL`].
    fn promote(&self, opts: &DispatchOptions) -> Result<usize> {
        let (cursor, last_full) = {
            let st = self.state();
            (st.regate_cursor, st.last_full_regate)
        };
        let full =
            cursor.is_none() || last_full.is_none_or(|t| t.elapsed() >= FULL_REGATE_INTERVAL);
        let scope = match cursor {
            Some(c) if !full => RegateScope::ChangedSince(c),
            _ => RegateScope::All,
        };
        let out = self.store.regate(&Regate {
            scope,
            failure_limit: Some(opts.failure_limit),
            dry_run: opts.dry_run,
        })?;
        if !opts.dry_run {
            let mut st = self.state();
            st.regate_cursor = Some(out.cursor);
            if full {
                st.last_full_regate = Some(Instant::now());
            }
        }
        Ok(out.promoted)
    }
}

/// Convenience for short-lived callers: one pass with a throw-away
/// dispatcher. Its terminations cannot outlive it, so unless the options
/// say otherwise it waits for them (grace + kill wait) before returning.
pub fn dispatch_once(parts: DispatcherParts, opts: &DispatchOptions) -> Result<DispatchResult> {
    let mut opts = opts.clone();
    opts.settle_terminations
        .get_or_insert(TERMINATE_GRACE + KILL_WAIT + Duration::from_secs(1));
    Dispatcher::new(parts).dispatch_once(&opts)
}

#[cfg(test)]
#[path = "pass_tests.rs"]
pub(crate) mod tests;

#[cfg(test)]
#[path = "interop_tests.rs"]
mod interop_tests;
