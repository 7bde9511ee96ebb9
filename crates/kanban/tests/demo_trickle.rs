//! Issue 13 item 12: the demo keeps moving. `gateway run --demo` adds work
//! every `--demo-rate` (here fast, and seeded) over several profiles, with
//! task graphs, a crash that is retried, a rate-limited worker and a
//! question for a human, so every column is used; it stops with the
//! gateway; bad rates are refused as usage errors.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Child;
use std::time::Duration;

use kanban_core::{Status, Task};
use kanban_server::demo::{DEMO_AUTHOR, OPENING_TASKS};
use kanban_store::{EventQuery, Store, TaskQuery};
use kanban_testkit::gateway::{SETTLE_WAIT, START_WAIT};
use kanban_testkit::{Sandbox, open_board_at, output_within, wait_for, wait_until};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

/// How long the fast demo may take to show everything asked of it (its
/// workers take 1-6 s each, a few profiles at a time).
const TRICKLE_WAIT: Duration = Duration::from_secs(180);
/// How long a stopped gateway may take to exit.
const STOP_WAIT: Duration = Duration::from_secs(10);
/// Between two looks at the board.
const LOOK_EVERY: Duration = Duration::from_millis(100);
/// What the clap error of a bad rate says.
const RATE_HINT: &str = "500ms, 3s or 1m";

/// A `gateway run --demo --demo-root <dir>` child, output in a file.
struct Demo {
    child: Child,
    root: PathBuf,
    log: PathBuf,
    _dirs: tempfile::TempDir,
}

impl Demo {
    fn spawn(home: &Sandbox, extra: &[&str]) -> Demo {
        let dirs = tempfile::tempdir().unwrap();
        let root = dirs.path().join("demo-root");
        let log = dirs.path().join("demo.log");
        let file = std::fs::File::create(&log).unwrap();
        let mut cmd = home.kanban(["gateway", "run", "--demo", "--port", "0", "--demo-root"]);
        cmd.arg(&root)
            .args(extra)
            .stdout(file.try_clone().unwrap())
            .stderr(file);
        let mut demo = Demo {
            child: cmd.spawn().unwrap(),
            root,
            log,
            _dirs: dirs,
        };
        let up = wait_until(START_WAIT, || {
            if let Ok(Some(st)) = demo.child.try_wait() {
                panic!("demo exited ({st}):\n{}", demo.output());
            }
            demo.output().contains("listening on")
        });
        assert!(up, "demo did not start:\n{}", demo.output());
        demo
    }

