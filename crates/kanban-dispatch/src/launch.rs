//! Steps 7–9 of a pass: walk the ready (then review) candidates under the
//! capacity left, skip what cannot or should not run, claim, resolve the
//! workspace, build the worker command and environment, spawn, and record
//! the worker (or the spawn failure, which counts toward the breaker).

use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use kanban_core::transitions::ceilings::is_per_profile;
use kanban_core::{Status, Task};
use kanban_hermes::config::TemplateVars;
use kanban_hermes::profiles::ProfileKind;
use kanban_store::ClaimOutcome;
use kanban_store::dispatch_ops::{
    BatchClaim, ClaimBatch, LaunchBatch, ReadScope, Released, SetWorker, SetWorkspace,
    SpawnFailure, WorkerRecord,
};

use crate::command::{
    HERMES_NOT_FOUND_HINT, HermesWorkerArgs, PromptInput, hermes_worker_argv, resolve_hermes_argv,
    template_argv, worker_prompt,
};
use crate::dispatcher::Dispatcher;
use crate::env::{ENV_PATH, WorkerEnvInput, expose_kanban, worker_env};
use crate::error::Result;
use crate::guard::{GuardLookahead, GuardReason, GuardWindows, guard_until, respawn_guard};
use crate::health::TickSummary;
use crate::log_cap::ENV_LOG_MAX_RUN_BYTES;
use crate::options::DispatchOptions;
use crate::result::{CappedTask, DispatchResult, GuardedTask, SpawnedTask};
use crate::spawner::{LogSpec, WorkerSpec};
use crate::workspace::{
    ResolvedWorkspace, WorkspaceRequest, default_scratch_dir, make_scratch_dirs_ahead,
    resolve_workspace,
};

/// Skill force-loaded into review workers.
pub const REVIEW_SKILL: &str = "sdlc-review";
/// Shown once per installation, on the first scratch workspace.
pub const SCRATCH_TIP: &str = "scratch workspaces are temporary: a task's scratch directory is deleted \
     when the task completes. Create tasks with --workspace dir:<absolute path> or --workspace worktree \
     to keep their files.";

/// Claims taken in one write transaction. Bounds how long a batch holds
/// the board's write lock, and how many claims a dispatcher dying mid-batch
/// leaves for the launcher-gone release.
pub const CLAIM_BATCH_MAX: usize = 1024;

/// A candidate that passed every check, waiting for its batch claim.
struct Pick {
    task_id: String,
    /// The task's workspace kind and stored path, as the candidate read
    /// them (for a scratch workspace made while the claim commits).
    workspace_kind: String,
    workspace_path: Option<String>,
    assignee: String,
    kind: ProfileKind,
    review: bool,
    /// Running count of its profile when picked (earlier picks included).
    current: i64,
}

/// Batches of at least this many picks make their scratch workspaces
/// while the claim commits (see `launch_batch`).
const SCRATCH_AHEAD_MIN_PICKS: usize = 16;

/// What the candidate walk leaves for later passes to know.
#[derive(Debug, Default)]
pub(crate) struct CandidateNotes {
    /// When the earliest respawn guard of this pass ends (store time).
    pub guard_until: Option<i64>,
    /// Assignees (and a default assignee) that named no spawnable profile:
    /// a profile created on disk changes that without a board change.
    pub unresolved: BTreeSet<String>,
}

/// Running counts of the pass, this pass's picks and spawns included.
struct Capacity {
    running: i64,
    per_profile: BTreeMap<String, i64>,
    global_cap: Option<i64>,
}

impl Capacity {
    /// No room for one more beside `pending` picks.
    fn full(&self, pending: usize) -> bool {
        self.global_cap
            .is_some_and(|cap| self.running + pending as i64 >= cap)
    }

