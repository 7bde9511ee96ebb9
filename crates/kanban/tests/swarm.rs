//! `kanban swarm`: the reference's swarm graph (hermes-agent 0.19.0
//! `hermes kanban swarm`), written atomically, replayed by idempotency key,
//! and dispatched by both implementations the same way.

use std::collections::BTreeMap;

use kanban_testkit::Sandbox;
use kanban_testkit::reference::run_json;
use serde_json::{Value, json};

const PROFILES: &[&str] = &["alice", "bob", "rev", "writer", "boss"];

macro_rules! reference {
    ($board:expr, $args:expr) => {
        match $board.reference($args) {
            Some(cmd) => cmd,
            None => return,
        }
    };
}

fn swarm_args(extra: &[&str]) -> Vec<String> {
    let mut a: Vec<String> = [
        "swarm",
        "Write the launch report\nwith numbers",
        "--worker",
        "alice:Research:pdf",
        "--worker",
        "bob : Draft it ",
        "--verifier",
        "rev",
        "--synthesizer",
        "writer",
        "--created-by",
        "boss",
        "--tenant",
        "acme",
        "--priority",
        "3",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    a.extend(extra.iter().map(|s| s.to_string()));
    a
}

fn with_profiles(b: &Sandbox) {
    for p in PROFILES {
        std::fs::create_dir_all(b.path(&format!("profiles/{p}"))).unwrap();
    }
}

/// The board's graph with ids replaced by their creation rank, so two
/// boards built with different random ids compare equal.
fn graph(b: &Sandbox) -> Value {
    let tasks = b.sql(
        "SELECT id, title, body, assignee, status, priority, created_by, workspace_kind, \
         workspace_path, tenant, skills, idempotency_key, max_runtime_seconds, result \
         FROM tasks ORDER BY rowid",
        &[],
    );
    let names: BTreeMap<String, String> = tasks
        .iter()
        .enumerate()
        .map(|(i, t)| (t[0].as_str().unwrap().to_string(), format!("T{i}")))
        .collect();
    let norm = |v: &Value| -> Value {
        let mut s = v.to_string();
        for (id, name) in &names {
            s = s.replace(id, name);
        }
        let v: Value = serde_json::from_str(&s).unwrap();
        // JSON held in text columns compares as JSON, not as spelling.
        match v {
            Value::String(t) if t.starts_with(['{', '[']) => {
                serde_json::from_str(&t).unwrap_or(Value::String(t))
            }
            other => other,
        }
    };
    let rows = |q: &str| -> Vec<Value> {
        b.sql(q, &[])
            .iter()
            .map(|r| Value::Array(r.as_array().unwrap().iter().map(norm).collect()))
            .collect()
    };
    let mut links = rows("SELECT parent_id, child_id FROM task_links");
    links.sort_by_key(|l| l.to_string());
    json!({
        "tasks": rows(
            "SELECT id, title, body, assignee, status, priority, created_by, workspace_kind, \
             workspace_path, tenant, skills, idempotency_key, max_runtime_seconds, result \
             FROM tasks ORDER BY rowid"
        ),
        "links": links,
        "comments": rows("SELECT task_id, author, body FROM task_comments ORDER BY id"),
        "events": rows("SELECT task_id, kind, payload FROM task_events ORDER BY id"),
        // Run `status` is left out: see the report (a synthesized run's
        // status differs between the implementations for every completion
        // of a never-claimed task, not only here).
        "runs": rows(
            "SELECT task_id, profile, outcome, summary, metadata, error FROM task_runs ORDER BY id"
        ),
    })
}

#[test]
fn swarm_writes_the_reference_graph() {
    let ours = Sandbox::new();
    ours.ok(&["init"]);
    let created: Value = serde_json::from_str(
        &ours.ok(&swarm_args(&["--json"])
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>()),
    )
    .unwrap();
    assert_eq!(
        created.as_object().unwrap().keys().collect::<Vec<_>>(),
        ["root_id", "worker_ids", "verifier_id", "synthesizer_id"]
    );
    let theirs = Sandbox::new();
    theirs.ok(&["init"]);
    let mut args = vec!["cli".to_string()];
    args.extend(swarm_args(&[]));
    let out = reference!(theirs, &args).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.starts_with("Swarm root: t_"), "{text}");
    assert_eq!(graph(&ours), graph(&theirs));
    let g = graph(&ours);
    // Column 4 is the status.
    assert_eq!(g["tasks"][0][4], "done");
    assert_eq!(g["tasks"][1][4], "ready");
    assert_eq!(g["tasks"][3][4], "todo");
}

