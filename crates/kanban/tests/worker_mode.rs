//! Worker mode end to end: the CLI verbs inside a worker (own task by
//! default, foreign lifecycle calls refused, run-id fencing), a reclaimed
//! worker's late MCP calls, an MCP-speaking agent script finishing a task
//! (by hand after `kanban claim`, and through `kanban dispatch` with a
//! template profile when that verb exists), and the Python reference's
//! worker tools on a board claimed by `kanban` (and the reverse).

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use kanban_testkit::mcp::{McpClient, WORKER_TOOLS};
use kanban_testkit::{Sandbox, event_kinds, stderr, stdout};
use serde_json::{Value, json};

fn run_as(b: &Sandbox, env: &[(String, String)], args: &[&str]) -> std::process::Output {
    let pairs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    b.run_env(args, &pairs)
}

fn agent_script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/mcp_agent.py")
}

/// The run that closed the task, with the checks acceptance asks for.
fn assert_completed_by_agent(b: &Sandbox, t: &str, tools_seen: i64) {
    let v = b.task(t);
    assert_eq!(v["task"]["status"], "done", "{v}");
    let run = v["runs"].as_array().unwrap().last().unwrap();
    assert_eq!(run["outcome"], "completed");
    assert_eq!(
        run["summary"],
        json!(format!(
            "Agent finished {}",
            v["task"]["title"].as_str().unwrap()
        ))
    );
    assert_eq!(
        run["metadata"],
        json!({"agent": "mcp_agent.py", "tools_seen": tools_seen})
    );
    assert_eq!(v["latest_summary"], run["summary"]);
    assert!(event_kinds(&v).contains(&"heartbeat".to_string()));
}

