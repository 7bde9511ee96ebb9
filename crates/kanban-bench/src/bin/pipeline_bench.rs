//! `pipeline_bench`: the whole dispatch pipeline with real worker processes
//! (issue 14): a real `kanban gateway run` in a temporary Hermes root, every
//! worker a shell script whose only act is `kanban complete`.
//!
//! * **Throughput**: `--tasks` ready tasks queued before the gateway starts,
//!   `max_in_progress: --max-in-progress`; from the gateway's start to the
//!   last task done (tasks/s).
//! * **Chain**: `--chain` tasks, each the child of the previous one; time
//!   per hop = (last task done − first task done) / (chain − 1), one hop
//!   being a promotion, a claim, a spawn and a worker's whole life.
//!
//! "Done" is seen by this process polling the board (a read-only
//! connection, every millisecond), so both builds are timed the same way.
//! Both figures run with `dispatch_interval_seconds: 60`, so the internal
//! ticker never helps.
//!
//! Columns: the build under test (`--kanban`, default: `kanban` next to this
//! executable), the previous build (`--baseline-bin`), and the Python
//! reference's `dispatch_once` (its gateway ticks every 60 s, so it is driven
//! here as passes back to back in one process, spawning the same worker
//! script, whose `kanban complete` is the build under test's; an upper bound
//! for the reference rather than its real gateway). The reference's board
//! assignee is its `default` profile (it spawns only for profiles it knows).
//!
//! `cargo run --release -p kanban-bench --bin pipeline_bench -- --baseline-bin target/baseline/release/kanban`

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::Parser;
use kanban_store::NewTask;
use kanban_store::backend::{BoardLocation, OpenRequest, open_board};

/// Issue 14 targets.
const THROUGHPUT_TARGET: f64 = 300.0;
const HOP_TARGET_MS: f64 = 15.0;
/// Longest wait for a figure's run before it is declared broken.
const RUN_TIMEOUT: Duration = Duration::from_secs(120);
const POLL: Duration = Duration::from_millis(1);
const PROFILE: &str = "bench";
/// The reference spawns for profiles it knows: its default one.
const REFERENCE_ASSIGNEE: &str = "default";

