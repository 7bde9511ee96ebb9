//! Every REST route, black-box over HTTP: success and error paths.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use common::*;
use kanban_server::{DispatchPass, PassRequest};
use reqwest::Method;
use serde_json::{Value, json};

#[tokio::test]
async fn board_view_groups_tasks_with_counts_and_errors_on_bad_boards() {
    let s = TestServer::start().await;
    let parent = s
        .create(json!({"title": "parent", "assignee": "alice", "tenant": "acme"}))
        .await;
    let child = s
        .create(json!({"title": "child", "parents": [parent]}))
        .await;
    let (st, _) = s
        .post(
            &format!("/api/v1/tasks/{parent}/comments"),
            json!({"body": "hi"}),
        )
        .await;
    assert_eq!(st, 200);

    let (st, v) = s.get("/api/v1/board").await;
    assert_eq!(st, 200, "{v}");
    let names: Vec<&str> = v["columns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "triage",
            "todo",
            "scheduled",
            "ready",
            "running",
            "blocked",
            "review",
            "done"
        ]
    );
    let col = |n: &str| {
        v["columns"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == n)
            .unwrap()["tasks"]
            .clone()
    };
    let p = &col("ready")[0];
    assert_eq!(p["id"], parent.as_str());
    assert_eq!(p["link_counts"], json!({"parents": 0, "children": 1}));
    assert_eq!(p["comment_count"], 1);
    assert_eq!(p["progress"], json!({"done": 0, "total": 1}));
    assert!(p["age"]["created_age_seconds"].is_i64());
    let c = &col("todo")[0];
    assert_eq!(c["id"], child.as_str());
    assert_eq!(c["link_counts"]["parents"], 1);
    assert!(c["progress"].is_null());
    assert_eq!(v["tenants"], json!(["acme"]));
    assert_eq!(v["assignees"], json!(["alice"]));
    assert!(v["latest_event_id"].as_i64().unwrap() > 0);

    let (st, v) = s
        .get("/api/v1/board?tenant=acme&include_archived=true")
        .await;
    assert_eq!(st, 200);
    assert_eq!(v["columns"].as_array().unwrap().len(), 9);
    assert_eq!(v["tenants"], json!(["acme"]));

    let (st, v) = s.get("/api/v1/board?board=Bad%20Slug!").await;
    assert_eq!(st, 400, "{v}");
    err_detail(&v);
    let (st, v) = s.get("/api/v1/board?board=nope").await;
    assert_eq!(st, 404, "{v}");
    assert!(err_detail(&v).contains("nope"));
    s.stop().await;
}

#[tokio::test]
async fn task_detail_and_unknown_ids() {
    let s = TestServer::start().await;
    let p = s.create(json!({"title": "p"})).await;
    let c = s.create(json!({"title": "c", "parents": [p]})).await;
    let (st, v) = s.get(&format!("/api/v1/tasks/{p}")).await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["task"]["title"], "p");
    assert_eq!(v["links"]["children"], json!([c]));
    assert_eq!(v["child_results"][0]["id"], c.as_str());
    assert!(
        v["events"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["kind"] == "created")
    );
    assert!(v["runs"].as_array().unwrap().is_empty());
    let (st, v) = s.get("/api/v1/tasks/t_deadbeef").await;
    assert_eq!(st, 404);
    assert!(err_detail(&v).contains("t_deadbeef"));
    let (st, _) = s
        .get(&format!("/api/v1/tasks/{p}?run_state_type=status"))
        .await;
    assert_eq!(st, 400);
    s.stop().await;
}

