//! The gateway's worker fork server (`kanban __worker-forkserver`, see
//! `kanban_dispatch::fork_server`): wrappers are forked by the helper, in
//! sessions of their own; their exits reach crash detection as before;
//! without the helper (switched off, or killed) the gateway starts the
//! wrappers itself; the helper never outlives its gateway.

use kanban_testkit::gateway::{SETTLE_WAIT, START_WAIT};
use kanban_testkit::process::fork_server_of;
use kanban_testkit::{GatewayChild, Sandbox, pid_alive, wait_for};
use serde_json::Value;

const PROFILE: &str = "probe";

/// A profile whose worker runs `body` (sh), after writing its wrapper's
/// `/proc/<pid>/stat` to `<root>/<task>.wrapper`.
fn probe_profile(home: &Sandbox, body: &str) {
    probe_profile_ticking(home, body, 60);
}

/// As [`probe_profile`], with the dispatcher's tick every `tick` seconds
/// (the deaths of processes the gateway is not the parent of are noticed
/// on a tick).
fn probe_profile_ticking(home: &Sandbox, body: &str, tick: u32) {
    let script = home.path("probe.sh");
    let text = format!(
        "cat /proc/$PPID/stat > \"{root}/$HERMES_KANBAN_TASK.wrapper\"\n{body}\n",
        root = home.root().display()
    );
    std::fs::write(&script, text).unwrap();
    home.write_config(&format!(
        "kanban:\n  dispatch_interval_seconds: {tick}\n  profiles:\n    {PROFILE}:\n      command: [\"/bin/sh\", \"{}\"]\n",
        script.display()
    ));
}

fn complete_body(home: &Sandbox) -> String {
    format!(
        "exec \"{}\" complete \"$HERMES_KANBAN_TASK\" --summary ok",
        home.bin().display()
    )
}

/// `/proc/<pid>/stat` fields after the command name: state, ppid, pgrp,
/// session, ...
fn stat_after_comm(text: &str) -> Vec<i64> {
    let rest = &text[text.rfind(')').unwrap() + 2..];
    rest.split_whitespace()
        .skip(1)
        .map(|f| f.parse().unwrap_or(-1))
        .collect()
}

/// The wrapper of `task` as its worker saw it: (pid, ppid, pgrp, session).
fn wrapper_of(home: &Sandbox, task: &str) -> (i64, i64, i64, i64) {
    let path = home.path(&format!("{task}.wrapper"));
    let text = wait_for(SETTLE_WAIT, || {
        std::fs::read_to_string(&path)
            .ok()
            .filter(|t| t.contains(')'))
    })
    .unwrap_or_else(|| panic!("no worker of {task} ran"));
    let pid: i64 = text.split_whitespace().next().unwrap().parse().unwrap();
    let f = stat_after_comm(&text);
    (pid, f[0], f[1], f[2])
}

fn wait_status(home: &Sandbox, id: &str, status: &str) {
    let seen = wait_for(SETTLE_WAIT, || (home.status(id) == status).then_some(()));
    assert!(
        seen.is_some(),
        "{id} never became {status}: {}",
        home.status(id)
    );
}

/// The payload of the first `crashed` event of `id`.
fn first_crash(home: &Sandbox, id: &str) -> Value {
    let raw: String = wait_for(SETTLE_WAIT, || {
        home.db()
            .query_row(
                "SELECT payload FROM task_events WHERE task_id = ?1 AND kind = 'crashed' \
                 ORDER BY id LIMIT 1",
                [id],
                |r| r.get(0),
            )
            .ok()
    })
    .unwrap_or_else(|| panic!("{id} never crashed"));
    serde_json::from_str(&raw).unwrap()
}

fn server_of(gw: &GatewayChild) -> i64 {
    wait_for(START_WAIT, || fork_server_of(gw.pid)).expect("the gateway started no fork server")
}

