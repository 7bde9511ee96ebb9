//! Helpers of the black-box gateway tests: a temporary Hermes root, the real
//! `kanban` binary, a gateway child process and shell-script workers.
//!
//! The binary is `target/debug/kanban` (or `$KANBAN_BIN`): this crate cannot
//! depend on the `kanban` binary crate (it depends on us), so build it first:
//! `cargo build -p kanban && cargo test -p kanban-server --test gateway_e2e`.
#![allow(dead_code)] // the bench and each test use a different subset

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use kanban_store::SystemClock;
use kanban_store::layout::{DEFAULT_BOARD, Root};
use kanban_store::sqlite::{OpenOptions, SqliteStore};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

/// Variables that would point a child at another root, board or identity.
const ISOLATED_ENV: &[&str] = &[
    "HERMES_KANBAN_HOME",
    "HERMES_KANBAN_DB",
    "HERMES_KANBAN_BOARD",
    "HERMES_KANBAN_WORKSPACES_ROOT",
    "HERMES_KANBAN_TASK",
    "HERMES_KANBAN_RUN_ID",
    "HERMES_KANBAN_CLAIM_LOCK",
    "HERMES_KANBAN_CLAIM_TTL_SECONDS",
    "HERMES_KANBAN_DISPATCH_IN_GATEWAY",
    "HERMES_PROFILE",
    "HERMES_SESSION_ID",
    "KANBAN_GATEWAY_TOKEN",
];
/// How long a gateway may take to listen.
const READY_TIMEOUT: Duration = Duration::from_secs(15);
pub const POLL: Duration = Duration::from_millis(10);

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// `$KANBAN_BIN`, else `<target>/debug/kanban`.
pub fn kanban_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("KANBAN_BIN") {
        return PathBuf::from(p);
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("target"));
    let bin = target.join("debug/kanban");
    assert!(
        bin.exists(),
        "{} is missing: run `cargo build -p kanban` first",
        bin.display()
    );
    bin
}

/// The unpacked Python reference for PYTHONPATH (`scripts/fetch_reference.py`),
/// or `None` (with a loud note) when it cannot be had and
/// `KANBAN_REQUIRE_REFERENCE` is not set.
pub fn reference_pythonpath() -> Option<PathBuf> {
    let probe = |p: &Path| p.join("hermes_cli/kanban_db.py").exists();
    let fetched = Command::new("python3")
        .arg(repo_root().join("scripts/fetch_reference.py"))
        .stdin(Stdio::null())
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()));
    let found = fetched
        .into_iter()
        .chain([PathBuf::from("/tmp/ref/wheel")])
        .find(|p| probe(p));
    if found.is_none() {
        assert!(
            std::env::var_os("KANBAN_REQUIRE_REFERENCE").is_none(),
            "the Python reference hermes-agent 0.19.0 is unavailable"
        );
        eprintln!("SKIPPED: the Python reference hermes-agent 0.19.0 is unavailable");
    }
    found
}

/// Poll `f` until it is true or `timeout` passes; true when it became true.
pub fn wait_until(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if f() {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(POLL);
    }
}

pub fn pid_alive(pid: i32) -> bool {
    // A zombie is dead for our purposes.
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            s.rsplit_once(')')
                .map(|(_, rest)| !rest.trim_start().starts_with('Z'))
        })
        .unwrap_or(false)
}

/// One isolated Hermes root (`HERMES_HOME`) in a temporary directory.
pub struct Home {
    dir: tempfile::TempDir,
    /// One connection per board for the whole test: opening a second store
    /// on a file would close a plain descriptor on it (the header check),
    /// which drops every POSIX lock this process holds on it.
    stores: std::sync::Mutex<std::collections::HashMap<String, Arc<SqliteStore>>>,
}

impl Default for Home {
    fn default() -> Self {
        Self::new()
    }
}

impl Home {
    pub fn new() -> Home {
        let mut dir = tempfile::Builder::new()
            .prefix("kanban-e2e-")
            .tempdir()
            .expect("temp dir");
        // KANBAN_E2E_KEEP=1 keeps the root for a post-mortem.
        if std::env::var_os("KANBAN_E2E_KEEP").is_some() {
            dir.disable_cleanup(true);
            eprintln!("root kept: {}", dir.path().display());
        }
        std::fs::create_dir_all(dir.path().join("trace")).unwrap();
        Home {
            dir,
            stores: Default::default(),
        }
    }

    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    /// Where workers written by [`Home::write_worker`] log their runs.
    pub fn trace_dir(&self) -> PathBuf {
        self.root().join("trace")
    }

