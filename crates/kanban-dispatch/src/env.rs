//! The environment a worker is started with (reference §3.4): the parent's
//! environment plus the `HERMES_KANBAN_*` contract that pins the worker to
//! its task, attempt, board and workspace.

use std::path::Path;

use kanban_core::Task;
use kanban_core::context::worker_terminal_timeout;

pub const ENV_HERMES_HOME: &str = "HERMES_HOME";
pub const ENV_TENANT: &str = "HERMES_TENANT";
pub const ENV_TASK: &str = "HERMES_KANBAN_TASK";
pub const ENV_WORKSPACE: &str = "HERMES_KANBAN_WORKSPACE";
pub const ENV_TERMINAL_CWD: &str = "TERMINAL_CWD";
pub const ENV_BRANCH: &str = "HERMES_KANBAN_BRANCH";
pub const ENV_RUN_ID: &str = "HERMES_KANBAN_RUN_ID";
pub const ENV_CLAIM_LOCK: &str = "HERMES_KANBAN_CLAIM_LOCK";
pub const ENV_GOAL_MODE: &str = "HERMES_KANBAN_GOAL_MODE";
pub const ENV_GOAL_MAX_TURNS: &str = "HERMES_KANBAN_GOAL_MAX_TURNS";
pub const ENV_TERMINAL_TIMEOUT: &str = "TERMINAL_TIMEOUT";
pub const ENV_TERMINAL_MAX_FOREGROUND_TIMEOUT: &str = "TERMINAL_MAX_FOREGROUND_TIMEOUT";
pub const ENV_DB: &str = "HERMES_KANBAN_DB";
/// The board's PostgreSQL database (`kanban_hermes::layout::ENV_KANBAN_DATABASE_URL`).
pub const ENV_DATABASE_URL: &str = "HERMES_KANBAN_DATABASE_URL";
pub const ENV_WORKSPACES_ROOT: &str = "HERMES_KANBAN_WORKSPACES_ROOT";
pub const ENV_BOARD: &str = "HERMES_KANBAN_BOARD";
pub const ENV_PROFILE: &str = "HERMES_PROFILE";
/// Removed: an inherited `HERMES_TUI=1` makes a Hermes worker boot the
/// interactive TUI, which exits 0 without a terminal (a protocol violation
/// on every attempt).
pub const ENV_TUI: &str = "HERMES_TUI";
/// The dispatcher's own `kanban` executable, for workers to call.
pub const ENV_KANBAN_BIN: &str = "KANBAN_BIN";
pub const ENV_PATH: &str = "PATH";
/// Where a worker looks for programs when the dispatcher has no `PATH`
/// (what `execvp` falls back to).
pub const FALLBACK_PATH: &str = "/usr/local/bin:/usr/bin:/bin";

/// Changes applied on top of the dispatcher's own environment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EnvPlan {
    pub set: Vec<(String, String)>,
    pub remove: Vec<String>,
}

impl EnvPlan {
    pub fn set(&mut self, key: &str, value: impl Into<String>) {
        let value = value.into();
        match self.set.iter_mut().find(|(k, _)| k == key) {
            Some(slot) => slot.1 = value,
            None => self.set.push((key.to_string(), value)),
        }
        self.remove.retain(|k| k != key);
    }

    pub fn remove(&mut self, key: &str) {
        self.set.retain(|(k, _)| k != key);
        if !self.remove.iter().any(|k| k == key) {
            self.remove.push(key.to_string());
        }
    }

    /// The value this plan sets for `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.set
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// Facts the worker environment is made of.
#[derive(Debug, Clone, Copy)]
pub struct WorkerEnvInput<'a> {
    /// The task as claimed (carries run id, claim lock, branch, tenant,
    /// goal mode and runtime cap).
    pub task: &'a Task,
    pub workspace: &'a Path,
    /// Normalised profile (assignee) name.
    pub profile: &'a str,
    /// The profile's home for Hermes profiles; `None` keeps the inherited
    /// `HERMES_HOME` (config-defined template profiles).
    pub hermes_home: Option<&'a Path>,
    pub board: &'a str,
    pub db_path: &'a Path,
    /// The PostgreSQL database of the board, if it lives in one.
    pub database_url: Option<&'a str>,
    pub workspaces_root: &'a Path,
}

