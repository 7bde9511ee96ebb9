//! The gateway on a PostgreSQL board (issue 11 items 1, 4 and 8): it picks
//! up tasks other processes create, its workers complete them through the
//! database, the WebSocket feed and the dashboard's REST board show them,
//! the password never shows; and it rides out a database restart (or a
//! few seconds without a database): `/healthz` reports the outage, every
//! task still ends done exactly once. Black-box, against the test kit's
//! real PostgreSQL.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use kanban_testkit::gateway::{GatewayChild, SETTLE_WAIT};
use kanban_testkit::postgres::{Shutdown, TestCluster};
use kanban_testkit::{Sandbox, stderr, wait_for};
use serde_json::Value;

/// A password the server never asks for (trust auth on the test socket):
/// it must never appear in anything kanban prints, writes or passes in argv.
const SECRET: &str = "gw-s3cret-pw";
const ENV_DATABASE_URL: &str = "HERMES_KANBAN_DATABASE_URL";
/// How long a task may take from creation to done (debug build, 2 cores).
const DONE_WAIT: Duration = Duration::from_secs(60);
/// How long the database stays down in the outage test.
const OUTAGE: Duration = Duration::from_secs(4);
/// How long a gateway may take to notice the database is back.
const RECOVERY_WAIT: Duration = Duration::from_secs(30);

/// A fresh database of `pg`, as a URL carrying [`SECRET`].
fn secret_url(pg: &TestCluster, prefix: &str) -> String {
    let url = pg.url(&pg.unique_database(prefix));
    let (scheme, rest) = url.split_once("://").expect("URL");
    let (user, host) = rest.split_once('@').expect("user@host");
    format!("{scheme}://{user}:{SECRET}@{host}")
}

/// A sandbox whose boards live in the database at `url`, initialised,
/// with a `coder` profile whose worker records its own and its parent's
/// argv, then completes its task (retrying while the database is away).
fn board_on(url: &str, worker_sleep: &str) -> Sandbox {
    let mut b = Sandbox::new();
    b.env.insert(ENV_DATABASE_URL.into(), url.to_string());
    b.env.insert("RUST_BACKTRACE".into(), "1".into());
    let init = b.run(&["init"]);
    assert!(init.status.success(), "{}", stderr(&init));
    b.kanban_config("  dispatch_interval_seconds: 1\n");
    b.profile(
        "coder",
        &format!(
            "[ -n \"$HERMES_KANBAN_DATABASE_URL\" ] || exit 8\n\
             T=\"$HERMES_KANBAN_TASK\"\n\
             {{ tr '\\0' ' ' < /proc/$$/cmdline; echo; tr '\\0' ' ' < /proc/$PPID/cmdline; echo; }} \
               >> \"$OUT/argv\"\n\
             echo \"$T\" >> \"$OUT/started\"\n\
             sleep {worker_sleep}\n\
             i=0\n\
             while [ $i -lt 60 ]; do\n\
               \"$K\" complete --summary \"worker on postgres\" && exit 0\n\
               \"$K\" show \"$T\" --json 2>/dev/null | grep -q '\"status\": *\"done\"' && exit 0\n\
               i=$((i+1)); sleep 0.5\n\
             done\n\
             exit 7\n"
        ),
    );
    b
}

fn task_id(created: &str) -> String {
    created
        .split_whitespace()
        .find(|w| w.starts_with("t_"))
        .unwrap_or_else(|| panic!("no task id in {created:?}"))
        .trim_end_matches(':')
        .to_string()
}

/// A minimal blocking WebSocket client of the event feed: the upgrade,
/// then the server's (unmasked, unfragmented) text frames.
struct Feed {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl Feed {
    fn connect(port: u16, path: &str) -> Feed {
        let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
        let req = format!(
            "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n\
             Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
             Sec-WebSocket-Version: 13\r\n\r\n"
        );
        stream.write_all(req.as_bytes()).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        let mut feed = Feed {
            stream,
            buf: Vec::new(),
        };
        let deadline = Instant::now() + SETTLE_WAIT;
        let head_end = loop {
            if let Some(i) = feed.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            assert!(Instant::now() < deadline, "no upgrade answer");
            feed.fill();
        };
        let head = String::from_utf8_lossy(&feed.buf[..head_end]).into_owned();
        assert!(head.starts_with("HTTP/1.1 101"), "{head}");
        feed.buf.drain(..head_end);
        feed
    }

    fn fill(&mut self) -> bool {
        let mut chunk = [0u8; 16384];
        match self.stream.read(&mut chunk) {
            Ok(0) => false,
            Ok(n) => {
                self.buf.extend_from_slice(&chunk[..n]);
                true
            }
            Err(_) => true,
        }
    }

