//! Black-box regression tests of the gateway's dispatcher (issue 9, items
//! 4–7): the real `kanban` binary runs the gateway, workers are shell
//! scripts, and the board is read from this process. Build the binary first:
//! `cargo build -p kanban && cargo test -p kanban-server --test hardening_dispatch_gateway`.
//!
//! Counts are taken over windows of a few seconds; nothing here asserts how
//! fast something is, only how often it happens and how it is recorded.

use std::time::{Duration, Instant};

use kanban_core::Status;
use kanban_store::TaskQuery;
use kanban_testkit::{Sandbox, text, wait_until};
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;

/// Generous bound for anything that waits on the gateway and its workers.
const LIMIT: Duration = Duration::from_secs(60);

/// `kanban <args>`, which must succeed; its stdout.
fn ok(home: &Sandbox, args: &[&str]) -> String {
    let out = home.run(args);
    assert!(out.status.success(), "{args:?}: {}", text(&out.stderr));
    text(&out.stdout)
}

/// `kanban create <title> --assignee <a> --json <extra...>`: the new id.
fn create(home: &Sandbox, title: &str, assignee: &str, extra: &[&str]) -> String {
    let mut args = vec!["create", title, "--assignee", assignee, "--json"];
    args.extend_from_slice(extra);
    let v: serde_json::Value = serde_json::from_str(&ok(home, &args)).unwrap();
    v["id"].as_str().unwrap().to_string()
}

/// Events of one kind on a task.
fn events(home: &Sandbox, id: &str, kind: &str) -> usize {
    home.store()
        .events(&kanban_store::EventQuery {
            task_id: Some(id.to_string()),
            ..Default::default()
        })
        .unwrap()
        .iter()
        .filter(|e| e.kind == kind)
        .count()
}

/// Outcomes of a task's ended runs, oldest first.
fn outcomes(home: &Sandbox, id: &str) -> Vec<String> {
    home.store()
        .runs(id)
        .unwrap()
        .into_iter()
        .filter_map(|r| r.outcome)
        .collect()
}

fn status(home: &Sandbox, id: &str) -> Status {
    home.store().get_task(id).unwrap().unwrap().status
}

/// `kanban_dispatch_passes_total` of the default board, from `/metrics`.
fn passes(home: &Sandbox) -> u64 {
    use std::io::{Read, Write};
    let record: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(home.root().join("kanban").join("gateway.json")).unwrap(),
    )
    .unwrap();
    let port = record["port"].as_u64().unwrap() as u16;
    let mut conn = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        conn,
        "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    conn.read_to_string(&mut out).unwrap();
    out.lines()
        // After the constant `host` label, whatever this host is called.
        .filter(|l| l.starts_with("kanban_dispatch_passes_total{"))
        .find_map(|l| l.split_once(",board=\"default\"} ").map(|(_, n)| n))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or(0)
}

/// Item 4: a worker that exits 75 puts its task in a rate-limit cooldown.
/// During it the gateway writes at most one `respawn_guarded` event for the
/// task and does not spin (a handful of passes, not one per commit); it
/// wakes at the cooldown's end on its own (the tick here is a minute).
#[test]
fn a_rate_limit_cooldown_writes_one_guard_event_and_wakes_at_its_end() {
    const COOLDOWN: u64 = 5;
    let home = Sandbox::new();
    let started = home.root().join("starts");
    let w = home.traced_worker(
        "limited",
        &format!("echo x >> '{}'\nexit 75", started.display()),
    );
    home.write_config(&home.config_with_worker("limited", &w, "  dispatch_interval_seconds: 60\n"));
    let cooldown = COOLDOWN.to_string();
    let gw = home.gateway_with(
        &[(
            "HERMES_KANBAN_RATE_LIMIT_COOLDOWN_SECONDS",
            cooldown.as_str(),
        )],
        &[],
    );
    let id = create(&home, "hits a rate limit", "limited", &[]);
    let other = create(&home, "a bystander", "nobody", &[]);
    let starts = || {
        std::fs::read_to_string(&started)
            .map(|s| s.lines().count())
            .unwrap_or(0)
    };
    // The worker's exit writes nothing; a change on the board (a comment
    // on another task) makes the gateway look, once the worker is gone.
    assert!(
        wait_until(LIMIT, || {
            if starts() >= 1 {
                ok(&home, &["comment", &other, "poke"]);
            }
            outcomes(&home, &id).first().map(String::as_str) == Some("rate_limited")
        }),
        "first attempt not classified rate_limited: {:?}\n{}",
        outcomes(&home, &id),
        gw.log_text()
    );
    let passes_before = passes(&home);
    let t = Instant::now();
    std::thread::sleep(Duration::from_secs(COOLDOWN - 2));
    let guarded = events(&home, &id, "respawn_guarded");
    let passes_during = passes(&home) - passes_before;
    assert!(
        guarded <= 1,
        "{guarded} respawn_guarded events in {:?} of cooldown",
        t.elapsed()
    );
    assert!(
        passes_during <= 10,
        "the gateway ran {passes_during} passes in {:?} while only waiting",
        t.elapsed()
    );
    // No tick for a minute: the second attempt comes from the wake-up at
    // the cooldown's end.
    assert!(
        wait_until(Duration::from_secs(30), || starts() >= 2),
        "no second attempt after the cooldown: {:?}\n{}",
        outcomes(&home, &id),
        gw.log_text()
    );
    // The second attempt exits 75 too and may already have started a hold
    // of its own: still at most one note per hold.
    let holds = outcomes(&home, &id)
        .iter()
        .filter(|o| *o == "rate_limited")
        .count();
    let guarded = events(&home, &id, "respawn_guarded");
    assert!(
        guarded <= holds,
        "{guarded} respawn_guarded events for {holds} rate-limit holds"
    );
}