#[test]
fn cli_verbs_default_to_the_workers_own_task() {
    let b = Sandbox::new();
    let t = b.claimed("Own", "coder");
    let other = b.claimed("Other", "coder");
    let env = b.worker_env(&t, "coder");

    let shown: Value =
        serde_json::from_str(&stdout(&run_as(&b, &env, &["show", "--json"]))).unwrap();
    assert_eq!(shown["task"]["id"], json!(t));
    let ctx = run_as(&b, &env, &["context"]);
    assert!(
        stdout(&ctx).starts_with(&format!("# Kanban task {t}: Own")),
        "{}",
        stdout(&ctx)
    );
    let hb = run_as(&b, &env, &["heartbeat", "--note", "busy"]);
    assert!(hb.status.success(), "{}", stderr(&hb));
    assert_eq!(stdout(&hb), format!("Heartbeat recorded for {t}\n"));

    // Foreign lifecycle calls and routing calls are refused, board untouched.
    let before = b.snapshot();
    let scoped = format!("worker is scoped to task {t}; refusing to mutate {other}");
    for args in [
        vec!["complete", other.as_str(), "--summary", "x"],
        vec!["block", other.as_str(), "nope"],
        vec!["heartbeat", other.as_str()],
        vec!["block", t.as_str(), "--ids", other.as_str()],
    ] {
        let out = run_as(&b, &env, &args);
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        assert!(stderr(&out).contains(&scoped), "{args:?}: {}", stderr(&out));
    }
    let un = run_as(&b, &env, &["unblock", &other]);
    assert_eq!(un.status.code(), Some(1));
    assert!(stderr(&un).contains("orchestrator-only"), "{}", stderr(&un));
    assert_eq!(b.snapshot(), before);

    // `kanban block <reason...>` without an id blocks the own task.
    let blk = run_as(
        &b,
        &env,
        &[
            "block",
            "need",
            "the",
            "API",
            "key",
            "--kind",
            "needs_input",
        ],
    );
    assert!(blk.status.success(), "{}", stderr(&blk));
    assert_eq!(stdout(&blk), format!("Blocked {t}: need the API key\n"));
    assert_eq!(b.status(&t), "blocked");

    // `kanban complete --summary` without an id completes the own task.
    let env2 = b.worker_env(&other, "coder");
    let done = run_as(
        &b,
        &env2,
        &[
            "complete",
            "--summary",
            "all good",
            "--metadata",
            "{\"n\": 1}",
        ],
    );
    assert!(done.status.success(), "{}", stderr(&done));
    let v = b.task(&other);
    assert_eq!(v["task"]["status"], "done");
    assert_eq!(v["runs"][0]["metadata"], json!({"n": 1}));

    // Outside a worker the id stays required (usage error).
    for args in [
        vec!["complete"],
        vec!["heartbeat"],
        vec!["show"],
        vec!["context"],
    ] {
        let out = b.run(&args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        assert!(
            stderr(&out).contains("a task id is required"),
            "{}",
            stderr(&out)
        );
    }
}

#[test]
fn reclaimed_workers_late_mcp_calls_are_refused() {
    let b = Sandbox::new();
    let t = b.claimed("Reclaimed", "coder");
    let mut old = {
        let mut cmd = b.std_cmd();
        cmd.arg("mcp").envs(b.worker_env(&t, "coder"));
        McpClient::start(cmd)
    };
    old.call("kanban_heartbeat", json!({"note": "first attempt"}))
        .ok();
    b.ok(&["reclaim", &t, "--reason", "stuck"]);
    b.ok(&["claim", &t]);
    let before = b.snapshot();
    let late = old
        .call("kanban_complete", json!({"summary": "late"}))
        .error();
    assert!(
        late.starts_with(&format!("could not complete {t}")),
        "{late}"
    );
    assert!(old.call("kanban_block", json!({"reason": "late"})).is_error);
    assert!(old.call("kanban_heartbeat", json!({})).is_error);
    assert_eq!(
        b.snapshot(),
        before,
        "the stale worker changed the new attempt"
    );
    assert_eq!(b.status(&t), "running");
    old.finish();

    // The current attempt's worker completes normally.
    let mut new = {
        let mut cmd = b.std_cmd();
        cmd.arg("mcp").envs(b.worker_env(&t, "coder"));
        McpClient::start(cmd)
    };
    new.call("kanban_complete", json!({"summary": "second attempt"}))
        .ok();
    let v = b.task(&t);
    let outcomes: Vec<&str> = v["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["outcome"].as_str().unwrap())
        .collect();
    assert_eq!(outcomes, ["reclaimed", "completed"]);
    new.finish();
}

#[test]
fn mcp_agent_script_completes_a_claimed_task() {
    let b = Sandbox::new();
    let t = b.claimed("Agent task", "coder");
    let out = Command::new("python3")
        .arg(agent_script())
        .arg(&t)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", b.root())
        .env("HERMES_HOME", b.root())
        .env("KANBAN_BIN", env!("CARGO_BIN_EXE_kanban"))
        .envs(b.worker_env(&t, "coder"))
        .output()
        .expect("python3");
    assert!(
        out.status.success(),
        "agent failed:\n{}\n{}",
        stdout(&out),
        stderr(&out)
    );
    assert!(
        stdout(&out).contains(&format!("tools: {}", WORKER_TOOLS.join(","))),
        "{}",
        stdout(&out)
    );
    assert_completed_by_agent(&b, &t, WORKER_TOOLS.len() as i64);
}

#[test]
fn dispatched_template_profile_agent_completes_its_task() {
    let b = Sandbox::new();
    let config = format!(
        "kanban:\n  profiles:\n    mcpagent:\n      command: [\"python3\", {script:?}, \"{{task_id}}\"]\n      env: {{KANBAN_BIN: {bin:?}}}\n      description: \"test agent speaking MCP to kanban mcp\"\n",
        script = agent_script().to_str().unwrap(),
        bin = env!("CARGO_BIN_EXE_kanban"),
    );
    std::fs::write(b.path("config.yaml"), config).unwrap();
    let t = b.create("Dispatched agent task", &["--assignee", "mcpagent"]);
    let d = b.run(&["dispatch", "--json"]);
    assert!(
        d.status.success(),
        "dispatch: {}\n{}",
        stdout(&d),
        stderr(&d)
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    while b.status(&t) != "done" {
        assert!(
            Instant::now() < deadline,
            "worker never completed: {}",
            b.task(&t)
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_completed_by_agent(&b, &t, WORKER_TOOLS.len() as i64);
}

/// `python3` with the reference importable, on this board.
fn reference_python(b: &Sandbox, code: &str) -> Option<Command> {
    let path = kanban_testkit::reference::reference_pythonpath()?;
    let mut cmd = Command::new("python3");
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", b.root())
        .env("HERMES_HOME", b.root())
        .env("PYTHONPATH", path)
        .args(["-c", code]);
    Some(cmd)
}

const REFERENCE_WORKER: &str = r#"
import json, os
from tools import kanban_tools as kt
tid = os.environ["HERMES_KANBAN_TASK"]
show = json.loads(kt._handle_show({}))
assert show["task"]["id"] == tid, show
hb = json.loads(kt._handle_heartbeat({"note": "python worker"}))
assert hb.get("ok"), hb
foreign = json.loads(kt._handle_complete({"task_id": "t_00000000", "summary": "x"}))
assert "worker is scoped" in foreign["error"], foreign
done = json.loads(kt._handle_complete({"summary": "done by the reference", "metadata": {"by": "python"}}))
assert done.get("ok"), done
print(json.dumps(done))
"#;

#[test]
fn reference_worker_tools_complete_a_task_claimed_by_kanban() {
    let b = Sandbox::new();
    let t = b.claimed("Interop", "coder");
    let Some(mut py) = reference_python(&b, REFERENCE_WORKER) else {
        return;
    };
    let out = py
        .envs(b.worker_env(&t, "coder"))
        .output()
        .expect("python3");
    assert!(
        out.status.success(),
        "reference worker failed:\n{}\n{}",
        stdout(&out),
        stderr(&out)
    );
    let reply: Value = serde_json::from_str(stdout(&out).trim()).unwrap();
    let v = b.task(&t);
    assert_eq!(v["task"]["status"], "done");
    let run = v["runs"].as_array().unwrap().last().unwrap();
    assert_eq!(reply["run_id"], run["id"]);
    assert_eq!(run["outcome"], "completed");
    assert_eq!(run["summary"], "done by the reference");
    assert_eq!(run["metadata"], json!({"by": "python"}));
}

const REFERENCE_CLAIM: &str = r#"
import json
import hermes_cli.kanban_db as kb
conn = kb.connect()
tid = kb.create_task(conn, title="Claimed by Python", assignee="coder")
task = kb.claim_task(conn, tid)
run = kb.latest_run(conn, tid)
print(json.dumps({"task": tid, "lock": task.claim_lock, "run_id": run.id}))
"#;

#[test]
fn kanban_mcp_worker_completes_a_task_claimed_by_the_reference() {
    let b = Sandbox::new();
    b.ok(&["init"]);
    let Some(mut py) = reference_python(&b, REFERENCE_CLAIM) else {
        return;
    };
    let out = py.output().expect("python3");
    assert!(out.status.success(), "{}", stderr(&out));
    let ids: Value = serde_json::from_str(stdout(&out).trim()).unwrap();
    let t = ids["task"].as_str().unwrap().to_string();
    let mut cmd = b.std_cmd();
    cmd.arg("mcp")
        .env("HERMES_KANBAN_TASK", &t)
        .env("HERMES_KANBAN_RUN_ID", ids["run_id"].to_string())
        .env("HERMES_KANBAN_CLAIM_LOCK", ids["lock"].as_str().unwrap());
    let mut c = McpClient::start(cmd);
    c.call("kanban_heartbeat", json!({"note": "rust worker"}))
        .ok();
    c.call(
        "kanban_complete",
        json!({"summary": "done by kanban mcp", "metadata": {"by": "rust"}}),
    )
    .ok();
    c.finish();
    let v = b.task(&t);
    assert_eq!(v["task"]["status"], "done");
    assert_eq!(v["runs"][0]["outcome"], "completed");
    assert_eq!(v["runs"][0]["metadata"], json!({"by": "rust"}));
}
