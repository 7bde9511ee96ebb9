//! Completing through the API (`PATCH /tasks/{id}` status done, and the
//! bulk route) keeps the declared scratch artifacts as attachments and
//! removes the scratch workspace; a missing declared scratch artifact is a
//! 409 that leaves the task running (issue 9, item 12; reference §5.4).

mod common;

use common::*;
use serde_json::json;

/// A running task with a scratch workspace holding `files`.
async fn running_with_scratch(
    s: &TestServer,
    files: &[(&str, &str)],
) -> (String, std::path::PathBuf) {
    let id = s
        .create(json!({"title": "deliver", "assignee": "lane"}))
        .await;
    let store = s.other_store();
    claim(&*store, &id);
    let ws = s.root.board_paths("default").scratch_workspace(&id);
    std::fs::create_dir_all(&ws).unwrap();
    for (name, content) in files {
        std::fs::write(ws.join(name), content).unwrap();
    }
    store
        .set_task_workspace(&id, &ws.to_string_lossy(), None)
        .unwrap();
    (id, ws)
}

#[tokio::test]
async fn api_completion_keeps_artifacts_and_refuses_a_missing_one() {
    let s = TestServer::start().await;
    let (id, ws) = running_with_scratch(&s, &[("plot.svg", "<svg/>")]).await;

    let missing = json!({"status": "done", "summary": "done",
        "metadata": {"artifacts": [ws.join("plot.svg"), ws.join("absent.csv")]}});
    let (st, v) = s.patch(&format!("/api/v1/tasks/{id}"), missing).await;
    assert_eq!(st, 409, "{v}");
    assert!(
        err_detail(&v).contains("absent.csv") || v.to_string().contains("absent.csv"),
        "{v}"
    );
    let (_, detail) = s.get(&format!("/api/v1/tasks/{id}")).await;
    assert_eq!(detail["task"]["status"], "running");
    assert!(ws.join("plot.svg").exists());
    assert_eq!(detail["attachments"].as_array().unwrap().len(), 0);

    let ok = json!({"status": "done", "summary": "done",
        "metadata": {"artifacts": [ws.join("plot.svg")]}});
    let (st, v) = s.patch(&format!("/api/v1/tasks/{id}"), ok).await;
    assert_eq!(st, 200, "{v}");
    assert!(!ws.exists(), "scratch workspace removed");
    let (_, list) = s.get(&format!("/api/v1/tasks/{id}/attachments")).await;
    let atts = list["attachments"].as_array().unwrap();
    assert_eq!(atts.len(), 1, "{list}");
    assert_eq!(atts[0]["filename"], "plot.svg");
    assert_eq!(atts[0]["uploaded_by"], "kanban_complete");
    let stored = atts[0]["stored_path"].as_str().unwrap();
    assert_eq!(std::fs::read_to_string(stored).unwrap(), "<svg/>");
    s.stop().await;
}

#[tokio::test]
async fn bulk_completion_releases_scratch_too() {
    let s = TestServer::start().await;
    let (a, ws_a) = running_with_scratch(&s, &[("x.txt", "x")]).await;
    let (st, v) = s
        .post(
            "/api/v1/tasks/bulk",
            json!({"ids": [a], "status": "done", "summary": "closed"}),
        )
        .await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["results"][0]["ok"], true, "{v}");
    assert!(!ws_a.exists(), "scratch workspace removed");
    s.stop().await;
}
