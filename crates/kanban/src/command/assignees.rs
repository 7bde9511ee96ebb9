//! `kanban assignees`: profiles on disk (and config templates) united with
//! the assignees in use, with per-status counts.

use std::collections::BTreeMap;

use anyhow::Result;
use kanban_hermes::config::KanbanConfig;
use kanban_hermes::profiles::{ProfileKind, Profiles};
use serde::Serialize;

use crate::cli::JsonArgs;
use crate::context::Ctx;
use crate::output::print_json;

/// One entry of `assignees --json`, keys in the reference's order.
#[derive(Serialize)]
struct AssigneeRow<'a> {
    name: &'a str,
    on_disk: bool,
    counts: BTreeMap<String, i64>,
}

/// The reference's `list_profiles_on_disk`: `default` when the root
/// exists, a named profile when its directory holds `config.yaml`.
fn is_configured_on_disk(ctx: &Ctx, name: &str) -> bool {
    if name == "default" {
        return ctx.root.path().is_dir();
    }
    ctx.root
        .profiles_dir()
        .join(name)
        .join("config.yaml")
        .is_file()
}

pub fn run(args: JsonArgs, ctx: &Ctx) -> Result<i32> {
    let fallback = KanbanConfig::default();
    let config = ctx.config().unwrap_or(&fallback);
    // Listed: every profile we can run (directories, config templates) and
    // every assignee in use. `on_disk` is the reference's notion, so both
    // implementations flag a name alike: the root's `default`, and
    // `profiles/<name>/` holding a `config.yaml` (a bare directory is a
    // runnable lane here, but not a configured Hermes profile).
    let mut on_disk: Vec<String> = Vec::new();
    let mut listed: Vec<String> = Vec::new();
    for p in Profiles::new(&ctx.root, config).list_profiles() {
        if matches!(p.kind, ProfileKind::Hermes { .. }) && is_configured_on_disk(ctx, &p.name) {
            on_disk.push(p.name.clone());
        }
        listed.push(p.name);
    }
    let mut counts: BTreeMap<String, BTreeMap<String, i64>> = BTreeMap::new();
    for (who, status, n) in ctx.store()?.assignee_counts()? {
        counts.entry(who).or_default().insert(status, n);
    }
    let mut names: Vec<String> = listed
        .iter()
        .cloned()
        .chain(counts.keys().cloned())
        .collect();
    names.sort();
    names.dedup();
    let rows: Vec<AssigneeRow<'_>> = names
        .iter()
        .map(|n| AssigneeRow {
            name: n,
            on_disk: on_disk.contains(n),
            counts: counts.get(n).cloned().unwrap_or_default(),
        })
        .collect();
    if args.json {
        print_json(&rows);
        return Ok(0);
    }
    if names.is_empty() {
        println!("(no assignees — create a profile under <root>/profiles/ or kanban.profiles)");
        return Ok(0);
    }
    println!("{:<20}  {:<8}  COUNTS", "NAME", "ON DISK");
    for n in &names {
        let c = counts.get(n).map(|m| {
            m.iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(", ")
        });
        println!(
            "{n:<20}  {:<8}  {}",
            if on_disk.contains(n) { "yes" } else { "no" },
            c.filter(|s| !s.is_empty())
                .unwrap_or_else(|| "(idle)".into())
        );
    }
    Ok(0)
}
