//! Who is calling: a dispatcher-spawned worker (`HERMES_KANBAN_TASK` set)
//! or an orchestrator / operator. One place decides what each may do, for
//! the MCP tools and the CLI verbs alike (reference §5 gating).

use std::fmt;

pub const ENV_TASK: &str = "HERMES_KANBAN_TASK";
pub const ENV_RUN_ID: &str = "HERMES_KANBAN_RUN_ID";
pub const ENV_CLAIM_LOCK: &str = "HERMES_KANBAN_CLAIM_LOCK";
pub const ENV_PROFILE: &str = "HERMES_PROFILE";
pub const ENV_TENANT: &str = "HERMES_TENANT";
pub const ENV_SESSION_ID: &str = "HERMES_SESSION_ID";

/// Author of comments and creator of tasks when no profile is known.
pub const DEFAULT_WORKER_AUTHOR: &str = "worker";

/// A refusal decided by the gate alone, before the board is touched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GateError(pub String);

impl fmt::Display for GateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for GateError {}

/// The worker identity the dispatcher put in the environment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WorkerEnv {
    /// The task this process was spawned for; `None` = orchestrator mode.
    pub task: Option<String>,
    pub run_id: Option<i64>,
    pub claim_lock: Option<String>,
    pub profile: Option<String>,
    pub tenant: Option<String>,
    pub session_id: Option<String>,
}

fn non_blank(var: &str) -> Option<String> {
    std::env::var(var)
        .ok()
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
}

impl WorkerEnv {
    pub fn from_env() -> WorkerEnv {
        WorkerEnv {
            task: non_blank(ENV_TASK),
            run_id: non_blank(ENV_RUN_ID).and_then(|r| r.parse().ok()),
            claim_lock: non_blank(ENV_CLAIM_LOCK),
            profile: non_blank(ENV_PROFILE),
            tenant: non_blank(ENV_TENANT),
            session_id: non_blank(ENV_SESSION_ID),
        }
    }

    /// Worker mode: scoped to one task, no board-routing tools.
    pub fn is_worker(&self) -> bool {
        self.task.is_some()
    }

    pub fn is_own_task(&self, task_id: &str) -> bool {
        self.task.as_deref() == Some(task_id)
    }

    /// The explicit id, else the worker's own task.
    pub fn task_or_own(&self, explicit: Option<&str>) -> Result<String, GateError> {
        explicit
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(str::to_string)
            .or_else(|| self.task.clone())
            .ok_or_else(|| {
                GateError("task_id is required (or set HERMES_KANBAN_TASK in the env)".into())
            })
    }

    /// Lifecycle calls (complete, block, heartbeat) from a worker may only
    /// touch its own task: a confused or prompt-injected worker must not
    /// close a sibling's run. Orchestrators are not restricted.
    pub fn check_lifecycle(&self, task_id: &str) -> Result<(), GateError> {
        match &self.task {
            Some(own) if own != task_id => Err(GateError(format!(
                "worker is scoped to task {own}; refusing to mutate {task_id}. Use \
                 kanban_comment to hand off information to other tasks, or kanban_create \
                 to spawn follow-up work."
            ))),
            _ => Ok(()),
        }
    }

    /// Board-routing calls (list, unblock) are for orchestrators only.
    pub fn require_orchestrator(&self, tool: &str) -> Result<(), GateError> {
        if self.is_worker() {
            return Err(GateError(format!(
                "{tool} is orchestrator-only; dispatcher-spawned workers must use \
                 kanban_complete, kanban_block, kanban_heartbeat, or kanban_comment for \
                 their assigned task."
            )));
        }
        Ok(())
    }

    /// The run id presented as compare-and-swap, only for the own task.
    pub fn run_id_for(&self, task_id: &str) -> Option<i64> {
        self.is_own_task(task_id).then_some(self.run_id).flatten()
    }

    /// The claim lock presented when heartbeating the own task.
    pub fn claim_lock_for(&self, task_id: &str) -> Option<String> {
        self.is_own_task(task_id)
            .then(|| self.claim_lock.clone())
            .flatten()
    }

    /// Comment author / task creator: the profile, never caller-supplied,
    /// so a worker cannot forge an authoritative-looking name.
    pub fn author(&self) -> String {
        self.profile
            .clone()
            .unwrap_or_else(|| DEFAULT_WORKER_AUTHOR.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn worker() -> WorkerEnv {
        WorkerEnv {
            task: Some("t_aaaaaaaa".into()),
            run_id: Some(7),
            claim_lock: Some("h:1".into()),
            ..Default::default()
        }
    }

    #[test]
    fn worker_is_scoped_to_its_task() {
        let w = worker();
        assert!(w.check_lifecycle("t_aaaaaaaa").is_ok());
        let err = w.check_lifecycle("t_bbbbbbbb").unwrap_err();
        assert!(
            err.0
                .starts_with("worker is scoped to task t_aaaaaaaa; refusing to mutate t_bbbbbbbb")
        );
        assert!(w.require_orchestrator("kanban_list").is_err());
        assert_eq!(w.task_or_own(None).unwrap(), "t_aaaaaaaa");
        assert_eq!(w.run_id_for("t_aaaaaaaa"), Some(7));
        assert_eq!(w.run_id_for("t_bbbbbbbb"), None);
        assert_eq!(w.claim_lock_for("t_bbbbbbbb"), None);
        assert_eq!(w.author(), "worker");
    }

    #[test]
    fn orchestrator_is_unrestricted_but_needs_ids() {
        let o = WorkerEnv::default();
        assert!(o.check_lifecycle("t_bbbbbbbb").is_ok());
        assert!(o.require_orchestrator("kanban_list").is_ok());
        assert!(o.task_or_own(None).is_err());
        assert_eq!(o.task_or_own(Some(" t_c ")).unwrap(), "t_c");
    }
}
