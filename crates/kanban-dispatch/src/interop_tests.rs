//! Our dispatcher with a worker that reports through the Python reference
//! (hermes-agent 0.19.0): the worker contract (env pins, run-id
//! compare-and-swap) holds across implementations.

use std::path::Path;
use std::time::Duration;

use kanban_core::Status;
use kanban_store::Store;

use crate::pass::DispatchOptions;
use crate::pass::tests::Fixture;
use crate::testutil::wait_for;

const REF_WHEEL: &str = "/tmp/ref/wheel";

#[test]
fn a_worker_completing_through_the_python_reference() {
    if !Path::new(REF_WHEEL)
        .join("hermes_cli/kanban_db.py")
        .exists()
    {
        return eprintln!("{REF_WHEEL} not present; skipped");
    }
    let mut f = Fixture::new();
    let home = f.root().to_path_buf();
    // Completes with the attempt's run id (as a real worker's tools do),
    // then tries the stale run id of another attempt, which must fail.
    let body = format!(
        "export HERMES_HOME={home} PYTHONPATH={REF_WHEEL}\n\
         exec python3 -c '\n\
import os, hermes_cli.kanban_db as kb\n\
conn = kb.connect()\n\
tid = os.environ[\"HERMES_KANBAN_TASK\"]\n\
run = int(os.environ[\"HERMES_KANBAN_RUN_ID\"])\n\
assert not kb.complete_task(conn, tid, summary=\"stale\", expected_run_id=run + 1000)\n\
assert kb.complete_task(conn, tid, summary=\"done by python\", expected_run_id=run)\n\
'\n",
        home = home.display()
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
        use kanban_store::dispatch_ops::DispatchStore;
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
