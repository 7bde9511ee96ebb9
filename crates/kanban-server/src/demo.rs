//! `kanban gateway run --demo`: a `demo` board whose tasks are run by tiny
//! shell-script workers, so a newcomer sees work flow through every column
//! (dashboard or `kanban --board demo watch`) without installing any agent.
//! The gateway runs it on a root of its own (a throwaway one unless
//! `--demo-root` names one), never on the user's.
//!
//! Nothing here writes `config.yaml`: the demo worker profiles (and their
//! running ceilings) exist only in the memory of a gateway started with
//! `--demo` (an overlay applied to every config it reads; a profile of the
//! same name in the user's config wins). Started without `--demo`, the
//! gateway treats the demo assignees as non-spawnable lanes and leaves the
//! board alone.
//!
//! [`prepare`] seeds the opening ([`opening`]): while demo tasks are
//! unfinished the demo resumes; once every one is done a new round is
//! added. Idempotency keys name the round, so two concurrent seeders cannot
//! duplicate it. Then the [`feeder`] keeps the board moving.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use kanban_core::Status;
use kanban_hermes::catalogue::set_current_board;
use kanban_hermes::config::{KanbanConfig, ProfileSpec, open_request};
use kanban_hermes::layout::{DEFAULT_BOARD, LayoutError, MetaUpdate, Root};
use kanban_store::backend::{BoardHandle, open_board};
use kanban_store::{Store, StoreError, TaskQuery};

pub mod feeder;
mod opening;
mod plan;
mod script;

pub use feeder::{DEFAULT_DEMO_RATE, DemoRate, Feeder, FeederHandle, RateError};
pub use opening::OPENING_TASKS;
pub use plan::{Plan, Twist};
pub use script::{worker_script_path, write_worker_script};

/// Slug of the demo board.
pub const DEMO_BOARD: &str = "demo";
/// `created_by` of seeded tasks: how a demo task is recognised.
pub const DEMO_AUTHOR: &str = "kanban-demo";
pub const RESEARCHER: &str = "researcher";
pub const CODER: &str = "coder";
pub const REVIEWER: &str = "reviewer";
/// The profile whose partner API rate-limits it (exit 75).
pub const FLAKY_API: &str = "flaky-api";
/// Demo profiles: name, the role the worker script plays, running ceiling
/// (low, so ready has a queue at times).
pub const DEMO_PROFILES: [(&str, &str, u32); 4] = [
    (RESEARCHER, "researcher", 1),
    (CODER, "coder", 1),
    (REVIEWER, "reviewer", 1),
    (FLAKY_API, "api-client", 1),
];
/// Rate-limit cooldown of the demo's dispatcher (the default, 300 s, is
/// long for a demo): a requeued task waits in ready this long.
pub const DEMO_RATE_LIMIT_COOLDOWN_SECONDS: i64 = 30;

/// The role a demo profile's worker plays.
pub(crate) fn role_of(profile: &str) -> &'static str {
    DEMO_PROFILES
        .iter()
        .find(|(name, _, _)| *name == profile)
        .map_or("worker", |(_, role, _)| role)
}