/// The worker environment. `parent` reads the dispatcher's environment
/// (only `TERMINAL_TIMEOUT`/`TERMINAL_MAX_FOREGROUND_TIMEOUT` are consulted,
/// to raise but never lower them).
pub fn worker_env(input: &WorkerEnvInput<'_>, parent: &dyn Fn(&str) -> Option<String>) -> EnvPlan {
    let task = input.task;
    let mut plan = EnvPlan::default();
    if let Some(home) = input.hermes_home {
        plan.set(ENV_HERMES_HOME, home.to_string_lossy());
    }
    if let Some(tenant) = task.tenant.as_deref().filter(|t| !t.is_empty()) {
        plan.set(ENV_TENANT, tenant);
    }
    plan.set(ENV_TASK, task.id.as_str());
    plan.set(ENV_WORKSPACE, input.workspace.to_string_lossy());
    // Only a real absolute directory: the worker's file tools reject
    // anything else, so an inherited value is better than a bogus one.
    if input.workspace.is_absolute() && input.workspace.is_dir() {
        plan.set(ENV_TERMINAL_CWD, input.workspace.to_string_lossy());
    }
    if let Some(branch) = task.branch_name.as_deref().filter(|b| !b.is_empty()) {
        plan.set(ENV_BRANCH, branch);
    }
    if let Some(run_id) = task.current_run_id {
        plan.set(ENV_RUN_ID, run_id.to_string());
    }
    if let Some(lock) = task.claim_lock.as_deref().filter(|l| !l.is_empty()) {
        plan.set(ENV_CLAIM_LOCK, lock);
    }
    if task.goal_mode {
        plan.set(ENV_GOAL_MODE, "1");
        if let Some(turns) = task.goal_max_turns {
            plan.set(ENV_GOAL_MAX_TURNS, turns.to_string());
        }
    }
    for key in [ENV_TERMINAL_TIMEOUT, ENV_TERMINAL_MAX_FOREGROUND_TIMEOUT] {
        if let Some(v) = worker_terminal_timeout(task.max_runtime_seconds, parent(key).as_deref()) {
            plan.set(key, v);
        }
    }
    plan.set(ENV_DB, input.db_path.to_string_lossy());
    // In the environment, not argv: the URL may hold a password. A worker
    // of a SQLite board must not inherit some other database.
    match input.database_url {
        Some(url) => plan.set(ENV_DATABASE_URL, url),
        None => plan.remove(ENV_DATABASE_URL),
    }
    plan.set(ENV_WORKSPACES_ROOT, input.workspaces_root.to_string_lossy());
    plan.set(ENV_BOARD, input.board);
    plan.set(ENV_PROFILE, input.profile);
    plan.remove(ENV_TUI);
    plan
}

/// Let the worker find the dispatcher's own `kanban` whatever the
/// dispatcher's `PATH` holds (a systemd unit's rarely has it): `exe`'s
/// directory first on the worker's `PATH` (`path`, the one it would get
/// otherwise) and `exe` as `KANBAN_BIN`. A relative `exe` (not a resolved
/// executable) changes nothing.
pub fn expose_kanban(plan: &mut EnvPlan, exe: &Path, path: Option<&str>) {
    let Some(dir) = exe.parent().filter(|_| exe.is_absolute()) else {
        return;
    };
    let dir = dir.to_string_lossy();
    let rest = path.filter(|p| !p.is_empty()).unwrap_or(FALLBACK_PATH);
    let already_first = rest.split(':').next() == Some(dir.as_ref());
    let path = if already_first {
        rest.to_string()
    } else {
        format!("{dir}:{rest}")
    };
    plan.set(ENV_PATH, path);
    plan.set(ENV_KANBAN_BIN, exe.to_string_lossy());
}

#[cfg(test)]
pub(crate) mod tests {
    use std::path::PathBuf;

    use kanban_core::Status;

    use super::*;

    pub(crate) fn task(id: &str) -> Task {
        Task {
            id: id.into(),
            title: "Write the report".into(),
            body: None,
            assignee: Some("alice".into()),
            status: Status::Running,
            priority: 0,
            created_by: None,
            created_at: 1,
            started_at: Some(2),
            completed_at: None,
            workspace_kind: "scratch".into(),
            workspace_path: None,
            branch_name: None,
            project_id: None,
            claim_lock: Some("host:1".into()),
            claim_expires: Some(1000),
            tenant: None,
            result: None,
            idempotency_key: None,
            consecutive_failures: 0,
            worker_pid: None,
            last_failure_error: None,
            max_runtime_seconds: None,
            last_heartbeat_at: None,
            current_run_id: Some(7),
            workflow_template_id: None,
            current_step_key: None,
            skills: None,
            model_override: None,
            max_retries: None,
            goal_mode: false,
            goal_max_turns: None,
            session_id: None,
            block_kind: None,
            block_recurrences: 0,
        }
    }

