//! Black-box acceptance tests of the gateway: the real `kanban` binary, a
//! temporary Hermes root, config-defined profiles whose workers are shell
//! scripts. Build the binary first:
//! `cargo build -p kanban && cargo test -p kanban-server --test gateway_e2e`.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use kanban_core::Status;
use kanban_store::TaskQuery;
use kanban_testkit::reference::reference_pythonpath;
use kanban_testkit::{Sandbox, output_within, pid_alive, text, wait_until};

/// Spec bar for these tests (the bench measures the real figure).
const PICKUP_LIMIT: Duration = Duration::from_secs(5);
/// A worker that completes its task at once.
const COMPLETE_NOW: &str = r#""$KANBAN" complete "$TASK" --summary ok >/dev/null"#;

/// Time from now until `task` has a `spawned` event, asked through
/// `kanban show --json` (a separate process: the test process must not hold
/// the board open, or its locks would hide lock bugs of the gateway).
fn time_to_spawn(home: &Sandbox, task: &str, limit: Duration) -> Option<Duration> {
    let t = Instant::now();
    let last = std::cell::RefCell::new(String::new());
    let spawned = || {
        let out = home.run(&["show", task, "--json"]);
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
        *last.borrow_mut() = format!(
            "exit {:?}, stdout {}, stderr {}",
            out.status.code(),
            text(&out.stdout),
            text(&out.stderr)
        );
        v["events"]
            .as_array()
            .is_some_and(|e| e.iter().any(|e| e["kind"] == "spawned"))
    };
    let seen = wait_until(limit, spawned);
    if !seen {
        eprintln!("last `kanban show {task} --json`: {}", last.borrow());
    }
    seen.then(|| t.elapsed())
}

fn statuses(home: &Sandbox) -> BTreeMap<String, Status> {
    home.store()
        .list_tasks(&TaskQuery::default())
        .unwrap()
        .into_iter()
        .map(|t| (t.id, t.status))
        .collect()
}

fn count(home: &Sandbox, s: Status) -> usize {
    statuses(home).values().filter(|v| **v == s).count()
}

/// A gateway with `dispatch_interval_seconds: 60` (no tick during the test).
fn slow_ticking_gateway(home: &Sandbox) -> kanban_testkit::GatewayChild {
    let w = home.traced_worker("w", COMPLETE_NOW);
    home.write_config(&home.config_with_worker("sh", &w, "  dispatch_interval_seconds: 60\n"));
    let gw = home.gateway();
    // Let the start-up pass go by: what follows can only be change-driven.
    std::thread::sleep(Duration::from_millis(300));
    gw
}

#[test]
fn a_task_created_by_another_kanban_process_is_picked_up_without_the_tick() {
    let home = Sandbox::new();
    let _gw = slow_ticking_gateway(&home);
    for i in 0..3 {
        let id = home.create(&format!("from the rust cli {i}"), &["--assignee", "sh"]);
        let took = time_to_spawn(&home, &id, PICKUP_LIMIT);
        assert!(took.is_some(), "kanban create: {id} not spawned within 5 s");
        eprintln!("pick-up after `kanban create`: {:?}", took.unwrap());
    }
}

#[test]
fn a_task_created_by_the_python_reference_is_picked_up_without_the_tick() {
    if reference_pythonpath().is_none() {
        return;
    }
    let home = Sandbox::new();
    let gw = slow_ticking_gateway(&home);
    for i in 0..3 {
        let code = format!(
            "import hermes_cli.kanban_db as kb\n\
             c = kb.connect()\n\
             print(kb.create_task(c, title='from the python reference {i}', assignee='sh'))"
        );
        let mut py = home.reference_code(&code).expect("the reference");
        let out = py.output().expect("python3");
        assert!(out.status.success(), "python: {}", text(&out.stderr));
        let id = text(&out.stdout).trim().to_string();
        assert!(id.starts_with("t_"), "python printed {id:?}");
        let took = time_to_spawn(&home, &id, PICKUP_LIMIT);
        assert!(
            took.is_some(),
            "reference create_task: {id} not spawned within 5 s\n{}",
            gw.log_text()
        );
        eprintln!("pick-up after reference create_task: {:?}", took.unwrap());
    }
}

#[test]
fn kill_9_of_the_gateway_loses_no_task_and_runs_none_twice_at_once() {
    kill_9_scenario(20);
}

#[test]
fn kill_9_in_the_middle_of_a_spawn_burst_converges_too() {
    kill_9_scenario(7);
}

