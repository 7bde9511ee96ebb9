//! Issue 9 item 15: a gateway checks every board at start and on open.
//! A broken default board refuses the start (message naming the file,
//! non-zero exit); a broken named board makes `/healthz` answer 503 with
//! a body naming it, and is logged once.

use std::time::Duration;

use kanban_testkit::gateway::SETTLE_WAIT;
use kanban_testkit::{Sandbox, stderr};
use kanban_testkit::{http, wait_for};

const NOT_SQLITE: &[u8] = b"this is not a SQLite database, just some text\n";

#[test]
fn a_broken_default_board_refuses_to_start() {
    let board = Sandbox::new();
    let db = board.path("kanban.db");
    std::fs::write(&db, NOT_SQLITE).unwrap();
    let db_text = db.display().to_string();

    let err = match board.try_gateway(&[], &[]) {
        Ok(gw) => panic!("started on a non-SQLite kanban.db at {}", gw.url),
        Err(e) => e,
    };
    assert!(err.contains(&db_text), "run: message names the file: {err}");
    assert!(!err.contains("exit status: 0"), "run: non-zero exit: {err}");

    let out = board.run(&["gateway", "start", "--port", "0"]);
    assert_ne!(out.status.code(), Some(0), "start must fail");
    assert!(
        stderr(&out).contains(&db_text),
        "start: message names the file: {}",
        stderr(&out)
    );
    assert_eq!(board.run(&["gateway", "status"]).status.code(), Some(1));
    assert_eq!(std::fs::read(&db).unwrap(), NOT_SQLITE, "file untouched");
}

#[test]
fn a_broken_named_board_is_unhealthy_and_logged_once() {
    let board = Sandbox::new();
    board.ok(&["boards", "create", "side"]);
    let side_db = board.path("kanban/boards/side/kanban.db");
    assert!(side_db.exists(), "boards create made {}", side_db.display());
    std::fs::write(&side_db, NOT_SQLITE).unwrap();

    board.ok(&["gateway", "start", "--port", "0"]);
    let port = board.json(&["gateway", "status", "--json"])["port"]
        .as_u64()
        .unwrap() as u16;
    let host = format!("127.0.0.1:{port}");
    let get = |path: &str| http(port, "GET", path, &[("Host", &host)], None);
    let check = || {
        let health = get("/healthz");
        assert_eq!(health.status, 503, "{}", health.body);
        let v = health.json();
        assert_eq!(v["status"], "degraded", "{v}");
        let broken = v["unhealthy_boards"].as_array().expect("list of boards");
        assert_eq!(broken.len(), 1, "{v}");
        assert_eq!(broken[0]["board"], "side", "{v}");
        assert_eq!(broken[0]["db"], side_db.display().to_string(), "{v}");
        // The default board is served.
        assert_eq!(get("/api/v1/board").status, 200);
        // Requests for the broken board fail (and re-check it) ...
        assert!(get("/api/v1/board?board=side").status >= 500);
        // ... but it is logged once, however often it is opened.
        std::thread::sleep(Duration::from_millis(2500));
        assert!(get("/api/v1/board?board=side").status >= 500);
        let log = std::fs::read_to_string(board.path("kanban/logs/gateway.log")).unwrap();
        let lines: Vec<&str> = log
            .lines()
            .filter(|l| l.contains("side") && l.contains("unhealthy"))
            .collect();
        assert_eq!(lines.len(), 1, "logged once:\n{log}");
        assert!(lines[0].contains(&side_db.display().to_string()), "{log}");

        // Repaired (here: removed, so it is created afresh): healthy again.
        std::fs::remove_file(&side_db).unwrap();
        let healthy = wait_for(SETTLE_WAIT, || {
            (get("/healthz").status == 200).then_some(())
        });
        assert!(healthy.is_some(), "{}", get("/healthz").body);
    };
    let result = std::panic::catch_unwind(check);
    board.ok(&["gateway", "stop"]);
    if let Err(e) = result {
        std::panic::resume_unwind(e);
    }
}