#[tokio::test]
async fn create_warns_without_dispatcher_and_rejects_bad_input() {
    let s = TestServer::start().await;
    let (st, v) = s
        .post(
            "/api/v1/tasks",
            json!({"title": "go", "assignee": "worker"}),
        )
        .await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["task"]["status"], "ready");
    assert_eq!(v["task"]["created_by"], "dashboard");
    assert!(
        v["warning"]
            .as_str()
            .unwrap()
            .contains("kanban gateway start"),
        "{v}"
    );
    let (_, v) = s
        .post(
            "/api/v1/tasks",
            json!({"title": "t", "assignee": "worker", "triage": true}),
        )
        .await;
    assert!(v.get("warning").is_none(), "{v}");
    let (_, v) = s
        .post("/api/v1/tasks", json!({"title": "unassigned"}))
        .await;
    assert!(v.get("warning").is_none(), "{v}");

    let (st, v) = s.post("/api/v1/tasks", json!({"title": "   "})).await;
    assert_eq!(st, 400, "{v}");
    err_detail(&v);
    let (st, v) = s
        .post(
            "/api/v1/tasks",
            json!({"title": "x", "parents": ["t_00000000"]}),
        )
        .await;
    assert_eq!(st, 400, "{v}");
    let r = s
        .client
        .post(s.url("/api/v1/tasks"))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    let (st, v) = decode(r).await;
    assert_eq!(st, 400, "{v}");
    err_detail(&v);
    let big = "x".repeat(2 * 1024 * 1024);
    let (st, v) = s
        .post("/api/v1/tasks", json!({"title": "big", "body": big}))
        .await;
    assert_eq!(st, 413, "{v}");
    err_detail(&v);
    s.stop().await;
}

#[tokio::test]
async fn patch_follows_reference_status_semantics() {
    let s = TestServer::start().await;
    let p = s.create(json!({"title": "parent"})).await;
    let c = s.create(json!({"title": "child", "parents": [p]})).await;

    let (st, v) = s
        .patch(&format!("/api/v1/tasks/{c}"), json!({"status": "ready"}))
        .await;
    assert_eq!(st, 409, "{v}");
    assert!(
        err_detail(&v).contains(&p),
        "409 names the blocking parent: {v}"
    );
    let (st, _) = s
        .patch(&format!("/api/v1/tasks/{p}"), json!({"status": "running"}))
        .await;
    assert_eq!(st, 400);
    let (st, _) = s
        .patch(&format!("/api/v1/tasks/{p}"), json!({"status": "bogus"}))
        .await;
    assert_eq!(st, 400);
    let (st, _) = s
        .patch(&format!("/api/v1/tasks/{p}"), json!({"title": " "}))
        .await;
    assert_eq!(st, 400);
    let (st, _) = s
        .patch("/api/v1/tasks/t_00000000", json!({"priority": 1}))
        .await;
    assert_eq!(st, 404);

    let (st, v) = s
        .patch(
            &format!("/api/v1/tasks/{p}"),
            json!({"title": "renamed", "priority": 5, "assignee": "bob"}),
        )
        .await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["task"]["title"], "renamed");
    assert_eq!(v["task"]["priority"], 5);
    assert_eq!(v["task"]["assignee"], "bob");

    let (st, v) = s
        .patch(
            &format!("/api/v1/tasks/{p}"),
            json!({"status": "blocked", "block_reason": "wait"}),
        )
        .await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["task"]["status"], "blocked");
    let (st, v) = s
        .patch(&format!("/api/v1/tasks/{p}"), json!({"status": "ready"}))
        .await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["task"]["status"], "ready");
    let (st, v) = s
        .patch(
            &format!("/api/v1/tasks/{p}"),
            json!({"status": "done", "summary": "shipped"}),
        )
        .await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["task"]["status"], "done");
    // The child's parent is done now: it may be promoted.
    let (st, v) = s
        .patch(&format!("/api/v1/tasks/{c}"), json!({"status": "ready"}))
        .await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["task"]["status"], "ready");
    let (st, v) = s
        .patch(
            &format!("/api/v1/tasks/{c}"),
            json!({"status": "scheduled"}),
        )
        .await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["task"]["status"], "scheduled");
    let (st, v) = s
        .patch(&format!("/api/v1/tasks/{c}"), json!({"status": "archived"}))
        .await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["task"]["status"], "archived");
    let (st, _) = s
        .patch(&format!("/api/v1/tasks/{c}"), json!({"status": "done"}))
        .await;
    assert_eq!(st, 409, "an archived task cannot be completed");
    let (st, v) = s
        .patch(&format!("/api/v1/tasks/{p}"), json!({"status": "todo"}))
        .await;
    assert_eq!(st, 200, "drag-and-drop to todo is a direct move: {v}");
    assert_eq!(v["task"]["status"], "todo");
    s.stop().await;
}

