//! Three "hosts" on one PostgreSQL board (issue 11, item 5 and the
//! multi-host test). Each host is a `kanban gateway run` in PID and mount
//! namespaces of its own (`unshare --pid --fork --mount-proc`), so pids
//! collide across hosts as on real machines, with its own Hermes root and
//! `KANBAN_HOST_ID`; hosts share the kernel's boot id and host name. All
//! reach the database through its Unix socket (no IP traffic).
//!
//! Hosts a and b also get a network namespace (`--net`, loopback brought
//! up inside). Host c keeps the test's network namespace so the test can
//! reach its port: the WebSocket client of the "surviving gateway" check
//! connects to c. Host a is killed mid-run with its whole PID namespace
//! (SIGKILL to the namespace's init takes every worker with it).
//!
//! Checks: every task done exactly once (one completed run each), no two
//! runs of one task overlapping, the ceilings never exceeded (sampled
//! every 50 ms), the dead host's tasks finished by the others within the
//! claim TTL plus a few seconds, no reclaim counted as a failure, and every
//! event delivered to c's WebSocket client in order with no gap.
//!
//! Needs root for `unshare`: without it the test fails saying so, unless
//! `KANBAN_SKIP_MULTIHOST=1`.

use std::collections::{BTreeMap, HashMap};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use kanban_testkit::postgres::TestCluster;
use kanban_testkit::{Sandbox, http};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use postgres::Client;
use serde_json::{Value, json};

const ENV_SKIP: &str = "KANBAN_SKIP_MULTIHOST";
const ENV_DATABASE_URL: &str = "HERMES_KANBAN_DATABASE_URL";
const TASKS: usize = 300;
const PROFILES: [(&str, i64); 3] = [("p1", 5), ("p2", 4), ("p3", 4)];
const MAX_IN_PROGRESS: i64 = 12;
/// Claim TTL of every host (`HERMES_KANBAN_CLAIM_TTL_SECONDS`); the host
/// lease of a 1 s tick is as long (`host_lease::HOST_LEASE_MIN_SECONDS`).
const CLAIM_TTL_SECONDS: u64 = 5;
/// What "a few seconds" after the TTL means for the dead host's tasks:
/// the lease running out, a pass, a spawn and a worker's 1 s.
const DEAD_HOST_SLACK: Duration = Duration::from_secs(8);
/// Kill host a once this many tasks are done.
const KILL_AFTER_DONE: i64 = 90;
const SAMPLE_EVERY: Duration = Duration::from_millis(50);
const START_WAIT: Duration = Duration::from_secs(30);
const RUN_WAIT: Duration = Duration::from_secs(90);
const FEED_WAIT: Duration = Duration::from_secs(15);
const BOARD_SCHEMA: &str = "\"kanban_default\"";

/// Root and `unshare` or a clear failure; `false`: skipped on request.
fn namespaces_available() -> bool {
    // `/proc/self` belongs to the process's effective user.
    let root = std::fs::metadata("/proc/self").is_ok_and(|m| {
        use std::os::unix::fs::MetadataExt;
        m.uid() == 0
    });
    let unshare = Command::new("unshare")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if root && unshare {
        return true;
    }
    if std::env::var(ENV_SKIP).as_deref() == Ok("1") {
        eprintln!("multi-host test skipped ({ENV_SKIP}=1)");
        return false;
    }
    panic!(
        "the multi-host test needs root and util-linux `unshare` (root: {root}, unshare: \
         {unshare}); run it as root (CI does) or set {ENV_SKIP}=1 to skip it"
    );
}

/// One host: its root, its gateway in its namespaces, its log.
struct Host {
    id: &'static str,
    sandbox: Sandbox,
    unshare: Child,
    log: PathBuf,
    port: u16,
}