#[test]
fn wrappers_are_forked_by_the_helper_in_sessions_of_their_own() {
    let home = Sandbox::new();
    probe_profile(&home, &complete_body(&home));
    let gw = home.gateway();
    let server = server_of(&gw);
    let id = home.create("forked", &["--assignee", PROFILE]);
    wait_status(&home, &id, "done");
    let (pid, ppid, pgrp, session) = wrapper_of(&home, &id);
    assert_eq!(ppid, server, "the wrapper's parent is the fork server");
    assert_eq!(
        (pgrp, session),
        (pid, pid),
        "the wrapper leads its own session"
    );
    // The wrapper still leaves its exit record for a later gateway.
    let records = home.path("kanban/logs/.exits");
    let record = wait_for(SETTLE_WAIT, || {
        std::fs::read_dir(&records).ok()?.flatten().find_map(|e| {
            let name = e.file_name().to_string_lossy().to_string();
            (name.starts_with(&format!("{pid}-")) && name.ends_with(".exit"))
                .then(|| std::fs::read_to_string(e.path()).unwrap())
        })
    })
    .expect("no exit record of the forked wrapper");
    assert_eq!(record.trim(), "exited 0");
}

#[test]
fn a_worker_that_crashes_under_the_helper_is_judged_by_its_exit_code() {
    let home = Sandbox::new();
    probe_profile(&home, "exit 3");
    let gw = home.gateway();
    server_of(&gw);
    let id = home.create("crashes", &["--assignee", PROFILE]);
    let crash = first_crash(&home, &id);
    assert_eq!(crash["exit_code"], 3, "{crash}");
}

#[test]
fn switched_off_the_gateway_starts_wrappers_itself() {
    let home = Sandbox::new();
    probe_profile(&home, &complete_body(&home));
    let gw = home.gateway_with(&[("KANBAN_WORKER_FORK_SERVER", "off")], &[]);
    let id = home.create("direct", &["--assignee", PROFILE]);
    wait_status(&home, &id, "done");
    let (pid, ppid, _, session) = wrapper_of(&home, &id);
    assert_eq!(ppid, i64::from(gw.pid), "the gateway started the wrapper");
    assert_eq!(session, pid);
    assert_eq!(fork_server_of(gw.pid), None);
}

#[test]
fn a_killed_helper_leaves_running_workers_judged_and_new_ones_started() {
    let home = Sandbox::new();
    let go = home.path("go");
    // Waits for the test's signal, then ends with 5 without completing.
    probe_profile_ticking(
        &home,
        &format!(
            "if [ -n \"$KANBAN_PROBE_COMPLETE\" ]; then {complete}; fi\n\
             while [ ! -e \"{go}\" ]; do sleep 0.05; done\nexit 5",
            complete = complete_body(&home),
            go = go.display()
        ),
        1,
    );
    let gw = home.gateway();
    let server = server_of(&gw);
    let waiting = home.create("in flight", &["--assignee", PROFILE]);
    let (_, ppid, _, _) = wrapper_of(&home, &waiting);
    assert_eq!(ppid, server);
    // SAFETY: signalling a process of this test's own gateway.
    unsafe { libc::kill(server as i32, libc::SIGKILL) };
    assert!(
        wait_for(SETTLE_WAIT, || (!pid_alive(server)).then_some(())).is_some(),
        "the fork server survived SIGKILL"
    );
    // Its exit cannot be reported any more: the record tells.
    std::fs::write(&go, "").unwrap();
    let crash = first_crash(&home, &waiting);
    assert_eq!(crash["exit_code"], 5, "{crash}");
    // New workers start, the gateway being their wrappers' parent.
    let next = home.create("after", &["--assignee", PROFILE]);
    let (pid, ppid, _, session) = wrapper_of(&home, &next);
    assert_eq!(ppid, i64::from(gw.pid));
    assert_eq!(session, pid);
    let log = gw.log_text();
    assert!(log.contains("fork server ended"), "{log}");
}

