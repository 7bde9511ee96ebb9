//! `GET /api/v1/tasks/{id}/log` returns a bounded window (issue 9, item 9):
//! by default the latest 256 KiB, else `tail` or an `offset`/`limit` page,
//! each at most 2,000,000 bytes, never the whole file.

mod common;

use common::*;
use serde_json::json;

const DEFAULT_TAIL: u64 = 256 * 1024;
const LOG_BYTES: usize = 3_000_000;

/// A 3 MB log: numbered 10-byte lines, then an end marker.
fn big_log(s: &TestServer, task: &str) -> Vec<u8> {
    let mut data = Vec::with_capacity(LOG_BYTES + 16);
    let mut i = 0u64;
    while data.len() < LOG_BYTES {
        data.extend_from_slice(format!("{i:09}\n").as_bytes());
        i += 1;
    }
    data.extend_from_slice(b"END-OF-LOG\n");
    let path = s.root.board_paths("default").log_file(task);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, &data).unwrap();
    data
}

#[tokio::test]
async fn the_log_route_pages_and_tails_within_bounds() {
    let s = TestServer::start().await;
    let id = s.create(json!({"title": "chatty"})).await;
    let data = big_log(&s, &id);
    let size = data.len() as u64;

    let (st, v) = s.get(&format!("/api/v1/tasks/{id}/log")).await;
    assert_eq!(st, 200, "{v}");
    let content = v["content"].as_str().unwrap();
    assert_eq!(content.len() as u64, DEFAULT_TAIL, "default tail");
    assert!(content.ends_with("END-OF-LOG\n"));
    assert_eq!(v["truncated"], true);
    assert_eq!(v["size_bytes"], size);
    assert_eq!(v["offset"], size - DEFAULT_TAIL);
    assert_eq!(v["next_offset"], size);

    let (st, v) = s.get(&format!("/api/v1/tasks/{id}/log?tail=11")).await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["content"], "END-OF-LOG\n");

    let (st, v) = s
        .get(&format!("/api/v1/tasks/{id}/log?offset=20&limit=30"))
        .await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["content"], "000000002\n000000003\n000000004\n");
    assert_eq!(
        (v["offset"].as_u64(), v["next_offset"].as_u64()),
        (Some(20), Some(50))
    );
    let (_, v) = s.get(&format!("/api/v1/tasks/{id}/log?offset=0")).await;
    assert_eq!(v["content"].as_str().unwrap().len() as u64, DEFAULT_TAIL);
    let (_, v) = s
        .get(&format!("/api/v1/tasks/{id}/log?offset={}", size + 5))
        .await;
    assert_eq!(
        (v["content"].as_str(), v["next_offset"].as_u64()),
        (Some(""), Some(size))
    );

    for bad in [
        "tail=0",
        "tail=2000001",
        "limit=2000001",
        "limit=0",
        "tail=5&offset=1",
        "tail=5&limit=1",
    ] {
        let (st, v) = s.get(&format!("/api/v1/tasks/{id}/log?{bad}")).await;
        assert_eq!(st, 400, "{bad}: {v}");
    }
    let (st, v) = s.get(&format!("/api/v1/tasks/{id}/log?tail=2000000")).await;
    assert_eq!(st, 200);
    assert_eq!(v["content"].as_str().unwrap().len(), 2_000_000);
    s.stop().await;
}

#[tokio::test]
async fn the_openapi_document_declares_the_paging_parameters() {
    let s = TestServer::start().await;
    let (st, doc) = s.get("/api/v1/openapi.json").await;
    assert_eq!(st, 200);
    let params = doc["paths"]["/api/v1/tasks/{task_id}/log"]["get"]["parameters"]
        .as_array()
        .unwrap();
    for name in ["tail", "offset", "limit"] {
        let p = params
            .iter()
            .find(|p| p["name"] == name)
            .unwrap_or_else(|| panic!("{name} not declared: {params:?}"));
        if name != "offset" {
            assert_eq!(p["schema"]["maximum"], 2_000_000, "{name}: {p}");
        }
    }
    s.stop().await;
}
