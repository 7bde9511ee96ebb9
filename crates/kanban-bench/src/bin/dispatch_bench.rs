//! `dispatch_bench`: the dispatcher figures of SPEC §5, measured beside the
//! Python reference's `dispatch_once` on the same boards in the same run.
//!
//! Each board is built once (schema by our store, fixture rows bulk-inserted
//! with SQL in one transaction), checkpointed, and copied for every
//! measurement, so both implementations start from the identical file.
//!
//! - **claims per second**: one dispatch pass over 2,000 ready tasks with a
//!   stub spawner (fake pids; no process is started), on a fresh copy per
//!   run; rate = tasks spawned / pass wall time.
//! - **idle pass, 100k done tasks**: the store stays open, the dispatcher is
//!   kept between passes (in-process, as in a gateway); one warm-up pass,
//!   then many timed passes.
//! - **10k todo children on 10k blocked parents**: as above, on that board;
//!   plus the first pass of a new dispatcher (its full promotion sweep) and
//!   a pass right after one parent was archived (one child promoted).
//!
//! The reference runs the same operations through `hermes_cli.kanban_db`
//! (`connect`, then `dispatch_once(conn, spawn_fn=stub)`), with
//! `HERMES_HOME` set to a copy of the board's root.
//!
//! `--backend postgres|both`: the same figures on PostgreSQL, in a column
//! beside SQLite's. A private server (`pg.rs`); the same fixture rows
//! bulk-inserted into a board database, copied per measurement with
//! `CREATE DATABASE … TEMPLATE` (the analogue of copying the file).

#[path = "../fixture.rs"]
mod fixture;
#[path = "../pg.rs"]
mod pg;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use clap::Parser;
use fixture::{Rows, RunRow, TaskRow, task_id};
use kanban_dispatch::{
    BoardContext, DispatchOptions, Dispatcher, DispatcherParts, StaticLiveness, StubSpawner,
    TitleBodyContext,
};
use kanban_hermes::config::KanbanConfig;
use kanban_hermes::layout::{Env, MapEnv, Root};
use kanban_hermes::profiles::Profiles;
use kanban_store::backend::{OpenRequest, open_board};
use kanban_store::dispatch_ops::DispatchStore;
use pg::{Backend, PgServer};

#[derive(Parser, Debug)]
#[command(about = "Dispatcher benchmarks beside the Python reference (markdown table)")]
struct Args {
    /// Ready tasks claimed in one pass.
    #[arg(long, default_value_t = 2000)]
    claims: usize,
    /// Claim runs for kanban (fresh board copy each).
    #[arg(long, default_value_t = 9)]
    claim_runs: usize,
    /// Claim runs for the reference.
    #[arg(long, default_value_t = 3)]
    reference_claim_runs: usize,
    /// Done tasks on the idle board.
    #[arg(long, default_value_t = 100_000)]
    done: usize,
    /// Parent/child pairs on the dependency board.
    #[arg(long, default_value_t = 10_000)]
    pairs: usize,
    /// Timed passes per in-process figure for kanban.
    #[arg(long, default_value_t = 5000)]
    passes: usize,
    /// Timed idle passes for the reference.
    #[arg(long, default_value_t = 200)]
    reference_passes: usize,
    /// Timed dependency-board passes for the reference (each ~100 ms).
    #[arg(long, default_value_t = 15)]
    reference_pair_passes: usize,
    /// Fresh dispatchers timed for the first-pass (full sweep) figure.
    #[arg(long, default_value_t = 21)]
    first_passes: usize,
    /// Measure kanban only.
    #[arg(long)]
    skip_reference: bool,
    /// The unpacked reference wheel (default: scripts/fetch_reference.py).
    #[arg(long)]
    reference: Option<PathBuf>,
    /// Only these figures (claims, claims-tmpfs, idle, pairs); all when empty.
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
    /// Which store backends to measure (the reference needs the SQLite board).
    #[arg(long, value_enum, default_value_t = Backend::Sqlite)]
    backend: Backend,
}

impl Args {
    fn wants(&self, figure: &str) -> bool {
        self.only.is_empty() || self.only.iter().any(|o| o == figure)
    }
}

