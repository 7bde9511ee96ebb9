//! Our dispatcher with a worker that reports through the Python reference
//! (hermes-agent 0.19.0): the worker contract (env pins, run-id
//! compare-and-swap) holds across implementations.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use kanban_core::Status;

use crate::options::DispatchOptions;
use crate::pass::tests::Fixture;
use crate::testutil::wait_for;

/// The unpacked reference wheel, fetched (once, cached under target/) by
/// `scripts/fetch_reference.py`. `None` only with `KANBAN_SKIP_REFERENCE=1`
/// and without `KANBAN_REQUIRE_REFERENCE=1`: an unavailable reference fails
/// the test rather than passing it silently.
fn reference_wheel() -> Option<PathBuf> {
    let flag = |name: &str| matches!(std::env::var(name).as_deref(), Ok("1" | "true" | "yes"));
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/fetch_reference.py");
    let fetched = Command::new("python3")
        .arg(&script)
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|e| format!("cannot run python3 {}: {e}", script.display()))
        .and_then(|out| {
            let dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
            if out.status.success() && dir.join("hermes_cli/kanban_db.py").exists() {
                Ok(dir)
            } else {
                Err(String::from_utf8_lossy(&out.stderr).into_owned())
            }
        });
    match fetched {
        Ok(dir) => Some(dir),
        Err(why) if flag("KANBAN_SKIP_REFERENCE") && !flag("KANBAN_REQUIRE_REFERENCE") => {
            eprintln!(
                "SKIPPED: the Python reference is unavailable (KANBAN_SKIP_REFERENCE=1): {why}"
            );
            None
        }
        Err(why) => panic!(
            "this test needs the Python reference hermes-agent==0.19.0 \
             (python3 scripts/fetch_reference.py): {why}\n\
             Set KANBAN_SKIP_REFERENCE=1 to skip it offline."
        ),
    }
}

#[test]
fn a_worker_completing_through_the_python_reference() {
    let Some(wheel) = reference_wheel() else {
        return;
    };
    let mut f = Fixture::new();
    let home = f.root().to_path_buf();
    // Completes with the attempt's run id (as a real worker's tools do),
    // then tries the stale run id of another attempt, which must fail.
    let body = format!(
        "export HERMES_HOME={home} PYTHONPATH={wheel}\n\
         exec python3 -c '\n\
import os, hermes_cli.kanban_db as kb\n\
conn = kb.connect()\n\
tid = os.environ[\"HERMES_KANBAN_TASK\"]\n\
run = int(os.environ[\"HERMES_KANBAN_RUN_ID\"])\n\
assert not kb.complete_task(conn, tid, summary=\"stale\", expected_run_id=run + 1000)\n\
assert kb.complete_task(conn, tid, summary=\"done by python\", expected_run_id=run)\n\
'\n",
        home = home.display(),
        wheel = wheel.display()
    );
    f.script_profile("py", &body);
    let id = f.create("interop", Some("py"));
    let d = f.dispatcher();
    let r = d.dispatch_once(&DispatchOptions::default()).unwrap();
    assert_eq!(r.spawned.len(), 1, "{r:?}");
    let ws = Path::new(&r.spawned[0].workspace).to_path_buf();
    wait_for(Duration::from_secs(60), || {
        f.task(&id).status == Status::Done
    });
    f.wait_exit_of_done(&id);
    let r = d.dispatch_once(&DispatchOptions::default()).unwrap();
    assert!(r.crashed.is_empty() && r.spawned.is_empty(), "{r:?}");
    let runs = f.store.runs(&id).unwrap();
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0].outcome.as_deref(), Some("completed"));
    assert_eq!(runs[0].summary.as_deref(), Some("done by python"));
    // The reference removed the managed scratch workspace we created.
    assert!(!ws.exists(), "scratch workspace left at {}", ws.display());
    let log =
        std::fs::read_to_string(f.root().join("kanban/logs").join(format!("{id}.log"))).unwrap();
    assert!(!log.contains("Traceback"), "{log}");
}

impl Fixture {
    /// Wait until the worker of a finished task has exited.
    fn wait_exit_of_done(&self, id: &str) {
        let run = self.store.runs(id).unwrap().last().unwrap().id;
        let w = self.store.worker_record(run).unwrap().unwrap();
        let ident = crate::liveness::WorkerIdentity {
            pid: w.pid as i32,
            start_time: w.start_time.map(|t| t as u64),
        };
        wait_for(Duration::from_secs(30), || {
            crate::spawner::Spawner::exit_status(&*self.spawner, &ident).is_some()
        });
    }
}
