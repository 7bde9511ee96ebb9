//! `kanban-e2e-devserver --port N`: the gateway API (no dispatcher) over
//! the root named by HERMES_HOME, for dashboard development and e2e runs
//! before `kanban gateway run` exists.

use kanban_server::{GatewayConfig, RunningServer, ServerOptions};
use kanban_store::layout::{ProcessEnv, Root};

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let port: u16 = args
        .iter()
        .position(|a| a == "--port")
        .and_then(|i| args.get(i + 1))
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    let root = Root::resolve(&ProcessEnv).expect("resolve root");
    let _ = GatewayConfig::resolve;
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await.expect("bind");
    let server = RunningServer::spawn(ServerOptions::new(root), listener).expect("serve");
    println!("listening on {}", server.url);
    tokio::signal::ctrl_c().await.ok();
}
