//! The Python reference (hermes-agent 0.19.0) on the sandbox's board.
//!
//! The reference is fetched by `scripts/fetch_reference.py` (pip download
//! of the pinned wheel, unpacked under `target/hermes-ref/` or
//! `$KANBAN_REFERENCE_DIR`), once per machine even when several test
//! binaries start together: the script holds a file lock while it
//! downloads.
//!
//! When the reference cannot be fetched the tests that need it fail with
//! the fetch error. `KANBAN_SKIP_REFERENCE=1` turns that into a loud skip
//! for offline development, unless `KANBAN_REQUIRE_REFERENCE=1` (set by
//! `.ci/run`) forbids it.

use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;

use serde_json::Value;

use crate::Sandbox;

/// Allows skipping the reference tests when the reference is missing.
pub const ENV_SKIP_REFERENCE: &str = "KANBAN_SKIP_REFERENCE";
/// Forbids that skip (CI).
pub const ENV_REQUIRE_REFERENCE: &str = "KANBAN_REQUIRE_REFERENCE";

/// The workspace root.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("repository root")
}

/// `tests/interop/ref_board.py`, the driver of the reference's library.
pub fn ref_board_script() -> PathBuf {
    repo_root().join("tests/interop/ref_board.py")
}

fn truthy(name: &str) -> bool {
    matches!(
        std::env::var(name).as_deref().map(str::trim),
        Ok("1" | "true" | "yes")
    )
}

/// The unpacked reference wheel (for `PYTHONPATH`), fetched on first use.
/// `None` only when skipping is explicitly allowed; otherwise panics with
/// the reason the reference is unavailable.
pub fn reference_pythonpath() -> Option<PathBuf> {
    static FETCHED: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    let fetched = FETCHED.get_or_init(|| {
        let script = repo_root().join("scripts/fetch_reference.py");
        let out = Command::new("python3")
            .arg(&script)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("cannot run python3 {}: {e}", script.display()))?;
        if !out.status.success() {
            return Err(String::from_utf8_lossy(&out.stderr).into_owned());
        }
        let dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        if dir.join("hermes_cli/kanban_db.py").exists() {
            Ok(dir)
        } else {
            Err(format!(
                "fetch_reference.py printed {dir:?}, which has no hermes_cli/kanban_db.py"
            ))
        }
    });
    match fetched {
        Ok(dir) => Some(dir.clone()),
        Err(why) if truthy(ENV_SKIP_REFERENCE) && !truthy(ENV_REQUIRE_REFERENCE) => {
            eprintln!(
                "SKIPPED: the Python reference hermes-agent==0.19.0 is unavailable \
                 ({ENV_SKIP_REFERENCE}=1): {why}"
            );
            None
        }
        Err(why) => panic!(
            "this test needs the Python reference hermes-agent==0.19.0 and it could not be \
             fetched (python3 scripts/fetch_reference.py): {why}\n\
             Set {ENV_SKIP_REFERENCE}=1 to skip these tests offline."
        ),
    }
}

