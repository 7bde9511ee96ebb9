//! `kanban gateway run --demo`: a `demo` board whose tasks are run by tiny
//! shell-script workers, so a newcomer sees tasks go ready → running → done
//! within seconds (dashboard or `kanban --board demo watch`) without
//! installing any agent. The gateway runs it on a root of its own (a
//! throwaway one unless `--demo-root` names one), never on the user's.
//!
//! Nothing here writes `config.yaml`: the demo worker profiles exist only
//! in the memory of a gateway started with `--demo` (an overlay applied to
//! every config it reads; a profile of the same name in the user's config
//! wins). Started without `--demo`, the gateway treats the demo assignees as
//! non-spawnable lanes and leaves the board alone.
//!
//! Seeding is idempotent: while a demo round is unfinished it is resumed
//! (its blocked tasks unblocked, since the worker script was just
//! rewritten); once every demo task is done a new round is added, so a
//! second `--demo` run has something to show too. Idempotency keys name the
//! round, so two concurrent seeders cannot duplicate it.

use std::collections::BTreeMap;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use kanban_core::Status;
use kanban_hermes::config::{KanbanConfig, ProfileSpec, open_request};
use kanban_hermes::layout::{DEFAULT_BOARD, LayoutError, MetaUpdate, Root, set_current_board};
use kanban_store::backend::{BoardHandle, open_board};
use kanban_store::{NewTask, Store, StoreError, TaskQuery};

/// Slug of the demo board.
pub const DEMO_BOARD: &str = "demo";
/// `created_by` of seeded tasks: how a demo task is recognised.
pub const DEMO_AUTHOR: &str = "kanban-demo";
/// Demo profiles and the role each passes to the worker script.
pub const DEMO_PROFILES: [(&str, &str); 2] = [("demo-dev", "developer"), ("demo-qa", "tester")];
/// Owner-only: the script embeds the path of the binary it calls.
const SCRIPT_MODE: u32 = 0o700;

/// One task of the demo graph: title, assignee, indexes of its parents.
struct Step {
    key: &'static str,
    title: &'static str,
    assignee: &'static str,
    parents: &'static [usize],
    body: &'static str,
}

/// design → implement ×2 → test → release.
const DAG: [Step; 5] = [
    Step {
        key: "design",
        title: "Design the greeting service",
        assignee: "demo-dev",
        parents: &[],
        body: "Demo task. A shell-script worker (`<root>/kanban/demo/worker.sh`) heartbeats, \
               comments and completes it with `kanban complete`, like an agent would.",
    },
    Step {
        key: "api",
        title: "Implement the greeting API",
        assignee: "demo-dev",
        parents: &[0],
        body: "Waits in `todo` until the design is done, then runs next to the web page.",
    },
    Step {
        key: "web",
        title: "Implement the greeting page",
        assignee: "demo-dev",
        parents: &[0],
        body: "Runs in parallel with the API task.",
    },
    Step {
        key: "test",
        title: "Test the service end to end",
        assignee: "demo-qa",
        parents: &[1, 2],
        body: "Becomes ready only when both implementation tasks are done.",
    },
    Step {
        key: "release",
        title: "Release v1.0",
        assignee: "demo-dev",
        parents: &[3],
        body: "The last step of the demo graph.",
    },
];

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
    /// The in-memory profiles to overlay on the config.
    pub profiles: BTreeMap<String, ProfileSpec>,
    /// Ids of tasks created now (empty when an unfinished round was resumed).
    pub created: Vec<String>,
    /// Unfinished demo tasks found (and kept) from an earlier run.
    pub resumed: usize,
    /// Which round the board is on (1 for a fresh board).
    pub round: usize,
}

/// `<root>/kanban/demo/`: the demo's scripts.
pub fn demo_dir(root: &Root) -> PathBuf {
    root.kanban_dir().join("demo")
}

