//! Issue 9 item 3: everything the product writes under the Hermes root is
//! private: files 0600, directories 0700 (SPEC §4), whatever the umask.
//! Typical commands run on a fresh root with umask 022, then the whole
//! tree is walked.

use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::{Duration, Instant};

use kanban_testkit::{stderr, stdout};
use serde_json::Value;

/// How long the spawned worker may take to be seen finished.
const WORKER_WAIT: Duration = Duration::from_secs(30);

/// Written by this test, not by the product.
const TEST_FILES: [&str; 1] = ["config.yaml"];

struct Root {
    _tmp: tempfile::TempDir,
    root: PathBuf,
}

impl Root {
    /// A root that does not exist yet: the product creates it.
    fn new() -> Root {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("hermes");
        Root { _tmp: tmp, root }
    }

    /// `kanban <args>` with a permissive umask, as a typical shell has.
    fn run(&self, args: &[&str]) -> Output {
        let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_kanban"));
        c.env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("HOME", self._tmp.path())
            .env("HERMES_HOME", &self.root)
            .env("TZ", "UTC")
            .args(args);
        // SAFETY: umask is async-signal-safe and touches no memory.
        unsafe {
            c.pre_exec(|| {
                libc::umask(0o022);
                Ok(())
            });
        }
        c.output().expect("run kanban")
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "kanban {args:?} failed:\n{}\n{}",
            stdout(&out),
            stderr(&out)
        );
        stdout(&out)
    }

    fn json(&self, args: &[&str]) -> Value {
        serde_json::from_str(&self.ok(args)).expect("JSON")
    }
}

/// Every path under `dir` (itself included) with its mode bits.
fn walk(dir: &Path, out: &mut Vec<(PathBuf, u32, bool)>) {
    let meta = std::fs::symlink_metadata(dir).unwrap();
    out.push((dir.to_path_buf(), meta.permissions().mode() & 0o777, true));
    for entry in std::fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        let meta = std::fs::symlink_metadata(entry.path()).unwrap();
        if meta.is_dir() {
            walk(&entry.path(), out);
        } else if meta.is_file() {
            out.push((entry.path(), meta.permissions().mode() & 0o777, false));
        }
    }
}

#[test]
fn files_and_directories_under_the_root_are_private() {
    let r = Root::new();
    r.ok(&["init"]);
    std::fs::write(
        r.root.join("config.yaml"),
        "kanban:\n  profiles:\n    w:\n      command: [\"sh\", \"-c\", \"echo working\"]\n",
    )
    .unwrap();
    // Boards, their metadata and the current pointer.
    r.ok(&["boards", "create", "proj", "--description", "second board"]);
    r.ok(&["boards", "switch", "proj"]);
    r.ok(&["create", "on proj"]);
    r.ok(&["boards", "rename", "proj", "Project"]);
    r.ok(&["boards", "switch", "default"]);
    let wd = r._tmp.path().join("repo");
    std::fs::create_dir(&wd).unwrap();
    r.ok(&[
        "boards",
        "set-default-workdir",
        "default",
        wd.to_str().unwrap(),
    ]);
    // Tasks, comments, links, a hand claim with its workspace.
    let a = r.json(&["create", "a", "--json"])["id"]
        .as_str()
        .unwrap()
        .to_string();
    let b = r.json(&["create", "b", "--json"])["id"]
        .as_str()
        .unwrap()
        .to_string();
    r.ok(&["comment", &a, "hello"]);
    r.ok(&["link", &a, &b]);
    r.ok(&["claim", &a]);
    // A dispatched worker: workspace, log, exit record.
    let w = r.json(&["create", "work", "--assignee", "w", "--json"])["id"]
        .as_str()
        .unwrap()
        .to_string();
    let deadline = Instant::now() + WORKER_WAIT;
    loop {
        r.ok(&["dispatch"]);
        let runs = r.json(&["runs", &w, "--json"]);
        if runs
            .as_array()
            .unwrap()
            .iter()
            .any(|run| !run["ended_at"].is_null())
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the worker never finished: {runs}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    r.ok(&["log", &w]);
    // While the gateway runs (lock, pidfile, state file) and after.
    r.ok(&["gateway", "start", "--port", "0"]);
    r.ok(&["gateway", "status"]);
    assert_private(&r.root);
    r.ok(&["gateway", "stop"]);
    assert_private(&r.root);
}

/// Walk `root`: every directory 0700, every file 0600.
fn assert_private(root: &Path) {
    let mut entries = Vec::new();
    walk(root, &mut entries);
    let rel = |p: &Path| {
        p.strip_prefix(root)
            .unwrap_or(p)
            .to_string_lossy()
            .into_owned()
    };
    let mut bad = Vec::new();
    for (p, mode, is_dir) in &entries {
        let name = rel(p);
        if TEST_FILES.contains(&name.as_str()) || *mode == if *is_dir { 0o700 } else { 0o600 } {
            continue;
        }
        bad.push(format!("{mode:o} {name}"));
    }
    for expected in [
        "kanban/current",
        "kanban/boards/proj/board.json",
        "kanban/boards/default/board.json",
        "kanban.db",
        "kanban/logs",
        "kanban/logs/gateway.log",
        "kanban/workspaces",
    ] {
        assert!(
            entries.iter().any(|(p, _, _)| p == &root.join(expected)),
            "{expected} was not written; the walk would prove nothing"
        );
    }
    assert!(
        bad.is_empty(),
        "not private (expected 0600 files, 0700 dirs):\n{}",
        bad.join("\n")
    );
}
