//! `kanban dispatch` under concurrency and crashes: ceilings hold while
//! several dispatch processes race, every task runs exactly once with eight
//! of them, and `kill -9` of a worker or of a dispatcher mid-pass loses
//! nothing.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::time::{Duration, Instant};

use kanban_testkit::{Sandbox, expect_until, pid_alive};

/// Run `n` loops of `kanban dispatch` until `stop` is set.
fn racing_dispatchers(
    h: &Arc<Sandbox>,
    n: usize,
    stop: &Arc<AtomicBool>,
) -> Vec<std::thread::JoinHandle<()>> {
    (0..n)
        .map(|_| {
            let (h, stop) = (h.clone(), stop.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::SeqCst) {
                    let out = h.run(&["dispatch", "--json"]);
                    assert!(out.status.success(), "{out:?}");
                }
            })
        })
        .collect()
}

/// Sample running counts (total and per assignee) until `stop`.
fn sampler(
    h: &Arc<Sandbox>,
    stop: &Arc<AtomicBool>,
) -> std::thread::JoinHandle<(i64, HashMap<String, i64>)> {
    let (h, stop) = (h.clone(), stop.clone());
    std::thread::spawn(move || {
        let db = h.db();
        let (mut max, mut per) = (0, HashMap::<String, i64>::new());
        while !stop.load(Ordering::SeqCst) {
            let n: i64 = db
                .query_row(
                    "SELECT COUNT(*) FROM tasks WHERE status = 'running'",
                    [],
                    |r| r.get(0),
                )
                .unwrap();
            max = max.max(n);
            let mut st = db
                .prepare("SELECT assignee, COUNT(*) FROM tasks WHERE status = 'running' GROUP BY assignee")
                .unwrap();
            for row in st
                .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))
                .unwrap()
            {
                let (a, c) = row.unwrap();
                let e = per.entry(a).or_default();
                *e = (*e).max(c);
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        (max, per)
    })
}

fn race_for(h: &Arc<Sandbox>, dispatchers: usize, secs: u64) -> (i64, HashMap<String, i64>) {
    let stop = Arc::new(AtomicBool::new(false));
    let sample = sampler(h, &stop);
    let loops = racing_dispatchers(h, dispatchers, &stop);
    std::thread::sleep(Duration::from_secs(secs));
    stop.store(true, Ordering::SeqCst);
    for l in loops {
        l.join().unwrap();
    }
    sample.join().unwrap()
}

#[test]
fn max_spawn_ceiling_holds_while_four_dispatchers_race() {
    let mut h = Sandbox::new();
    h.kanban_config("  max_spawn: 2\n");
    h.profile("slow", "sleep 1\n$K complete \"$1\"");
    let ids: Vec<String> = (0..10)
        .map(|i| h.create(&format!("t{i}"), &["--assignee", "slow"]))
        .collect();
    let h = Arc::new(h);
    let (max, _) = race_for(&h, 4, 10);
    assert!(max <= 2, "{max} tasks ran at once with max_spawn 2");
    assert!(max >= 1);
    let done = ids.iter().filter(|id| h.status(id) == "done").count();
    assert!(done >= 2, "only {done} tasks finished");
    // `--max` overrides the config the same way.
    let (max, _) = race_for(&h, 2, 3);
    assert!(max <= 2);
}

#[test]
fn cli_max_is_a_live_ceiling_and_profile_limits_hold() {
    let mut h = Sandbox::new();
    h.kanban_config("  profile_limits:\n    alpha: 1\n    beta: 2\n");
    h.profile("alpha", "sleep 1\n$K complete \"$1\"");
    h.profile("beta", "sleep 1\n$K complete \"$1\"");
    for i in 0..5 {
        h.create(&format!("a{i}"), &["--assignee", "alpha"]);
        h.create(&format!("b{i}"), &["--assignee", "beta"]);
    }
    let h = Arc::new(h);
    let (max, per) = race_for(&h, 4, 8);
    assert!(per.get("alpha").copied().unwrap_or(0) <= 1, "{per:?}");
    assert!(per.get("beta").copied().unwrap_or(0) <= 2, "{per:?}");
    assert!(max <= 3);
    // A controller passing --max 1 never has more than one running.
    expect_until("race workers finished", || h.running_count() == 0);
    let stop = Arc::new(AtomicBool::new(false));
    let sample = sampler(&h, &stop);
    let deadline = Instant::now() + Duration::from_secs(4);
    while Instant::now() < deadline {
        h.ok(&["dispatch", "--max", "1"]);
    }
    stop.store(true, Ordering::SeqCst);
    let (max, _) = sample.join().unwrap();
    assert!(max <= 1, "{max} running with --max 1");
}