#[tokio::test]
async fn assignee_change_on_a_claimed_task_is_a_conflict() {
    let s = TestServer::start().await;
    let id = s
        .create(json!({"title": "busy", "assignee": "alice"}))
        .await;
    claim(&*s.other_store(), &id);
    let (st, v) = s
        .patch(&format!("/api/v1/tasks/{id}"), json!({"assignee": "bob"}))
        .await;
    assert_eq!(st, 409, "{v}");
    s.stop().await;
}

#[tokio::test]
async fn delete_and_bulk() {
    let s = TestServer::start().await;
    let a = s.create(json!({"title": "a"})).await;
    let b = s.create(json!({"title": "b"})).await;
    let (st, v) = s
        .post(
            "/api/v1/tasks/bulk",
            json!({"ids": [a, "t_00000000", b], "priority": 3, "assignee": "x"}),
        )
        .await;
    assert_eq!(st, 200, "{v}");
    let r = v["results"].as_array().unwrap();
    assert_eq!(r[0]["ok"], true);
    assert_eq!(r[1]["ok"], false);
    assert!(r[1]["error"].is_string());
    assert_eq!(r[2]["ok"], true);
    let (_, t) = s.get(&format!("/api/v1/tasks/{b}")).await;
    assert_eq!(t["task"]["priority"], 3);
    let (st, v) = s
        .post("/api/v1/tasks/bulk", json!({"ids": [a], "archive": true}))
        .await;
    assert_eq!(st, 200);
    assert_eq!(v["results"][0]["ok"], true);
    let (st, _) = s.post("/api/v1/tasks/bulk", json!({"ids": []})).await;
    assert_eq!(st, 400);

    let (st, v) = s.delete(&format!("/api/v1/tasks/{a}")).await;
    assert_eq!(st, 200);
    assert_eq!(v, json!({"deleted": true, "task_id": a}));
    let (st, _) = s.delete(&format!("/api/v1/tasks/{a}")).await;
    assert_eq!(st, 404);
    s.stop().await;
}

#[tokio::test]
async fn comments_and_links() {
    let s = TestServer::start().await;
    let a = s.create(json!({"title": "a"})).await;
    let b = s.create(json!({"title": "b"})).await;
    let (st, v) = s
        .post(
            &format!("/api/v1/tasks/{a}/comments"),
            json!({"body": "note", "author": "me"}),
        )
        .await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["ok"], true);
    assert_eq!(v["comment"]["author"], "me");
    let (st, _) = s
        .post(
            &format!("/api/v1/tasks/{a}/comments"),
            json!({"body": "  "}),
        )
        .await;
    assert_eq!(st, 400);
    let (st, _) = s
        .post("/api/v1/tasks/t_00000000/comments", json!({"body": "x"}))
        .await;
    assert_eq!(st, 404);

    let (st, v) = s
        .post("/api/v1/links", json!({"parent_id": a, "child_id": b}))
        .await;
    assert_eq!(st, 200, "{v}");
    let (st, v) = s
        .post("/api/v1/links", json!({"parent_id": b, "child_id": a}))
        .await;
    assert_eq!(st, 400, "cycle: {v}");
    assert!(err_detail(&v).contains("cycle"));
    let (st, _) = s
        .post("/api/v1/links", json!({"parent_id": a, "child_id": a}))
        .await;
    assert_eq!(st, 400);
    let (st, _) = s
        .post(
            "/api/v1/links",
            json!({"parent_id": a, "child_id": "t_00000000"}),
        )
        .await;
    assert_eq!(st, 400);
    let (st, v) = s
        .delete(&format!("/api/v1/links?parent_id={a}&child_id={b}"))
        .await;
    assert_eq!(st, 200);
    assert_eq!(v["ok"], true);
    let (_, v) = s
        .delete(&format!("/api/v1/links?parent_id={a}&child_id={b}"))
        .await;
    assert_eq!(v["ok"], false);
    let (st, _) = s.delete("/api/v1/links?parent_id=x").await;
    assert_eq!(st, 400, "missing child_id");
    s.stop().await;
}

