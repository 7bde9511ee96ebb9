//! A running gateway lets go of a board that left the catalogue: archived
//! or deleted by another host (PostgreSQL) or by the CLI (SQLite). It
//! closes the board (no outage reported, `/healthz` stays 200), stops
//! dispatching it, leaves its running workers alone (as it always did on
//! SQLite), and picks the board up again when it comes back. Black-box;
//! the PostgreSQL test runs against the test kit's real server.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use kanban_testkit::gateway::{GatewayChild, SETTLE_WAIT};
use kanban_testkit::{Sandbox, pid_alive, stderr, wait_for};
use serde_json::Value;

const ENV_DATABASE_URL: &str = "HERMES_KANBAN_DATABASE_URL";
/// What the gateway logs when it closes a board that left the catalogue.
const CLOSED_LINE: &str = "left the catalogue";
/// How long a task may take from ready to done (debug build, 2 cores).
const DONE_WAIT: Duration = Duration::from_secs(60);
/// How long a board that left the catalogue is watched for a dispatch
/// that must not happen.
const QUIET_WAIT: Duration = Duration::from_secs(3);
/// Interval of the `/healthz` samples.
const SAMPLE: Duration = Duration::from_millis(50);

/// A worker that completes its task at once.
const CODER: &str = "\"$K\" complete --summary done";

fn task_id(v: &Value) -> String {
    v["id"].as_str().expect("task id").to_string()
}

/// `/healthz` answers 200 with no fault, sampled for `how_long`.
fn assert_healthy_for(gw: &GatewayChild, how_long: Duration) {
    let end = Instant::now() + how_long;
    loop {
        let res = gw.request("GET", "/healthz", None);
        assert_eq!(res.status, 200, "/healthz: {}", res.body);
        let body = res.json();
        assert_eq!(body["unhealthy_boards"], serde_json::json!([]), "{body}");
        if Instant::now() >= end {
            return;
        }
        std::thread::sleep(SAMPLE);
    }
}

/// Wait until the gateway log says, `n` times in all, that it closed `slug`.
fn wait_closed(gw: &GatewayChild, slug: &str, n: usize) {
    let needle = format!("board '{slug}' {CLOSED_LINE}");
    let seen = wait_for(SETTLE_WAIT, || {
        (gw.log_text().matches(&needle).count() >= n).then_some(())
    });
    assert!(
        seen.is_some(),
        "the gateway did not close board '{slug}' ({n}):\n{}",
        gw.log_text()
    );
}

fn listed_boards(gw: &GatewayChild) -> Vec<String> {
    let body = gw.request("GET", "/api/v1/boards", None).json();
    body["boards"]
        .as_array()
        .unwrap_or_else(|| panic!("{body}"))
        .iter()
        .map(|b| b["slug"].as_str().unwrap().to_string())
        .collect()
}

/// Wait until `status` reads `want` (as printed by `show --json`).
fn wait_status(what: &str, want: &str, mut status: impl FnMut() -> Option<String>) {
    let got = wait_for(DONE_WAIT, || status().filter(|s| s == want));
    assert!(got.is_some(), "{what}: never {want} (last: {:?})", status());
}

fn no_outage_logged(gw: &GatewayChild) {
    let log = gw.log_text();
    for bad in ["unreachable", "pass on board", "unhealthy"] {
        assert!(!log.contains(bad), "the gateway logged {bad:?}:\n{log}");
    }
}

#[test]
fn postgres_a_board_archived_or_deleted_on_another_host_is_closed_then_picked_up_again() {
    let Some(pg) = kanban_testkit::postgres::cluster() else {
        return;
    };
    let db = pg.unique_database("kb_departed");
    let url = pg.url(&db);
    let host = |url: &str| {
        let mut b = Sandbox::new();
        b.env.insert(ENV_DATABASE_URL.into(), url.to_string());
        b
    };
    let (a, mut b) = (host(&url), host(&url));
    let init = b.run(&["init"]);
    assert!(init.status.success(), "{}", stderr(&init));
    b.profile("coder", CODER);
    // Off at first: the task made before the archive must wait.
    b.kanban_config("  dispatch_in_gateway: false\n  dispatch_interval_seconds: 1\n");
    a.ok(&["boards", "create", "shared"]);
    let before = task_id(&a.json(&[
        "--board",
        "shared",
        "create",
        "before",
        "--assignee",
        "coder",
        "--json",
    ]));
    let gw = b.gateway();
    assert!(listed_boards(&gw).contains(&"shared".to_string()));
    let mut sql = pg.client(&db);
    let status_of = |sql: &mut postgres::Client, id: &str| -> Option<String> {
        sql.query_opt(
            "SELECT status FROM kanban_shared.tasks WHERE id = $1",
            &[&id],
        )
        .ok()
        .flatten()
        .map(|r| r.get(0))
    };

    // Archived on A: B closes it without an outage and does not dispatch
    // it, even with dispatch on.
    a.ok(&["boards", "rm", "shared"]);
    wait_closed(&gw, "shared", 1);
    b.kanban_config("  dispatch_in_gateway: true\n  dispatch_interval_seconds: 1\n");
    assert_healthy_for(&gw, QUIET_WAIT);
    assert_eq!(status_of(&mut sql, &before).as_deref(), Some("ready"));
    assert!(!listed_boards(&gw).contains(&"shared".to_string()));

    // Restored on A: B picks it up again and dispatches its tasks.
    let back = a.ok(&["boards", "create", "shared"]);
    assert!(back.contains("restored"), "{back}");
    let after = task_id(&a.json(&[
        "--board",
        "shared",
        "create",
        "after",
        "--assignee",
        "coder",
        "--json",
    ]));
    for id in [&before, &after] {
        wait_status(id, "done", || status_of(&mut sql, id));
    }

    // Deleted on A once its workers are gone (a worker still finishing
    // would reach the board, as any verb does, and could make it anew):
    // closed again, and never reported as an outage.
    let idle = wait_for(DONE_WAIT, || children(gw.pid).is_empty().then_some(()));
    assert!(
        idle.is_some(),
        "workers still running: {:?}",
        children(gw.pid)
    );
    a.ok(&["boards", "delete", "shared"]);
    assert_healthy_for(&gw, QUIET_WAIT);
    wait_closed(&gw, "shared", 2);
    assert!(!listed_boards(&gw).contains(&"shared".to_string()));
    // The gateway carries on with the boards it still has.
    let other = task_id(&a.json(&["create", "on default", "--assignee", "coder", "--json"]));
    wait_status(&other, "done", || {
        b.json(&["show", &other, "--json"])["task"]["status"]
            .as_str()
            .map(str::to_string)
    });
    no_outage_logged(&gw);
}