/// Write the worker script, create the board and seed (or resume) a round.
/// `kanban_exe` is the binary the workers call (the running one).
pub fn prepare(root: &Root, kanban_exe: &Path) -> Result<DemoSetup, DemoError> {
    let script = write_worker_script(root, kanban_exe)?;
    let profiles = demo_profiles(&script);
    let board = open_demo_board(root)?;
    let (created, resumed, round) = seed(board.as_dispatch())?;
    drop(board);
    let made_current = adopt_if_fresh(root)?;
    Ok(DemoSetup {
        made_current,
        script,
        profiles,
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

/// Add the `overlay` profiles the config does not define itself.
pub fn apply_overlay(config: &mut KanbanConfig, overlay: &BTreeMap<String, ProfileSpec>) {
    for (name, spec) in overlay {
        config
            .profiles
            .entry(name.clone())
            .or_insert_with(|| spec.clone());
    }
}

/// The demo profiles: `/bin/sh <script> <role>` with the task title in the
/// environment (a `{title}` template, the same mechanism users configure).
pub fn demo_profiles(script: &Path) -> BTreeMap<String, ProfileSpec> {
    DEMO_PROFILES
        .iter()
        .map(|(name, role)| {
            let spec = ProfileSpec {
                command: vec![
                    "/bin/sh".into(),
                    script.display().to_string(),
                    (*role).to_string(),
                ],
                env: BTreeMap::from([("DEMO_TASK_TITLE".to_string(), "{title}".to_string())]),
                description: Some(format!("kanban demo {role} (shell script)")),
                model: None,
            };
            ((*name).to_string(), spec)
        })
        .collect()
}

/// Single-quote `s` for a POSIX shell.
fn sh_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// `<root>/kanban/demo/worker.sh`: what every demo profile runs.
pub fn worker_script_path(root: &Root) -> PathBuf {
    demo_dir(root).join("worker.sh")
}

/// Write `<root>/kanban/demo/worker.sh` (rewritten every time: the binary
/// may have moved since the last demo).
pub fn write_worker_script(root: &Root, kanban_exe: &Path) -> Result<PathBuf, DemoError> {
    let dir = demo_dir(root);
    let path = worker_script_path(root);
    let err = |source| DemoError::Script {
        path: path.clone(),
        source,
    };
    kanban_hermes::layout::create_private_dir(&dir)?;
    let text = format!(
        r#"#!/bin/sh
# Demo worker of `kanban gateway run --demo` (rewritten at every demo start).
# A real worker is an agent; this one pretends to work for 1-3 seconds and
# reports through the same CLI verbs an agent uses. The dispatcher gives it
# HERMES_KANBAN_TASK, HERMES_KANBAN_BOARD, HERMES_KANBAN_RUN_ID, ...
set -e
KANBAN={exe}
# Every verb acts on the demo's root, whatever HERMES_HOME says.
HERMES_KANBAN_HOME={root}
export HERMES_KANBAN_HOME
role="${{1:-worker}}"
task="$HERMES_KANBAN_TASK"
secs=$(( $$ % 3 + 1 ))
"$KANBAN" heartbeat "$task" --note "$role: on it (about ${{secs}}s)" >/dev/null
sleep "$secs"
"$KANBAN" comment "$task" "$role: done after ${{secs}}s, all green" >/dev/null
"$KANBAN" complete "$task" --summary "$role finished \"$DEMO_TASK_TITLE\" in ${{secs}}s" \
  --metadata "{{\"seconds\": $secs, \"role\": \"$role\"}}"
"#,
        exe = sh_quote(&kanban_exe.display().to_string()),
        root = sh_quote(&root.path().display().to_string()),
    );
    let tmp = path.with_extension("sh.tmp");
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .mode(SCRIPT_MODE)
        .open(&tmp)
        .map_err(err)?;
    f.write_all(text.as_bytes()).map_err(err)?;
    drop(f);
    std::fs::rename(&tmp, &path).map_err(err)?;
    Ok(path)
}

/// Create the `demo` board (metadata only when new) and open its DB.
fn open_demo_board(root: &Root) -> Result<BoardHandle, DemoError> {
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

/// Resume the unfinished round or seed the next one: (created, resumed, round).
fn seed(store: &dyn Store) -> Result<(Vec<String>, usize, usize), DemoError> {
    let all = store.list_tasks(&TaskQuery {
        include_archived: true,
        ..TaskQuery::default()
    })?;
    let demo: Vec<_> = all
        .iter()
        .filter(|t| t.created_by.as_deref() == Some(DEMO_AUTHOR))
        .collect();
    let finished = |s: Status| matches!(s, Status::Done | Status::Archived);
    let open: Vec<_> = demo.iter().filter(|t| !finished(t.status)).collect();
    if !open.is_empty() {
        for t in open.iter().filter(|t| t.status == Status::Blocked) {
            store.unblock_task(&t.id, Some("kanban gateway run --demo restarted the demo"))?;
        }
        return Ok((Vec::new(), open.len(), demo.len().div_ceil(DAG.len())));
    }
    let round = demo.len() / DAG.len() + 1;
    let mut ids: Vec<String> = Vec::with_capacity(DAG.len());
    for step in &DAG {
        let req = NewTask {
            title: step.title.into(),
            body: Some(step.body.into()),
            assignee: Some(step.assignee.into()),
            created_by: Some(DEMO_AUTHOR.into()),
            parents: step.parents.iter().map(|&i| ids[i].clone()).collect(),
            idempotency_key: Some(format!("{DEMO_AUTHOR}:round-{round}:{}", step.key)),
            ..NewTask::default()
        };
        ids.push(store.create_task(&req)?.task.id);
    }
    Ok((ids, 0, round))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeding_is_idempotent_until_the_round_finishes() {
        let dir = tempfile::tempdir().unwrap();
        let root = Root::at(dir.path());
        let exe = Path::new("/usr/bin/kanban it's");
        let first = prepare(&root, exe).unwrap();
        assert_eq!((first.created.len(), first.resumed, first.round), (5, 0, 1));
        assert!(first.made_current);
        assert_eq!(root.pointer_board().as_deref(), Some(DEMO_BOARD));
        let script = std::fs::read_to_string(&first.script).unwrap();
        assert!(script.contains(r"KANBAN='/usr/bin/kanban it'\''s'"));
        let home = format!("HERMES_KANBAN_HOME='{}'", dir.path().display());
        assert!(script.contains(&home), "workers act on the demo's root");
        let again = prepare(&root, exe).unwrap();
        assert_eq!((again.created.len(), again.resumed, again.round), (0, 5, 1));
        assert!(!again.made_current, "the pointer exists now");

        let store = open_demo_board(&root).unwrap().store();
        for id in &first.created {
            store.archive_task(id).unwrap();
        }
        let next = prepare(&root, exe).unwrap();
        assert_eq!((next.created.len(), next.round), (5, 2));
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
    fn overlay_never_replaces_a_user_profile() {
        let mut cfg = KanbanConfig::default();
        let mine = ProfileSpec {
            command: vec!["mine".into()],
            ..ProfileSpec::default()
        };
        cfg.profiles.insert("demo-dev".into(), mine.clone());
        apply_overlay(&mut cfg, &demo_profiles(Path::new("/x/worker.sh")));
        assert_eq!(cfg.profiles["demo-dev"], mine);
        assert_eq!(cfg.profiles["demo-qa"].command[0], "/bin/sh");
    }
}
