//! Logs and attachments from any gateway (issue 11 item 6, ADR 0002): two
//! "hosts" (two roots that share no file, two host ids) work one board in
//! one PostgreSQL database. A worker on host A writes output and keeps an
//! artifact; an upload goes through host A's API. Host B's REST API (and
//! its `kanban log`) serves the worker's log, while the worker still runs
//! and after it ended, and the attachments' exact bytes. Black-box,
//! against the test kit's real PostgreSQL.

use std::io::{Read, Write};
use std::net::TcpStream;

use kanban_testkit::gateway::{GatewayChild, SETTLE_WAIT};
use kanban_testkit::{Sandbox, stderr, wait_for};
use serde_json::Value;

const ENV_DATABASE_URL: &str = "HERMES_KANBAN_DATABASE_URL";
const ENV_HOST_ID: &str = "KANBAN_HOST_ID";
/// The artifact the worker keeps (control bytes included).
const ARTIFACT: &str = "artifact bytes \u{1}\u{2} end";
/// How long the worker waits for the test's go-ahead at most.
const WORKER_HOLD_TENTHS: u32 = 600;

/// A root of its own on the board at `url`, as host `host` sees it.
fn host(url: &str, host: &str) -> Sandbox {
    let mut b = Sandbox::new();
    b.env.insert(ENV_DATABASE_URL.into(), url.to_string());
    b.env.insert(ENV_HOST_ID.into(), host.to_string());
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

/// The log as `gw` serves it, once it contains `needle`.
fn log_with(gw: &GatewayChild, task: &str, needle: &str) -> Value {
    wait_for(SETTLE_WAIT, || {
        let r = gw.request("GET", &format!("/api/v1/tasks/{task}/log"), None);
        assert_eq!(r.status, 200, "{}", r.body);
        let v = r.json();
        v["content"]
            .as_str()
            .is_some_and(|c| c.contains(needle))
            .then_some(v)
    })
    .unwrap_or_else(|| panic!("host B never served {needle:?} of {task}'s log"))
}

/// `POST /api/v1/tasks/{task}/attachments` with one multipart file.
fn upload(gw: &GatewayChild, task: &str, name: &str, content: &[u8]) -> Value {
    const BOUNDARY: &str = "kanban-test-boundary";
    let mut body = format!(
        "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{name}\"\r\n\
         Content-Type: application/octet-stream\r\n\r\n"
    )
    .into_bytes();
    body.extend_from_slice(content);
    body.extend_from_slice(format!("\r\n--{BOUNDARY}--\r\n").as_bytes());
    let mut stream = TcpStream::connect(("127.0.0.1", gw.port)).unwrap();
    let head = format!(
        "POST /api/v1/tasks/{task}/attachments HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\
         Content-Type: multipart/form-data; boundary={BOUNDARY}\r\nContent-Length: {len}\r\n\
         Connection: close\r\n\r\n",
        port = gw.port,
        len = body.len()
    );
    stream.write_all(head.as_bytes()).unwrap();
    stream.write_all(&body).unwrap();
    let mut raw = String::new();
    stream.read_to_string(&mut raw).unwrap();
    let (status, json) = raw.split_once("\r\n\r\n").expect("a response");
    assert!(status.starts_with("HTTP/1.1 200"), "{raw}");
    serde_json::from_str(json).unwrap()
}

/// `GET /api/v1/attachments/{id}` on `gw`: status and body.
fn download(gw: &GatewayChild, id: i64) -> (u16, String) {
    let r = gw.request("GET", &format!("/api/v1/attachments/{id}"), None);
    (r.status, r.body)
}

#[test]
fn host_b_serves_the_log_and_attachments_of_a_worker_on_host_a() {
    let Some(pg) = kanban_testkit::postgres::cluster() else {
        return;
    };
    let url = pg.url(&pg.unique_database("kb_files"));
    let mut a = host(&url, "host-a");
    let mut b = host(&url, "host-b");
    let init = a.run(&["init"]);
    assert!(init.status.success(), "{}", stderr(&init));
    a.kanban_config("  dispatch_interval_seconds: 1\n");
    a.profile(
        "coder",
        &format!(
            "T=\"$HERMES_KANBAN_TASK\"\n\
             echo \"worker output on host A for $T\"\n\
             printf '{ARTIFACT}' > \"$HERMES_KANBAN_WORKSPACE/report.bin\"\n\
             i=0\n\
             while [ ! -e \"$OUT/go\" ] && [ $i -lt {WORKER_HOLD_TENTHS} ]; do sleep 0.1; i=$((i+1)); done\n\
             \"$K\" complete --summary 'done on A' \
               --metadata \"{{\\\"artifacts\\\": [\\\"$HERMES_KANBAN_WORKSPACE/report.bin\\\"]}}\" || exit 9\n\
             echo 'last words after the completion'\n"
        ),
    );
    // Host B never dispatches: every worker runs on host A.
    b.kanban_config("  dispatch_in_gateway: false\n");
    let gw_a = a.gateway();
    let gw_b = b.gateway();

    let t = task_id(&a.ok(&["create", "Work on A", "--assignee", "coder"]));

    // While the worker runs: host B, which has no such file, shows its log.
    let live = log_with(&gw_b, &t, &format!("worker output on host A for {t}"));
    assert_eq!(live["exists"], true, "{live}");
    let b_file = b.root().join(live["path"].as_str().unwrap());
    assert!(!b_file.exists(), "host B has no copy of the log file");
    let cli = b.ok(&["log", &t]);
    assert!(cli.contains("worker output on host A"), "{cli}");

    // An upload through host A's API downloads from host B, byte for byte.
    let uploaded = upload(&gw_a, &t, "notes.txt", b"uploaded on A\n\x07bell");
    let up_id = uploaded["attachment"]["id"].as_i64().expect("an id");
    assert_eq!(
        download(&gw_b, up_id),
        (200, "uploaded on A\n\x07bell".into())
    );

    // The worker completes, keeping its artifact; it still writes after.
    std::fs::write(a.out("go"), b"").unwrap();
    let done = log_with(&gw_b, &t, "last words after the completion");
    assert!(
        done["content"]
            .as_str()
            .unwrap()
            .contains("worker output on host A")
    );
    assert_eq!(a.status(&t), "done");
    let listed = gw_b.request("GET", &format!("/api/v1/tasks/{t}/attachments"), None);
    assert_eq!(listed.status, 200, "{}", listed.body);
    let atts = listed.json()["attachments"].as_array().cloned().unwrap();
    let kept = atts
        .iter()
        .find(|x| x["filename"] == "report.bin")
        .unwrap_or_else(|| panic!("the kept artifact is listed: {atts:?}"));
    let kept_path = std::path::Path::new(kept["stored_path"].as_str().unwrap());
    assert!(kept_path.starts_with(a.root()), "stored on host A: {kept}");
    let (status, body) = download(&gw_b, kept["id"].as_i64().unwrap());
    assert_eq!((status, body.as_str()), (200, ARTIFACT));

    // Deleting an attachment on host B removes the board's copy.
    let del = gw_b.request("DELETE", &format!("/api/v1/attachments/{up_id}"), None);
    assert_eq!(del.status, 200, "{}", del.body);
    assert_eq!(download(&gw_a, up_id).0, 404);
}

#[test]
fn a_log_cut_by_the_run_cap_reads_the_same_on_both_hosts() {
    let Some(pg) = kanban_testkit::postgres::cluster() else {
        return;
    };
    let url = pg.url(&pg.unique_database("kb_logcap"));
    let mut a = host(&url, "host-a");
    let mut b = host(&url, "host-b");
    let init = a.run(&["init"]);
    assert!(init.status.success(), "{}", stderr(&init));
    // The smallest cap: 40 000 numbered lines are cut several times.
    a.kanban_config("  dispatch_interval_seconds: 1\n  worker_log_max_run_bytes: 16384\n");
    a.profile(
        "coder",
        "i=0\n\
         while [ $i -lt 40000 ]; do echo \"line $i\"; i=$((i+1)); done\n\
         \"$K\" complete --summary chatty || exit 9\n\
         echo 'the end'\n",
    );
    b.kanban_config("  dispatch_in_gateway: false\n");
    let gw_a = a.gateway();
    let gw_b = b.gateway();
    let t = task_id(&a.ok(&["create", "Chatty", "--assignee", "coder"]));
    let seen = log_with(&gw_b, &t, "the end");
    // Host A's file, where its gateway says it keeps it.
    let a_view = gw_a.request("GET", &format!("/api/v1/tasks/{t}/log"), None);
    let on_a = std::fs::read_to_string(a_view.json()["path"].as_str().unwrap()).unwrap();
    assert!(
        on_a.contains("bytes of this run's output were cut here"),
        "{on_a}"
    );
    assert!(on_a.len() <= 16384, "{}", on_a.len());
    assert_eq!(
        seen["content"].as_str().unwrap(),
        on_a,
        "host B shows host A's file"
    );
    assert_eq!(seen["size_bytes"].as_u64(), Some(on_a.len() as u64));
}

#[test]
fn a_board_moved_to_postgres_brings_its_attachment_blobs() {
    let Some(pg) = kanban_testkit::postgres::cluster() else {
        return;
    };
    let url = pg.url(&pg.unique_database("kb_moved"));
    // A SQLite board on host A with a kept artifact.
    let a = Sandbox::new();
    let t = a.create("Moved", &["--assignee", "coder"]);
    let claimed = a.ok(&["claim", &t]);
    let ws = claimed
        .lines()
        .find_map(|l| l.strip_prefix("Workspace: "))
        .expect("claim prints the workspace");
    let report = std::path::Path::new(ws).join("report.md");
    std::fs::write(&report, "# kept on A\n").unwrap();
    let meta = serde_json::json!({"artifacts": [report]}).to_string();
    let env = a.worker_env(&t, "coder");
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let done = a.run_env(&["complete", &t, "--metadata", &meta], &env);
    assert!(done.status.success(), "{}", stderr(&done));
    let moved = a.run(&["boards", "migrate", "--to", &url]);
    assert!(moved.status.success(), "{}", stderr(&moved));
    // Host B, on the database, serves the artifact host A's file held.
    let mut b = host(&url, "host-b");
    b.kanban_config("  dispatch_in_gateway: false\n");
    let gw_b = b.gateway();
    let listed = gw_b.request("GET", &format!("/api/v1/tasks/{t}/attachments"), None);
    assert_eq!(listed.status, 200, "{}", listed.body);
    let id = listed.json()["attachments"][0]["id"]
        .as_i64()
        .unwrap_or_else(|| panic!("an attachment: {}", listed.body));
    assert_eq!(download(&gw_b, id), (200, "# kept on A\n".into()));
}
