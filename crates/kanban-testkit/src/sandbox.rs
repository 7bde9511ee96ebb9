//! One private Hermes root (`HERMES_HOME`) in a temporary directory, and
//! the `kanban` binary run inside it with a clean environment.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use kanban_hermes::layout::{DEFAULT_BOARD, Root};
use kanban_store::backend::{BoardHandle, OpenRequest, open_board};
use kanban_store::dispatch_ops::DispatchStore;
use rusqlite::Connection;
use serde_json::Value;
use tempfile::TempDir;

use crate::process::SETTLE_TIMEOUT;

/// Names the binary every black-box test runs (overrides the built one).
pub const ENV_KANBAN_BIN: &str = "KANBAN_BIN";
/// Set (to anything) to keep each test's root for a post-mortem.
pub const ENV_KEEP_ROOT: &str = "KANBAN_TEST_KEEP";
/// How long raw SQL inspection waits for a writer.
const SQL_BUSY_TIMEOUT: Duration = Duration::from_secs(30);
/// Pause between two passes of [`Sandbox::dispatch_until`].
const DISPATCH_POLL: Duration = Duration::from_millis(200);

/// The `kanban` binary: `$KANBAN_BIN`, else the one cargo built into the
/// target directory of the running test (`<target>/<profile>/deps/<test>`
/// → `<target>/<profile>/kanban`).
pub fn kanban_bin() -> PathBuf {
    if let Some(p) = std::env::var_os(ENV_KANBAN_BIN) {
        return PathBuf::from(p);
    }
    let exe = std::env::current_exe().expect("path of the test executable");
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("the test runs from <target>/<profile>/deps");
    let bin = profile_dir.join("kanban");
    assert!(
        bin.exists(),
        "{} is missing: run `cargo build -p kanban` first (or set {ENV_KANBAN_BIN})",
        bin.display()
    );
    bin
}

/// Give `cmd` an environment holding nothing but what a command on the
/// Hermes root `root` needs: `PATH` (with `<root>/bin` first), `HOME` and
/// `HERMES_HOME` at the root, `TZ=UTC`; the root as working directory
/// and no stdin. No `HERMES_*` leaks in from the developer's shell.
pub fn isolate_at<'c>(cmd: &'c mut Command, root: &Path) -> &'c mut Command {
    let path = format!(
        "{}:{}",
        root.join("bin").display(),
        std::env::var("PATH").unwrap_or_default()
    );
    cmd.env_clear()
        .env("PATH", path)
        .env("HOME", root)
        .env("HERMES_HOME", root)
        .env("TZ", "UTC")
        .current_dir(root)
        .stdin(Stdio::null())
}

/// A board of the Hermes root `root`, opened through the backend factory
/// (created when missing).
pub fn open_board_at(root: &Path, slug: &str) -> BoardHandle {
    let paths = Root::at(root).board_paths(slug);
    paths.ensure_dirs().expect("board directories");
    open_board(&paths.location(), &OpenRequest::create()).expect("open the board")
}

/// One isolated Hermes root with the binary that runs in it.
pub struct Sandbox {
    dir: TempDir,
    /// Resolved on first use: tests that never run the binary do not
    /// need it built.
    bin: OnceLock<PathBuf>,
    /// Extra environment of every command (and so of the workers a
    /// dispatcher started by it spawns).
    pub env: BTreeMap<String, String>,
    pub(crate) profiles: Vec<(String, Vec<String>)>,
    pub(crate) kanban_extra: String,
    /// One open handle per board for the whole test (see [`Sandbox::board`]).
    boards: Mutex<HashMap<String, BoardHandle>>,
}

impl Default for Sandbox {
    fn default() -> Self {
        Self::new()
    }
}

impl Sandbox {
    /// A fresh root running [`kanban_bin`].
    pub fn new() -> Sandbox {
        Sandbox::with(OnceLock::new())
    }

    /// A fresh root running `bin` (e.g. `env!("CARGO_BIN_EXE_kanban")`).
    pub fn with_bin(bin: impl Into<PathBuf>) -> Sandbox {
        Sandbox::with(OnceLock::from(bin.into()))
    }

