//! `kanban daemon`: deprecated (seed 001). The dispatcher runs inside the
//! gateway; without `--force` this prints the migration guidance and exits
//! 2. With `--force` it runs the old standalone loop on the current board
//! until SIGINT/SIGTERM, keeping one dispatcher across passes (so exit
//! codes of its own workers are classified and terminations followed).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};
use clap::Args;
use kanban_dispatch::StuckDetector;
use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet, Signal, sigaction};

use crate::command::dispatch::{build_dispatcher, load_config, options};
use crate::context::Ctx;

/// Default seconds between passes (reference).
pub const DEFAULT_INTERVAL_SECONDS: f64 = 60.0;
/// Shortest interval accepted (reference floor).
const MIN_INTERVAL: Duration = Duration::from_secs(1);
/// Shortest wait a pass can ask for before the next one.
const MIN_WAKE: Duration = Duration::from_millis(100);
/// How often the sleep checks for a stop signal.
const STOP_POLL: Duration = Duration::from_millis(100);

/// The guidance printed without `--force`.
pub const DEPRECATION: &str = "\
kanban daemon: DEPRECATED — the dispatcher now runs inside the gateway.
To use kanban:

    kanban gateway start       # starts the gateway + embedded dispatcher

Ready tasks are picked up at once, and on every dispatcher tick
(default: every 60 seconds). Configure via <root>/config.yaml:

    kanban:
      dispatch_in_gateway: true      # default
      dispatch_interval_seconds: 60
      failure_limit: 2              # consecutive failed attempts before auto-block

Without a gateway, run one pass from cron or a controller instead:

    * * * * * kanban dispatch [--max N]

Running a gateway AND this standalone daemon against one board races for
claims. If you truly need the old standalone daemon (no gateway, no cron),
rerun with --force.";

/// DEPRECATED: use `kanban gateway start` (or cron + `kanban dispatch`).
#[derive(Debug, Clone, Args)]
pub struct DaemonArgs {
    /// Seconds between passes.
    #[arg(long, default_value_t = DEFAULT_INTERVAL_SECONDS, value_name = "SECS")]
    pub interval: f64,
    /// Ceiling on running tasks (overrides kanban.max_spawn).
    #[arg(long, value_name = "N")]
    pub max: Option<u32>,
    /// Consecutive failures before a task is auto-blocked.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(i64).range(1..))]
    pub failure_limit: Option<i64>,
    /// Write this process's pid here while running.
    #[arg(long, value_name = "PATH")]
    pub pidfile: Option<PathBuf>,
    /// Print a line for every pass that did something.
    #[arg(short, long)]
    pub verbose: bool,
    /// Run the deprecated standalone loop anyway.
    #[arg(long, hide = true)]
    pub force: bool,
}

static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_stop_signal(_: libc::c_int) {
    STOP.store(true, Ordering::SeqCst);
}

fn install_stop_handlers() -> Result<()> {
    let action = SigAction::new(
        SigHandler::Handler(on_stop_signal),
        SaFlags::empty(),
        SigSet::empty(),
    );
    for sig in [Signal::SIGINT, Signal::SIGTERM] {
        // SAFETY: the handler only stores to an atomic.
        unsafe { sigaction(sig, &action) }.with_context(|| format!("cannot handle {sig}"))?;
    }
    Ok(())
}

/// Removes the pidfile when the loop ends.
struct Pidfile(Option<PathBuf>);

impl Pidfile {
    fn write(path: Option<&Path>) -> Pidfile {
        let Some(path) = path else {
            return Pidfile(None);
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            let _ = std::fs::create_dir_all(dir);
        }
        match std::fs::write(path, std::process::id().to_string()) {
            Ok(()) => Pidfile(Some(path.to_path_buf())),
            Err(e) => {
                crate::error::warning(format_args!(
                    "could not write pidfile {}: {e}",
                    path.display()
                ));
                Pidfile(None)
            }
        }
    }
}

impl Drop for Pidfile {
    fn drop(&mut self) {
        if let Some(p) = &self.0 {
            let _ = std::fs::remove_file(p);
        }
    }
}

pub fn run(args: DaemonArgs, ctx: &Ctx) -> Result<i32> {
    if !args.force {
        eprintln!("{DEPRECATION}");
        return Ok(2);
    }
    if !args.interval.is_finite() || args.interval < 0.0 {
        return Err(crate::error::usage("--interval must be a positive number"));
    }
    let interval = Duration::from_secs_f64(args.interval).max(MIN_INTERVAL);
    // Creates the board first so errors surface before "running".
    ctx.store()?;
    install_stop_handlers()?;
    let _pidfile = Pidfile::write(args.pidfile.as_deref());
    if kanban_server::lock::dispatcher_lock_held(&ctx.root) {
        crate::error::warning(format_args!(
            "a gateway is running for {}; its embedded dispatcher and this daemon \
             share the board (each pass takes the board's dispatch lock)",
            ctx.root.path().display()
        ));
    }
    eprintln!(
        "Kanban dispatcher running STANDALONE via --force (board={}, interval={}s, pid={}). \
         Ctrl-C to stop.",
        ctx.board.slug,
        interval.as_secs_f64(),
        std::process::id()
    );
    let config = load_config(ctx)?;
    let dispatcher = build_dispatcher(ctx, &config)?;
    let mut stuck = StuckDetector::default();
    while !STOP.load(Ordering::SeqCst) {
        // Re-read every pass: ceilings follow config edits.
        let config = load_config(ctx).unwrap_or_else(|e| {
            crate::error::warning(format_args!("{e:#}; keeping the previous config"));
            config.clone()
        });
        let opts = options(&config, args.max, args.failure_limit);
        let mut sleep = interval;
        match dispatcher.dispatch_once(&opts) {
            Ok(res) => {
                // A cooldown or backoff that ends before the next tick.
                if let Some(ms) = res.next_pass_in_ms {
                    sleep = sleep.min(Duration::from_millis(ms).max(MIN_WAKE));
                }
                if let Some(w) = stuck.observe(&res.health, Instant::now()) {
                    eprintln!("[{}] WARN {w}", crate::output::fmt_ts(Some(ctx.now())));
                }
                if let Some(e) = &res.lock_error {
                    crate::error::warning(format_args!("pass skipped: {e}"));
                }
                if args.verbose && !res.is_idle() {
                    println!(
                        "[{}] reclaimed={} crashed={} timed_out={} stale={} promoted={} \
                         spawned={} auto_blocked={} rate_limited={}",
                        crate::output::fmt_ts(Some(ctx.now())),
                        res.reclaimed,
                        res.crashed.len(),
                        res.timed_out.len(),
                        res.stale.len(),
                        res.promoted,
                        res.spawned.len(),
                        res.auto_blocked.len(),
                        res.rate_limited.len()
                    );
                }
            }
            Err(e) => crate::error::warning(format_args!("dispatch pass failed: {e}")),
        }
        sleep_unless_stopped(sleep);
    }
    println!("(dispatcher stopped)");
    Ok(0)
}

fn sleep_unless_stopped(total: Duration) {
    let deadline = Instant::now() + total;
    while !STOP.load(Ordering::SeqCst) {
        let now = Instant::now();
        if now >= deadline {
            return;
        }
        std::thread::sleep((deadline - now).min(STOP_POLL));
    }
}
