//! `gateway_bench`: the gateway figures of SPEC §5, measured on a real
//! `kanban gateway run` process in a temporary Hermes root.
//!
//! * Pick-up latency: a task is created from another process (this one,
//!   through its own connection to the board: the gateway learns of it
//!   through the file and the store's poke after the commit, as it would
//!   from a `kanban create`) and the time until its worker process starts
//!   is measured. The worker's first act is a shell builtin `echo` of its
//!   task id into a FIFO, stamped by a thread of this process as it
//!   arrives (the worker has started: its shell runs the script); its
//!   second, writing `date +%s%N` to a file, the marker of the earlier
//!   figures, which adds a fork and an exec of `date` (over a millisecond
//!   on a VM where every process start pays for glibc's `cpuid` probes;
//!   the cross-host figure below uses this mark only). It then completes
//!   its task at once. Tasks are created
//!   one at a time, each after the previous one was picked up, with
//!   `dispatch_interval_seconds: 60` so the internal ticker never helps.
//! * Idle RSS: `VmRSS` of the gateway after it has been idle a few seconds,
//!   freshly started (the figure) and after the latency run (for context).
//!
//! `--backend postgres|both`: the same on a PostgreSQL board (a private
//! server, see `pg.rs`; the gateway and its workers reach it through
//! `HERMES_KANBAN_DATABASE_URL`, the bench creates through its own store).
//!
//! `--hosts N` (PostgreSQL only): pick-up across hosts. N gateways share
//! one PostgreSQL board, each a plain process with its own Hermes root and
//! `KANBAN_HOST_ID` (host-1 … host-N; no namespaces needed for the figure);
//! tasks are created by a further "host" (this process's own connection,
//! or `kanban create` processes with `--via-cli`), and the time from the
//! create's commit to the start of its worker is measured on whichever
//! gateway spawned it, with how the tasks spread over the hosts and every
//! gateway's RSS.
//!
//! `cargo run --release -p kanban-bench --bin gateway_bench`

#[path = "../pg.rs"]
mod pg;

use std::collections::HashMap;
use std::ffi::CString;
use std::io::{BufRead, BufReader};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, bail};
use clap::Parser;
use kanban_hermes::host::ENV_HOST_ID;
use kanban_store::backend::{BoardLocation, OpenRequest, open_board};
use kanban_store::{NewTask, Store};
use pg::{Backend, PgServer};

/// SPEC §5 targets.
const PICKUP_P99_TARGET_MS: f64 = 250.0;
/// Issue 14's targets for the same pick-up.
const PICKUP_P50_FAST_TARGET_MS: f64 = 5.0;
const PICKUP_P99_FAST_TARGET_MS: f64 = 15.0;
/// The FIFO of the workers' first marks, in the marks directory.
const START_FIFO: &str = "started.fifo";
const IDLE_RSS_TARGET_MB: f64 = 30.0;
/// Longest wait for one pick-up before the run is declared broken.
const PICKUP_TIMEOUT: Duration = Duration::from_secs(10);
const READY_TIMEOUT: Duration = Duration::from_secs(15);
const POLL: Duration = Duration::from_millis(1);
const PROFILE: &str = "bench";

#[derive(Parser, Debug)]
#[command(about = "Measure the gateway's pick-up latency and idle memory")]
struct Args {
    /// Tasks created (one at a time) for the latency figure.
    #[arg(long, default_value_t = 200)]
    tasks: usize,
    /// Pause between a pick-up and the next create (ms).
    #[arg(long, default_value_t = 20)]
    gap_ms: u64,
    /// Idle time before reading the gateway's RSS (s).
    #[arg(long, default_value_t = 5)]
    idle_seconds: u64,
    /// Create tasks with `kanban create` processes instead of this
    /// process's own connection (adds the CLI's exit to the figure's start).
    #[arg(long)]
    via_cli: bool,
    /// The kanban binary (default: `kanban` next to this executable, built if missing).
    #[arg(long)]
    kanban: Option<PathBuf>,
    /// Which store backends to measure.
    #[arg(long, value_enum, default_value_t = Backend::Sqlite)]
    backend: Backend,
    /// Gateways ("hosts") sharing one PostgreSQL board: the cross-host
    /// pick-up figure instead of the single-gateway ones (needs
    /// `--backend postgres`).
    #[arg(long)]
    hosts: Option<usize>,
}

