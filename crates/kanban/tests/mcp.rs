//! `kanban mcp` driven as an MCP host drives it: initialize handshake,
//! tools/list, tools/call over stdio, in worker and orchestrator mode
//! (reference §5 gating, arguments, results and completion safeguards).

use kanban_testkit::mcp::{McpClient, WORKER_TOOLS};
use kanban_testkit::{Sandbox, event_kinds};
use serde_json::{Value, json};

fn orchestrator(b: &Sandbox) -> McpClient {
    let mut cmd = b.std_cmd();
    cmd.arg("mcp");
    McpClient::start(cmd)
}

/// `kanban mcp` with the environment the dispatcher gives a worker of `t`.
fn worker(b: &Sandbox, t: &str) -> McpClient {
    let mut cmd = b.std_cmd();
    cmd.arg("mcp")
        .envs(b.worker_env(t, "coder"))
        .env("HERMES_SESSION_ID", "sess-42");
    McpClient::start(cmd)
}

fn tool_schema<'a>(tools: &'a [Value], name: &str) -> &'a Value {
    &tools.iter().find(|t| t["name"] == name).unwrap()["inputSchema"]
}

#[test]
fn orchestrator_sees_every_tool_with_schemas() {
    let b = Sandbox::new();
    let mut c = orchestrator(&b);
    let mut expected: Vec<&str> = WORKER_TOOLS.to_vec();
    expected.extend(["kanban_list", "kanban_unblock"]);
    expected.sort();
    assert_eq!(c.tool_names(), expected);
    assert!(
        c.instructions().contains("kanban_unblock"),
        "{}",
        c.instructions()
    );
    let tools = c.tools();
    let create = tool_schema(&tools, "kanban_create");
    assert_eq!(create["type"], "object");
    assert_eq!(create["required"], json!(["title", "assignee"]));
    assert_eq!(
        tool_schema(&tools, "kanban_link")["required"],
        json!(["parent_id", "child_id"])
    );
    assert_eq!(
        tool_schema(&tools, "kanban_comment")["required"],
        json!(["task_id", "body"])
    );
    assert_eq!(
        tool_schema(&tools, "kanban_block")["required"],
        json!(["reason"])
    );
    assert!(tool_schema(&tools, "kanban_show").get("required").is_none());
    let kinds = &tool_schema(&tools, "kanban_block")["properties"]["kind"]["enum"];
    assert_eq!(
        kinds,
        &json!(["dependency", "needs_input", "capability", "transient"])
    );
    for t in &tools {
        assert!(t["inputSchema"]["properties"]["board"].is_object(), "{t}");
        assert!(t["description"].as_str().is_some_and(|d| !d.is_empty()));
    }
    c.finish();
}

#[test]
fn worker_sees_seven_tools_and_routing_tools_are_refused() {
    let b = Sandbox::new();
    let t = b.claimed("Scoped", "coder");
    let mut c = worker(&b, &t);
    assert_eq!(c.tool_names(), WORKER_TOOLS.to_vec());
    let instructions = c.instructions();
    assert!(instructions.contains(&t), "{instructions}");
    assert!(instructions.contains("kanban_complete") && instructions.contains("kanban_block"));
    let list = c.call("kanban_list", json!({}));
    assert!(list.error().contains("kanban_list is orchestrator-only"));
    let unblock = c.call("kanban_unblock", json!({"task_id": t}));
    assert!(
        unblock
            .error()
            .contains("kanban_unblock is orchestrator-only")
    );
    c.finish();
}