#[derive(Parser, Debug)]
#[command(about = "Whole-pipeline throughput and chain hop time with real workers")]
struct Args {
    /// Tasks queued for the throughput figure.
    #[arg(long, default_value_t = 300)]
    tasks: usize,
    /// `kanban.max_in_progress` of the throughput figure.
    #[arg(long, default_value_t = 16)]
    max_in_progress: u32,
    /// Tasks in the chain (each the child of the previous).
    #[arg(long, default_value_t = 30)]
    chain: usize,
    /// Runs per figure and build (fresh root each).
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// The kanban binary under test (default: `kanban` next to this executable).
    #[arg(long)]
    kanban: Option<PathBuf>,
    /// The previous build of `kanban`, measured in the same run.
    #[arg(long)]
    baseline_bin: Option<PathBuf>,
    /// Skip the Python reference.
    #[arg(long)]
    skip_reference: bool,
    /// The unpacked reference wheel (default: scripts/fetch_reference.py).
    #[arg(long)]
    reference: Option<PathBuf>,
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn kanban_binary(args: &Args) -> Result<PathBuf> {
    if let Some(p) = &args.kanban {
        return absolute_binary(p, "--kanban");
    }
    let bin = std::env::current_exe()?.with_file_name("kanban");
    if !bin.exists() {
        bail!(
            "{} not found: build it (`cargo build --release -p kanban`) or pass --kanban",
            bin.display()
        );
    }
    Ok(bin)
}

/// `path` made absolute: the workers run it from their own workspaces, so
/// a path relative to this process's directory would not be found there.
fn absolute_binary(path: &Path, flag: &str) -> Result<PathBuf> {
    std::fs::canonicalize(path).with_context(|| format!("{flag} {}: not found", path.display()))
}

fn reference_path(args: &Args) -> Result<PathBuf> {
    if let Some(p) = &args.reference {
        return Ok(p.clone());
    }
    let out = Command::new("python3")
        .arg(repo_root().join("scripts/fetch_reference.py"))
        .output()
        .context("running python3 scripts/fetch_reference.py")?;
    if !out.status.success() {
        bail!(
            "cannot fetch the reference: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()))
}

/// A `kanban gateway run` child; killed on drop.
struct GatewayProc(Child);

impl Drop for GatewayProc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The figure being measured.
#[derive(Clone, Copy)]
enum Figure {
    /// Independent ready tasks.
    Queue(usize),
    /// Each task the child of the previous.
    Chain(usize),
}

impl Figure {
    fn tasks(self) -> usize {
        match self {
            Figure::Queue(n) | Figure::Chain(n) => n,
        }
    }
}

/// One temporary Hermes root with its board filled for a figure.
struct Root {
    dir: tempfile::TempDir,
}

fn quote(p: &Path) -> String {
    format!("'{}'", p.display().to_string().replace('\'', r"'\''"))
}

impl Root {
    fn new(
        worker_kanban: &Path,
        figure: Figure,
        max_in_progress: u32,
        assignee: &str,
    ) -> Result<Root> {
        let dir = tempfile::Builder::new()
            .prefix("kanban-pipeline-bench-")
            .tempdir()?;
        let script = format!(
            "exec {} complete \"$HERMES_KANBAN_TASK\" --summary bench >/dev/null\n",
            quote(worker_kanban)
        );
        let script_path = dir.path().join("worker.sh");
        std::fs::write(&script_path, script)?;
        let config = format!(
            "kanban:\n  dispatch_interval_seconds: 60\n  max_in_progress: {max_in_progress}\n  \
             profiles:\n    {PROFILE}:\n      command: [\"/bin/sh\", \"{}\"]\n",
            script_path.display()
        );
        std::fs::write(dir.path().join("config.yaml"), config)?;
        let root = Root { dir };
        root.fill(figure, assignee)?;
        Ok(root)
    }

    fn db(&self) -> PathBuf {
        self.dir.path().join("kanban.db")
    }

    fn script(&self) -> PathBuf {
        self.dir.path().join("worker.sh")
    }

    /// The board's tasks, created through this build's store (the boards
    /// are Hermes-compatible, so every build reads them).
    fn fill(&self, figure: Figure, assignee: &str) -> Result<()> {
        let store = open_board(&BoardLocation::sqlite(self.db()), &OpenRequest::create())?.store();
        let mut prev: Option<String> = None;
        for i in 0..figure.tasks() {
            let req = NewTask {
                title: format!("bench {i}"),
                assignee: Some(assignee.into()),
                parents: match (figure, &prev) {
                    (Figure::Chain(_), Some(p)) => vec![p.clone()],
                    _ => Vec::new(),
                },
                ..NewTask::default()
            };
            prev = Some(store.create_task(&req)?.task.id);
        }
        Ok(())
    }

    fn command(&self, program: &Path) -> Command {
        let mut cmd = Command::new(program);
        for var in [
            "HERMES_KANBAN_HOME",
            "HERMES_KANBAN_DB",
            "HERMES_KANBAN_BOARD",
            "HERMES_KANBAN_DISPATCH_IN_GATEWAY",
            "HERMES_KANBAN_DATABASE_URL",
            "HERMES_PROFILE",
        ] {
            cmd.env_remove(var);
        }
        cmd.env("HERMES_HOME", self.dir.path())
            .env("HOME", self.dir.path())
            .stdin(Stdio::null());
        cmd
    }

    fn start_gateway(&self, kanban: &Path) -> Result<GatewayProc> {
        let log = std::fs::File::create(self.dir.path().join("gateway.out"))?;
        let child = self
            .command(kanban)
            .args(["gateway", "run", "--port", "0"])
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .context("cannot start the gateway")?;
        Ok(GatewayProc(child))
    }

    /// Poll the board until every task is done; returns the moments (since
    /// `t0`) the count of done tasks reached 1, 2, … n.
    fn wait_done(&self, n: usize, t0: Instant) -> Result<Vec<Duration>> {
        let deadline = Instant::now() + RUN_TIMEOUT;
        let mut conn = None;
        let mut marks = Vec::with_capacity(n);
        while marks.len() < n {
            if conn.is_none() && self.db().exists() {
                let c = rusqlite::Connection::open_with_flags(
                    self.db(),
                    rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
                )?;
                c.busy_timeout(Duration::from_secs(5))?;
                conn = Some(c);
            }
            if let Some(c) = &conn {
                let done: i64 = c.query_row(
                    "SELECT count(*) FROM tasks WHERE status = 'done'",
                    [],
                    |r| r.get(0),
                )?;
                let at = t0.elapsed();
                while marks.len() < usize::try_from(done).unwrap_or(0).min(n) {
                    marks.push(at);
                }
            }
            if Instant::now() > deadline {
                bail!(
                    "only {} of {n} tasks done after {}s; see {}",
                    marks.len(),
                    RUN_TIMEOUT.as_secs(),
                    self.dir.path().join("gateway.out").display()
                );
            }
            std::thread::sleep(POLL);
        }
        Ok(marks)
    }
}

/// One run of a figure on a `kanban` gateway; returns the figure's value
/// (tasks/s or ms per hop).
fn run_gateway(
    kanban: &Path,
    worker_kanban: &Path,
    figure: Figure,
    args: &Args,
    kept: &mut Vec<Root>,
) -> Result<f64> {
    let root = Root::new(worker_kanban, figure, args.max_in_progress, PROFILE)?;
    let t0 = Instant::now();
    let gw = root.start_gateway(kanban)?;
    let marks = root.wait_done(figure.tasks(), t0)?;
    drop(gw);
    kept.push(root);
    Ok(figure_value(figure, &marks))
}

fn figure_value(figure: Figure, marks: &[Duration]) -> f64 {
    match figure {
        Figure::Queue(n) => n as f64 / marks[n - 1].as_secs_f64(),
        Figure::Chain(n) => {
            (marks[n - 1] - marks[0]).as_secs_f64() * 1e3 / (n.saturating_sub(1).max(1)) as f64
        }
    }
}

/// The reference side: `dispatch_once` passes back to back on one
/// connection, spawning the worker script, until every task is done.
const REFERENCE_DRIVER: &str = r#"
import json, os, signal, sqlite3, subprocess, sys, time
from pathlib import Path
import hermes_cli.kanban_db as kb

db, script, n, cap = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # reap workers automatically
conn = kb.connect(db_path=db)
def spawn(task, workspace):
    env = dict(os.environ, HERMES_KANBAN_TASK=task.id)
    p = subprocess.Popen(["/bin/sh", script], env=env, stdin=subprocess.DEVNULL,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                         start_new_session=True)
    return p.pid
marks = []
passes = 0
torn = 0
t0 = time.perf_counter()
deadline = t0 + 120
while len(marks) < n and time.perf_counter() < deadline:
    try:
        r = kb.dispatch_once(conn, spawn_fn=spawn, max_in_progress=cap)
    except sqlite3.DatabaseError as e:
        # The reference's own torn-write check can catch a concurrent
        # checkpoint mid-way (the file not yet extended): the pass is retried.
        if "torn-extend" not in str(e):
            raise
        torn += 1
        continue
    if passes == 0 and not r.spawned:
        print(repr(r), file=sys.stderr)
    passes += 1
    done = conn.execute("SELECT count(*) FROM tasks WHERE status = 'done'").fetchone()[0]
    at = time.perf_counter() - t0
    while len(marks) < min(done, n):
        marks.append(at)
print(json.dumps({"marks": marks, "passes": passes, "torn": torn}))
"#;

/// One run of a figure with the reference's `dispatch_once` loop.
fn run_reference(
    wheel: &Path,
    worker_kanban: &Path,
    figure: Figure,
    args: &Args,
    kept: &mut Vec<Root>,
) -> Result<f64> {
    let root = Root::new(
        worker_kanban,
        figure,
        args.max_in_progress,
        REFERENCE_ASSIGNEE,
    )?;
    let driver = root.dir.path().join("ref_pipeline.py");
    std::fs::write(&driver, REFERENCE_DRIVER)?;
    let out = root
        .command(Path::new("python3"))
        .arg(&driver)
        .arg(root.db())
        .arg(root.script())
        .arg(figure.tasks().to_string())
        .arg(args.max_in_progress.to_string())
        .env("PYTHONPATH", wheel)
        .output()
        .context("running the reference driver")?;
    if !out.status.success() {
        bail!(
            "reference driver failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    kept.push(root);
    eprintln!(
        "pipeline_bench: reference, {} tasks: {} passes, {} retried after its torn-extend check",
        figure.tasks(),
        doc["passes"],
        doc["torn"]
    );
    let marks: Vec<Duration> = doc["marks"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(serde_json::Value::as_f64)
                .map(Duration::from_secs_f64)
                .collect()
        })
        .unwrap_or_default();
    if marks.len() < figure.tasks() {
        bail!(
            "the reference finished {} of {} tasks: {}",
            marks.len(),
            figure.tasks(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(figure_value(figure, &marks))
}

/// Median and range of a figure's runs.
fn cell(mut values: Vec<f64>, unit: &str, decimals: usize) -> String {
    if values.is_empty() {
        return "—".into();
    }
    values.sort_by(f64::total_cmp);
    let med = values[values.len() / 2];
    if values.len() == 1 {
        return format!("{med:.decimals$} {unit}");
    }
    format!(
        "{med:.decimals$} {unit} ({:.decimals$}–{:.decimals$}, n={})",
        values[0],
        values[values.len() - 1],
        values.len()
    )
}

/// The runs of one figure on every column, interleaved so a load change
/// on the machine hits every column alike.
struct Columns {
    baseline: Vec<f64>,
    now: Vec<f64>,
    reference: Vec<f64>,
    /// Reference runs that did not finish (see `run_reference`).
    reference_stalled: usize,
}

/// Every run's root stays on disk until the bench ends. On ext4 without a
/// journal (this machine's disk) each new inode skips those deleted in the
/// last minute or more (`recently_deleted`), one check per deleted inode:
/// removing a run's 600 logs and workspaces made the next run's every
/// file and directory pay for them, a third of its kernel time.
fn measure(
    args: &Args,
    kanban: &Path,
    wheel: Option<&Path>,
    figure: Figure,
    kept: &mut Vec<Root>,
) -> Result<Columns> {
    let mut cols = Columns {
        baseline: Vec::new(),
        now: Vec::new(),
        reference: Vec::new(),
        reference_stalled: 0,
    };
    for run in 0..args.runs {
        // The second run of a pair measured 2 % lower with the same build
        // in both columns (the first's files still being written back), so
        // the builds take turns going first. A worker completes with the
        // same build as its gateway.
        let mut builds = vec![(kanban, false)];
        if let Some(base) = &args.baseline_bin {
            builds.insert(usize::from(run % 2 == 1), (base.as_path(), true));
        }
        for (build, is_baseline) in builds {
            let value = run_gateway(build, build, figure, args, kept)?;
            if is_baseline {
                cols.baseline.push(value);
            } else {
                cols.now.push(value);
            }
        }
        if let Some(w) = wheel {
            // A reference run can stall: a pass its torn-extend check cut
            // short may leave a claim without a worker until the claim's TTL.
            match run_reference(w, kanban, figure, args, kept) {
                Ok(v) => cols.reference.push(v),
                Err(e) => {
                    eprintln!("pipeline_bench: reference run stalled: {e:#}");
                    cols.reference_stalled += 1;
                }
            }
        }
        eprintln!("pipeline_bench: run {} of {} done", run + 1, args.runs);
    }
    Ok(cols)
}

/// The reference's cell, with its stalled runs.
fn reference_cell(cols: &Columns, unit: &str, decimals: usize) -> String {
    let cell = cell(cols.reference.clone(), unit, decimals);
    match cols.reference_stalled {
        0 => cell,
        n => format!("{cell}; {n} run(s) stalled"),
    }
}

fn mark(ok: bool) -> &'static str {
    if ok { "✅" } else { "❌" }
}

fn main() -> Result<()> {
    let mut args = Args::parse();
    if let Some(base) = &args.baseline_bin {
        args.baseline_bin = Some(absolute_binary(base, "--baseline-bin")?);
    }
    if args.tasks == 0 || args.chain < 2 || args.runs == 0 {
        bail!("--tasks ≥ 1, --chain ≥ 2 and --runs ≥ 1");
    }
    let kanban = kanban_binary(&args)?;
    let wheel = if args.skip_reference {
        None
    } else {
        Some(reference_path(&args)?)
    };
    let mut kept = Vec::new();
    let queue = measure(
        &args,
        &kanban,
        wheel.as_deref(),
        Figure::Queue(args.tasks),
        &mut kept,
    )?;
    let chain = measure(
        &args,
        &kanban,
        wheel.as_deref(),
        Figure::Chain(args.chain),
        &mut kept,
    )?;
    let now_rate = median(&queue.now);
    let now_hop = median(&chain.now);
    println!(
        "pipeline_bench: {} runs per figure; worker = /bin/sh script running only `kanban complete`; \
         dispatch_interval_seconds: 60; now = {}; baseline = {}",
        args.runs,
        kanban.display(),
        args.baseline_bin
            .as_ref()
            .map_or_else(|| "—".into(), |p| p.display().to_string())
    );
    println!();
    println!("| figure | baseline | now | reference `dispatch_once` back to back | target |");
    println!("| --- | --- | --- | --- | --- |");
    println!(
        "| {} queued tasks, max_in_progress {}, gateway start → last done | {} | {} {} | {} | ≥ {THROUGHPUT_TARGET:.0} tasks/s |",
        args.tasks,
        args.max_in_progress,
        cell(queue.baseline.clone(), "tasks/s", 0),
        cell(queue.now.clone(), "tasks/s", 0),
        mark(now_rate >= THROUGHPUT_TARGET),
        reference_cell(&queue, "tasks/s", 0),
    );
    println!(
        "| chain of {}, time per hop | {} | {} {} | {} | < {HOP_TARGET_MS:.0} ms |",
        args.chain,
        cell(chain.baseline.clone(), "ms", 1),
        cell(chain.now.clone(), "ms", 1),
        mark(now_hop < HOP_TARGET_MS),
        reference_cell(&chain, "ms", 1),
    );
    Ok(())
}

fn median(values: &[f64]) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}
