//! `kanban gateway run|start|stop|status`: the long-running host of the
//! REST/WebSocket API and the embedded dispatcher (one per root).
//!
//! `run` serves in the foreground until SIGTERM/SIGINT; `start` re-executes
//! this binary with `gateway run` in the background (output appended to
//! `<root>/kanban/logs/gateway.log`) and waits until it listens; `stop`
//! sends SIGTERM to the pid in `<root>/kanban/gateway.pid` and waits until
//! that process has exited; `status` reports the gateway holding the root's
//! dispatcher lock once its `gateway.json` is published. With `--demo`
//! they run on a root of the demo's own (`gateway_demo`).

use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};
use clap::{Args, Subcommand};
use kanban_hermes::config::KanbanConfig;
use kanban_hermes::layout::{ProcessEnv, Root};
use kanban_server::demo;
use kanban_server::lock::{current_record, dispatcher_lock_held, log_path, read_pid, read_record};
use kanban_server::logging::{GatewayLogConfig, LogFormat, LogSettings};
use kanban_server::{Gateway, GatewayConfig, GatewayError};
use serde_json::json;

#[path = "gateway_demo.rs"]
mod gateway_demo;
use gateway_demo::{DemoArgs, DemoLife, DemoRoot, demo_overlay, seed_demo};
#[path = "gateway_exits.rs"]
mod gateway_exits;
#[path = "gateway_pass.rs"]
mod gateway_pass;
use gateway_pass::{IdentityEnder, KanbanPass};

/// `gateway.log` is private like every file under the root (SPEC §4).
const PRIVATE_LOG_MODE: u32 = 0o600;
/// How long `start` waits for the background gateway to listen.
const START_TIMEOUT: Duration = Duration::from_secs(10);
/// How long `stop` waits for the gateway process to exit (its own grace
/// for open requests and the current pass is far shorter).
const STOP_TIMEOUT: Duration = Duration::from_secs(10);
/// How long `status` waits for a gateway that holds the lock but has not
/// published its `gateway.json` yet (it is binding its port).
const STATUS_SETTLE: Duration = Duration::from_secs(2);
const WAIT_POLL: Duration = Duration::from_millis(50);
/// `stop` polls the process this often (short: the exit is usually quick).
const STOP_POLL: Duration = Duration::from_millis(10);

/// Run the API server and the embedded dispatcher.
#[derive(Debug, Subcommand)]
pub enum GatewayCommand {
    /// Run in the foreground until SIGTERM/SIGINT (Ctrl-C).
    Run(RunArgs),
    /// Start in the background; output goes to <root>/kanban/logs/gateway.log.
    Start(RunArgs),
    /// Stop the running gateway (SIGTERM to the pid in <root>/kanban/gateway.pid).
    Stop,
    /// Report whether a gateway runs for this root, and where it listens.
    Status(StatusArgs),
}

#[derive(Debug, Clone, Args)]
pub struct RunArgs {
    /// Address to listen on (default 127.0.0.1, or kanban.gateway.host).
    /// Any non-loopback address requires a token.
    #[arg(long)]
    pub host: Option<String>,
    /// Port to listen on (default 8765, or kanban.gateway.port; 0 = any free port).
    #[arg(long)]
    pub port: Option<u16>,
    /// Bearer token required on every request (else $KANBAN_GATEWAY_TOKEN,
    /// else kanban.gateway.token).
    #[arg(long)]
    pub token: Option<String>,
    /// Without a token, requests whose Host is not a loopback name or
    /// address get 403 (a DNS-rebinding guard). Serve this host name too
    /// (`name` = any port, `name:port` = that port); repeatable, added to
    /// kanban.gateway.allowed_hosts.
    #[arg(long = "allowed-host", value_name = "HOST")]
    pub allowed_hosts: Vec<String>,
    /// Log format: `text` (time, level, message, key=value fields) or
    /// `json` (one JSON object per line); default kanban.gateway.log_format,
    /// else text. The level comes from RUST_LOG (e.g. `debug`, `warn`), else
    /// kanban.gateway.log_level, else info.
    #[arg(long, value_name = "FORMAT", value_parser = parse_log_format)]
    pub log_format: Option<LogFormat>,
    #[command(flatten)]
    pub demo: DemoArgs,
}

#[derive(Debug, Clone, Args)]
pub struct StatusArgs {
    /// Machine-readable output.
    #[arg(long)]
    pub json: bool,
}