/// Item 5: a profile whose command does not exist fails to spawn; with a
/// high failure limit the gateway retries with a growing delay, not in a
/// tight loop, and `show` names the next attempt.
#[test]
fn spawn_failures_are_retried_with_backoff_and_show_the_next_attempt() {
    let home = Sandbox::new();
    home.write_config(
        "kanban:\n  dispatch_interval_seconds: 1\n  failure_limit: 100\n  profiles:\n    \
         ghost:\n      command: [\"/nonexistent/kanban-test-worker\", \"{task_id}\"]\n",
    );
    let gw = home.gateway();
    let id = create(&home, "cannot start", "ghost", &[]);
    assert!(
        wait_until(LIMIT, || events(&home, &id, "spawn_failed") >= 1),
        "no spawn failure\n{}",
        gw.log_text()
    );
    std::thread::sleep(Duration::from_secs(3));
    let failed = events(&home, &id, "spawn_failed");
    assert!(
        failed <= 2,
        "{failed} spawn_failed events within ~3 s of the first"
    );
    let shown: serde_json::Value =
        serde_json::from_str(&ok(&home, &["show", &id, "--json"])).unwrap();
    assert!(
        shown["next_spawn_attempt_at"].as_i64().is_some(),
        "show --json names no next attempt: {shown}"
    );
    let human = ok(&home, &["show", &id]);
    assert!(
        human.contains("next attempt"),
        "show names no next attempt:\n{human}"
    );
    assert_eq!(status(&home, &id), Status::Ready);
}

/// Item 5: the backoff is configurable (`kanban.spawn_retry_*`): a short
/// base and cap retry several times within a few seconds, still spaced.
#[test]
fn spawn_retry_backoff_follows_the_config() {
    let home = Sandbox::new();
    home.write_config(
        "kanban:\n  dispatch_interval_seconds: 60\n  failure_limit: 100\n  \
         spawn_retry_base_seconds: 1\n  spawn_retry_max_seconds: 2\n  profiles:\n    \
         ghost:\n      command: [\"/nonexistent/kanban-test-worker\", \"{task_id}\"]\n",
    );
    let gw = home.gateway();
    let id = create(&home, "cannot start", "ghost", &[]);
    assert!(
        wait_until(LIMIT, || events(&home, &id, "spawn_failed") >= 1),
        "no spawn failure\n{}",
        gw.log_text()
    );
    std::thread::sleep(Duration::from_secs(7));
    let failed = events(&home, &id, "spawn_failed");
    // Delays of ≤ 1, ≤ 2, ≤ 2... s: several retries, each after a wait.
    assert!(
        (3..=9).contains(&failed),
        "{failed} spawn_failed events in ~7 s with a 1 s base and a 2 s cap\n{}",
        gw.log_text()
    );
}