    /// How many more claims the global ceiling leaves beside `pending`
    /// picks (at least one; unbounded without a ceiling).
    fn room(&self, pending: usize) -> usize {
        self.global_cap.map_or(usize::MAX, |cap| {
            usize::try_from(cap - self.running - pending as i64)
                .unwrap_or(0)
                .max(1)
        })
    }

    fn take(&mut self, assignee: &str) {
        *self.per_profile.entry(assignee.to_string()).or_default() += 1;
    }

    /// A pick that did not end up running.
    fn give_back(&mut self, assignee: &str) {
        if let Some(n) = self.per_profile.get_mut(assignee) {
            *n -= 1;
        }
    }
}

impl Dispatcher {
    /// `reads` is the pass's shared read transaction: it ends before the
    /// first claim, so everything from the claims on reads fresh state.
    pub(crate) fn dispatch_candidates(
        &self,
        opts: &DispatchOptions,
        now: i64,
        result: &mut DispatchResult,
        reads: &mut Option<ReadScope<'_>>,
    ) -> Result<CandidateNotes> {
        let counts = self.store.running_counts()?;
        let mut cap = Capacity {
            running: counts.total,
            per_profile: counts.by_assignee,
            global_cap: opts.global_cap(),
        };
        let default_assignee = opts
            .default_assignee
            .as_deref()
            .map(|a| a.trim().to_lowercase())
            .filter(|a| !a.is_empty());
        let mut notes = CandidateNotes::default();
        let default_assignee = match default_assignee {
            Some(a) if self.profiles.resolve_profile(&a).is_none() => {
                notes.unresolved.insert(a);
                None
            }
            other => other,
        };
        let windows = GuardWindows {
            rate_limit_cooldown: opts.rate_limit_cooldown_seconds,
            auth_cooldown: opts.rate_limit_cooldown_seconds,
            ..GuardWindows::default()
        };
        let mut health = TickSummary::default();
        let mut picks: Vec<Pick> = Vec::new();
        'statuses: for status in [Status::Ready, Status::Review] {
            let review = status == Status::Review;
            if review && !opts.review_dispatch {
                // `kanban.review_dispatch: false`: a human gives the verdict.
                break;
            }
            let candidates = self.store.dispatch_candidates(status)?;
            let mut guards = GuardLookahead::new(
                candidates.iter().map(|c| c.id.clone()).collect(),
                now - windows.recent_success,
                now - windows.active_pr,
            );
            for (at, cand) in candidates.into_iter().enumerate() {
                if cap.full(picks.len()) {
                    // Some picks may lose their race: claim them, then look again.
                    let hit = !picks.is_empty()
                        && self.launch_batch(
                            opts,
                            &mut picks,
                            &mut cap,
                            &mut health,
                            result,
                            reads,
                        )?;
                    if hit || cap.full(0) {
                        health.capacity_full = true;
                        break 'statuses;
                    }
                }
                let assignee = match (cand.assignee, &default_assignee) {
                    (Some(a), _) => a,
                    (None, Some(def)) if !review => {
                        if !opts.dry_run && !self.store.assign_default(&cand.id, def)? {
                            continue; // assigned by someone else meanwhile
                        }
                        result.auto_assigned_default.push(cand.id.clone());
                        def.clone()
                    }
                    (None, _) => {
                        result.skipped_unassigned.push(cand.id);
                        continue;
                    }
                };
                let Some(kind) = self.profiles.resolve_profile(&assignee) else {
                    result.skipped_nonspawnable.push(cand.id);
                    notes.unresolved.insert(assignee);
                    continue;
                };
                let current = cap.per_profile.get(&assignee).copied().unwrap_or(0);
                if opts
                    .profile_cap(&assignee)
                    .is_some_and(|limit| current >= limit)
                {
                    result.skipped_per_profile_capped.push(CappedTask {
                        task_id: cand.id,
                        assignee,
                        current,
                    });
                    continue;
                }
                // Review claims pass the same guards as ready ones (the
                // reference skips them), bar the active-PR one: a PR is
                // what a reviewer is there to look at.
                let facts = guards.facts(&*self.store, at, cap.room(picks.len()))?;
                if let Some(reason) = respawn_guard(&facts, now, &windows)
                    .filter(|r| !(review && *r == GuardReason::ActivePr))
                {
                    if !opts.dry_run {
                        self.store.note_respawn_guarded(&cand.id, reason.as_str())?;
                    }
                    if let Some(until) = guard_until(&facts, reason, &windows) {
                        notes.guard_until = Some(notes.guard_until.map_or(until, |u| u.min(until)));
                    }
                    result.respawn_guarded.push(GuardedTask {
                        task_id: cand.id,
                        reason: reason.as_str().into(),
                    });
                    continue;
                }
                cap.take(&assignee);
                if opts.dry_run {
                    result.spawned.push(SpawnedTask {
                        task_id: cand.id,
                        assignee,
                        workspace: String::new(),
                    });
                    cap.running += 1;
                    continue;
                }
                picks.push(Pick {
                    task_id: cand.id,
                    workspace_kind: cand.workspace_kind,
                    workspace_path: cand.workspace_path,
                    assignee,
                    kind,
                    review,
                    current,
                });
                if picks.len() >= CLAIM_BATCH_MAX
                    && self.launch_batch(opts, &mut picks, &mut cap, &mut health, result, reads)?
                {
                    health.capacity_full = true;
                    break 'statuses;
                }
            }
            // Every ready pick is claimed before the review candidates are read.
            if !picks.is_empty()
                && self.launch_batch(opts, &mut picks, &mut cap, &mut health, result, reads)?
            {
                health.capacity_full = true;
                break 'statuses;
            }
        }
        health.spawned = result.spawned.len();
        result.health = health;
        Ok(notes)
    }

    /// This process as the launcher of its claims (see `ClaimBatch`).
    fn launcher(&self) -> WorkerRecord {
        let pid = std::process::id();
        WorkerRecord {
            pid: i64::from(pid),
            start_time: i32::try_from(pid)
                .ok()
                .and_then(|p| self.liveness.start_time(p))
                .and_then(|t| i64::try_from(t).ok()),
            boot_id: self.liveness.instance_id(),
            host: Some(self.liveness.hostname()),
        }
    }

    /// Claim `picks` in one transaction, start a worker for every claim,
    /// record workspaces, workers and spawn failures in one more. Returns
    /// true when a board-wide ceiling stopped the claims.
    fn launch_batch(
        &self,
        opts: &DispatchOptions,
        picks: &mut Vec<Pick>,
        cap: &mut Capacity,
        health: &mut TickSummary,
        result: &mut DispatchResult,
        reads: &mut Option<ReadScope<'_>>,
    ) -> Result<bool> {
        drop(reads.take());
        let picks = std::mem::take(picks);
        let launcher = self.launcher();
        let batch = ClaimBatch {
            claims: picks
                .iter()
                .map(|p| BatchClaim {
                    task_id: p.task_id.clone(),
                    review: p.review,
                })
                .collect(),
            claim_lock: self.liveness.claimer_id(),
            ttl_seconds: opts.claim_ttl_seconds,
            ceilings: opts.ceilings(),
            launcher: Some(launcher.clone()),
        };
        let claim_started = std::time::Instant::now();
        // A big batch's scratch workspaces are made on a second thread
        // while the claim transaction runs: their `mkdir`s (tens of µs
        // each on ext4) then overlap the database's work instead of
        // following it. A claim lost to another dispatcher leaves the
        // directory to the winner, which makes the same one. Small
        // batches (the pick-up of one new task) skip the thread.
        let ahead: Vec<PathBuf> = if picks.len() >= SCRATCH_AHEAD_MIN_PICKS {
            picks
                .iter()
                .filter_map(|p| {
                    default_scratch_dir(
                        &self.board.workspaces_root,
                        &p.workspace_kind,
                        p.workspace_path.as_deref(),
                        &p.task_id,
                    )
                })
                .collect()
        } else {
            Vec::new()
        };
        let outcomes = std::thread::scope(|scope| {
            if !ahead.is_empty() {
                scope.spawn(|| make_scratch_dirs_ahead(&ahead));
            }
            self.store.claim_batch(&batch)
        })?;
        let claimed = outcomes
            .iter()
            .filter(|o| matches!(o, ClaimOutcome::Claimed { .. }))
            .count();
        if claimed > 0 {
            let each = claim_started.elapsed() / u32::try_from(claimed).unwrap_or(u32::MAX);
            result
                .claim_durations
                .extend(std::iter::repeat_n(each, claimed));
        }
        let mut records = LaunchBatch::default();
        let mut spawned = Vec::new();
        let mut failed = Vec::new();
        let mut global_hit = false;
        let mut hermes: Option<Vec<String>> = None;
        // Workspaces and commands first, then every worker at once: the
        // fork server starts them back to back (see `Spawner::spawn_all`).
        let mut prepared: Vec<(Pick, i64, String)> = Vec::new();
        let mut specs = Vec::new();
        for (pick, outcome) in picks.into_iter().zip(outcomes) {
            let (task, run_id) = match outcome {
                ClaimOutcome::Claimed { task, run_id } => (task, run_id),
                ClaimOutcome::Lost { .. } | ClaimOutcome::ParentsPending => {
                    cap.give_back(&pick.assignee);
                    continue;
                }
                ClaimOutcome::CeilingReached(name) => {
                    cap.give_back(&pick.assignee);
                    if is_per_profile(&name) {
                        result.skipped_per_profile_capped.push(CappedTask {
                            task_id: pick.task_id,
                            assignee: pick.assignee,
                            current: pick.current,
                        });
                    } else {
                        global_hit = true;
                    }
                    continue;
                }
            };
            match self.prepare_worker(opts, (&task, run_id), &pick, &mut hermes, &mut records) {
                Ok((spec, workspace)) => {
                    specs.push(spec);
                    prepared.push((pick, run_id, workspace));
                }
                Err(error) => {
                    not_started(&mut records, &mut failed, cap, opts, (&pick, run_id), error)
                }
            }
        }
        let started = self.spawner.spawn_all(&specs);
        for ((pick, run_id, workspace), worker) in prepared.into_iter().zip(started) {
            match worker {
                Ok(worker) => {
                    cap.running += 1;
                    records.workers.push(SetWorker {
                        task_id: pick.task_id.clone(),
                        run_id: Some(run_id),
                        worker: WorkerRecord {
                            pid: i64::from(worker.pid),
                            start_time: worker.start_time.and_then(|t| i64::try_from(t).ok()),
                            // The launcher's machine and boot: the worker's too.
                            boot_id: launcher.boot_id.clone(),
                            host: launcher.host.clone(),
                        },
                    });
                    spawned.push(SpawnedTask {
                        task_id: pick.task_id,
                        assignee: pick.assignee,
                        workspace,
                    });
                }
                Err(e) => not_started(
                    &mut records,
                    &mut failed,
                    cap,
                    opts,
                    (&pick, run_id),
                    e.to_string(),
                ),
            }
        }
        if !records.is_empty() {
            let released = match self.store.record_launches(&records) {
                Ok(rec) => rec.failures,
                Err(e) => {
                    tracing::warn!(
                        "could not record a batch of launches, recording one by one: {e}"
                    );
                    self.record_one_by_one(&records)?
                }
            };
            for (id, rel) in failed.into_iter().zip(released) {
                if rel.auto_blocked {
                    result.auto_blocked.push(id);
                } else {
                    health.idle_spawnable += 1;
                }
            }
        }
        result.spawned.extend(spawned);
        Ok(global_hit)
    }

    /// Fallback when the batched record failed: each record on its own.
    /// The workers run either way; a worker left unrecorded only loses
    /// early crash detection (its claim is released once the TTL expires).
    fn record_one_by_one(&self, records: &LaunchBatch) -> Result<Vec<Released>> {
        for w in &records.workspaces {
            self.store.set_workspace(w)?;
        }
        for w in &records.workers {
            if let Err(e) = self.store.set_worker(w) {
                tracing::warn!(task = %w.task_id, pid = w.worker.pid, "could not record the worker: {e}");
            }
        }
        records
            .failures
            .iter()
            .map(|f| self.store.record_spawn_failure(f))
            .collect::<std::result::Result<_, _>>()
            .map_err(Into::into)
    }

    /// The claimed task's workspace (recorded in `records`) and its
    /// worker's command, ready to start.
    fn prepare_worker(
        &self,
        opts: &DispatchOptions,
        (task, run_id): (&Task, i64),
        pick: &Pick,
        hermes: &mut Option<Vec<String>>,
        records: &mut LaunchBatch,
    ) -> std::result::Result<(WorkerSpec, String), String> {
        let ws = resolve_workspace(&WorkspaceRequest {
            task_id: &task.id,
            kind: &task.workspace_kind,
            path: task.workspace_path.as_deref(),
            branch_name: task.branch_name.as_deref(),
            workspaces_root: &self.board.workspaces_root,
            board: &self.board.slug,
            default_workdir: self.board.default_workdir.as_deref(),
        })
        .map_err(|e| format!("workspace: {e}"))?;
        let path = ws.path.to_string_lossy().into_owned();
        let tip = self.scratch_tip(task);
        records.workspaces.push(SetWorkspace {
            task_id: task.id.clone(),
            run_id: Some(run_id),
            path: path.clone(),
            branch: ws.branch.clone(),
            tip: tip.map(str::to_string),
        });
        let spec = self
            .worker_spec(
                opts,
                task,
                &ws,
                &pick.assignee,
                &pick.kind,
                pick.review,
                hermes,
            )
            .map_err(|e| e.to_string())?;
        Ok((spec, path))
    }

    /// The one-time scratch tip, if this is the installation's first.
    fn scratch_tip(&self, task: &Task) -> Option<&'static str> {
        let sentinel = self.board.scratch_tip_sentinel.as_ref()?;
        if !matches!(task.workspace_kind.as_str(), "" | "scratch") || sentinel.exists() {
            return None;
        }
        tracing::warn!(task = %task.id, "kanban: {SCRATCH_TIP}");
        // Private like every file under the root (SPEC §4).
        let written = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(sentinel);
        if let Err(e) = written {
            tracing::debug!("cannot write {}: {e}", sentinel.display());
        }
        Some(SCRATCH_TIP)
    }

    #[allow(clippy::too_many_arguments)]
    fn worker_spec(
        &self,
        opts: &DispatchOptions,
        claimed: &Task,
        ws: &ResolvedWorkspace,
        assignee: &str,
        kind: &ProfileKind,
        review: bool,
        hermes: &mut Option<Vec<String>>,
    ) -> Result<WorkerSpec> {
        let mut task = claimed.clone();
        task.workspace_path = Some(ws.path.to_string_lossy().into_owned());
        if let Some(b) = &ws.branch {
            task.branch_name = Some(b.clone());
        }
        let skills: Vec<String> = if review {
            vec![REVIEW_SKILL.to_string()]
        } else {
            task.skills.clone().unwrap_or_default()
        };
        let var = |k: &str| self.env.var(k);
        let (argv, hermes_home, extra_env, hint) = match kind {
            ProfileKind::Hermes { dir } => {
                // Resolved once per batch: a PATH search per worker adds up.
                let hermes = hermes.get_or_insert_with(|| {
                    let cwd = std::env::current_dir().unwrap_or_else(|_| "/".into());
                    resolve_hermes_argv(&var, &cwd)
                });
                // Pinned from the profile's own config, so the worker cannot
                // pick up another profile's tool surface (reference §3.4).
                let toolsets = kind.hermes_cli_toolsets(&var);
                let args = HermesWorkerArgs {
                    profile: assignee,
                    task_id: &task.id,
                    skills: &skills,
                    model: task.model_override.as_deref(),
                    toolsets: &toolsets,
                    goal_mode: task.goal_mode,
                };
                (
                    hermes_worker_argv(hermes, &args),
                    Some(dir.clone()),
                    BTreeMap::new(),
                    HERMES_NOT_FOUND_HINT.to_string(),
                )
            }
            ProfileKind::Template { spec } => {
                let context = self.context.worker_context(&task);
                let prompt = worker_prompt(&PromptInput {
                    task_id: &task.id,
                    title: &task.title,
                    context: &context,
                    kanban: &opts.kanban_command,
                });
                let vars = TemplateVars {
                    task_id: task.id.clone(),
                    prompt,
                    workspace: ws.path.to_string_lossy().into_owned(),
                    skills: skills.clone(),
                    model: task.model_override.clone(),
                    board: self.board.slug.clone(),
                    title: task.title.clone(),
                };
                let hint = format!(
                    "It is the command of profile '{assignee}' (kanban.profiles.{assignee}.command in \
                     config.yaml): install it or fix the command."
                );
                (
                    template_argv(spec, &vars)?,
                    None,
                    spec.render_env(&vars),
                    hint,
                )
            }
        };
        let mut env = worker_env(
            &WorkerEnvInput {
                task: &task,
                workspace: &ws.path,
                profile: assignee,
                hermes_home: hermes_home.as_deref(),
                board: &self.board.slug,
                db_path: &self.board.db_path,
                database_url: self.board.database_url.as_deref(),
                workspaces_root: &self.board.workspaces_root,
            },
            &var,
        );
        // A profile's own variables never override the worker contract.
        for (k, v) in extra_env {
            if env.get(&k).is_none() && !env.remove.contains(&k) {
                env.set(&k, v);
            }
        }
        // This very binary, first on the (profile's or inherited) PATH.
        let path = env
            .get(ENV_PATH)
            .map(str::to_string)
            .or_else(|| var(ENV_PATH));
        expose_kanban(&mut env, Path::new(&opts.kanban_command), path.as_deref());
        // For the wrapper, which enforces it (crate::log_cap) and drops it
        // from the worker's own environment.
        env.set(ENV_LOG_MAX_RUN_BYTES, opts.log_max_run_bytes.to_string());
        Ok(WorkerSpec {
            task_id: task.id.clone(),
            run_id: task.current_run_id,
            argv,
            env,
            cwd: Some(ws.path.clone()),
            log: LogSpec {
                path: self.board.logs_dir.join(format!("{}.log", task.id)),
                rotate_bytes: opts.log_rotate_bytes,
                backup_count: opts.log_backup_count,
            },
            not_found_hint: hint,
        })
    }
}

/// A claimed task whose worker did not start: its capacity goes back and
/// the failure is recorded with the launches.
fn not_started(
    records: &mut LaunchBatch,
    failed: &mut Vec<String>,
    cap: &mut Capacity,
    opts: &DispatchOptions,
    (pick, run_id): (&Pick, i64),
    error: String,
) {
    tracing::warn!(task = %pick.task_id, "worker not started: {error}");
    cap.give_back(&pick.assignee);
    records.failures.push(SpawnFailure {
        task_id: pick.task_id.clone(),
        run_id: Some(run_id),
        error,
        failure_limit: opts.failure_limit,
    });
    failed.push(pick.task_id.clone());
}

#[cfg(test)]
#[path = "launch_tests.rs"]
mod tests;

#[cfg(test)]
#[path = "review_tests.rs"]
mod review_tests;
