//! Steps 7–9 of a pass: walk the ready (then review) candidates under the
//! capacity left, skip what cannot or should not run, claim, resolve the
//! workspace, build the worker command and environment, spawn, and record
//! the worker (or the spawn failure, which counts toward the breaker).

use std::collections::BTreeMap;

use kanban_core::{Status, Task};
use kanban_store::config::TemplateVars;
use kanban_store::dispatch_ops::{SetWorker, SetWorkspace, SpawnFailure, WorkerRecord};
use kanban_store::layout::ProfileKind;
use kanban_store::{ClaimOutcome, ClaimRequest};

use crate::command::{
    HERMES_NOT_FOUND_HINT, HermesWorkerArgs, PromptInput, hermes_worker_argv, resolve_hermes_argv,
    template_argv, worker_prompt,
};
use crate::env::{WorkerEnvInput, worker_env};
use crate::error::Result;
use crate::guard::{GuardWindows, respawn_guard};
use crate::health::TickSummary;
use crate::pass::{DispatchOptions, Dispatcher};
use crate::result::{CappedTask, DispatchResult, GuardedTask, SpawnedTask};
use crate::spawner::{LogSpec, WorkerSpec};
use crate::workspace::{ResolvedWorkspace, WorkspaceRequest, resolve_workspace};

/// Skill force-loaded into review workers.
pub const REVIEW_SKILL: &str = "sdlc-review";
/// Shown once per installation, on the first scratch workspace.
pub const SCRATCH_TIP: &str = "scratch workspaces are temporary: a task's scratch directory is deleted \
     when the task completes. Create tasks with --workspace dir:<absolute path> or --workspace worktree \
     to keep their files.";

enum Launch {
    Spawned,
    /// Another claimer won, or the task moved on.
    Lost,
    /// A board-wide ceiling is full.
    GlobalCeiling,
    /// The profile's ceiling is full (running count).
    ProfileCeiling,
    /// Workspace or spawn failed; requeued (or blocked when `true`).
    Failed {
        auto_blocked: bool,
    },
}

