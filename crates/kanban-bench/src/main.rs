//! `kanban-bench`: measures `kanban` and the Python reference (hermes-agent
//! 0.19.0) in the same run, on the same boards, and prints a markdown table
//! (`figure | kanban | reference | target`) for BENCHMARKS.md.
//!
//! Whole-process figures time `target/release/kanban` from spawn to exit;
//! in-process figures call the `kanban_store` API directly. The reference runs
//! through `tests/interop/ref_board.py` (its library calls, and its own
//! `hermes kanban` CLI via `ref_board.py cli`).
//!
//! `--backend postgres|both` measures the same figures on a PostgreSQL
//! board too (a private server, see `pg.rs`; `kanban --db URL`), in a
//! column of its own beside SQLite's.

mod board;
mod fixture;
mod measure;
mod pg;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use clap::Parser;
use kanban_store::backend::{BoardLocation, OpenRequest, open_board};
use kanban_store::{Ceilings, ClaimOutcome, ClaimRequest, NewTask, Store};
use measure::{sample, summarize};
use pg::{Backend, PgServer};

#[derive(Parser, Debug)]
#[command(about = "Benchmark kanban against the Python reference and print a markdown table")]
struct Args {
    /// Board sizes for the `list` figures.
    #[arg(long, value_delimiter = ',', default_value = "10000,100000")]
    sizes: Vec<usize>,
    /// Timed runs per whole-process figure for kanban.
    #[arg(long, default_value_t = 21)]
    runs: usize,
    /// Timed runs per whole-process figure for the reference (slower).
    #[arg(long, default_value_t = 5)]
    reference_runs: usize,
    /// Tasks created (and claimed) in-process.
    #[arg(long, default_value_t = 2000)]
    tasks: usize,
    /// `kanban create` processes for the CLI create figure.
    #[arg(long, default_value_t = 200)]
    cli_creates: usize,
    /// Reference CLI `create` processes (each pays Python start-up).
    #[arg(long, default_value_t = 20)]
    reference_cli_creates: usize,
    /// The kanban binary (default: `kanban` next to this executable, built if missing).
    #[arg(long)]
    kanban: Option<PathBuf>,
    /// Measure kanban only.
    #[arg(long)]
    skip_reference: bool,
    /// Which store backends to measure (the reference needs the SQLite board).
    #[arg(long, value_enum, default_value_t = Backend::Sqlite)]
    backend: Backend,
    /// Internal: fill this SQLite board with a fixture of `--sizes` tasks, then exit.
    #[arg(long, hide = true)]
    fill_sqlite: Option<PathBuf>,
    /// Internal: fill this PostgreSQL board (URL) likewise, then exit.
    #[arg(long, hide = true)]
    fill_postgres: Option<String>,
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn kanban_binary(args: &Args) -> Result<PathBuf> {
    if let Some(p) = &args.kanban {
        return Ok(p.clone());
    }
    let me = std::env::current_exe()?;
    let bin = me.with_file_name("kanban");
    if !bin.exists() || cfg!(debug_assertions) {
        // Same profile as this harness, so `cargo run --release -p kanban-bench`
        // always measures a release `kanban` built from the current tree.
        let mut cargo = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
        cargo
            .current_dir(repo_root())
            .args(["build", "-p", "kanban", "--bin", "kanban"]);
        if !cfg!(debug_assertions) {
            cargo.arg("--release");
        }
        let st = cargo.status().context("running cargo build -p kanban")?;
        if !st.success() {
            bail!("cargo build -p kanban failed");
        }
    }
    Ok(bin)
}

fn reference_path() -> Result<PathBuf> {
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

/// Commands on one isolated Hermes root.
struct Env {
    root: tempfile::TempDir,
    kanban: PathBuf,
    reference: Option<PathBuf>,
    /// The board is in PostgreSQL (`--db URL`) instead of the root's file.
    db_url: Option<String>,
}

impl Env {
    fn new(kanban: &Path, reference: Option<&Path>) -> Result<Env> {
        Ok(Env {
            root: tempfile::Builder::new().prefix("kanban-bench-").tempdir()?,
            kanban: kanban.to_path_buf(),
            reference: reference.map(Path::to_path_buf),
            db_url: None,
        })
    }

    /// The same, on the PostgreSQL board of database `db`.
    fn on_postgres(kanban: &Path, pg: &PgServer, db: &str) -> Result<Env> {
        let mut env = Env::new(kanban, None)?;
        env.db_url = Some(pg.url(db));
        Ok(env)
    }

    fn db(&self) -> PathBuf {
        self.root.path().join("kanban.db")
    }

    fn isolate(&self, cmd: &mut Command) {
        for var in [
            "HERMES_KANBAN_HOME",
            "HERMES_KANBAN_DB",
            "HERMES_KANBAN_BOARD",
            "HERMES_PROFILE",
        ] {
            cmd.env_remove(var);
        }
        cmd.env("HERMES_HOME", self.root.path())
            .env("HOME", self.root.path());
    }

    fn kanban(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(&self.kanban);
        self.isolate(&mut cmd);
        cmd.args(args);
        if let Some(url) = &self.db_url {
            cmd.args(["--db", url]);
        }
        cmd
    }

    fn reference(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new("python3");
        self.isolate(&mut cmd);
        cmd.arg("-S")
            .arg(repo_root().join("tests/interop/ref_board.py"))
            .args(args);
        if let Some(p) = &self.reference {
            cmd.env("PYTHONPATH", p);
        }
        cmd
    }

    fn reference_json(&self, args: &[&str]) -> Result<serde_json::Value> {
        let out = self.reference(args).output()?;
        if !out.status.success() {
            bail!(
                "ref_board.py {args:?} failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(serde_json::from_slice(&out.stdout)?)
    }

    fn store(&self) -> Result<Arc<dyn Store>> {
        let location = match &self.db_url {
            Some(url) => BoardLocation::parse(url)?,
            None => BoardLocation::sqlite(self.db()),
        };
        Ok(open_board(&location, &OpenRequest::create())?.store())
    }
}

/// The environments of one figure: SQLite's (also the reference's), and
/// PostgreSQL's when measured.
struct Envs {
    sqlite: Option<Env>,
    postgres: Option<Env>,
    /// The PostgreSQL board's database.
    pg_db: Option<String>,
}

impl Envs {
    /// Empty boards: `kanban init` on SQLite, the store's create on PostgreSQL.
    fn new(
        args: &Args,
        kanban: &Path,
        reference: Option<&Path>,
        pg: Option<&PgServer>,
        what: &str,
    ) -> Result<Envs> {
        let sqlite = if args.backend.sqlite() {
            let env = Env::new(kanban, reference)?;
            measure::run_timed(&mut env.kanban(&["init"]))?;
            Some(env)
        } else {
            None
        };
        let (postgres, pg_db) = match pg {
            Some(pg) => {
                let db = pg.new_board(what)?;
                (Some(Env::on_postgres(kanban, pg, &db)?), Some(db))
            }
            None => (None, None),
        };
        Ok(Envs {
            sqlite,
            postgres,
            pg_db,
        })
    }

    /// `f` on each measured backend: (SQLite, PostgreSQL) cells.
    fn each(&self, mut f: impl FnMut(&Env) -> Result<String>) -> Result<(String, String)> {
        let mut cell = |e: &Option<Env>| e.as_ref().map_or_else(|| Ok(not_measured()), &mut f);
        Ok((cell(&self.sqlite)?, cell(&self.postgres)?))
    }
}

fn not_measured() -> String {
    "not measured".into()
}

struct Row {
    figure: String,
    ours: String,
    pg: String,
    theirs: String,
    target: String,
}

fn row(
    figure: impl Into<String>,
    (ours, pg): (String, String),
    theirs: String,
    target: &str,
) -> Row {
    Row {
        figure: figure.into(),
        ours,
        pg,
        theirs,
        target: target.to_owned(),
    }
}

fn rate(n: usize, secs: f64) -> String {
    format!("{:.0}/s", n as f64 / secs)
}

fn human_size(n: usize) -> String {
    if n.is_multiple_of(1000) {
        format!("{}k", n / 1000)
    } else {
        n.to_string()
    }
}

/// Builds a fixture board in a child process of this binary: a spawned
/// child's peak RSS (`wait4`) starts from this process's peak (it runs in
/// our memory until it execs), so this process never holds a fixture.
fn fill_in_child(flag: &str, target: &str, n: usize) -> Result<()> {
    let st = Command::new(std::env::current_exe()?)
        .args([flag, target, "--sizes", &n.to_string()])
        .status()?;
    if !st.success() {
        bail!("building the {n}-task fixture ({flag}) failed");
    }
    Ok(())
}

/// The internal fill modes (see [`fill_in_child`]); true when one ran.
fn fill_mode(args: &Args) -> Result<bool> {
    let n = args.sizes.first().copied().unwrap_or(0);
    if let Some(db) = &args.fill_sqlite {
        board::rows(n).write_sqlite(db)?;
        return Ok(true);
    }
    if let Some(url) = &args.fill_postgres {
        board::rows(n).write_postgres(&mut pg::board_client_at(url)?)?;
        return Ok(true);
    }
    Ok(false)
}

/// Set: print PostgreSQL's plan of the `list` query on each board.
const ENV_EXPLAIN: &str = "KANBAN_BENCH_EXPLAIN";

/// The query `kanban list` runs (kanban-store-postgres `tasks::list_query`
/// with the default order), explained and run on the fixture board.
fn explain_list(client: &mut postgres::Client) -> Result<()> {
    let sql = "EXPLAIN (ANALYZE, BUFFERS) SELECT id, title, assignee, status, tenant, priority, \
               created_at FROM tasks WHERE 1=1 AND status != 'archived' ORDER BY priority DESC \
               NULLS LAST, created_at ASC, status COLLATE \"C\" ASC, id COLLATE \"C\" ASC";
    for row in client.query(sql, &[])? {
        eprintln!("  {}", row.get::<_, String>(0));
    }
    Ok(())
}

fn list_target(n: usize) -> &'static str {
    match n {
        10_000 => "< 20 ms",
        100_000 => "< 50 ms",
        _ => "—",
    }
}

fn bench_list(
    args: &Args,
    kanban: &Path,
    reference: Option<&Path>,
    pg: Option<&PgServer>,
    rows: &mut Vec<Row>,
) -> Result<()> {
    for &n in &args.sizes {
        let envs = Envs::new(args, kanban, reference, pg, "list")?;
        if let Some(env) = &envs.sqlite {
            fill_in_child("--fill-sqlite", &env.db().to_string_lossy(), n)?;
        }
        if let (Some(pg), Some(db)) = (pg, &envs.pg_db) {
            fill_in_child("--fill-postgres", &pg.url(db), n)?;
            if std::env::var_os(ENV_EXPLAIN).is_some() {
                explain_list(&mut pg.board_client(db)?)?;
            }
        }
        eprintln!("list: board of {n} tasks built");
        let ours = envs
            .each(|env| Ok(summarize(&sample(&mut || env.kanban(&["list"]), args.runs)?).cell()))?;
        let ours_json = envs.each(|env| {
            Ok(summarize(&sample(&mut || env.kanban(&["list", "--json"]), args.runs)?).cell())
        })?;
        let (theirs, theirs_json) = match (&envs.sqlite, reference) {
            (Some(env), Some(_)) => {
                let t = summarize(&sample(
                    &mut || env.reference(&["cli", "--", "list"]),
                    args.reference_runs,
                )?);
                let j = summarize(&sample(
                    &mut || env.reference(&["cli", "--", "list", "--json"]),
                    args.reference_runs,
                )?);
                (t.cell(), j.cell())
            }
            _ => (not_measured(), not_measured()),
        };
        let size = human_size(n);
        rows.push(row(
            format!("`kanban list` whole process, {size}-task board"),
            ours,
            theirs,
            list_target(n),
        ));
        rows.push(row(
            format!("`kanban list --json` whole process, {size}-task board"),
            ours_json,
            theirs_json,
            "—",
        ));
    }
    Ok(())
}

fn bench_create(
    args: &Args,
    kanban: &Path,
    reference: Option<&Path>,
    pg: Option<&PgServer>,
    rows: &mut Vec<Row>,
) -> Result<()> {
    // In-process: one store, one create per task.
    let envs = Envs::new(args, kanban, reference, pg, "create")?;
    let ours = envs.each(|env| {
        let store = env.store()?;
        let started = Instant::now();
        for i in 0..args.tasks {
            store.create_task(&NewTask {
                title: format!("bench {i}"),
                assignee: Some("worker".into()),
                ..Default::default()
            })?;
        }
        Ok(rate(args.tasks, started.elapsed().as_secs_f64()))
    })?;
    let theirs = if reference.is_some() && args.backend.sqlite() {
        let env = Env::new(kanban, reference)?;
        let n = args.tasks.to_string();
        let doc = env.reference_json(&["create-many", "--n", &n, "--assignee", "worker"])?;
        rate(args.tasks, doc["seconds"].as_f64().unwrap_or(f64::NAN))
    } else {
        not_measured()
    };
    rows.push(row(
        format!(
            "task creation in-process (store API vs `create_task`), {} tasks",
            args.tasks
        ),
        ours,
        theirs,
        "—",
    ));

    // Whole process: one `create` command per task.
    let envs = Envs::new(args, kanban, reference, pg, "cli_create")?;
    let ours = envs.each(|env| {
        let samples: Vec<_> = (0..args.cli_creates)
            .map(|i| {
                measure::run_timed(&mut env.kanban(&[
                    "create",
                    &format!("cli {i}"),
                    "--assignee",
                    "worker",
                ]))
            })
            .collect::<Result<_>>()?;
        let total: f64 = samples.iter().map(|s| s.wall.as_secs_f64()).sum();
        Ok(format!(
            "{} ({})",
            rate(samples.len(), total),
            summarize(&samples).cell()
        ))
    })?;
    let theirs = if reference.is_some() && args.backend.sqlite() {
        let env = Env::new(kanban, reference)?;
        env.reference_json(&["init"])?;
        let samples: Vec<_> = (0..args.reference_cli_creates)
            .map(|i| {
                measure::run_timed(&mut env.reference(&[
                    "cli",
                    "--",
                    "create",
                    &format!("cli {i}"),
                    "--assignee",
                    "worker",
                ]))
            })
            .collect::<Result<_>>()?;
        let total: f64 = samples.iter().map(|s| s.wall.as_secs_f64()).sum();
        format!(
            "{} ({})",
            rate(samples.len(), total),
            summarize(&samples).cell()
        )
    } else {
        not_measured()
    };
    rows.push(row(
        "`kanban create` whole process, one task per process",
        ours,
        theirs,
        "—",
    ));
    Ok(())
}

fn bench_claim(
    args: &Args,
    kanban: &Path,
    reference: Option<&Path>,
    pg: Option<&PgServer>,
    rows: &mut Vec<Row>,
) -> Result<()> {
    let envs = Envs::new(args, kanban, reference, pg, "claim")?;
    let ours = envs.each(|env| {
        let store = env.store()?;
        let ids: Vec<String> = (0..args.tasks)
            .map(|i| {
                store
                    .create_task(&NewTask {
                        title: format!("claim {i}"),
                        assignee: Some("worker".into()),
                        ..Default::default()
                    })
                    .map(|c| c.task.id)
            })
            .collect::<Result<_, _>>()?;
        let started = Instant::now();
        let mut won = 0;
        for id in &ids {
            let out = store.claim_task(&ClaimRequest {
                task_id: id.clone(),
                claim_lock: format!("bench:{}", std::process::id()),
                ttl_seconds: 900,
                review: false,
                ceilings: Ceilings::default(),
            })?;
            if matches!(out, ClaimOutcome::Claimed { .. }) {
                won += 1;
            }
        }
        let secs = started.elapsed().as_secs_f64();
        if won != ids.len() {
            bail!("claimed {won} of {} ready tasks", ids.len());
        }
        Ok(rate(won, secs))
    })?;
    let theirs = if reference.is_some() && args.backend.sqlite() {
        let env = Env::new(kanban, reference)?;
        let n = args.tasks.to_string();
        env.reference_json(&["create-many", "--n", &n, "--assignee", "worker"])?;
        let doc = env.reference_json(&["claim-many"])?;
        rate(
            doc["claimed"].as_u64().unwrap_or(0) as usize,
            doc["seconds"].as_f64().unwrap_or(f64::NAN),
        )
    } else {
        not_measured()
    };
    rows.push(row(
        format!(
            "claims in-process, one at a time (store API vs `claim_task`), {} ready tasks",
            args.tasks
        ),
        ours,
        theirs,
        "—",
    ));
    Ok(())
}

fn main() -> Result<()> {
    let args = Args::parse();
    if fill_mode(&args)? {
        return Ok(());
    }
    let kanban = kanban_binary(&args)?;
    let reference = if args.skip_reference || !args.backend.sqlite() {
        None
    } else {
        Some(reference_path()?)
    };
    let reference = reference.as_deref();
    let pg = if args.backend.postgres() {
        Some(PgServer::start()?)
    } else {
        None
    };
    let pg = pg.as_ref();
    let mut rows = Vec::new();
    bench_list(&args, &kanban, reference, pg, &mut rows)?;
    bench_create(&args, &kanban, reference, pg, &mut rows)?;
    bench_claim(&args, &kanban, reference, pg, &mut rows)?;

    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!(
        "kanban: {} ({} build) | reference: hermes-agent 0.19.0 | {cpus} CPUs | load {} | {} runs per kanban figure, {} per reference figure{}",
        kanban.display(),
        if cfg!(debug_assertions) {
            "debug"
        } else {
            "release"
        },
        load.split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" "),
        args.runs,
        args.reference_runs,
        pg.map_or_else(String::new, |p| format!(" | PostgreSQL {}", p.version()))
    );
    println!("Cells: median (p95), peak RSS of one process; rates are totals over all operations.");
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
