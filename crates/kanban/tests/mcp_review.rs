//! The review flow's MCP tools (`kanban_request_review`,
//! `kanban_request_changes`) as a worker calls them: the card moves to
//! Review with its run closed as `review_requested`; bad calls are refused
//! and change nothing.

use kanban_testkit::Sandbox;
use kanban_testkit::mcp::McpClient;
use serde_json::json;

fn worker(b: &Sandbox, t: &str) -> McpClient {
    let mut cmd = b.std_cmd();
    cmd.arg("mcp").envs(b.worker_env(t, "coder"));
    McpClient::start(cmd)
}

#[test]
fn a_worker_hands_its_task_to_review_through_mcp() {
    let b = Sandbox::new();
    let t = b.claimed("Write the parser", "coder");
    let mut c = worker(&b, &t);

    // Refusals first: nothing changes.
    let before = b.snapshot();
    assert!(
        c.call("kanban_request_review", json!({}))
            .error()
            .contains("summary is required")
    );
    assert!(
        c.call(
            "kanban_request_review",
            json!({"summary": "done", "metadata": [1, 2]})
        )
        .error()
        .contains("metadata must be an object")
    );
    // Not under review: a verdict is refused.
    assert!(
        c.call("kanban_request_changes", json!({"reason": "redo it"}))
            .error()
            .contains("could not request changes")
    );
    assert!(
        c.call("kanban_request_changes", json!({}))
            .error()
            .contains("reason is required")
    );
    assert_eq!(b.snapshot(), before, "refused calls changed the board");

    let reply = c.call(
        "kanban_request_review",
        json!({"summary": "parser written, tests green", "metadata": {"files": 3},
                   "reviewer": "reviewer"}),
    );
    let done = reply.ok();
    assert_eq!(done["task_id"], json!(t));
    assert_eq!(done["status"], "review");
    assert_eq!(done["reviewer"], "reviewer");

    let shown = b.task(&t);
    assert_eq!(shown["task"]["status"], "review");
    let runs = shown["runs"].as_array().unwrap();
    let last = runs.last().unwrap();
    assert_eq!(last["outcome"], "review_requested");
    assert_eq!(last["summary"], "parser written, tests green");
    assert!(
        shown["events"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["kind"] == "review_requested"),
        "review_requested event"
    );
    c.finish();
}
