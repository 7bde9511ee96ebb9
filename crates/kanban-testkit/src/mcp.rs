//! A minimal MCP client for the tests: newline-delimited JSON-RPC over the
//! stdio of a `kanban mcp` child, as an agent's MCP host speaks it.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::time::Duration;

use serde_json::{Value, json};

/// No answer within this long means the server hung.
const REPLY_TIMEOUT: Duration = Duration::from_secs(20);

pub const WORKER_TOOLS: [&str; 12] = [
    "kanban_attach",
    "kanban_attach_url",
    "kanban_attachments",
    "kanban_block",
    "kanban_comment",
    "kanban_complete",
    "kanban_create",
    "kanban_heartbeat",
    "kanban_link",
    "kanban_request_changes",
    "kanban_request_review",
    "kanban_show",
];

pub struct McpClient {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Receiver<String>,
    next_id: i64,
    /// The `initialize` result.
    pub init: Value,
}

/// A `tools/call` outcome: `isError` and the parsed JSON text content.
#[derive(Debug)]
pub struct ToolReply {
    pub is_error: bool,
    pub body: Value,
}

impl ToolReply {
    pub fn ok(&self) -> &Value {
        assert!(!self.is_error, "tool error: {}", self.body);
        assert_eq!(self.body["ok"], json!(true), "{}", self.body);
        &self.body
    }

    /// The error message of a tool error.
    pub fn error(&self) -> String {
        assert!(self.is_error, "expected a tool error, got {}", self.body);
        self.body["error"]
            .as_str()
            .unwrap_or_else(|| panic!("no error text in {}", self.body))
            .to_string()
    }
}

impl McpClient {
    /// Spawn `cmd` (a `kanban mcp` command line) and run the handshake.
    pub fn start(mut cmd: Command) -> McpClient {
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn kanban mcp");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let stdin = child.stdin.take();
        let mut c = McpClient {
            child,
            stdin,
            lines: rx,
            next_id: 1,
            init: Value::Null,
        };
        let init = c.request(
            "initialize",
            json!({
                "protocolVersion": "2025-06-18",
                "capabilities": {},
                "clientInfo": {"name": "kanban-tests", "version": "0"}
            }),
        );
        c.init = init["result"].clone();
        assert!(c.init["capabilities"]["tools"].is_object(), "{init}");
        c.notify("notifications/initialized", json!({}));
        c
    }

    fn send(&mut self, msg: &Value) {
        let stdin = self.stdin.as_mut().expect("stdin open");
        writeln!(stdin, "{msg}").expect("write to kanban mcp");
        stdin.flush().unwrap();
    }

    pub fn notify(&mut self, method: &str, params: Value) {
        self.send(&json!({"jsonrpc": "2.0", "method": method, "params": params}));
    }

    /// Send a request and return the whole response object.
    pub fn request(&mut self, method: &str, params: Value) -> Value {
        let id = self.next_id;
        self.next_id += 1;
        self.send(&json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}));
        loop {
            let line = self
                .lines
                .recv_timeout(REPLY_TIMEOUT)
                .unwrap_or_else(|_| panic!("no reply to {method} within {REPLY_TIMEOUT:?}"));
            let msg: Value = serde_json::from_str(&line)
                .unwrap_or_else(|e| panic!("not JSON-RPC on stdout ({e}): {line}"));
            if msg["id"] == json!(id) {
                return msg;
            }
        }
    }

    pub fn instructions(&self) -> String {
        self.init["instructions"].as_str().unwrap_or("").to_string()
    }

    /// `tools/list`, sorted names.
    pub fn tool_names(&mut self) -> Vec<String> {
        let mut names: Vec<String> = self
            .tools()
            .iter()
            .map(|t| t["name"].as_str().unwrap().to_string())
            .collect();
        names.sort();
        names
    }

    pub fn tools(&mut self) -> Vec<Value> {
        let r = self.request("tools/list", json!({}));
        r["result"]["tools"].as_array().expect("tools").clone()
    }

    pub fn call(&mut self, name: &str, args: Value) -> ToolReply {
        let r = self.request("tools/call", json!({"name": name, "arguments": args}));
        let result = &r["result"];
        assert!(
            result.is_object(),
            "tools/call {name} failed at protocol level: {r}"
        );
        let text = result["content"][0]["text"]
            .as_str()
            .unwrap_or_else(|| panic!("no text content: {r}"));
        let body = serde_json::from_str(text).unwrap_or_else(|_| json!({"error": text}));
        ToolReply {
            is_error: result["isError"] == json!(true),
            body,
        }
    }

    /// Close stdin and wait for a clean exit.
    pub fn finish(mut self) {
        drop(self.stdin.take());
        let status = self.child.wait().expect("wait kanban mcp");
        assert!(status.success(), "kanban mcp exited with {status}");
    }
}

impl Drop for McpClient {
    fn drop(&mut self) {
        drop(self.stdin.take());
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