#[test]
fn eight_dispatchers_run_every_task_exactly_once() {
    let mut h = Sandbox::new();
    h.profile("quick", "$K complete \"$1\" --summary once");
    let ids: Vec<String> = (0..30)
        .map(|i| h.create(&format!("q{i}"), &["--assignee", "quick"]))
        .collect();
    let h = Arc::new(h);
    let stop = Arc::new(AtomicBool::new(false));
    let loops = racing_dispatchers(&h, 8, &stop);
    expect_until("all tasks done", || {
        ids.iter().all(|id| h.status(id) == "done")
    });
    stop.store(true, Ordering::SeqCst);
    for l in loops {
        l.join().unwrap();
    }
    for id in &ids {
        assert_eq!(h.outcomes(id), vec![Some("completed".into())], "{id}");
        assert_eq!(h.event_count(id, "claimed"), 1, "{id}");
        // A worker that completes before its spawn is recorded leaves no
        // `spawned` event (the record is compare-and-set on the run).
        assert!(h.event_count(id, "spawned") <= 1, "{id}");
    }
}

#[test]
fn kill_9_of_a_worker_is_detected_and_the_task_retried() {
    let mut h = Sandbox::new();
    // First attempt hangs (with a child); the retry completes.
    h.profile(
        "fragile",
        "if [ -f \"$OUT/tried.$1\" ]; then $K complete \"$1\"; exit 0; fi\n\
         touch \"$OUT/tried.$1\"\nsleep 300 &\necho $! > \"$OUT/child.$1\"\nwait",
    );
    let t = h.create("fragile", &["--assignee", "fragile"]);
    h.dispatch();
    let pid = h.worker_pid(&t).expect("worker pid");
    expect_until("child started", || h.out(&format!("child.{t}")).exists());
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    h.settle(&[&t], &["done"]);
    let outcomes = h.outcomes(&t);
    assert_eq!(
        outcomes.first().cloned().flatten().as_deref(),
        Some("crashed"),
        "{outcomes:?}"
    );
    assert_eq!(
        outcomes.last().cloned().flatten().as_deref(),
        Some("completed")
    );
    // What was left of the killed worker's group was ended too.
    let child: i64 = std::fs::read_to_string(h.out(&format!("child.{t}")))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    expect_until("orphaned child ended", || !pid_alive(child));
}

#[test]
fn kill_9_of_dispatchers_mid_pass_loses_nothing() {
    let mut h = Sandbox::new();
    // Claims made by a killed dispatcher before it spawned are released by TTL.
    h.env
        .insert("HERMES_KANBAN_CLAIM_TTL_SECONDS".into(), "2".into());
    h.profile("quick", "$K complete \"$1\"");
    let ids: Vec<String> = (0..25)
        .map(|i| h.create(&format!("k{i}"), &["--assignee", "quick"]))
        .collect();
    let delay = AtomicI64::new(1);
    for _ in 0..10 {
        let mut child = h
            .std_cmd()
            .args(["dispatch"])
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(
            delay.fetch_add(7, Ordering::SeqCst) as u64
        ));
        let _ = child.kill();
        let _ = child.wait();
    }
    h.settle(
        &ids.iter().map(String::as_str).collect::<Vec<_>>(),
        &["done"],
    );
    for id in &ids {
        let outcomes = h.outcomes(id);
        assert_eq!(
            outcomes.last().cloned().flatten().as_deref(),
            Some("completed"),
            "{id}: {outcomes:?}"
        );
        let completed = outcomes
            .iter()
            .filter(|o| o.as_deref() == Some("completed"))
            .count();
        assert_eq!(completed, 1, "{id}: {outcomes:?}");
        assert!(
            outcomes.iter().all(Option::is_some),
            "open run left on {id}"
        );
    }
}
