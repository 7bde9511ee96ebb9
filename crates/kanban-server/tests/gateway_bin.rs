//! `kanban gateway start|status|stop` through the real binary.
//!
//! Ignored until `gateway` is wired into the `kanban` binary (the CLI
//! handler is `crates/kanban/src/command/gateway.rs`); run with
//! `cargo build -p kanban && cargo test -p kanban-server --test gateway_bin -- --ignored`.

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

fn kanban_bin() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target"));
    target.join("debug/kanban")
}

fn kanban(home: &std::path::Path, args: &[&str]) -> std::process::Output {
    Command::new(kanban_bin())
        .args(args)
        .env("HERMES_KANBAN_HOME", home)
        .output()
        .unwrap()
}

#[test]

fn start_status_stop_through_the_binary() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path();
    let out = kanban(home, &["gateway", "status"]);
    assert_eq!(out.status.code(), Some(1));
    let out = kanban(home, &["gateway", "start", "--port", "0"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("http://127.0.0.1:"));

    let second = kanban(home, &["gateway", "start", "--port", "0"]);
    assert_eq!(second.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&second.stderr).contains("already running"));

    let out = kanban(home, &["gateway", "status", "--json"]);
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["running"], true);
    let url = v["url"].as_str().unwrap().to_string();
    let body = Command::new("curl")
        .args(["-s", &format!("{url}/healthz")])
        .output();
    if let Ok(b) = body {
        assert!(String::from_utf8_lossy(&b.stdout).contains("ok"));
    }

    // The CLI sees the dispatcher: no seed-001 warning on create.
    let out = kanban(home, &["create", "x", "--assignee", "someone"]);
    assert!(!String::from_utf8_lossy(&out.stderr).contains("No gateway is running"));

    let t = Instant::now();
    let out = kanban(home, &["gateway", "stop"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(t.elapsed() < Duration::from_secs(3));
    assert_eq!(kanban(home, &["gateway", "status"]).status.code(), Some(1));
}