pub fn run(cmd: GatewayCommand, root: &Root) -> Result<i32> {
    match cmd {
        GatewayCommand::Run(args) if args.demo.enabled => {
            // Held until the gateway has stopped: a throwaway root goes with it.
            let demo = DemoRoot::create(args.demo.root.as_deref(), DemoLife::Process)?;
            run_foreground(args, demo.root())
        }
        GatewayCommand::Run(args) => run_foreground(args, root),
        GatewayCommand::Start(args) if args.demo.enabled => {
            let demo = DemoRoot::create(args.demo.root.as_deref(), DemoLife::Kept)?;
            let mut args = args;
            // The background gateway must run on this very root.
            args.demo.root = Some(demo.root().path().to_path_buf());
            start(args, demo.root())
        }
        GatewayCommand::Start(args) => start(args, root),
        GatewayCommand::Stop => stop(root),
        GatewayCommand::Status(args) => status(args, root),
    }
}

fn run_foreground(args: RunArgs, root: &Root) -> Result<i32> {
    let mut pass = KanbanPass::default();
    // Exit records let a restarted gateway (after a crash or `kill -9`)
    // tell a worker's exit 0 / 75 from a crash.
    pass.worker_wrapper = crate::worker_process::worker_exec_prefix();
    pass.start_fork_server();
    // Worker logs and scratch workspaces from pools made ahead by
    // background threads, off the pass (`kanban_dispatch::spare`).
    kanban_dispatch::spare::enable();
    let mut demo_exe = None;
    let demo_args = args.demo.clone();
    if args.demo.enabled {
        if refuse_second_gateway(root) {
            return Ok(1);
        }
        pass.overlay = demo_overlay(root);
        demo_exe = Some(std::env::current_exe().context("cannot locate the kanban executable")?);
    }
    let config = KanbanConfig::load(root, &ProcessEnv)?;
    let log = LogSettings::from_env(args.log_format, &log_config(&config, root)?);
    kanban_server::logging::install(&log)?;
    let mut cfg = GatewayConfig::resolve(root.clone(), args.host, args.port, args.token, &config);
    cfg.dispatch = Some(Arc::new(pass));
    cfg.allowed_hosts = args.allowed_hosts;
    cfg.workers = Some(Arc::new(IdentityEnder::new()));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("kanban-gateway")
        .build()
        .context("cannot start the async runtime")?;
    let served = runtime.block_on(serve(cfg, root, demo_exe, demo_args));
    // Blocking threads of an unfinished pass must not delay the exit.
    runtime.shutdown_timeout(Duration::from_millis(200));
    served.map(|()| 0)
}

/// What a port that cannot be bound (usually: in use) needs to hear.
const PORT_BUSY_HINT: &str =
    "another program (another gateway?) may hold it: pass --port N, or --port 0 for any free port";

/// Start (lock, boards, port), then seed the demo and start its feeder if
/// asked (so a gateway that cannot start leaves no demo task behind), print
/// the URL, serve until SIGTERM or SIGINT, stop (the feeder first).
async fn serve(
    cfg: GatewayConfig,
    root: &Root,
    demo_exe: Option<PathBuf>,
    demo_args: DemoArgs,
) -> Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    // Installed first: a signal during start-up still stops us cleanly
    // (and so removes a throwaway demo root).
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let gw = Gateway::start(cfg).await.map_err(|e| match e {
        GatewayError::Bind { .. } => anyhow::anyhow!("{e}; {PORT_BUSY_HINT}"),
        e => e.into(),
    })?;
    let mut feeder = None;
    if let Some(exe) = demo_exe {
        let root = root.clone();
        let seeded = tokio::task::spawn_blocking(move || seed_demo(&root, &exe, &demo_args))
            .await
            .context("seeding the demo board panicked")
            .and_then(|r| r);
        match seeded {
            Ok(f) => feeder = f,
            Err(e) => {
                gw.stop().await;
                return Err(e);
            }
        }
    }
    println!(
        "kanban gateway listening on {} (dispatcher: {})",
        gw.url(),
        if gw.dispatching() { "on" } else { "off" }
    );
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
    tracing::info!("kanban gateway: stopping");
    if let Some(f) = feeder {
        // Joins its thread: at most one tick's store calls.
        let _ = tokio::task::spawn_blocking(move || f.stop()).await;
    }
    gw.stop().await;
    Ok(())
}

/// Print who holds the root's gateway lock; true when someone does.
fn refuse_second_gateway(root: &Root) -> bool {
    if !dispatcher_lock_held(root) {
        return false;
    }
    let at = read_record(root)
        .map(|r| format!(" at {}", r.url))
        .unwrap_or_default();
    let pid = read_pid(root)
        .map(|p| format!(" (pid {p})"))
        .unwrap_or_default();
    eprintln!(
        "kanban: a gateway is already running for {}{pid}{at}",
        root.path().display()
    );
    true
}

fn parse_log_format(s: &str) -> std::result::Result<LogFormat, String> {
    s.parse()
}