#[tokio::test]
async fn stats_assignees_and_log() {
    let s = TestServer::start().await;
    let id = s.create(json!({"title": "a", "assignee": "alice"})).await;
    std::fs::create_dir_all(s.root.path().join("profiles/bob")).unwrap();
    let (st, v) = s.get("/api/v1/stats").await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["by_status"]["ready"], 1);
    assert_eq!(v["by_assignee"]["alice"]["ready"], 1);
    let (st, v) = s.get("/api/v1/assignees").await;
    assert_eq!(st, 200, "{v}");
    let names: Vec<&str> = v["assignees"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap())
        .collect();
    assert!(names.contains(&"alice") && names.contains(&"bob"), "{v}");
    let (st, _) = s.get("/api/v1/stats?board=missing").await;
    assert_eq!(st, 404);

    let (st, v) = s.get(&format!("/api/v1/tasks/{id}/log")).await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["exists"], false);
    let log = s.root.board_paths("default").log_file(&id);
    std::fs::create_dir_all(log.parent().unwrap()).unwrap();
    std::fs::write(&log, "line one\nline two\n").unwrap();
    let (st, v) = s.get(&format!("/api/v1/tasks/{id}/log?tail=9")).await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["exists"], true);
    assert_eq!(v["content"], "line two\n");
    assert_eq!(v["truncated"], true);
    assert_eq!(v["size_bytes"], 18);
    let (st, _) = s.get(&format!("/api/v1/tasks/{id}/log?tail=0")).await;
    assert_eq!(st, 400);
    let (st, _) = s.get("/api/v1/tasks/t_00000000/log").await;
    assert_eq!(st, 404);
    s.stop().await;
}

