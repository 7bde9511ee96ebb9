//! `GET /api/v1/activity`: the Activity view's charts over a board whose
//! history was written at known times (a manual clock shared by the
//! server and the seeding store), the cache, and the error answers.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use kanban_hermes::layout::Root;
use kanban_store::backend::{OpenRequest, open_board};
use kanban_store::clock::ManualClock;
use kanban_store::dispatch_ops::DispatchStore;
use kanban_store::{BlockRequest, CompleteRequest, NewTask};
use serde_json::Value;

/// Start of the seeded hour: a multiple of every bucket size.
const T0: i64 = 1_700_006_400;
/// The clock when the charts are read: 30 s into the hour's last minute.
const READ_AT: i64 = T0 + 59 * 60 + 30;

fn task(title: &str, assignee: &str) -> NewTask {
    NewTask {
        assignee: Some(assignee.into()),
        ..new_task(title)
    }
}

/// Three tasks: `a` (coder) claimed in minute 1 and done in minute 3;
/// `b` (writer) claimed in minute 2 and still running; `c` (coder)
/// claimed in minute 3 and blocked in minute 4.
fn seed(store: &dyn DispatchStore, clock: &ManualClock) {
    clock.set(T0 + 10);
    let a = store.create_task(&task("a", "coder")).unwrap().task.id;
    let b = store.create_task(&task("b", "writer")).unwrap().task.id;
    clock.set(T0 + 20);
    let c = store.create_task(&task("c", "coder")).unwrap().task.id;
    clock.set(T0 + 70);
    claim(store, &a);
    clock.set(T0 + 130);
    claim(store, &b);
    clock.set(T0 + 190);
    let done = CompleteRequest {
        task_id: a,
        ..Default::default()
    };
    store.complete_task(&done).unwrap();
    clock.set(T0 + 200);
    claim(store, &c);
    clock.set(T0 + 260);
    let block = BlockRequest {
        task_id: c,
        reason: Some("needs a key".into()),
        kind: None,
        expected_run_id: None,
    };
    store.block_task(&block).unwrap();
    clock.set(READ_AT);
}

async fn start() -> (TestServer, Arc<ManualClock>, Arc<dyn DispatchStore>) {
    let clock = Arc::new(ManualClock::new(T0));
    let server_clock = clock.clone();
    let s = TestServer::start_with(move |o| o.clock = server_clock).await;
    let location = Root::at(s.dir.path()).board_paths("default").location();
    let req = OpenRequest::create().with_clock(clock.clone());
    let store = open_board(&location, &req).unwrap().dispatch();
    (s, clock, store)
}

/// GET with the cache header.
async fn get_activity(s: &TestServer, query: &str) -> (u16, Value, String) {
    let r = s
        .client
        .get(s.url(&format!("/api/v1/activity{query}")))
        .send()
        .await
        .unwrap();
    let cache = r
        .headers()
        .get("cache-status")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    let (status, v) = decode(r).await;
    (status, v, cache)
}

fn series<'a>(list: &'a Value, key: &str, name: &str) -> &'a Value {
    list.as_array()
        .unwrap()
        .iter()
        .find(|s| s[key] == name)
        .unwrap_or_else(|| panic!("no series {name} in {list}"))
}

fn ints(v: &Value) -> Vec<i64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_i64().unwrap())
        .collect()
}

/// 60 buckets, zero but for `values`.
fn sparse(values: &[(usize, i64)]) -> Vec<i64> {
    let mut out = vec![0; 60];
    for (i, v) in values {
        out[*i] = *v;
    }
    out
}

/// 60 buckets holding a level that changes at the given buckets.
fn steps(changes: &[(usize, i64)]) -> Vec<i64> {
    let mut out = vec![0; 60];
    for (i, v) in changes {
        out[*i..].fill(*v);
    }
    out
}