const ASSIGNEE: &str = "default";
/// Where the tmpfs variant of the claims figure puts scratch workspaces.
const TMPFS: &str = "/dev/shm";
const BASE_TIME: i64 = 1_700_000_000;

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
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

/// What a generated board holds.
#[derive(Debug, Clone, Copy)]
enum Fixture {
    Ready(usize),
    Done(usize),
    /// `n` blocked parents, each with one todo child.
    Pairs(usize),
}

impl Fixture {
    fn rows(self) -> Rows {
        let mut rows = Rows::default();
        let add = |rows: &mut Rows, i: usize, status: &'static str| {
            let at = BASE_TIME + i as i64;
            let done = status == "done";
            rows.task(TaskRow {
                id: task_id(i),
                title: format!("Benchmark task {i}"),
                body: format!("Body of task {i}: do the thing, then report."),
                assignee: ASSIGNEE.into(),
                status,
                priority: 0,
                created_at: at,
                started_at: done.then_some(at + 5),
                completed_at: done.then_some(at + 60),
            });
            task_id(i)
        };
        match self {
            Fixture::Ready(n) => {
                for i in 0..n {
                    add(&mut rows, i, "ready");
                }
            }
            Fixture::Done(n) => {
                for i in 0..n {
                    let id = add(&mut rows, i, "done");
                    let at = BASE_TIME + i as i64;
                    rows.completed_run(RunRow {
                        task_id: id,
                        profile: ASSIGNEE.into(),
                        started_at: at + 5,
                        ended_at: at + 60,
                        summary: "done".into(),
                    });
                }
            }
            Fixture::Pairs(n) => {
                let reason = serde_json::json!({"reason": "waiting on a human"}).to_string();
                for i in 0..n {
                    let parent = add(&mut rows, 2 * i, "blocked");
                    rows.events.push(fixture::EventRow {
                        task_id: parent.clone(),
                        run: None,
                        kind: "blocked",
                        payload: reason.clone(),
                        created_at: BASE_TIME,
                    });
                    let child = add(&mut rows, 2 * i + 1, "todo");
                    rows.links.push((parent, child));
                }
            }
        }
        rows
    }
}

/// A board built once, copied per measurement.
enum Master<'a> {
    Sqlite {
        _dir: tempfile::TempDir,
        db: PathBuf,
    },
    Postgres {
        pg: &'a PgServer,
        db: String,
    },
}

/// The master board of `fixture` on SQLite: schema by the store, rows by
/// SQL in one transaction, WAL checkpointed.
fn build(fixture: Fixture) -> Result<Master<'static>> {
    let dir = tempfile::Builder::new()
        .prefix("kanban-dbench-master-")
        .tempdir()?;
    let paths = Root::at(dir.path()).board_paths("default");
    drop(open_board(&paths.location(), &OpenRequest::create())?);
    let db = paths.db;
    fixture.rows().write_sqlite(&db)?;
    Ok(Master::Sqlite { _dir: dir, db })
}

/// The master board of `fixture` on PostgreSQL (same rows).
fn build_pg(pg: &PgServer, fixture: Fixture) -> Result<Master<'_>> {
    let db = pg.new_board("master")?;
    fixture.rows().write_postgres(&mut pg.board_client(&db)?)?;
    Ok(Master::Postgres { pg, db })
}

/// A private copy of a master board, in its own Hermes root.
struct Copy {
    root: tempfile::TempDir,
    /// Scratch workspaces elsewhere (e.g. tmpfs), for both implementations.
    workspaces: Option<tempfile::TempDir>,
    /// The copy's PostgreSQL board, when the master is one.
    database: Option<kanban_store::backend::PostgresLocation>,
}

impl Copy {
    fn of(master: &Master) -> Result<Copy> {
        let root = tempfile::Builder::new()
            .prefix("kanban-dbench-")
            .tempdir()?;
        let database = match master {
            Master::Sqlite { db, .. } => {
                std::fs::copy(db, root.path().join("kanban.db"))?;
                None
            }
            Master::Postgres { pg, db } => Some(pg.pg_location(&pg.copy(db, "copy")?)?),
        };
        Ok(Copy {
            root,
            workspaces: None,
            database,
        })
    }

