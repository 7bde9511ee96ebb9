//! The review flow over REST, black-box: request-review, request-changes,
//! reopen-review, and `PATCH status=done` refused from review. Every bad
//! input is a 4xx with an `{error, detail}` body and changes nothing.

mod common;

use common::*;
use kanban_core::Status;
use kanban_store::dispatch_ops::DispatchStore;
use reqwest::Method;
use serde_json::{Value, json};

/// Status, assignee, latest event id: what a refusal must leave alone.
fn state(store: &dyn DispatchStore, id: &str) -> (Status, Option<String>, i64, usize) {
    let t = store.get_task(id).unwrap().unwrap();
    (
        t.status,
        t.assignee,
        store.latest_event_id().unwrap(),
        store.runs(id).unwrap().len(),
    )
}

fn last_run(store: &dyn DispatchStore, id: &str) -> kanban_core::Run {
    store.runs(id).unwrap().pop().expect("a run")
}

fn review_claim(store: &dyn DispatchStore, id: &str) -> i64 {
    let req = kanban_store::ClaimRequest {
        task_id: id.into(),
        claim_lock: "reviewer-host:1".into(),
        ttl_seconds: 900,
        review: true,
        ceilings: Default::default(),
    };
    match store.claim_task(&req).unwrap() {
        kanban_store::ClaimOutcome::Claimed { run_id, .. } => run_id,
        other => panic!("review claim failed: {other:?}"),
    }
}

/// Post `body` and expect `code` with a detail containing `needle`, and
/// the task exactly as it was.
async fn refused(
    s: &TestServer,
    id: &str,
    path: &str,
    body: Option<Value>,
    code: u16,
    needle: &str,
) {
    let store = s.other_store();
    let before = state(&*store, id);
    let (st, v) = s.send(Method::POST, path, body.clone()).await;
    assert_eq!(st, code, "POST {path} {body:?}: {v}");
    let detail = err_detail(&v);
    assert!(
        detail.to_lowercase().contains(&needle.to_lowercase()),
        "POST {path} {body:?}: detail {detail:?} lacks {needle:?}"
    );
    assert_eq!(
        state(&*store, id),
        before,
        "POST {path} {body:?} changed the task"
    );
}

#[tokio::test]
async fn request_review_then_reopen_with_every_refusal_changing_nothing() {
    let s = TestServer::start().await;
    let store = s.other_store();
    let id = s
        .create(json!({"title": "feature", "assignee": "coder"}))
        .await;
    let rr = format!("/api/v1/tasks/{id}/request-review");
    // Bad input: 400, nothing changed.
    refused(&s, &id, &rr, Some(json!({})), 400, "summary").await;
    refused(&s, &id, &rr, Some(json!({"summary": "  "})), 400, "summary").await;
    for (body, needle) in [
        (json!({"summary": "x", "metadata": [1]}), "object"),
        (json!({"summary": "x", "reviewer": " "}), "reviewer"),
        (json!({"summary": 5}), "summary"),
    ] {
        refused(&s, &id, &rr, Some(body), 400, needle).await;
    }
    refused(
        &s,
        &id,
        "/api/v1/tasks/t_00000000/request-review",
        Some(json!({"summary": "x"})),
        404,
        "not found",
    )
    .await;
    refused(
        &s,
        &id,
        &format!("{rr}?board=Bad%20Slug"),
        Some(json!({"summary": "x"})),
        400,
        "",
    )
    .await;

    let (st, v) = s
        .post(
            &rr,
            json!({"summary": "implemented it\nsee the diff", "reviewer": "rev",
                   "metadata": {"pr": 12}}),
        )
        .await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["ok"], true);
    assert_eq!(v["status"], "review");
    assert_eq!(v["assignee"], "rev");
    let run = last_run(&*store, &id);
    assert_eq!(run.outcome.as_deref(), Some("review_requested"));
    assert_eq!(v["run_id"], run.id);
    assert_eq!(run.metadata, Some(json!({"pr": 12})));

    // In review: a second request, request-changes without a review
    // attempt, and completing through PATCH are refused with a 409.
    refused(
        &s,
        &id,
        &rr,
        Some(json!({"summary": "again"})),
        409,
        "review",
    )
    .await;
    let rc = format!("/api/v1/tasks/{id}/request-changes");
    refused(&s, &id, &rc, Some(json!({"reason": "  "})), 400, "reason").await;
    refused(
        &s,
        &id,
        &rc,
        Some(json!({"reason": "tests"})),
        409,
        "review",
    )
    .await;
    let before = state(&*store, &id);
    let (st, v) = s
        .patch(&format!("/api/v1/tasks/{id}"), json!({"status": "done"}))
        .await;
    assert_eq!(st, 409, "done from review: {v}");
    assert!(err_detail(&v).contains("review"), "{v}");
    assert_eq!(state(&*store, &id), before);

    // Reopen: bad body 400, then back to the implementer with the reason.
    let ro = format!("/api/v1/tasks/{id}/reopen-review");
    refused(&s, &id, &ro, Some(json!({"reason": 3})), 400, "json").await;
    let (st, v) = s.post(&ro, json!({"reason": "add the tests"})).await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(
        (v["status"].as_str(), v["assignee"].as_str()),
        (Some("ready"), Some("coder"))
    );
    let run = last_run(&*store, &id);
    assert_eq!(run.outcome.as_deref(), Some("changes_requested"));
    assert_eq!(run.summary.as_deref(), Some("add the tests"));
    // Not in review any more.
    refused(&s, &id, &ro, None, 409, "review").await;
    refused(
        &s,
        &id,
        "/api/v1/tasks/t_00000000/reopen-review",
        None,
        404,
        "not found",
    )
    .await;
    s.stop().await;
}

