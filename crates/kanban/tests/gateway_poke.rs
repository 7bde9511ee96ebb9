//! The poke (issue 14 item 1): after a commit, our own processes send a
//! datagram to the gateway's socket beside the board
//! (`kanban.db-gateway.sock`), and the gateway's watcher wakes on it.
//!
//! To show the poke alone wakes it, the gateway runs with the internal
//! `KANBAN_INTERNAL_WAKE_ON_POKES_ONLY` (no file watch, the fallback poll
//! an hour) and an hour between ticks: a task made by a `kanban create`
//! process is then picked up only if that process poked. Black-box: the
//! real binary, a real gateway and a real worker; no timing is asserted
//! (the waits below only bound a hang).

use std::time::Duration;

use kanban_testkit::{Sandbox, wait_until};

/// A worker that completes its task at once.
const COMPLETE_NOW: &str = r#""$KANBAN" complete "$TASK" --summary ok >/dev/null"#;
/// The gateway's wake on pokes only.
const POKES_ONLY: (&str, &str) = ("KANBAN_INTERNAL_WAKE_ON_POKES_ONLY", "1");
/// No tick during the test: only a wake-up can start a pass.
const NO_TICK: &str = "  dispatch_interval_seconds: 3600\n";
/// How long a task may take from ready to done (debug build, loaded
/// machine); far below the tick and the fallback poll.
const DONE_WAIT: Duration = Duration::from_secs(60);

fn event_kinds(home: &Sandbox, id: &str) -> Vec<String> {
    home.task(id)["events"]
        .as_array()
        .expect("events")
        .iter()
        .filter_map(|e| e["kind"].as_str().map(str::to_string))
        .collect()
}

fn wait_done(home: &Sandbox, id: &str) {
    assert!(
        wait_until(DONE_WAIT, || home.status(id) == "done"),
        "task {id} was not picked up: status {}, events {:?}",
        home.status(id),
        event_kinds(home, id)
    );
}

#[test]
fn a_cli_created_task_wakes_a_gateway_without_file_watch_through_the_poke() {
    let home = Sandbox::new();
    let w = home.traced_worker("w", COMPLETE_NOW);
    home.write_config(&home.config_with_worker("w", &w, NO_TICK));
    // Picked up by the gateway's start-up pass (its one tick).
    let first = home.create("before the gateway", &["--assignee", "w"]);
    let _gw = home.gateway_with(&[POKES_ONLY], &[]);
    let socket = home.root().join("kanban.db-gateway.sock");
    wait_done(&home, &first);
    assert!(
        socket.exists(),
        "the gateway listens at {}",
        socket.display()
    );

    // No tick, no file watch, no poll for an hour: only the pokes of the
    // `kanban create` processes can wake the gateway now.
    for i in 0..3 {
        let id = home.create(&format!("poked {i}"), &["--assignee", "w"]);
        wait_done(&home, &id);
        let kinds = event_kinds(&home, &id);
        let at = |k: &str| {
            kinds
                .iter()
                .position(|e| e == k)
                .unwrap_or_else(|| panic!("no {k} event in {kinds:?}"))
        };
        assert!(at("created") < at("claimed"), "{kinds:?}");
        assert!(at("claimed") < at("spawned"), "{kinds:?}");
        // A worker this quick may commit its `complete` before the gateway
        // records the launch (`spawned` then follows `completed`; the store
        // allows it on purpose): only the claim must come first.
        assert!(at("claimed") < at("completed"), "{kinds:?}");
    }
}

/// A socket file left by a gateway killed with SIGKILL does not stop the
/// next one from listening, and commands do not fail on it.
#[test]
fn a_stale_socket_is_replaced_by_the_next_gateway() {
    let home = Sandbox::new();
    let w = home.traced_worker("w", COMPLETE_NOW);
    home.write_config(&home.config_with_worker("w", &w, NO_TICK));
    let socket = home.root().join("kanban.db-gateway.sock");
    {
        let mut gw = home.gateway_with(&[POKES_ONLY], &[]);
        assert!(
            wait_until(DONE_WAIT, || socket.exists()),
            "the gateway binds {}",
            socket.display()
        );
        gw.kill9();
    }
    assert!(socket.exists(), "SIGKILL leaves the file behind");
    // A command writing to the board pokes the dead socket: no error.
    let before = home.create("while no gateway runs", &["--assignee", "w"]);
    let _gw = home.gateway_with(&[POKES_ONLY], &[]);
    wait_done(&home, &before);
    let id = home.create("after the restart", &["--assignee", "w"]);
    wait_done(&home, &id);
}
