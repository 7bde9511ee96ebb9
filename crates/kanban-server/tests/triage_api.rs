//! Triage by the auxiliary model over REST, black-box, against a fake
//! chat-completions server on loopback: Specify and Decompose on a triage
//! card, the profile roster and its descriptions, the orchestration
//! settings. Bad input is a 4xx and changes nothing; a bad model answer is
//! 200 `{ok: false, reason}` and changes nothing.

mod common;

use common::*;
use kanban_testkit::fake_model::{FakeModel, Reply};
use reqwest::Method;
use serde_json::json;

const PROFILES: &str = "kanban:\n  profiles:\n    lead:\n      command: [/bin/true]\n      description: Plans\n    coder:\n      command: [/bin/true]\n      description: Writes Rust\n";

fn write_config(s: &TestServer, yaml: &str) {
    std::fs::write(s.dir.path().join("config.yaml"), yaml).unwrap();
}

async fn triage_card(s: &TestServer, title: &str) -> String {
    s.create(json!({"title": title, "triage": true})).await
}

/// Everything a refusal must leave alone: the board's event cursor and task count.
fn board_state(s: &TestServer) -> (i64, usize) {
    let store = s.other_store();
    let n = store
        .list_tasks(&kanban_store::TaskQuery {
            include_archived: true,
            ..Default::default()
        })
        .unwrap()
        .len();
    (store.latest_event_id().unwrap(), n)
}