/// Issue target of the cross-host pick-up (p99).
const CROSS_HOST_P99_TARGET_MS: f64 = 100.0;

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn kanban_binary(args: &Args) -> Result<PathBuf> {
    if let Some(p) = &args.kanban {
        // Absolute: the workers' script runs it from their workspaces.
        return std::fs::canonicalize(p)
            .with_context(|| format!("--kanban {}: not found", p.display()));
    }
    let bin = std::env::current_exe()?.with_file_name("kanban");
    if !bin.exists() || cfg!(debug_assertions) {
        // Same profile as this harness: a release run measures a release binary.
        let mut cargo = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
        cargo
            .current_dir(repo_root())
            .args(["build", "-p", "kanban", "--bin", "kanban"]);
        if !cfg!(debug_assertions) {
            cargo.arg("--release");
        }
        if !cargo.status().context("cargo build -p kanban")?.success() {
            bail!("cargo build -p kanban failed");
        }
    }
    Ok(bin)
}

fn now_ns() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0)
}

/// A `kanban gateway run` child; killed on drop.
struct GatewayProc(Child);

impl Drop for GatewayProc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl GatewayProc {
    fn pid(&self) -> u32 {
        self.0.id()
    }

    fn rss_kb(&self) -> Result<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid()))?;
        status
            .lines()
            .find(|l| l.starts_with("VmRSS:"))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .context("no VmRSS in /proc/<pid>/status")
    }
}

struct Bench {
    root: tempfile::TempDir,
    kanban: PathBuf,
    marks: PathBuf,
    /// The board's PostgreSQL URL; `None`: the root's SQLite file.
    db_url: Option<String>,
    /// `KANBAN_HOST_ID` of this root's processes (multi-host mode).
    host: Option<String>,
}

impl Bench {
    /// One gateway's root, its workers marking their start in a FIFO
    /// first (see [`StartFifo`]).
    fn new(kanban: PathBuf, db_url: Option<String>) -> Result<(Bench, StartFifo)> {
        let bench = Bench::on_host(kanban, db_url, None, None)?;
        let fifo = StartFifo::open(&bench.marks.join(START_FIFO))?;
        Ok((bench, fifo))
    }

    /// A Hermes root of its own as host `host`, its workers' marks in
    /// `marks` (shared by the hosts) or its own directory.
    fn on_host(
        kanban: PathBuf,
        db_url: Option<String>,
        host: Option<String>,
        marks: Option<&Path>,
    ) -> Result<Bench> {
        let root = tempfile::Builder::new()
            .prefix("kanban-gw-bench-")
            .tempdir()?;
        let marks = marks.map_or_else(|| root.path().join("marks"), Path::to_path_buf);
        std::fs::create_dir_all(&marks)?;
        let q = |p: &str| format!("'{}'", p.replace('\'', r"'\''"));
        // Mark the start in the FIFO when there is one (builtins only),
        // then with `date` (and which host started it), then finish through
        // the CLI like a real worker.
        let fifo = marks.join(START_FIFO);
        let script = format!(
            "[ -p {fifo} ] && echo \"$HERMES_KANBAN_TASK\" > {fifo}\n\
             echo \"$(date +%s%N) \"{host} > {marks}/\"$HERMES_KANBAN_TASK\"\n\
             exec {kanban} complete \"$HERMES_KANBAN_TASK\" --summary bench >/dev/null\n",
            fifo = q(&fifo.display().to_string()),
            host = q(host.as_deref().unwrap_or("local")),
            marks = q(&marks.display().to_string()),
            kanban = q(&kanban.display().to_string()),
        );
        let script_path = root.path().join("worker.sh");
        std::fs::write(&script_path, script)?;
        let config = format!(
            "kanban:\n  dispatch_interval_seconds: 60\n  profiles:\n    {PROFILE}:\n      command: [\"/bin/sh\", \"{}\"]\n",
            script_path.display()
        );
        std::fs::write(root.path().join("config.yaml"), config)?;
        Ok(Bench {
            root,
            kanban,
            marks,
            db_url,
            host,
        })
    }

    fn location(&self) -> Result<BoardLocation> {
        Ok(match &self.db_url {
            Some(url) => BoardLocation::parse(url)?,
            None => BoardLocation::sqlite(self.root.path().join("kanban.db")),
        })
    }