    pub fn write_config(&self, yaml: &str) {
        // Write-then-rename: a gateway re-reading it never sees half a file.
        let tmp = self.root().join("config.yaml.tmp");
        std::fs::write(&tmp, yaml).unwrap();
        std::fs::rename(tmp, self.root().join("config.yaml")).unwrap();
    }

    /// A worker script `<root>/<name>.sh`. `body` runs with `$KANBAN` (the
    /// binary), `$TASK` and `$TRACE` set; the prelude appends
    /// `start <ns> <pid>` to `<trace>/<task>.log` and the epilogue `end <ns>`.
    pub fn write_worker(&self, name: &str, body: &str) -> PathBuf {
        let path = self.root().join(format!("{name}.sh"));
        let text = format!(
            "#!/bin/sh\n\
             KANBAN='{bin}'\n\
             TASK=\"$HERMES_KANBAN_TASK\"\n\
             TRACE='{trace}'/\"$TASK\".log\n\
             echo \"start $(date +%s%N) $$\" >> \"$TRACE\"\n\
             {body}\n\
             echo \"end $(date +%s%N) $$\" >> \"$TRACE\"\n",
            bin = kanban_bin().display(),
            trace = self.trace_dir().display(),
        );
        std::fs::write(&path, text).unwrap();
        path
    }

    /// `kanban.profiles.<name>` running `/bin/sh <script>`, plus `extra` keys.
    pub fn config_with_worker(&self, profile: &str, script: &Path, extra: &str) -> String {
        format!(
            "kanban:\n{extra}  profiles:\n    {profile}:\n      command: [\"/bin/sh\", \"{}\"]\n",
            script.display()
        )
    }

    fn isolate(&self, cmd: &mut Command) {
        for var in ISOLATED_ENV {
            cmd.env_remove(var);
        }
        cmd.env("HERMES_HOME", self.root())
            .env("HOME", self.root())
            .stdin(Stdio::null());
    }

    pub fn kanban<I, S>(&self, args: I) -> Command
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        let mut cmd = Command::new(kanban_bin());
        self.isolate(&mut cmd);
        cmd.args(args);
        cmd
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.kanban(args).output().expect("run kanban")
    }

    /// `kanban create <title> --assignee <a> --json`: the new id.
    pub fn create(&self, title: &str, assignee: &str) -> String {
        let out = self.run(&["create", title, "--assignee", assignee, "--json"]);
        assert!(out.status.success(), "{}", text(&out.stderr));
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        v["id"].as_str().unwrap().to_string()
    }

    /// `python3 -c <code>` with the reference importable, on this root.
    pub fn python(&self, pythonpath: &Path, code: &str) -> Output {
        let mut cmd = Command::new("python3");
        self.isolate(&mut cmd);
        cmd.env("PYTHONPATH", pythonpath)
            .args(["-c", code])
            .output()
            .expect("python3")
    }

    /// The default board, opened from this (another) process.
    pub fn store(&self) -> Arc<SqliteStore> {
        self.board_store(DEFAULT_BOARD)
    }

    /// A board of this root, opened once per test.
    pub fn board_store(&self, slug: &str) -> Arc<SqliteStore> {
        let mut stores = self.stores.lock().unwrap();
        stores
            .entry(slug.to_string())
            .or_insert_with(|| {
                let db = Root::at(self.root()).board_paths(slug).db;
                let store = SqliteStore::open(&db, OpenOptions::create(), Arc::new(SystemClock));
                Arc::new(store.unwrap())
            })
            .clone()
    }

    /// `kanban gateway run --port 0`, waited on until it listens.
    pub fn gateway(&self) -> GatewayProc {
        self.gateway_with(&[], &[])
    }

    pub fn gateway_with(&self, env: &[(&str, &str)], args: &[&str]) -> GatewayProc {
        let mut cmd = self.spawn_gateway_cmd(env, args);
        let child = cmd.spawn().expect("spawn gateway");
        let mut gw = GatewayProc {
            pid: child.id(),
            child,
            log: self.gateway_log(),
        };
        gw.wait_ready(self.root());
        gw
    }

    /// The gateway command (not started), output appended to a log.
    pub fn spawn_gateway_cmd(&self, env: &[(&str, &str)], args: &[&str]) -> Command {
        let mut cmd = self.kanban(["gateway", "run", "--port", "0"]);
        cmd.args(args);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.gateway_log())
            .unwrap();
        cmd.stdout(log.try_clone().unwrap()).stderr(log);
        cmd
    }

    pub fn gateway_log(&self) -> PathBuf {
        self.root().join("gateway-test.log")
    }

    /// Worker start/end intervals (ns) of one task, from its trace.
    pub fn trace(&self, task: &str) -> Vec<(u128, Option<u128>)> {
        let text = std::fs::read_to_string(self.trace_dir().join(format!("{task}.log")))
            .unwrap_or_default();
        let mut open: std::collections::HashMap<String, u128> = Default::default();
        let mut spans = Vec::new();
        for line in text.lines() {
            let parts: Vec<&str> = line.split_whitespace().collect();
            let (Some(kind), Some(ns), Some(pid)) = (parts.first(), parts.get(1), parts.get(2))
            else {
                continue;
            };
            let ns: u128 = ns.parse().unwrap_or(0);
            match *kind {
                "start" => {
                    open.insert(pid.to_string(), ns);
                }
                "end" => {
                    if let Some(s) = open.remove(*pid) {
                        spans.push((s, Some(ns)));
                    }
                }
                _ => {}
            }
        }
        spans.extend(open.into_values().map(|s| (s, None)));
        spans.sort();
        spans
    }
}