/// Item 6: every attempt killed for its max runtime is recorded
/// `timed_out`, never `crashed` by the signal that ended it.
#[test]
fn every_max_runtime_kill_is_recorded_as_a_timeout() {
    const TASKS: usize = 6;
    let home = Sandbox::new();
    home.write_config(
        "kanban:\n  dispatch_interval_seconds: 1\n  profiles:\n    \
         sleeper:\n      command: [\"/bin/sh\", \"-c\", \"sleep 60\"]\n",
    );
    let gw = home.gateway();
    let ids: Vec<String> = (0..TASKS)
        .map(|i| {
            create(
                &home,
                &format!("too slow {i}"),
                "sleeper",
                &["--max-runtime", "2s", "--max-retries", "6"],
            )
        })
        .collect();
    assert!(
        wait_until(Duration::from_secs(120), || ids
            .iter()
            .all(|id| status(&home, id) == Status::Blocked)),
        "not all blocked after their retries: {:?}\n{}",
        ids.iter().map(|id| outcomes(&home, id)).collect::<Vec<_>>(),
        gw.log_text()
    );
    for id in &ids {
        let runs = outcomes(&home, id);
        assert_eq!(runs.len(), 6, "{id}: {runs:?}");
        assert!(
            runs.iter().all(|o| o == "timed_out"),
            "{id}: a max-runtime kill recorded otherwise: {runs:?}"
        );
    }
}

/// Item 6 across processes: the gateway decides a timeout, signals the
/// worker (which ignores SIGTERM) and dies with it before recording the
/// release; the restarted gateway records the decided timeout, not a
/// crash nor an excused death.
#[test]
fn a_timeout_decided_before_a_gateway_crash_is_recorded_as_a_timeout() {
    let home = Sandbox::new();
    home.write_config(
        "kanban:\n  dispatch_interval_seconds: 1\n  profiles:\n    \
         stubborn:\n      command: [\"/bin/sh\", \"-c\", \"trap '' TERM; sleep 60\"]\n",
    );
    let mut gw = home.gateway();
    let id = create(
        &home,
        "ignores SIGTERM",
        "stubborn",
        &["--max-runtime", "1s"],
    );
    let store = home.store();
    // The decision is on record once the worker was signalled.
    assert!(
        wait_until(LIMIT, || store
            .running_tasks()
            .unwrap()
            .iter()
            .any(|r| r.id == id && r.intent.is_some())),
        "no decided timeout: {:?}\n{}",
        store.running_tasks().unwrap(),
        gw.log_text()
    );
    gw.kill9();
    kill_workers(&home, std::slice::from_ref(&id));
    drop(gw);
    let gw = home.gateway();
    assert!(
        wait_until(LIMIT, || !outcomes(&home, &id).is_empty()),
        "never released\n{}",
        gw.log_text()
    );
    assert_eq!(
        outcomes(&home, &id)[0],
        "timed_out",
        "{:?}",
        store.runs(&id)
    );
}

/// A worker script that sleeps on its first attempt (so it can be killed
/// while running) and completes its task on any later one.
fn once_slow_worker(home: &Sandbox) -> std::path::PathBuf {
    let marks = home.root().join("marks");
    std::fs::create_dir_all(&marks).unwrap();
    home.traced_worker(
        "once",
        &format!(
            "M='{}'/\"$TASK\"\n\
             if [ -e \"$M\" ]; then \"$KANBAN\" complete \"$TASK\" --summary again >/dev/null; exit 0; fi\n\
             touch \"$M\"\nsleep 60",
            marks.display()
        ),
    )
}

/// SIGKILL the whole process group of every task's recorded worker.
fn kill_workers(home: &Sandbox, ids: &[String]) {
    let store = home.store();
    let pids: Vec<i32> = ids
        .iter()
        .map(|id| {
            store
                .get_task(id)
                .unwrap()
                .unwrap()
                .worker_pid
                .expect("worker pid") as i32
        })
        .collect();
    for pid in pids {
        let _ = killpg(Pid::from_raw(pid), Signal::SIGKILL);
    }
}

/// Every task runs the first attempt of [`once_slow_worker`], past its mark.
fn all_running_with_workers(home: &Sandbox, ids: &[String]) -> bool {
    let store = home.store();
    ids.iter().all(|id| {
        let t = store.get_task(id).unwrap().unwrap();
        t.status == Status::Running
            && t.worker_pid.is_some()
            && home.root().join("marks").join(id).exists()
    })
}