#[test]
fn worker_lifecycle_tools_and_their_errors() {
    let b = Sandbox::new();
    let t = b.claimed("Main work", "coder");
    let other = b.claimed("Someone else's", "coder");
    let mut c = worker(&b, &t);

    // show defaults to the own task and carries the worker context.
    let shown = c.call("kanban_show", json!({})).body;
    assert_eq!(shown["task"]["id"], json!(t));
    assert_eq!(shown["task"]["status"], "running");
    assert!(
        shown["worker_context"]
            .as_str()
            .unwrap()
            .contains(&format!("# Kanban task {t}"))
    );
    assert_eq!(shown["runs"].as_array().unwrap().len(), 1);
    // Reading another task is allowed.
    let peek = c.call("kanban_show", json!({"task_id": other}));
    assert_eq!(peek.body["task"]["id"], json!(other));
    assert!(
        c.call("kanban_show", json!({"task_id": "t_00000000"}))
            .error()
            .contains("not found")
    );

    // heartbeat
    assert_eq!(
        c.call("kanban_heartbeat", json!({"note": "halfway"})).ok()["task_id"],
        json!(t)
    );
    let hb = b.task(&t)["events"]
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e["kind"] == "heartbeat" && e["payload"]["note"] == "halfway");
    assert!(hb, "heartbeat event with the note");

    // Lifecycle calls on a foreign task are refused and change nothing.
    let before = b.snapshot();
    for (tool, args) in [
        ("kanban_complete", json!({"task_id": other, "summary": "x"})),
        ("kanban_block", json!({"task_id": other, "reason": "x"})),
        ("kanban_heartbeat", json!({"task_id": other})),
    ] {
        let e = c.call(tool, args).error();
        assert!(
            e.starts_with(&format!(
                "worker is scoped to task {t}; refusing to mutate {other}"
            )),
            "{tool}: {e}"
        );
    }
    assert_eq!(b.snapshot(), before);

    // Missing arguments are tool errors with the reference's wording.
    assert!(
        c.call("kanban_block", json!({}))
            .error()
            .starts_with("reason is required")
    );
    assert!(
        c.call("kanban_comment", json!({"body": "hi"}))
            .error()
            .starts_with("task_id is required")
    );
    assert_eq!(
        c.call("kanban_comment", json!({"task_id": t})).error(),
        "body is required"
    );
    assert_eq!(
        c.call("kanban_create", json!({"assignee": "x"})).error(),
        "title is required"
    );
    assert!(
        c.call("kanban_create", json!({"title": "x"}))
            .error()
            .starts_with("assignee is required")
    );
    assert_eq!(
        c.call("kanban_link", json!({"parent_id": t})).error(),
        "both parent_id and child_id are required"
    );
    assert_eq!(
        c.call("kanban_complete", json!({})).error(),
        "provide at least one of: summary (preferred), result"
    );
    assert!(
        c.call("kanban_block", json!({"reason": "r", "kind": "bogus"}))
            .error()
            .starts_with("kind must be one of")
    );
    assert!(
        c.call("kanban_complete", json!({"summary": "s", "metadata": [1]}))
            .error()
            .starts_with("metadata must be an object")
    );
    assert_eq!(b.snapshot(), before, "argument errors changed the board");

    // comment: on any task, author forced to the profile.
    let cm = c.call(
        "kanban_comment",
        json!({"task_id": other, "body": "FYI from main"}),
    );
    assert!(cm.ok()["comment_id"].as_i64().is_some());
    let comments = b.task(&other)["comments"].clone();
    assert_eq!(comments[0]["author"], "coder");
    assert_eq!(comments[0]["body"], "FYI from main");

    // create: a child of the own task, created_by the profile.
    let child = c.call(
        "kanban_create",
        json!({
            "title": "Follow-up", "assignee": "reviewer", "parents": [t], "body": "check it",
            "skills": "review", "priority": "3"
        }),
    );
    let child_id = child.ok()["task_id"].as_str().unwrap().to_string();
    assert_eq!(child.body["status"], "todo");
    assert_eq!(child.body["subscribed"], false);
    let cv = b.task(&child_id);
    assert_eq!(cv["task"]["created_by"], "coder");
    assert_eq!(cv["task"]["skills"], json!(["review"]));
    assert_eq!(cv["task"]["priority"], 3);
    assert_eq!(cv["parents"], json!([t]));

    // link: success, then cycle and self-link refused.
    let side = b.create("Side", &["--assignee", "coder"]);
    let linked = c.call(
        "kanban_link",
        json!({"parent_id": side, "child_id": child_id}),
    );
    assert_eq!(linked.ok()["parent_id"], json!(side));
    let cycle = c
        .call("kanban_link", json!({"parent_id": child_id, "child_id": t}))
        .error();
    assert!(
        cycle.starts_with("kanban_link: ") && cycle.contains("cycle"),
        "{cycle}"
    );
    let selfl = c
        .call("kanban_link", json!({"parent_id": t, "child_id": t}))
        .error();
    assert!(selfl.starts_with("kanban_link: "), "{selfl}");

    // A phantom created card rejects the completion and leaves the task as it was.
    let phantom = c
        .call(
            "kanban_complete",
            json!({
                "summary": "done", "created_cards": [child_id, "t_deadbeef"]
            }),
        )
        .error();
    assert!(
        phantom.contains("t_deadbeef") && phantom.contains("no state change"),
        "{phantom}"
    );
    let after = b.task(&t);
    assert_eq!(after["task"]["status"], "running");
    assert!(event_kinds(&after).contains(&"completion_blocked_hallucination".to_string()));

    // The real completion: summary, metadata, artifacts, verified cards.
    let done = c.call(
        "kanban_complete",
        json!({
            "summary": "Implemented it; see also t_0badbeef for context",
            "metadata": {"changed_files": 2},
            "artifacts": "out/report.md",
            "created_cards": [child_id],
        }),
    );
    let run_id = done.ok()["run_id"].as_i64().unwrap();
    let v = b.task(&t);
    assert_eq!(v["task"]["status"], "done");
    let run = v["runs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == json!(run_id))
        .unwrap();
    assert_eq!(run["outcome"], "completed");
    assert_eq!(
        run["summary"],
        "Implemented it; see also t_0badbeef for context"
    );
    assert_eq!(
        run["metadata"],
        json!({"changed_files": 2, "artifacts": ["out/report.md"], "worker_session_id": "sess-42"})
    );
    let kinds = event_kinds(&v);
    assert!(
        kinds.contains(&"suspected_hallucinated_references".to_string()),
        "{kinds:?}"
    );
    // Finished: further lifecycle calls fail cleanly.
    assert!(
        c.call("kanban_complete", json!({"summary": "again"}))
            .is_error
    );
    assert!(
        c.call("kanban_heartbeat", json!({}))
            .error()
            .starts_with("could not heartbeat")
    );
    c.finish();
}

