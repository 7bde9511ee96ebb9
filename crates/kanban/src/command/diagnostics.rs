//! `kanban diagnostics` (`diag`): the active distress signals of the board
//! (or of one task), from the same rules the dashboard shows; and the
//! diagnostics section of `kanban show`.

use anyhow::Result;
use clap::{Args, ValueEnum};
use kanban_core::Task;
use kanban_core::diagnostics::{Diagnostic, DiagnosticsConfig, Severity, at_or_above, data_line};
use kanban_store::TaskQuery;
use kanban_store::diagnostics::{DiagnosticsIndex, task_diagnostics_of};
use serde::Serialize;

use crate::context::Ctx;
use crate::output::{line, print_json};

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum SeverityArg {
    Warning,
    Error,
    Critical,
}

impl From<SeverityArg> for Severity {
    fn from(s: SeverityArg) -> Severity {
        match s {
            SeverityArg::Warning => Severity::Warning,
            SeverityArg::Error => Severity::Error,
            SeverityArg::Critical => Severity::Critical,
        }
    }
}

#[derive(Debug, Args)]
pub struct DiagnosticsArgs {
    /// Only diagnostics at or above this severity.
    #[arg(long, value_enum)]
    pub severity: Option<SeverityArg>,
    /// Only the diagnostics of this task.
    #[arg(long, value_name = "ID")]
    pub task: Option<String>,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// The thresholds and triage context of this root.
pub fn config(ctx: &Ctx) -> DiagnosticsConfig {
    let limit = ctx
        .failure_limit()
        .unwrap_or(kanban_core::defaults::FAILURE_LIMIT);
    kanban_hermes::diagnostics_config::load(&ctx.root, limit)
}

#[derive(Serialize)]
struct TaskDiagnostics<'a> {
    task_id: &'a str,
    title: &'a str,
    status: &'a str,
    assignee: Option<&'a str>,
    diagnostics: &'a [Diagnostic],
}

/// Rows most severe first, then most recent (by each task's top diagnostic).
fn sort_rows(rows: &mut [(Task, Vec<Diagnostic>)]) {
    rows.sort_by_key(|(_, d)| {
        std::cmp::Reverse(d.first().map(|top| (top.severity, top.last_seen_at)))
    });
}

pub fn run(args: DiagnosticsArgs, ctx: &Ctx) -> Result<i32> {
    let store = ctx.store()?;
    let cfg = config(ctx);
    let now = ctx.now();
    let min = args.severity.map(Severity::from);
    let mut rows: Vec<(Task, Vec<Diagnostic>)> = Vec::new();
    if let Some(id) = &args.task {
        let task = store
            .get_task(id)?
            .ok_or_else(|| kanban_store::StoreError::TaskNotFound(id.clone()))?;
        let d = at_or_above(task_diagnostics_of(store, &task, now, &cfg)?, min);
        // As the reference: the task asked about is listed even when
        // healthy, unless a severity filter prunes it.
        if !d.is_empty() || min.is_none() {
            rows.push((task, d));
        }
    } else {
        let mut index = DiagnosticsIndex::new();
        index.refresh(store)?;
        for task in store.list_tasks(&TaskQuery::default())? {
            let d = at_or_above(index.diagnose(&task, now, &cfg), min);
            if !d.is_empty() {
                rows.push((task, d));
            }
        }
    }
    sort_rows(&mut rows);

    if args.json {
        let out: Vec<TaskDiagnostics<'_>> = rows
            .iter()
            .map(|(t, d)| TaskDiagnostics {
                task_id: &t.id,
                title: &t.title,
                status: t.status.as_str(),
                assignee: t.assignee.as_deref(),
                diagnostics: d,
            })
            .collect();
        print_json(&out);
        return Ok(0);
    }
    if rows.is_empty() {
        println!("No active diagnostics on this board.");
        return Ok(0);
    }
    let total: usize = rows.iter().map(|(_, d)| d.len()).sum();
    println!(
        "{total} active diagnostic(s) across {} task(s):\n",
        rows.len()
    );
    for (t, list) in &rows {
        let assignee = t.assignee.as_deref().unwrap_or("(unassigned)");
        let title = if t.title.is_empty() {
            "(untitled)"
        } else {
            &t.title
        };
        println!(
            "  {}  {:<8}  @{:<18}  {}",
            line(&t.id),
            t.status.as_str(),
            line(assignee),
            line(title)
        );
        for d in list {
            println!(
                "    {} [{}] {}: {}",
                d.severity.marker(),
                d.severity,
                d.kind,
                line(&d.title)
            );
            print_details(d);
        }
        println!();
    }
    Ok(0)
}

/// The `data:` line and the suggested actions under a diagnostic.
fn print_details(d: &Diagnostic) {
    if !d.data.is_empty() {
        println!("       data: {}", line(&data_line(&d.data)));
    }
    for a in d.actions.iter().filter(|a| a.suggested) {
        println!("       → {}", line(&a.label));
    }
}

/// `kanban show`'s diagnostics section (nothing when there are none).
pub fn print_show_section(ctx: &Ctx, task: &Task) -> Result<()> {
    let list = task_diagnostics_of(ctx.store()?, task, ctx.now(), &config(ctx))?;
    if list.is_empty() {
        return Ok(());
    }
    println!("\n  Diagnostics ({}):", list.len());
    for d in &list {
        println!(
            "    {} [{}] {}",
            d.severity.marker(),
            d.severity,
            line(&d.title)
        );
        print_details(d);
    }
    Ok(())
}
