//! A fake OpenAI-compatible chat-completions server on loopback, started
//! by the test: it answers each `POST …/chat/completions` with the next
//! scripted reply (the last one repeats) and records the requests, so a
//! test sees exactly what the client sent and controls what the "model"
//! says — hostile answers included.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};

/// One scripted reply.
#[derive(Debug, Clone)]
pub enum Reply {
    /// The assistant message content (wrapped in a chat-completions answer).
    Content(String),
    /// A raw HTTP status and body.
    Raw(u16, String),
    /// The content, after holding the connection this long (a slow model).
    Delayed(std::time::Duration, String),
}

#[derive(Default)]
struct Script {
    replies: Vec<Reply>,
    next: usize,
    requests: Vec<Value>,
    auth: Vec<Option<String>>,
}

/// The server; it stops when the test process ends.
pub struct FakeModel {
    port: u16,
    script: Arc<Mutex<Script>>,
}

impl FakeModel {
    /// Serve `replies` in order (the last repeats).
    pub fn start(replies: Vec<Reply>) -> FakeModel {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
        let port = listener.local_addr().unwrap().port();
        let script = Arc::new(Mutex::new(Script {
            replies,
            ..Default::default()
        }));
        let shared = script.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming().flatten() {
                let s = shared.clone();
                std::thread::spawn(move || serve(conn, &s));
            }
        });
        FakeModel { port, script }
    }

    /// Answer every call with this content.
    pub fn answering(content: &str) -> FakeModel {
        Self::start(vec![Reply::Content(content.to_string())])
    }

    /// The base URL to configure (`…/v1`).
    pub fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}/v1", self.port)
    }

    /// Replace the script (and restart it).
    pub fn set_replies(&self, replies: Vec<Reply>) {
        let mut s = self.script.lock().unwrap();
        s.replies = replies;
        s.next = 0;
    }

    /// Request bodies received so far.
    pub fn requests(&self) -> Vec<Value> {
        self.script.lock().unwrap().requests.clone()
    }

    /// `Authorization` headers received so far.
    pub fn auth_headers(&self) -> Vec<Option<String>> {
        self.script.lock().unwrap().auth.clone()
    }

    /// A `config.yaml` `auxiliary:` block pointing every task at this server.
    pub fn config_yaml(&self, model: &str) -> String {
        format!(
            "auxiliary:\n  default:\n    base_url: {}\n    model: {model}\n    api_key_env: FAKE_MODEL_KEY\n    timeout: 30\n",
            self.base_url()
        )
    }
}

fn serve(conn: TcpStream, script: &Mutex<Script>) {
    let mut reader = BufReader::new(match conn.try_clone() {
        Ok(c) => c,
        Err(_) => return,
    });
    let mut line = String::new();
    if reader.read_line(&mut line).is_err() {
        return;
    }
    let mut len = 0usize;
    let mut auth = None;
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h).unwrap_or(0) == 0 || h.trim().is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            match k.trim().to_ascii_lowercase().as_str() {
                "content-length" => len = v.trim().parse().unwrap_or(0),
                "authorization" => auth = Some(v.trim().to_string()),
                _ => {}
            }
        }
    }
    let mut body = vec![0u8; len];
    let _ = reader.read_exact(&mut body);
    let reply = {
        let mut s = script.lock().unwrap();
        s.requests
            .push(serde_json::from_slice(&body).unwrap_or(Value::Null));
        s.auth.push(auth);
        let i = s.next.min(s.replies.len().saturating_sub(1));
        s.next += 1;
        s.replies
            .get(i)
            .cloned()
            .unwrap_or(Reply::Raw(500, "no reply scripted".into()))
    };
    let (status, text) = match reply {
        Reply::Content(c) => (200, completion(&c)),
        Reply::Raw(code, b) => (code, b),
        Reply::Delayed(wait, c) => {
            std::thread::sleep(wait);
            (200, completion(&c))
        }
    };
    let mut out = conn;
    let _ = write!(
        out,
        "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{text}",
        text.len()
    );
}

fn completion(content: &str) -> String {
    json!({"id": "fake", "object": "chat.completion",
           "choices": [{"index": 0, "message": {"role": "assistant", "content": content},
                        "finish_reason": "stop"}]})
    .to_string()
}
