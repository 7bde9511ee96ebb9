//! `create` and `add`: every flag, JSON shape, status inference, and the
//! refusals (exit code, message, board unchanged).

use kanban_testkit::{Sandbox, event_kinds, stderr, stdout};

const TASK_KEYS: [&str; 21] = [
    "id",
    "title",
    "body",
    "assignee",
    "status",
    "priority",
    "tenant",
    "workspace_kind",
    "workspace_path",
    "branch_name",
    "project_id",
    "created_by",
    "created_at",
    "started_at",
    "completed_at",
    "result",
    "skills",
    "max_retries",
    "session_id",
    "workflow_template_id",
    "current_step_key",
];

#[test]
fn create_prints_summary_line() {
    let b = Sandbox::new();
    let out = b.ok(&["create", "Write docs", "--assignee", "Writer"]);
    let line = out.lines().next().unwrap();
    assert!(line.starts_with("Created t_"), "{out}");
    assert!(line.ends_with("  (ready, assignee=writer)"), "{out}");
    let unassigned = b.ok(&["create", "Loose end"]);
    assert!(unassigned.contains("(ready, assignee=-)"), "{unassigned}");
}

#[test]
fn create_json_has_reference_shape_and_every_flag_lands() {
    let b = Sandbox::new();
    let parent = b.create("Parent", &[]);
    let v = b.json(&[
        "create",
        "  Child task  ",
        "--json",
        "--body",
        "details",
        "--assignee",
        "coder",
        "--parent",
        &parent,
        "--workspace",
        "worktree",
        "--branch",
        "wt/child",
        "--tenant",
        "acme",
        "--priority",
        "5",
        "--idempotency-key",
        "k1",
        "--max-runtime",
        "30m",
        "--created-by",
        "alice",
        "--skill",
        "translation",
        "--skill",
        "review",
        "--max-retries",
        "3",
        "--goal",
        "--goal-max-turns",
        "7",
        "--model",
        "gpt-x",
    ]);
    let obj = v.as_object().unwrap();
    let mut keys: Vec<&str> = obj.keys().map(String::as_str).collect();
    keys.sort();
    let mut want = TASK_KEYS.to_vec();
    want.sort();
    assert_eq!(keys, want);
    assert_eq!(v["title"], "Child task");
    assert_eq!(v["body"], "details");
    assert_eq!(v["assignee"], "coder");
    assert_eq!(v["status"], "todo", "parent not done: gated");
    assert_eq!(v["priority"], 5);
    assert_eq!(v["tenant"], "acme");
    assert_eq!(v["workspace_kind"], "worktree");
    assert_eq!(v["branch_name"], "wt/child");
    assert_eq!(v["created_by"], "alice");
    assert_eq!(v["skills"], serde_json::json!(["translation", "review"]));
    assert_eq!(v["max_retries"], 3);
    let id = v["id"].as_str().unwrap();
    let show = b.task(id);
    assert_eq!(show["parents"], serde_json::json!([parent]));
    assert_eq!(event_kinds(&show)[0], "created");
    // Same idempotency key: same task, nothing new.
    let again = b.json(&["create", "Other title", "--json", "--idempotency-key", "k1"]);
    assert_eq!(again["id"], v["id"]);
    assert_eq!(b.json(&["list", "--json"]).as_array().unwrap().len(), 2);
}

#[test]
fn create_workspace_forms() {
    let b = Sandbox::new();
    let abs = b.path("proj");
    let dir_flag = format!("dir:{}", abs.display());
    let v = b.json(&["create", "In dir", "--json", "--workspace", &dir_flag]);
    assert_eq!(v["workspace_kind"], "dir");
    assert_eq!(v["workspace_path"], abs.to_string_lossy().as_ref());
    let v = b.json(&["create", "Home dir", "--json", "--workspace", "dir:~/work"]);
    assert_eq!(
        v["workspace_path"],
        b.path("work").to_string_lossy().as_ref()
    );
    let v = b.json(&["create", "Scratch", "--json"]);
    assert_eq!(v["workspace_kind"], "scratch");
}

#[test]
fn triage_and_initial_blocked_stick() {
    let b = Sandbox::new();
    let t = b.create("Idea", &["--triage"]);
    assert_eq!(b.status(&t), "triage");
    let blk = b.create(
        "Needs ops",
        &["--initial-status", "blocked", "--assignee", "ops"],
    );
    assert_eq!(b.status(&blk), "blocked");
    // `list` runs the promotion pass; a parked task must stay parked.
    b.ok(&["list"]);
    assert_eq!(b.status(&blk), "blocked");
    assert_eq!(b.status(&t), "triage");
}