    fn output(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn store(&self) -> std::sync::Arc<dyn Store> {
        open_board_at(&self.root, "demo").store()
    }

    /// SIGTERM; the exit status.
    fn stop(&mut self) -> std::process::ExitStatus {
        let _ = kill(Pid::from_raw(self.child.id() as i32), Signal::SIGTERM);
        let status = wait_for(STOP_WAIT, || self.child.try_wait().ok().flatten());
        status.unwrap_or_else(|| panic!("demo did not stop:\n{}", self.output()))
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

fn tasks(store: &dyn Store) -> Vec<Task> {
    store
        .list_tasks(&TaskQuery {
            include_archived: true,
            ..TaskQuery::default()
        })
        .unwrap()
}

/// Tasks the feeder added (opening tasks carry a round's key).
fn fed(tasks: &[Task]) -> usize {
    tasks
        .iter()
        .filter(|t| t.created_by.as_deref() == Some(DEMO_AUTHOR) && t.idempotency_key.is_none())
        .count()
}

fn has_event(store: &dyn Store, kind: &str) -> bool {
    let q = EventQuery {
        kinds: Some(vec![kind.to_string()]),
        limit: Some(1),
        ..EventQuery::default()
    };
    !store.events(&q).unwrap().is_empty()
}

/// What the demo has shown so far.
#[derive(Debug, Default)]
struct Seen {
    statuses: BTreeSet<Status>,
    fed: usize,
    done: usize,
    /// A task whose first attempt crashed and that was tried again.
    retried: Option<String>,
    rate_limited: bool,
    /// A worker blocked its task for a human, who answered.
    asked_and_answered: bool,
}

impl Seen {
    fn look(&mut self, store: &dyn Store) {
        let all = tasks(store);
        self.statuses.extend(all.iter().map(|t| t.status));
        self.fed = fed(&all);
        self.done = all.iter().filter(|t| t.status == Status::Done).count();
        self.rate_limited |= has_event(store, "rate_limited");
        if self.retried.is_none() || !self.asked_and_answered {
            for t in all.iter().filter(|t| {
                t.consecutive_failures > 0 || t.block_kind.is_some() || t.status == Status::Done
            }) {
                let runs = store.runs(&t.id).unwrap();
                // Attempts made by a worker (store-made runs have no profile).
                let attempts: Vec<_> = runs.iter().filter(|r| r.profile.is_some()).collect();
                let crashed_first =
                    attempts.first().and_then(|r| r.outcome.as_deref()) == Some("crashed");
                if crashed_first && attempts.len() >= 2 {
                    self.retried = Some(t.id.clone());
                }
                let asked = attempts
                    .iter()
                    .any(|r| r.outcome.as_deref() == Some("blocked"));
                if asked && attempts.len() >= 2 {
                    self.asked_and_answered = true;
                }
            }
        }
    }

    fn complete(&self) -> bool {
        let wanted = [
            Status::Triage,
            Status::Todo,
            Status::Scheduled,
            Status::Ready,
            Status::Running,
            Status::Blocked,
            Status::Review,
            Status::Done,
        ];
        wanted.iter().all(|s| self.statuses.contains(s))
            && self.fed >= 10
            && self.done >= 10
            && self.retried.is_some()
            && self.rate_limited
            && self.asked_and_answered
    }
}

#[test]
fn the_demo_keeps_every_column_moving_and_stops_with_the_gateway() {
    let home = Sandbox::new();
    let mut demo = Demo::spawn(&home, &["--demo-rate", "200ms", "--demo-seed", "42"]);
    let out = demo.output();
    assert!(out.contains("new work every 200ms"), "{out}");
    assert!(out.contains("--demo-seed 42"), "{out}");
    let store = demo.store();
    let mut seen = Seen::default();
    let shown = wait_until(TRICKLE_WAIT, || {
        seen.look(store.as_ref());
        std::thread::sleep(LOOK_EVERY);
        seen.complete()
    });
    assert!(
        shown,
        "the demo did not show everything: {seen:?}\n{}",
        demo.output()
    );
    // Retried, then finished.
    let retried = seen.retried.clone().unwrap();
    let done = wait_until(TRICKLE_WAIT, || {
        store.get_task(&retried).unwrap().unwrap().status == Status::Done
    });
    assert!(done, "the retried task {retried} never finished");

    let status = demo.stop();
    assert!(status.success(), "{status}:\n{}", demo.output());
    assert!(!demo.output().contains("panicked"), "{}", demo.output());
    // Nothing adds work once the gateway is gone.
    let after = tasks(store.as_ref()).len();
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(tasks(store.as_ref()).len(), after);
}

#[test]
fn demo_rate_off_leaves_the_opening_alone() {
    let home = Sandbox::new();
    let mut demo = Demo::spawn(&home, &["--demo-rate", "off"]);
    assert!(
        demo.output().contains("--demo-rate off"),
        "{}",
        demo.output()
    );
    let store = demo.store();
    // Long enough for several ticks of any rate the tests use.
    std::thread::sleep(Duration::from_secs(2));
    let all = tasks(store.as_ref());
    assert_eq!(all.len(), OPENING_TASKS);
    assert_eq!(fed(&all), 0);
    assert!(demo.stop().success());
}

fn root_is_empty_or_missing(dir: &Path) -> bool {
    std::fs::read_dir(dir).map_or(true, |mut d| d.next().is_none())
}

#[test]
fn bad_demo_rates_are_usage_errors_that_say_what_is_wanted() {
    let home = Sandbox::new();
    let elsewhere = tempfile::tempdir().unwrap();
    let dir = elsewhere.path().join("demo");
    for bad in ["fast", "10ms", "-1s", "2h", "1..5s", "3x", ""] {
        let mut cmd = home.kanban(["gateway", "run", "--demo", "--port", "0", "--demo-rate"]);
        cmd.arg(bad).arg("--demo-root").arg(&dir);
        let out = output_within(&mut cmd, SETTLE_WAIT);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{bad:?}: {err}");
        assert!(err.contains("--demo-rate"), "{bad:?}: {err}");
        assert!(err.contains(RATE_HINT), "{bad:?}: {err}");
        assert!(
            root_is_empty_or_missing(&dir),
            "{bad:?} created the demo root"
        );
    }
    // The demo flags mean nothing without --demo.
    for flags in [["--demo-rate", "2s"], ["--demo-seed", "1"]] {
        let mut cmd = home.kanban(["gateway", "run", "--port", "0"]);
        cmd.args(flags);
        let out = output_within(&mut cmd, SETTLE_WAIT);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{flags:?}: {err}");
        assert!(err.contains("--demo"), "{err}");
    }
}
