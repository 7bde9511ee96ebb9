//! Shared helpers of the black-box CLI tests: a private Hermes root per
//! test, a clean environment, and before/after board snapshots.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Output;

use assert_cmd::Command;
use serde_json::Value;
use tempfile::TempDir;

/// One isolated Hermes root (`HERMES_HOME`) with its default board.
pub struct Board {
    pub home: TempDir,
}

impl Board {
    pub fn new() -> Board {
        Board {
            home: tempfile::tempdir().expect("tempdir"),
        }
    }

    pub fn root(&self) -> &Path {
        self.home.path()
    }

    /// The binary with an environment holding nothing but what we set:
    /// no `HERMES_KANBAN_*` leaks in from the developer's shell.
    pub fn cmd(&self) -> Command {
        Command::from_std(self.std_cmd())
    }

    /// The same, as a plain `std::process::Command` (for spawning).
    pub fn std_cmd(&self) -> std::process::Command {
        let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_kanban"));
        c.env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("HOME", self.root())
            .env("HERMES_HOME", self.root())
            .env("TZ", "UTC")
            .current_dir(self.root());
        c
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.cmd().args(args).output().expect("run kanban")
    }

    pub fn run_env(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        let mut c = self.cmd();
        for (k, v) in env {
            c.env(k, v);
        }
        c.args(args).output().expect("run kanban")
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

    /// Run with `--json`-style output and parse it.
    pub fn json(&self, args: &[&str]) -> Value {
        let text = self.ok(args);
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{args:?}: not JSON ({e}): {text}"))
    }

    /// Create a task and return its id.
    pub fn create(&self, title: &str, extra: &[&str]) -> String {
        let mut args = vec!["create", title, "--json"];
        args.extend_from_slice(extra);
        let v = self.json(&args);
        v["id"].as_str().expect("id").to_string()
    }

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

    pub fn path(&self, rel: &str) -> PathBuf {
        self.root().join(rel)
    }
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
