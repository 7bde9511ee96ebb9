//! Helpers of the `kanban dispatch` acceptance tests: a private Hermes root
//! with config-defined profiles whose workers are real shell scripts that
//! call this same binary, and board inspection through the SQLite file.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use rusqlite::Connection;
use serde_json::Value;
use tempfile::TempDir;

/// Generous bound for anything that waits on real processes.
pub const SETTLE_TIMEOUT: Duration = Duration::from_secs(90);

pub fn kanban_bin() -> &'static str {
    env!("CARGO_BIN_EXE_kanban")
}

pub struct Home {
    pub dir: TempDir,
    /// Extra environment for every `kanban` run (and so for workers).
    pub env: BTreeMap<String, String>,
    profiles: Vec<(String, Vec<String>)>,
    kanban_extra: String,
}

impl Home {
    pub fn new() -> Home {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir_all(dir.path().join("bin")).unwrap();
        std::fs::create_dir_all(dir.path().join("out")).unwrap();
        let mut env = BTreeMap::new();
        // Crash detection at once and short rate-limit cooldowns.
        env.insert("HERMES_KANBAN_CRASH_GRACE_SECONDS".into(), "0".into());
        env.insert(
            "HERMES_KANBAN_RATE_LIMIT_COOLDOWN_SECONDS".into(),
            "1".into(),
        );
        Home {
            dir,
            env,
            profiles: Vec::new(),
            kanban_extra: String::new(),
        }
    }

    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.root().join(rel)
    }

    /// `<root>/out`, where worker scripts leave their traces.
    pub fn out(&self, name: &str) -> PathBuf {
        self.root().join("out").join(name)
    }

    /// Write an executable `sh` script to `<root>/bin/<name>`; `$K` is the
    /// kanban binary and `$OUT` the out dir inside it.
    pub fn script(&self, name: &str, body: &str) -> PathBuf {
        let p = self.path(&format!("bin/{name}"));
        let text = format!(
            "#!/bin/sh\nK={k}\nOUT={out}\n{body}\n",
            k = kanban_bin(),
            out = self.path("out").display()
        );
        std::fs::write(&p, text).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        p
    }

    /// A config-defined profile running `script {task_id}`.
    pub fn profile(&mut self, name: &str, body: &str) {
        let s = self.script(&format!("{name}.sh"), body);
        self.profile_argv(name, vec![s.display().to_string(), "{task_id}".into()]);
    }

    pub fn profile_argv(&mut self, name: &str, argv: Vec<String>) {
        self.profiles.push((name.into(), argv));
        self.write_config();
    }

    /// Extra lines under `kanban:` (two-space indented keys).
    pub fn kanban_config(&mut self, extra: &str) {
        self.kanban_extra = extra.to_string();
        self.write_config();
    }

    fn write_config(&self) {
        let mut y = String::from("kanban:\n");
        y.push_str(&self.kanban_extra);
        y.push_str("  profiles:\n");
        for (name, argv) in &self.profiles {
            let items: Vec<String> = argv.iter().map(|a| format!("{a:?}")).collect();
            y.push_str(&format!(
                "    {name}:\n      command: [{}]\n",
                items.join(", ")
            ));
        }
        std::fs::write(self.path("config.yaml"), y).unwrap();
    }

    pub fn cmd(&self) -> Command {
        let mut c = Command::new(kanban_bin());
        c.env_clear()
            .env(
                "PATH",
                format!(
                    "{}:{}",
                    self.path("bin").display(),
                    std::env::var("PATH").unwrap_or_default()
                ),
            )
            .env("HOME", self.root())
            .env("HERMES_HOME", self.root())
            .env("TZ", "UTC")
            .current_dir(self.root());
        for (k, v) in &self.env {
            c.env(k, v);
        }
        c
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.cmd().args(args).output().expect("run kanban")
    }

    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "kanban {args:?} failed ({:?}):\nstdout: {}\nstderr: {}",
            out.status.code(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    pub fn json(&self, args: &[&str]) -> Value {
        let text = self.ok(args);
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{args:?}: not JSON ({e}): {text}"))
    }

    pub fn create(&self, title: &str, extra: &[&str]) -> String {
        let mut args = vec!["create", title, "--json"];
        args.extend_from_slice(extra);
        self.json(&args)["id"].as_str().unwrap().to_string()
    }

    pub fn dispatch(&self) -> Value {
        self.json(&["dispatch", "--json"])
    }

    pub fn db(&self) -> Connection {
        let c = Connection::open(self.path("kanban.db")).expect("open db");
        c.busy_timeout(Duration::from_secs(30)).unwrap();
        c
    }

    pub fn status(&self, id: &str) -> String {
        self.db()
            .query_row("SELECT status FROM tasks WHERE id = ?1", [id], |r| r.get(0))
            .unwrap()
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

    /// Run `kanban dispatch` until `done` holds (checked after each pass).
    pub fn dispatch_until(&self, what: &str, done: impl Fn(&Home) -> bool) {
        let deadline = Instant::now() + SETTLE_TIMEOUT;
        loop {
            self.dispatch();
            if done(self) {
                return;
            }
            assert!(Instant::now() < deadline, "board did not settle: {what}");
            std::thread::sleep(Duration::from_millis(200));
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

/// The pid exists and is not a zombie.
pub fn pid_alive(pid: i64) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(s) => s
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|state| state != "Z" && state != "X"),
        Err(_) => false,
    }
}

/// Wait until `f` holds (generous bound).
pub fn wait_until(what: &str, f: impl Fn() -> bool) {
    let deadline = Instant::now() + SETTLE_TIMEOUT;
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// `KEY=value` lines of an `env` dump.
pub fn read_env(path: &Path) -> BTreeMap<String, String> {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}