impl Host {
    fn start(id: &'static str, url: &str, own_network: bool) -> Host {
        let mut sandbox = Sandbox::new();
        sandbox.env.insert(ENV_DATABASE_URL.into(), url.into());
        sandbox.env.insert("KANBAN_HOST_ID".into(), id.into());
        sandbox.env.insert(
            "HERMES_KANBAN_CLAIM_TTL_SECONDS".into(),
            CLAIM_TTL_SECONDS.to_string(),
        );
        let limits: String = PROFILES
            .iter()
            .map(|(p, n)| format!("    {p}: {n}\n"))
            .collect();
        sandbox.kanban_config(&format!(
            "  dispatch_interval_seconds: 1\n  max_in_progress: {MAX_IN_PROGRESS}\n  \
             profile_limits:\n{limits}"
        ));
        for (p, _) in PROFILES {
            // Sleep 0.2-1 s, then complete (retrying a busy database).
            sandbox.profile(
                p,
                "S=$(awk -v s=$$ 'BEGIN { srand(s); printf \"%.2f\", 0.2 + rand() * 0.8 }')\n\
                 sleep \"$S\"\n\
                 for i in 1 2 3 4 5; do \"$K\" complete --summary done && exit 0; sleep 0.2; done\n\
                 exit 1\n",
            );
        }
        let log = sandbox.root().join("gateway-ns.log");
        let out = std::fs::File::create(&log).unwrap();
        let bin = sandbox.bin().display().to_string();
        let mut cmd = sandbox.command("unshare");
        if own_network {
            cmd.args(["--net", "--pid", "--fork", "--mount-proc", "sh", "-c"])
                .arg("ip link set lo up && exec \"$0\" gateway run --port 0")
                .arg(&bin);
        } else {
            cmd.args([
                "--pid",
                "--fork",
                "--mount-proc",
                &bin,
                "gateway",
                "run",
                "--port",
                "0",
            ]);
        }
        cmd.stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out);
        let unshare = cmd.spawn().expect("spawn unshare");
        let mut host = Host {
            id,
            sandbox,
            unshare,
            log,
            port: 0,
        };
        host.port = host.wait_listening();
        host
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn wait_listening(&mut self) -> u16 {
        let deadline = Instant::now() + START_WAIT;
        loop {
            let text = self.log_text();
            if let Some(line) = text.lines().find(|l| l.contains("listening on")) {
                let url = line
                    .split_whitespace()
                    .find(|w| w.starts_with("http://"))
                    .expect("URL in the banner");
                return url.rsplit(':').next().unwrap().parse().unwrap();
            }
            if let Ok(Some(status)) = self.unshare.try_wait() {
                panic!("host {} exited at start ({status}): {text}", self.id);
            }
            assert!(
                Instant::now() < deadline,
                "host {} never served: {text}",
                self.id
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The outer pid of the namespace's init (the gateway): the child of
    /// `unshare --fork`.
    fn namespace_init(&self) -> i32 {
        let pid = self.unshare.id();
        let children = std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).unwrap();
        children
            .split_whitespace()
            .next()
            .expect("unshare has forked the namespace's init")
            .parse()
            .unwrap()
    }

    /// SIGKILL the namespace's init: the kernel kills every process of
    /// the PID namespace with it.
    fn kill_namespace(&mut self) {
        kill(Pid::from_raw(self.namespace_init()), Signal::SIGKILL).unwrap();
        self.unshare.wait().unwrap();
    }
}

impl Drop for Host {
    fn drop(&mut self) {
        if let Ok(None) = self.unshare.try_wait() {
            if let Ok(init) = std::panic::catch_unwind(|| self.namespace_init()) {
                let _ = kill(Pid::from_raw(init), Signal::SIGKILL);
            }
            let _ = self.unshare.kill();
            let _ = self.unshare.wait();
        }
    }
}

/// A connection to the board's schema.
fn board_client(pg: &TestCluster, db: &str) -> Client {
    let mut c = pg.client(db);
    c.batch_execute(&format!("SET search_path TO {BOARD_SCHEMA}"))
        .unwrap();
    c
}

fn count(c: &mut Client, sql: &str) -> i64 {
    c.query_one(sql, &[]).unwrap().get(0)
}

/// A minimal blocking WebSocket client of the event feed: the upgrade,
/// then the server's (unmasked, unfragmented) text frames.
struct Feed {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl Feed {
    fn connect(port: u16) -> Feed {
        let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connect to host c");
        let req = format!(
            "GET /api/v1/events?since=0 HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\
             Upgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        );
        stream.write_all(req.as_bytes()).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        let mut feed = Feed {
            stream,
            buf: Vec::new(),
        };
        let deadline = Instant::now() + FEED_WAIT;
        let head_end = loop {
            if let Some(i) = feed.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            assert!(Instant::now() < deadline, "no upgrade answer");
            feed.fill();
        };
        let head = String::from_utf8_lossy(&feed.buf[..head_end]).into_owned();
        assert!(head.starts_with("HTTP/1.1 101"), "{head}");
        feed.buf.drain(..head_end);
        feed
    }

    fn fill(&mut self) {
        let mut chunk = [0u8; 65536];
        if let Ok(n) = self.stream.read(&mut chunk) {
            assert!(n > 0, "host c closed the event feed");
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    /// One complete frame from the buffer: (opcode, payload).
    fn frame(&mut self) -> Option<(u8, Vec<u8>)> {
        let b = &self.buf;
        if b.len() < 2 {
            return None;
        }
        let (mut len, mut at) = (usize::from(b[1] & 0x7f), 2);
        if len == 126 {
            len = usize::from(u16::from_be_bytes(b.get(2..4)?.try_into().ok()?));
            at = 4;
        } else if len == 127 {
            len = u64::from_be_bytes(b.get(2..10)?.try_into().ok()?) as usize;
            at = 10;
        }
        let payload = b.get(at..at + len)?.to_vec();
        let opcode = b[0] & 0x0f;
        self.buf.drain(..at + len);
        Some((opcode, payload))
    }

    /// Every event id delivered so far, appended to `ids`.
    fn drain_into(&mut self, ids: &mut Vec<i64>) {
        self.fill();
        while let Some((opcode, payload)) = self.frame() {
            assert_ne!(opcode, 8, "host c closed the event feed");
            if opcode != 1 {
                continue;
            }
            let v: Value = serde_json::from_slice(&payload).unwrap();
            for e in v["events"].as_array().into_iter().flatten() {
                ids.push(e["id"].as_i64().expect("event id"));
            }
        }
    }
}

/// Running counts (total, per profile) sampled every [`SAMPLE_EVERY`]
/// until `stop`: the worst seen.
fn sample_ceilings(
    pg: &'static TestCluster,
    db: String,
    stop: Arc<AtomicBool>,
) -> std::thread::JoinHandle<(i64, BTreeMap<String, i64>, usize)> {
    std::thread::spawn(move || {
        let mut c = board_client(pg, &db);
        let (mut worst_total, mut worst, mut samples) = (0, BTreeMap::new(), 0);
        while !stop.load(Ordering::Relaxed) {
            let rows = c
                .query(
                    "SELECT assignee, COUNT(*)::BIGINT FROM tasks WHERE status = 'running' \
                     GROUP BY assignee",
                    &[],
                )
                .unwrap();
            let mut total = 0;
            for r in rows {
                let (profile, n): (Option<String>, i64) = (r.get(0), r.get(1));
                total += n;
                let w = worst.entry(profile.unwrap_or_default()).or_insert(0);
                *w = (*w).max(n);
            }
            worst_total = worst_total.max(total);
            samples += 1;
            std::thread::sleep(SAMPLE_EVERY);
        }
        (worst_total, worst, samples)
    })
}

/// Create the tasks through host c's REST API, spread over the profiles.
fn create_tasks(port: u16) {
    let host = format!("127.0.0.1:{port}");
    for i in 0..TASKS {
        let (profile, _) = PROFILES[i % PROFILES.len()];
        let body = json!({"title": format!("job {i}"), "assignee": profile});
        let r = http(
            port,
            "POST",
            "/api/v1/tasks",
            &[("Host", &host)],
            Some(&body),
        );
        assert!(
            r.status == 200 || r.status == 201,
            "{}: {}",
            r.status,
            r.body
        );
    }
}

fn wait_until(what: &str, wait: Duration, hosts: &[&Host], mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + wait;
    while !done() {
        if Instant::now() > deadline {
            let logs: Vec<String> = hosts
                .iter()
                .map(|h| format!("--- host {} ---\n{}", h.id, h.log_text()))
                .collect();
            panic!("timed out waiting for {what}\n{}", logs.join("\n"));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn three_hosts_share_one_board_and_survive_the_death_of_one() {
    if !namespaces_available() {
        return;
    }
    let Some(pg) = kanban_testkit::postgres::cluster() else {
        return;
    };
    let started = Instant::now();
    let db = pg.unique_database("multihost");
    let url = pg.url(&db);
    let mut init = Sandbox::new();
    init.env.insert(ENV_DATABASE_URL.into(), url.clone());
    let out = init.run(&["init"]);
    assert!(out.status.success(), "{}", kanban_testkit::stderr(&out));

    let mut a = Host::start("host-a", &url, true);
    let b = Host::start("host-b", &url, true);
    let c = Host::start("host-c", &url, false);
    let mut sql = board_client(pg, &db);
    let mut feed = Feed::connect(c.port);
    let mut delivered = Vec::new();

    let stop = Arc::new(AtomicBool::new(false));
    let sampler = sample_ceilings(pg, db.clone(), stop.clone());
    create_tasks(c.port);
    feed.drain_into(&mut delivered);

    // Mid-run: host a dies with every worker of its namespace.
    wait_until(
        "host a to run tasks mid-run",
        RUN_WAIT,
        &[&a, &b, &c],
        || {
            let done = count(&mut sql, "SELECT COUNT(*) FROM tasks WHERE status = 'done'");
            let on_a = count(
                &mut sql,
                "SELECT COUNT(*) FROM tasks WHERE status = 'running' AND claim_lock LIKE 'host-a:%'",
            );
            done >= KILL_AFTER_DONE && on_a > 0
        },
    );
    let orphaned: Vec<String> = sql
        .query(
            "SELECT id FROM tasks WHERE status = 'running' AND claim_lock LIKE 'host-a:%'",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    a.kill_namespace();
    let killed_at = Instant::now();
    assert!(!orphaned.is_empty());

    // Its tasks are finished by the others within the TTL plus a few seconds.
    let dead_host_wait = Duration::from_secs(CLAIM_TTL_SECONDS) + DEAD_HOST_SLACK;
    wait_until(
        "host a's tasks to be finished elsewhere",
        RUN_WAIT,
        &[&b, &c],
        || {
            feed.drain_into(&mut delivered);
            orphaned.iter().all(|id| {
                let n: i64 = sql
                    .query_one(
                        "SELECT COUNT(*) FROM tasks WHERE id = $1 AND status = 'done'",
                        &[id],
                    )
                    .unwrap()
                    .get(0);
                n == 1
            })
        },
    );
    let recovered_in = killed_at.elapsed();
    assert!(
        recovered_in <= dead_host_wait,
        "host a's {} tasks took {recovered_in:?} (> {dead_host_wait:?})",
        orphaned.len()
    );

    wait_until("every task to be done", RUN_WAIT, &[&b, &c], || {
        feed.drain_into(&mut delivered);
        count(&mut sql, "SELECT COUNT(*) FROM tasks WHERE status = 'done'") == TASKS as i64
    });
    stop.store(true, Ordering::Relaxed);
    let (worst_total, worst, samples) = sampler.join().unwrap();

    // Every task done exactly once: one completed run each.
    let completed: Vec<(String, i64)> = sql
        .query(
            "SELECT t.id, COUNT(r.id)::BIGINT FROM tasks t LEFT JOIN task_runs r \
             ON r.task_id = t.id AND r.outcome = 'completed' GROUP BY t.id",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    assert_eq!(completed.len(), TASKS);
    let not_once: Vec<_> = completed.iter().filter(|(_, n)| *n != 1).collect();
    assert!(
        not_once.is_empty(),
        "tasks not completed exactly once: {not_once:?}"
    );

    // No two runs of one task overlap; reclaims counted no failure.
    let mut runs: HashMap<String, Vec<(i64, Option<i64>, i64)>> = HashMap::new();
    for r in sql
        .query(
            "SELECT task_id, started_at, ended_at, id FROM task_runs ORDER BY task_id, id",
            &[],
        )
        .unwrap()
    {
        runs.entry(r.get(0))
            .or_default()
            .push((r.get(1), r.get(2), r.get(3)));
    }
    for (task, spans) in &runs {
        for w in spans.windows(2) {
            let (prev_end, next_start) = (w[0].1, w[1].0);
            assert!(
                prev_end.is_some_and(|e| e <= next_start),
                "runs of {task} overlap: {spans:?}"
            );
        }
    }
    let reclaimed = count(
        &mut sql,
        "SELECT COUNT(*) FROM task_runs WHERE outcome = 'reclaimed'",
    );
    assert!(
        reclaimed >= orphaned.len() as i64,
        "{reclaimed} reclaimed runs"
    );
    let crashed = count(
        &mut sql,
        "SELECT COUNT(*) FROM task_runs WHERE outcome IN ('crashed', 'gave_up')",
    );
    assert_eq!(crashed, 0, "a dead host's runs count as no task's failure");
    // Exactly once: one reclaimed event per reclaimed run of host a.
    let reclaim_events = count(
        &mut sql,
        "SELECT COUNT(*) FROM task_events WHERE kind = 'reclaimed'",
    );
    assert_eq!(reclaim_events, reclaimed);

    // Ceilings held at every sample.
    assert!(samples > 20, "only {samples} samples");
    assert!(
        worst_total <= MAX_IN_PROGRESS,
        "{worst_total} running at once"
    );
    for (profile, limit) in PROFILES {
        let seen = worst.get(profile).copied().unwrap_or(0);
        assert!(seen <= limit, "{profile}: {seen} running (limit {limit})");
    }

    // The hosts registered and renewed their leases; a's has lapsed.
    let leases: BTreeMap<String, i64> = sql
        .query("SELECT host_id, lease_expires FROM kanban_rs_hosts", &[])
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    assert_eq!(
        leases.keys().map(String::as_str).collect::<Vec<_>>(),
        ["host-a", "host-b", "host-c"]
    );

    // Host c's WebSocket client got every event, in order, without a gap.
    let all_ids: Vec<i64> = sql
        .query("SELECT id FROM task_events ORDER BY id", &[])
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    let deadline = Instant::now() + FEED_WAIT;
    while delivered.len() < all_ids.len() && Instant::now() < deadline {
        feed.drain_into(&mut delivered);
    }
    assert_eq!(
        delivered.len(),
        all_ids.len(),
        "the feed missed or repeated events"
    );
    assert!(
        delivered == all_ids,
        "the feed delivered events out of order or with gaps"
    );

    // A worker of host a coming back is refused: its run id is stale.
    let stale_task = &orphaned[0];
    let stale_run: i64 = sql
        .query_one(
            "SELECT id FROM task_runs WHERE task_id = $1 AND outcome = 'reclaimed' \
             ORDER BY id DESC LIMIT 1",
            &[stale_task],
        )
        .unwrap()
        .get(0);
    let before = count(&mut sql, "SELECT COALESCE(MAX(id), 0) FROM task_events");
    let late = b
        .sandbox
        .kanban(["complete", stale_task.as_str(), "--summary", "late"])
        .env("HERMES_KANBAN_TASK", stale_task)
        .env("HERMES_KANBAN_RUN_ID", stale_run.to_string())
        .output()
        .unwrap();
    assert!(!late.status.success(), "a stale worker completed its task");
    let completions =
        format!("SELECT COUNT(*) FROM task_events WHERE id > {before} AND kind = 'completed'");
    assert_eq!(
        count(&mut sql, &completions),
        0,
        "the stale worker changed the board"
    );
    let runs_of = format!(
        "SELECT COUNT(*) FROM task_runs WHERE task_id = '{stale_task}' AND outcome = 'completed'"
    );
    assert_eq!(count(&mut sql, &runs_of), 1);
    eprintln!(
        "multi-host: {TASKS} tasks, {} orphaned by host a, recovered in {recovered_in:?}, \
         {reclaimed} reclaimed, worst running {worst_total} {worst:?} over {samples} samples, \
         {} events, whole test {:?}",
        orphaned.len(),
        all_ids.len(),
        started.elapsed()
    );
    drop(c);
    drop(b);
}