impl Dispatcher {
    pub(crate) fn dispatch_candidates(
        &self,
        opts: &DispatchOptions,
        now: i64,
        result: &mut DispatchResult,
    ) -> Result<()> {
        let counts = self.store.running_counts()?;
        let mut running = counts.total;
        let mut per_profile: BTreeMap<String, i64> = counts.by_assignee;
        let global_cap = opts.global_cap();
        let default_assignee = opts
            .default_assignee
            .as_deref()
            .map(|a| a.trim().to_lowercase())
            .filter(|a| !a.is_empty() && self.profiles.resolve_profile(a).is_some());
        let windows = GuardWindows {
            rate_limit_cooldown: opts.rate_limit_cooldown_seconds,
            auth_cooldown: opts.rate_limit_cooldown_seconds,
            ..GuardWindows::default()
        };
        let mut health = TickSummary::default();
        'statuses: for status in [Status::Ready, Status::Review] {
            let review = status == Status::Review;
            for cand in self.store.dispatch_candidates(status)? {
                if global_cap.is_some_and(|cap| running >= cap) {
                    health.capacity_full = true;
                    break 'statuses;
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
                    continue;
                };
                let current = per_profile.get(&assignee).copied().unwrap_or(0);
                if opts
                    .profile_cap(&assignee)
                    .is_some_and(|cap| current >= cap)
                {
                    result.skipped_per_profile_capped.push(CappedTask {
                        task_id: cand.id,
                        assignee,
                        current,
                    });
                    continue;
                }
                if !review {
                    let facts = self.store.respawn_guard_facts(
                        &cand.id,
                        now - windows.recent_success,
                        now - windows.active_pr,
                    )?;
                    if let Some(reason) = respawn_guard(&facts, now, &windows) {
                        if !opts.dry_run {
                            self.store.note_respawn_guarded(&cand.id, reason.as_str())?;
                        }
                        result.respawn_guarded.push(GuardedTask {
                            task_id: cand.id,
                            reason: reason.as_str().into(),
                        });
                        continue;
                    }
                }
                if opts.dry_run {
                    result.spawned.push(SpawnedTask {
                        task_id: cand.id,
                        assignee: assignee.clone(),
                        workspace: String::new(),
                    });
                    running += 1;
                    *per_profile.entry(assignee).or_default() += 1;
                    continue;
                }
                match self.claim_and_spawn(opts, &cand.id, &assignee, &kind, review, result)? {
                    Launch::Spawned => {
                        running += 1;
                        *per_profile.entry(assignee).or_default() += 1;
                    }
                    Launch::Lost => {}
                    Launch::GlobalCeiling => {
                        health.capacity_full = true;
                        break 'statuses;
                    }
                    Launch::ProfileCeiling => {
                        result.skipped_per_profile_capped.push(CappedTask {
                            task_id: cand.id,
                            assignee,
                            current,
                        });
                    }
                    Launch::Failed { auto_blocked } => {
                        if !auto_blocked {
                            health.idle_spawnable += 1;
                        }
                    }
                }
            }
        }
        health.spawned = result.spawned.len();
        result.health = health;
        Ok(())
    }

    fn claim_and_spawn(
        &self,
        opts: &DispatchOptions,
        task_id: &str,
        assignee: &str,
        kind: &ProfileKind,
        review: bool,
        result: &mut DispatchResult,
    ) -> Result<Launch> {
        let req = ClaimRequest {
            task_id: task_id.to_string(),
            claim_lock: self.liveness.claimer_id(),
            ttl_seconds: opts.claim_ttl_seconds,
            review,
            ceilings: opts.ceilings(),
        };
        let (task, run_id) = match self.store.claim_task(&req)? {
            ClaimOutcome::Claimed { task, run_id } => (task, run_id),
            ClaimOutcome::Lost { .. } | ClaimOutcome::ParentsPending => return Ok(Launch::Lost),
            ClaimOutcome::CeilingReached(name) => {
                let per_profile =
                    name.starts_with("profile_limits[") || name.starts_with("max_per_profile[");
                return Ok(if per_profile {
                    Launch::ProfileCeiling
                } else {
                    Launch::GlobalCeiling
                });
            }
        };
        let ws = match resolve_workspace(&WorkspaceRequest {
            task_id,
            kind: &task.workspace_kind,
            path: task.workspace_path.as_deref(),
            branch_name: task.branch_name.as_deref(),
            workspaces_root: &self.board.workspaces_root,
            board: &self.board.slug,
            default_workdir: self.board.default_workdir.as_deref(),
        }) {
            Ok(ws) => ws,
            Err(e) => {
                return self.spawn_failed(opts, &task, run_id, format!("workspace: {e}"), result);
            }
        };
        let tip = self.scratch_tip(&task);
        self.store.set_workspace(&SetWorkspace {
            task_id: task_id.to_string(),
            run_id: Some(run_id),
            path: ws.path.to_string_lossy().into_owned(),
            branch: ws.branch.clone(),
            tip: tip.map(str::to_string),
        })?;
        let spec = match self.worker_spec(opts, &task, &ws, assignee, kind, review) {
            Ok(spec) => spec,
            Err(e) => return self.spawn_failed(opts, &task, run_id, e.to_string(), result),
        };
        let worker = match self.spawner.spawn(&spec) {
            Ok(w) => w,
            Err(e) => return self.spawn_failed(opts, &task, run_id, e.to_string(), result),
        };
        let record = SetWorker {
            task_id: task_id.to_string(),
            run_id: Some(run_id),
            worker: WorkerRecord {
                pid: i64::from(worker.pid),
                start_time: worker.start_time.and_then(|t| i64::try_from(t).ok()),
                boot_id: self.liveness.boot_id(),
                host: Some(self.liveness.hostname()),
            },
        };
        // The worker runs either way; a failed write only loses early crash
        // detection for this attempt (the claim TTL still covers it).
        if let Err(e) = self.store.set_worker(&record) {
            tracing::warn!(
                task = task_id,
                pid = worker.pid,
                "could not record the worker: {e}"
            );
        }
        result.spawned.push(SpawnedTask {
            task_id: task_id.to_string(),
            assignee: assignee.to_string(),
            workspace: ws.path.to_string_lossy().into_owned(),
        });
        Ok(Launch::Spawned)
    }

    fn spawn_failed(
        &self,
        opts: &DispatchOptions,
        task: &Task,
        run_id: i64,
        error: String,
        result: &mut DispatchResult,
    ) -> Result<Launch> {
        tracing::warn!(task = %task.id, "worker not started: {error}");
        let released = self.store.record_spawn_failure(&SpawnFailure {
            task_id: task.id.clone(),
            run_id: Some(run_id),
            error,
            failure_limit: opts.failure_limit,
        })?;
        if released.auto_blocked {
            result.auto_blocked.push(task.id.clone());
        }
        Ok(Launch::Failed {
            auto_blocked: released.auto_blocked,
        })
    }

    /// The one-time scratch tip, if this is the installation's first.
    fn scratch_tip(&self, task: &Task) -> Option<&'static str> {
        let sentinel = self.board.scratch_tip_sentinel.as_ref()?;
        if !matches!(task.workspace_kind.as_str(), "" | "scratch") || sentinel.exists() {
            return None;
        }
        tracing::warn!(task = %task.id, "kanban: {SCRATCH_TIP}");
        if let Err(e) = std::fs::write(sentinel, b"") {
            tracing::debug!("cannot write {}: {e}", sentinel.display());
        }
        Some(SCRATCH_TIP)
    }

    fn worker_spec(
        &self,
        opts: &DispatchOptions,
        claimed: &Task,
        ws: &ResolvedWorkspace,
        assignee: &str,
        kind: &ProfileKind,
        review: bool,
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
                let cwd = std::env::current_dir().unwrap_or_else(|_| "/".into());
                let hermes = resolve_hermes_argv(&var, &cwd);
                let args = HermesWorkerArgs {
                    profile: assignee,
                    task_id: &task.id,
                    skills: &skills,
                    model: task.model_override.as_deref(),
                    toolsets: &[],
                    goal_mode: task.goal_mode,
                };
                (
                    hermes_worker_argv(&hermes, &args),
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