#[tokio::test]
async fn runs_reclaim_reassign_and_terminate() {
    let s = TestServer::start().await;
    let other = s.other_store();
    let id = s
        .create(json!({"title": "work", "assignee": "alice"}))
        .await;
    let run_id = claim(&*other, &id);

    let (st, v) = s.get(&format!("/api/v1/tasks/{id}/runs")).await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["runs"][0]["id"], run_id);
    let (st, v) = s.get(&format!("/api/v1/runs/{run_id}")).await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["run"]["task_id"], id.as_str());
    let (st, _) = s.get("/api/v1/runs/999999").await;
    assert_eq!(st, 404);
    let (st, _) = s.get("/api/v1/tasks/t_00000000/runs").await;
    assert_eq!(st, 404);
    let (st, v) = s.get("/api/v1/workers/active").await;
    assert_eq!(st, 200);
    assert_eq!(v["count"], 0, "no pid recorded yet: {v}");

    let (st, v) = s
        .post(
            &format!("/api/v1/tasks/{id}/reassign"),
            json!({"profile": "bob"}),
        )
        .await;
    assert_eq!(st, 409, "running without reclaim_first: {v}");
    let (st, v) = s
        .post(
            &format!("/api/v1/runs/{run_id}/terminate"),
            json!({"reason": "stuck"}),
        )
        .await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["task_id"], id.as_str());
    let (st, _) = s
        .post(&format!("/api/v1/runs/{run_id}/terminate"), json!({}))
        .await;
    assert_eq!(st, 409, "run already ended");
    let (_, t) = s.get(&format!("/api/v1/tasks/{id}")).await;
    assert_eq!(t["task"]["status"], "ready");

    let run2 = claim(&*other, &id);
    assert_ne!(run2, run_id);
    let (st, v) = s
        .send(Method::POST, &format!("/api/v1/tasks/{id}/reclaim"), None)
        .await;
    assert_eq!(st, 200, "{v}");
    let (st, _) = s
        .post(
            &format!("/api/v1/tasks/{id}/reclaim"),
            json!({"reason": "again"}),
        )
        .await;
    assert_eq!(st, 409, "a ready task cannot be reclaimed");
    let (st, _) = s.post("/api/v1/tasks/t_00000000/reclaim", json!({})).await;
    assert_eq!(st, 404);

    claim(&*other, &id);
    let (st, v) = s
        .post(
            &format!("/api/v1/tasks/{id}/reassign"),
            json!({"profile": "bob", "reclaim_first": true}),
        )
        .await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["assignee"], "bob");
    let (_, t) = s.get(&format!("/api/v1/tasks/{id}")).await;
    assert_eq!(t["task"]["status"], "ready");
    assert_eq!(t["task"]["assignee"], "bob");
    s.stop().await;
}

struct CountingPass(AtomicUsize);

impl DispatchPass for CountingPass {
    fn run_pass(&self, req: &PassRequest<'_>) -> anyhow::Result<Value> {
        self.0.fetch_add(1, Ordering::SeqCst);
        Ok(
            json!({"spawned": [], "promoted": 0, "dry_run": req.dry_run, "max": req.max_spawn,
            "ready": req.store.stats()?.by_status.get("ready").copied().unwrap_or(0)}),
        )
    }
}

#[tokio::test]
async fn dispatch_nudge_runs_the_attached_pass_or_answers_501() {
    let s = TestServer::start().await;
    let (st, v) = s.send(Method::POST, "/api/v1/dispatch", None).await;
    assert_eq!(st, 501, "{v}");
    err_detail(&v);
    s.stop().await;

    let pass = Arc::new(CountingPass(AtomicUsize::new(0)));
    let p2 = pass.clone();
    let s = TestServer::start_with(move |o| o.dispatch = Some(p2)).await;
    s.create(json!({"title": "r"})).await;
    let (st, v) = s
        .send(Method::POST, "/api/v1/dispatch?dry_run=true", None)
        .await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["dry_run"], true);
    assert_eq!(v["max"], 8);
    assert_eq!(v["ready"], 1);
    assert_eq!(pass.0.load(Ordering::SeqCst), 1);
    let (st, _) = s.send(Method::POST, "/api/v1/dispatch?max=abc", None).await;
    assert_eq!(st, 400);
    s.stop().await;
}

