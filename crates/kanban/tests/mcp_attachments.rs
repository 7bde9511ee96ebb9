//! `kanban_attach`, `kanban_attach_url` and `kanban_attachments` over MCP
//! stdio (reference §5): inline files, URL fetches against a loopback
//! server (admitted only with the test-only override), the SSRF refusals
//! on the first hop and on redirects, the redirect limit, the size cap
//! while streaming, and worker scoping.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;

use kanban_testkit::Sandbox;
use kanban_testkit::mcp::McpClient;
use serde_json::{Value, json};

/// The cap of `kanban_core::defaults::ATTACHMENT_MAX_BYTES`.
const CAP: usize = 25 * 1024 * 1024;
/// The test-only switch admitting loopback fetches.
const ALLOW_LOOPBACK: &str = "KANBAN_TEST_ALLOW_LOOPBACK_FETCH";
const FILE_BODY: &str = "# fetched\nfrom the loopback server\n";

/// A loopback HTTP server: `/file.md`, `/redirect/<n>` (n redirects, the
/// last to the file), `/to/<url>` (one redirect to that URL), `/big` (one byte over
/// the cap, no length), `/big-declared` (the same with Content-Length).
struct Server {
    port: u16,
}

fn respond(mut s: TcpStream) {
    let mut reader = BufReader::new(s.try_clone().unwrap());
    let mut request = String::new();
    if reader.read_line(&mut request).is_err() {
        return;
    }
    loop {
        let mut l = String::new();
        if reader.read_line(&mut l).unwrap_or(0) == 0 || l == "\r\n" {
            break;
        }
    }
    let path = request.split_whitespace().nth(1).unwrap_or("/").to_string();
    let redirect = |s: &mut TcpStream, to: &str| {
        let _ = write!(
            s,
            "HTTP/1.1 302 Found\r\nLocation: {to}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        );
    };
    if path == "/file.md" {
        let _ = write!(
            s,
            "HTTP/1.1 200 OK\r\nContent-Type: text/markdown; charset=utf-8\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n{FILE_BODY}",
            FILE_BODY.len()
        );
    } else if let Some(n) = path.strip_prefix("/redirect/") {
        let n: usize = n.parse().unwrap();
        let to = if n <= 1 {
            "/file.md".to_string()
        } else {
            format!("/redirect/{}", n - 1)
        };
        redirect(&mut s, &to);
    } else if let Some(to) = path.strip_prefix("/to/") {
        redirect(&mut s, to);
    } else if path == "/big" || path == "/big-declared" {
        let head = if path == "/big" {
            "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n".to_string()
        } else {
            format!(
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                CAP + 1
            )
        };
        if s.write_all(head.as_bytes()).is_err() {
            return;
        }
        let chunk = vec![b'x'; 1024 * 1024];
        let mut left = CAP + 1;
        while left > 0 {
            let n = left.min(chunk.len());
            if s.write_all(&chunk[..n]).is_err() {
                return; // the client gave up: that is the point
            }
            left -= n;
        }
    } else {
        let _ = write!(
            s,
            "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        );
    }
}

impl Server {
    fn start() -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        std::thread::spawn(move || {
            for s in listener.incoming().flatten() {
                std::thread::spawn(move || respond(s));
            }
        });
        Server { port }
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }
}

fn client(b: &Sandbox, env: &[(&str, &str)]) -> McpClient {
    let mut cmd = b.std_cmd();
    cmd.arg("mcp");
    for (k, v) in env {
        cmd.env(k, v);
    }
    McpClient::start(cmd)
}

fn worker(b: &Sandbox, t: &str, extra: &[(&str, &str)]) -> McpClient {
    let mut cmd = b.std_cmd();
    cmd.arg("mcp").envs(b.worker_env(t, "coder"));
    for (k, v) in extra {
        cmd.env(k, v);
    }
    McpClient::start(cmd)
}

fn files_of(b: &Sandbox, t: &str) -> Vec<String> {
    let dir = b.path(&format!("kanban/attachments/{t}"));
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

fn b64(data: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in data.chunks(3) {
        let n = chunk.iter().fold(0u32, |acc, b| (acc << 8) | *b as u32) << (8 * (3 - chunk.len()));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[test]
fn inline_attach_and_list() {
    let b = Sandbox::new();
    let t = b.create("Inline", &[]);
    let mut c = client(&b, &[]);
    let content = b"binary \x00\x01\x02 ok";
    let r = c.call(
        "kanban_attach",
        json!({"task_id": t, "filename": "data.bin", "content_base64": b64(content),
               "content_type": "application/octet-stream"}),
    );
    let body = r.ok();
    assert_eq!(body["task_id"], json!(t));
    assert_eq!(body["size"], json!(content.len()));
    let id = body["attachment_id"].as_i64().unwrap();
    let stored = b.path(&format!("kanban/attachments/{t}/data.bin"));
    assert_eq!(std::fs::read(&stored).unwrap(), content);

    let listed = c.call("kanban_attachments", json!({"task_id": t}));
    let l = listed.ok();
    assert_eq!(l["task_id"], json!(t));
    let a = &l["attachments"][0];
    assert_eq!(a["id"], json!(id));
    assert_eq!(a["filename"], "data.bin");
    assert_eq!(a["uploaded_by"], "agent");
    assert_eq!(a["content_type"], "application/octet-stream");
    assert!(Path::new(a["stored_path"].as_str().unwrap()).is_absolute());
    // The CLI lists what the tool stored.
    let cli = b.json(&["attachments", &t, "--json"]);
    assert_eq!(cli[0]["id"], json!(id));

    // Refusals: nothing stored.
    let errors = [
        (
            json!({"task_id": t, "content_base64": "eA=="}),
            "filename is required",
        ),
        (
            json!({"task_id": t, "filename": "x.txt"}),
            "content_base64 is required",
        ),
        (
            json!({"task_id": t, "filename": "x.txt", "content_base64": "not base64!"}),
            "content_base64 is not valid base64",
        ),
        (
            json!({"task_id": t, "filename": "../x.txt", "content_base64": "eA=="}),
            "invalid attachment filename",
        ),
        (
            json!({"task_id": "t_00000000", "filename": "x.txt", "content_base64": "eA=="}),
            "no such task: t_00000000",
        ),
    ];
    for (args, msg) in errors {
        let e = c.call("kanban_attach", args.clone()).error();
        assert!(e.contains(msg), "{args}: {e}");
    }
    let unknown = c.call("kanban_attachments", json!({"task_id": "t_00000000"}));
    assert!(unknown.error().contains("task t_00000000 not found"));
    assert_eq!(files_of(&b, &t), ["data.bin"]);
    assert!(!b.path("kanban/attachments/t_00000000").exists());
    c.finish();
}

/// An attachment of the full 25 MiB travels over `kanban mcp`'s stdio (its
/// base64 line is longer than rmcp's default 16 MiB line cap); one byte
/// more is refused by the size cap, with an answer, not dropped.
#[test]
fn a_full_size_attachment_travels_over_stdio() {
    const CAP: usize = 25 * 1024 * 1024;
    let b = Sandbox::new();
    let t = b.create("Big", &[]);
    let mut c = client(&b, &[]);
    let data: Vec<u8> = (0..CAP).map(|i| (i % 251) as u8).collect();
    let r = c.call(
        "kanban_attach",
        json!({"task_id": t, "filename": "full.bin", "content_base64": b64(&data)}),
    );
    assert_eq!(r.ok()["size"], json!(CAP));
    let stored = b.path(&format!("kanban/attachments/{t}/full.bin"));
    assert_eq!(std::fs::metadata(&stored).unwrap().len(), CAP as u64);
    let mut over = data;
    over.push(0);
    let e = c
        .call(
            "kanban_attach",
            json!({"task_id": t, "filename": "over.bin", "content_base64": b64(&over)}),
        )
        .error();
    assert!(e.contains("25"), "{e}");
    assert_eq!(files_of(&b, &t), ["full.bin"]);
    c.finish();
}

#[test]
fn worker_attaches_to_its_own_task_only() {
    let b = Sandbox::new();
    let t = b.claimed("Mine", "coder");
    let other = b.claimed("Theirs", "coder");
    let mut c = worker(&b, &t, &[]);
    let names = c.tool_names();
    for tool in ["kanban_attach", "kanban_attach_url", "kanban_attachments"] {
        assert!(names.iter().any(|n| n == tool), "{tool} in {names:?}");
    }
    // The own task is the default.
    let own = c.call(
        "kanban_attach",
        json!({"filename": "own.txt", "content_base64": b64(b"own")}),
    );
    assert_eq!(own.ok()["task_id"], json!(t));
    for tool in ["kanban_attach", "kanban_attach_url"] {
        let e = c
            .call(
                tool,
                json!({"task_id": other, "filename": "x.txt", "content_base64": "eA==",
                       "url": "http://example.invalid/x"}),
            )
            .error();
        assert!(
            e.contains(&format!("worker is scoped to task {t}")),
            "{tool}: {e}"
        );
    }
    // Listing is not scoped.
    let theirs = c.call("kanban_attachments", json!({"task_id": other}));
    assert_eq!(theirs.ok()["attachments"], json!([]));
    let mine = c.call("kanban_attachments", json!({}));
    assert_eq!(mine.ok()["attachments"][0]["filename"], "own.txt");
    assert!(files_of(&b, &other).is_empty());
    c.finish();
}

#[test]
fn url_fetches_follow_redirects_with_the_override() {
    let server = Server::start();
    let b = Sandbox::new();
    let t = b.create("From the web", &[]);
    let mut c = client(&b, &[(ALLOW_LOOPBACK, "1")]);
    // A direct fetch: name from the URL, type from the server.
    let r = c.call(
        "kanban_attach_url",
        json!({"task_id": t, "url": server.url("/file.md")}),
    );
    assert_eq!(r.ok()["size"], json!(FILE_BODY.len()));
    // Five redirects are followed; a name and a type given win.
    let r = c.call(
        "kanban_attach_url",
        json!({"task_id": t, "url": server.url("/redirect/5"), "filename": "five.md",
               "content_type": "text/x-given"}),
    );
    r.ok();
    let listed = b.json(&["attachments", &t, "--json"]);
    assert_eq!(listed[0]["filename"], "file.md");
    assert_eq!(listed[0]["content_type"], "text/markdown");
    assert_eq!(listed[1]["filename"], "five.md");
    assert_eq!(listed[1]["content_type"], "text/x-given");
    let dir = b.path(&format!("kanban/attachments/{t}"));
    assert_eq!(
        std::fs::read_to_string(dir.join("five.md")).unwrap(),
        FILE_BODY
    );
    c.finish();
}

/// Every refusal of `kanban_attach_url`: error text, nothing stored.
fn refusals(c: &mut McpClient, b: &Sandbox, t: &str, cases: &[(String, &str)]) {
    for (url, msg) in cases {
        let e = c
            .call("kanban_attach_url", json!({"task_id": t, "url": url}))
            .error();
        assert!(e.starts_with("kanban_attach_url: "), "{url}: {e}");
        assert!(e.contains(msg), "{url}: {e}");
    }
    assert!(files_of(b, t).is_empty(), "{:?}", files_of(b, t));
    assert_eq!(b.json(&["attachments", t, "--json"]), Value::Array(vec![]));
}

#[test]
fn internal_addresses_are_refused_by_default() {
    let server = Server::start();
    let b = Sandbox::new();
    let t = b.create("Guarded", &[]);
    let mut c = client(&b, &[]);
    const SSRF: &str = "blocked by SSRF protection";
    let cases = [
        (server.url("/file.md"), SSRF),
        (format!("http://localhost:{}/file.md", server.port), SSRF),
        (format!("http://[::1]:{}/file.md", server.port), SSRF),
        (format!("http://2130706433:{}/file.md", server.port), SSRF),
        ("http://10.1.2.3/x".to_string(), SSRF),
        ("http://192.168.0.1/x".to_string(), SSRF),
        ("http://169.254.169.254/latest/meta-data/".to_string(), SSRF),
        ("http://[fd00:ec2::254]/latest/".to_string(), SSRF),
        ("http://100.64.0.1/x".to_string(), SSRF),
        ("http://metadata.google.internal/x".to_string(), SSRF),
        ("ftp://example.com/x".to_string(), "unsupported URL scheme"),
        ("file:///etc/passwd".to_string(), "unsupported URL scheme"),
    ];
    refusals(&mut c, &b, &t, &cases);
    c.finish();
}

#[test]
fn redirects_are_checked_limited_and_bodies_capped() {
    let server = Server::start();
    let b = Sandbox::new();
    let t = b.create("Redirected", &[]);
    // Loopback admitted (so the test server is reachable): every other
    // internal address is still refused, on any hop.
    let mut c = client(&b, &[(ALLOW_LOOPBACK, "1")]);
    const SSRF: &str = "blocked by SSRF protection";
    let cases = [
        (server.url("/to/http://10.0.0.1/secret"), SSRF),
        (
            server.url("/to/http://169.254.169.254/latest/meta-data/"),
            SSRF,
        ),
        (server.url("/to/http://[fd00:ec2::254]/"), SSRF),
        (server.url("/to/http://192.168.1.1/admin"), SSRF),
        (
            server.url("/to/file:///etc/passwd"),
            "unsupported URL scheme",
        ),
        (server.url("/redirect/6"), "too many redirects"),
        (server.url("/big"), "attachment exceeds 25 MB limit"),
        (
            server.url("/big-declared"),
            "attachment exceeds 25 MB limit",
        ),
        (server.url("/missing"), "HTTP 404"),
    ];
    refusals(&mut c, &b, &t, &cases);
    c.finish();
}