#[tokio::test]
async fn a_review_attempt_gets_changes_or_completes() {
    let s = TestServer::start().await;
    let store = s.other_store();
    let id = s.create(json!({"title": "fix", "assignee": "coder"})).await;
    // A running implementation attempt is no review: request-changes 409.
    claim(&*store, &id);
    let rc = format!("/api/v1/tasks/{id}/request-changes");
    refused(
        &s,
        &id,
        &rc,
        Some(json!({"reason": "x"})),
        409,
        "not under review",
    )
    .await;
    let (st, v) = s
        .post(
            &format!("/api/v1/tasks/{id}/request-review"),
            json!({"summary": "done", "reviewer": "rev"}),
        )
        .await;
    assert_eq!(st, 200, "{v}");
    // The dispatcher's review claim, then the verdict.
    let review_run = review_claim(&*store, &id);
    refused(
        &s,
        &id,
        &format!("/api/v1/tasks/{id}/reopen-review"),
        None,
        409,
        "",
    )
    .await;
    let (st, v) = s
        .post(&rc, json!({"reason": "handle the empty case"}))
        .await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["status"], "ready");
    assert_eq!(v["assignee"], "coder", "back to the implementer");
    assert_eq!(v["run_id"], review_run);
    let run = last_run(&*store, &id);
    assert_eq!(run.outcome.as_deref(), Some("changes_requested"));
    assert_eq!(run.summary.as_deref(), Some("handle the empty case"));
    assert!(run.ended_at.is_some());

    // Second round: the reviewer approves by completing its attempt
    // (`PATCH status=done` on the running review attempt).
    claim(&*store, &id);
    let (st, _) = s
        .post(
            &format!("/api/v1/tasks/{id}/request-review"),
            json!({"summary": "fixed"}),
        )
        .await;
    assert_eq!(st, 200);
    assert_eq!(
        store.get_task(&id).unwrap().unwrap().assignee.as_deref(),
        Some("coder")
    );
    review_claim(&*store, &id);
    let (st, v) = s
        .patch(
            &format!("/api/v1/tasks/{id}"),
            json!({"status": "done", "summary": "approved"}),
        )
        .await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(store.get_task(&id).unwrap().unwrap().status, Status::Done);
    s.stop().await;
}

#[tokio::test]
async fn approve_finishes_a_card_waiting_in_review() {
    let s = TestServer::start().await;
    let store = s.other_store();
    let id = s
        .create(json!({"title": "docs", "assignee": "coder"}))
        .await;
    let child = s
        .create(json!({"title": "after docs", "assignee": "coder", "parents": [id]}))
        .await;
    let ap = format!("/api/v1/tasks/{id}/approve");
    // Not in review yet: 409; bad body: 400; unknown: 404.
    refused(&s, &id, &ap, None, 409, "approve applies only to review").await;
    let (st, _) = s
        .post(
            &format!("/api/v1/tasks/{id}/request-review"),
            json!({"summary": "written"}),
        )
        .await;
    assert_eq!(st, 200);
    refused(&s, &id, &ap, Some(json!({"summary": ["x"]})), 400, "json").await;
    refused(
        &s,
        &id,
        "/api/v1/tasks/t_00000000/approve",
        None,
        404,
        "not found",
    )
    .await;
    let (st, v) = s.post(&ap, json!({"summary": "read it, fine"})).await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["status"], "done");
    let run = last_run(&*store, &id);
    assert_eq!(v["run_id"], run.id);
    assert_eq!(
        (run.outcome.as_deref(), run.summary.as_deref()),
        (Some("completed"), Some("read it, fine"))
    );
    // Its child is released as by any completion; approving twice is refused.
    assert_eq!(
        store.get_task(&child).unwrap().unwrap().status,
        Status::Ready
    );
    refused(&s, &id, &ap, None, 409, "task is done").await;
    s.stop().await;
}

#[tokio::test]
async fn review_routes_are_in_the_openapi_document() {
    let s = TestServer::start().await;
    let (st, doc) = s.get("/api/v1/openapi.json").await;
    assert_eq!(st, 200);
    for verb in [
        "request-review",
        "request-changes",
        "reopen-review",
        "approve",
    ] {
        let op = &doc["paths"][format!("/api/v1/tasks/{{task_id}}/{verb}")]["post"];
        assert!(op.is_object(), "{verb} missing");
        for code in ["200", "400", "404", "409"] {
            assert!(op["responses"].get(code).is_some(), "{verb} {code}");
        }
    }
    let body = &doc["components"]["schemas"]["RequestReviewBody"];
    assert_eq!(body["properties"]["summary"]["minLength"], 1, "{body}");
    assert_eq!(body["required"], json!(["summary"]));
    s.stop().await;
}