    fn input<'a>(t: &'a Task, ws: &'a Path, home: Option<&'a Path>) -> WorkerEnvInput<'a> {
        WorkerEnvInput {
            task: t,
            workspace: ws,
            profile: "alice",
            hermes_home: home,
            board: "ops",
            db_path: Path::new("/r/kanban/boards/ops/kanban.db"),
            database_url: None,
            workspaces_root: Path::new("/r/kanban/boards/ops/workspaces"),
        }
    }

    #[test]
    fn a_postgres_board_reaches_workers_through_the_environment_only() {
        let dir = tempfile::tempdir().unwrap();
        let t = task("t_0000abcd");
        let url = "postgres://kanban:s3cret@db/kb";
        let mut with_db = input(&t, dir.path(), None);
        with_db.database_url = Some(url);
        let plan = worker_env(&with_db, &|_| None);
        assert_eq!(plan.get(ENV_DATABASE_URL), Some(url));
        let plan = worker_env(&input(&t, dir.path(), None), &|_| None);
        assert_eq!(plan.get(ENV_DATABASE_URL), None);
        assert!(plan.remove.iter().any(|k| k == ENV_DATABASE_URL));
    }

    #[test]
    fn carries_the_whole_worker_contract() {
        let dir = tempfile::tempdir().unwrap();
        let mut t = task("t_0000abcd");
        t.tenant = Some("acme".into());
        t.branch_name = Some("wt/t_0000abcd".into());
        t.goal_mode = true;
        t.goal_max_turns = Some(12);
        let home = PathBuf::from("/r/profiles/alice");
        let plan = worker_env(&input(&t, dir.path(), Some(&home)), &|_| None);
        let ws = dir.path().to_string_lossy().to_string();
        for (k, v) in [
            ("HERMES_HOME", "/r/profiles/alice"),
            ("HERMES_TENANT", "acme"),
            ("HERMES_KANBAN_TASK", "t_0000abcd"),
            ("HERMES_KANBAN_WORKSPACE", ws.as_str()),
            ("TERMINAL_CWD", ws.as_str()),
            ("HERMES_KANBAN_BRANCH", "wt/t_0000abcd"),
            ("HERMES_KANBAN_RUN_ID", "7"),
            ("HERMES_KANBAN_CLAIM_LOCK", "host:1"),
            ("HERMES_KANBAN_GOAL_MODE", "1"),
            ("HERMES_KANBAN_GOAL_MAX_TURNS", "12"),
            ("HERMES_KANBAN_DB", "/r/kanban/boards/ops/kanban.db"),
            (
                "HERMES_KANBAN_WORKSPACES_ROOT",
                "/r/kanban/boards/ops/workspaces",
            ),
            ("HERMES_KANBAN_BOARD", "ops"),
            ("HERMES_PROFILE", "alice"),
        ] {
            assert_eq!(plan.get(k), Some(v), "{k}");
        }
        // A SQLite board's worker never inherits a database URL.
        assert_eq!(
            plan.remove,
            vec![ENV_DATABASE_URL.to_string(), "HERMES_TUI".to_string()]
        );
        assert_eq!(plan.get("TERMINAL_TIMEOUT"), None);
    }

    #[test]
    fn optional_keys_stay_unset() {
        let t = task("t_1");
        let plan = worker_env(&input(&t, Path::new("relative/ws"), None), &|_| None);
        for k in [
            "HERMES_HOME",
            "HERMES_TENANT",
            "TERMINAL_CWD",
            "HERMES_KANBAN_BRANCH",
            "HERMES_KANBAN_GOAL_MODE",
        ] {
            assert_eq!(plan.get(k), None, "{k}");
        }
    }

    #[test]
    fn the_dispatchers_kanban_comes_first_on_path_and_as_kanban_bin() {
        let exe = Path::new("/opt/kanban/bin/kanban");
        let mut plan = EnvPlan::default();
        expose_kanban(&mut plan, exe, Some("/usr/bin:/bin"));
        assert_eq!(plan.get(ENV_PATH), Some("/opt/kanban/bin:/usr/bin:/bin"));
        assert_eq!(plan.get(ENV_KANBAN_BIN), Some("/opt/kanban/bin/kanban"));
        // Once is enough, and a missing PATH still finds the system tools.
        expose_kanban(&mut plan, exe, Some("/opt/kanban/bin:/usr/bin"));
        assert_eq!(plan.get(ENV_PATH), Some("/opt/kanban/bin:/usr/bin"));
        expose_kanban(&mut plan, exe, None);
        assert_eq!(
            plan.get(ENV_PATH),
            Some(format!("/opt/kanban/bin:{FALLBACK_PATH}").as_str())
        );
        // A bare name is no executable to expose.
        let mut untouched = EnvPlan::default();
        expose_kanban(&mut untouched, Path::new("kanban"), Some("/usr/bin"));
        assert_eq!(untouched, EnvPlan::default());
    }

    #[test]
    fn terminal_timeouts_are_raised_never_lowered() {
        let mut t = task("t_1");
        t.max_runtime_seconds = Some(600);
        let plan = worker_env(&input(&t, Path::new("/nonexistent"), None), &|k| {
            (k == "TERMINAL_MAX_FOREGROUND_TIMEOUT").then(|| "900".to_string())
        });
        assert_eq!(plan.get("TERMINAL_TIMEOUT"), Some("570"));
        assert_eq!(plan.get("TERMINAL_MAX_FOREGROUND_TIMEOUT"), None);
    }
}
