//! The paged board view (`GET /board?limit=&column=&cursor=&q=&assignee=`),
//! black-box over HTTP: pages, totals, cursors, filters and bad input.

mod common;

use common::*;
use serde_json::{Value, json};

fn column<'a>(v: &'a Value, name: &str) -> &'a Value {
    v["columns"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no column {name} in {v}"))
}

fn ids(col: &Value) -> Vec<String> {
    col["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_str().unwrap().to_string())
        .collect()
}

/// Every page of `name`, following `next_cursor` to the end.
async fn all_pages(s: &TestServer, name: &str, limit: usize, extra: &str) -> Vec<String> {
    let (st, v) = s.get(&format!("/api/v1/board?limit={limit}{extra}")).await;
    assert_eq!(st, 200, "{v}");
    let mut col = column(&v, name).clone();
    let mut out = ids(&col);
    while let Some(cursor) = col["next_cursor"].as_str() {
        assert_eq!(ids(&col).len(), limit, "only the last page may be short");
        let (st, v) = s
            .get(&format!(
                "/api/v1/board?limit={limit}&column={name}&cursor={cursor}{extra}"
            ))
            .await;
        assert_eq!(st, 200, "{v}");
        assert_eq!(v["columns"].as_array().unwrap().len(), 1, "{v}");
        col = column(&v, name).clone();
        out.extend(ids(&col));
    }
    out
}

#[tokio::test]
async fn pages_follow_the_full_views_order_with_totals_and_cursors() {
    let s = TestServer::start().await;
    for i in 0..7 {
        s.create(json!({"title": format!("ready {i}"), "assignee": "alice", "priority": i % 3}))
            .await;
    }
    let mut done = Vec::new();
    for i in 0..5 {
        let id = s
            .create(json!({"title": format!("done {i}"), "tenant": "acme"}))
            .await;
        let (st, v) = s
            .patch(&format!("/api/v1/tasks/{id}"), json!({"status": "done"}))
            .await;
        assert_eq!(st, 200, "{v}");
        done.push(id);
    }

    let (st, full) = s.get("/api/v1/board").await;
    assert_eq!(st, 200);
    // The whole-board answer keeps its shape: no page fields.
    assert!(column(&full, "ready").get("total").is_none(), "{full}");

    let (st, v) = s.get("/api/v1/board?limit=2").await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["limit"], 2);
    let ready = column(&v, "ready");
    assert_eq!(ready["total"], 7);
    assert_eq!(ids(ready).len(), 2);
    assert!(ready["next_cursor"].is_string());
    let empty = column(&v, "todo");
    assert_eq!(empty["total"], 0);
    assert!(empty["next_cursor"].is_null());
    assert_eq!(v["tenants"], json!(["acme"]));
    assert!(v["latest_event_id"].as_i64().unwrap() > 0);
    // Cards carry the same fields as the whole board's.
    assert!(ids(ready).len() == 2 && column(&v, "ready")["tasks"][0]["age"].is_object());

    // Following the cursors gives every card once, in one page's order.
    let (_, v) = s.get("/api/v1/board?limit=500").await;
    for name in ["ready", "done"] {
        let paged = all_pages(&s, name, 2, "").await;
        assert_eq!(paged, ids(column(&v, name)), "{name}");
        let (mut a, mut b) = (paged.clone(), ids(column(&full, name)));
        a.sort();
        b.sort();
        assert_eq!(a, b, "{name}: the same cards as the whole board");
    }
    // Priority first in ready; Done newest completion first (ties by id).
    let prios: Vec<i64> = column(&v, "ready")["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["priority"].as_i64().unwrap())
        .collect();
    assert!(prios.windows(2).all(|w| w[0] >= w[1]), "{prios:?}");
    let completed: Vec<i64> = column(&v, "done")["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["completed_at"].as_i64().unwrap())
        .collect();
    assert!(completed.windows(2).all(|w| w[0] >= w[1]), "{completed:?}");

    // limit=0: totals only.
    let (st, v) = s.get("/api/v1/board?limit=0").await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(column(&v, "done")["total"], 5);
    assert!(ids(column(&v, "done")).is_empty());
    s.stop().await;
}

#[tokio::test]
async fn search_and_assignee_filter_on_the_server() {
    let s = TestServer::start().await;
    for i in 0..6 {
        let assignee = if i % 2 == 0 {
            json!("bob")
        } else {
            json!(null)
        };
        s.create(
            json!({"title": format!("Task {i}: fix module"), "assignee": assignee,
            "body": if i == 4 { "needle in the body" } else { "hay" }}),
        )
        .await;
    }
    let (st, v) = s.get("/api/v1/board?limit=10&q=TASK%203:").await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(
        column(&v, "todo")["total"].as_u64().unwrap()
            + column(&v, "ready")["total"].as_u64().unwrap(),
        1
    );
    let (_, v) = s.get("/api/v1/board?limit=10&q=needle").await;
    let hits: Vec<String> = v["columns"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(ids)
        .collect();
    assert_eq!(hits.len(), 1, "{v}");
    let (_, v) = s.get("/api/v1/board?limit=10&assignee=bob").await;
    let all: usize = v["columns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["total"].as_u64().unwrap() as usize)
        .sum();
    assert_eq!(all, 3);
    let (_, v) = s.get("/api/v1/board?limit=10&assignee=(unassigned)").await;
    let all: usize = v["columns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["total"].as_u64().unwrap() as usize)
        .sum();
    assert_eq!(all, 3);
    // A cursor keeps working under the same filter.
    let paged = all_pages(&s, "ready", 1, "&assignee=bob").await;
    let todo = all_pages(&s, "todo", 1, "&assignee=bob").await;
    assert_eq!(paged.len() + todo.len(), 3);
    s.stop().await;
}

#[tokio::test]
async fn bad_page_parameters_are_400_json_errors() {
    let s = TestServer::start().await;
    s.create(json!({"title": "one"})).await;
    for bad in [
        "limit=-1",
        "limit=abc",
        "limit=501",
        "limit=5&cursor=0:0:t_x",
        "limit=5&column=ready&cursor=garbage",
        "limit=5&column=ready&cursor=1:x:t_1",
        "limit=5&column=ready&cursor=1:2:",
        "limit=5&column=nope",
        "limit=5&column=archived",
    ] {
        let (st, v) = s.get(&format!("/api/v1/board?{bad}")).await;
        assert_eq!(st, 400, "{bad}: {v}");
        assert!(!err_detail(&v).is_empty(), "{bad}: {v}");
    }
    // Archived is a column once asked for.
    let (st, v) = s
        .get("/api/v1/board?limit=5&column=archived&include_archived=true")
        .await;
    assert_eq!(st, 200, "{v}");
    s.stop().await;
}
