//! Issue 9 item 18 through the REST API: workspace specs the dispatcher
//! could never spawn are refused at create (400, naming the problem and the
//! fix) with the same rules as the CLI and MCP, and nothing is written.

mod common;

use common::*;
use kanban_store::TaskQuery;
use serde_json::{Value, json};

/// Error text of a refusal, whatever part of the body carries it.
fn message(v: &Value) -> String {
    format!("{} {}", v["error"].as_str().unwrap_or(""), err_detail(v))
}

#[tokio::test]
async fn create_refuses_unusable_workspace_specs() {
    let s = TestServer::start().await;
    let (st, v) = s
        .post(
            "/api/v1/tasks",
            json!({"title": "t", "assignee": "w", "workspace_kind": "dir"}),
        )
        .await;
    assert_eq!(st, 400, "{v}");
    assert!(message(&v).contains("needs a path"), "{v}");
    let (st, v) = s
        .post(
            "/api/v1/tasks",
            json!({"title": "t", "workspace_kind": "worktree", "workspace_path": "../../wt"}),
        )
        .await;
    assert_eq!(st, 400, "{v}");
    let m = message(&v);
    assert!(m.contains("\"../../wt\" is relative"), "{v}");
    assert!(m.contains("absolute"), "{v}");
    let (st, v) = s
        .post(
            "/api/v1/tasks",
            json!({"title": "t", "workspace_kind": "dir", "workspace_path": "rel/dir"}),
        )
        .await;
    assert_eq!(st, 400, "{v}");
    let written = s
        .other_store()
        .list_tasks(&TaskQuery {
            include_archived: true,
            ..Default::default()
        })
        .unwrap();
    assert!(written.is_empty(), "a refused create wrote {written:?}");

    // What the dispatcher can use is still accepted.
    let id = s
        .create(json!({"title": "ok", "workspace_kind": "dir", "workspace_path": "/srv/x"}))
        .await;
    let id2 = s
        .create(json!({"title": "later", "workspace_kind": "worktree"}))
        .await;
    assert_ne!(id, id2);
    s.stop().await;
}
