//! Streams and housekeeping: tail, watch, log, gc, notify-*, and ending a
//! worker's process group when its task is taken away.

use std::os::unix::process::CommandExt;
use std::time::{Duration, Instant};

use kanban_testkit::{Sandbox, stderr, stdout};
use serde_json::json;

#[test]
fn tail_once_prints_history() {
    let b = Sandbox::new();
    let t = b.create("T", &[]);
    b.ok(&["comment", &t, "hi"]);
    let out = b.ok(&["tail", &t, "--once"]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], format!("Tailing events for {t}. Ctrl-C to stop."));
    assert!(
        lines[1].ends_with(
            "] created {'assignee': None, 'parents': [], 'status': 'ready', 'tenant': None}"
        ) || lines[1].contains("] created"),
        "{out}"
    );
    assert!(lines.iter().any(|l| l.contains("] commented")), "{out}");
    b.refuses(&["tail", "t_00000000", "--once"], 1, "no such task");
    b.refuses(&["tail", &t, "--interval", "-1", "--once"], 2, "--interval");
}

#[test]
fn tail_follows_new_events_until_timeout() {
    let b = Sandbox::new();
    let t = b.create("T", &[]);
    let child = b
        .std_cmd()
        .args(["tail", &t, "--interval", "0.1", "--timeout", "3"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(600));
    b.ok(&["comment", &t, "later"]);
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    assert!(stdout(&out).contains("] commented"), "{}", stdout(&out));
}

#[test]
fn watch_streams_only_new_matching_events() {
    let b = Sandbox::new();
    let old = b.create("Old", &["--assignee", "coder"]);
    b.ok(&["comment", &old, "before"]);
    let child = b
        .std_cmd()
        .args([
            "watch",
            "--interval",
            "0.1",
            "--timeout",
            "3",
            "--kinds",
            "commented,blocked",
            "--assignee",
            "coder",
        ])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(600));
    let other = b.create("Other", &["--assignee", "writer"]);
    b.ok(&["comment", &other, "not mine"]);
    b.ok(&["comment", &old, "after"]);
    let out = child.wait_with_output().unwrap();
    let text = stdout(&out);
    assert!(
        text.starts_with("Watching kanban events. Ctrl-C to stop.\n"),
        "{text}"
    );
    let lines: Vec<&str> = text.lines().skip(1).collect();
    assert_eq!(lines.len(), 1, "{text}");
    assert!(
        lines[0].contains(&format!("] {old} commented          (@coder)")),
        "{text}"
    );
    b.refuses(&["watch", "--timeout", "-2"], 2, "--timeout");
}

#[test]
fn log_reads_and_tails() {
    let b = Sandbox::new();
    let t = b.create("T", &[]);
    b.refuses(
        &["log", &t],
        1,
        &format!("(no log for {t} — task may not have spawned yet)"),
    );
    let logs = b.path("kanban/logs");
    std::fs::create_dir_all(&logs).unwrap();
    std::fs::write(
        logs.join(format!("{t}.log")),
        "line one\nline two\nline three",
    )
    .unwrap();
    assert_eq!(b.ok(&["log", &t]), "line one\nline two\nline three\n");
    assert_eq!(b.ok(&["log", &t, "--tail", "12"]), "line three\n");
    b.refuses(&["log", "../../etc/passwd"], 2, "invalid task id");
    b.refuses(&["log", &t, "--tail", "-3"], 2, "--tail");
}

#[test]
fn gc_removes_only_what_it_owns() {
    let b = Sandbox::new();
    let keep = b.create("Keep", &[]);
    let gone = b.create("Gone", &[]);
    let ws = b.path("kanban/workspaces");
    std::fs::create_dir_all(ws.join(&keep)).unwrap();
    std::fs::create_dir_all(ws.join(&gone)).unwrap();
    let outside = b.path("precious");
    std::fs::create_dir_all(&outside).unwrap();
    let escape = b.create(
        "Escape",
        &["--workspace", &format!("dir:{}", outside.display())],
    );
    b.ok(&["archive", &gone, &escape]);
    let logs = b.path("kanban/logs");
    std::fs::create_dir_all(&logs).unwrap();
    let old_log = logs.join("t_old.log");
    std::fs::write(&old_log, "x").unwrap();
    let f = std::fs::File::options().write(true).open(&old_log).unwrap();
    f.set_modified(std::time::SystemTime::now() - Duration::from_secs(40 * 86_400))
        .unwrap();
    std::fs::write(logs.join("t_new.log"), "y").unwrap();
    let out = b.ok(&["gc"]);
    assert_eq!(
        out,
        "GC complete: 1 workspace(s), 0 event row(s), 1 log file(s) removed\n"
    );
    assert!(ws.join(&keep).is_dir() && !ws.join(&gone).exists() && outside.is_dir());
    assert!(!old_log.exists() && logs.join("t_new.log").exists());
    // Zero-day retention drops events of finished tasks only.
    b.ok(&["complete", &keep]);
    let out = b.ok(&[
        "gc",
        "--event-retention-days",
        "0",
        "--log-retention-days",
        "0",
    ]);
    assert!(out.starts_with("GC complete: 0 workspace(s), "), "{out}");
    b.refuses(
        &["gc", "--event-retention-days", "-1"],
        2,
        "--event-retention-days",
    );
}

