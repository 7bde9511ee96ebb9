//! Issue 13 items 1 and 8a: `kanban gateway run --demo`, the README's first
//! command, as a new user runs it.
//! - 1: the demo never changes an existing root (config, profiles, boards):
//!   it runs in a throwaway root it prints (removed when it exits), or in
//!   `--demo-root DIR`.
//! - 8a: the port is bound before the board is seeded, so a busy port
//!   fails with a clear message and leaves no demo task behind.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Child;
use std::time::Duration;

use kanban_core::Status;
use kanban_server::demo::OPENING_TASKS;
use kanban_store::TaskQuery;
use kanban_testkit::gateway::{SETTLE_WAIT, START_WAIT};
use kanban_testkit::{Sandbox, open_board_at, output_within, wait_for, wait_until};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

/// What the demo prints before its URL: where its root is.
const DEMO_ROOT_LINE: &str = "demo: root ";
/// How long the demo's first task may take to be done by its worker
/// (it sleeps a few seconds).
const DEMO_TASK_WAIT: Duration = Duration::from_secs(30);
/// The demo's first task, run by a worker.
const FIRST_TASK: &str = "Design the greeting service";
/// How long a stopped gateway may take to exit.
const STOP_WAIT: Duration = Duration::from_secs(10);

/// Every file and directory under `dir` with its bytes (`None` = directory).
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Option<Vec<u8>>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            let rel = p.strip_prefix(dir).unwrap().to_path_buf();
            if e.file_type().unwrap().is_dir() {
                out.insert(rel, None);
                stack.push(p);
            } else {
                out.insert(rel, Some(std::fs::read(&p).unwrap()));
            }
        }
    }
    out
}

/// A root someone already uses: a config, a Hermes profile, a named board
/// with a task and a task on the default board.
fn lived_in_root() -> Sandbox {
    let home = Sandbox::new();
    home.write_config("# mine\nkanban:\n  failure_limit: 4\n");
    let profile = home.path("profiles/alice");
    std::fs::create_dir_all(&profile).unwrap();
    std::fs::write(profile.join("config.yaml"), "model: mine\n").unwrap();
    home.ok(&["boards", "create", "ops"]);
    home.ok(&["--board", "ops", "create", "Keep me", "--assignee", "alice"]);
    home.ok(&["create", "Mine too"]);
    home
}

/// A `gateway run --demo` child whose output goes outside the root.
struct Demo {
    child: Child,
    log: PathBuf,
    _log_dir: tempfile::TempDir,
}

impl Demo {
    fn spawn(home: &Sandbox, extra: &[&str]) -> Demo {
        let log_dir = tempfile::tempdir().unwrap();
        let log = log_dir.path().join("demo.log");
        let file = std::fs::File::create(&log).unwrap();
        let mut cmd = home.kanban(["gateway", "run", "--demo", "--port", "0"]);
        cmd.args(extra)
            .stdout(file.try_clone().unwrap())
            .stderr(file);
        Demo {
            child: cmd.spawn().unwrap(),
            log,
            _log_dir: log_dir,
        }
    }

    fn output(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Wait for the URL line; the output so far.
    fn await_listening(&mut self) -> String {
        let up = wait_for(START_WAIT, || {
            if let Ok(Some(st)) = self.child.try_wait() {
                panic!("demo exited ({st}):\n{}", self.output());
            }
            let out = self.output();
            out.contains("listening on").then_some(out)
        });
        up.unwrap_or_else(|| panic!("demo did not start:\n{}", self.output()))
    }

    /// SIGTERM and wait for the exit.
    fn stop(&mut self) {
        let _ = kill(Pid::from_raw(self.child.id() as i32), Signal::SIGTERM);
        let exited = wait_until(STOP_WAIT, || matches!(self.child.try_wait(), Ok(Some(_))));
        assert!(exited, "demo did not stop:\n{}", self.output());
    }
}

impl Drop for Demo {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The root the demo says it runs in.
fn printed_root(out: &str) -> PathBuf {
    let line = out
        .lines()
        .find_map(|l| l.strip_prefix(DEMO_ROOT_LINE))
        .unwrap_or_else(|| panic!("no `{DEMO_ROOT_LINE}...` line:\n{out}"));
    PathBuf::from(line.split_whitespace().next().unwrap())
}

fn demo_tasks(root: &Path) -> Vec<kanban_core::Task> {
    let board = open_board_at(root, "demo");
    board
        .store()
        .list_tasks(&TaskQuery {
            include_archived: true,
            ..TaskQuery::default()
        })
        .unwrap()
}

#[test]
fn the_demo_leaves_an_existing_root_byte_for_byte_unchanged() {
    let home = lived_in_root();
    let before = snapshot(home.root());
    let mut demo = Demo::spawn(&home, &[]);
    let out = demo.await_listening();
    let demo_root = printed_root(&out);
    assert!(
        !demo_root.starts_with(home.root()),
        "the demo root {} is inside the user's root",
        demo_root.display()
    );
    // Its workers ran (and so every verb they call) on the demo root.
    let done = wait_until(DEMO_TASK_WAIT, || {
        demo_tasks(&demo_root)
            .iter()
            .any(|t| t.title == FIRST_TASK && t.status == Status::Done)
    });
    assert!(
        done,
        "the first demo task did not finish:\n{}",
        demo.output()
    );
    assert!(demo_tasks(&demo_root).len() >= OPENING_TASKS);
    demo.stop();
    assert_eq!(
        snapshot(home.root()),
        before,
        "the demo changed the user's root:\n{}",
        demo.output()
    );
    assert!(
        !demo_root.exists(),
        "the throwaway root {} outlived the demo",
        demo_root.display()
    );
}

#[test]
fn demo_root_names_where_the_demo_lives_and_keeps_it() {
    let home = lived_in_root();
    let before = snapshot(home.root());
    let elsewhere = tempfile::tempdir().unwrap();
    let dir = elsewhere.path().join("my-demo");
    let mut demo = Demo::spawn(&home, &["--demo-root", dir.to_str().unwrap()]);
    let out = demo.await_listening();
    assert_eq!(printed_root(&out), dir, "{out}");
    assert!(demo_tasks(&dir).len() >= OPENING_TASKS, "{out}");
    demo.stop();
    assert!(dir.join("kanban/boards/demo/kanban.db").is_file());
    assert_eq!(snapshot(home.root()), before);
}

#[test]
fn a_busy_port_fails_clearly_before_any_demo_task_exists() {
    let home = Sandbox::new();
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = busy.local_addr().unwrap().port().to_string();
    let elsewhere = tempfile::tempdir().unwrap();
    let dir = elsewhere.path().join("demo");
    let mut cmd = home.kanban([
        "gateway",
        "run",
        "--demo",
        "--port",
        &port,
        "--demo-root",
        dir.to_str().unwrap(),
    ]);
    let out = output_within(&mut cmd, SETTLE_WAIT);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains(&format!("kanban: cannot listen on 127.0.0.1:{port}")),
        "{err}"
    );
    assert!(err.contains("--port"), "no hint at --port: {err}");
    assert!(
        demo_tasks(&dir).is_empty(),
        "the failed demo left tasks behind"
    );
    drop(busy);
}