#[tokio::test]
async fn each_chart_counts_the_seeded_history() {
    let (s, clock, store) = start().await;
    seed(store.as_ref(), &clock);
    let (status, v, _) = get_activity(&s, "?range=1h").await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["board"], "default");
    assert_eq!(v["range"], "1h");
    assert_eq!(v["bucket_seconds"], 60);
    assert_eq!(
        (v["start"].as_i64(), v["end"].as_i64()),
        (Some(T0), Some(T0 + 3600))
    );
    assert_eq!(v["generated_at"], READ_AT);
    let times = ints(&v["times"]);
    assert_eq!((times.len(), times[0], times[59]), (60, T0, T0 + 59 * 60));

    assert_eq!(ints(&v["finished"]["values"]), sparse(&[(3, 1)]));
    assert_eq!(v["finished"]["total"], 1);

    let depth = &v["queue_depth"];
    let names: Vec<&str> = depth
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
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
            "done",
            "archived"
        ]
    );
    let level = |name: &str| ints(&series(depth, "name", name)["values"]);
    assert_eq!(level("ready"), steps(&[(0, 3), (1, 2), (2, 1), (3, 0)]));
    assert_eq!(level("running"), steps(&[(1, 1), (2, 2), (4, 1)]));
    assert_eq!(level("done"), steps(&[(3, 1)]));
    assert_eq!(level("blocked"), steps(&[(4, 1)]));
    assert_eq!(series(depth, "name", "running")["total"], 1);

    let workers = &v["running_workers"];
    let coder = series(workers, "profile", "coder");
    assert_eq!(
        ints(&coder["busy_seconds"]),
        sparse(&[(1, 50), (2, 60), (3, 50), (4, 20)])
    );
    let writer = series(workers, "profile", "writer");
    let mut busy = vec![60; 60];
    busy[..2].fill(0);
    busy[2] = 50;
    busy[59] = 30;
    assert_eq!(ints(&writer["busy_seconds"]), busy);
    assert_eq!(writer["values"][59], 1.0, "one worker for the 30 s passed");
    assert_eq!(writer["values"][30], 1.0);
    assert_eq!(coder["values"][4].as_f64(), Some(20.0 / 60.0));

    let latency = &v["pickup_latency"];
    assert_eq!(latency["claims"], 3);
    assert_eq!(
        (
            latency["p50_seconds"].as_i64(),
            latency["p90_seconds"].as_i64()
        ),
        (Some(120), Some(180))
    );
    let bins = latency["bins"].as_array().unwrap();
    let labels: Vec<&str> = bins.iter().map(|b| b["label"].as_str().unwrap()).collect();
    assert_eq!(
        labels,
        [
            "<1s", "1-5s", "5-15s", "15s-1m", "1-5m", "5-15m", "15m-1h", "1-4h", "4h+"
        ]
    );
    let counts: Vec<i64> = bins.iter().map(|b| b["count"].as_i64().unwrap()).collect();
    assert_eq!(counts, [0, 0, 0, 0, 3, 0, 0, 0, 0]);

    let failures = v["failures"].as_array().unwrap();
    assert_eq!(failures.len(), 1, "{failures:?}");
    assert_eq!(failures[0]["name"], "blocked");
    assert_eq!(ints(&failures[0]["values"]), sparse(&[(4, 1)]));

    let (status, day, _) = get_activity(&s, "?range=24h").await;
    assert_eq!(status, 200, "{day}");
    assert_eq!(
        (day["bucket_seconds"].as_i64(), ints(&day["times"]).len()),
        (Some(900), 96)
    );
    assert_eq!(day["finished"]["total"], 1);
    let (status, week, _) = get_activity(&s, "?range=7d").await;
    assert_eq!(status, 200, "{week}");
    assert_eq!(
        (week["bucket_seconds"].as_i64(), ints(&week["times"]).len()),
        (Some(3600), 168)
    );
    assert_eq!(week["pickup_latency"]["claims"], 3);
    s.stop().await;
}

