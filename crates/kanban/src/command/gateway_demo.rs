//! `gateway run|start --demo`: where the demo lives and how it is seeded.
//!
//! The demo never runs on the user's root (their config, profiles and
//! boards stay byte-for-byte as they were): `run` makes a throwaway root in
//! the temporary directory, removed when the gateway exits; `start` (whose
//! gateway outlives it) makes one that is kept; `--demo-root DIR` names the
//! root instead (created when missing, kept). Seeding happens only once the
//! gateway holds the root's lock and its port (see `gateway::serve`); then
//! the feeder adds work every `--demo-rate` until the gateway stops.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context as _, Result};
use clap::Args;
use kanban_dispatch::env::ENV_TASK;
use kanban_hermes::config::{ENV_RATE_LIMIT_COOLDOWN_SECONDS, KanbanConfig};
use kanban_hermes::layout::{ENV_KANBAN_HOME, ProcessEnv, Root, create_private_dir};
use kanban_server::demo::{self, DemoOverlay, DemoRate, Feeder, FeederHandle};

/// The `--demo*` flags of `gateway run|start`.
#[derive(Debug, Clone, Args)]
pub struct DemoArgs {
    /// Run a live demo instead, on a root of its own: never the usual root
    /// (its config, profiles and boards are not touched), but a throwaway
    /// one in the temporary directory (removed when `run` exits; kept by
    /// `start`), or --demo-root DIR. The gateway prints where.
    /// It creates a `demo` board already using every column (done history,
    /// a task graph waiting in todo, a queue in ready, a question blocked on
    /// a human, an idea in triage, a nightly job in scheduled), seeded once
    /// the port is bound, then keeps it moving: a new task or small graph
    /// every --demo-rate, for the profiles `researcher`, `coder`, `reviewer`
    /// and `flaky-api` (rate-limited: exits 75), some of whose workers crash
    /// once (and are retried) or ask a human (the demo answers after a
    /// while). Workers are shell scripts in <demo root>/kanban/demo/ that
    /// heartbeat, comment and complete within 1-6 s; old done tasks are
    /// archived. Watch it on the dashboard or with
    /// `HERMES_KANBAN_HOME=<demo root> kanban watch`.
    /// The demo profiles live only in this gateway's memory, as an overlay
    /// on config.yaml, which is never written (a profile of the same name in
    /// config.yaml wins). Re-running on the same --demo-root resumes an
    /// unfinished demo, or seeds a new opening once everything is done.
    #[arg(id = "demo", long = "demo", verbatim_doc_comment)]
    pub enabled: bool,
    /// The root the demo runs on (created when missing, kept afterwards).
    #[arg(long = "demo-root", value_name = "DIR", requires = "demo")]
    pub root: Option<PathBuf>,
    /// How often the demo adds work: a duration such as 500ms, 3s or 1m
    /// (100ms to 1h; a bare number is seconds), or 0 / off to add nothing
    /// after the opening (nor answer its questions).
    #[arg(
        long = "demo-rate",
        value_name = "EVERY",
        requires = "demo",
        allow_hyphen_values = true,
        default_value = demo::DEFAULT_DEMO_RATE
    )]
    pub rate: DemoRate,
    /// Seed of the demo's choices (what it adds, which worker crashes or is
    /// rate-limited): the same seed replays the same demo. Default: random,
    /// printed at start.
    #[arg(long = "demo-seed", value_name = "N", requires = "demo")]
    pub seed: Option<u64>,
}

impl DemoArgs {
    /// Pass the flags on to the background gateway of `gateway start`.
    pub fn forward(&self, cmd: &mut Command) {
        if !self.enabled {
            return;
        }
        cmd.arg("--demo")
            .arg("--demo-rate")
            .arg(self.rate.to_string());
        if let Some(dir) = &self.root {
            cmd.arg("--demo-root").arg(dir);
        }
        if let Some(seed) = self.seed {
            cmd.args(["--demo-seed", &seed.to_string()]);
        }
    }
}

