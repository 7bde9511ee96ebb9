//! Atomic claims under process concurrency (acceptance item 4): 8 `kanban claim`
//! processes racing over the same ready tasks never double-claim.
//!
//! Only the built binary and Python's standard-library sqlite3 (to count events)
//! are used; the reference is not needed here.

use std::collections::BTreeMap;
use std::process::{Child, Output, Stdio};
use std::sync::{Arc, Barrier};
use std::thread;

use kanban_testkit::Sandbox;
use kanban_testkit::reference::{
    describe, is_lost_claim, kanban_writer, rotated, run_json, run_ok, task_id,
};
use serde_json::Value;

const CLAIMERS: usize = 8;
const SWEEP_TASKS: usize = 30;
const SIMULTANEOUS_TASKS: usize = 10;
const WRITERS: usize = 4;
const TASKS_PER_WRITER: usize = 25;

fn create_ready_tasks(b: &Sandbox, n: usize, prefix: &str) -> Vec<String> {
    (0..n)
        .map(|i| {
            let title = format!("{prefix} {i}");
            let task = run_json(&mut b.kanban([
                "create",
                title.as_str(),
                "--assignee",
                "worker",
                "--json",
            ]));
            assert_eq!(task["status"], "ready", "{task}");
            task_id(&task)
        })
        .collect()
}

fn claimed_events(b: &Sandbox) -> BTreeMap<String, i64> {
    b.sql(
        "SELECT task_id, count(*) FROM task_events WHERE kind = 'claimed' GROUP BY task_id",
        &[],
    )
    .into_iter()
    .map(|r| (r[0].as_str().unwrap().to_owned(), r[1].as_i64().unwrap()))
    .collect()
}

/// Checks the board after a race: per task one winner, one `claimed` event,
/// one open run, status running.
fn assert_one_claim_each(b: &Sandbox, ids: &[String], winners: &BTreeMap<String, Vec<usize>>) {
    let doubles: Vec<_> = ids
        .iter()
        .filter(|id| winners.get(*id).map(Vec::len) != Some(1))
        .map(|id| format!("{id}: won by claimers {:?}", winners.get(id)))
        .collect();
    assert!(
        doubles.is_empty(),
        "tasks not claimed exactly once: {doubles:?}"
    );
    let events = claimed_events(b);
    for id in ids {
        assert_eq!(events.get(id), Some(&1), "`claimed` events of {id}");
        let runs = b.sql_count("SELECT count(*) FROM task_runs WHERE task_id = ?", &[id]);
        assert_eq!(runs, 1, "runs of {id}");
        let status = b.sql("SELECT status FROM tasks WHERE id = ?", &[id]);
        assert_eq!(status[0][0], Value::from("running"), "status of {id}");
    }
    b.assert_integrity_ok();
}

