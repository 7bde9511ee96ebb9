//! Secrets handed to the board are stored masked on every surface: the
//! CLI verbs, the MCP worker tools and the REST API (the reference masks
//! its worker tools' summary, result, metadata, block reason and comment
//! body; we mask them wherever they come from).

use kanban_testkit::Sandbox;
use kanban_testkit::mcp::McpClient;
use serde_json::{Value, json};

const KEY: &str = "ghp_abcdefghijklmnopqrstuvwxyz0123456789";
const MASKED: &str = "ghp_ab...6789";
const DSN: &str = "postgres://admin:hunter2@db.example.com/app";
const DSN_MASKED: &str = "postgres://admin:***@db.example.com/app";

/// Every text column that can hold what a caller wrote, as one string.
fn stored(b: &Sandbox) -> String {
    let db = b.db();
    let mut all = String::new();
    for q in [
        "SELECT coalesce(result, '') FROM tasks",
        "SELECT coalesce(summary, '') || ' ' || coalesce(metadata, '') || ' ' || \
         coalesce(error, '') FROM task_runs",
        "SELECT body FROM task_comments",
        "SELECT coalesce(payload, '') FROM task_events",
    ] {
        let mut st = db.prepare(q).unwrap();
        let rows = st.query_map([], |r| r.get::<_, String>(0)).unwrap();
        for r in rows {
            all.push_str(&r.unwrap());
            all.push('\n');
        }
    }
    all
}

fn assert_masked(b: &Sandbox, expect: &[&str]) {
    let text = stored(b);
    assert!(!text.contains(KEY), "the key was stored raw:\n{text}");
    assert!(
        !text.contains("hunter2"),
        "the password was stored raw:\n{text}"
    );
    for e in expect {
        assert!(text.contains(e), "{e:?} missing from:\n{text}");
    }
}

#[test]
fn cli_complete_comment_and_block_store_secrets_masked() {
    let b = Sandbox::new();
    let done = b.claimed("finish", "coder");
    b.ok(&[
        "complete",
        &done,
        "--summary",
        &format!("pushed with {KEY}"),
        "--result",
        DSN,
        "--metadata",
        &json!({"api_key": "shortsecret", "nested": {"list": [KEY]}, "n": 1}).to_string(),
    ]);
    let t = b.claimed("comment and block", "coder");
    b.ok(&["comment", &t, "token", "is", KEY]);
    b.ok(&["block", &t, "need", "access:", DSN]);
    assert_masked(&b, &[MASKED, DSN_MASKED, "\"api_key\":\"***\""]);
    let meta: Value = {
        let db = b.db();
        let m: String = db
            .query_row(
                "SELECT metadata FROM task_runs WHERE task_id = ?1",
                [&done],
                |r| r.get(0),
            )
            .unwrap();
        serde_json::from_str(&m).unwrap()
    };
    assert_eq!(
        meta,
        json!({"api_key": "***", "nested": {"list": [MASKED]}, "n": 1})
    );
    // Text without a secret is stored as written.
    b.ok(&[
        "comment",
        &t,
        "nothing secret: t_1234abcd, see https://example.com/?q=1",
    ]);
    assert!(stored(&b).contains("nothing secret: t_1234abcd, see https://example.com/?q=1"));
}

#[test]
fn mcp_complete_and_comment_store_secrets_masked() {
    let b = Sandbox::new();
    let t = b.claimed("worker task", "coder");
    let mut cmd = b.std_cmd();
    cmd.arg("mcp").envs(b.worker_env(&t, "coder"));
    let mut c = McpClient::start(cmd);
    c.call(
        "kanban_comment",
        json!({"task_id": t, "body": format!("found {KEY} in .env")}),
    )
    .ok();
    c.call(
        "kanban_complete",
        json!({"summary": format!("deployed to {DSN}"), "metadata": {"token": KEY}}),
    )
    .ok();
    c.finish();
    assert_masked(&b, &[MASKED, DSN_MASKED]);
    let other = b.claimed("blocked worker", "coder");
    let mut cmd = b.std_cmd();
    cmd.arg("mcp").envs(b.worker_env(&other, "coder"));
    let mut c = McpClient::start(cmd);
    c.call("kanban_block", json!({"reason": format!("401 with {KEY}")}))
        .ok();
    c.finish();
    assert_masked(&b, &[&format!("401 with {MASKED}")]);
}

#[test]
fn rest_patch_and_comment_store_secrets_masked() {
    let b = Sandbox::new();
    let done = b.claimed("finish", "coder");
    let blocked = b.claimed("block me", "coder");
    let gw = b.gateway();
    let r = gw.request(
        "PATCH",
        &format!("/api/v1/tasks/{done}"),
        Some(&json!({
            "status": "done",
            "summary": format!("merged; {KEY}"),
            "result": DSN,
            "metadata": {"password": "hunter2", "k": [KEY]},
        })),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let r = gw.request(
        "PATCH",
        &format!("/api/v1/tasks/{blocked}"),
        Some(&json!({"status": "blocked", "block_reason": format!("needs {KEY}")})),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let r = gw.request(
        "POST",
        &format!("/api/v1/tasks/{blocked}/comments"),
        Some(&json!({"body": format!("Authorization: Bearer {KEY}")})),
    );
    assert!(r.status == 200 || r.status == 201, "{}", r.body);
    drop(gw);
    assert_masked(
        &b,
        &[
            &format!("merged; {MASKED}"),
            DSN_MASKED,
            &format!("needs {MASKED}"),
            "Authorization: Bearer ***",
        ],
    );
}