/// 20 slow tasks; the gateway is killed once `kill_at` of them are running
/// (20: all of them; fewer: in the middle of the pass spawning them, so some
/// claims have no worker yet), then started again.
fn kill_9_scenario(kill_at: usize) {
    const TASKS: usize = 20;
    let home = Sandbox::new();
    let w = home.traced_worker(
        "slow",
        r#"sleep 3; "$KANBAN" complete "$TASK" --summary "done by $$" >/dev/null"#,
    );
    // A kill between claim and spawn leaves a claim without a worker: it is
    // reclaimed by the first pass after its TTL, and with no board change
    // that pass is a tick. Short TTL and tick keep the test short.
    home.write_config(&home.config_with_worker("slow", &w, "  dispatch_interval_seconds: 2\n"));
    let env = [("HERMES_KANBAN_CLAIM_TTL_SECONDS", "8")];
    let mut gw = home.gateway_with(&env, &[]);
    let ids: Vec<String> = if kill_at < TASKS {
        // One burst from another connection: one pass spawns them all.
        let store = home.store();
        (0..TASKS)
            .map(|i| {
                let req = kanban_store::NewTask {
                    title: format!("slow {i}"),
                    assignee: Some("slow".into()),
                    ..Default::default()
                };
                store.create_task(&req).unwrap().task.id
            })
            .collect()
    } else {
        (0..TASKS)
            .map(|i| home.create(&format!("slow {i}"), &["--assignee", "slow"]))
            .collect()
    };
    assert!(
        wait_until(Duration::from_secs(10), || count(&home, Status::Running)
            >= kill_at),
        "not running: {:?}\n{}",
        statuses(&home),
        gw.log_text()
    );
    gw.kill9();
    let first = gw.pid;
    drop(gw);
    let gw = home.gateway_with(&env, &[]);
    assert_ne!(gw.pid, first);

    assert!(
        wait_until(Duration::from_secs(40), || count(&home, Status::Done)
            == TASKS),
        "not all done: {:?}\n{}",
        statuses(&home),
        gw.log_text()
    );
    let store = home.store();
    for id in &ids {
        let runs = store.runs(id).unwrap();
        let completed = runs
            .iter()
            .filter(|r| r.outcome.as_deref() == Some("completed"))
            .count();
        assert_eq!(completed, 1, "{id}: runs {runs:?}");
        let spans = home.trace(id);
        assert!(!spans.is_empty(), "{id}: no worker ran");
        for pair in spans.windows(2) {
            let (a, b) = (pair[0], pair[1]);
            let a_end = a.1.unwrap_or(u128::MAX);
            assert!(a_end <= b.0, "{id}: two workers at once: {spans:?}");
        }
    }
}

#[test]
fn lowering_max_spawn_in_config_takes_effect_on_the_next_pass() {
    const TASKS: usize = 12;
    let home = Sandbox::new();
    let w = home.traced_worker(
        "w",
        r#"sleep 1.5; "$KANBAN" complete "$TASK" --summary ok >/dev/null"#,
    );
    let config = |max: u32| {
        home.config_with_worker(
            "w",
            &w,
            &format!("  dispatch_interval_seconds: 60\n  max_spawn: {max}\n"),
        )
    };
    home.write_config(&config(4));
    let gw = home.gateway();
    for i in 0..TASKS {
        home.create(&format!("t{i}"), &["--assignee", "w"]);
    }
    let mut peak = 0;
    assert!(wait_until(Duration::from_secs(10), || {
        let running = count(&home, Status::Running);
        peak = peak.max(running);
        running == 4
    }));
    home.write_config(&config(2));
    // The four already running finish; from then on at most two run.
    assert!(wait_until(Duration::from_secs(10), || count(
        &home,
        Status::Done
    ) >= 4));
    let mut after = 0;
    assert!(
        wait_until(Duration::from_secs(30), || {
            let s = statuses(&home);
            let running = s.values().filter(|v| **v == Status::Running).count();
            after = after.max(running);
            s.values().all(|v| *v == Status::Done)
        }),
        "not all done: {:?}\n{}",
        statuses(&home),
        gw.log_text()
    );
    assert!(peak <= 4, "peak before the change: {peak}");
    assert!(after <= 2, "ran {after} at once after max_spawn: 2");
    assert!(after >= 1);
}