/// Classifies one finished `kanban claim`: Ok(true) won, Ok(false) lost the
/// race cleanly, Err(description) for anything else (locked database, crash).
fn outcome(what: &str, out: &Output) -> Result<bool, String> {
    if out.status.success() {
        Ok(true)
    } else if is_lost_claim(out) {
        Ok(false)
    } else {
        Err(format!(
            "{what} -> {}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// 8 claimers each try to claim every task, one `kanban claim` process per
/// attempt, starting at different points of the list.
#[test]
fn eight_claimers_sweeping_the_board_claim_each_task_once() {
    let b = Arc::new(Sandbox::new());
    run_ok(&mut b.kanban(["init"]));
    let ids = create_ready_tasks(&b, SWEEP_TASKS, "sweep");
    let barrier = Arc::new(Barrier::new(CLAIMERS));
    let handles: Vec<_> = (0..CLAIMERS)
        .map(|c| {
            let (b, barrier) = (Arc::clone(&b), Arc::clone(&barrier));
            let order = rotated(&ids, c * SWEEP_TASKS / CLAIMERS);
            thread::spawn(move || {
                barrier.wait();
                let (mut won, mut errors) = (Vec::new(), Vec::new());
                for id in order {
                    let mut cmd = b.kanban(["claim", id.as_str()]);
                    let out = cmd.output().expect("spawn kanban claim");
                    match outcome(&describe(&cmd), &out) {
                        Ok(true) => won.push(id),
                        Ok(false) => {}
                        Err(e) => errors.push(e),
                    }
                }
                (won, errors)
            })
        })
        .collect();
    let mut winners: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    let mut errors = Vec::new();
    for (c, h) in handles.into_iter().enumerate() {
        let (won, e) = h.join().expect("claimer thread");
        for id in won {
            winners.entry(id).or_default().push(c);
        }
        errors.extend(e);
    }
    assert!(
        errors.is_empty(),
        "claims failed for another reason than a lost race:\n{}",
        errors.join("\n")
    );
    let per_claimer: Vec<usize> = (0..CLAIMERS)
        .map(|c| winners.values().filter(|w| w.contains(&c)).count())
        .collect();
    assert_eq!(
        per_claimer.iter().sum::<usize>(),
        SWEEP_TASKS,
        "successes per claimer {per_claimer:?}"
    );
    assert_one_claim_each(&b, &ids, &winners);
}

/// For each task, 8 `kanban claim` processes are started together on that one
/// task: exactly one of them wins.
#[test]
fn eight_simultaneous_claims_of_one_task_have_one_winner() {
    let b = Sandbox::new();
    run_ok(&mut b.kanban(["init"]));
    let ids = create_ready_tasks(&b, SIMULTANEOUS_TASKS, "hot");
    let mut winners: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    let mut errors = Vec::new();
    for id in &ids {
        let children: Vec<(String, Child)> = (0..CLAIMERS)
            .map(|_| {
                let mut cmd = b.kanban(["claim", id.as_str()]);
                cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
                let child = cmd.spawn().expect("spawn kanban claim");
                (describe(&cmd), child)
            })
            .collect();
        for (c, (what, child)) in children.into_iter().enumerate() {
            let out = child.wait_with_output().expect("wait kanban claim");
            match outcome(&what, &out) {
                Ok(true) => winners.entry(id.clone()).or_default().push(c),
                Ok(false) => {}
                Err(e) => errors.push(e),
            }
        }
    }
    assert!(
        errors.is_empty(),
        "claims failed for another reason than a lost race:\n{}",
        errors.join("\n")
    );
    assert_one_claim_each(&b, &ids, &winners);
}

/// 4 writers, each a loop of `kanban create`, `kanban claim`, `kanban complete`
/// processes, on one board with nothing else keeping it open: every process
/// opens and closes the database, so checkpoint-on-close and WAL deletion are
/// exercised all the time. No error, no lost write, file intact.
#[test]
fn four_cli_writers_lose_nothing() {
    let b = Arc::new(Sandbox::new());
    run_ok(&mut b.kanban(["init"]));
    let barrier = Arc::new(Barrier::new(WRITERS));
    let handles: Vec<_> = (0..WRITERS)
        .map(|w| {
            let (b, barrier) = (Arc::clone(&b), Arc::clone(&barrier));
            thread::spawn(move || {
                barrier.wait();
                kanban_writer(&b, &format!("w{w}"), TASKS_PER_WRITER)
            })
        })
        .collect();
    let (mut created, mut completed, mut errors) = (Vec::new(), Vec::new(), Vec::new());
    for h in handles {
        let (c, d, e) = h.join().expect("writer thread");
        created.extend(c);
        completed.extend(d);
        errors.extend(e);
    }
    assert!(errors.is_empty(), "errors:\n{}", errors.join("\n"));
    assert_eq!(completed.len(), WRITERS * TASKS_PER_WRITER);
    created.sort();
    let done: Vec<String> = b
        .sql(
            "SELECT id FROM tasks WHERE status = 'done' ORDER BY id",
            &[],
        )
        .into_iter()
        .map(|r| r[0].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(done, created, "every created task is present and done");
    let completions = b.sql_count(
        "SELECT count(*) FROM task_events WHERE kind = 'completed'",
        &[],
    );
    assert_eq!(completions, (WRITERS * TASKS_PER_WRITER) as i64);
    b.assert_integrity_ok();
}