/// The gateway's workers (their wrappers).
fn children(pid: u32) -> Vec<i64> {
    kanban_testkit::process::gateway_workers(pid)
}

/// The SQLite files the process `pid` holds open under `dir`.
fn open_files_under(pid: u32, dir: &Path) -> Vec<PathBuf> {
    let Ok(rd) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return Vec::new();
    };
    rd.filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .filter(|p| p.starts_with(dir) && p.to_string_lossy().contains("kanban.db"))
        .collect()
}

fn sqlite_status(db: &Path, id: &str) -> Option<String> {
    let c = rusqlite::Connection::open(db).ok()?;
    c.query_row("SELECT status FROM tasks WHERE id = ?1", [id], |r| r.get(0))
        .ok()
}

#[test]
fn sqlite_a_board_archived_by_the_cli_is_closed_and_its_workers_left_alone() {
    let mut b = Sandbox::new();
    b.profile("coder", CODER);
    // Holds the board's one slot until told to go.
    b.profile(
        "sleeper",
        "echo $$ > \"$OUT/sleeper.pid\"\nwhile [ ! -f \"$OUT/release\" ]; do sleep 0.1; done",
    );
    b.kanban_config("  dispatch_interval_seconds: 1\n  profile_limits: {sleeper: 1}\n");
    b.ok(&["boards", "create", "proj"]);
    let gw = b.gateway();
    let first = task_id(&b.json(&[
        "--board",
        "proj",
        "create",
        "first",
        "--assignee",
        "sleeper",
        "--json",
    ]));
    let second = task_id(&b.json(&[
        "--board",
        "proj",
        "create",
        "second",
        "--assignee",
        "sleeper",
        "--json",
    ]));
    let worker: i32 = wait_for(SETTLE_WAIT, || {
        std::fs::read_to_string(b.out("sleeper.pid"))
            .ok()?
            .trim()
            .parse()
            .ok()
    })
    .expect("the first worker started");
    let show = |id: &str| b.json(&["--board", "proj", "show", id, "--json"]);
    assert_eq!(show(&first)["task"]["status"], "running");
    assert_eq!(show(&second)["task"]["status"], "ready");

    // Archived by the CLI under the running gateway.
    let rm = b.json(&["boards", "rm", "proj", "--json"]);
    let moved = PathBuf::from(rm["new_path"].as_str().expect("archived path"));
    wait_closed(&gw, "proj", 1);
    assert!(
        pid_alive(worker),
        "the worker of the archived board was left alone"
    );
    // (The notifier lets go of its own connection on its next round.)
    let closed = wait_for(SETTLE_WAIT, || {
        open_files_under(gw.pid, &moved).is_empty().then_some(())
    });
    assert!(
        closed.is_some(),
        "the gateway still holds the archived board open: {:?}",
        open_files_under(gw.pid, &moved)
    );
    // Its slot frees up: a gateway still dispatching the board would start
    // the second task now.
    std::fs::write(b.out("release"), "").unwrap();
    assert!(
        wait_for(SETTLE_WAIT, || (!pid_alive(worker)).then_some(())).is_some(),
        "the worker ended"
    );
    assert_healthy_for(&gw, QUIET_WAIT);
    let db = moved.join("kanban.db");
    assert_eq!(sqlite_status(&db, &second).as_deref(), Some("ready"));
    assert!(!listed_boards(&gw).contains(&"proj".to_string()));

    // A board made again under that name is the new one, dispatched.
    b.ok(&["boards", "create", "proj"]);
    let fresh = task_id(&b.json(&[
        "--board",
        "proj",
        "create",
        "fresh",
        "--assignee",
        "coder",
        "--json",
    ]));
    wait_status(&fresh, "done", || {
        show(&fresh)["task"]["status"].as_str().map(str::to_string)
    });
    assert_eq!(sqlite_status(&db, &second).as_deref(), Some("ready"));
    no_outage_logged(&gw);
}
