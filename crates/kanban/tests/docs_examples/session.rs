//! The shell examples of one document, run in order in one `bash` (as a
//! reader runs them in one terminal: the README's later blocks use the
//! board its Quick start made), in a scratch directory of their own with
//! a fresh `HERMES_HOME`, the built binary's directory first on `PATH`,
//! and no network but loopback.
//!
//! The few adaptations are made line by line, each one printed:
//! `cargo build … -p kanban` lines are dropped (the binary is built; it is
//! also linked as `./target/release/kanban` in the scratch directory, where
//! that build would put it), `cargo run --release -p kanban --` becomes
//! `kanban`, a gateway gets `--port 0` (the default port may be taken by
//! another test), the foreground `kanban gateway run` is started in the
//! background, its URL fetched, then stopped with Ctrl-C (SIGINT), and the
//! PostgreSQL URL of an `export HERMES_KANBAN_DATABASE_URL=…` line is a
//! test server's.

use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use tempfile::TempDir;

use crate::markdown::{Block, command_part};

/// How long one document's examples may run together.
const SESSION_TIMEOUT: Duration = Duration::from_secs(300);
/// How long a leftover gateway gets to stop on SIGTERM.
const STOP_TIMEOUT: Duration = Duration::from_secs(10);
const POLL: Duration = Duration::from_millis(50);
const EXECUTABLE: u32 = 0o755;
/// What a foreground gateway line becomes (defined in [`PRELUDE`]).
const GATEWAY_RUN_FN: &str = "docs_test_gateway_run";
/// What a `dispatched-command` block becomes (defined in [`PRELUDE`]).
const DISPATCH_FN: &str = "docs_test_dispatch";
/// Written by the stand-in `hermes` worker once its task is complete.
pub const DISPATCHED_RECORD: &str = "dispatched.json";

/// Defined before the first block; `$DOCS_TEST_STATE` is the test's own
/// directory (never the docs').
const PRELUDE: &str = r#"set -Eeuo pipefail
trap 'echo "docs-test: failed ($?): $BASH_COMMAND" >&2' ERR
# A gateway a block started and left running (it would in a terminal).
trap 'kanban gateway stop >/dev/null 2>&1 || :' EXIT

# `kanban gateway run ARGS` never returns: run it in the background, wait
# for its URL, fetch that page, then stop it as Ctrl-C does.
docs_test_gateway_run() {
  local log url="" pid
  log=$(mktemp "$DOCS_TEST_STATE/gateway-run.XXXX")
  kanban gateway run "$@" >"$log" 2>&1 &
  pid=$!
  for _ in $(seq 600); do
    url=$(grep -o 'http://[^ ]*' "$log" | head -n 1) || :
    [ -n "$url" ] && break
    if ! kill -0 "$pid" 2>/dev/null; then
      cat "$log" >&2
      echo "docs-test: kanban gateway run $* exited before printing its URL" >&2
      return 1
    fi
    sleep 0.1
  done
  if [ -z "$url" ]; then
    cat "$log" >&2; kill -TERM "$pid"
    echo "docs-test: kanban gateway run $* printed no URL within 60 s" >&2
    return 1
  fi
  python3 -c 'import sys, urllib.request
page = urllib.request.urlopen(sys.argv[1], timeout=30)
assert page.status == 200, page.status
print("docs-test: GET", sys.argv[1], "->", page.status)' "$url"
  kill -INT "$pid"
  wait "$pid"
  cat "$log"
}