/// Until an answer comes from the cache: the hub's change watcher may
/// still be catching up with the seeding commits.
async fn until_cached(s: &TestServer) -> Value {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (status, v, cache) = get_activity(s, "").await;
        assert_eq!(status, 200, "{v}");
        if cache == "kanban; hit" {
            return v;
        }
        assert!(Instant::now() < deadline, "never served from the cache");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn answers_are_cached_until_the_board_changes_or_the_bucket_ends() {
    let (s, clock, store) = start().await;
    seed(store.as_ref(), &clock);
    let (_, first, cache) = get_activity(&s, "").await;
    assert_eq!(cache, "kanban; fwd=miss; stored");
    let cached = until_cached(&s).await;
    for _ in 0..3 {
        let (_, again, cache) = get_activity(&s, "").await;
        assert_eq!(
            cache, "kanban; hit",
            "repeated loads do not aggregate again"
        );
        assert_eq!(again, cached);
    }
    assert_eq!(cached["finished"], first["finished"]);

    // A new event: aggregated again, the new task counted.
    store.create_task(&task("d", "coder")).unwrap();
    let (_, fresh, cache) = get_activity(&s, "").await;
    assert_eq!(cache, "kanban; fwd=miss; stored");
    assert_eq!(series(&fresh["queue_depth"], "name", "ready")["total"], 1);
    assert!(fresh["latest_event_id"].as_i64() > cached["latest_event_id"].as_i64());

    // The next minute: the window moves on.
    until_cached(&s).await;
    clock.set(T0 + 3600 + 1);
    let (_, moved, cache) = get_activity(&s, "").await;
    assert_eq!(cache, "kanban; fwd=miss; stored");
    assert_eq!(moved["start"], T0 + 60);
    assert_eq!(
        moved["finished"]["values"][2], 1,
        "minute 3 is now bucket 2"
    );
    s.stop().await;
}

#[tokio::test]
async fn bad_ranges_and_unknown_boards_are_json_errors() {
    let (s, _clock, _store) = start().await;
    for query in ["?range=2h", "?range=", "?range=1H", "?board=Not%20A%20Slug"] {
        let (status, v, _) = get_activity(&s, query).await;
        assert_eq!(status, 400, "{query}: {v}");
        let detail = err_detail(&v);
        assert!(!detail.is_empty(), "{query}");
    }
    let (_, v, _) = get_activity(&s, "?range=5m").await;
    assert!(err_detail(&v).contains("1h"), "names the valid ranges: {v}");
    let (status, v, _) = get_activity(&s, "?board=ghost").await;
    assert_eq!(status, 404, "{v}");
    assert!(err_detail(&v).contains("ghost"));

    // An empty board has zeroes everywhere, not an error.
    let (status, v, _) = get_activity(&s, "?board=default&range=7d").await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["finished"]["total"], 0);
    assert_eq!(v["pickup_latency"]["claims"], 0);
    assert_eq!(v["pickup_latency"]["p50_seconds"], Value::Null);
    s.stop().await;
}

#[tokio::test]
async fn the_openapi_document_declares_the_route() {
    let (s, _clock, _store) = start().await;
    let (status, doc) = s.get("/api/v1/openapi.json").await;
    assert_eq!(status, 200);
    let op = &doc["paths"]["/api/v1/activity"]["get"];
    assert!(op.is_object(), "no GET /api/v1/activity in the document");
    for code in ["200", "400", "404", "401", "403", "503"] {
        assert!(op["responses"].get(code).is_some(), "no {code}");
    }
    let params = op["parameters"].as_array().unwrap();
    let range = params.iter().find(|p| p["name"] == "range").unwrap();
    let text = range.to_string() + &doc["components"]["schemas"]["RangeParam"].to_string();
    for r in ["1h", "24h", "7d"] {
        assert!(
            text.contains(&format!("\"{r}\"")),
            "range {r} not declared: {text}"
        );
    }
    let board = params.iter().find(|p| p["name"] == "board").unwrap();
    assert!(board["schema"]["pattern"].is_string());
    assert!(doc["components"]["schemas"].get("ActivityView").is_some());
    s.stop().await;
}