/// The log keys of `config.yaml`; a bad one is refused like a bad flag.
fn log_config(config: &KanbanConfig, root: &Root) -> Result<GatewayLogConfig> {
    kanban_hermes::gateway_log::gateway_log_config(&config.gateway, &root.config_file())
        .map_err(|e| crate::error::usage(e.to_string()))
}

fn start(args: RunArgs, root: &Root) -> Result<i32> {
    if refuse_second_gateway(root) {
        return Ok(1);
    }
    // Refused here, not by the background gateway.
    if let Ok(config) = KanbanConfig::load(root, &ProcessEnv) {
        log_config(&config, root)?;
    }
    let log = log_path(root);
    if let Some(dir) = log.parent() {
        kanban_hermes::layout::create_private_dir(dir)?;
    }
    let out = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(PRIVATE_LOG_MODE)
        .open(&log)
        .with_context(|| format!("cannot open {}", log.display()))?;
    // Where this child's output starts, to quote it if it fails.
    let log_start = out.metadata().map(|m| m.len()).unwrap_or(0);
    let exe = std::env::current_exe().context("cannot locate the kanban executable")?;
    let mut cmd = Command::new(exe);
    cmd.args(["gateway", "run"]);
    if let Some(h) = &args.host {
        cmd.args(["--host", h]);
    }
    if let Some(p) = args.port {
        cmd.args(["--port", &p.to_string()]);
    }
    for h in &args.allowed_hosts {
        cmd.args(["--allowed-host", h]);
    }
    if let Some(f) = args.log_format {
        cmd.args(["--log-format", f.as_str()]);
    }
    args.demo.forward(&mut cmd);
    // The token travels in the environment, never in argv (visible in ps).
    if let Some(t) = &args.token {
        cmd.env(kanban_server::ENV_GATEWAY_TOKEN, t);
    }
    // The child must resolve the same root whatever our env says.
    cmd.env(kanban_hermes::layout::ENV_KANBAN_HOME, root.path());
    // And the same database (`--db` included), through its environment:
    // the URL may hold a password, which argv would show to everyone.
    if let Some(db) = root.database() {
        cmd.env(
            kanban_hermes::layout::ENV_KANBAN_DATABASE_URL,
            db.connection_url(),
        );
    }
    {
        use std::os::unix::process::CommandExt;
        // Own process group: a Ctrl-C in this terminal must not reach it.
        cmd.process_group(0);
    }
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(out.try_clone()?)
        .stderr(out)
        .spawn()
        .context("cannot start the gateway process")?;
    let pid = child.id();
    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        if let Some(rec) = read_record(root).filter(|r| r.pid == pid) {
            println!("kanban gateway started (pid {pid}) at {}", rec.url);
            println!("logs: {}", log.display());
            if args.demo.enabled {
                println!(
                    "demo: board '{}' is running; watch it with `{}={} kanban --board {} watch`, \
                     stop it with `{}={} kanban gateway stop`",
                    demo::DEMO_BOARD,
                    kanban_hermes::layout::ENV_KANBAN_HOME,
                    root.path().display(),
                    demo::DEMO_BOARD,
                    kanban_hermes::layout::ENV_KANBAN_HOME,
                    root.path().display(),
                );
            }
            return Ok(0);
        }
        if let Some(code) = child.try_wait()? {
            bail!(
                "the gateway exited at start-up ({code}); see {}{}",
                log.display(),
                output_since(&log, log_start)
            );
        }
        if Instant::now() > deadline {
            bail!(
                "the gateway (pid {pid}) did not start listening in time; see {}",
                log.display()
            );
        }
        std::thread::sleep(WAIT_POLL);
    }
}

/// What a failed start wrote to its log (last lines), to quote it.
fn output_since(log: &std::path::Path, start: u64) -> String {
    use std::io::{Read, Seek, SeekFrom};
    const MAX_LINES: usize = 20;
    let mut text = String::new();
    if let Ok(mut f) = std::fs::File::open(log) {
        let _ = f.seek(SeekFrom::Start(start));
        let _ = f.read_to_string(&mut text);
    }
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    if lines.is_empty() {
        return String::new();
    }
    let tail = &lines[lines.len().saturating_sub(MAX_LINES)..];
    format!(":\n{}", tail.join("\n"))
}