    fn with(bin: OnceLock<PathBuf>) -> Sandbox {
        let mut dir = tempfile::Builder::new()
            .prefix("kanban-test-")
            .tempdir()
            .expect("temp dir");
        if std::env::var_os(ENV_KEEP_ROOT).is_some() {
            dir.disable_cleanup(true);
            eprintln!("root kept: {}", dir.path().display());
        }
        Sandbox {
            dir,
            bin,
            env: BTreeMap::new(),
            profiles: Vec::new(),
            kanban_extra: String::new(),
            boards: Mutex::default(),
        }
    }

    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.root().join(rel)
    }

    pub fn bin(&self) -> &Path {
        self.bin.get_or_init(kanban_bin)
    }

    /// Give `cmd` the sandbox's environment and nothing else
    /// ([`isolate_at`] the root, plus [`Sandbox::env`]).
    pub fn isolate<'c>(&self, cmd: &'c mut Command) -> &'c mut Command {
        isolate_at(cmd, self.root()).envs(&self.env)
    }

    /// `program` in the sandbox's environment.
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut cmd = Command::new(program);
        self.isolate(&mut cmd);
        cmd
    }

    /// The binary, isolated, without arguments.
    pub fn std_cmd(&self) -> Command {
        self.command(self.bin())
    }

    /// The same as an `assert_cmd` command.
    pub fn cmd(&self) -> assert_cmd::Command {
        assert_cmd::Command::from_std(self.std_cmd())
    }

    /// `kanban <args>` on this root.
    pub fn kanban<I, S>(&self, args: I) -> Command
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        let mut cmd = self.std_cmd();
        cmd.args(args);
        cmd
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.kanban(args).output().expect("run kanban")
    }

    pub fn run_env(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        let mut cmd = self.kanban(args);
        cmd.envs(env.iter().copied());
        cmd.output().expect("run kanban")
    }

    /// Run, require exit 0, return stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "kanban {args:?} failed ({:?}):\nstdout: {}\nstderr: {}",
            out.status.code(),
            stdout(&out),
            stderr(&out)
        );
        stdout(&out)
    }

    /// Run (exit 0) and parse stdout as JSON.
    pub fn json(&self, args: &[&str]) -> Value {
        let text = self.ok(args);
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{args:?}: not JSON ({e}): {text}"))
    }

    /// `kanban create <title> --json <extra>`: the new task's id.
    pub fn create(&self, title: &str, extra: &[&str]) -> String {
        let mut args = vec!["create", title, "--json"];
        args.extend_from_slice(extra);
        let v = self.json(&args);
        v["id"].as_str().expect("id").to_string()
    }

    /// `kanban show <id> --json`.
    pub fn task(&self, id: &str) -> Value {
        self.json(&["show", id, "--json"])
    }

    pub fn status(&self, id: &str) -> String {
        self.task(id)["task"]["status"]
            .as_str()
            .unwrap()
            .to_string()
    }

    /// Everything observable about the board: every task (archived too)
    /// with its links, comments, events and runs.
    pub fn snapshot(&self) -> Value {
        let list = self.json(&["list", "--json", "--archived"]);
        let mut all = Vec::new();
        for t in list.as_array().unwrap() {
            all.push(self.task(t["id"].as_str().unwrap()));
        }
        Value::Array(all)
    }

    /// Run a command that must fail with `code` and a stderr containing
    /// `msg`, and leave the board exactly as it was.
    pub fn refuses(&self, args: &[&str], code: i32, msg: &str) -> Output {
        let before = self.snapshot();
        let out = self.run(args);
        assert_eq!(
            out.status.code(),
            Some(code),
            "kanban {args:?}: expected exit {code}\nstdout: {}\nstderr: {}",
            stdout(&out),
            stderr(&out)
        );
        assert!(
            stderr(&out).contains(msg),
            "kanban {args:?}: stderr lacks {msg:?}:\n{}",
            stderr(&out)
        );
        assert_eq!(self.snapshot(), before, "kanban {args:?} changed the board");
        out
    }

    /// A task assigned to `assignee` and claimed by the CLI: its id.
    pub fn claimed(&self, title: &str, assignee: &str) -> String {
        let t = self.create(title, &["--assignee", assignee]);
        self.ok(&["claim", &t]);
        t
    }

    /// `(run id, claim lock)` of the task's current attempt, as the
    /// dispatcher hands them to its worker.
    pub fn worker_ids(&self, id: &str) -> (String, String) {
        let v = self.task(id);
        let run = v["runs"].as_array().unwrap().last().unwrap()["id"].to_string();
        let lock = v["events"]
            .as_array()
            .unwrap()
            .iter()
            .rev()
            .find(|e| e["kind"] == "claimed")
            .expect("a claimed event")["payload"]["lock"]
            .as_str()
            .unwrap()
            .to_string();
        (run, lock)
    }

    /// The environment a dispatcher gives the worker of `id` running as
    /// `profile` (task, run id, claim lock, profile).
    pub fn worker_env(&self, id: &str, profile: &str) -> Vec<(String, String)> {
        let (run_id, lock) = self.worker_ids(id);
        vec![
            ("HERMES_KANBAN_TASK".into(), id.to_string()),
            ("HERMES_KANBAN_RUN_ID".into(), run_id),
            ("HERMES_KANBAN_CLAIM_LOCK".into(), lock),
            ("HERMES_PROFILE".into(), profile.to_string()),
        ]
    }

    /// A board of this root, opened (created when missing) once per
    /// test: opening a board again from this process could drop the
    /// POSIX locks this process holds on its file.
    pub fn board(&self, slug: &str) -> BoardHandle {
        let mut boards = self.boards.lock().unwrap_or_else(|p| p.into_inner());
        boards
            .entry(slug.to_string())
            .or_insert_with(|| open_board_at(self.root(), slug))
            .clone()
    }

    /// The default board's store, opened from this (another) process.
    pub fn store(&self) -> Arc<dyn DispatchStore> {
        self.board_store(DEFAULT_BOARD)
    }

    pub fn board_store(&self, slug: &str) -> Arc<dyn DispatchStore> {
        self.board(slug).dispatch()
    }

    /// The default board's database file.
    pub fn db_path(&self) -> PathBuf {
        Root::at(self.root()).board_paths(DEFAULT_BOARD).db
    }

    /// A raw connection to the default board's file (the on-disk contract).
    pub fn db(&self) -> Connection {
        let c = Connection::open(self.db_path()).expect("open db");
        c.busy_timeout(SQL_BUSY_TIMEOUT).unwrap();
        c
    }

    /// Outcomes of the task's runs, oldest first (`None` = still open).
    pub fn outcomes(&self, id: &str) -> Vec<Option<String>> {
        let db = self.db();
        let mut st = db
            .prepare("SELECT outcome FROM task_runs WHERE task_id = ?1 ORDER BY id")
            .unwrap();
        st.query_map([id], |r| r.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect()
    }

    pub fn event_count(&self, id: &str, kind: &str) -> i64 {
        self.db()
            .query_row(
                "SELECT COUNT(*) FROM task_events WHERE task_id = ?1 AND kind = ?2",
                [id, kind],
                |r| r.get(0),
            )
            .unwrap()
    }

    /// First event id of a kind on a task.
    pub fn first_event(&self, id: &str, kind: &str) -> Option<i64> {
        self.db()
            .query_row(
                "SELECT MIN(id) FROM task_events WHERE task_id = ?1 AND kind = ?2",
                [id, kind],
                |r| r.get(0),
            )
            .unwrap()
    }

    pub fn running_count(&self) -> i64 {
        self.db()
            .query_row(
                "SELECT COUNT(*) FROM tasks WHERE status = 'running'",
                [],
                |r| r.get(0),
            )
            .unwrap()
    }

    pub fn worker_pid(&self, id: &str) -> Option<i64> {
        self.db()
            .query_row("SELECT worker_pid FROM tasks WHERE id = ?1", [id], |r| {
                r.get(0)
            })
            .unwrap()
    }

    /// One `kanban dispatch --json` pass.
    pub fn dispatch(&self) -> Value {
        self.json(&["dispatch", "--json"])
    }

    /// Run `kanban dispatch` until `done` holds (checked after each pass).
    pub fn dispatch_until(&self, what: &str, done: impl Fn(&Sandbox) -> bool) {
        let deadline = Instant::now() + SETTLE_TIMEOUT;
        loop {
            self.dispatch();
            if done(self) {
                return;
            }
            assert!(Instant::now() < deadline, "board did not settle: {what}");
            std::thread::sleep(DISPATCH_POLL);
        }
    }

    /// Dispatch until every id has one of `statuses`.
    pub fn settle(&self, ids: &[&str], statuses: &[&str]) {
        self.dispatch_until(&format!("{ids:?} → {statuses:?}"), |h| {
            ids.iter()
                .all(|id| statuses.contains(&h.status(id).as_str()))
        });
    }
}

/// Bytes of an output stream as text.
pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Kinds of a `show --json` event list, in order.
pub fn event_kinds(show: &Value) -> Vec<String> {
    show["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap().to_string())
        .collect()
}
