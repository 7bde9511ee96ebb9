//! The gateway runtime: one per root, pidfile, token rule, dispatcher loop
//! woken by changes from other processes, prompt stop.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::new_task;
use kanban_hermes::config::KanbanConfig;
use kanban_hermes::layout::Root;
use kanban_server::lock::{dispatcher_lock_held, pidfile_path, read_record};
use kanban_server::{DispatchPass, Gateway, GatewayConfig, GatewayError, PassRequest};
use serde_json::{Value, json};

fn config(root: &Root) -> GatewayConfig {
    let mut cfg =
        GatewayConfig::resolve(root.clone(), None, Some(0), None, &KanbanConfig::default());
    cfg.poll_interval = Duration::from_millis(10);
    cfg
}

/// Counts passes and the ready tasks it saw.
#[derive(Default)]
struct RecordingPass {
    passes: AtomicUsize,
    saw_ready: AtomicUsize,
}

impl DispatchPass for RecordingPass {
    fn run_pass(&self, req: &PassRequest<'_>) -> anyhow::Result<Value> {
        self.passes.fetch_add(1, Ordering::SeqCst);
        let ready = req
            .store
            .stats()?
            .by_status
            .get("ready")
            .copied()
            .unwrap_or(0);
        self.saw_ready.fetch_max(ready as usize, Ordering::SeqCst);
        Ok(json!({"spawned": []}))
    }
}

#[tokio::test]
async fn one_gateway_per_root_with_pidfile_and_clean_stop() {
    let dir = tempfile::tempdir().unwrap();
    let root = Root::at(dir.path());
    let gw = Gateway::start(config(&root)).await.unwrap();
    assert!(gw.url().starts_with("http://127.0.0.1:"));
    assert_eq!(
        std::fs::read_to_string(pidfile_path(&root)).unwrap().trim(),
        std::process::id().to_string()
    );
    assert_eq!(read_record(&root).unwrap().url, gw.url());
    assert!(dispatcher_lock_held(&root));

    match Gateway::start(config(&root)).await {
        Err(GatewayError::Lock(e)) => {
            let msg = e.to_string();
            assert!(
                msg.contains(&format!("pid {}", std::process::id())),
                "{msg}"
            );
        }
        Err(e) => panic!("wrong error: {e}"),
        Ok(_) => panic!("a second gateway started"),
    }

    let r = reqwest::get(format!("{}/healthz", gw.url())).await.unwrap();
    assert_eq!(r.status(), 200);
    let t = Instant::now();
    gw.stop().await;
    assert!(t.elapsed() < Duration::from_secs(2));
    assert!(!pidfile_path(&root).exists());
    assert!(!dispatcher_lock_held(&root));
    // The lock is free again: a new gateway starts.
    Gateway::start(config(&root)).await.unwrap().stop().await;
}

#[tokio::test]
async fn non_loopback_bind_requires_a_token() {
    let dir = tempfile::tempdir().unwrap();
    let root = Root::at(dir.path());
    let mut cfg = config(&root);
    cfg.host = "0.0.0.0".into();
    assert!(matches!(
        Gateway::start(cfg.clone()).await,
        Err(GatewayError::TokenRequired { .. })
    ));
    assert!(
        !dispatcher_lock_held(&root),
        "a refused start takes no lock"
    );
    cfg.host = "not a host".into();
    assert!(matches!(
        Gateway::start(cfg.clone()).await,
        Err(GatewayError::BadHost(_))
    ));
    cfg.host = "0.0.0.0".into();
    cfg.token = Some("t".into());
    let gw = Gateway::start(cfg).await.unwrap();
    let r = reqwest::Client::new()
        .get(format!("http://127.0.0.1:{}/healthz", gw.addr().port()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    gw.stop().await;
}

#[tokio::test]
async fn dispatcher_wakes_at_once_when_another_process_makes_work() {
    let dir = tempfile::tempdir().unwrap();
    let root = Root::at(dir.path());
    // A 60 s ticker: only the change watcher can explain a quick pass.
    std::fs::write(
        dir.path().join("config.yaml"),
        "kanban:\n  dispatch_interval_seconds: 60\n",
    )
    .unwrap();
    let pass = Arc::new(RecordingPass::default());
    let mut cfg = config(&root);
    cfg.dispatch = Some(pass.clone());
    let gw = Gateway::start(cfg).await.unwrap();
    assert!(gw.dispatching());
    // The start-up pass.
    let deadline = Instant::now() + Duration::from_secs(5);
    while pass.passes.load(Ordering::SeqCst) == 0 {
        assert!(Instant::now() < deadline, "no start-up pass");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let other = kanban_testkit::open_board_at(root.path(), "default").store();
    let before = pass.passes.load(Ordering::SeqCst);
    let t = Instant::now();
    other
        .create_task(&new_task("from another process"))
        .unwrap();
    // Far below the 60 s tick: only the change watcher can explain it. The
    // real latency is measured by `gateway_bench`, not asserted here.
    while pass.saw_ready.load(Ordering::SeqCst) == 0 {
        assert!(
            t.elapsed() < Duration::from_secs(5),
            "the change did not wake the dispatcher"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert!(pass.passes.load(Ordering::SeqCst) > before);

    // Creating through the API: no warning, this gateway dispatches.
    let r: Value = reqwest::Client::new()
        .post(format!("{}/api/v1/tasks", gw.url()))
        .json(&json!({"title": "x", "assignee": "someone"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(r.get("warning").is_none(), "{r}");
    let text = reqwest::get(format!("{}/metrics", gw.url()))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(text.contains("kanban_dispatch_passes_total"), "{text}");
    assert!(
        text.contains("kanban_dispatch_tick_duration_seconds_bucket"),
        "{text}"
    );
    gw.stop().await;
}

#[tokio::test]
async fn dispatch_off_by_config_is_reported_on_create() {
    let dir = tempfile::tempdir().unwrap();
    let root = Root::at(dir.path());
    std::fs::write(
        dir.path().join("config.yaml"),
        "kanban:\n  dispatch_in_gateway: false\n",
    )
    .unwrap();
    let pass = Arc::new(RecordingPass::default());
    let mut cfg = config(&root);
    cfg.dispatch = Some(pass.clone());
    let gw = Gateway::start(cfg).await.unwrap();
    let r: Value = reqwest::Client::new()
        .post(format!("{}/api/v1/tasks", gw.url()))
        .json(&json!({"title": "x", "assignee": "someone"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        r["warning"]
            .as_str()
            .unwrap()
            .contains("dispatch_in_gateway"),
        "{r}"
    );
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(
        pass.passes.load(Ordering::SeqCst),
        0,
        "no pass while disabled"
    );
    let _ = kanban_testkit::open_board_at(root.path(), "default")
        .store()
        .latest_event_id();
    gw.stop().await;
}
