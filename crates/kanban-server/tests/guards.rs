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