    /// One complete frame from the buffer: (opcode, payload).
    fn frame(&mut self) -> Option<(u8, Vec<u8>)> {
        let b = &self.buf;
        if b.len() < 2 {
            return None;
        }
        let (mut len, mut at) = (usize::from(b[1] & 0x7f), 2);
        if len == 126 {
            len = usize::from(u16::from_be_bytes(b.get(2..4)?.try_into().ok()?));
            at = 4;
        } else if len == 127 {
            len = u64::from_be_bytes(b.get(2..10)?.try_into().ok()?) as usize;
            at = 10;
        }
        let payload = b.get(at..at + len)?.to_vec();
        let opcode = b[0] & 0x0f;
        self.buf.drain(..at + len);
        Some((opcode, payload))
    }

    /// The next batch's events, or `None` when nothing came within `wait`.
    fn next_batch(&mut self, wait: Duration) -> Option<Vec<Value>> {
        let deadline = Instant::now() + wait;
        loop {
            while let Some((opcode, payload)) = self.frame() {
                match opcode {
                    1 => {
                        let v: Value = serde_json::from_slice(&payload).unwrap();
                        let events = v["events"].as_array().cloned().unwrap_or_default();
                        assert_eq!(v["cursor"], events.last().unwrap()["id"], "{v}");
                        return Some(events);
                    }
                    8 => panic!("the gateway closed the event feed"),
                    _ => {}
                }
            }
            if Instant::now() > deadline || !self.fill() {
                return None;
            }
        }
    }
}

fn ids(events: &[Value]) -> Vec<i64> {
    events.iter().map(|e| e["id"].as_i64().unwrap()).collect()
}

/// Every event of `tasks`, in id order, as the REST task view reads them
/// from the store.
fn board_events(gw: &GatewayChild, tasks: &[String]) -> Vec<Value> {
    let mut all: Vec<Value> = tasks
        .iter()
        .flat_map(|t| {
            let r = gw.request("GET", &format!("/api/v1/tasks/{t}"), None);
            assert_eq!(r.status, 200, "{}", r.body);
            r.json()["events"].as_array().cloned().unwrap_or_default()
        })
        .collect();
    all.sort_by_key(|e| e["id"].as_i64());
    all
}

/// Read the feed until it has delivered `expected` (the store's events):
/// same ids, same order, nothing skipped, nothing extra.
fn assert_feed_matches(feed: &mut Feed, got: &mut Vec<Value>, expected: &[Value]) {
    let want = ids(expected);
    let deadline = Instant::now() + SETTLE_WAIT;
    while got.len() < want.len() && Instant::now() < deadline {
        if let Some(batch) = feed.next_batch(Duration::from_millis(500)) {
            got.extend(batch);
        }
    }
    assert_eq!(ids(got), want, "the feed delivers every event, in order");
    for (g, e) in got.iter().zip(expected) {
        assert_eq!(g["kind"], e["kind"], "{g} vs {e}");
        assert_eq!(g["task_id"], e["task_id"], "{g} vs {e}");
    }
}

fn assert_no_secret(what: &str, text: &str) {
    assert!(!text.contains(SECRET), "password in {what}: {text}");
}

/// Nothing the gateway or its workers wrote or were started with holds
/// the password.
fn assert_nothing_leaked(b: &Sandbox, gw: &GatewayChild) {
    assert_no_secret("the gateway's output", &gw.log_text());
    let state = std::fs::read_to_string(b.path("kanban/gateway.json")).unwrap();
    assert_no_secret("gateway.json", &state);
    let argv = std::fs::read_to_string(b.out("argv")).unwrap();
    assert!(argv.contains("coder.sh"), "{argv}");
    assert_no_secret("a worker's argv", &argv);
    for entry in walk(b.root()) {
        if let Ok(text) = std::fs::read_to_string(&entry) {
            assert_no_secret(&entry.display().to_string(), &text);
        }
    }
}

/// Every file under `dir` but the test's own config (which holds the URL).
fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else if p.file_name().is_some_and(|n| n != "config.yaml") {
            out.push(p);
        }
    }
    out
}

/// SIGTERM stops the gateway cleanly: exit 0, no panic on the way (a
/// PostgreSQL connection closed on an async thread panics).
fn assert_clean_stop(gw: &mut GatewayChild) {
    let (status, _) = gw
        .sigterm(Duration::from_secs(10))
        .expect("the gateway stops on SIGTERM");
    assert!(status.success(), "{status}: {}", gw.log_text());
    assert!(!gw.log_text().contains("panicked"), "{}", gw.log_text());
}

