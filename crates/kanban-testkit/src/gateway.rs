//! A `kanban gateway run` child of a sandbox, and a raw HTTP/1.1 client
//! that can send any `Host` header (what a DNS-rebinding page's browser
//! sends).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde_json::Value;

use crate::Sandbox;
use crate::process::POLL;

/// How long a gateway may take to print its URL (debug build, 2 busy cores).
pub const START_WAIT: Duration = Duration::from_secs(30);
/// How long a test waits for something the gateway does in the background.
pub const SETTLE_WAIT: Duration = Duration::from_secs(15);
/// How long a dropped gateway gets to stop on SIGTERM before SIGKILL.
const STOP_WAIT: Duration = Duration::from_secs(10);
/// How long a request waits for the answer.
const HTTP_TIMEOUT: Duration = Duration::from_secs(30);
/// What `kanban gateway run` prints once it serves.
const BANNER: &str = "listening on";

impl Sandbox {
    /// `kanban gateway run --port 0`, waited on until it serves.
    pub fn gateway(&self) -> GatewayChild {
        self.gateway_with(&[], &[])
    }

    /// The same with extra environment and arguments; panics when it
    /// does not start.
    pub fn gateway_with(&self, env: &[(&str, &str)], args: &[&str]) -> GatewayChild {
        self.try_gateway(env, args)
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// Start a gateway; `Err` carries its exit status and output when it
    /// exits (or stays silent) instead of serving.
    pub fn try_gateway(&self, env: &[(&str, &str)], args: &[&str]) -> Result<GatewayChild, String> {
        let log = self.gateway_log();
        let offset = std::fs::metadata(&log).map(|m| m.len()).unwrap_or(0);
        let child = self
            .gateway_cmd(env, args)
            .spawn()
            .map_err(|e| format!("cannot spawn kanban gateway run: {e}"))?;
        let mut gw = GatewayChild {
            pid: child.id(),
            child,
            log,
            url: String::new(),
            port: 0,
            banner: String::new(),
        };
        let deadline = Instant::now() + START_WAIT;
        loop {
            if let Some(banner) = gw.banner_after(offset) {
                gw.url = banner
                    .split_whitespace()
                    .find(|w| w.starts_with("http://"))
                    .expect("URL in the start-up line")
                    .to_string();
                gw.port = gw.url.rsplit(':').next().unwrap().parse().unwrap();
                gw.banner = banner;
                return Ok(gw);
            }
            if let Ok(Some(status)) = gw.child.try_wait() {
                return Err(format!(
                    "gateway exited at start ({status}): {}",
                    gw.log_text()
                ));
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "gateway did not print its URL in time: {}",
                    gw.log_text()
                ));
            }
            std::thread::sleep(POLL);
        }
    }

    /// The gateway command (not started), its output appended to
    /// [`Sandbox::gateway_log`].
    pub fn gateway_cmd(&self, env: &[(&str, &str)], args: &[&str]) -> Command {
        let mut cmd = self.kanban(["gateway", "run", "--port", "0"]);
        cmd.args(args).envs(env.iter().copied());
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.gateway_log())
            .unwrap();
        cmd.stdout(log.try_clone().unwrap()).stderr(log);
        cmd
    }

    /// Stdout and stderr of every gateway this sandbox started.
    pub fn gateway_log(&self) -> PathBuf {
        self.root().join("gateway-test.log")
    }
}

/// A `kanban gateway run` child: SIGTERM (then SIGKILL) on drop.
pub struct GatewayChild {
    pub pid: u32,
    pub child: Child,
    /// `http://127.0.0.1:<port>`.
    pub url: String,
    pub port: u16,
    /// The start-up line (`kanban gateway listening on ... (dispatcher: ...)`).
    pub banner: String,
    log: PathBuf,
}

impl GatewayChild {
    /// The first start-up line written after `offset` of the log.
    fn banner_after(&self, offset: u64) -> Option<String> {
        let bytes = std::fs::read(&self.log).ok()?;
        let new = bytes.get(usize::try_from(offset).ok()?..)?;
        String::from_utf8_lossy(new)
            .lines()
            .find(|l| l.contains(BANNER))
            .map(str::to_string)
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// `GET`/`POST`/... with the gateway's own `Host`.
    pub fn request(&self, method: &str, path: &str, body: Option<&Value>) -> Response {
        let host = format!("127.0.0.1:{}", self.port);
        http(self.port, method, path, &[("Host", &host)], body)
    }

    fn signal(&self, sig: Signal) {
        let _ = kill(Pid::from_raw(self.pid as i32), sig);
    }

    pub fn kill9(&mut self) {
        self.signal(Signal::SIGKILL);
        let _ = self.child.wait();
    }

    /// SIGTERM; the exit status and how long the exit took (`None` = still
    /// running after `timeout`).
    pub fn sigterm(&mut self, timeout: Duration) -> Option<(ExitStatus, Duration)> {
        let t = Instant::now();
        self.signal(Signal::SIGTERM);
        let deadline = t + timeout;
        loop {
            if let Ok(Some(st)) = self.child.try_wait() {
                return Some((st, t.elapsed()));
            }
            if Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(POLL);
        }
    }

    /// Resident memory (kB) from /proc/<pid>/status.
    pub fn rss_kb(&self) -> Option<u64> {
        let s = std::fs::read_to_string(format!("/proc/{}/status", self.pid)).ok()?;
        s.lines()
            .find(|l| l.starts_with("VmRSS:"))?
            .split_whitespace()
            .nth(1)?
            .parse()
            .ok()
    }
}

impl Drop for GatewayChild {
    fn drop(&mut self) {
        if !matches!(self.child.try_wait(), Ok(None)) {
            return;
        }
        if self.sigterm(STOP_WAIT).is_none() {
            self.kill9();
        }
    }
}

/// One HTTP response.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Response {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {} {}", self.status, self.body))
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Send one request to `127.0.0.1:port` with exactly the given headers
/// (the `Host` included) and read the whole response (`Connection: close`).
pub fn http(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&Value>,
) -> Response {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connect to the gateway");
    stream.set_read_timeout(Some(HTTP_TIMEOUT)).unwrap();
    let payload = body.map(|b| b.to_string()).unwrap_or_default();
    let mut req = format!("{method} {path} HTTP/1.1\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    if body.is_some() {
        req.push_str("Content-Type: application/json\r\n");
    }
    req.push_str(&format!(
        "Content-Length: {}\r\nConnection: close\r\n\r\n{payload}",
        payload.len()
    ));
    stream.write_all(req.as_bytes()).unwrap();
    let mut raw = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        match stream.read(&mut chunk) {
            Ok(0) | Err(_) => break,
            Ok(n) => raw.extend_from_slice(&chunk[..n]),
        }
        // A WebSocket stays open after its 101: the head is the answer.
        if raw.starts_with(b"HTTP/1.1 101") && raw.windows(4).any(|w| w == b"\r\n\r\n") {
            break;
        }
    }
    parse_response(&raw)
}

fn parse_response(raw: &[u8]) -> Response {
    let text = String::from_utf8_lossy(raw);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {text:?}"));
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    let chunked = headers.iter().any(|(k, v)| {
        k.eq_ignore_ascii_case("transfer-encoding") && v.eq_ignore_ascii_case("chunked")
    });
    let body = if chunked {
        dechunk(body)
    } else {
        body.to_string()
    };
    Response {
        status,
        headers,
        body,
    }
}

fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = s.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        s = rest[n..].trim_start_matches("\r\n");
    }
    out
}
