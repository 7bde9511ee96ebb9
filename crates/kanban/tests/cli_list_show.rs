//! Read verbs: list/ls, show, runs, context, stats, assignees.

use kanban_testkit::{Sandbox, stdout};
use serde_json::json;

#[test]
fn list_lines_filters_and_sorts() {
    let b = Sandbox::new();
    assert_eq!(b.ok(&["list"]), "(no matching tasks)\n");
    let a = b.create("Alpha", &["--assignee", "coder", "--priority", "1"]);
    let c = b.create(
        "Charlie",
        &[
            "--assignee",
            "writer",
            "--tenant",
            "acme",
            "--priority",
            "9",
        ],
    );
    let t = b.create("Bravo", &["--triage"]);
    let out = b.ok(&["list"]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 3, "{out}");
    assert!(
        lines[0].starts_with(&format!("▶ {c}  ready     writer")),
        "{out}"
    );
    assert!(lines[0].ends_with(" [acme]  Charlie"), "{out}");
    assert_eq!(
        lines[1],
        format!("▶ {a}  ready     coder                 Alpha")
    );
    assert_eq!(
        lines[2],
        format!("? {t}  triage    (unassigned)          Bravo")
    );
    assert_eq!(b.ok(&["ls", "--assignee", "coder"]).lines().count(), 1);
    assert_eq!(b.ok(&["list", "--profile", "Coder"]).lines().count(), 1);
    assert_eq!(b.ok(&["list", "--tenant", "acme"]).lines().count(), 1);
    assert_eq!(b.ok(&["list", "--status", "triage"]).lines().count(), 1);
    let mine = b.run_env(&["list", "--mine"], &[("HERMES_PROFILE", "writer")]);
    assert_eq!(stdout(&mine).lines().count(), 1);
    let by_title = b.json(&["list", "--json", "--sort", "title"]);
    let titles: Vec<&str> = by_title
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["title"].as_str().unwrap())
        .collect();
    assert_eq!(titles, ["Alpha", "Bravo", "Charlie"]);
    let ids = |sort: &str| -> Vec<String> {
        b.json(&["list", "--json", "--sort", sort])
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v["id"].as_str().unwrap().to_string())
            .collect()
    };
    let mut asc = ids("created");
    asc.reverse();
    assert_eq!(ids("created-desc"), asc);
    // Archived tasks only with --archived.
    b.ok(&["archive", &t]);
    assert_eq!(b.json(&["list", "--json"]).as_array().unwrap().len(), 2);
    assert_eq!(
        b.json(&["list", "--json", "--archived"])
            .as_array()
            .unwrap()
            .len(),
        3
    );
}

#[test]
fn list_promotes_children_whose_parents_finished() {
    let b = Sandbox::new();
    let p = b.create("P", &[]);
    let c = b.create("C", &["--parent", &p]);
    assert_eq!(b.status(&c), "todo");
    b.ok(&["complete", &p]);
    let out = b.ok(&["list", "--status", "ready"]);
    assert!(out.contains(&c), "{out}");
}