/// Run `cmd` to completion, killing it after `timeout` (a command that
/// should refuse at once must not hang the suite).
pub fn output_within(cmd: &mut Command, timeout: Duration) -> Output {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    if !wait_until(timeout, || matches!(child.try_wait(), Ok(Some(_)))) {
        let _ = child.kill();
    }
    child.wait_with_output().expect("wait")
}

pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// A `kanban gateway run` child; SIGKILLed on drop if still running.
pub struct GatewayProc {
    pub pid: u32,
    child: Child,
    log: PathBuf,
}

impl GatewayProc {
    fn wait_ready(&mut self, root: &Path) {
        let state = root.join("kanban/gateway.json");
        let pid = self.pid;
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            let ours = std::fs::read_to_string(&state)
                .ok()
                .and_then(|s| serde_json::from_str::<serde_json::Value>(&s).ok())
                .is_some_and(|v| v["pid"].as_u64() == Some(u64::from(pid)));
            if ours {
                return;
            }
            if let Ok(Some(st)) = self.child.try_wait() {
                panic!("gateway exited at start ({st}): {}", self.log_text());
            }
            assert!(
                Instant::now() < deadline,
                "gateway did not listen in time: {}",
                self.log_text()
            );
            std::thread::sleep(POLL);
        }
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn signal(&self, sig: Signal) {
        let _ = kill(Pid::from_raw(self.pid as i32), sig);
    }

    pub fn kill9(&mut self) {
        self.signal(Signal::SIGKILL);
        let _ = self.child.wait();
    }

    /// SIGTERM; the exit status and how long the exit took (`None` = still
    /// running after `timeout`).
    pub fn sigterm(&mut self, timeout: Duration) -> Option<(ExitStatus, Duration)> {
        let t = Instant::now();
        self.signal(Signal::SIGTERM);
        let deadline = t + timeout;
        loop {
            if let Ok(Some(st)) = self.child.try_wait() {
                return Some((st, t.elapsed()));
            }
            if Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(POLL);
        }
    }

    /// Resident memory (kB) from /proc/<pid>/status.
    pub fn rss_kb(&self) -> Option<u64> {
        let s = std::fs::read_to_string(format!("/proc/{}/status", self.pid)).ok()?;
        s.lines()
            .find(|l| l.starts_with("VmRSS:"))?
            .split_whitespace()
            .nth(1)?
            .parse()
            .ok()
    }
}

impl Drop for GatewayProc {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            self.kill9();
        }
    }
}
