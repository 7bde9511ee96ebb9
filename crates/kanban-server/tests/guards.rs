//! The request guards: bearer token and cross-origin write refusal.

mod common;

use common::*;
use serde_json::json;

#[tokio::test]
async fn token_guards_every_route() {
    let s = TestServer::start_with(|o| o.token = Some("s3cret".into())).await;
    for path in [
        "/api/v1/board",
        "/api/v1/openapi.json",
        "/metrics",
        "/healthz",
    ] {
        let r = s.client.get(s.url(path)).send().await.unwrap();
        assert_eq!(r.status(), 401, "{path}");
        assert_eq!(r.headers()["www-authenticate"], "Bearer");
        let (_, v) = decode(r).await;
        err_detail(&v);
        let r = s
            .client
            .get(s.url(path))
            .bearer_auth("wrong")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401, "{path}");
        let r = s
            .client
            .get(s.url(path))
            .bearer_auth("s3cret")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{path}");
    }
    // The query-string token is for WebSocket upgrades only.
    let r = s
        .client
        .get(s.url("/api/v1/board?token=s3cret"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    s.stop().await;
}

#[tokio::test]
async fn cross_origin_writes_are_refused() {
    let s = TestServer::start().await;
    let host = s.base.trim_start_matches("http://").to_string();
    let r = s
        .client
        .post(s.url("/api/v1/tasks"))
        .header("origin", "http://evil.example")
        .json(&json!({"title": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let r = s
        .client
        .post(s.url("/api/v1/tasks"))
        .header("origin", format!("http://{host}"))
        .json(&json!({"title": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = s
        .client
        .get(s.url("/api/v1/board"))
        .header("origin", "http://evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "reads are not writes");
    s.stop().await;
}

/// Issue 10 item 7: a 500 names no file of the host (the detail is
/// logged); every internal error answers the same body.
#[tokio::test]
async fn internal_errors_do_not_echo_file_paths() {
    let s = TestServer::start().await;
    let db = s.root.board_paths("side").db;
    std::fs::create_dir_all(db.parent().unwrap()).unwrap();
    std::fs::write(&db, b"this is not a SQLite database\n").unwrap();
    let root = s.dir.path().display().to_string();
    let mut bodies = Vec::new();
    for path in ["/api/v1/board?board=side", "/api/v1/tasks/t_1?board=side"] {
        let (status, v) = s.get(path).await;
        assert_eq!(status, 500, "{path}: {v}");
        assert_eq!(v["error"], "internal", "{path}: {v}");
        let text = v.to_string();
        assert!(
            !text.contains(&root) && !text.contains("kanban.db"),
            "{path}: the body names a file: {v}"
        );
        bodies.push(v);
    }
    assert_eq!(bodies[0], bodies[1], "one body for every internal error");
    s.stop().await;
}
