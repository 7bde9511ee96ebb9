//! Goal mode through the worker's MCP tools: `kanban_complete` on a
//! goal-mode task needs the judge (`auxiliary.goal_judge`, here a fake
//! chat-completions server on loopback) to agree; `kanban_block` only
//! takes the kinds that are real outside blockers. Refusals change nothing.

use kanban_testkit::Sandbox;
use kanban_testkit::fake_model::{FakeModel, Reply};
use kanban_testkit::mcp::McpClient;
use serde_json::json;

fn worker(b: &Sandbox, t: &str) -> McpClient {
    let mut cmd = b.std_cmd();
    cmd.arg("mcp").envs(b.worker_env(t, "coder"));
    McpClient::start(cmd)
}

#[test]
fn the_judge_gates_kanban_complete_of_a_goal_task() {
    let model =
        FakeModel::answering(r#"{"verdict": "continue", "reason": "the docs are missing"}"#);
    let b = Sandbox::new();
    b.write_config(&model.config_yaml("judge"));
    let t = b.create("Ship the docs", &["--goal", "--assignee", "coder"]);
    b.ok(&["claim", &t]);
    let mut c = worker(&b, &t);

    let before = b.snapshot();
    let refused = c
        .call("kanban_complete", json!({"summary": "wrote some code"}))
        .error();
    assert!(refused.contains("the docs are missing"), "{refused}");
    assert!(refused.contains(&format!("parents=[{t}]")), "{refused}");
    for kind in [None, Some("capability"), Some("transient")] {
        let mut args = json!({"reason": "stuck"});
        if let Some(k) = kind {
            args["kind"] = json!(k);
        }
        let e = c.call("kanban_block", args).error();
        assert!(e.contains("goal_mode tasks can only block"), "{e}");
    }
    assert_eq!(b.snapshot(), before, "refused calls changed the board");
    let prompt = model.requests()[0]["messages"][1]["content"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        prompt.contains("Ship the docs") && prompt.contains("wrote some code"),
        "{prompt}"
    );

    model.set_replies(vec![Reply::Content(
        r#"{"verdict": "done", "reason": "docs are live"}"#.into(),
    )]);
    let ok = c.call(
        "kanban_complete",
        json!({"summary": "docs published at /docs"}),
    );
    assert_eq!(ok.ok()["task_id"], json!(t));
    c.finish();
    assert_eq!(b.status(&t), "done");
}

#[test]
fn a_goal_task_may_block_on_a_real_outside_blocker() {
    let b = Sandbox::new();
    let t = b.create("Ship", &["--goal", "--assignee", "coder"]);
    b.ok(&["claim", &t]);
    let mut c = worker(&b, &t);
    let r = c.call(
        "kanban_block",
        json!({"reason": "need the API key", "kind": "needs_input"}),
    );
    assert_eq!(r.ok()["status"], "blocked");
    c.finish();
}