    /// A copy whose scratch workspaces live under `dir`.
    fn with_workspaces_in(master: &Master, dir: Option<&Path>) -> Result<Copy> {
        let mut copy = Copy::of(master)?;
        if let Some(dir) = dir {
            copy.workspaces = Some(
                tempfile::Builder::new()
                    .prefix("kanban-dbench-ws-")
                    .tempdir_in(dir)?,
            );
        }
        Ok(copy)
    }

    fn db(&self) -> PathBuf {
        self.root.path().join("kanban.db")
    }

    fn paths(&self) -> kanban_hermes::layout::BoardPaths {
        let mut paths = Root::at(self.root.path()).board_paths("default");
        paths.database = self.database.clone();
        paths
    }

    fn open(&self) -> Result<Arc<dyn DispatchStore>> {
        Ok(open_board(&self.paths().location(), &OpenRequest::existing())?.dispatch())
    }

    fn dispatcher(&self, store: Arc<dyn DispatchStore>) -> Dispatcher {
        let root = Root::at(self.root.path());
        let mut paths = self.paths();
        if let Some(ws) = &self.workspaces {
            paths.workspaces_root = ws.path().to_path_buf();
        }
        let liveness = Arc::new(StaticLiveness::new("bench-host"));
        let env = MapEnv::new()
            .with("HERMES_BIN", "/bin/true")
            .with("PATH", std::env::var("PATH").unwrap_or_default())
            .with("HOME", self.root.path().to_string_lossy());
        Dispatcher::new(DispatcherParts {
            store,
            spawner: Arc::new(StubSpawner::with_liveness(liveness.clone())),
            liveness,
            profiles: Arc::new(Profiles::new(&root, &KanbanConfig::default())),
            context: Arc::new(TitleBodyContext),
            env: Arc::new(env) as Arc<dyn Env + Send + Sync>,
            board: BoardContext::new(&root, &paths, None),
        })
    }