#[test]
fn notify_subscribe_list_unsubscribe() {
    let b = Sandbox::new();
    let t = b.create("T", &[]);
    assert_eq!(b.ok(&["notify-list"]), "(no subscriptions)\n");
    let out = b.ok(&[
        "notify-subscribe",
        &t,
        "--platform",
        "telegram",
        "--chat-id",
        "42",
        "--thread-id",
        "7",
    ]);
    assert_eq!(out, format!("Subscribed telegram:42:7 to {t}\n"));
    let v = b.json(&["notify-list", &t, "--json"]);
    let sub = &v[0];
    assert_eq!(
        (
            sub["platform"].as_str(),
            sub["chat_id"].as_str(),
            sub["thread_id"].as_str()
        ),
        (Some("telegram"), Some("42"), Some("7"))
    );
    assert_eq!(sub["notifier_profile"], "user");
    assert_eq!(sub["last_event_id"], 0);
    let text = b.ok(&["notify-list"]);
    assert_eq!(
        text,
        format!("  {t}  telegram:42:7  (since event 0)  owner=user\n")
    );
    assert_eq!(b.json(&["notify-list", "t_00000000", "--json"]), json!([]));
    b.refuses(
        &[
            "notify-subscribe",
            "t_00000000",
            "--platform",
            "x",
            "--chat-id",
            "1",
        ],
        1,
        "no such task",
    );
    b.refuses(&["notify-subscribe", &t, "--platform", "x"], 2, "--chat-id");
    b.refuses(
        &[
            "notify-unsubscribe",
            &t,
            "--platform",
            "telegram",
            "--chat-id",
            "42",
        ],
        1,
        "(no such subscription)",
    );
    assert_eq!(
        b.ok(&[
            "notify-unsubscribe",
            &t,
            "--platform",
            "telegram",
            "--chat-id",
            "42",
            "--thread-id",
            "7"
        ]),
        format!("Unsubscribed from {t}\n")
    );
    assert_eq!(b.json(&["notify-list", "--json"]), json!([]));
}

/// Point a claimed task at a live process group, as the dispatcher would.
fn attach_fake_worker(b: &Sandbox, task: &str) -> std::process::Child {
    let child = std::process::Command::new("sleep")
        .arg("60")
        .process_group(0)
        .spawn()
        .unwrap();
    let conn = b.db();
    let host = kanban_store::host_identity::hostname();
    conn.execute(
        "UPDATE tasks SET worker_pid = ?1, claim_lock = ?2 WHERE id = ?3",
        rusqlite::params![child.id() as i64, format!("{host}:{}", child.id()), task],
    )
    .unwrap();
    conn.execute(
        "UPDATE task_runs SET worker_pid = ?1, claim_lock = ?2 WHERE task_id = ?3 AND ended_at IS NULL",
        rusqlite::params![child.id() as i64, format!("{host}:{}", child.id()), task],
    )
    .unwrap();
    child
}

fn exits_within(child: &mut std::process::Child, limit: Duration) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if child.try_wait().unwrap().is_some() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    false
}

#[test]
fn complete_block_reclaim_archive_end_the_worker() {
    let b = Sandbox::new();
    for verb in [
        &["complete"][..],
        &["block", "--kind", "transient"],
        &["reclaim"],
        &["archive"],
    ] {
        let t = b.create("Work", &["--assignee", "coder"]);
        b.ok(&["claim", &t]);
        let mut worker = attach_fake_worker(&b, &t);
        let started = Instant::now();
        let mut args = vec![verb[0], t.as_str()];
        args.extend_from_slice(&verb[1..]);
        let out = b.run(&args);
        assert!(out.status.success(), "{verb:?}: {}", stderr(&out));
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "{verb:?} blocked on the worker"
        );
        assert!(
            exits_within(&mut worker, Duration::from_secs(5)),
            "{verb:?} left the worker running"
        );
    }
}