/// Name prefix of a throwaway demo root in the temporary directory.
const DEMO_ROOT_PREFIX: &str = "kanban-demo-";

/// How long a demo root made here lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DemoLife {
    /// Removed when this process ends (`gateway run --demo`).
    Process,
    /// Kept (`gateway start --demo`: the gateway outlives this process).
    Kept,
}

/// The root a demo gateway runs on. Dropping it removes a throwaway root.
pub struct DemoRoot {
    root: Root,
    _throwaway: Option<tempfile::TempDir>,
}

impl DemoRoot {
    /// `--demo-root DIR` (created when missing), else a fresh root in the
    /// temporary directory; says where on stdout.
    pub fn create(dir: Option<&Path>, life: DemoLife) -> Result<DemoRoot> {
        if let Some(dir) = dir {
            let dir = std::path::absolute(dir)
                .with_context(|| format!("--demo-root {}", dir.display()))?;
            create_private_dir(&dir)?;
            println!("demo: root {} (--demo-root, kept)", dir.display());
            return Ok(DemoRoot {
                root: Root::at(dir),
                _throwaway: None,
            });
        }
        let temp = tempfile::Builder::new()
            .prefix(DEMO_ROOT_PREFIX)
            .tempdir()
            .context("cannot create a temporary root for the demo")?;
        let (path, throwaway) = match life {
            DemoLife::Process => (temp.path().to_path_buf(), Some(temp)),
            DemoLife::Kept => (temp.keep(), None),
        };
        let fate = match life {
            DemoLife::Process => "throwaway: removed when this gateway exits",
            DemoLife::Kept => "kept after the gateway stops: remove it when done",
        };
        println!(
            "demo: root {} ({fate}; `--demo-root DIR` picks the place; your own root is untouched)",
            path.display()
        );
        Ok(DemoRoot {
            root: Root::at(path),
            _throwaway: throwaway,
        })
    }

    pub fn root(&self) -> &Root {
        &self.root
    }
}

/// Before a throwaway root goes, the demo's workers still running in it
/// (they run in its workspaces, and outlive a gateway by design) are ended:
/// a late `kanban complete` would otherwise make the board again in the
/// removed root and leave it behind.
impl Drop for DemoRoot {
    fn drop(&mut self) {
        if self._throwaway.is_some() {
            end_processes_in(self.root.path());
        }
    }
}

/// How long the demo's workers get after SIGTERM before SIGKILL.
const DEMO_WORKER_GRACE: std::time::Duration = std::time::Duration::from_secs(2);
const DEMO_WORKER_POLL: std::time::Duration = std::time::Duration::from_millis(20);

/// SIGTERM, then SIGKILL after [`DEMO_WORKER_GRACE`], to every worker
/// process (one started with a task in its environment, and whatever it
/// started) whose working directory is inside `dir`. A user's shell that
/// merely sits in the root is left alone.
fn end_processes_in(dir: &Path) {
    use nix::sys::signal::{Signal, kill};
    use nix::unistd::Pid;
    let Ok(dir) = std::fs::canonicalize(dir) else {
        return;
    };
    let me = std::process::id();
    let inside = || -> Vec<Pid> {
        let Ok(entries) = std::fs::read_dir("/proc") else {
            return Vec::new();
        };
        entries
            .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
            .filter(|pid| *pid != me)
            .filter(|pid| {
                std::fs::read_link(format!("/proc/{pid}/cwd"))
                    .is_ok_and(|cwd| cwd.starts_with(&dir))
            })
            .filter(|pid| started_for_a_task(*pid))
            .filter_map(|pid| i32::try_from(pid).ok().map(Pid::from_raw))
            .collect()
    };
    let mut left = inside();
    for pid in &left {
        let _ = kill(*pid, Signal::SIGTERM);
    }
    let deadline = std::time::Instant::now() + DEMO_WORKER_GRACE;
    while !left.is_empty() && std::time::Instant::now() < deadline {
        std::thread::sleep(DEMO_WORKER_POLL);
        left = inside();
    }
    for pid in &left {
        let _ = kill(*pid, Signal::SIGKILL);
    }
}