/// No task was blocked, counted a failure or recorded crashed; all done.
fn assert_converged_without_failures(home: &Sandbox, ids: &[String]) {
    for id in ids {
        let t = home.store().get_task(id).unwrap().unwrap();
        assert_eq!(t.status, Status::Done, "{id}: {t:?}");
        assert_eq!(t.consecutive_failures, 0, "{id}: {t:?}");
        assert_eq!(
            events(home, id, "gave_up"),
            0,
            "{id} was blocked on the way"
        );
        let runs = outcomes(home, id);
        assert!(
            !runs.iter().any(|o| o == "crashed"),
            "{id}: a death explained by the host recorded as a crash: {runs:?}"
        );
    }
}

/// Item 7: the gateway and all its workers die at once (`kill -9`, like an
/// OOM kill of the service); after a restart every task is requeued
/// without a failure and ends done.
#[test]
fn a_gateway_killed_with_its_workers_requeues_every_task_after_restart() {
    const TASKS: usize = 5;
    let home = Sandbox::new();
    let w = once_slow_worker(&home);
    home.write_config(&home.config_with_worker("once", &w, "  dispatch_interval_seconds: 1\n"));
    let mut gw = home.gateway();
    let ids: Vec<String> = (0..TASKS)
        .map(|i| create(&home, &format!("long {i}"), "once", &[]))
        .collect();
    assert!(
        wait_until(LIMIT, || all_running_with_workers(&home, &ids)),
        "not all running\n{}",
        gw.log_text()
    );
    gw.kill9();
    kill_workers(&home, &ids);
    drop(gw);
    let gw = home.gateway();
    assert!(
        wait_until(LIMIT, || ids.iter().all(|id| matches!(
            status(&home, id),
            Status::Done | Status::Blocked
        ))),
        "did not converge: {:?}\n{}",
        ids.iter().map(|id| outcomes(&home, id)).collect::<Vec<_>>(),
        gw.log_text()
    );
    assert_converged_without_failures(&home, &ids);
}

/// Item 7: ten workers killed in the same second while the gateway lives
/// (an OOM kill of the cgroup, an operator's `kill -9` of the lot) are
/// requeued, not blocked by the systemic-crash rule.
#[test]
fn workers_killed_together_under_a_live_gateway_are_requeued() {
    const TASKS: usize = 10;
    let home = Sandbox::new();
    let w = once_slow_worker(&home);
    home.write_config(&home.config_with_worker("once", &w, "  dispatch_interval_seconds: 1\n"));
    let gw = home.gateway();
    let ids: Vec<String> = (0..TASKS)
        .map(|i| create(&home, &format!("long {i}"), "once", &[]))
        .collect();
    assert!(
        wait_until(LIMIT, || all_running_with_workers(&home, &ids)),
        "not all running\n{}",
        gw.log_text()
    );
    kill_workers(&home, &ids);
    assert!(
        wait_until(LIMIT, || ids.iter().all(|id| matches!(
            status(&home, id),
            Status::Done | Status::Blocked
        ))),
        "did not converge: {:?}\n{}",
        ids.iter().map(|id| outcomes(&home, id)).collect::<Vec<_>>(),
        gw.log_text()
    );
    assert_converged_without_failures(&home, &ids);
}

/// Item 7, the other side: tasks whose workers keep dying on their own
/// (here: all at once, every attempt) are still blocked by the breaker.
#[test]
fn workers_that_keep_killing_themselves_still_trip_the_breaker() {
    const TASKS: usize = 3;
    let home = Sandbox::new();
    let w = home.traced_worker("suicidal", "sleep 1\nkill -9 $$");
    home.write_config(&home.config_with_worker("suicidal", &w, "  dispatch_interval_seconds: 1\n"));
    let gw = home.gateway();
    let ids: Vec<String> = (0..TASKS)
        .map(|i| create(&home, &format!("doomed {i}"), "suicidal", &[]))
        .collect();
    assert!(
        wait_until(Duration::from_secs(90), || ids
            .iter()
            .all(|id| status(&home, id) == Status::Blocked)),
        "the breaker never tripped: {:?}\n{}",
        ids.iter().map(|id| outcomes(&home, id)).collect::<Vec<_>>(),
        gw.log_text()
    );
    let all = home.store().list_tasks(&TaskQuery::default()).unwrap();
    assert_eq!(all.len(), TASKS);
}
