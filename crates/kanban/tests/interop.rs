//! Interoperability with the Python reference (hermes-agent 0.19.0) on one board.
//!
//! A board written by either implementation is read and edited by the other,
//! and both write one board at the same time without errors, lost writes or
//! corruption. The reference is driven through `tests/interop/ref_board.py`,
//! which only calls `hermes_cli.kanban_db` (and, for `cli`, the reference's own
//! `hermes kanban` argument parser); `kanban` is the built binary.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Barrier};
use std::thread;

use kanban_testkit::Sandbox;
use kanban_testkit::reference::{
    describe, is_lost_claim, kanban_writer, rotated, run_json, run_ok, task_id,
};
use serde_json::{Value, json};

/// Unwraps a reference command, or returns from the test when skipping is allowed.
macro_rules! reference {
    ($board:expr, $args:expr) => {
        match $board.reference($args) {
            Some(cmd) => cmd,
            None => return,
        }
    };
}

fn statuses(list: &Value) -> BTreeMap<String, String> {
    list.as_array()
        .unwrap_or_else(|| panic!("expected a JSON list of tasks, got {list}"))
        .iter()
        .map(|t| {
            (
                task_id(t),
                t["status"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

fn ids(list: &Value) -> Vec<String> {
    list.as_array()
        .unwrap_or_else(|| panic!("expected a JSON list, got {list}"))
        .iter()
        .map(task_id)
        .collect()
}

fn event_kinds(show: &Value) -> Vec<String> {
    show["events"]
        .as_array()
        .unwrap_or_else(|| panic!("no events in {show}"))
        .iter()
        .map(|e| e["kind"].as_str().unwrap_or_default().to_owned())
        .collect()
}

#[test]
fn reference_board_is_listed_shown_and_edited_by_kanban() {
    let b = Sandbox::new();
    run_ok(&mut reference!(b, ["init"]));
    let create = |args: &[&str]| task_id(&run_json(&mut b.reference(args).expect("reference")));
    let parent = create(&[
        "create",
        "Write the spec",
        "--assignee",
        "Alice",
        "--body",
        "All the details",
    ]);
    let child = create(&[
        "create",
        "Build it",
        "--parent",
        &parent,
        "--assignee",
        "bob",
    ]);
    let side = create(&[
        "create",
        "Side quest",
        "--tenant",
        "acme",
        "--priority",
        "5",
    ]);
    let stuck = create(&["create", "Stuck one"]);
    run_ok(&mut reference!(
        b,
        ["block", stuck.as_str(), "--reason", "needs credentials"]
    ));
    run_ok(&mut reference!(
        b,
        [
            "comment",
            parent.as_str(),
            "first note",
            "--author",
            "alice"
        ]
    ));

    // kanban reads the reference's board exactly as the reference CLI prints it.
    let list = run_json(&mut b.kanban(["list", "--json"]));
    let want: BTreeMap<String, String> = [
        (parent.clone(), "ready"),
        (child.clone(), "todo"),
        (side.clone(), "ready"),
        (stuck.clone(), "blocked"),
    ]
    .into_iter()
    .map(|(id, s)| (id, s.to_owned()))
    .collect();
    assert_eq!(statuses(&list), want, "kanban list --json: {list}");
    assert_eq!(
        ids(&list)[0],
        side,
        "default order is priority DESC, created ASC"
    );
    let by_id: BTreeMap<String, &Value> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|t| (task_id(t), t))
        .collect();
    assert_eq!(by_id[&parent]["assignee"], "alice");
    assert_eq!(by_id[&parent]["body"], "All the details");
    assert_eq!(by_id[&side]["tenant"], "acme");
    assert_eq!(by_id[&side]["priority"], 5);
    let ref_list = run_json(&mut reference!(b, ["cli", "--", "list", "--json"]));
    assert_eq!(
        list, ref_list,
        "`kanban list --json` differs from `hermes kanban list --json` on the same board"
    );

    let show = run_json(&mut b.kanban(["show", parent.as_str(), "--json"]));
    assert_eq!(show["task"]["title"], "Write the spec");
    assert_eq!(show["children"], json!([child]));
    assert_eq!(show["comments"][0]["body"], "first note");
    assert_eq!(show["comments"][0]["author"], "alice");
    assert!(event_kinds(&show).contains(&"created".to_owned()), "{show}");
    let ref_show = run_json(&mut reference!(
        b,
        ["cli", "--", "show", parent.as_str(), "--json"]
    ));
    assert_eq!(
        show, ref_show,
        "`kanban show --json` differs from `hermes kanban show --json` on the same task"
    );

    // kanban edits the reference's board.
    run_ok(&mut b.kanban(["claim", parent.as_str()]));
    run_ok(&mut b.kanban([
        "complete",
        parent.as_str(),
        "--summary",
        "spec written",
        "--metadata",
        r#"{"pages": 3}"#,
    ]));
    let follow = task_id(&run_json(&mut b.kanban([
        "create",
        "Follow-up",
        "--parent",
        child.as_str(),
        "--assignee",
        "bob",
        "--json",
    ])));
    run_ok(&mut b.kanban(["unblock", stuck.as_str()]));
    run_ok(&mut b.kanban(["link", side.as_str(), child.as_str()]));

    // The reference sees every edit.
    let shown = run_json(&mut reference!(b, ["show", parent.as_str()]));
    assert_eq!(shown["task"]["status"], "done", "{shown}");
    assert_eq!(shown["latest_summary"], "spec written", "{shown}");
    let runs = shown["runs"].as_array().expect("runs");
    assert_eq!(runs.len(), 1, "one run per attempt: {shown}");
    assert_eq!(runs[0]["outcome"], "completed", "{shown}");
    assert_eq!(runs[0]["metadata"], json!({"pages": 3}), "{shown}");
    let kinds = event_kinds(&shown);
    for kind in ["created", "claimed", "completed"] {
        assert!(
            kinds.contains(&kind.to_owned()),
            "no {kind} event: {kinds:?}"
        );
    }

    let ref_list = run_json(&mut reference!(b, ["list"]));
    let want: BTreeMap<String, String> = [
        (parent.clone(), "done"),
        (child.clone(), "todo"), // demoted again: it now also waits for `side`
        (side.clone(), "ready"),
        (stuck.clone(), "ready"),
        (follow.clone(), "todo"),
    ]
    .into_iter()
    .map(|(id, s)| (id, s.to_owned()))
    .collect();
    assert_eq!(statuses(&ref_list), want, "reference list: {ref_list}");
    let follow_show = run_json(&mut reference!(b, ["show", follow.as_str()]));
    assert_eq!(follow_show["parents"], json!([child]));
    assert_eq!(follow_show["task"]["assignee"], "bob");

    // The reference finishes the last parent; kanban sees the child promoted.
    run_ok(&mut reference!(b, ["claim", side.as_str()]));
    run_ok(&mut reference!(b, ["complete", side.as_str()]));
    let list = run_json(&mut b.kanban(["list", "--json"]));
    assert_eq!(statuses(&list)[&child], "ready", "{list}");
    b.assert_integrity_ok();
}

#[test]
fn kanban_board_is_read_and_edited_by_reference() {
    let b = Sandbox::new();
    if kanban_testkit::reference::reference_pythonpath().is_none() {
        return;
    }
    run_ok(&mut b.kanban(["init"]));
    let design = task_id(&run_json(&mut b.kanban([
        "create",
        "Design",
        "--assignee",
        "alice",
        "--body",
        "Sketch it",
        "--json",
    ])));
    let build = task_id(&run_json(&mut b.kanban([
        "create",
        "Build",
        "--parent",
        design.as_str(),
        "--assignee",
        "bob",
        "--json",
    ])));
    run_ok(&mut b.kanban(["comment", design.as_str(), "looks good"]));

    // The reference's own migration pass accepts our file and keeps the data.
    run_ok(&mut reference!(b, ["init"]));
    let list = run_json(&mut reference!(b, ["list"]));
    let want: BTreeMap<String, String> = [(design.clone(), "ready"), (build.clone(), "todo")]
        .into_iter()
        .map(|(id, s)| (id, s.to_owned()))
        .collect();
    assert_eq!(statuses(&list), want, "reference list: {list}");
    let shown = run_json(&mut reference!(b, ["show", build.as_str()]));
    assert_eq!(shown["parents"], json!([design]));
    assert_eq!(shown["task"]["assignee"], "bob");
    let shown = run_json(&mut reference!(b, ["show", design.as_str()]));
    assert_eq!(shown["task"]["body"], "Sketch it");
    assert_eq!(shown["comments"][0]["body"], "looks good");

    // The reference claims and completes a task kanban created.
    run_ok(&mut reference!(b, ["claim", design.as_str()]));
    run_ok(&mut reference!(
        b,
        [
            "complete",
            design.as_str(),
            "--summary",
            "designed",
            "--metadata",
            r#"{"k": "v"}"#
        ]
    ));
    let show = run_json(&mut b.kanban(["show", design.as_str(), "--json"]));
    assert_eq!(show["task"]["status"], "done", "{show}");
    assert_eq!(show["latest_summary"], "designed", "{show}");
    assert_eq!(show["runs"][0]["outcome"], "completed", "{show}");
    assert_eq!(show["runs"][0]["metadata"], json!({"k": "v"}), "{show}");
    let list = run_json(&mut b.kanban(["list", "--json"]));
    assert_eq!(statuses(&list)[&build], "ready", "{list}");

    // Block with the reference, unblock with kanban, claim with the reference,
    // complete with kanban.
    run_ok(&mut reference!(
        b,
        ["block", build.as_str(), "--reason", "waiting on review"]
    ));
    let show = run_json(&mut b.kanban(["show", build.as_str(), "--json"]));
    assert_eq!(show["task"]["status"], "blocked", "{show}");
    run_ok(&mut b.kanban(["unblock", build.as_str()]));
    run_ok(&mut reference!(b, ["claim", build.as_str()]));
    run_ok(&mut b.kanban(["complete", build.as_str(), "--summary", "built"]));
    let list = run_json(&mut reference!(b, ["list"]));
    assert!(
        statuses(&list).values().all(|s| s == "done"),
        "reference list: {list}"
    );
    let shown = run_json(&mut reference!(b, ["show", build.as_str()]));
    assert_eq!(shown["latest_summary"], "built", "{shown}");

    let ours = run_json(&mut b.kanban(["list", "--json"]));
    let theirs = run_json(&mut reference!(b, ["cli", "--", "list", "--json"]));
    assert_eq!(
        ours, theirs,
        "`kanban list --json` differs from `hermes kanban list --json`"
    );
    b.assert_integrity_ok();
}

/// Every table, column and index the reference creates exists in a board that
/// `kanban init` creates, with the same declared type, nullability, default and key.
#[test]
fn kanban_schema_contains_the_reference_schema() {
    let theirs = Sandbox::new();
    run_ok(&mut reference!(theirs, ["init"]));
    let ours = Sandbox::new();
    run_ok(&mut ours.kanban(["init"]));
    let schema = |b: &Sandbox| {
        let db = b.db_path();
        run_json(&mut b.python(["schema", "--db", db.to_str().unwrap()]))
    };
    let (want, got) = (schema(&theirs), schema(&ours));
    let mut problems = Vec::new();
    for (table, cols) in want["tables"].as_object().expect("tables") {
        let Some(have) = got["tables"].get(table).and_then(Value::as_array) else {
            problems.push(format!("missing table {table}"));
            continue;
        };
        for col in cols.as_array().unwrap() {
            match have.iter().find(|c| c["name"] == col["name"]) {
                None => problems.push(format!("{table}: missing column {}", col["name"])),
                Some(c) if c != col => {
                    problems.push(format!("{table}: column {c} differs from reference {col}"))
                }
                Some(_) => {}
            }
        }
    }
    for (index, def) in want["indexes"].as_object().expect("indexes") {
        match got["indexes"].get(index) {
            None => problems.push(format!("missing index {index} {def}")),
            Some(d) if d != def => problems.push(format!("index {index}: {d} vs reference {def}")),
            Some(_) => {}
        }
    }
    assert!(
        problems.is_empty(),
        "schema differences:\n{}",
        problems.join("\n")
    );
}

const WRITERS_PER_SIDE: usize = 4;
const TASKS_PER_WRITER: usize = 25;

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap_or_else(|| panic!("expected a list, got {v}"))
        .iter()
        .map(|s| s.as_str().expect("string").to_owned())
        .collect()
}

/// Per-task count of events of one kind.
fn event_counts(b: &Sandbox, kind: &str) -> BTreeMap<String, i64> {
    b.sql(
        "SELECT task_id, count(*) FROM task_events WHERE kind = ? GROUP BY task_id",
        &[kind],
    )
    .into_iter()
    .map(|r| (r[0].as_str().unwrap().to_owned(), r[1].as_i64().unwrap()))
    .collect()
}

/// Acceptance item 2: 4 reference processes and 4 kanban writers create, claim
/// and complete tasks on one board at the same time.
#[test]
fn both_implementations_write_one_board_at_once() {
    let b = Arc::new(Sandbox::new());
    run_ok(&mut reference!(b, ["init"]));

    // Like a running gateway, keep the board open while the writers run; see
    // `Holder` (it shields the test from a reference bug, not from ours).
    let _holder = b.hold_open();
    let n = TASKS_PER_WRITER.to_string();
    let pythons: Vec<_> = (0..WRITERS_PER_SIDE)
        .map(|i| {
            let tag = format!("py{i}");
            let mut cmd = b
                .reference(["stress", "--n", n.as_str(), "--tag", tag.as_str()])
                .expect("reference");
            cmd.stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped());
            cmd.spawn().expect("spawn reference writer")
        })
        .collect();
    let barrier = Arc::new(Barrier::new(WRITERS_PER_SIDE));
    let rusts: Vec<_> = (0..WRITERS_PER_SIDE)
        .map(|i| {
            let (b, barrier) = (Arc::clone(&b), Arc::clone(&barrier));
            thread::spawn(move || {
                barrier.wait();
                kanban_writer(&b, &format!("rs{i}"), TASKS_PER_WRITER)
            })
        })
        .collect();

    let mut created = BTreeSet::new();
    let mut completed = Vec::new();
    let mut errors = Vec::new();
    for (i, h) in rusts.into_iter().enumerate() {
        let (c, d, e) = h.join().expect("kanban writer thread");
        if e.is_empty() {
            assert_eq!(
                c.len(),
                TASKS_PER_WRITER,
                "kanban writer rs{i} created {c:?}"
            );
        }
        created.extend(c);
        completed.extend(d);
        errors.extend(e);
    }
    for (i, child) in pythons.into_iter().enumerate() {
        let out = child.wait_with_output().expect("reference writer");
        let doc: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "reference writer py{i} ({}) printed no JSON ({e}): {}{}",
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            )
        });
        created.extend(strings(&doc["created"]));
        completed.extend(strings(&doc["completed"]));
        let faults = strings(&doc["reference_faults"]);
        if !faults.is_empty() {
            eprintln!(
                "py{i}: {} known reference fault(s) tolerated: {faults:?}",
                faults.len()
            );
        }
        errors.extend(
            strings(&doc["errors"])
                .into_iter()
                .map(|e| format!("py{i}: {e}")),
        );
    }
    assert!(
        errors.is_empty(),
        "errors while writing at once:\n{}",
        errors.join("\n")
    );

    let total = 2 * WRITERS_PER_SIDE * TASKS_PER_WRITER;
    assert_eq!(created.len(), total, "distinct task ids");
    assert_eq!(completed.len(), total, "completions reported");
    let done: BTreeSet<String> = b
        .sql("SELECT id FROM tasks WHERE status = 'done'", &[])
        .into_iter()
        .map(|r| r[0].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(done, created, "every created task is on the board and done");
    assert_eq!(b.sql_count("SELECT count(*) FROM tasks", &[]), total as i64);
    for kind in ["created", "claimed", "completed"] {
        let counts = event_counts(&b, kind);
        let wrong: Vec<_> = created
            .iter()
            .filter(|id| counts.get(*id) != Some(&1))
            .map(|id| format!("{id}: {:?}", counts.get(id)))
            .collect();
        assert!(
            wrong.is_empty(),
            "tasks without exactly one {kind} event: {wrong:?}"
        );
    }
    let titles = b.sql("SELECT title FROM tasks", &[]);
    let titles: BTreeSet<&str> = titles.iter().map(|r| r[0].as_str().unwrap()).collect();
    for side in ["py", "rs"] {
        for w in 0..WRITERS_PER_SIDE {
            for i in 0..TASKS_PER_WRITER {
                let t = format!("{side}{w}-{i}");
                assert!(
                    titles.contains(t.as_str()),
                    "lost write: no task titled {t}"
                );
            }
        }
    }
    assert_eq!(
        b.sql_count(
            "SELECT count(*) FROM task_runs WHERE outcome = 'completed' AND ended_at IS NOT NULL",
            &[]
        ),
        total as i64,
        "one closed completed run per task"
    );
    b.assert_integrity_ok();
}