#[test]
fn swarm_human_output_and_replay_by_key() {
    let b = Sandbox::new();
    b.ok(&["init"]);
    let args = swarm_args(&["--idempotency-key", "launch-1"]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let first = b.ok(&args);
    let lines: Vec<&str> = first.lines().collect();
    assert_eq!(lines.len(), 4, "{first}");
    assert!(lines[0].starts_with("Swarm root: t_"));
    assert!(lines[1].starts_with("Workers: t_") && lines[1].contains(", t_"));
    assert!(lines[2].starts_with("Verifier: t_"));
    assert!(lines[3].starts_with("Synthesizer: t_"));
    let again = b.ok(&args);
    assert_eq!(again, first, "a replay prints the first graph");
    assert_eq!(b.sql_count("SELECT count(*) AS n FROM tasks", &[]), 5);
    // A key held by a task that is not a swarm root: refused, nothing new.
    b.ok(&["create", "plain", "--idempotency-key", "k-plain"]);
    let plain = swarm_args(&["--idempotency-key", "k-plain"]);
    let plain: Vec<&str> = plain.iter().map(String::as_str).collect();
    let out = b.run(&plain);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a swarm root"));
    assert_eq!(b.sql_count("SELECT count(*) AS n FROM tasks", &[]), 6);
}

#[test]
fn swarm_author_defaults_like_the_reference() {
    let b = Sandbox::new();
    b.ok(&["init"]);
    let args = [
        "swarm",
        "g",
        "--worker",
        "a:t",
        "--verifier",
        "r",
        "--synthesizer",
        "s",
    ];
    b.ok(&args);
    let mut theirs = vec!["cli"];
    theirs.extend(args);
    let out = reference!(b, &theirs).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let roots = b.sql(
        "SELECT assignee, created_by FROM tasks WHERE title = 'Swarm: g' ORDER BY rowid",
        &[],
    );
    assert_eq!(roots.len(), 2);
    assert_eq!(roots[0], roots[1]);
    assert_eq!(roots[0][0], "default");
}

#[test]
fn bad_swarm_input_changes_nothing() {
    let b = Sandbox::new();
    b.ok(&["init"]);
    let base = ["swarm", "goal", "--verifier", "rev", "--synthesizer", "w"];
    for extra in [
        vec![],
        vec!["--worker", "no-title"],
        vec!["--worker", ":title"],
        vec!["--worker", "a:t", "--worker", "b:"],
        // A toolset passed as a skill is refused by the last worker's
        // validation, after the root would have been written.
        vec!["--worker", "a:t", "--worker", "b:t2:web"],
    ] {
        let mut args: Vec<&str> = base.to_vec();
        args.extend(extra.iter());
        let out = b.run(&args);
        assert!(!out.status.success(), "{args:?} succeeded");
        assert!(!String::from_utf8_lossy(&out.stderr).trim().is_empty());
    }
    let out = b.run(&[
        "swarm",
        "  ",
        "--worker",
        "a:t",
        "--verifier",
        "r",
        "--synthesizer",
        "w",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(b.sql_count("SELECT count(*) AS n FROM tasks", &[]), 0);
    assert_eq!(b.sql_count("SELECT count(*) AS n FROM task_events", &[]), 0);
}

fn spawned(v: &Value) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = v["spawned"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["task_id"].as_str().unwrap().to_string(),
                s["assignee"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    out.sort();
    out
}

#[test]
fn swarm_graph_is_dispatched_identically_by_both() {
    let ours = Sandbox::new();
    with_profiles(&ours);
    ours.ok(&["init"]);
    let created: Value = serde_json::from_str(
        &ours.ok(&swarm_args(&["--json"])
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>()),
    )
    .unwrap();
    // The same board for the reference: a consistent copy of the file.
    let theirs = Sandbox::new();
    with_profiles(&theirs);
    let copy = theirs.db_path();
    ours.db()
        .execute("VACUUM INTO ?1", [copy.to_str().unwrap()])
        .unwrap();
    let ids = |v: &Value| -> Vec<String> {
        match v {
            Value::Array(a) => a.iter().map(|x| x.as_str().unwrap().to_string()).collect(),
            other => vec![other.as_str().unwrap().to_string()],
        }
    };
    let steps = [
        ids(&created["worker_ids"]),
        ids(&created["verifier_id"]),
        ids(&created["synthesizer_id"]),
    ];
    for (n, expected) in steps.iter().enumerate() {
        let mine = ours.json(&["dispatch", "--dry-run", "--json"]);
        let mut cmd = reference!(theirs, ["cli", "dispatch", "--dry-run", "--json"]);
        let reference = run_json(&mut cmd);
        assert_eq!(spawned(&mine), spawned(&reference), "step {n}");
        let mut want = expected.clone();
        want.sort();
        assert_eq!(
            spawned(&mine)
                .into_iter()
                .map(|(t, _)| t)
                .collect::<Vec<_>>(),
            want,
            "step {n}"
        );
        // Each implementation finishes that step's cards on its own copy.
        for id in expected {
            ours.ok(&["complete", id, "--summary", "done"]);
            let mut cmd = reference!(theirs, ["complete", id.as_str(), "--summary", "done"]);
            run_json(&mut cmd);
        }
    }
    let mine = ours.json(&["dispatch", "--dry-run", "--json"]);
    let mut cmd = reference!(theirs, ["cli", "dispatch", "--dry-run", "--json"]);
    assert!(spawned(&mine).is_empty());
    assert!(spawned(&run_json(&mut cmd)).is_empty());
}
