//! Issue 9 item 1: DNS rebinding. A gateway without a token serves only
//! requests whose `Host` is a loopback name/address or a configured
//! allowed host (`--allowed-host`, `kanban.gateway.allowed_hosts`); any
//! other `Host` gets a JSON 403 on every route and the WebSocket.

use kanban_testkit::Sandbox;
use kanban_testkit::{Response, http};
use serde_json::{Value, json};

fn get(port: u16, path: &str, host: &str) -> Response {
    http(port, "GET", path, &[("Host", host)], None)
}

fn create(port: u16, host: &str) -> Response {
    let origin = format!("http://{host}");
    http(
        port,
        "POST",
        "/api/v1/tasks",
        &[("Host", host), ("Origin", &origin)],
        Some(&json!({"title": "x", "assignee": "lane"})),
    )
}

fn websocket(port: u16, host: &str) -> Response {
    http(
        port,
        "GET",
        "/api/v1/events",
        &[
            ("Host", host),
            ("Upgrade", "websocket"),
            ("Connection", "Upgrade"),
            ("Sec-WebSocket-Version", "13"),
            ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
        ],
        None,
    )
}

fn assert_refused(r: &Response, what: &str) {
    assert_eq!(r.status, 403, "{what}: {}", r.body);
    let v: Value = r.json();
    assert_eq!(v["error"], "forbidden", "{what}: {v}");
    assert!(
        v["detail"].as_str().unwrap_or_default().contains("Host"),
        "{what}: {v}"
    );
}

fn task_count(board: &Sandbox) -> usize {
    board.json(&["list", "--json"]).as_array().unwrap().len()
}

#[test]
fn a_foreign_host_is_refused_on_every_route_and_the_websocket() {
    let board = Sandbox::new();
    let gw = board.gateway();
    let evil = format!("evil.example:{}", gw.port);
    // The curl of the issue: a rebinding page posting to the API.
    assert_refused(&create(gw.port, &evil), "POST /api/v1/tasks");
    assert_eq!(task_count(&board), 0, "the refused create wrote nothing");
    for path in [
        "/api/v1/board",
        "/api/plugins/kanban/board",
        "/api/v1/openapi.json",
        "/healthz",
        "/metrics",
        "/",
        "/index.html",
    ] {
        assert_refused(&get(gw.port, path, &evil), path);
    }
    assert_refused(&websocket(gw.port, &evil), "WebSocket /api/v1/events");
    // A loopback name with a foreign suffix is foreign too.
    let sneaky = format!("localhost.evil.example:{}", gw.port);
    assert_refused(&get(gw.port, "/api/v1/board", &sneaky), "localhost.evil");
    let sneaky = format!("127.0.0.1.nip.io:{}", gw.port);
    assert_refused(&get(gw.port, "/api/v1/board", &sneaky), "127.0.0.1.nip.io");
}

#[test]
fn loopback_hosts_are_served() {
    let board = Sandbox::new();
    let gw = board.gateway();
    let p = gw.port;
    for host in [
        format!("127.0.0.1:{p}"),
        format!("localhost:{p}"),
        format!("LocalHost:{p}"),
        format!("127.3.4.5:{p}"),
        format!("[::1]:{p}"),
        "localhost".to_string(),
        "127.0.0.1".to_string(),
    ] {
        let r = get(p, "/api/v1/board", &host);
        assert_eq!(r.status, 200, "{host}: {}", r.body);
        let r = create(p, &host);
        assert_eq!(r.status, 200, "{host}: {}", r.body);
    }
    assert_eq!(get(p, "/", &format!("localhost:{p}")).status, 200);
    // The upgrade itself is accepted (101) for a loopback Host.
    assert_eq!(websocket(p, &format!("127.0.0.1:{p}")).status, 101);
}

#[test]
fn allowed_hosts_from_the_flag_and_the_config_are_served() {
    let board = Sandbox::new();
    std::fs::write(
        board.path("config.yaml"),
        "kanban:\n  gateway:\n    allowed_hosts: [board.internal]\n",
    )
    .unwrap();
    // `gateway start` forwards every --allowed-host to the background run.
    board.ok(&[
        "gateway",
        "start",
        "--port",
        "0",
        "--allowed-host",
        "kanban.test",
        "--allowed-host",
        "pinned.test:8080",
    ]);
    let status = board.json(&["gateway", "status", "--json"]);
    let port = status["port"].as_u64().unwrap() as u16;
    let served = |host: &str| get(port, "/api/v1/board", host);
    let check = || {
        for host in [
            format!("kanban.test:{port}"),
            "kanban.test".to_string(),
            format!("KANBAN.test:{port}"),
            format!("board.internal:{port}"),
            "pinned.test:8080".to_string(),
        ] {
            let r = served(&host);
            assert_eq!(r.status, 200, "{host}: {}", r.body);
        }
        assert_eq!(create(port, &format!("kanban.test:{port}")).status, 200);
        for host in [
            format!("evil.example:{port}"),
            "pinned.test:9999".to_string(),
            format!("kanban.test.evil.example:{port}"),
        ] {
            assert_refused(&served(&host), &host);
        }
    };
    let result = std::panic::catch_unwind(check);
    board.ok(&["gateway", "stop"]);
    if let Err(e) = result {
        std::panic::resume_unwind(e);
    }
}

#[test]
fn a_token_replaces_the_host_check() {
    let board = Sandbox::new();
    let gw = board.gateway_with(&[], &["--token", "s3cret"]);
    let evil = format!("evil.example:{}", gw.port);
    let r = http(
        gw.port,
        "GET",
        "/api/v1/board",
        &[("Host", &evil), ("Authorization", "Bearer s3cret")],
        None,
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(get(gw.port, "/api/v1/board", &evil).status, 401);
}