#[test]
fn worker_block_reports_where_the_task_landed() {
    let b = Sandbox::new();
    let t = b.claimed("Needs a key", "coder");
    let mut c = worker(&b, &t);
    let r = c.call(
        "kanban_block",
        json!({"reason": "need the API key", "kind": "needs_input"}),
    );
    assert_eq!(r.ok()["status"], "blocked");
    assert_eq!(r.body["block_kind"], "needs_input");
    assert!(r.body["run_id"].as_i64().is_some());
    assert_eq!(b.status(&t), "blocked");
    c.finish();
}

#[test]
fn orchestrator_lists_unblocks_and_closes_children() {
    let b = Sandbox::new();
    let a = b.create("Alpha", &["--assignee", "coder", "--priority", "5"]);
    let z = b.create("Zulu", &["--assignee", "writer", "--tenant", "acme"]);
    let blocked = b.create("Stuck", &["--assignee", "coder"]);
    b.ok(&["block", &blocked, "waiting"]);
    let mut c = orchestrator(&b);

    let all = c.call("kanban_list", json!({})).body;
    assert_eq!(all["count"], 3);
    assert_eq!(all["tasks"][0]["id"], json!(a), "priority first");
    assert_eq!(all["truncated"], false);
    assert_eq!(all["next_limit"], Value::Null);
    let coder = c
        .call(
            "kanban_list",
            json!({"assignee": "coder", "status": "ready"}),
        )
        .body;
    assert_eq!(coder["count"], 1);
    assert_eq!(coder["tasks"][0]["parent_count"], 0);
    let acme = c.call("kanban_list", json!({"tenant": "acme"})).body;
    assert_eq!(acme["tasks"][0]["id"], json!(z));
    let one = c
        .call(
            "kanban_list",
            json!({"limit": 1, "include_archived": "false"}),
        )
        .body;
    assert_eq!(
        (
            one["count"].clone(),
            one["truncated"].clone(),
            one["next_limit"].clone()
        ),
        (json!(1), json!(true), json!(2))
    );
    assert_eq!(
        c.call("kanban_list", json!({"limit": "nope"})).error(),
        "limit must be an integer"
    );
    assert_eq!(
        c.call("kanban_list", json!({"limit": 0})).error(),
        "limit must be >= 1"
    );
    assert_eq!(
        c.call("kanban_list", json!({"limit": 201})).error(),
        "limit must be <= 200"
    );
    assert!(
        c.call("kanban_list", json!({"status": "sideways"}))
            .error()
            .contains("invalid status")
    );
    assert!(
        c.call("kanban_list", json!({"include_archived": "maybe"}))
            .error()
            .contains("include_archived")
    );

    // No own task: ids are required.
    assert!(
        c.call("kanban_show", json!({}))
            .error()
            .starts_with("task_id is required")
    );
    assert!(
        c.call("kanban_unblock", json!({}))
            .error()
            .starts_with("task_id is required")
    );
    let un = c.call("kanban_unblock", json!({"task_id": blocked}));
    assert_eq!(un.ok()["status"], "ready");
    assert!(
        c.call("kanban_unblock", json!({"task_id": a}))
            .error()
            .contains("not blocked")
    );

    // An orchestrator may close another task.
    let done = c.call("kanban_complete", json!({"task_id": z, "result": "merged"}));
    done.ok();
    assert_eq!(b.status(&z), "done");
    // Unknown board slug is a tool error, not a crash.
    assert!(
        c.call("kanban_show", json!({"task_id": a, "board": "nope"}))
            .is_error
    );
    c.finish();
}