    /// Run the reference driver on this copy; returns its JSON document.
    fn reference(&self, wheel: &Path, mode: &str, passes: usize) -> Result<serde_json::Value> {
        let script = self.root.path().join("ref_dispatch.py");
        std::fs::write(&script, REFERENCE_DRIVER)?;
        let mut cmd = Command::new("python3");
        for var in [
            "HERMES_KANBAN_HOME",
            "HERMES_KANBAN_DB",
            "HERMES_KANBAN_BOARD",
            "HERMES_PROFILE",
        ] {
            cmd.env_remove(var);
        }
        // With site-packages (no `-S`): the reference's lifecycle hooks import
        // `yaml`; without it they re-import (and re-compile) a module per claim.
        cmd.arg(&script)
            .arg(mode)
            .arg(self.db())
            .arg(passes.to_string())
            .env("PYTHONPATH", wheel)
            .env("HERMES_HOME", self.root.path())
            .env("HOME", self.root.path());
        if let Some(ws) = &self.workspaces {
            cmd.env("HERMES_KANBAN_WORKSPACES_ROOT", ws.path());
        }
        let out = cmd.output().context("running the reference driver")?;
        if !out.status.success() {
            bail!(
                "reference driver ({mode}) failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(serde_json::from_slice(&out.stdout)?)
    }
}

/// The reference side: times `dispatch_once` on one connection.
const REFERENCE_DRIVER: &str = r#"
import json, sys, time
from pathlib import Path
import hermes_cli.kanban_db as kb

mode, db, passes = sys.argv[1], Path(sys.argv[2]), int(sys.argv[3])
conn = kb.connect(db_path=db)
next_pid = [4_000_000]
def stub(task, workspace):
    next_pid[0] += 1
    return next_pid[0]
out = {"seconds": []}
if mode == "claims":
    t0 = time.perf_counter()
    r = kb.dispatch_once(conn, spawn_fn=stub)
    out["seconds"].append(time.perf_counter() - t0)
    out["spawned"] = len(r.spawned)
elif mode == "archive":
    kb.dispatch_once(conn, spawn_fn=stub)
    parents = [r[0] for r in conn.execute(
        "SELECT id FROM tasks WHERE status = 'blocked' ORDER BY id LIMIT ?", (passes,))]
    spawned = 0
    for p in parents:
        kb.archive_task(conn, p)
        t0 = time.perf_counter()
        r = kb.dispatch_once(conn, spawn_fn=stub)
        out["seconds"].append(time.perf_counter() - t0)
        spawned += len(r.spawned)
    out["spawned"] = spawned
else:
    kb.dispatch_once(conn, spawn_fn=stub)
    for _ in range(passes):
        t0 = time.perf_counter()
        kb.dispatch_once(conn, spawn_fn=stub)
        out["seconds"].append(time.perf_counter() - t0)
print(json.dumps(out))
"#;

/// Nearest-rank percentile of sorted values.
fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Median and p95 of durations in seconds.
fn stats(mut secs: Vec<f64>) -> (f64, f64) {
    secs.sort_by(f64::total_cmp);
    (percentile(&secs, 50.0), percentile(&secs, 95.0))
}

fn fmt_secs(s: f64) -> String {
    if s >= 1.0 {
        format!("{s:.2} s")
    } else if s >= 1e-3 {
        format!("{:.2} ms", s * 1e3)
    } else {
        format!("{:.1} µs", s * 1e6)
    }
}

fn time_cell(secs: Vec<f64>) -> String {
    let n = secs.len();
    let (med, p95) = stats(secs);
    format!("{} (p95 {}, n={n})", fmt_secs(med), fmt_secs(p95))
}

/// Rate at the median run, and at the p95 (slowest) run.
fn rate_cell(tasks: usize, secs: Vec<f64>) -> String {
    let n = secs.len();
    let (med, p95) = stats(secs);
    format!(
        "{:.0}/s (p95 run {:.0}/s, n={n})",
        tasks as f64 / med,
        tasks as f64 / p95
    )
}

fn ref_seconds(doc: &serde_json::Value) -> Vec<f64> {
    doc["seconds"]
        .as_array()
        .map(|a| a.iter().filter_map(|v| v.as_f64()).collect())
        .unwrap_or_default()
}

struct Row {
    figure: String,
    ours: String,
    pg: String,
    theirs: String,
    target: &'static str,
}

/// The master boards of one fixture, one per measured backend.
struct Masters<'a> {
    sqlite: Option<Master<'static>>,
    postgres: Option<Master<'a>>,
}

impl<'a> Masters<'a> {
    fn build(args: &Args, pg: Option<&'a PgServer>, fixture: Fixture) -> Result<Masters<'a>> {
        Ok(Masters {
            sqlite: if args.backend.sqlite() {
                Some(build(fixture)?)
            } else {
                None
            },
            postgres: pg.map(|pg| build_pg(pg, fixture)).transpose()?,
        })
    }

    /// `f` on each master: the (SQLite, PostgreSQL) results.
    fn each<T>(&self, mut f: impl FnMut(&Master) -> Result<T>) -> Result<(Option<T>, Option<T>)> {
        let sqlite = self.sqlite.as_ref().map(&mut f).transpose()?;
        let postgres = self.postgres.as_ref().map(&mut f).transpose()?;
        Ok((sqlite, postgres))
    }
}

fn cells<T>(
    (sqlite, postgres): (Option<T>, Option<T>),
    cell: impl Fn(T) -> String,
) -> (String, String) {
    let show = |v: Option<T>| v.map_or_else(|| "not measured".to_string(), &cell);
    (show(sqlite), show(postgres))
}

fn bench_claims(
    args: &Args,
    wheel: Option<&Path>,
    pg: Option<&PgServer>,
    rows: &mut Vec<Row>,
) -> Result<()> {
    let masters = Masters::build(args, pg, Fixture::Ready(args.claims))?;
    let shm = Path::new(TMPFS);
    let variants: &[(&str, Option<&Path>, &str, &str)] = &[
        ("claims", None, "", "> 10,000/s"),
        (
            "claims-tmpfs",
            Some(shm),
            "; scratch workspaces on tmpfs, DB on disk",
            "—",
        ),
    ];
    // Every copy is kept until the end: deleting thousands of workspace
    // directories between runs makes ext4 (no journal here) scan the
    // recently deleted inodes on each later mkdir, which would dominate.
    let mut keep = Vec::new();
    for (name, ws, label, target) in variants {
        if !args.wants(name) || ws.is_some_and(|d| !d.is_dir()) {
            continue;
        }
        let ours = masters.each(|master| {
            let mut secs = Vec::new();
            for _ in 0..args.claim_runs {
                let copy = Copy::with_workspaces_in(master, *ws)?;
                let d = copy.dispatcher(copy.open()?);
                let t0 = Instant::now();
                let r = d.dispatch_once(&DispatchOptions::default())?;
                let el = t0.elapsed().as_secs_f64();
                if r.spawned.len() != args.claims {
                    bail!("spawned {} of {} ready tasks", r.spawned.len(), args.claims);
                }
                secs.push(el);
                keep.push(copy);
            }
            Ok(secs)
        })?;
        let theirs = match (wheel, &masters.sqlite) {
            (Some(w), Some(master)) => {
                let mut secs = Vec::new();
                for _ in 0..args.reference_claim_runs {
                    let copy = Copy::with_workspaces_in(master, *ws)?;
                    let doc = copy.reference(w, "claims", 0)?;
                    keep.push(copy);
                    if doc["spawned"].as_u64() != Some(args.claims as u64) {
                        bail!("reference spawned {} tasks", doc["spawned"]);
                    }
                    secs.extend(ref_seconds(&doc));
                }
                rate_cell(args.claims, secs)
            }
            _ => "not measured".into(),
        };
        let (ours, pg) = cells(ours, |s| rate_cell(args.claims, s));
        rows.push(Row {
            figure: format!(
                "claims per second, stub spawner, {} ready tasks (one pass{label})",
                args.claims
            ),
            ours,
            pg,
            theirs,
            target,
        });
    }
    Ok(())
}

/// Timed passes of one long-lived dispatcher (after one warm-up pass).
fn steady_passes(d: &Dispatcher, n: usize) -> Result<Vec<f64>> {
    let opts = DispatchOptions::default();
    d.dispatch_once(&opts)?;
    (0..n)
        .map(|_| {
            let t0 = Instant::now();
            let r = d.dispatch_once(&opts)?;
            let el = t0.elapsed().as_secs_f64();
            if r.skipped_locked || !r.spawned.is_empty() || r.promoted != 0 {
                bail!("an idle pass did work: {r:?}");
            }
            Ok(el)
        })
        .collect()
}

fn bench_idle(
    args: &Args,
    wheel: Option<&Path>,
    pg: Option<&PgServer>,
    rows: &mut Vec<Row>,
) -> Result<()> {
    let masters = Masters::build(args, pg, Fixture::Done(args.done))?;
    let ours = masters.each(|master| {
        let copy = Copy::of(master)?;
        let d = copy.dispatcher(copy.open()?);
        steady_passes(&d, args.passes)
    })?;
    let theirs = match (wheel, &masters.sqlite) {
        (Some(w), Some(master)) => time_cell(ref_seconds(&Copy::of(master)?.reference(
            w,
            "idle",
            args.reference_passes,
        )?)),
        _ => "not measured".into(),
    };
    let (ours, pg) = cells(ours, time_cell);
    rows.push(Row {
        figure: format!(
            "one idle dispatch pass in-process, board with {}k done tasks",
            args.done / 1000
        ),
        ours,
        pg,
        theirs,
        target: "< 40 µs",
    });
    Ok(())
}

/// Steady passes, first passes of new dispatchers, and passes right after
/// one parent was archived, on one dependency board.
fn pair_passes(args: &Args, master: &Master) -> Result<[Vec<f64>; 3]> {
    // Steady state: nothing changed since the last pass.
    let copy = Copy::of(master)?;
    let store = copy.open()?;
    let steady = steady_passes(&copy.dispatcher(store.clone()), args.passes)?;
    // First pass of a fresh dispatcher: the full promotion sweep.
    let first: Vec<f64> = (0..args.first_passes)
        .map(|_| {
            let d = copy.dispatcher(store.clone());
            let t0 = Instant::now();
            d.dispatch_once(&DispatchOptions::default())?;
            Ok(t0.elapsed().as_secs_f64())
        })
        .collect::<Result<_>>()?;
    // One parent archived between passes: its child is promoted.
    let changes = args.first_passes.min(args.pairs);
    let copy2 = Copy::of(master)?;
    let store2 = copy2.open()?;
    let d = copy2.dispatcher(store2.clone());
    d.dispatch_once(&DispatchOptions::default())?;
    let mut after_change = Vec::new();
    let mut spawned = 0;
    for i in 0..changes {
        store2.archive_task(&task_id(2 * i))?;
        let t0 = Instant::now();
        let r = d.dispatch_once(&DispatchOptions::default())?;
        after_change.push(t0.elapsed().as_secs_f64());
        spawned += r.spawned.len();
    }
    if spawned != changes {
        bail!("spawned {spawned} children after {changes} archives");
    }
    Ok([steady, after_change, first])
}

fn bench_pairs(
    args: &Args,
    wheel: Option<&Path>,
    pg: Option<&PgServer>,
    rows: &mut Vec<Row>,
) -> Result<()> {
    let masters = Masters::build(args, pg, Fixture::Pairs(args.pairs))?;
    let k = args.pairs / 1000;
    let (sqlite, postgres) = masters.each(|m| pair_passes(args, m))?;
    let (mut sqlite, mut postgres) = (sqlite.map(Vec::from), postgres.map(Vec::from));
    let (theirs, theirs_change) = match (wheel, &masters.sqlite) {
        (Some(w), Some(master)) => {
            let steady = Copy::of(master)?.reference(w, "pairs", args.reference_pair_passes)?;
            let change = Copy::of(master)?.reference(w, "archive", args.reference_pair_passes)?;
            (
                time_cell(ref_seconds(&steady)),
                time_cell(ref_seconds(&change)),
            )
        }
        _ => ("not measured".into(), "not measured".into()),
    };
    let figures = [
        (
            format!("one pass, {k}k todo children waiting on {k}k blocked parents"),
            theirs.clone(),
            "< 1 ms",
        ),
        (
            "same board, pass right after one parent was archived (its child promoted and spawned)"
                .into(),
            theirs_change,
            "—",
        ),
        (
            "same board, first pass of a new dispatcher (full promotion sweep)".into(),
            theirs,
            "—",
        ),
    ];
    for (figure, theirs, target) in figures {
        let take = |v: &mut Option<Vec<Vec<f64>>>| v.as_mut().map(|v| v.remove(0));
        let (ours, pg) = cells((take(&mut sqlite), take(&mut postgres)), time_cell);
        rows.push(Row {
            figure,
            ours,
            pg,
            theirs,
            target,
        });
    }
    Ok(())
}

fn main() -> Result<()> {
    let args = Args::parse();
    let wheel = if args.skip_reference || !args.backend.sqlite() {
        None
    } else {
        Some(reference_path(&args)?)
    };
    let wheel = wheel.as_deref();
    let pg = if args.backend.postgres() {
        Some(PgServer::start()?)
    } else {
        None
    };
    let pg = pg.as_ref();
    let mut rows = Vec::new();
    if args.wants("claims") || args.wants("claims-tmpfs") {
        bench_claims(&args, wheel, pg, &mut rows)?;
        eprintln!("claims measured");
    }
    if args.wants("idle") {
        bench_idle(&args, wheel, pg, &mut rows)?;
        eprintln!("idle measured");
    }
    if args.wants("pairs") {
        bench_pairs(&args, wheel, pg, &mut rows)?;
        eprintln!("pairs measured");
    }
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!(
        "dispatch_bench ({} build) | reference: hermes-agent 0.19.0 | {cpus} CPUs | load {}{}",
        if cfg!(debug_assertions) {
            "debug"
        } else {
            "release"
        },
        load.split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" "),
        pg.map_or_else(String::new, |p| format!(" | PostgreSQL {}", p.version()))
    );
    println!("Cells: median (p95, n = samples); rates: tasks / pass wall time.");
    println!();
    if pg.is_some() {
        println!("| figure | kanban, SQLite | kanban, PostgreSQL | reference | target |");
        println!("| --- | --- | --- | --- | --- |");
    } else {
        println!("| figure | kanban | reference | target |");
        println!("| --- | --- | --- | --- |");
    }
    for r in &rows {
        if pg.is_some() {
            println!(
                "| {} | {} | {} | {} | {} |",
                r.figure, r.ours, r.pg, r.theirs, r.target
            );
        } else {
            println!(
                "| {} | {} | {} | {} |",
                r.figure, r.ours, r.theirs, r.target
            );
        }
    }
    Ok(())
}