const RACE_TASKS: usize = 40;

/// 4 reference processes and 4 kanban claimers race over the same ready tasks:
/// each task is claimed (and completed) by exactly one of them.
#[test]
fn mixed_claim_race_has_one_winner_per_task() {
    let b = Arc::new(Sandbox::new());
    run_ok(&mut reference!(b, ["init"]));
    let ids: Vec<String> = (0..RACE_TASKS)
        .map(|i| {
            let title = format!("race {i}");
            task_id(&run_json(
                &mut b.reference(["create", title.as_str()]).expect("reference"),
            ))
        })
        .collect();

    // Like a running gateway, keep the board open while the writers run; see
    // `Holder` (it shields the test from a reference bug, not from ours).
    let _holder = b.hold_open();
    let start_at = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
        + 1.0;
    let pythons: Vec<_> = (0..WRITERS_PER_SIDE)
        .map(|i| {
            let order = rotated(&ids, (2 * i + 1) * RACE_TASKS / (2 * WRITERS_PER_SIDE));
            let file = b.root().join(format!("race-{i}.json"));
            std::fs::write(&file, serde_json::to_vec(&order).unwrap()).unwrap();
            let (file, tag, start) = (
                file.to_string_lossy().into_owned(),
                format!("py{i}"),
                format!("{start_at:.3}"),
            );
            let mut cmd = b
                .reference([
                    "race",
                    "--ids-file",
                    file.as_str(),
                    "--tag",
                    tag.as_str(),
                    "--complete",
                    "--start-at",
                    start.as_str(),
                ])
                .expect("reference");
            cmd.stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped());
            cmd.spawn().expect("spawn reference racer")
        })
        .collect();
    let rusts: Vec<_> = (0..WRITERS_PER_SIDE)
        .map(|i| {
            let b = Arc::clone(&b);
            let order = rotated(&ids, i * RACE_TASKS / WRITERS_PER_SIDE);
            thread::spawn(move || {
                while std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_secs_f64()
                    < start_at
                {
                    thread::sleep(std::time::Duration::from_millis(1));
                }
                let (mut won, mut errors) = (Vec::new(), Vec::new());
                for id in order {
                    let mut claim = b.kanban(["claim", id.as_str()]);
                    let out = claim.output().expect("spawn kanban claim");
                    if !out.status.success() {
                        if !is_lost_claim(&out) {
                            errors.push(format!(
                                "`{}` -> {}: {}",
                                describe(&claim),
                                out.status,
                                String::from_utf8_lossy(&out.stderr).trim()
                            ));
                        }
                        continue;
                    }
                    let mut complete = b.kanban(["complete", id.as_str()]);
                    let out = complete.output().expect("spawn kanban complete");
                    if !out.status.success() {
                        errors.push(format!(
                            "`{}` -> {}: {}",
                            describe(&complete),
                            out.status,
                            String::from_utf8_lossy(&out.stderr).trim()
                        ));
                    }
                    won.push(id);
                }
                (won, errors)
            })
        })
        .collect();

    let mut winners: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut errors = Vec::new();
    for (i, h) in rusts.into_iter().enumerate() {
        let (won, e) = h.join().expect("kanban racer");
        for id in won {
            winners.entry(id).or_default().push(format!("rs{i}"));
        }
        errors.extend(e);
    }
    for (i, child) in pythons.into_iter().enumerate() {
        let out = child.wait_with_output().expect("reference racer");
        let doc: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "reference racer py{i} printed no JSON ({e}): {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            )
        });
        for id in strings(&doc["won"]) {
            winners.entry(id).or_default().push(format!("py{i}"));
        }
        let faults = strings(&doc["reference_faults"]);
        if !faults.is_empty() {
            eprintln!(
                "py{i}: {} known reference fault(s) tolerated: {faults:?}",
                faults.len()
            );
        }
        errors.extend(
            strings(&doc["errors"])
                .into_iter()
                .map(|e| format!("py{i}: {e}")),
        );
    }
    assert!(
        errors.is_empty(),
        "errors while racing:\n{}",
        errors.join("\n")
    );
    let bad: Vec<_> = ids
        .iter()
        .filter(|id| winners.get(*id).map(Vec::len) != Some(1))
        .map(|id| format!("{id}: won by {:?}", winners.get(id)))
        .collect();
    assert!(bad.is_empty(), "tasks not claimed exactly once: {bad:?}");
    let claimed = event_counts(&b, "claimed");
    let completed = event_counts(&b, "completed");
    for id in &ids {
        assert_eq!(claimed.get(id), Some(&1), "claimed events of {id}");
        assert_eq!(completed.get(id), Some(&1), "completed events of {id}");
    }
    assert_eq!(
        b.sql_count("SELECT count(*) FROM tasks WHERE status = 'done'", &[]),
        RACE_TASKS as i64
    );
    b.assert_integrity_ok();
}

