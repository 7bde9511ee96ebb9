//! Issue 9 items 13, 14 and 21: what the gateway publishes about itself.
//! - 13: a hot change of `dispatch_in_gateway` shows in `gateway status`,
//!   `gateway.json`, the create warnings and the start-up line, both ways.
//! - 14: `gateway status` succeeds only once `gateway.json` is current, so
//!   a `create` right after it warns correctly.
//! - 21: `gateway stop` returns only after the process has exited.

use std::process::Stdio;
use std::time::{Duration, Instant};

use kanban_testkit::gateway::SETTLE_WAIT;
use kanban_testkit::gateway::START_WAIT;
use kanban_testkit::{GatewayChild, wait_for};
use kanban_testkit::{Sandbox, stderr, stdout};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde_json::{Value, json};

const DISPATCH_OFF_WARNING: &str = "dispatcher is off";

fn set_dispatch(board: &Sandbox, on: bool) {
    // Write-then-rename: the gateway never reads a half-written file.
    let tmp = board.path("config.yaml.new");
    std::fs::write(&tmp, format!("kanban:\n  dispatch_in_gateway: {on}\n")).unwrap();
    std::fs::rename(tmp, board.path("config.yaml")).unwrap();
}

fn status_json(board: &Sandbox) -> Value {
    board.json(&["gateway", "status", "--json"])
}

fn gateway_json(board: &Sandbox) -> Value {
    let text = std::fs::read_to_string(board.path("kanban/gateway.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

/// The CLI's seed-001 warning on stderr for a ready, assigned task.
fn cli_create_warning(board: &Sandbox) -> String {
    let out = board.run(&["create", "job", "--assignee", "lane"]);
    assert!(out.status.success(), "{}", stderr(&out));
    stderr(&out)
}

fn api_create_warning(gw: &GatewayChild) -> Option<String> {
    let r = gw.request(
        "POST",
        "/api/v1/tasks",
        Some(&json!({"title": "job", "assignee": "lane"})),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    r.json()["warning"].as_str().map(str::to_string)
}

/// Wait until `gateway status --json` reports `dispatch == on`.
fn await_status(board: &Sandbox, on: bool) {
    let seen = wait_for(SETTLE_WAIT, || {
        (status_json(board)["dispatch"] == on).then_some(())
    });
    assert!(
        seen.is_some(),
        "gateway status never reported dispatch={on}: {}",
        status_json(board)
    );
}

fn assert_reports_off(board: &Sandbox, gw: &GatewayChild) {
    assert_eq!(status_json(board)["dispatch"], false);
    assert_eq!(gateway_json(board)["dispatch"], false);
    assert!(
        board.ok(&["gateway", "status"]).contains("dispatcher off"),
        "{}",
        board.ok(&["gateway", "status"])
    );
    let w = cli_create_warning(board);
    assert!(w.contains(DISPATCH_OFF_WARNING), "CLI create: {w:?}");
    let w = api_create_warning(gw).unwrap_or_default();
    assert!(w.contains("dispatch_in_gateway"), "API create: {w:?}");
}

fn assert_reports_on(board: &Sandbox, gw: &GatewayChild) {
    assert_eq!(status_json(board)["dispatch"], true);
    assert_eq!(gateway_json(board)["dispatch"], true);
    assert!(board.ok(&["gateway", "status"]).contains("dispatcher on"));
    let w = cli_create_warning(board);
    assert!(!w.contains(DISPATCH_OFF_WARNING), "CLI create: {w:?}");
    assert_eq!(api_create_warning(gw), None, "API create");
}

#[test]
fn a_hot_dispatch_change_is_reported_everywhere_both_ways() {
    let board = Sandbox::new();
    set_dispatch(&board, false);
    let gw = board.gateway();
    assert!(
        gw.banner.contains("dispatcher: off"),
        "start-up line while dispatch is off: {}",
        gw.banner
    );
    assert_reports_off(&board, &gw);

    set_dispatch(&board, true);
    await_status(&board, true);
    assert_reports_on(&board, &gw);

    set_dispatch(&board, false);
    await_status(&board, false);
    assert_reports_off(&board, &gw);
}

#[test]
fn the_start_up_line_and_status_follow_a_gateway_started_with_dispatch_on() {
    let board = Sandbox::new();
    let gw = board.gateway();
    assert!(gw.banner.contains("dispatcher: on"), "{}", gw.banner);
    assert_reports_on(&board, &gw);
    set_dispatch(&board, false);
    await_status(&board, false);
    assert_reports_off(&board, &gw);
}

/// Item 14: the first successful `gateway status` of a starting gateway
/// already implies its `gateway.json`; a `create` issued then warns.
#[test]
fn status_success_implies_a_current_gateway_json() {
    let board = Sandbox::new();
    set_dispatch(&board, false);
    for round in 0..8 {
        let mut child = board
            .std_cmd()
            .args(["gateway", "run", "--port", "0"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let pid = child.id();
        let deadline = Instant::now() + START_WAIT;
        let status = loop {
            let out = board.run(&["gateway", "status", "--json"]);
            if out.status.success() {
                break serde_json::from_str::<Value>(&stdout(&out)).unwrap();
            }
            assert!(Instant::now() < deadline, "round {round}: never running");
        };
        let warning = cli_create_warning(&board);
        let record = gateway_json(&board);
        let _ = kill(Pid::from_raw(pid as i32), Signal::SIGTERM);
        let _ = child.wait();
        assert_eq!(status["pid"], pid, "round {round}: {status}");
        assert_eq!(status["dispatch"], false, "round {round}: {status}");
        assert_eq!(record["pid"], pid, "round {round}: {record}");
        assert!(
            warning.contains(DISPATCH_OFF_WARNING),
            "round {round}: create right after status printed {warning:?}"
        );
    }
}

/// Item 21: when `gateway stop` returns, the process is gone.
#[test]
fn stop_returns_only_after_the_gateway_exited() {
    let board = Sandbox::new();
    // The gap is short on an idle machine: try a few times.
    for round in 0..12 {
        let mut gw = board.gateway();
        let out = board.run(&["gateway", "stop"]);
        let exited = gw.child.try_wait().unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
        assert!(stdout(&out).contains("stopped"), "{}", stdout(&out));
        assert!(
            exited.is_some(),
            "round {round}: `gateway stop` returned while pid {} still ran",
            gw.pid as i32
        );
    }
}

/// Item 21: a gateway that does not exit is reported, not called stopped.
#[test]
fn stop_reports_a_gateway_that_does_not_exit() {
    let board = Sandbox::new();
    let mut gw = board.gateway();
    let pid = Pid::from_raw(gw.pid as i32);
    kill(pid, Signal::SIGSTOP).unwrap();
    let t = Instant::now();
    let out = board.run(&["gateway", "stop"]);
    let waited = t.elapsed();
    kill(pid, Signal::SIGCONT).unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert!(!stdout(&out).contains("stopped"), "{}", stdout(&out));
    assert!(
        stderr(&out).contains("did not exit"),
        "clear message: {}",
        stderr(&out)
    );
    assert!(waited < Duration::from_secs(60), "bounded wait: {waited:?}");
    // Once it can run again it handles the SIGTERM it was sent.
    let exited = wait_for(SETTLE_WAIT, || gw.child.try_wait().unwrap());
    assert!(exited.is_some(), "the gateway exits after SIGCONT");
}
