//! Black-box tests of what the gateway gives its workers and how it reads
//! their exits: the real `kanban` binary runs the gateway, so workers get
//! the same parts as `kanban dispatch` (full worker context, exit-recording
//! wrapper). Build the binary first:
//! `cargo build -p kanban && cargo test -p kanban-server --test gateway_worker`.

use std::time::Duration;

use kanban_core::Status;
use kanban_testkit::{Sandbox, pid_alive, text, wait_until};

/// Time a worker gets to start (or a pass to notice something).
const LIMIT: Duration = Duration::from_secs(15);

/// `kanban <args>`, which must succeed.
fn ok(home: &Sandbox, args: &[&str]) {
    let out = home.run(args);
    assert!(out.status.success(), "{args:?}: {}", text(&out.stderr));
}

#[test]
fn a_template_worker_started_by_the_gateway_gets_the_full_context() {
    let home = Sandbox::new();
    let prompts = home.root().join("prompts");
    std::fs::create_dir_all(&prompts).unwrap();
    // `{prompt}` arrives as $1; keep it, then finish the task.
    let w = home.traced_worker(
        "tpl",
        &format!(
            "printf '%s' \"$1\" > '{}'/\"$TASK\".txt\n\
             \"$KANBAN\" complete \"$TASK\" --summary ok >/dev/null",
            prompts.display()
        ),
    );
    home.write_config(&format!(
        "kanban:\n  dispatch_interval_seconds: 1\n  profiles:\n    tpl:\n      \
         command: [\"/bin/sh\", \"{}\", \"{{prompt}}\"]\n",
        w.display()
    ));
    let gw = home.gateway();
    // Unassigned first, so the comment is on the board before the spawn.
    let out = home.run(&[
        "create",
        "Write the report",
        "--body",
        "Summarise the quarterly numbers.",
        "--assignee",
        "none",
        "--json",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let id = v["id"].as_str().unwrap().to_string();
    ok(&home, &["comment", &id, "use the Q3 sheet"]);
    ok(&home, &["assign", &id, "tpl"]);

    let file = prompts.join(format!("{id}.txt"));
    assert!(
        wait_until(LIMIT, || file.exists()
            && home.store().get_task(&id).unwrap().unwrap().status
                == Status::Done),
        "worker did not run or finish: {:?}\n{}",
        home.store().get_task(&id).unwrap(),
        gw.log_text()
    );
    let prompt = std::fs::read_to_string(&file).unwrap();
    for needle in [
        format!("# Kanban task {id}:"),
        "## Body".to_string(),
        "Summarise the quarterly numbers.".to_string(),
        "use the Q3 sheet".to_string(),
        // The worker protocol wrapped around the context.
        "## How to report (required)".to_string(),
        format!("complete {id} --summary"),
    ] {
        assert!(
            prompt.contains(&needle),
            "no {needle:?} in the prompt:\n{prompt}"
        );
    }
    // The claim that started this worker shows in the claim-latency histogram.
    let metrics = get_metrics(&home);
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("kanban_claim_latency_seconds_count{")
                && l.ends_with(",board=\"default\"} 1")),
        "{metrics}"
    );
    drop(gw);
}

/// `GET /metrics` of the running gateway (its address from `gateway.json`).
fn get_metrics(home: &Sandbox) -> String {
    use std::io::{Read, Write};
    let record: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(home.root().join("kanban").join("gateway.json")).unwrap(),
    )
    .unwrap();
    let port = record["port"].as_u64().unwrap();
    let mut conn = std::net::TcpStream::connect(("127.0.0.1", port as u16)).unwrap();
    write!(
        conn,
        "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    conn.read_to_string(&mut out).unwrap();
    out
}

#[test]
fn a_restarted_gateway_classifies_the_exit_75_of_a_worker_it_did_not_spawn() {
    let home = Sandbox::new();
    let started = home.root().join("started");
    let w = home.traced_worker(
        "limited",
        &format!("touch '{}'\nsleep 2\nexit 75", started.display()),
    );
    home.write_config(&home.config_with_worker("limited", &w, "  dispatch_interval_seconds: 1\n"));
    let mut gw = home.gateway();
    let id = home.create("hits a rate limit", &["--assignee", "limited"]);
    assert!(
        wait_until(LIMIT, || started.exists()),
        "worker did not start\n{}",
        gw.log_text()
    );
    // The launch is recorded after the worker starts (in the pass's next
    // transaction): a fast worker can be running before its pid is.
    let store = home.store();
    let recorded = || {
        store
            .get_task(&id)
            .unwrap()
            .and_then(|t| t.worker_pid.filter(|_| t.status == Status::Running))
    };
    assert!(
        wait_until(LIMIT, || recorded().is_some()),
        "the worker's pid was never recorded\n{}",
        gw.log_text()
    );
    let pid = recorded().expect("worker pid") as i32;
    drop(store);
    gw.kill9();
    drop(gw);
    // The worker outlives the gateway and exits 75 while none runs.
    assert!(pid_alive(pid), "worker {pid} died with the gateway");
    assert!(
        wait_until(LIMIT, || !pid_alive(pid)),
        "worker {pid} still running"
    );

    let gw = home.gateway();
    let store = home.store();
    let classified = || {
        store
            .runs(&id)
            .unwrap()
            .first()
            .is_some_and(|r| r.outcome.is_some())
    };
    assert!(
        wait_until(LIMIT, classified),
        "the dead worker was never classified: {:?}\n{}",
        store.runs(&id).unwrap(),
        gw.log_text()
    );
    let runs = store.runs(&id).unwrap();
    assert_eq!(
        runs[0].outcome.as_deref(),
        Some("rate_limited"),
        "runs: {runs:?}"
    );
    assert!(
        runs.iter().all(|r| r.outcome.as_deref() != Some("crashed")),
        "runs: {runs:?}"
    );
    let task = store.get_task(&id).unwrap().unwrap();
    assert_ne!(task.status, Status::Blocked, "{task:?}");
    assert_eq!(task.consecutive_failures, 0, "{task:?}");
}