# A `dispatched-command` block: one dispatch pass, then wait for the
# stand-in worker to complete its task and record its command line.
docs_test_dispatch() {
  kanban dispatch
  for _ in $(seq 600); do
    [ -e "$DOCS_TEST_STATE/dispatched.json" ] && return 0
    sleep 0.1
  done
  echo "docs-test: the dispatched worker did not complete within 60 s; its log:" >&2
  cat "${HERMES_HOME}"/kanban/logs/*.log >&2 || :
  return 1
}
"#;

/// Stands in for `jq`, which Debian does not install by default.
const JQ_GUARD: &str = "#!/bin/sh\n\
    echo 'docs-test: jq is not installed on Debian by default: the examples must not need it' >&2\n\
    exit 127\n";

/// The `hermes` CLI for the examples: `profile create NAME` runs the
/// Python reference's own handler (hermes_cli.main.cmd_profile; the CLI's
/// third-party dependencies are not installed), and the dispatcher's
/// worker command line is recorded, then the task completed, instead of
/// starting an agent. `{reference}` and `{state}` are filled in.
const HERMES_STANDIN: &str = r#"#!/usr/bin/env python3
import argparse, json, os, subprocess, sys
sys.path.insert(0, "{reference}")
args = sys.argv[1:]
if args[:2] == ["profile", "create"] and len(args) == 3:
    from hermes_cli.main import cmd_profile
    cmd_profile(argparse.Namespace(profile_action="create", profile_name=args[2]))
    sys.exit(0)
task = os.environ.get("HERMES_KANBAN_TASK")
if args[:1] == ["-p"] and task:
    subprocess.run(["kanban", "complete", "--summary", "the docs test's stand-in for the Hermes agent"], check=True)
    record = os.path.join("{state}", "dispatched.json")
    with open(record + ".tmp", "w") as f:
        json.dump({"argv": sys.argv, "task": task}, f)
    os.replace(record + ".tmp", record)
    sys.exit(0)
print("docs-test stand-in for hermes: unsupported arguments", args, file=sys.stderr)
sys.exit(2)
"#;

/// Where one document's examples run.
pub struct Scratch {
    dir: TempDir,
}

impl Scratch {
    pub fn new(bin: &Path) -> Scratch {
        let dir = tempfile::Builder::new()
            .prefix("kanban-docs-")
            .tempdir()
            .expect("temp dir");
        let s = Scratch { dir };
        for d in ["home", "work/target/release", "tmp", "state", "shims"] {
            std::fs::create_dir_all(s.path(d)).unwrap();
        }
        // Stands for `cargo build --release -p kanban`, which is not run.
        std::os::unix::fs::symlink(bin, s.path("work/target/release/kanban")).unwrap();
        s.executable("shims/jq", JQ_GUARD);
        s
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    pub fn state(&self) -> PathBuf {
        self.path("state")
    }

    fn executable(&self, rel: &str, text: &str) {
        let p = self.path(rel);
        std::fs::write(&p, text).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(EXECUTABLE)).unwrap();
    }

    /// Puts the `hermes` stand-in on the session's `PATH`.
    pub fn provide_hermes(&self, reference: &Path) {
        let text = HERMES_STANDIN
            .replace("{reference}", &reference.display().to_string())
            .replace("{state}", &self.state().display().to_string());
        self.executable("shims/hermes", &text);
    }
}

/// One document's script: the blocks' lines after the adaptations.
#[derive(Default)]
pub struct Script {
    body: String,
    /// Each adaptation, said once per line it touched.
    pub notes: Vec<String>,
}

impl Script {
    /// Appends `block` (a `sh` block of commands). `pg_url` gives the URL
    /// of a test database for an `export HERMES_KANBAN_DATABASE_URL=` line;
    /// `None` from it skips the block (PostgreSQL skipped on request).
    pub fn push(&mut self, block: &Block, pg_url: &mut dyn FnMut() -> Option<String>) {
        let mut lines = Vec::new();
        for line in &block.lines {
            match self.adapt(block, line, pg_url) {
                Some(l) => lines.push(l),
                None => {
                    self.note(
                        block,
                        "the whole block is skipped: PostgreSQL is skipped on request",
                    );
                    return;
                }
            }
        }
        let place = block.place.replace('\'', "");
        self.body.push_str(&format!(
            "\nprintf '%s\\n' '{place}' > \"$DOCS_TEST_STATE/block\"\necho '### {place}'\n"
        ));
        for l in lines {
            self.body.push_str(&l);
            self.body.push('\n');
        }
    }

    /// A `dispatched-command` block: dispatch and wait for its worker.
    pub fn push_dispatch(&mut self, block: &Block) {
        self.note(
            block,
            "dispatched (kanban dispatch) and compared with the command the worker got",
        );
        self.body.push_str(&format!(
            "\nprintf '%s\\n' '{0}' > \"$DOCS_TEST_STATE/block\"\necho '### {0}'\n{DISPATCH_FN}\n",
            block.place
        ));
    }

    pub fn is_empty(&self) -> bool {
        self.body.is_empty()
    }

    fn note(&mut self, block: &Block, what: &str) {
        self.notes.push(format!("{}: {what}", block.place));
    }

    /// `line` as run; `None` when the block must be skipped.
    fn adapt(
        &mut self,
        block: &Block,
        line: &str,
        pg_url: &mut dyn FnMut() -> Option<String>,
    ) -> Option<String> {
        let code = command_part(line).trim();
        let comment = &line[line.find(code).unwrap_or(0) + code.len()..];
        if let Some((_, reason)) = block.skipped_lines().find(|(c, _)| *c == code) {
            self.note(block, &format!("not run: `{code}` ({reason})"));
            return Some(format!(": # docs-test: not run: {code}"));
        }
        if matches!(
            code,
            "cargo build --release -p kanban" | "cargo build -p kanban"
        ) {
            self.note(block, &format!("not run: `{code}` (the binary is built)"));
            return Some(format!(": # docs-test: the binary is built: {code}"));
        }
        let mut code = code.to_string();
        for prefix in [
            "cargo run --release -p kanban -- ",
            "cargo run -p kanban -- ",
        ] {
            if let Some(args) = code.strip_prefix(prefix) {
                self.note(
                    block,
                    &format!("`{prefix}` runs the built binary: `kanban {args}`"),
                );
                code = format!("kanban {args}");
            }
        }
        if let Some(url_part) = code.strip_prefix("export HERMES_KANBAN_DATABASE_URL=") {
            let url = pg_url()?;
            self.note(
                block,
                &format!("the URL {url_part} is a test server's: {url}"),
            );
            return Some(format!(
                "export HERMES_KANBAN_DATABASE_URL='{url}'{comment}"
            ));
        }
        let gateway =
            code.starts_with("kanban gateway run") || code.starts_with("kanban gateway start");
        if gateway && !code.contains("--port") {
            self.note(
                block,
                &format!("`{code}` gets `--port 0` (the default port may be in use)"),
            );
            code.push_str(" --port 0");
        }
        if let Some(args) = code.strip_prefix("kanban gateway run") {
            self.note(
                block,
                "the foreground gateway is started, its URL fetched, then stopped with SIGINT",
            );
            code = format!("{GATEWAY_RUN_FN}{args}");
        }
        assert!(
            !code.starts_with("cargo "),
            "{}: `{code}`: the test runs no cargo command but `cargo build -p kanban`: \
             mark it `<!-- docs-test: skip-line {code} — why -->`",
            block.place
        );
        Some(format!("{code}{comment}"))
    }
}

/// Runs `script` in `scratch` with `bin`; panics naming the failing block.
pub fn run(scratch: &Scratch, bin: &Path, script: &Script) {
    let file = scratch.path("state/examples.sh");
    std::fs::write(&file, format!("{PRELUDE}{}", script.body)).unwrap();
    let log_path = scratch.path("state/output.log");
    let log = std::fs::File::create(&log_path).unwrap();
    let path = format!(
        "{}:{}:{}",
        bin.parent().unwrap().display(),
        scratch.path("shims").display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut argv = net_isolation().to_vec();
    argv.extend(["bash".into(), file.display().to_string()]);
    let mut cmd = Command::new(&argv[0]);
    cmd.args(&argv[1..])
        .env_clear()
        .env("PATH", path)
        .env("HOME", scratch.path("home"))
        .env("HERMES_HOME", scratch.path("hermes"))
        .env("TMPDIR", scratch.path("tmp"))
        .env("DOCS_TEST_STATE", scratch.state())
        .env("TZ", "UTC")
        .env("LANG", "C.UTF-8")
        .current_dir(scratch.path("work"))
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .process_group(0);
    let mut child = cmd.spawn().expect("spawn bash");
    let deadline = Instant::now() + SESSION_TIMEOUT;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status);
        }
        if Instant::now() > deadline {
            let _ = kill(Pid::from_raw(-(child.id() as i32)), Signal::SIGKILL);
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(POLL);
    };
    stop_leftover_gateways(scratch.dir.path());
    let output = std::fs::read_to_string(&log_path).unwrap_or_default();
    println!("{output}");
    let block = std::fs::read_to_string(scratch.path("state/block")).unwrap_or_default();
    match status {
        Some(s) if s.success() => {}
        Some(s) => panic!(
            "the example at {} failed ({s}); output above; the script run: {}",
            block.trim(),
            file.display()
        ),
        None => panic!(
            "the examples did not finish within {SESSION_TIMEOUT:?} (last block {})",
            block.trim()
        ),
    }
}

/// `unshare` arguments that give the session a network namespace with
/// only a loopback interface (up), or nothing when this machine cannot
/// (said once).
fn net_isolation() -> &'static [String] {
    static PREFIX: OnceLock<Vec<String>> = OnceLock::new();
    PREFIX.get_or_init(|| {
        let inner = r#"ip link set lo up && exec "$0" "$@""#;
        for flags in ["-n", "-rn"] {
            let ok = Command::new("unshare")
                .args([flags, "--", "sh", "-c", inner, "true"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
            if ok {
                return ["unshare", flags, "--", "sh", "-c", inner]
                    .map(String::from)
                    .to_vec();
            }
        }
        println!("NOTE: no network namespace here (unshare/ip): the examples run with the network");
        Vec::new()
    })
}

/// SIGTERM (then SIGKILL) to every `kanban` whose `gateway.pid` lies under
/// `dir`: a gateway the examples started must not outlive the test.
fn stop_leftover_gateways(dir: &Path) {
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                stack.push(p);
            } else if p.file_name().is_some_and(|n| n == "gateway.pid") {
                let pid = std::fs::read_to_string(&p)
                    .ok()
                    .and_then(|t| t.trim().parse::<i32>().ok());
                if let Some(pid) = pid.filter(|pid| is_kanban(*pid)) {
                    println!(
                        "docs-test: stopping a gateway left running (pid {pid}, {})",
                        p.display()
                    );
                    let _ = kill(Pid::from_raw(pid), Signal::SIGTERM);
                    let deadline = Instant::now() + STOP_TIMEOUT;
                    while is_kanban(pid) && Instant::now() < deadline {
                        std::thread::sleep(POLL);
                    }
                    let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
                }
            }
        }
    }
}

fn is_kanban(pid: i32) -> bool {
    kanban_testkit::pid_alive(pid)
        && std::fs::read(format!("/proc/{pid}/cmdline"))
            .is_ok_and(|c| String::from_utf8_lossy(&c).contains("kanban"))
}