    fn kanban(&self) -> Command {
        let mut cmd = Command::new(&self.kanban);
        for var in [
            "HERMES_KANBAN_HOME",
            "HERMES_KANBAN_DB",
            "HERMES_KANBAN_BOARD",
            "HERMES_KANBAN_DISPATCH_IN_GATEWAY",
        ] {
            cmd.env_remove(var);
        }
        cmd.env("HERMES_HOME", self.root.path())
            .stdin(Stdio::null());
        match &self.db_url {
            Some(url) => cmd.env("HERMES_KANBAN_DATABASE_URL", url),
            None => cmd.env_remove("HERMES_KANBAN_DATABASE_URL"),
        };
        match &self.host {
            Some(host) => cmd.env(ENV_HOST_ID, host),
            None => cmd.env_remove(ENV_HOST_ID),
        };
        cmd
    }

    fn start_gateway(&self) -> Result<GatewayProc> {
        let log = std::fs::File::create(self.root.path().join("gateway.out"))?;
        let child = self
            .kanban()
            .args(["gateway", "run", "--port", "0"])
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .context("cannot start the gateway")?;
        let gw = GatewayProc(child);
        let state = self.root.path().join("kanban/gateway.json");
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            let pid = std::fs::read_to_string(&state)
                .ok()
                .and_then(|s| serde_json::from_str::<serde_json::Value>(&s).ok())
                .and_then(|v| v["pid"].as_u64());
            if pid == Some(u64::from(gw.pid())) {
                return Ok(gw);
            }
            if Instant::now() > deadline {
                bail!("the gateway did not start; see {}", state.display());
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Create one task; returns its id and the commit time (ns).
    fn create(&self, store: &dyn Store, via_cli: bool, i: usize) -> Result<(String, u128)> {
        let title = format!("bench {i}");
        if via_cli {
            let out = self
                .kanban()
                .args(["create", &title, "--assignee", PROFILE, "--json"])
                .output()?;
            let at = now_ns();
            if !out.status.success() {
                bail!("kanban create: {}", String::from_utf8_lossy(&out.stderr));
            }
            let v: serde_json::Value = serde_json::from_slice(&out.stdout)?;
            let id = v["id"].as_str().context("no id")?.to_string();
            return Ok((id, at));
        }
        let req = NewTask {
            title,
            assignee: Some(PROFILE.into()),
            ..NewTask::default()
        };
        let id = store.create_task(&req)?.task.id;
        Ok((id, now_ns()))
    }

    /// Wait for the worker of `id` to write its start time.
    fn worker_start(&self, id: &str) -> Result<u128> {
        Ok(self.worker_start_on(id)?.0)
    }

    /// Wait for the worker of `id` to write its start time; with the host
    /// that started it.
    fn worker_start_on(&self, id: &str) -> Result<(u128, String)> {
        let mark = self.marks.join(id);
        let deadline = Instant::now() + PICKUP_TIMEOUT;
        loop {
            // Complete once its line ends (the shell writes it in one go).
            let line = std::fs::read_to_string(&mark)
                .ok()
                .filter(|s| s.ends_with('\n'));
            let parsed = line.as_deref().and_then(|s| {
                let mut words = s.split_whitespace();
                let ns = words.next()?.parse::<u128>().ok()?;
                Some((ns, words.next().unwrap_or("").to_string()))
            });
            if let Some(found) = parsed {
                return Ok(found);
            }
            if Instant::now() > deadline {
                bail!(
                    "task {id} was not picked up within {}s",
                    PICKUP_TIMEOUT.as_secs()
                );
            }
            std::thread::sleep(POLL);
        }
    }
}

/// The workers' first marks: each writes its task id to this FIFO with a
/// shell builtin, and a thread of this process stamps every line as it
/// arrives. No process is started for the mark, so the figure is the
/// pick-up itself; the thread's own wake-up is in it.
struct StartFifo {
    stamps: mpsc::Receiver<(String, u128)>,
    early: HashMap<String, u128>,
}

impl StartFifo {
    fn open(path: &Path) -> Result<StartFifo> {
        let c_path = CString::new(path.as_os_str().as_bytes())?;
        // SAFETY: a valid NUL-terminated path.
        if unsafe { libc::mkfifo(c_path.as_ptr(), 0o600) } != 0 {
            let e = std::io::Error::last_os_error();
            bail!("mkfifo {}: {e}", path.display());
        }
        // Read and write: the open never waits for a writer, and the read
        // end sees no end-of-file between one worker and the next.
        let fifo = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)
            .with_context(|| format!("opening {}", path.display()))?;
        let (tx, stamps) = mpsc::channel();
        let shown = path.display().to_string();
        std::thread::Builder::new()
            .name("start-fifo".into())
            .spawn(move || {
                let mut lines = BufReader::new(fifo);
                let mut line = String::new();
                loop {
                    match lines.read_line(&mut line) {
                        Ok(0) => break,
                        Ok(_) => {}
                        Err(e) => {
                            // `wait` then fails on its timeout; say why.
                            eprintln!("gateway_bench: reading {shown}: {e}");
                            break;
                        }
                    }
                    if tx.send((line.trim().to_string(), now_ns())).is_err() {
                        break;
                    }
                    line.clear();
                }
            })?;
        Ok(StartFifo {
            stamps,
            early: HashMap::new(),
        })
    }

    /// When the worker of `id` wrote its first mark.
    fn wait(&mut self, id: &str) -> Result<u128> {
        let deadline = Instant::now() + PICKUP_TIMEOUT;
        loop {
            if let Some(at) = self.early.remove(id) {
                return Ok(at);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            let (task, at) = self
                .stamps
                .recv_timeout(left)
                .with_context(|| format!("no first mark from the worker of {id}"))?;
            self.early.insert(task, at);
        }
    }
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn mark(ok: bool) -> &'static str {
    if ok { "✅" } else { "❌" }
}

/// A pick-up figure against issue 14's target, judged on SQLite only.
fn fast_target_cell(f: &Figures, ms: f64, target_ms: f64) -> String {
    if f.sqlite {
        format!("{ms:.1} ms {}", mark(ms < target_ms))
    } else {
        format!("{ms:.1} ms")
    }
}

/// The figures of one backend.
struct Figures {
    /// On the embedded SQLite board, the one issue 14's targets are for.
    sqlite: bool,
    /// To the worker's first mark (FIFO).
    first_p50: f64,
    first_p99: f64,
    /// To its `date` mark.
    p50: f64,
    p99: f64,
    max: f64,
    idle_mb: f64,
    after_mb: f64,
}

fn measure(args: &Args, kanban: &Path, db_url: Option<String>) -> Result<Figures> {
    let (bench, mut fifo) = Bench::new(kanban.to_path_buf(), db_url)?;
    if bench.db_url.is_some() {
        // The board exists before the gateway starts, as after `kanban init`.
        drop(open_board(&bench.location()?, &OpenRequest::create())?);
    }
    let gw = bench.start_gateway()?;
    std::thread::sleep(Duration::from_secs(args.idle_seconds));
    let idle_mb = gw.rss_kb()? as f64 / 1024.0;

    let store = open_board(&bench.location()?, &OpenRequest::create())?.store();
    let mut ms = Vec::with_capacity(args.tasks);
    let mut first_ms = Vec::with_capacity(args.tasks);
    for i in 0..args.tasks {
        let (id, created) = bench.create(&*store, args.via_cli, i)?;
        let started = bench.worker_start(&id)?;
        let first = fifo.wait(&id)?;
        ms.push(started.saturating_sub(created) as f64 / 1e6);
        first_ms.push(first.saturating_sub(created) as f64 / 1e6);
        std::thread::sleep(Duration::from_millis(args.gap_ms));
    }
    ms.sort_by(f64::total_cmp);
    first_ms.sort_by(f64::total_cmp);
    std::thread::sleep(Duration::from_secs(args.idle_seconds));
    let after_mb = gw.rss_kb()? as f64 / 1024.0;
    drop(gw);
    Ok(Figures {
        sqlite: bench.db_url.is_none(),
        first_p50: percentile(&first_ms, 50.0),
        first_p99: percentile(&first_ms, 99.0),
        p50: percentile(&ms, 50.0),
        p99: percentile(&ms, 99.0),
        max: ms[ms.len() - 1],
        idle_mb,
        after_mb,
    })
}

/// The cross-host figures: latencies, which host spawned each task, and
/// every gateway's RSS (fresh, after the run).
struct HostFigures {
    p50: f64,
    p99: f64,
    max: f64,
    /// Per host: its id, tasks it spawned, RSS fresh and after (MiB).
    hosts: Vec<(String, usize, f64, f64)>,
}

/// `hosts` gateways on one PostgreSQL board, tasks created by another.
fn measure_hosts(args: &Args, kanban: &Path, db_url: String, hosts: usize) -> Result<HostFigures> {
    let marks = tempfile::Builder::new()
        .prefix("kanban-gw-bench-marks-")
        .tempdir()?;
    let roots: Vec<Bench> = (1..=hosts)
        .map(|i| {
            Bench::on_host(
                kanban.to_path_buf(),
                Some(db_url.clone()),
                Some(format!("host-{i}")),
                Some(marks.path()),
            )
        })
        .collect::<Result<_>>()?;
    let creator = Bench::on_host(
        kanban.to_path_buf(),
        Some(db_url),
        Some("creator".into()),
        Some(marks.path()),
    )?;
    // The board exists before the gateways start, as after `kanban init`.
    drop(open_board(&creator.location()?, &OpenRequest::create())?);
    let gateways: Vec<GatewayProc> = roots
        .iter()
        .map(Bench::start_gateway)
        .collect::<Result<_>>()?;
    std::thread::sleep(Duration::from_secs(args.idle_seconds));
    let fresh: Vec<f64> = gateways
        .iter()
        .map(|g| Ok(g.rss_kb()? as f64 / 1024.0))
        .collect::<Result<_>>()?;
    let store = open_board(&creator.location()?, &OpenRequest::create())?.store();
    let mut ms = Vec::with_capacity(args.tasks);
    let mut spawned_by: Vec<usize> = vec![0; hosts];
    for i in 0..args.tasks {
        let (id, created) = creator.create(&*store, args.via_cli, i)?;
        let (started, host) = creator.worker_start_on(&id)?;
        ms.push(started.saturating_sub(created) as f64 / 1e6);
        let at = roots
            .iter()
            .position(|r| r.host.as_deref() == Some(host.as_str()))
            .with_context(|| format!("task {id} started on unknown host {host:?}"))?;
        spawned_by[at] += 1;
        std::thread::sleep(Duration::from_millis(args.gap_ms));
    }
    ms.sort_by(f64::total_cmp);
    std::thread::sleep(Duration::from_secs(args.idle_seconds));
    let mut per_host = Vec::with_capacity(hosts);
    for (i, g) in gateways.iter().enumerate() {
        per_host.push((
            roots[i].host.clone().unwrap_or_default(),
            spawned_by[i],
            fresh[i],
            g.rss_kb()? as f64 / 1024.0,
        ));
    }
    drop(gateways);
    Ok(HostFigures {
        p50: percentile(&ms, 50.0),
        p99: percentile(&ms, 99.0),
        max: ms[ms.len() - 1],
        hosts: per_host,
    })
}

/// `--hosts N`: the cross-host table.
fn run_hosts(args: &Args, kanban: &Path, hosts: usize) -> Result<()> {
    if hosts == 0 {
        bail!("--hosts must be at least 1");
    }
    if args.backend != Backend::Postgres {
        bail!("--hosts needs --backend postgres (hosts share a PostgreSQL board)");
    }
    let pg = PgServer::start()?;
    let url = pg.url(&pg.new_board("gateway")?);
    let f = measure_hosts(args, kanban, url, hosts)?;
    let how = if args.via_cli {
        "`kanban create` processes"
    } else {
        "another process's connection"
    };
    println!(
        "gateway_bench --hosts {hosts}: {} tasks created one at a time by {how} (host \"creator\"); \
         {hosts} gateways, one Hermes root and KANBAN_HOST_ID each; dispatch_interval_seconds: 60; \
         {}; PostgreSQL {}",
        args.tasks,
        kanban.display(),
        pg.version()
    );
    println!();
    println!("| figure | kanban, PostgreSQL, {hosts} hosts | target |");
    println!("| --- | --- | --- |");
    println!(
        "| created on one host → worker started on any, p50 | {:.1} ms | |",
        f.p50
    );
    println!(
        "| created on one host → worker started on any, p99 | {:.1} ms {} | p99 < {CROSS_HOST_P99_TARGET_MS:.0} ms |",
        f.p99,
        mark(f.p99 < CROSS_HOST_P99_TARGET_MS)
    );
    println!(
        "| created on one host → worker started on any, max | {:.1} ms | |",
        f.max
    );
    for (host, spawned, fresh, after) in &f.hosts {
        println!(
            "| {host}: tasks spawned; gateway RSS fresh / after ({} s idle) | {spawned}; {fresh:.1} / {after:.1} MiB {} | < {IDLE_RSS_TARGET_MB:.0} MB |",
            args.idle_seconds,
            mark(*fresh < IDLE_RSS_TARGET_MB)
        );
    }
    Ok(())
}

fn main() -> Result<()> {
    let args = Args::parse();
    if args.tasks == 0 {
        bail!("--tasks must be at least 1");
    }
    let kanban = kanban_binary(&args)?;
    if let Some(hosts) = args.hosts {
        return run_hosts(&args, &kanban, hosts);
    }
    let sqlite = if args.backend.sqlite() {
        Some(measure(&args, &kanban, None)?)
    } else {
        None
    };
    let server = if args.backend.postgres() {
        Some(PgServer::start()?)
    } else {
        None
    };
    let postgres = match &server {
        Some(pg) => Some(measure(
            &args,
            &kanban,
            Some(pg.url(&pg.new_board("gateway")?)),
        )?),
        None => None,
    };
    let how = if args.via_cli {
        "`kanban create` process"
    } else {
        "another process's connection"
    };
    println!(
        "gateway_bench: {} tasks created one at a time by {how}; \
         dispatch_interval_seconds: 60; {}{}",
        args.tasks,
        kanban.display(),
        server
            .as_ref()
            .map_or_else(String::new, |p| format!("; PostgreSQL {}", p.version()))
    );
    println!();
    let columns: Vec<(&str, &Figures)> = [("SQLite", &sqlite), ("PostgreSQL", &postgres)]
        .into_iter()
        .filter_map(|(name, f)| f.as_ref().map(|f| (name, f)))
        .collect();
    let head: Vec<String> = columns
        .iter()
        .map(|(n, _)| format!("kanban, {n}"))
        .collect();
    println!("| figure | {} | target |", head.join(" | "));
    println!("| --- |{} --- |", " --- |".repeat(columns.len()));
    let line = |figure: &str, cell: &dyn Fn(&Figures) -> String, target: &str| {
        let cells: Vec<String> = columns.iter().map(|(_, f)| cell(f)).collect();
        println!("| {figure} | {} | {target} |", cells.join(" | "));
    };
    line(
        "ready → worker started (its shell's first line), p50",
        &|f| fast_target_cell(f, f.first_p50, PICKUP_P50_FAST_TARGET_MS),
        &format!("p50 < {PICKUP_P50_FAST_TARGET_MS:.0} ms (issue 14, SQLite)"),
    );
    line(
        "ready → worker started (its shell's first line), p99",
        &|f| fast_target_cell(f, f.first_p99, PICKUP_P99_FAST_TARGET_MS),
        &format!("p99 < {PICKUP_P99_FAST_TARGET_MS:.0} ms (issue 14, SQLite)"),
    );
    line(
        "ready → worker started (`date` mark), p50",
        &|f| format!("{:.1} ms", f.p50),
        "",
    );
    line(
        "ready → worker started (`date` mark), p99",
        &|f| format!("{:.1} ms {}", f.p99, mark(f.p99 < PICKUP_P99_TARGET_MS)),
        &format!("p99 < {PICKUP_P99_TARGET_MS:.0} ms"),
    );
    line(
        "ready → worker started (`date` mark), max",
        &|f| format!("{:.1} ms", f.max),
        "",
    );
    line(
        &format!("gateway idle RSS (fresh, {} s idle)", args.idle_seconds),
        &|f| {
            format!(
                "{:.1} MiB {}",
                f.idle_mb,
                mark(f.idle_mb < IDLE_RSS_TARGET_MB)
            )
        },
        &format!("< {IDLE_RSS_TARGET_MB:.0} MB"),
    );
    line(
        &format!(
            "gateway idle RSS (after {} tasks, {} s idle)",
            args.tasks, args.idle_seconds
        ),
        &|f| format!("{:.1} MiB", f.after_mb),
        "",
    );
    Ok(())
}