#[tokio::test]
async fn specify_and_decompose_a_triage_card() {
    let model = FakeModel::answering(r#"{"title": "Sharp title", "body": "**Goal** x"}"#);
    let s = TestServer::start().await;
    write_config(&s, &format!("{}{PROFILES}", model.config_yaml("tiny")));
    let id = triage_card(&s, "rough").await;
    let (st, v) = s
        .post(
            &format!("/api/v1/tasks/{id}/specify"),
            json!({"author": "ann"}),
        )
        .await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(
        (&v["ok"], &v["new_title"]),
        (&json!(true), &json!("Sharp title"))
    );
    let (_, t) = s.get(&format!("/api/v1/tasks/{id}")).await;
    assert_eq!(t["task"]["title"], "Sharp title");
    // Again: not in triage any more → 409, nothing changed.
    let before = board_state(&s);
    let (st, _) = s
        .post(&format!("/api/v1/tasks/{id}/specify"), json!({}))
        .await;
    assert_eq!(st, 409);
    assert_eq!(board_state(&s), before);

    model.set_replies(vec![Reply::Content(
        json!({"fanout": true, "tasks": [
            {"title": "one", "assignee": "coder"},
            {"title": "two", "assignee": null, "parents": [0]}]})
        .to_string(),
    )]);
    let root = triage_card(&s, "big").await;
    // The body is optional.
    let (st, v) = s
        .send(
            Method::POST,
            &format!("/api/v1/tasks/{root}/decompose"),
            None,
        )
        .await;
    assert_eq!(st, 200, "{v}");
    assert_eq!((&v["ok"], &v["fanout"]), (&json!(true), &json!(true)));
    assert_eq!(v["child_ids"].as_array().unwrap().len(), 2);
    let (_, t) = s.get(&format!("/api/v1/tasks/{root}")).await;
    assert_eq!(t["task"]["status"], "todo");
}

#[tokio::test]
async fn bad_requests_and_bad_answers_change_nothing() {
    let model =
        FakeModel::answering(r#"{"fanout": true, "tasks": [{"title": "a", "parents": [0]}]}"#);
    let s = TestServer::start().await;
    write_config(&s, &format!("{}{PROFILES}", model.config_yaml("tiny")));
    let id = triage_card(&s, "rough").await;
    let before = board_state(&s);
    let (st, v) = s
        .post(&format!("/api/v1/tasks/{id}/decompose"), json!({}))
        .await;
    assert_eq!((st, &v["ok"]), (200, &json!(false)), "{v}");
    assert!(v["reason"].as_str().unwrap().contains("itself"), "{v}");
    model.set_replies(vec![Reply::Content("{\"title\": 7}".into())]);
    let (st, v) = s
        .post(&format!("/api/v1/tasks/{id}/specify"), json!({}))
        .await;
    assert_eq!((st, &v["ok"]), (200, &json!(false)), "{v}");
    for (path, body, code) in [
        (
            "/api/v1/tasks/t_00000000/specify".to_string(),
            json!({}),
            404,
        ),
        (
            "/api/v1/tasks/t_00000000/decompose".to_string(),
            json!({}),
            404,
        ),
        (
            format!("/api/v1/tasks/{id}/specify"),
            json!({"author": 5}),
            400,
        ),
        (
            format!("/api/v1/tasks/{id}/decompose?board=Bad%20Slug"),
            json!({}),
            400,
        ),
    ] {
        let (st, v) = s.post(&path, body).await;
        assert_eq!(st, code, "{path}: {v}");
    }
    assert_eq!(board_state(&s), before);
}

#[tokio::test]
async fn profiles_and_orchestration() {
    let model = FakeModel::answering(r#"{"description": "Reviews pull requests."}"#);
    let s = TestServer::start().await;
    write_config(&s, &format!("{}{PROFILES}", model.config_yaml("tiny")));
    std::fs::create_dir_all(s.dir.path().join("profiles/reviewer")).unwrap();
    let (st, v) = s.get("/api/v1/profiles").await;
    assert_eq!(st, 200, "{v}");
    let names: Vec<&str> = v["profiles"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert!(
        names.contains(&"coder") && names.contains(&"reviewer"),
        "{v}"
    );

    let (st, v) = s
        .patch(
            "/api/v1/profiles/reviewer",
            json!({"description": "Reads diffs"}),
        )
        .await;
    assert_eq!((st, &v["description"]), (200, &json!("Reads diffs")), "{v}");
    for (path, body, code) in [
        ("/api/v1/profiles/nobody", json!({"description": "x"}), 404),
        ("/api/v1/profiles/coder", json!({"description": "x"}), 400),
        (
            "/api/v1/profiles/reviewer",
            json!({"description": "x".repeat(700)}),
            400,
        ),
        ("/api/v1/profiles/reviewer", json!({"desc": "x"}), 400),
    ] {
        let (st, v) = s.patch(path, body).await;
        assert_eq!(st, code, "{path}: {v}");
    }
    let (st, v) = s
        .post("/api/v1/profiles/reviewer/describe-auto", json!({}))
        .await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["profile"]["description"], "Reviews pull requests.");
    assert_eq!(v["profile"]["description_auto"], true);
    let (st, _) = s
        .post("/api/v1/profiles/nobody/describe-auto", json!({}))
        .await;
    assert_eq!(st, 404);

    let (st, v) = s.get("/api/v1/orchestration").await;
    assert_eq!((st, &v["auto_decompose"]), (200, &json!(true)), "{v}");
    let (st, v) = s
        .send(
            Method::PUT,
            "/api/v1/orchestration",
            Some(json!({"orchestrator_profile": "lead", "auto_decompose": false})),
        )
        .await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(
        (&v["orchestrator_profile"], &v["auto_decompose"]),
        (&json!("lead"), &json!(false))
    );
    let text = std::fs::read_to_string(s.dir.path().join("config.yaml")).unwrap();
    assert!(
        text.contains("auxiliary") && text.contains("coder"),
        "{text}"
    );
    let (st, v) = s
        .send(
            Method::PUT,
            "/api/v1/orchestration",
            Some(json!({"default_assignee": "ghost"})),
        )
        .await;
    assert_eq!(st, 400, "{v}");
    let (st, _) = s
        .send(
            Method::PUT,
            "/api/v1/orchestration",
            Some(json!({"auto_decompose": "maybe"})),
        )
        .await;
    assert_eq!(st, 400);
    assert_eq!(
        std::fs::read_to_string(s.dir.path().join("config.yaml")).unwrap(),
        text
    );
}
