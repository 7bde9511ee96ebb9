//! `kanban-bench`: measures `kanban` and the Python reference (hermes-agent
//! 0.19.0) in the same run, on the same boards, and prints a markdown table
//! (`figure | kanban | reference | target`) for BENCHMARKS.md.
//!
//! Whole-process figures time `target/release/kanban` from spawn to exit;
//! in-process figures call the `kanban_store` API directly. The reference runs
//! through `tests/interop/ref_board.py` (its library calls, and its own
//! `hermes kanban` CLI via `ref_board.py cli`).

mod board;
mod measure;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use clap::Parser;
use kanban_store::backend::{BoardLocation, OpenRequest, open_board};
use kanban_store::{Ceilings, ClaimOutcome, ClaimRequest, NewTask, Store};
use measure::{Summary, sample, summarize};

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
}

impl Env {
    fn new(kanban: &Path, reference: Option<&Path>) -> Result<Env> {
        Ok(Env {
            root: tempfile::Builder::new().prefix("kanban-bench-").tempdir()?,
            kanban: kanban.to_path_buf(),
            reference: reference.map(Path::to_path_buf),
        })
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
        let location = BoardLocation::sqlite(self.db());
        Ok(open_board(&location, &OpenRequest::create())?.store())
    }
}

struct Row {
    figure: String,
    ours: String,
    theirs: String,
    target: String,
}

fn row(figure: impl Into<String>, ours: String, theirs: String, target: &str) -> Row {
    Row {
        figure: figure.into(),
        ours,
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
    rows: &mut Vec<Row>,
) -> Result<()> {
    for &n in &args.sizes {
        let env = Env::new(kanban, reference)?;
        measure::run_timed(&mut env.kanban(&["init"]))?;
        board::fill(&env.db(), n)?;
        eprintln!("list: board of {n} tasks built");
        let ours = summarize(&sample(&mut || env.kanban(&["list"]), args.runs)?);
        let ours_json = summarize(&sample(&mut || env.kanban(&["list", "--json"]), args.runs)?);
        let (theirs, theirs_json) = if reference.is_some() {
            let t = summarize(&sample(
                &mut || env.reference(&["cli", "--", "list"]),
                args.reference_runs,
            )?);
            let j = summarize(&sample(
                &mut || env.reference(&["cli", "--", "list", "--json"]),
                args.reference_runs,
            )?);
            (cell(Some(t)), cell(Some(j)))
        } else {
            (cell(None), cell(None))
        };
        let size = human_size(n);
        rows.push(row(
            format!("`kanban list` whole process, {size}-task board"),
            ours.cell(),
            theirs,
            list_target(n),
        ));
        rows.push(row(
            format!("`kanban list --json` whole process, {size}-task board"),
            ours_json.cell(),
            theirs_json,
            "—",
        ));
    }
    Ok(())
}

fn cell(s: Option<Summary>) -> String {
    s.map_or_else(|| "not measured".to_owned(), |s| s.cell())
}

fn bench_create(
    args: &Args,
    kanban: &Path,
    reference: Option<&Path>,
    rows: &mut Vec<Row>,
) -> Result<()> {
    // In-process: one store, one create per task.
    let env = Env::new(kanban, reference)?;
    let store = env.store()?;
    let started = Instant::now();
    for i in 0..args.tasks {
        store.create_task(&NewTask {
            title: format!("bench {i}"),
            assignee: Some("worker".into()),
            ..Default::default()
        })?;
    }
    let ours = rate(args.tasks, started.elapsed().as_secs_f64());
    let theirs = if reference.is_some() {
        let env = Env::new(kanban, reference)?;
        let n = args.tasks.to_string();
        let doc = env.reference_json(&["create-many", "--n", &n, "--assignee", "worker"])?;
        rate(args.tasks, doc["seconds"].as_f64().unwrap_or(f64::NAN))
    } else {
        "not measured".into()
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
    let env = Env::new(kanban, reference)?;
    measure::run_timed(&mut env.kanban(&["init"]))?;
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
    let ours = format!(
        "{} ({})",
        rate(samples.len(), total),
        summarize(&samples).cell()
    );
    let theirs = if reference.is_some() {
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
        "not measured".into()
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
    rows: &mut Vec<Row>,
) -> Result<()> {
    let env = Env::new(kanban, reference)?;
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
    let ours = rate(won, secs);
    let theirs = if reference.is_some() {
        let env = Env::new(kanban, reference)?;
        let n = args.tasks.to_string();
        env.reference_json(&["create-many", "--n", &n, "--assignee", "worker"])?;
        let doc = env.reference_json(&["claim-many"])?;
        rate(
            doc["claimed"].as_u64().unwrap_or(0) as usize,
            doc["seconds"].as_f64().unwrap_or(f64::NAN),
        )
    } else {
        "not measured".into()
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
    let kanban = kanban_binary(&args)?;
    let reference = if args.skip_reference {
        None
    } else {
        Some(reference_path()?)
    };
    let reference = reference.as_deref();
    let mut rows = Vec::new();
    bench_list(&args, &kanban, reference, &mut rows)?;
    bench_create(&args, &kanban, reference, &mut rows)?;
    bench_claim(&args, &kanban, reference, &mut rows)?;

    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!(
        "kanban: {} ({} build) | reference: hermes-agent 0.19.0 | {cpus} CPUs | {} runs per kanban figure, {} per reference figure",
        kanban.display(),
        if cfg!(debug_assertions) {
            "debug"
        } else {
            "release"
        },
        args.runs,
        args.reference_runs
    );
    println!("Cells: median (p95), peak RSS of one process; rates are totals over all operations.");
    println!();
    println!("| figure | kanban | reference | target |");
    println!("| --- | --- | --- | --- |");
    for r in &rows {
        println!(
            "| {} | {} | {} | {} |",
            r.figure, r.ours, r.theirs, r.target
        );
    }
    Ok(())
}
