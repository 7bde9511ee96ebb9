//! `bigcli_bench`: the whole-process CLI figures of issue 14, this build
//! beside a previous one in the same run.
//!
//! * `kanban create "<title>" --assignee worker` first (before this process
//!   has touched a large board): `--creates` processes per build, each
//!   build on a board of its own, runs interleaved;
//! * `kanban list --json` on a board of `--tasks` tasks (default 100k, the
//!   fixture of `kanban-bench`): spawn to exit, peak RSS of the process;
//!   both builds read the same board, their runs interleaved, and their
//!   outputs are compared byte for byte once;
//! * `kanban list` (plain lines) on that board, for non-regression.
//!
//! ```text
//! cargo build --release -p kanban -p kanban-bench --bin kanban --bin bigcli_bench
//! target/release/bigcli_bench --baseline-bin target/baseline/release/kanban
//! ```

#[path = "../board.rs"]
mod board;
#[path = "../fixture.rs"]
mod fixture;
#[path = "../measure.rs"]
#[allow(dead_code)]
mod measure;

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};
use clap::Parser;
use measure::{Sample, run_timed, summarize};

#[derive(Parser, Debug)]
#[command(about = "kanban list --json and kanban create, whole process, beside a baseline build")]
struct Args {
    /// Tasks on the `list` board.
    #[arg(long, default_value_t = 100_000)]
    tasks: usize,
    /// Timed runs of each `list` figure per build.
    #[arg(long, default_value_t = 11)]
    runs: usize,
    /// `create` processes per build.
    #[arg(long, default_value_t = 200)]
    creates: usize,
    /// The kanban binary measured (default: `kanban` next to this executable).
    #[arg(long)]
    kanban: Option<PathBuf>,
    /// A previous build to measure beside it (e.g. built from the commit
    /// before the change into `target/baseline`).
    #[arg(long)]
    baseline_bin: Option<PathBuf>,
    /// Internal: fill this initialised SQLite board with `--tasks` tasks, then exit.
    #[arg(long, hide = true)]
    fill_sqlite: Option<PathBuf>,
}

/// One isolated Hermes root.
struct Root {
    dir: tempfile::TempDir,
}

impl Root {
    fn new(kanban: &Path) -> Result<Root> {
        let root = Root {
            dir: tempfile::Builder::new()
                .prefix("kanban-bigcli-")
                .tempdir()?,
        };
        run_timed(&mut root.cmd(kanban, &["init"]))?;
        Ok(root)
    }

    fn db(&self) -> PathBuf {
        self.dir.path().join("kanban.db")
    }

    fn cmd(&self, kanban: &Path, args: &[&str]) -> Command {
        let mut cmd = Command::new(kanban);
        for var in [
            "HERMES_KANBAN_HOME",
            "HERMES_KANBAN_DB",
            "HERMES_KANBAN_BOARD",
            "HERMES_KANBAN_DATABASE_URL",
            "HERMES_PROFILE",
        ] {
            cmd.env_remove(var);
        }
        cmd.env("HERMES_HOME", self.dir.path())
            .env("HOME", self.dir.path())
            .args(args);
        cmd
    }
}

/// The builds measured: (label, binary).
fn builds(args: &Args) -> Result<Vec<(&'static str, PathBuf)>> {
    let kanban = match &args.kanban {
        Some(p) => p.clone(),
        None => std::env::current_exe()?.with_file_name("kanban"),
    };
    if !kanban.exists() {
        bail!(
            "{} not found: build it (cargo build --release -p kanban) or pass --kanban",
            kanban.display()
        );
    }
    let mut out = vec![("this build", kanban)];
    if let Some(b) = &args.baseline_bin {
        if !b.exists() {
            bail!("--baseline-bin {} not found", b.display());
        }
        out.push(("baseline", b.clone()));
    }
    Ok(out)
}

/// Runs `args` with every build in turn, `runs` times (after one untimed
/// warm-up each), interleaved so both see the same machine load.
fn interleaved(
    root: &Root,
    builds: &[(&str, PathBuf)],
    args: &[&str],
    runs: usize,
) -> Result<Vec<Vec<Sample>>> {
    let mut samples = vec![Vec::with_capacity(runs); builds.len()];
    for (_, bin) in builds {
        run_timed(&mut root.cmd(bin, args))?;
    }
    for _ in 0..runs {
        for (i, (_, bin)) in builds.iter().enumerate() {
            samples[i].push(run_timed(&mut root.cmd(bin, args))?);
        }
    }
    Ok(samples)
}