#[test]
fn the_helper_ends_with_its_gateway() {
    let home = Sandbox::new();
    probe_profile(&home, &complete_body(&home));
    let mut gw = home.gateway();
    let server = server_of(&gw);
    gw.kill9();
    let gone = wait_for(SETTLE_WAIT, || (!pid_alive(server)).then_some(()));
    assert!(gone.is_some(), "fork server {server} outlived its gateway");
}

#[test]
fn a_worker_environment_too_big_for_the_socket_is_started_directly() {
    let home = Sandbox::new();
    let script = home.path("probe.sh");
    std::fs::write(
        &script,
        format!(
            "cat /proc/$PPID/stat > \"{root}/$HERMES_KANBAN_TASK.wrapper\"\n{body}\n",
            root = home.root().display(),
            body = complete_body(&home)
        ),
    )
    .unwrap();
    // 300 KB of environment for one profile: more than a socket message
    // may carry, each variable under the kernel's 128 KiB exec limit.
    let big = "x".repeat(100_000);
    home.write_config(&format!(
        "kanban:\n  dispatch_interval_seconds: 60\n  profiles:\n    \
         big:\n      command: [\"/bin/sh\", \"{s}\"]\n      \
         env: {{BIG_1: \"{big}\", BIG_2: \"{big}\", BIG_3: \"{big}\"}}\n    \
         {PROFILE}:\n      command: [\"/bin/sh\", \"{s}\"]\n",
        s = script.display()
    ));
    let gw = home.gateway();
    let server = server_of(&gw);
    let id = home.create("big env", &["--assignee", "big"]);
    wait_status(&home, &id, "done");
    let (_, ppid, _, _) = wrapper_of(&home, &id);
    assert_eq!(ppid, i64::from(gw.pid), "started directly");
    // The helper is not given up for one request it could not take.
    let next = home.create("small env", &["--assignee", PROFILE]);
    wait_status(&home, &next, "done");
    let (_, ppid, _, _) = wrapper_of(&home, &next);
    assert_eq!(ppid, server, "the next worker is forked again");
}

/// Tasks the first pass claims together: their workers are started in one
/// batch of requests (all sent before the first answer is read).
const BATCH: usize = 8;

#[test]
fn a_batch_of_wrappers_started_together_gets_each_its_own_pid() {
    let home = Sandbox::new();
    let gate = home.path("go");
    // Every worker waits until all have started, then completes.
    let body = format!(
        "while [ ! -e \"{gate}\" ]; do sleep 0.05; done\n{}",
        complete_body(&home),
        gate = gate.display()
    );
    probe_profile(&home, &body);
    let ids: Vec<String> = (0..BATCH)
        .map(|i| home.create(&format!("batch {i}"), &["--assignee", PROFILE]))
        .collect();
    let gw = home.gateway();
    let server = server_of(&gw);
    let mut pids = Vec::new();
    for id in &ids {
        let (pid, ppid, pgrp, session) = wrapper_of(&home, id);
        assert_eq!(
            ppid, server,
            "{id}: the wrapper's parent is the fork server"
        );
        assert_eq!((pgrp, session), (pid, pid), "{id}: own session");
        // The pid recorded for the task is its own wrapper's, not a
        // neighbour's from the same batch.
        let recorded = wait_for(SETTLE_WAIT, || {
            home.db()
                .query_row("SELECT worker_pid FROM tasks WHERE id = ?1", [id], |r| {
                    r.get::<_, Option<i64>>(0)
                })
                .ok()
                .flatten()
        });
        assert_eq!(recorded, Some(pid), "{id}: recorded worker pid");
        pids.push(pid);
    }
    pids.sort_unstable();
    pids.dedup();
    assert_eq!(pids.len(), BATCH, "one wrapper per task");
    std::fs::write(&gate, "").unwrap();
    for id in &ids {
        wait_status(&home, id, "done");
    }
}