/// Whether process `pid` was started with a task to work on: the
/// dispatcher's [`ENV_TASK`] in its initial environment.
fn started_for_a_task(pid: u32) -> bool {
    let Ok(environ) = std::fs::read(format!("/proc/{pid}/environ")) else {
        return false;
    };
    let prefix = format!("{ENV_TASK}=");
    environ
        .split(|b| *b == 0)
        .any(|var| var.starts_with(prefix.as_bytes()))
}

/// The in-memory demo profiles, known before the script is written (the
/// dispatcher must know them from its first pass). A rate-limit cooldown
/// set in the environment wins over the demo's short one.
pub fn demo_overlay(root: &Root) -> DemoOverlay {
    let mut overlay = demo::demo_overlay(&demo::worker_script_path(root));
    if std::env::var_os(ENV_RATE_LIMIT_COOLDOWN_SECONDS).is_some() {
        overlay.rate_limit_cooldown_seconds = None;
    }
    overlay
}

/// A seed when none is given: the clock and the pid are varied enough.
fn fresh_seed() -> u64 {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    nanos ^ (u64::from(std::process::id()) << 32)
}

/// `HERMES_KANBAN_HOME=<root> `: what a command needs to act on the demo.
fn env_prefix(root: &Root) -> String {
    format!("{ENV_KANBAN_HOME}={}", root.path().display())
}

/// Write the worker script, seed (or resume) the demo board and start its
/// feeder (unless `--demo-rate off`); say what happened. `exe` is the
/// binary the workers call.
pub fn seed_demo(root: &Root, exe: &Path, args: &DemoArgs) -> Result<Option<FeederHandle>> {
    let setup = demo::prepare(root, exe).context("cannot prepare the demo board")?;
    let board = demo::DEMO_BOARD;
    if setup.created.is_empty() {
        println!(
            "demo: resuming on board '{board}' ({} unfinished task(s))",
            setup.resumed
        );
    } else {
        println!(
            "demo: opening {} seeded on board '{board}': {} tasks in every column",
            setup.round,
            setup.created.len()
        );
    }
    println!(
        "demo: workers are {} (profiles {}; in memory only, config.yaml untouched)",
        setup.script.display(),
        demo::DEMO_PROFILES.map(|(p, _, _)| p).join(", ")
    );
    let feeder = match args.rate.every() {
        Some(every) => {
            let seed = args.seed.unwrap_or_else(fresh_seed);
            let store = demo::open_demo_board(root)
                .context("cannot open the demo board")?
                .store();
            let handle = FeederHandle::spawn(Feeder::new(store, seed), every)
                .context("cannot start the demo feeder")?;
            println!(
                "demo: new work every {} (--demo-rate; seed {seed}: --demo-seed {seed} replays it)",
                args.rate
            );
            Some(handle)
        }
        None => {
            println!("demo: --demo-rate off: no new work after the opening");
            None
        }
    };
    let env = env_prefix(root);
    if setup.made_current {
        println!("demo: watch it with `{env} kanban watch`, or on the dashboard");
    } else {
        println!(
            "demo: watch it with `{env} kanban --board {board} watch`, or pick the Demo board \
             on the dashboard"
        );
    }
    let config = KanbanConfig::load(root, &ProcessEnv)?;
    if !config.dispatch_in_gateway {
        crate::error::warning(
            "demo: dispatching is off (kanban.dispatch_in_gateway or \
             HERMES_KANBAN_DISPATCH_IN_GATEWAY), so the demo tasks will not run",
        );
    }
    Ok(feeder)
}