/// Whether two builds print the same bytes for `args`: both outputs go
/// to files and are compared in chunks, so this process never holds them
/// (its heap would count in the peak RSS of the children it spawns later).
fn same_output(root: &Root, a: &Path, b: &Path, args: &[&str]) -> Result<bool> {
    use std::io::Read;
    let file_of = |bin: &Path, name: &str| -> Result<std::fs::File> {
        let path = root.dir.path().join(name);
        let st = root
            .cmd(bin, args)
            .stdout(std::fs::File::create(&path)?)
            .status()?;
        if !st.success() {
            bail!("{} {args:?} failed", bin.display());
        }
        Ok(std::fs::File::open(&path)?)
    };
    let mut fa = std::io::BufReader::new(file_of(a, "out-a")?);
    let mut fb = std::io::BufReader::new(file_of(b, "out-b")?);
    let (mut ba, mut bb) = (vec![0u8; 1 << 16], vec![0u8; 1 << 16]);
    loop {
        let na = read_full(&mut fa, &mut ba)?;
        let nb = read_full(&mut fb, &mut bb)?;
        if na != nb || ba[..na] != bb[..nb] {
            return Ok(false);
        }
        if na == 0 {
            return Ok(true);
        }
    }

    fn read_full(r: &mut impl Read, buf: &mut [u8]) -> Result<usize> {
        let mut n = 0;
        while n < buf.len() {
            match r.read(&mut buf[n..])? {
                0 => break,
                k => n += k,
            }
        }
        Ok(n)
    }
}

fn main() -> Result<()> {
    let args = Args::parse();
    if let Some(db) = &args.fill_sqlite {
        return board::rows(args.tasks).write_sqlite(db);
    }
    let builds = builds(&args)?;
    let mut table: Vec<(String, Vec<String>, &str)> = Vec::new();

    // create: one fresh board per build.
    let roots: Vec<Root> = builds
        .iter()
        .map(|(_, bin)| Root::new(bin))
        .collect::<Result<_>>()?;
    let mut creates = vec![Vec::with_capacity(args.creates); builds.len()];
    for i in 0..args.creates {
        let title = format!("cli {i}");
        for (b, (_, bin)) in builds.iter().enumerate() {
            let mut cmd = roots[b].cmd(bin, &["create", &title, "--assignee", "worker"]);
            creates[b].push(run_timed(&mut cmd)?);
        }
    }
    table.push((
        "`kanban create` whole process, one task per process".into(),
        creates
            .iter()
            .map(|s| {
                let total: f64 = s.iter().map(|x| x.wall.as_secs_f64()).sum();
                format!("{} ({:.0}/s)", summarize(s).cell(), s.len() as f64 / total)
            })
            .collect(),
        "< 3 ms",
    ));

    // list on one board, filled in a child process (see kanban-bench's
    // `fill_in_child`: a child's peak RSS starts from ours until it execs).
    let root = Root::new(&builds[0].1)?;
    let st = Command::new(std::env::current_exe()?)
        .arg("--fill-sqlite")
        .arg(root.db())
        .args(["--tasks", &args.tasks.to_string()])
        .status()
        .context("filling the board")?;
    if !st.success() {
        bail!("building the {}-task board failed", args.tasks);
    }
    eprintln!("list: board of {} tasks built", args.tasks);
    let size = if args.tasks.is_multiple_of(1000) {
        format!("{}k", args.tasks / 1000)
    } else {
        args.tasks.to_string()
    };
    let json = interleaved(&root, &builds, &["list", "--json"], args.runs)?;
    table.push((
        format!("`kanban list --json` whole process, {size}-task board"),
        json.iter().map(|s| summarize(s).cell()).collect(),
        "< 100 ms, < 30 MiB",
    ));
    let lines = interleaved(&root, &builds, &["list"], args.runs)?;
    table.push((
        format!("`kanban list` whole process, {size}-task board"),
        lines.iter().map(|s| summarize(s).cell()).collect(),
        "< 50 ms",
    ));
    let identical = if builds.len() > 1 {
        Some(same_output(
            &root,
            &builds[0].1,
            &builds[1].1,
            &["list", "--json"],
        )?)
    } else {
        None
    };
    drop(root);

    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!(
        "bigcli_bench | {} CPUs | load {} | {} runs per list figure, {} creates per build",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        load.split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" "),
        args.runs,
        args.creates
    );
    for (label, bin) in &builds {
        println!("{label}: {}", bin.display());
    }
    if let Some(same) = identical {
        println!(
            "list --json output of both builds: {}",
            if same { "byte-identical" } else { "DIFFERENT" }
        );
    }
    println!("Cells: median (p95), peak RSS of one process.");
    println!();
    let labels: Vec<&str> = builds.iter().map(|(l, _)| *l).collect();
    println!("| figure | {} | target |", labels.join(" | "));
    println!("|{}", " --- |".repeat(labels.len() + 2));
    for (figure, cells, target) in &table {
        println!("| {figure} | {} | {target} |", cells.join(" | "));
    }
    if identical == Some(false) {
        bail!("list --json output differs between the builds");
    }
    Ok(())
}