#[test]
fn create_refusals_are_usage_errors_and_change_nothing() {
    let b = Sandbox::new();
    b.create("Existing", &[]);
    b.refuses(
        &["create", "x", "--workspace", "cloud"],
        2,
        "kanban: unknown --workspace value",
    );
    b.refuses(
        &["create", "x", "--workspace", "dir:relative/path"],
        2,
        "relative",
    );
    b.refuses(
        &["create", "x", "--workspace", "dir:"],
        2,
        "requires a path",
    );
    b.refuses(
        &["create", "x", "--max-runtime", "10x"],
        2,
        "--max-runtime: malformed duration",
    );
    b.refuses(
        &["create", "x", "--max-runtime", "abc"],
        2,
        "malformed duration",
    );
    b.refuses(
        &["create", "x", "--max-retries", "0"],
        2,
        "--max-retries must be >= 1",
    );
    b.refuses(
        &["create", "x", "--branch", "wt/a"],
        2,
        "--branch is only valid with --workspace worktree",
    );
    b.refuses(
        &["create", "x", "--workspace", "worktree", "--branch=-x"],
        2,
        "must not start with '-'",
    );
    b.refuses(
        &["create", "x", "--workspace", "worktree", "--branch", "a b"],
        2,
        "whitespace",
    );
    b.refuses(
        &["create", "x", "--initial-status", "done"],
        2,
        "invalid value",
    );
    b.refuses(&["create", "x", "--priority", "high"], 2, "invalid value");
}

#[test]
fn create_refusals_from_the_board_exit_1() {
    let b = Sandbox::new();
    b.create("Existing", &[]);
    b.refuses(&["create", "   "], 1, "kanban: ");
    b.refuses(&["create", "x", "--parent", "t_deadbeef"], 1, "t_deadbeef");
    b.refuses(&["create", "x", "--skill", "web"], 1, "toolset");
    b.refuses(&["create", "x", "--skill", "a,b"], 1, "comma");
}

#[test]
fn board_flag_validation() {
    let b = Sandbox::new();
    b.create("Existing", &[]);
    b.refuses(
        &["--board", "Bad Slug!", "list"],
        2,
        "kanban: invalid board slug",
    );
    b.refuses(
        &["--board", "nope", "create", "x"],
        1,
        "board 'nope' does not exist",
    );
    // `default` always exists, and the flag works after the verb too.
    assert!(b.ok(&["list", "--board", "default"]).contains("Existing"));
}

#[test]
fn add_prints_bare_id_and_maps_columns() {
    let b = Sandbox::new();
    let out = b.run(&[
        "add",
        "--title",
        "Raw log ingestion",
        "--profile",
        "data-engineer",
        "--column",
        "backlog",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let parent = stdout(&out).trim().to_string();
    assert!(parent.starts_with("t_") && parent.len() == 10, "{parent:?}");
    assert_eq!(b.status(&parent), "ready");
    let child = b.ok(&[
        "add",
        "--title",
        "Anomaly detection",
        "--profile",
        "ml-analyst",
        "--column",
        "backlog",
        "--parent",
        &parent,
    ]);
    let child = child.trim();
    let show = b.task(child);
    assert_eq!(show["task"]["status"], "todo", "gated on its parent");
    assert_eq!(show["task"]["assignee"], "ml-analyst");
    assert_eq!(show["parents"][0], parent.as_str());
    let tri = b.ok(&["add", "--title", "Maybe", "--column", "triage"]);
    assert_eq!(b.status(tri.trim()), "triage");
    let todo = b.ok(&["add", "--title", "Todo", "--column", "todo"]);
    assert_eq!(b.status(todo.trim()), "ready");
    // Seed 000: the controller counts running tasks by line.
    assert_eq!(
        b.ok(&["list", "--status", "running"]),
        "(no matching tasks)\n"
    );
    assert_eq!(
        b.ok(&["list", "--profile", "ml-analyst"]).lines().count(),
        1
    );
}

#[test]
fn add_refusals() {
    let b = Sandbox::new();
    b.create("Existing", &[]);
    b.refuses(
        &["add", "--title", "x", "--column", "doing"],
        2,
        "invalid value",
    );
    b.refuses(&["add", "--profile", "p"], 2, "--title");
    b.refuses(
        &["add", "--title", "x", "--parent", "t_00000000"],
        1,
        "t_00000000",
    );
}