#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error(transparent)]
    Layout(#[from] LayoutError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot write the demo worker script {path}: {source}")]
    Script {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// What [`prepare`] did.
#[derive(Debug, Clone)]
pub struct DemoSetup {
    /// `demo` was made the current board: the root had no work of its own
    /// and no current board, so the dashboard and `kanban watch` open on it.
    pub made_current: bool,
    /// The worker script every demo profile runs.
    pub script: PathBuf,
    /// Ids of tasks created now (empty when an unfinished demo was resumed).
    pub created: Vec<String>,
    /// Unfinished demo tasks found (and kept) from an earlier run.
    pub resumed: usize,
    /// Which opening round the board is on (1 for a fresh board).
    pub round: usize,
}

/// What a `--demo` gateway adds to every config it reads.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DemoOverlay {
    pub profiles: BTreeMap<String, ProfileSpec>,
    /// Running ceilings of the overlay's profiles.
    pub profile_limits: BTreeMap<String, u32>,
    /// Replaces the dispatcher's rate-limit cooldown when set.
    pub rate_limit_cooldown_seconds: Option<i64>,
}

impl DemoOverlay {
    pub fn is_empty(&self) -> bool {
        self.profiles.is_empty()
    }
}

/// `<root>/kanban/demo/`: the demo's scripts.
pub fn demo_dir(root: &Root) -> PathBuf {
    root.kanban_dir().join("demo")
}

/// Write the worker script, create the board and seed (or resume) the
/// opening. `kanban_exe` is the binary the workers call (the running one).
pub fn prepare(root: &Root, kanban_exe: &Path) -> Result<DemoSetup, DemoError> {
    let script = write_worker_script(root, kanban_exe)?;
    let board = open_demo_board(root)?;
    let (created, resumed, round) = seed(board.as_dispatch())?;
    drop(board);
    let made_current = adopt_if_fresh(root)?;
    Ok(DemoSetup {
        made_current,
        script,
        created,
        resumed,
        round,
    })
}

/// Make `demo` the current board when nobody chose one and the default
/// board holds no task: a newcomer's dashboard then opens on the demo.
fn adopt_if_fresh(root: &Root) -> Result<bool, DemoError> {
    if root.current_pointer().exists() {
        return Ok(false);
    }
    let default = root.board_paths(DEFAULT_BOARD);
    if default.db.exists() {
        let board = open_board(&default.location(), &open_request(false))?;
        let any = board.store().list_tasks(&TaskQuery {
            include_archived: true,
            limit: Some(1),
            ..TaskQuery::default()
        })?;
        if !any.is_empty() {
            return Ok(false);
        }
    }
    set_current_board(root, DEMO_BOARD)?;
    Ok(true)
}

/// Add the overlay's profiles the config does not define itself, with
/// their ceilings (a user's own profile keeps its own).
pub fn apply_overlay(config: &mut KanbanConfig, overlay: &DemoOverlay) {
    for (name, spec) in &overlay.profiles {
        if config.profiles.contains_key(name) {
            continue;
        }
        config.profiles.insert(name.clone(), spec.clone());
        if let Some(&limit) = overlay.profile_limits.get(name) {
            config.profile_limits.entry(name.clone()).or_insert(limit);
        }
    }
}

/// The demo overlay: each profile runs `/bin/sh <script> <role>` with the
/// task's title and prompt in the environment (`{title}` and `{prompt}`
/// templates, the same mechanism users configure).
pub fn demo_overlay(script: &Path) -> DemoOverlay {
    let profiles = DEMO_PROFILES
        .iter()
        .map(|(name, role, _)| {
            let spec = ProfileSpec {
                command: vec![
                    "/bin/sh".into(),
                    script.display().to_string(),
                    (*role).to_string(),
                ],
                env: BTreeMap::from([
                    ("DEMO_TASK_TITLE".to_string(), "{title}".to_string()),
                    ("DEMO_TASK_PROMPT".to_string(), "{prompt}".to_string()),
                ]),
                description: Some(format!("kanban demo {role} (shell script)")),
                model: None,
            };
            ((*name).to_string(), spec)
        })
        .collect();
    DemoOverlay {
        profiles,
        profile_limits: DEMO_PROFILES
            .iter()
            .map(|(name, _, limit)| ((*name).to_string(), *limit))
            .collect(),
        rate_limit_cooldown_seconds: Some(DEMO_RATE_LIMIT_COOLDOWN_SECONDS),
    }
}

/// Create the `demo` board (metadata only when new) and open its DB.
pub fn open_demo_board(root: &Root) -> Result<BoardHandle, DemoError> {
    let catalogue = kanban_hermes::catalogue::for_root(root);
    let update = if catalogue.exists(DEMO_BOARD) {
        MetaUpdate::default()
    } else {
        MetaUpdate {
            name: Some("Demo".into()),
            description: Some("Created by `kanban gateway run --demo`".into()),
            icon: Some("🎬".into()),
            ..MetaUpdate::default()
        }
    };
    catalogue
        .write_metadata(DEMO_BOARD, &update)
        .map_err(LayoutError::from)?;
    let paths = root.board_paths(DEMO_BOARD);
    paths.ensure_dirs()?;
    Ok(open_board(&paths.location(), &open_request(true))?)
}

/// Resume the unfinished demo or seed the next opening: (created,
/// resumed, round). A resumed demo's questions and nightly jobs are left
/// to the feeder, as they would be to a person.
fn seed(store: &dyn Store) -> Result<(Vec<String>, usize, usize), DemoError> {
    let next = opening::next_round(store)?;
    let open = store
        .list_tasks(&TaskQuery::default())?
        .iter()
        .filter(|t| t.created_by.as_deref() == Some(DEMO_AUTHOR) && t.status != Status::Done)
        .count();
    if open > 0 {
        return Ok((Vec::new(), open, next.saturating_sub(1).max(1)));
    }
    Ok((opening::create_opening(store, next)?, 0, next))
}

#[cfg(test)]
mod tests {
    use super::*;
    use kanban_store::NewTask;

    fn statuses(store: &dyn Store) -> Vec<Status> {
        let mut s: Vec<Status> = store
            .list_tasks(&TaskQuery::default())
            .unwrap()
            .iter()
            .map(|t| t.status)
            .collect();
        s.sort();
        s.dedup();
        s
    }

    #[test]
    fn the_opening_uses_every_column_a_task_can_reach_before_work_starts() {
        let dir = tempfile::tempdir().unwrap();
        let root = Root::at(dir.path());
        let first = prepare(&root, Path::new("/bin/kanban")).unwrap();
        assert_eq!(first.created.len(), OPENING_TASKS);
        let store = open_demo_board(&root).unwrap().store();
        // Running needs the dispatcher; review has no way in but a worker's
        // review request, which the store does not offer.
        use Status::*;
        assert_eq!(
            statuses(store.as_ref()),
            vec![Triage, Todo, Scheduled, Ready, Blocked, Done]
        );
        let tasks = store.list_tasks(&TaskQuery::default()).unwrap();
        assert!(
            tasks
                .iter()
                .all(|t| t.created_by.as_deref() == Some(DEMO_AUTHOR))
        );
        let blocked = tasks.iter().find(|t| t.status == Blocked).unwrap();
        assert_eq!(blocked.block_kind.as_deref(), Some("needs_input"));
        assert_eq!(blocked.assignee.as_deref(), Some(RESEARCHER));
        let profiles: std::collections::BTreeSet<_> =
            tasks.iter().filter_map(|t| t.assignee.as_deref()).collect();
        assert_eq!(profiles.len(), DEMO_PROFILES.len(), "{profiles:?}");
        for t in tasks.iter().filter(|t| t.status != Done) {
            let body = t.body.as_deref().unwrap_or_default();
            assert!(body.contains("[demo-plan secs="), "{}: {body}", t.title);
        }
    }

    #[test]
    fn seeding_resumes_until_every_demo_task_is_done() {
        let dir = tempfile::tempdir().unwrap();
        let root = Root::at(dir.path());
        let exe = Path::new("/usr/bin/kanban");
        let first = prepare(&root, exe).unwrap();
        assert_eq!((first.resumed, first.round), (0, 1));
        assert!(first.made_current);
        assert_eq!(root.pointer_board().as_deref(), Some(DEMO_BOARD));
        let script = std::fs::read_to_string(&first.script).unwrap();
        let home = format!("HERMES_KANBAN_HOME='{}'", dir.path().display());
        assert!(script.contains(&home), "workers act on the demo's root");
        let again = prepare(&root, exe).unwrap();
        let open = OPENING_TASKS - 3;
        assert_eq!(
            (again.created.len(), again.resumed, again.round),
            (0, open, 1)
        );
        assert!(!again.made_current, "the pointer exists now");

        let store = open_demo_board(&root).unwrap().store();
        for id in &first.created {
            store.archive_task(id).unwrap();
        }
        let next = prepare(&root, exe).unwrap();
        assert_eq!((next.created.len(), next.round), (OPENING_TASKS, 2));
    }

    #[test]
    fn a_root_with_work_keeps_its_current_board() {
        let dir = tempfile::tempdir().unwrap();
        let root = Root::at(dir.path());
        let paths = root.board_paths(DEFAULT_BOARD);
        let store = open_board(&paths.location(), &open_request(true))
            .unwrap()
            .store();
        store
            .create_task(&NewTask {
                title: "mine".into(),
                ..NewTask::default()
            })
            .unwrap();
        drop(store);
        let setup = prepare(&root, Path::new("/bin/kanban")).unwrap();
        assert!(!setup.made_current);
        assert_eq!(root.pointer_board(), None);
    }

    #[test]
    fn overlay_never_replaces_a_user_profile_or_its_ceiling() {
        let mut cfg = KanbanConfig::default();
        let mine = ProfileSpec {
            command: vec!["mine".into()],
            ..ProfileSpec::default()
        };
        cfg.profiles.insert(CODER.into(), mine.clone());
        let overlay = demo_overlay(Path::new("/x/worker.sh"));
        apply_overlay(&mut cfg, &overlay);
        assert_eq!(cfg.profiles[CODER], mine);
        assert_eq!(cfg.profile_limits.get(CODER), None);
        assert_eq!(cfg.profiles[FLAKY_API].command[0], "/bin/sh");
        assert_eq!(cfg.profile_limits.get(RESEARCHER), Some(&1));
        let env = &cfg.profiles[REVIEWER].env;
        assert_eq!(env["DEMO_TASK_PROMPT"], "{prompt}");
    }
}
