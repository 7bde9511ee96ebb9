//! The WebSocket event feed: backlog after `since`, then live events, from
//! one watcher per board, including writes by other connections.

mod common;

use std::time::Duration;

use common::*;
use futures_util::StreamExt;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn connect(url: &str) -> Ws {
    tokio_tungstenite::connect_async(url)
        .await
        .expect("websocket connect")
        .0
}

/// Read batches until `n` events arrived (or fail after 5 s).
async fn read_events(ws: &mut Ws, n: usize) -> Vec<Value> {
    let mut out = Vec::new();
    while out.len() < n {
        let msg = tokio::time::timeout(Duration::from_secs(5), ws.next())
            .await
            .unwrap_or_else(|_| panic!("timed out with {} of {n} events: {out:?}", out.len()))
            .expect("stream ended")
            .expect("ws error");
        if let Message::Text(t) = msg {
            let v: Value = serde_json::from_str(&t).unwrap();
            let events = v["events"].as_array().unwrap();
            assert_eq!(
                v["cursor"],
                events.last().unwrap()["id"],
                "cursor is the last id"
            );
            for e in events {
                for key in ["id", "task_id", "run_id", "kind", "payload", "created_at"] {
                    assert!(e.get(key).is_some(), "event without {key}: {e}");
                }
            }
            out.extend(events.iter().cloned());
        }
    }
    out
}

fn ids(events: &[Value]) -> Vec<i64> {
    events.iter().map(|e| e["id"].as_i64().unwrap()).collect()
}

#[tokio::test]
async fn since_backlog_then_live_events_for_two_clients() {
    let s = TestServer::start().await;
    let a = s.create(json!({"title": "a"})).await;
    s.create(json!({"title": "b"})).await;
    s.create(json!({"title": "c"})).await;
    let all = s.other_store().events(&Default::default()).unwrap();
    assert_eq!(all.len(), 3);

    let mut c1 = connect(&s.ws_url("/api/v1/events?since=0")).await;
    let mut c2 = connect(&s.ws_url(&format!("/api/v1/events?since={}", all[0].id))).await;
    let backlog1 = read_events(&mut c1, 3).await;
    assert_eq!(ids(&backlog1), all.iter().map(|e| e.id).collect::<Vec<_>>());
    let backlog2 = read_events(&mut c2, 2).await;
    assert_eq!(
        ids(&backlog2),
        all[1..].iter().map(|e| e.id).collect::<Vec<_>>()
    );

    // Live: one through the API, one by another connection (another process).
    s.post(
        &format!("/api/v1/tasks/{a}/comments"),
        json!({"body": "hello"}),
    )
    .await;
    s.other_store()
        .add_comment(&a, "cli", "from elsewhere")
        .unwrap();
    let live1 = read_events(&mut c1, 2).await;
    let live2 = read_events(&mut c2, 2).await;
    assert_eq!(ids(&live1), ids(&live2), "both clients see the same stream");
    assert!(live1.iter().all(|e| e["kind"] == "commented"), "{live1:?}");
    assert!(ids(&live1)[0] > all[2].id);
    s.stop().await;
}

#[tokio::test]
async fn a_client_connected_before_any_event_gets_them_live_in_order() {
    let s = TestServer::start().await;
    let mut c = connect(&s.ws_url("/api/v1/events")).await;
    let other = s.other_store();
    let mut created = Vec::new();
    for i in 0..250 {
        created.push(
            other
                .create_task(&new_task(&format!("t{i}")))
                .unwrap()
                .task
                .id,
        );
    }
    let got = read_events(&mut c, 250).await;
    let got_ids = ids(&got);
    let mut sorted = got_ids.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(got_ids, sorted, "strictly increasing, no duplicates");
    let tasks: Vec<&str> = got.iter().map(|e| e["task_id"].as_str().unwrap()).collect();
    assert_eq!(
        tasks,
        created.iter().map(String::as_str).collect::<Vec<_>>()
    );
    s.stop().await;
}

#[tokio::test]
async fn feed_errors_auth_and_shutdown() {
    let s = TestServer::start_with(|o| o.token = Some("tok".into())).await;
    let err = tokio_tungstenite::connect_async(s.ws_url("/api/v1/events"))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("401"), "{err}");
    let mut req = s
        .ws_url("/api/v1/events?board=nope")
        .into_client_request()
        .unwrap();
    req.headers_mut()
        .insert("authorization", "Bearer tok".parse().unwrap());
    let err = tokio_tungstenite::connect_async(req).await.unwrap_err();
    assert!(err.to_string().contains("404"), "{err}");
    let mut req = s.ws_url("/api/v1/events").into_client_request().unwrap();
    req.headers_mut()
        .insert("origin", "http://evil.example".parse().unwrap());
    let err = tokio_tungstenite::connect_async(s.ws_url("/api/v1/events?token=tok"))
        .await
        .map(|_| ());
    assert!(err.is_ok(), "query token accepted on the upgrade");
    req.headers_mut()
        .insert("authorization", "Bearer tok".parse().unwrap());
    let err = tokio_tungstenite::connect_async(req).await.unwrap_err();
    assert!(
        err.to_string().contains("403"),
        "cross-origin upgrade refused: {err}"
    );

    let mut c = connect(&s.ws_url("/api/v1/events?token=tok")).await;
    let started = std::time::Instant::now();
    s.stop().await;
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "stop is prompt with open feeds"
    );
    let end = tokio::time::timeout(Duration::from_secs(2), async {
        loop {
            match c.next().await {
                None | Some(Err(_)) | Some(Ok(Message::Close(_))) => return,
                Some(Ok(_)) => {}
            }
        }
    })
    .await;
    assert!(end.is_ok(), "the feed closes on shutdown");
}