impl Sandbox {
    /// `ref_board.py <args>` with the reference importable. Panics (or,
    /// when skipping is allowed, returns `None`) when it is unavailable.
    pub fn reference<I, S>(&self, args: I) -> Option<Command>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        let path = reference_pythonpath()?;
        let mut cmd = self.python(args);
        cmd.env("PYTHONPATH", path);
        Some(cmd)
    }

    /// `python3 -c <code>` with the reference importable, on this root
    /// (same availability rule as [`Sandbox::reference`]).
    pub fn reference_code(&self, code: &str) -> Option<Command> {
        let path = reference_pythonpath()?;
        let mut cmd = self.command("python3");
        cmd.env("PYTHONPATH", path).args(["-c", code]);
        Some(cmd)
    }

    /// `ref_board.py <args>` without the reference (stdlib subcommands:
    /// sql, integrity, schema). `-S` keeps site-packages out.
    pub fn python<I, S>(&self, args: I) -> Command
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        let mut cmd = self.command("python3");
        cmd.arg("-S").arg(ref_board_script()).args(args);
        cmd
    }

    /// Rows of a read-only query on the default board, read by Python's
    /// sqlite3, as JSON arrays.
    pub fn sql(&self, query: &str, params: &[&str]) -> Vec<Value> {
        let db = self.db_path();
        let mut args: Vec<&str> = vec!["sql", "--db", db.to_str().expect("utf-8 path"), query];
        args.extend_from_slice(params);
        match run_json(&mut self.python(args)) {
            Value::Array(rows) => rows,
            other => panic!("sql returned {other}"),
        }
    }

    /// A single integer from a query such as `SELECT count(*) ...`.
    pub fn sql_count(&self, query: &str, params: &[&str]) -> i64 {
        let rows = self.sql(query, params);
        rows.first()
            .and_then(|r| r.get(0))
            .and_then(Value::as_i64)
            .unwrap_or_else(|| panic!("{query}: expected one integer, got {rows:?}"))
    }

    /// Asserts `PRAGMA integrity_check` = ok, checked with Python's sqlite3.
    pub fn assert_integrity_ok(&self) {
        let db = self.db_path();
        let out = self
            .python(["integrity", "--db", db.to_str().expect("utf-8 path")])
            .output()
            .expect("run python3");
        assert!(
            out.status.success(),
            "PRAGMA integrity_check on {} is not ok:\n{}{}",
            db.display(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Keep the board open for as long as the holder lives, the way a
    /// running gateway does (`ref_board.py hold`): without it, the
    /// reference's own lock-cancelling bug lets a closing process delete
    /// the WAL under live reference writers.
    pub fn hold_open(&self) -> Holder {
        let db = self.db_path();
        let mut child = self
            .python(["hold", "--db", db.to_str().expect("utf-8 path")])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("spawn python3 hold");
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.as_mut().expect("stdout"))
            .read_line(&mut line)
            .expect("read hold");
        assert_eq!(line.trim(), "holding", "ref_board.py hold did not start");
        Holder(child)
    }
}

/// See [`Sandbox::hold_open`].
pub struct Holder(Child);

impl Drop for Holder {
    fn drop(&mut self) {
        drop(self.0.stdin.take()); // EOF ends the holder
        let _ = self.0.wait();
    }
}

/// `program arg ...` for messages.
pub fn describe(cmd: &Command) -> String {
    let mut s = cmd.get_program().to_string_lossy().into_owned();
    for a in cmd.get_args() {
        s.push(' ');
        s.push_str(&a.to_string_lossy());
    }
    s
}

/// Runs the command, panicking with its output unless it exits 0.
pub fn run_ok(cmd: &mut Command) -> Output {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot start `{}`: {e}", describe(cmd)));
    assert!(
        out.status.success(),
        "`{}` failed ({}):\nstdout:\n{}\nstderr:\n{}",
        describe(cmd),
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Runs the command (must exit 0) and parses its stdout as JSON.
pub fn run_json(cmd: &mut Command) -> Value {
    let out = run_ok(cmd);
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "`{}` printed no valid JSON ({e}):\n{}",
            describe(cmd),
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

/// Runs a command; its output on success, else a one-line description of
/// the failure.
pub fn attempt(cmd: &mut Command) -> Result<Output, String> {
    let out = cmd
        .output()
        .map_err(|e| format!("cannot start `{}`: {e}", describe(cmd)))?;
    if out.status.success() {
        Ok(out)
    } else {
        Err(format!(
            "`{}` -> {}: {}",
            describe(cmd),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// The `id` field of a task JSON object (or of `{"task": {...}}`).
pub fn task_id(v: &Value) -> String {
    v.get("id")
        .or_else(|| v.get("task").and_then(|t| t.get("id")))
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("no task id in {v}"))
        .to_owned()
}

/// True when a failed `kanban claim` reports a lost race (the task was not
/// claimable), as opposed to an error such as a locked database.
pub fn is_lost_claim(out: &Output) -> bool {
    let err = String::from_utf8_lossy(&out.stderr);
    out.status.code() == Some(1) && err.contains("cannot claim")
}

/// `items` rotated by `k` positions, so concurrent racers start at
/// different places and meet each other everywhere in the list.
pub fn rotated<T: Clone>(items: &[T], k: usize) -> Vec<T> {
    if items.is_empty() {
        return Vec::new();
    }
    let k = k % items.len();
    items[k..].iter().chain(&items[..k]).cloned().collect()
}

/// One kanban writer: create, claim and complete its own tasks through
/// the CLI. `(created, completed, errors)`.
pub fn kanban_writer(b: &Sandbox, tag: &str, n: usize) -> (Vec<String>, Vec<String>, Vec<String>) {
    let (mut created, mut completed, mut errors) = (Vec::new(), Vec::new(), Vec::new());
    for i in 0..n {
        let title = format!("{tag}-{i}");
        let summary = format!("done by {tag}");
        let step = attempt(&mut b.kanban(["create", title.as_str(), "--json"])).and_then(|out| {
            let id = serde_json::from_slice::<Value>(&out.stdout)
                .map(|v| task_id(&v))
                .map_err(|e| format!("create {title}: bad JSON: {e}"))?;
            created.push(id.clone());
            attempt(&mut b.kanban(["claim", id.as_str()]))?;
            attempt(&mut b.kanban(["complete", id.as_str(), "--summary", summary.as_str()]))?;
            completed.push(id);
            Ok(())
        });
        if let Err(e) = step {
            errors.push(e);
        }
    }
    (created, completed, errors)
}
