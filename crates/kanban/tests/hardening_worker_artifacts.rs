//! Completing a task keeps its declared scratch artifacts and removes its
//! scratch workspace (issue 9, item 12; reference §5.4), on the CLI
//! (`kanban complete`) and the MCP tool (`kanban_complete`): the artifact
//! files inside the scratch directory are copied into
//! `kanban/attachments/<id>/` and recorded as attachments; a declared
//! scratch artifact that does not exist refuses the completion and leaves
//! the task running and unchanged. `dir:` workspaces are never removed.

use std::path::{Path, PathBuf};

use kanban_testkit::mcp::McpClient;
use kanban_testkit::{Sandbox, event_kinds, stderr};
use serde_json::{Value, json};

fn claimed(b: &Sandbox, extra: &[&str]) -> (String, PathBuf) {
    let mut args = vec!["--assignee", "coder"];
    args.extend_from_slice(extra);
    let t = b.create("deliver a report", &args);
    let out = b.ok(&["claim", &t]);
    let ws = out
        .lines()
        .find_map(|l| l.strip_prefix("Workspace: "))
        .expect("claim prints the workspace");
    (t, PathBuf::from(ws))
}

/// `(filename, stored_path, size, uploaded_by)` of the task's attachments.
fn attachments(b: &Sandbox, task: &str) -> Vec<(String, String, i64, String)> {
    let db = b.db();
    let mut st = db
        .prepare(
            "SELECT filename, stored_path, size, uploaded_by FROM task_attachments \
             WHERE task_id = ?1 ORDER BY id",
        )
        .unwrap();
    st.query_map([task], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

fn completed_payload(show: &Value) -> Value {
    show["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["kind"] == "completed")
        .expect("completed event")["payload"]
        .clone()
}

fn check_kept(b: &Sandbox, t: &str, ws: &Path, names: &[(&str, &str)]) {
    assert!(!ws.exists(), "scratch workspace removed: {}", ws.display());
    let dir = b.path(&format!("kanban/attachments/{t}"));
    let got = attachments(b, t);
    assert_eq!(got.len(), names.len(), "{got:?}");
    for ((name, content), (filename, stored, size, by)) in names.iter().zip(&got) {
        assert_eq!(filename, name);
        assert_eq!(by, "kanban_complete");
        assert_eq!(*size, content.len() as i64);
        assert!(
            Path::new(stored).starts_with(dir.canonicalize().unwrap()),
            "{stored}"
        );
        assert_eq!(std::fs::read_to_string(stored).unwrap(), *content);
    }
    let show = b.task(t);
    let kinds = event_kinds(&show);
    assert_eq!(
        kinds.iter().filter(|k| *k == "attached").count(),
        names.len()
    );
    let stored: Vec<Value> = got.iter().map(|a| json!(a.1)).collect();
    assert_eq!(completed_payload(&show)["artifacts"], json!(stored));
    let run = show["runs"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(run["metadata"]["artifacts"], json!(stored), "{run}");
}

#[test]
fn cli_complete_keeps_declared_and_mentioned_artifacts_then_removes_scratch() {
    let b = Sandbox::new();
    let (t, ws) = claimed(&b, &[]);
    std::fs::write(ws.join("report.md"), "# report\n").unwrap();
    std::fs::create_dir_all(ws.join("out")).unwrap();
    std::fs::write(ws.join("out/data.csv"), "a,b\n1,2\n").unwrap();
    let meta = json!({"artifacts": [ws.join("out/data.csv")]}).to_string();
    let summary = format!("Report written to {}.", ws.join("report.md").display());
    let env = b.worker_env(&t, "coder");
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let out = b.run_env(
        &["complete", &t, "--summary", &summary, "--metadata", &meta],
        &env,
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(b.status(&t), "done");
    check_kept(
        &b,
        &t,
        &ws,
        &[("data.csv", "a,b\n1,2\n"), ("report.md", "# report\n")],
    );
}

#[test]
fn cli_missing_scratch_artifact_refuses_and_leaves_the_task_running() {
    let b = Sandbox::new();
    let (t, ws) = claimed(&b, &[]);
    std::fs::write(ws.join("real.txt"), "kept").unwrap();
    let meta = json!({"artifacts": [ws.join("real.txt"), ws.join("missing.txt")]}).to_string();
    let out = b.refuses(
        &["complete", &t, "--summary", "done", "--metadata", &meta],
        1,
        "could not preserve the declared artifacts",
    );
    assert!(stderr(&out).contains("missing.txt"), "{}", stderr(&out));
    assert_eq!(b.status(&t), "running");
    assert!(ws.join("real.txt").exists(), "workspace kept");
    assert!(attachments(&b, &t).is_empty());
    assert!(
        !b.path(&format!("kanban/attachments/{t}")).exists(),
        "no stray copies"
    );
}

#[test]
fn dir_workspaces_and_undeclared_files_outside_scratch_are_left_alone() {
    let b = Sandbox::new();
    let keep = tempfile::tempdir().unwrap();
    let dir_spec = format!("dir:{}", keep.path().display());
    let (t, ws) = claimed(&b, &["--workspace", &dir_spec]);
    std::fs::create_dir_all(&ws).unwrap();
    std::fs::write(ws.join("notes.txt"), "mine").unwrap();
    let meta =
        json!({"artifacts": [ws.join("notes.txt"), "/nonexistent/elsewhere.pdf"]}).to_string();
    b.ok(&["complete", &t, "--summary", "done", "--metadata", &meta]);
    assert!(
        ws.join("notes.txt").exists(),
        "a dir: workspace is never removed"
    );
    assert!(
        attachments(&b, &t).is_empty(),
        "only scratch files are copied"
    );
    assert_eq!(
        completed_payload(&b.task(&t))["artifacts"],
        json!([ws.join("notes.txt"), "/nonexistent/elsewhere.pdf"])
    );
}

#[test]
fn a_parent_scratch_waits_for_its_children() {
    let b = Sandbox::new();
    let (parent, parent_ws) = claimed(&b, &[]);
    let child = b.create("follow-up", &["--assignee", "coder", "--parent", &parent]);
    b.ok(&["complete", &parent, "--summary", "handoff in scratch"]);
    assert!(parent_ws.exists(), "kept while a child may read it");
    b.ok(&["claim", &child]);
    b.ok(&["complete", &child, "--summary", "done"]);
    assert!(!parent_ws.exists(), "released once every child is done");
}

fn worker_mcp(b: &Sandbox, t: &str) -> McpClient {
    let mut cmd = b.std_cmd();
    cmd.arg("mcp").envs(b.worker_env(t, "coder"));
    McpClient::start(cmd)
}

#[test]
fn mcp_complete_keeps_artifacts_and_a_missing_one_keeps_the_task_in_flight() {
    let b = Sandbox::new();
    let (t, ws) = claimed(&b, &[]);
    std::fs::write(ws.join("chart.png"), "png").unwrap();
    let mut mcp = worker_mcp(&b, &t);
    let before = b.task(&t);
    let missing = ws.join("nope.pdf");
    let e = mcp
        .call(
            "kanban_complete",
            json!({"summary": "done", "artifacts": [ws.join("chart.png"), missing]}),
        )
        .error();
    assert!(
        e.contains("could not preserve the declared artifacts") && e.contains("nope.pdf"),
        "{e}"
    );
    assert!(e.contains("still in-flight"), "{e}");
    assert_eq!(b.task(&t), before, "task unchanged");
    assert!(ws.join("chart.png").exists());

    let r = mcp.call(
        "kanban_complete",
        json!({"summary": "done", "artifacts": ws.join("chart.png")}),
    );
    assert_eq!(r.ok()["task_id"], json!(t));
    mcp.finish();
    check_kept(&b, &t, &ws, &[("chart.png", "png")]);
}
