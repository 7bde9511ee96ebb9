//! The gateway's pipeline reacts to its workers at once: a worker's exit
//! runs a pass (its death is judged without waiting for the tick), and a
//! chain of tasks runs to done through promotions and claims driven by the
//! workers alone. Every gateway here ticks every 60 s, so nothing below can
//! be the tick's doing. Build the binary first:
//! `cargo build -p kanban && cargo test -p kanban-server --test gateway_pipeline`.

use std::time::Duration;

use kanban_testkit::{Sandbox, wait_until};

/// Far below the 60 s tick, far above what the machine needs.
const LIMIT: Duration = Duration::from_secs(20);
const SLOW_TICK: &str = "  dispatch_interval_seconds: 60\n";

fn has_event(home: &Sandbox, task: &str, kind: &str) -> bool {
    home.task(task)["events"]
        .as_array()
        .is_some_and(|e| e.iter().any(|e| e["kind"] == kind))
}

#[test]
fn a_worker_dying_without_completing_is_judged_at_once_not_on_the_tick() {
    let home = Sandbox::new();
    // Dies a while after its spawn was recorded: no board change follows
    // the death, only the exit itself can wake the gateway.
    let w = home.script("dies.sh", "sleep 1\nexit 3");
    home.write_config(&home.config_with_worker("sh", &w, SLOW_TICK));
    let gw = home.gateway();
    let id = home.create("dies", &["--assignee", "sh"]);
    assert!(
        wait_until(LIMIT, || has_event(&home, &id, "spawned")),
        "not spawned\n{}",
        gw.log_text()
    );
    assert!(
        wait_until(LIMIT, || has_event(&home, &id, "crashed")),
        "the death of the worker of {id} was not judged without the tick: {}\n{}",
        home.task(&id),
        gw.log_text()
    );
}

#[test]
fn a_chain_of_three_runs_to_done_without_the_tick() {
    let home = Sandbox::new();
    let w = home.script(
        "done.sh",
        r#""$KANBAN" complete "$HERMES_KANBAN_TASK" --summary ok >/dev/null"#,
    );
    home.write_config(&home.config_with_worker("sh", &w, SLOW_TICK));
    let gw = home.gateway();
    let a = home.create("a", &["--assignee", "sh"]);
    let b = home.create("b", &["--assignee", "sh", "--parent", &a]);
    let c = home.create("c", &["--assignee", "sh", "--parent", &b]);
    let all_done = || [&a, &b, &c].iter().all(|t| home.status(t) == "done");
    assert!(
        wait_until(LIMIT, all_done),
        "chain not done: {} {} {}\n{}",
        home.status(&a),
        home.status(&b),
        home.status(&c),
        gw.log_text()
    );
    // Each ran once, after its parent was done.
    for t in [&a, &b, &c] {
        let spawns = home.task(t)["events"]
            .as_array()
            .map_or(0, |e| e.iter().filter(|e| e["kind"] == "spawned").count());
        assert_eq!(spawns, 1, "{t} spawned {spawns} times");
    }
}