fn wait_done(b: &Sandbox, tasks: &[String], within: Duration) {
    let deadline = Instant::now() + within;
    for t in tasks {
        while b.status(t) != "done" {
            assert!(
                Instant::now() < deadline,
                "{t} never completed: {}",
                b.task(t)
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

#[test]
fn a_gateway_on_postgres_runs_a_task_created_elsewhere_and_feeds_its_events() {
    let Some(pg) = kanban_testkit::postgres::cluster() else {
        return;
    };
    let url = secret_url(pg, "kb_gw");
    let b = board_on(&url, "0");
    let mut gw = b.gateway();
    let mut feed = Feed::connect(gw.port, "/api/v1/events?since=0");

    let t = task_id(&b.ok(&["create", "Work", "--assignee", "coder"]));
    wait_done(&b, std::slice::from_ref(&t), DONE_WAIT);
    let shown = b.task(&t);
    assert_eq!(shown["runs"].as_array().map(Vec::len), Some(1), "{shown}");
    assert_eq!(shown["runs"][0]["summary"], "worker on postgres", "{shown}");

    // The worker exits after its completion: wait until the run is closed
    // so that every event of the task is in the store.
    let settled = wait_for(SETTLE_WAIT, || {
        let events = board_events(&gw, std::slice::from_ref(&t));
        let kinds: Vec<&str> = events.iter().filter_map(|e| e["kind"].as_str()).collect();
        kinds.contains(&"completed").then_some(events)
    })
    .expect("a completed event");
    let mut got = Vec::new();
    assert_feed_matches(&mut feed, &mut got, &settled);

    let board = gw.request("GET", "/api/v1/board", None);
    assert_eq!(board.status, 200, "{}", board.body);
    let listed: Vec<String> = board.json()["columns"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|c| c["tasks"].as_array().cloned().unwrap_or_default())
        .filter_map(|card| card["id"].as_str().map(str::to_string))
        .collect();
    assert_eq!(listed, vec![t.clone()], "{}", board.body);

    let health = gw.request("GET", "/healthz", None);
    assert_eq!(health.status, 200, "{}", health.body);
    let metrics = gw.request("GET", "/metrics", None);
    assert!(
        metrics
            .body
            .contains(",board=\"default\",status=\"done\"} 1"),
        "{}",
        metrics.body
    );
    assert_nothing_leaked(&b, &gw);
    assert_clean_stop(&mut gw);
}

/// `/healthz` while the database is away: not 200, JSON naming the
/// board's database problem, no password.
fn assert_reports_outage(gw: &GatewayChild) {
    let seen = wait_for(SETTLE_WAIT, || {
        let h = gw.request("GET", "/healthz", None);
        (h.status != 200).then_some(h)
    })
    .expect("/healthz reports the outage");
    assert_eq!(seen.status, 503, "{}", seen.body);
    assert_no_secret("/healthz", &seen.body);
    let v = seen.json();
    assert_eq!(v["status"], "degraded", "{v}");
    let fault = &v["unhealthy_boards"][0];
    assert_eq!(fault["board"], "default", "{v}");
    assert!(
        fault["db"]
            .as_str()
            .unwrap()
            .starts_with("postgresql://postgres:***@"),
        "{v}"
    );
    assert!(fault["error"].as_str().unwrap().contains("database"), "{v}");
}

fn assert_recovers(gw: &GatewayChild) {
    let ok = wait_for(RECOVERY_WAIT, || {
        let h = gw.request("GET", "/healthz", None);
        (h.status == 200).then_some(())
    });
    assert!(ok.is_some(), "{}", gw.request("GET", "/healthz", None).body);
}

/// Create `n` tasks, one every `every`.
fn create_tasks(b: &Sandbox, n: usize, every: Duration, tag: &str) -> Vec<String> {
    (0..n)
        .map(|i| {
            let t = task_id(&b.ok(&["create", &format!("{tag} {i}"), "--assignee", "coder"]));
            std::thread::sleep(every);
            t
        })
        .collect()
}

/// Every task done, with exactly one run, completed; every worker started
/// once.
fn assert_done_exactly_once(b: &Sandbox, tasks: &[String]) {
    wait_done(b, tasks, DONE_WAIT);
    let started = std::fs::read_to_string(b.out("started")).unwrap_or_default();
    for t in tasks {
        let shown = b.task(t);
        let runs = shown["runs"].as_array().unwrap();
        assert_eq!(runs.len(), 1, "one run of {t}: {shown}");
        assert_eq!(runs[0]["outcome"], "completed", "{shown}");
        let starts = started.lines().filter(|l| l == t).count();
        assert_eq!(starts, 1, "{t} ran once: {started}");
    }
}

#[test]
fn the_gateway_rides_out_a_database_restart_and_an_outage() {
    let Some(pg) = kanban_testkit::postgres::private_cluster() else {
        return;
    };
    let url = secret_url(&pg, "kb_restart");
    let b = board_on(&url, "0.3");
    let mut gw = b.gateway();
    let mut feed = Feed::connect(gw.port, "/api/v1/events?since=0");
    let mut tasks = create_tasks(&b, 4, Duration::from_millis(150), "before");

    // A restart while workers run.
    pg.restart();
    tasks.extend(create_tasks(
        &b,
        4,
        Duration::from_millis(150),
        "after restart",
    ));
    assert_recovers(&gw);

    // A few seconds without any database.
    tasks.extend(create_tasks(&b, 2, Duration::ZERO, "before outage"));
    pg.stop(Shutdown::Fast);
    assert_reports_outage(&gw);
    std::thread::sleep(OUTAGE);
    assert!(
        matches!(gw.child.try_wait(), Ok(None)),
        "the gateway keeps running without its database"
    );
    pg.start();
    assert_recovers(&gw);
    tasks.extend(create_tasks(&b, 3, Duration::ZERO, "after outage"));

    assert_done_exactly_once(&b, &tasks);
    let settled = wait_for(SETTLE_WAIT, || {
        let events = board_events(&gw, &tasks);
        let completed = events.iter().filter(|e| e["kind"] == "completed").count();
        (completed == tasks.len()).then_some(events)
    })
    .expect("every completion recorded");
    let mut got = Vec::new();
    assert_feed_matches(&mut feed, &mut got, &settled);
    assert_nothing_leaked(&b, &gw);
    assert_clean_stop(&mut gw);
}

#[test]
fn gateway_start_with_db_serves_the_postgres_board_without_the_password_in_argv() {
    let Some(pg) = kanban_testkit::postgres::cluster() else {
        return;
    };
    let url = secret_url(pg, "kb_start");
    let b = Sandbox::new();
    b.ok(&["--db", &url, "init"]);
    let t = task_id(&b.ok(&["--db", &url, "create", "Seen by the dashboard"]));
    let started = b.run(&["--db", &url, "gateway", "start", "--port", "0"]);
    assert!(started.status.success(), "{}", stderr(&started));
    let check = || {
        let status = b.json(&["--db", &url, "gateway", "status", "--json"]);
        let pid = status["pid"].as_u64().expect("pid");
        let argv = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap();
        assert_no_secret("the gateway's argv", &String::from_utf8_lossy(&argv));
        let port = status["port"].as_u64().unwrap() as u16;
        let host = format!("127.0.0.1:{port}");
        let board = kanban_testkit::http(port, "GET", "/api/v1/board", &[("Host", &host)], None);
        assert_eq!(board.status, 200, "{}", board.body);
        assert!(board.body.contains(&t), "{}", board.body);
    };
    let result = std::panic::catch_unwind(check);
    b.ok(&["--db", &url, "gateway", "stop"]);
    if let Err(e) = result {
        std::panic::resume_unwind(e);
    }
    let log = std::fs::read_to_string(b.path("kanban/logs/gateway.log")).unwrap();
    assert_no_secret("gateway.log", &log);
    assert!(!log.contains("panicked"), "{log}");
}

/// `kanban mcp` on a PostgreSQL board: its tools leave the async context
/// for the blocking store (whose client runs a runtime of its own).
#[test]
fn mcp_works_on_a_postgres_board() {
    let Some(pg) = kanban_testkit::postgres::cluster() else {
        return;
    };
    let url = secret_url(pg, "kb_mcp");
    let mut b = Sandbox::new();
    b.env.insert(ENV_DATABASE_URL.into(), url);
    b.ok(&["init"]);
    let t = task_id(&b.ok(&["create", "From the CLI", "--assignee", "coder"]));
    let mut cmd = b.std_cmd();
    cmd.arg("mcp");
    let mut c = kanban_testkit::mcp::McpClient::start(cmd);
    let created = c.call(
        "kanban_create",
        serde_json::json!({"title": "From MCP", "assignee": "coder"}),
    );
    let id = created.ok()["task_id"].as_str().unwrap().to_string();
    let list = c.call("kanban_list", serde_json::json!({})).body;
    assert_eq!(list["count"], 2, "{list}");
    assert_no_secret("an MCP reply", &list.to_string());
    c.finish();
    assert_eq!(b.status(&id), "ready");
    assert_eq!(b.status(&t), "ready");
}