fn stop(root: &Root) -> Result<i32> {
    let pid = read_pid(root);
    if !dispatcher_lock_held(root) {
        if pid.is_some() {
            // A gateway killed with -9 leaves its pidfile behind.
            let _ = std::fs::remove_file(kanban_server::lock::pidfile_path(root));
            let _ = std::fs::remove_file(kanban_server::lock::state_path(root));
        }
        eprintln!(
            "kanban: no gateway is running for {}",
            root.path().display()
        );
        return Ok(1);
    }
    let Some(pid) = pid else {
        bail!(
            "the gateway lock of {} is held by a process without a pidfile (a Hermes gateway?); \
             stop it with its own tooling",
            root.path().display()
        );
    };
    use nix::sys::signal::{Signal, kill};
    let raw = i32::try_from(pid).context("bad pid in pidfile")?;
    // Remember which process we signal: once it is gone its pid may be
    // reused, and "still running" must not mean "a new process".
    let started = process_start_time(raw);
    kill(nix::unistd::Pid::from_raw(raw), Signal::SIGTERM)
        .with_context(|| format!("cannot signal pid {pid}"))?;
    let deadline = Instant::now() + STOP_TIMEOUT;
    // "Stopped" means the process has exited, not only that it let go of
    // the lock: it may still be finishing its shutdown after that.
    let exited = || match started {
        Some(_) => !process_running(raw, started),
        // No /proc entry to follow (already a zombie): the lock tells.
        None => !dispatcher_lock_held(root),
    };
    while !exited() {
        if Instant::now() > deadline {
            eprintln!(
                "kanban: gateway pid {pid} did not exit within {}s of SIGTERM; it is still \
                 running. See {} and, if it is stuck, end it with `kill -9 {pid}`",
                STOP_TIMEOUT.as_secs(),
                log_path(root).display()
            );
            return Ok(1);
        }
        std::thread::sleep(STOP_POLL);
    }
    println!("kanban gateway stopped (pid {pid})");
    Ok(0)
}

/// Start time (clock ticks after boot, `/proc/<pid>/stat` field 22) of a
/// live process; `None` when there is none or it has wholly exited.
fn process_start_time(pid: i32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the parenthesised command name (which may hold spaces).
    let rest = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // The main thread turns zombie as soon as it exits, while the other
    // threads may still be tearing down: the process has exited (and its
    // parent can reap it) only once the main thread is the last one left.
    if matches!(fields.first(), Some(&"Z") | Some(&"X")) && !other_threads_remain(pid) {
        return None;
    }
    fields.get(19)?.parse().ok()
}

/// Whether threads other than the main one still exist in `pid`.
fn other_threads_remain(pid: i32) -> bool {
    std::fs::read_dir(format!("/proc/{pid}/task")).is_ok_and(|tasks| tasks.count() > 1)
}

/// Whether the process we signalled still runs (a zombie has exited).
fn process_running(pid: i32, started: Option<u64>) -> bool {
    match (process_start_time(pid), started) {
        (Some(now), Some(then)) => now == then,
        (Some(_), None) => true,
        (None, _) => false,
    }
}

fn status(args: StatusArgs, root: &Root) -> Result<i32> {
    let held = dispatcher_lock_held(root);
    let deadline = Instant::now() + STATUS_SETTLE;
    let mut pid = read_pid(root).filter(|_| held);
    // Our gateway writes its pidfile right after taking the lock: a holder
    // without one is a Hermes gateway only if none appears meanwhile.
    while held && pid.is_none() && Instant::now() < deadline && dispatcher_lock_held(root) {
        std::thread::sleep(WAIT_POLL);
        pid = read_pid(root);
    }
    let mut record = current_record(root);
    if held && pid.is_some() && record.is_none() {
        // Ours, still starting: its record comes before it serves.
        while record.is_none() && Instant::now() < deadline && dispatcher_lock_held(root) {
            std::thread::sleep(WAIT_POLL);
            record = current_record(root);
        }
    }
    // Running = serving with a current gateway.json, or a lock holder
    // that is not ours (no pidfile: a Hermes gateway).
    let hermes = held && pid.is_none();
    let running = record.is_some() || hermes;
    let starting = held && pid.is_some() && record.is_none();
    if args.json {
        let v = json!({
            "running": running,
            "starting": starting,
            "pid": record.as_ref().map(|r| r.pid).or(pid),
            "url": record.as_ref().map(|r| r.url.clone()),
            "host": record.as_ref().map(|r| r.host.clone()),
            "port": record.as_ref().map(|r| r.port),
            "started_at": record.as_ref().map(|r| r.started_at),
            "dispatch": record.as_ref().map(|r| r.dispatch),
            "root": root.path().display().to_string(),
            "log": log_path(root).display().to_string(),
        });
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else if let Some(r) = &record {
        println!(
            "kanban gateway running (pid {}) at {}, dispatcher {}",
            r.pid,
            r.url,
            if r.dispatch { "on" } else { "off" }
        );
    } else if hermes {
        println!(
            "a gateway holds the lock of {} (a Hermes gateway?)",
            root.path().display()
        );
    } else if let (true, Some(p)) = (starting, pid) {
        println!("kanban gateway starting (pid {p}), not serving yet");
    } else {
        println!("kanban gateway not running (start it with `kanban gateway start`)");
    }
    Ok(if running { 0 } else { 1 })
}