/// Issue 9 item 10: a task the reference parks with `hermes kanban create
/// --initial-status blocked` (it writes no `blocked` event) stays blocked
/// through `kanban list` and `kanban dispatch`, even for a spawnable
/// profile: no `promoted` event, no claim, no run.
#[test]
fn reference_parked_task_stays_blocked() {
    let b = Sandbox::new();
    std::fs::write(
        b.root().join("config.yaml"),
        "kanban:\n  profiles:\n    worker:\n      command: [\"true\"]\n",
    )
    .unwrap();
    let created = run_json(&mut reference!(
        b,
        [
            "cli",
            "--",
            "create",
            "parked by the reference",
            "--assignee",
            "worker",
            "--initial-status",
            "blocked",
            "--json",
        ]
    ));
    let id = task_id(&created);
    assert_eq!(created["status"], "blocked", "{created}");
    let control = task_id(&run_json(&mut reference!(
        b,
        ["cli", "--", "create", "normal", "--json"]
    )));

    run_ok(&mut b.kanban(["list"]));
    run_ok(&mut b.kanban(["dispatch"]));
    run_ok(&mut b.kanban(["list", "--json"]));
    let show = run_json(&mut b.kanban(["show", id.as_str(), "--json"]));
    assert_eq!(show["task"]["status"], "blocked", "{show}");
    assert_eq!(event_kinds(&show), ["created"], "{show}");
    assert_eq!(show["runs"], json!([]), "{show}");
    // The reference's own view agrees, and other tasks are untouched.
    let theirs = statuses(&run_json(&mut reference!(b, ["list", "--no-recompute"])));
    assert_eq!(theirs[&id], "blocked");
    assert_eq!(theirs[&control], "ready");

    // An explicit unblock still releases it.
    run_ok(&mut b.kanban(["unblock", id.as_str()]));
    let show = run_json(&mut b.kanban(["show", id.as_str(), "--json"]));
    assert_ne!(show["task"]["status"], "blocked", "{show}");
}
