//! Start a real server on a free loopback port over a temporary root,
//! ending workers the way the binary's gateway does.
#![allow(dead_code)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use kanban_dispatch::{ProcLiveness, Terminator};
use kanban_hermes::layout::Root;
use kanban_server::{RunningServer, ServerOptions, WorkerEnder};
use kanban_store::dispatch_ops::DispatchStore;
use kanban_store::{EndedWorker, NewTask};
use serde_json::Value;
use tokio::net::TcpListener;

/// The dispatcher's identity-checked ending (recorded pid, start time and
/// boot), as `kanban gateway` plugs it in.
pub struct IdentityEnder {
    liveness: Arc<ProcLiveness>,
    terminator: Terminator,
}

impl IdentityEnder {
    pub fn new() -> IdentityEnder {
        let liveness = Arc::new(ProcLiveness::new());
        IdentityEnder {
            terminator: Terminator::new(liveness.clone()),
            liveness,
        }
    }
}

impl WorkerEnder for IdentityEnder {
    fn end_worker(
        &self,
        store: &Arc<dyn DispatchStore>,
        run_id: Option<i64>,
        worker: &EndedWorker,
    ) {
        let ended = kanban_dispatch::end_worker(
            store.as_ref(),
            self.liveness.as_ref(),
            &self.terminator,
            run_id,
            worker,
        );
        if let Err(e) = ended {
            eprintln!("cannot end worker {}: {e}", worker.pid);
        }
    }
}

pub struct TestServer {
    pub dir: tempfile::TempDir,
    pub root: Root,
    pub server: Option<RunningServer>,
    pub base: String,
    pub client: reqwest::Client,
}

impl TestServer {
    pub async fn start() -> TestServer {
        Self::start_with(|_| {}).await
    }

    pub async fn start_with(f: impl FnOnce(&mut ServerOptions)) -> TestServer {
        let dir = tempfile::tempdir().unwrap();
        let root = Root::at(dir.path());
        let mut opts = ServerOptions::new(root.clone());
        opts.poll_interval = Duration::from_millis(10);
        opts.workers = Some(Arc::new(IdentityEnder::new()));
        f(&mut opts);
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let server = RunningServer::spawn(opts, listener).unwrap();
        let base = server.url.clone();
        TestServer {
            dir,
            root,
            server: Some(server),
            base,
            client: reqwest::Client::new(),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub fn ws_url(&self, path: &str) -> String {
        format!("{}{path}", self.base.replacen("http://", "ws://", 1))
    }

    /// A second, independent connection to the default board, like
    /// another process (CLI, worker, Python) would have.
    pub fn other_store(&self) -> Arc<dyn DispatchStore> {
        kanban_testkit::open_board_at(self.dir.path(), "default").dispatch()
    }

    pub async fn get(&self, path: &str) -> (u16, Value) {
        let r = self.client.get(self.url(path)).send().await.unwrap();
        decode(r).await
    }

    pub async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut req = self.client.request(method, self.url(path));
        if let Some(b) = body {
            req = req.json(&b);
        }
        decode(req.send().await.unwrap()).await
    }

    pub async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        self.send(reqwest::Method::POST, path, Some(body)).await
    }

    pub async fn patch(&self, path: &str, body: Value) -> (u16, Value) {
        self.send(reqwest::Method::PATCH, path, Some(body)).await
    }

    pub async fn delete(&self, path: &str) -> (u16, Value) {
        self.send(reqwest::Method::DELETE, path, None).await
    }

    /// Create a task through the API; returns its id.
    pub async fn create(&self, body: Value) -> String {
        let (status, v) = self.post("/api/v1/tasks", body).await;
        assert_eq!(status, 200, "{v}");
        v["task"]["id"].as_str().unwrap().to_string()
    }

    pub async fn stop(mut self) {
        if let Some(s) = self.server.take() {
            s.stop(Instant::now() + Duration::from_secs(2)).await;
        }
    }
}

pub async fn decode(r: reqwest::Response) -> (u16, Value) {
    let status = r.status().as_u16();
    let text = r.text().await.unwrap();
    let v = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (status, v)
}

pub fn new_task(title: &str) -> NewTask {
    NewTask {
        title: title.into(),
        ..Default::default()
    }
}

pub fn claim(store: &dyn DispatchStore, id: &str) -> i64 {
    let req = kanban_store::ClaimRequest {
        task_id: id.into(),
        claim_lock: "elsewhere-host:1".into(),
        ttl_seconds: 900,
        review: false,
        ceilings: Default::default(),
    };
    match store.claim_task(&req).unwrap() {
        kanban_store::ClaimOutcome::Claimed { run_id, .. } => run_id,
        other => panic!("claim failed: {other:?}"),
    }
}

/// Assert the error body shape and return its detail.
pub fn err_detail(v: &Value) -> String {
    assert!(v["error"].is_string(), "error body without `error`: {v}");
    v["detail"].as_str().unwrap_or_default().to_string()
}