#[tokio::test]
async fn boards_crud_and_switch() {
    let s = TestServer::start().await;
    let (st, v) = s
        .post(
            "/api/v1/boards",
            json!({"slug": "Proj-A", "name": "Project A"}),
        )
        .await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["board"]["slug"], "proj-a");
    assert_eq!(v["board"]["default_workspace_kind"], "scratch");
    let (st, _) = s.post("/api/v1/boards", json!({"slug": "bad slug!"})).await;
    assert_eq!(st, 400);
    let (st, _) = s
        .post(
            "/api/v1/boards",
            json!({"slug": "rel", "default_workdir": "relative/dir"}),
        )
        .await;
    assert_eq!(st, 400);

    let id = s.create(json!({"title": "on a"})).await;
    let (st, v) = s
        .post("/api/v1/tasks?board=proj-a", json!({"title": "on proj-a"}))
        .await;
    assert_eq!(st, 200, "{v}");
    let (_, v) = s.get("/api/v1/board?board=proj-a").await;
    let ready = &v["columns"][3]["tasks"];
    assert_eq!(ready.as_array().unwrap().len(), 1);
    assert_ne!(ready[0]["id"], id.as_str());

    let (st, v) = s.get("/api/v1/boards").await;
    assert_eq!(st, 200, "{v}");
    let boards = v["boards"].as_array().unwrap();
    assert_eq!(boards[0]["slug"], "default");
    assert_eq!(boards[0]["is_current"], true);
    assert_eq!(boards[1]["counts"]["ready"], 1);
    assert_eq!(v["current"], "default");

    let wd = s.dir.path().to_string_lossy().to_string();
    let (st, v) = s
        .patch(
            "/api/v1/boards/proj-a",
            json!({"name": "Renamed", "default_workdir": wd}),
        )
        .await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["board"]["name"], "Renamed");
    assert_eq!(v["board"]["default_workspace_kind"], "dir");
    let (st, _) = s.patch("/api/v1/boards/ghost", json!({"name": "x"})).await;
    assert_eq!(st, 404);

    let (st, v) = s
        .send(Method::POST, "/api/v1/boards/proj-a/switch", None)
        .await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["current"], "proj-a");
    let (_, v) = s.get("/api/v1/board").await;
    assert_eq!(
        v["columns"][3]["tasks"].as_array().unwrap().len(),
        1,
        "current board is proj-a now"
    );
    let (st, _) = s
        .send(Method::POST, "/api/v1/boards/ghost/switch", None)
        .await;
    assert_eq!(st, 404);

    let (st, _) = s.delete("/api/v1/boards/default").await;
    assert_eq!(st, 400);
    let (st, v) = s.delete("/api/v1/boards/proj-a").await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["result"]["action"], "archived");
    assert_eq!(v["current"], "default");
    let (st, _) = s.delete("/api/v1/boards/proj-a").await;
    assert_eq!(st, 404);
    s.stop().await;
}

#[tokio::test]
async fn reference_prefix_openapi_metrics_health_and_json_404() {
    let s = TestServer::start().await;
    s.create(json!({"title": "x"})).await;
    let (st, v) = s.get("/api/plugins/kanban/board").await;
    assert_eq!(st, 200, "the reference dashboard's prefix works too: {v}");

    let (st, v) = s.get("/api/v1/openapi.json").await;
    assert_eq!(st, 200);
    assert!(v["openapi"].as_str().unwrap().starts_with("3."));
    for p in [
        "/api/v1/board",
        "/api/v1/tasks/{task_id}",
        "/api/v1/events",
        "/api/v1/boards/{slug}/switch",
    ] {
        assert!(v["paths"].get(p).is_some(), "openapi lacks {p}");
    }
    assert!(v["components"]["schemas"].get("ErrorBody").is_some());

    let r = s.client.get(s.url("/metrics")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let text = r.text().await.unwrap();
    // Every series carries this gateway's host first (a constant label).
    let host = format!("{{host=\"{}\",", kanban_server::metrics::this_host());
    assert!(
        text.contains(&format!(
            "kanban_tasks{host}board=\"default\",status=\"ready\"}} 1"
        )),
        "{text}"
    );
    let samples: Vec<&str> = text
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    assert!(!samples.is_empty());
    for s in samples {
        assert!(s.contains(&host), "no {host} in {s}");
    }

    let (st, v) = s.get("/healthz").await;
    assert_eq!(st, 200);
    assert_eq!(v["status"], "ok");
    let (st, v) = s.get("/api/v1/nope").await;
    assert_eq!(st, 404);
    err_detail(&v);
    let (st, v) = s.send(Method::PUT, "/api/v1/board", None).await;
    assert_eq!(st, 405);
    err_detail(&v);
    let _ = s.other_store().latest_event_id();
    s.stop().await;
}