#[test]
fn one_gateway_per_root_and_sigterm_leaves_workers_running() {
    let home = Sandbox::new();
    let w = home.traced_worker(
        "w",
        r#"sleep 4; "$KANBAN" complete "$TASK" --summary "survived" >/dev/null"#,
    );
    home.write_config(&home.config_with_worker("w", &w, ""));
    let mut gw = home.gateway();

    let out = output_within(
        &mut home.kanban(["gateway", "run", "--port", "0"]),
        Duration::from_secs(5),
    );
    assert!(!out.status.success(), "a second gateway started");
    let err = text(&out.stderr);
    assert!(
        err.contains(&format!("pid {}", gw.pid)),
        "second gateway: {err}"
    );

    let id = home.create("long", &["--assignee", "w"]);
    assert!(time_to_spawn(&home, &id, PICKUP_LIMIT).is_some());
    let pid = home.store().get_task(&id).unwrap().unwrap().worker_pid;
    let pid = pid.expect("worker pid") as i32;

    let (status, took) = gw.sigterm(Duration::from_secs(5)).expect("still running");
    assert!(took < Duration::from_secs(2), "stop took {took:?}");
    assert!(status.success(), "exit {status}");
    assert!(pid_alive(pid), "worker {pid} died with the gateway");
    assert!(
        wait_until(Duration::from_secs(10), || count(&home, Status::Done) == 1),
        "the orphaned worker could not finish: {:?}",
        statuses(&home)
    );
    let out = home.run(&["gateway", "status"]);
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn create_warns_only_when_a_ready_assigned_task_has_no_dispatcher() {
    const WARNING: &str = "gateway start";
    let home = Sandbox::new();
    let w = home.traced_worker("w", COMPLETE_NOW);
    home.write_config(&home.config_with_worker("w", &w, ""));
    let err = |args: &[&str]| {
        let out = home.run(args);
        assert!(out.status.success(), "{args:?}: {}", text(&out.stderr));
        text(&out.stderr)
    };
    let warned = err(&["create", "ready and assigned", "--assignee", "w"]);
    assert!(warned.contains(WARNING), "no warning: {warned:?}");
    assert!(!err(&["create", "j", "--assignee", "w", "--json"]).contains(WARNING));
    assert!(!err(&["create", "t", "--assignee", "w", "--triage"]).contains(WARNING));
    assert!(!err(&["create", "nobody's"]).contains(WARNING));

    let _gw = home.gateway();
    let quiet = err(&["create", "with a gateway", "--assignee", "w"]);
    assert!(!quiet.contains(WARNING), "warned with a gateway: {quiet:?}");
}

/// Seed 001: a gateway that runs with dispatching off is no dispatcher; the
/// warning then points at `dispatch_in_gateway`.
#[test]
fn create_warns_when_the_running_gateway_does_not_dispatch() {
    let home = Sandbox::new();
    let _gw = home.gateway_with(&[("HERMES_KANBAN_DISPATCH_IN_GATEWAY", "0")], &[]);
    let out = home.run(&["create", "stuck", "--assignee", "someone"]);
    let err = text(&out.stderr);
    assert!(err.contains("dispatch_in_gateway"), "no warning: {err:?}");
}

#[test]
fn demo_runs_its_graph_to_done_without_touching_config() {
    let home = Sandbox::new();
    std::fs::write(home.root().join("config.yaml"), "# mine\nkanban: {}\n").unwrap();
    // Without --demo-root the demo runs on a throwaway root of its own.
    // Without its trickle (--demo-rate off) the opening is all there is.
    let here = home.root().to_str().unwrap();
    let demo = ["--demo", "--demo-root", here, "--demo-rate", "off"];
    let gw = home.gateway_with(&[], &demo);
    let store = home.board_store("demo");
    let opening = kanban_server::demo::OPENING_TASKS;
    // The graph's last task: its API task crashes once and is retried.
    let released = || {
        let tasks = store.list_tasks(&TaskQuery::default()).unwrap();
        tasks.len() == opening
            && tasks
                .iter()
                .any(|t| t.title == "Release v1.0" && t.status == Status::Done)
    };
    assert!(
        wait_until(Duration::from_secs(60), released),
        "the demo graph did not finish\n{}",
        gw.log_text()
    );
    let config = std::fs::read_to_string(home.root().join("config.yaml")).unwrap();
    assert_eq!(config, "# mine\nkanban: {}\n");
    drop(gw);
    // A second start with unfinished demo tasks resumes them.
    let _gw = home.gateway_with(&[], &demo);
    let n = store.list_tasks(&TaskQuery::default()).unwrap().len();
    assert_eq!(n, opening);
}
