//! `kanban promote <id> [reason...]`: manual todo/blocked → ready.

use anyhow::Result;
use kanban_store::{PromoteRequest, StoreError};
use serde::Serialize;

use crate::cli::PromoteArgs;
use crate::command::block::dedup_ids;
use crate::context::Ctx;
use crate::output::{print_json, profile_author};

/// One result of `promote --json`, keys in the reference's order.
#[derive(Serialize)]
struct PromoteRow<'a> {
    task_id: &'a str,
    promoted: bool,
    dry_run: bool,
    forced: bool,
    reason: &'a Option<String>,
    error: &'a Option<String>,
}

pub fn run(args: PromoteArgs, ctx: &Ctx) -> Result<i32> {
    let reason = Some(args.reason.join(" ").trim().to_string()).filter(|r| !r.is_empty());
    let actor = profile_author();
    let store = ctx.store()?;
    let mut results: Vec<(String, Option<String>)> = Vec::new();
    for id in dedup_ids(&args.task_id, &args.ids) {
        let req = PromoteRequest {
            task_id: id.clone(),
            force: args.force,
            reason: reason.clone(),
            actor: Some(actor.clone()),
            dry_run: args.dry_run,
        };
        let error = match store.promote_task(&req) {
            Ok(_) => None,
            Err(StoreError::TaskNotFound(_)) => Some(format!("task {id} not found")),
            Err(StoreError::Refused { reason, .. } | StoreError::Stale { reason, .. }) => {
                Some(reason)
            }
            Err(e) => return Err(e.into()),
        };
        results.push((id, error));
    }
    let failed = results.iter().filter(|(_, e)| e.is_some()).count();
    let code = if failed == 0 { 0 } else { 1 };
    if args.json {
        let rows: Vec<PromoteRow<'_>> = results
            .iter()
            .map(|(id, err)| PromoteRow {
                task_id: id,
                promoted: err.is_none(),
                dry_run: args.dry_run,
                forced: args.force,
                reason: &reason,
                error: err,
            })
            .collect();
        // One id stays a flat object (the reference's shape); several, a list.
        if rows.len() == 1 {
            print_json(&rows[0]);
        } else {
            print_json(&rows);
        }
        return Ok(code);
    }
    let (label, tag) = if args.dry_run {
        ("Would promote", " (dry)")
    } else {
        ("Promoted", "")
    };
    let suffix = reason
        .as_deref()
        .map(|r| format!(": {r}"))
        .unwrap_or_default();
    for (id, err) in &results {
        match err {
            None => println!("{label} {id} -> ready{tag}{suffix}"),
            Some(e) => crate::error::refusal(format_args!("cannot promote {id}: {e}")),
        }
    }
    Ok(code)
}
