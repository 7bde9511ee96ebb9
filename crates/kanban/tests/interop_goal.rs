//! Goal mode shared with the Python reference (hermes-agent 0.19.0) on one
//! board: a goal task the reference created is judged by `kanban complete`
//! (the judge on the fake chat-completions server) and read back by the
//! reference; a goal task `kanban` created carries the reference's goal
//! columns.

use kanban_testkit::Sandbox;
use kanban_testkit::fake_model::{FakeModel, Reply};
use kanban_testkit::reference::{run_json, task_id};
use serde_json::json;

/// Unwraps a reference command, or returns from the test when skipping is allowed.
macro_rules! reference {
    ($board:expr, $args:expr) => {
        match $board.reference($args) {
            Some(cmd) => cmd,
            None => return,
        }
    };
}

fn sandbox_with(model: &FakeModel) -> Sandbox {
    let mut b = Sandbox::new();
    b.env.insert("FAKE_MODEL_KEY".into(), "sekrit".into());
    b.write_config(&model.config_yaml("tiny"));
    b
}

#[test]
fn a_reference_goal_task_is_judged_by_kanban_and_read_back_done() {
    let model = FakeModel::answering(r#"{"verdict": "continue", "reason": "no tests were run"}"#);
    let b = sandbox_with(&model);
    let created = run_json(&mut reference!(
        b,
        [
            "cli",
            "create",
            "Make tests pass",
            "--goal",
            "--goal-max-turns",
            "3",
            "--assignee",
            "coder",
            "--json"
        ]
    ));
    let t = task_id(&created);
    assert_eq!(
        b.sql(
            "SELECT goal_mode, goal_max_turns FROM tasks WHERE id = ?",
            &[&t]
        ),
        [json!([1, 3])]
    );

    // The judge says continue: refused, and the reference sees nothing changed.
    b.refuses(
        &["complete", &t, "--summary", "I think it is fine"],
        1,
        "no tests were run",
    );
    let theirs = run_json(&mut reference!(b, ["show", &t]));
    assert_eq!(theirs["task"]["status"], "ready", "{theirs:#}");
    assert!(
        theirs["runs"].as_array().is_none_or(|r| r.is_empty()),
        "{theirs:#}"
    );

    model.set_replies(vec![Reply::Content(
        r#"{"verdict": "done", "reason": "12 tests pass"}"#.into(),
    )]);
    b.ok(&["complete", &t, "--summary", "cargo test: 12 passed"]);
    let theirs = run_json(&mut reference!(b, ["show", &t]));
    assert_eq!(theirs["task"]["status"], "done", "{theirs:#}");
    let runs = theirs["runs"].as_array().unwrap();
    assert_eq!(runs.last().unwrap()["summary"], "cargo test: 12 passed");
    assert_eq!(runs.last().unwrap()["outcome"], "completed");
}

#[test]
fn a_kanban_goal_task_carries_the_reference_goal_columns() {
    let b = Sandbox::new();
    let t = b.create(
        "Keep going",
        &["--goal", "--goal-max-turns", "4", "--assignee", "coder"],
    );
    let plain = b.create("Once", &["--assignee", "coder"]);
    // Read by the reference's own loader, not only by SQL.
    let code = format!(
        "import json, hermes_cli.kanban_db as kb\n\
         conn = kb.connect()\n\
         print(json.dumps([[t.goal_mode, t.goal_max_turns] for t in \
         (kb.get_task(conn, '{t}'), kb.get_task(conn, '{plain}'))]))"
    );
    let Some(mut py) = b.reference_code(&code) else {
        return;
    };
    assert_eq!(run_json(&mut py), json!([[true, 4], [false, null]]));
}
