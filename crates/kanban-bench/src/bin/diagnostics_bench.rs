//! `diagnostics_bench`: what the diagnostics of a large board cost.
//!
//! The reference recomputes every task's diagnostics on each `/board` (and
//! `/diagnostics`) request by reading every event and run of every
//! non-archived task. Here a board keeps a `DiagnosticsIndex`: the first
//! request reads the rule inputs of the whole board (cold), later ones ask
//! which tasks have events after the index's cursor and refold only those.
//!
//! On a generated board (`--tasks`, default 10k; `--events` extra
//! heartbeat events per task so histories have a realistic length), through
//! the store API, each figure is the whole diagnostics step of a request:
//! refresh the index and apply the rules to every task row.
//!
//! * cold: a new index (the first request after start, and what a
//!   recompute-everything request costs every time);
//! * warm, nothing changed;
//! * warm, one task changed (a comment on one task before each request);
//! * the task rows the board endpoint reads anyway (`list_tasks`), for scale.
//!
//! `cargo run --release -p kanban-bench --bin diagnostics_bench`

#[path = "../board.rs"]
mod board;
#[path = "../fixture.rs"]
mod fixture;

use std::time::Instant;

use anyhow::Result;
use clap::Parser;
use kanban_core::diagnostics::DiagnosticsConfig;
use kanban_hermes::layout::Root;
use kanban_store::backend::{OpenRequest, open_board};
use kanban_store::diagnostics::DiagnosticsIndex;
use kanban_store::{Store, TaskQuery};

/// Time base of the generated board (see `board::rows`), plus a day.
const NOW: i64 = 1_700_000_000 + 86_400;

#[derive(Parser, Debug)]
#[command(about = "Measure the diagnostics step of a board request, cold and incremental")]
struct Args {
    /// Tasks on the board.
    #[arg(long, default_value_t = 10_000)]
    tasks: usize,
    /// Extra (heartbeat) events per task.
    #[arg(long, default_value_t = 10)]
    events: usize,
    /// Samples per figure.
    #[arg(long, default_value_t = 30)]
    runs: usize,
}

fn main() -> Result<()> {
    let args = Args::parse();
    let dir = tempfile::Builder::new()
        .prefix("kanban-diagbench-")
        .tempdir()?;
    let paths = Root::at(dir.path()).board_paths("default");
    drop(open_board(&paths.location(), &OpenRequest::create())?);
    let mut rows = board::rows(args.tasks);
    let extra: Vec<fixture::EventRow> = rows
        .tasks
        .iter()
        .flat_map(|t| {
            (0..args.events).map(move |i| fixture::EventRow {
                task_id: t.id.clone(),
                run: None,
                kind: "heartbeat",
                payload: "{\"note\":\"still working\"}".into(),
                created_at: t.created_at + 10 + i as i64,
            })
        })
        .collect();
    rows.events.extend(extra);
    rows.write_sqlite(&paths.db)?;
    let store = open_board(&paths.location(), &OpenRequest::existing())?.store();
    let store: &dyn Store = store.as_ref();
    let cfg = DiagnosticsConfig::default();
    let events = store.latest_event_id()?;
    println!(
        "diagnostics bench: {} tasks, {events} events (SQLite), {} samples per row\n",
        args.tasks, args.runs
    );

    let list = sample(args.runs, || {
        store.list_tasks(&TaskQuery::default())?;
        Ok(())
    })?;
    let tasks = store.list_tasks(&TaskQuery::default())?;
    let diagnose_all = |index: &DiagnosticsIndex| -> usize {
        tasks
            .iter()
            .filter(|t| !index.diagnose(t, NOW, &cfg).is_empty())
            .count()
    };
    let mut flagged = 0;
    let cold = sample(args.runs, || {
        let mut index = DiagnosticsIndex::new();
        index.refresh(store)?;
        flagged = diagnose_all(&index);
        Ok(())
    })?;
    let mut index = DiagnosticsIndex::new();
    index.refresh(store)?;
    let warm = sample(args.runs, || {
        index.refresh(store)?;
        diagnose_all(&index);
        Ok(())
    })?;
    let target = &tasks[tasks.len() / 2].id;
    let mut refolded = 0;
    let one = sample_with_setup(
        args.runs,
        || {
            store.add_comment(target, "bench", "one more change")?;
            Ok(())
        },
        || {
            refolded = index.refresh(store)?.refolded;
            diagnose_all(&index);
            Ok(())
        },
    )?;

    println!("| step ({} tasks) | median | p95 |", args.tasks);
    println!("|---|---:|---:|");
    row("task rows the board reads anyway (list_tasks)", &list);
    row("diagnostics, cold (full read + fold + rules)", &cold);
    row("diagnostics, warm, nothing changed", &warm);
    row(
        &format!("diagnostics, warm, one task changed ({refolded} refolded)"),
        &one,
    );
    println!("\n{flagged} tasks with an active diagnostic at the bench's `now`.");
    Ok(())
}

fn sample(runs: usize, mut f: impl FnMut() -> Result<()>) -> Result<Vec<f64>> {
    sample_with_setup(runs, || Ok(()), &mut f)
}

fn sample_with_setup(
    runs: usize,
    mut setup: impl FnMut() -> Result<()>,
    mut f: impl FnMut() -> Result<()>,
) -> Result<Vec<f64>> {
    let mut out = Vec::with_capacity(runs);
    for _ in 0..runs {
        setup()?;
        let t = Instant::now();
        f()?;
        out.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    out.sort_by(f64::total_cmp);
    Ok(out)
}

fn row(label: &str, ms: &[f64]) {
    let at = |p: f64| ms[((ms.len() - 1) as f64 * p).round() as usize];
    println!("| {label} | {:.2} ms | {:.2} ms |", at(0.5), at(0.95));
}