/// Issue 9 item 18: `kanban_create` refuses workspace specs the dispatcher
/// could never spawn, with the same rules as the CLI and the API, and
/// inherits the board's default workdir like they do.
#[test]
fn create_checks_workspace_specs() {
    let b = Sandbox::new();
    let mut c = orchestrator(&b);
    let before = b.snapshot();
    let e = c
        .call(
            "kanban_create",
            json!({"title": "t", "assignee": "x", "workspace_kind": "dir"}),
        )
        .error();
    assert!(e.contains("needs a path"), "{e}");
    let e = c
        .call(
            "kanban_create",
            json!({"title": "t", "assignee": "x", "workspace_kind": "worktree",
                   "workspace_path": "../../wt"}),
        )
        .error();
    assert!(e.contains("\"../../wt\" is relative"), "{e}");
    assert!(e.contains("absolute"), "{e}");
    assert_eq!(b.snapshot(), before, "a refused create changed the board");

    let wd = b.path("proj");
    std::fs::create_dir(&wd).unwrap();
    b.ok(&[
        "boards",
        "set-default-workdir",
        "default",
        wd.to_str().unwrap(),
    ]);
    let made = c.call(
        "kanban_create",
        json!({"title": "t", "assignee": "x", "workspace_kind": "dir"}),
    );
    let id = made.ok()["task_id"].as_str().unwrap().to_string();
    assert_eq!(b.task(&id)["task"]["workspace_path"], wd.to_str().unwrap());
    c.finish();
}

/// One raw `kanban mcp` session: lines in, lines out, no client library
/// (these requests are what a well-behaved client never sends).
struct RawMcp {
    child: std::process::Child,
    stdin: Option<std::process::ChildStdin>,
    lines: std::sync::mpsc::Receiver<String>,
}

impl RawMcp {
    fn start(b: &Sandbox) -> RawMcp {
        use std::io::BufRead;
        use std::process::Stdio;
        let mut child = b
            .std_cmd()
            .arg("mcp")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn kanban mcp");
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let stdin = child.stdin.take();
        RawMcp {
            child,
            stdin,
            lines,
        }
    }

    fn send(&mut self, raw: &[u8]) {
        use std::io::Write;
        let stdin = self.stdin.as_mut().unwrap();
        stdin.write_all(raw).unwrap();
        stdin.write_all(b"\n").unwrap();
        stdin.flush().unwrap();
    }

    /// The next message the server writes.
    fn reply(&mut self) -> Value {
        let line = self
            .lines
            .recv_timeout(std::time::Duration::from_secs(20))
            .expect("no reply within 20 s");
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"))
    }
}

impl Drop for RawMcp {
    fn drop(&mut self) {
        drop(self.stdin.take());
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn assert_parse_error(v: &Value) {
    assert_eq!(v["jsonrpc"], "2.0", "{v}");
    assert_eq!(v["id"], Value::Null, "{v}");
    assert!(v.as_object().unwrap().contains_key("id"), "{v}");
    assert_eq!(v["error"]["code"], -32700, "{v}");
    assert!(v["error"]["message"].is_string(), "{v}");
}

/// Issue 9 item 20: a line that is not JSON, a request nested deeper than
/// the parser accepts, and bytes that are not UTF-8 each get a JSON-RPC
/// parse error (-32700, id null), and the server keeps answering.
#[test]
fn unparsable_lines_get_parse_errors_and_serving_continues() {
    let b = Sandbox::new();
    let mut m = RawMcp::start(&b);
    let init = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {},
        "clientInfo": {"name": "raw", "version": "0"}}});
    m.send(init.to_string().as_bytes());
    assert_eq!(m.reply()["id"], 1);
    m.send(br#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#);

    m.send(b"this is not json");
    assert_parse_error(&m.reply());
    m.send(br#"{"jsonrpc": "2.0", "id": 2, "method": "tools/list""#);
    assert_parse_error(&m.reply());
    let deep = format!(
        r#"{{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{{"name":"kanban_list","arguments":{{"x":{}{}}}}}}}"#,
        "[".repeat(5000),
        "]".repeat(5000)
    );
    m.send(deep.as_bytes());
    assert_parse_error(&m.reply());
    m.send(b"\xff\xfe{}");
    assert_parse_error(&m.reply());

    // Still serving, in order.
    m.send(br#"{"jsonrpc":"2.0","id":4,"method":"tools/list","params":{}}"#);
    let tools = m.reply();
    assert_eq!(tools["id"], 4, "{tools}");
    assert!(tools["result"]["tools"].as_array().unwrap().len() >= 7);
    // Valid JSON that is not a request still gets rmcp's invalid-request
    // answer, and blank lines are ignored.
    m.send(b"");
    m.send(b"42");
    assert_eq!(m.reply()["error"]["code"], -32600);
    m.send(br#"{"jsonrpc":"2.0","id":5,"method":"ping"}"#);
    assert_eq!(m.reply()["id"], 5);
}