/// A parent finished behind the CLI's back (no promotion of its child):
/// the sweep that runs beside the listing promotes the child, and the
/// listing shows it ready, never the stale `todo` it had read already.
#[test]
fn list_shows_what_its_own_sweep_promoted() {
    let b = Sandbox::new();
    for json in [false, true] {
        let p = b.create("P", &[]);
        let c = b.create("C", &["--parent", &p]);
        b.db()
            .execute("UPDATE tasks SET status = 'done' WHERE id = ?1", [&p])
            .unwrap();
        assert_eq!(b.status(&c), "todo", "nothing promoted it yet");
        if json {
            let listed = b.json(&["list", "--json"]);
            let child = listed
                .as_array()
                .unwrap()
                .iter()
                .find(|t| t["id"] == c.as_str())
                .cloned()
                .unwrap();
            assert_eq!(child["status"], "ready", "{listed}");
        } else {
            let out = b.ok(&["list"]);
            let line = out.lines().find(|l| l.contains(&c)).unwrap();
            assert!(line.contains(" ready "), "{out}");
            assert!(!out.contains(" todo "), "no stale line: {out}");
        }
        let promoted: i64 = b
            .db()
            .query_row(
                "SELECT COUNT(*) FROM task_events WHERE task_id = ?1 AND kind = 'promoted'",
                [&c],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(promoted, 1);
    }
}

#[test]
fn list_refusals() {
    let b = Sandbox::new();
    b.create("x", &[]);
    b.refuses(&["list", "--status", "doing"], 2, "invalid status");
    b.refuses(&["list", "--sort", "random"], 2, "invalid value");
}

#[test]
fn show_json_shape_and_human_view() {
    let b = Sandbox::new();
    let p = b.create("Parent", &[]);
    let c = b.create(
        "Child",
        &["--parent", &p, "--body", "The body", "--assignee", "coder"],
    );
    b.ok(&["comment", &c, "looks", "good", "--author", "rev"]);
    let v = b.task(&c);
    let mut keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
    keys.sort();
    assert_eq!(
        keys,
        [
            "children",
            "comments",
            "events",
            "latest_summary",
            "parents",
            "runs",
            "task"
        ]
    );
    assert_eq!(v["parents"], json!([p]));
    assert_eq!(v["comments"][0]["author"], "rev");
    assert_eq!(v["comments"][0]["body"], "looks good");
    let ev = &v["events"][0];
    let mut ek: Vec<&str> = ev.as_object().unwrap().keys().map(String::as_str).collect();
    ek.sort();
    assert_eq!(ek, ["created_at", "kind", "payload", "run_id"]);
    assert_eq!(b.task(&p)["children"], json!([c]));

    let text = b.ok(&["show", &c]);
    assert!(
        text.starts_with(&format!(
            "Task {c}: Child\n  status:    todo\n  assignee:  coder\n"
        )),
        "{text}"
    );
    assert!(text.contains("  workspace: scratch\n"), "{text}");
    assert!(text.contains("  max-retries: 2 (default)\n"), "{text}");
    assert!(text.contains(&format!("  parents:   {p}\n")), "{text}");
    assert!(text.contains("\nBody:\nThe body\n"), "{text}");
    assert!(text.contains("\nComments (1):\n  ["), "{text}");
    assert!(text.contains("] rev: looks good\n"), "{text}");
    assert!(text.contains("\nEvents ("), "{text}");
}

#[test]
fn show_refusals() {
    let b = Sandbox::new();
    let t = b.create("x", &[]);
    b.refuses(&["show", "t_00000000"], 1, "no such task: t_00000000");
    b.refuses(
        &["show", &t, "--state-type", "status"],
        2,
        "pass both --state-type and --state-name",
    );
    b.refuses(
        &["show", &t, "--state-type", "color", "--state-name", "x"],
        2,
        "invalid value",
    );
}

#[test]
fn runs_table_and_json() {
    let b = Sandbox::new();
    let t = b.create("Work", &["--assignee", "coder"]);
    assert_eq!(b.ok(&["runs", &t]), format!("(no runs yet for {t})\n"));
    b.ok(&["claim", &t]);
    b.ok(&[
        "complete",
        &t,
        "--summary",
        "did it",
        "--metadata",
        r#"{"files": 2}"#,
    ]);
    let out = b.ok(&["runs", &t]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines[0],
        "#    OUTCOME       PROFILE            ELAPSED  STARTED"
    );
    assert!(
        lines[1].starts_with("  1  completed     coder           "),
        "{out}"
    );
    assert_eq!(lines[2], "     → did it");
    let v = b.json(&["runs", &t, "--json"]);
    let run = &v[0];
    let mut keys: Vec<&str> = run
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort();
    assert_eq!(
        keys,
        [
            "ended_at",
            "error",
            "id",
            "metadata",
            "outcome",
            "profile",
            "started_at",
            "status",
            "step_key",
            "summary",
            "worker_pid"
        ]
    );
    assert_eq!(run["metadata"], json!({"files": 2}));
    let filtered = b.json(&[
        "runs",
        &t,
        "--json",
        "--state-type",
        "outcome",
        "--state-name",
        "crashed",
    ]);
    assert_eq!(filtered, json!([]));
    assert_eq!(b.task(&t)["latest_summary"], "did it");
}

#[test]
fn runs_refusals() {
    let b = Sandbox::new();
    let t = b.create("x", &[]);
    b.refuses(&["runs", "t_00000000"], 1, "no such task");
    b.refuses(&["runs", &t, "--state-name", "done"], 2, "pass both");
}

#[test]
fn context_renders_worker_view() {
    let b = Sandbox::new();
    let p = b.create("Design", &["--assignee", "architect"]);
    b.ok(&[
        "complete",
        &p,
        "--summary",
        "Use SQLite",
        "--metadata",
        r#"{"b": 1, "a": "x"}"#,
    ]);
    let c = b.create(
        "Build",
        &[
            "--parent",
            &p,
            "--assignee",
            "coder",
            "--body",
            "Build it",
            "--max-runtime",
            "10m",
        ],
    );
    b.ok(&["comment", &c, "careful", "--author", "ops"]);
    let text = b.ok(&["context", &c]);
    assert!(
        text.starts_with(&format!(
            "# Kanban task {c}: Build\n\nAssignee: coder\nStatus:   ready\n"
        )),
        "{text}"
    );
    assert!(
        text.contains("Max runtime: 600s\nTerminal timeout: 570s\n"),
        "{text}"
    );
    assert!(text.contains("## Body\nBuild it\n"), "{text}");
    assert!(text.contains("## Parent task results\n"), "{text}");
    assert!(
        text.contains(&format!(
            "### {p} (completed just now)\nUse SQLite\n_metadata_: `{{\"a\": \"x\", \"b\": 1}}`\n"
        )),
        "{text}"
    );
    assert!(
        text.contains("## Comment thread\ncomment from worker `ops` at "),
        "{text}"
    );
    b.refuses(&["context", "t_00000000"], 1, "no such task");
}

#[test]
fn stats_and_assignees() {
    let b = Sandbox::new();
    b.create("A", &["--assignee", "coder"]);
    let t = b.create("B", &["--assignee", "coder"]);
    b.create("C", &["--triage"]);
    b.ok(&["complete", &t]);
    let s = b.json(&["stats", "--json"]);
    assert_eq!(s["by_status"], json!({"ready": 1, "done": 1, "triage": 1}));
    assert_eq!(s["by_assignee"], json!({"coder": {"ready": 1, "done": 1}}));
    assert!(s["oldest_ready_age_seconds"].as_i64().unwrap() >= 0);
    assert!(s["now"].as_i64().unwrap() > 0);
    let text = b.ok(&["stats"]);
    assert!(
        text.starts_with("By status:\n  triage    1\n  todo      0\n"),
        "{text}"
    );
    assert!(
        text.contains("\nBy assignee:\n  coder                 done=1, ready=1\n"),
        "{text}"
    );

    std::fs::create_dir_all(b.path("profiles/reviewer")).unwrap();
    let a = b.json(&["assignees", "--json"]);
    let names: Vec<&str> = a
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap())
        .collect();
    assert!(
        names.contains(&"coder") && names.contains(&"reviewer"),
        "{a}"
    );
    let coder = a
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == "coder")
        .unwrap();
    assert_eq!(coder["on_disk"], false);
    assert_eq!(coder["counts"], json!({"ready": 1, "done": 1}));
    let text = b.ok(&["assignees"]);
    assert!(
        text.starts_with("NAME                  ON DISK   COUNTS\n"),
        "{text}"
    );
    // Listed (a runnable lane), but like the reference only a directory
    // with a `config.yaml` counts as a profile on disk.
    assert!(
        text.contains("reviewer              no        (idle)"),
        "{text}"
    );
}
