//! `kanban block <id> [reason...]`: block tasks (or park them waiting on
//! dependencies), reporting where each one landed.

use anyhow::Result;
use kanban_core::{BlockKind, Status};
use kanban_store::{BlockRequest, StoreError};

use crate::cli::{BlockArgs, BlockKindArg};
use crate::context::Ctx;
use crate::output::profile_author;
use crate::worker_env::WorkerEnv;
use crate::worker_process::{end_worker, is_own_task};

fn kind(k: BlockKindArg) -> BlockKind {
    match k {
        BlockKindArg::Dependency => BlockKind::Dependency,
        BlockKindArg::NeedsInput => BlockKind::NeedsInput,
        BlockKindArg::Capability => BlockKind::Capability,
        BlockKindArg::Transient => BlockKind::Transient,
    }
}

/// The store's refusal as a short parenthesised note.
pub fn refusal_note(err: &StoreError) -> Option<String> {
    match err {
        StoreError::Refused { reason, .. } | StoreError::Stale { reason, .. } => {
            Some(format!(" ({reason})"))
        }
        StoreError::TaskNotFound(_) => Some(" (unknown id)".into()),
        _ => None,
    }
}

/// Task ids in order, duplicates dropped.
pub fn dedup_ids(first: &str, more: &[String]) -> Vec<String> {
    let mut ids: Vec<String> = Vec::new();
    for id in std::iter::once(first.to_string()).chain(more.iter().cloned()) {
        if !ids.contains(&id) {
            ids.push(id);
        }
    }
    ids
}

/// Looks like a task id (`t_` + hex), as opposed to the first reason word.
fn looks_like_task_id(s: &str) -> bool {
    s.strip_prefix("t_")
        .is_some_and(|h| !h.is_empty() && h.chars().all(|c| c.is_ascii_hexdigit()))
}

/// The task to block and the reason words. Inside a worker the id may be
/// left out (`kanban block "need the API key"`), so a first word that is
/// not an id is part of the reason.
fn target(args: &BlockArgs, env: &WorkerEnv) -> Result<(String, Vec<String>)> {
    let mut words = args.reason.clone();
    match &args.task_id {
        Some(first) if looks_like_task_id(first) || !env.is_worker() => Ok((first.clone(), words)),
        first => {
            if let Some(w) = first {
                words.insert(0, w.clone());
            }
            Ok((super::task_arg(env, None)?, words))
        }
    }
}

pub fn run(args: BlockArgs, ctx: &Ctx) -> Result<i32> {
    let env = WorkerEnv::from_env();
    let (task_id, words) = target(&args, &env)?;
    let ids = dedup_ids(&task_id, &args.ids);
    for id in &ids {
        env.check_lifecycle(id)?;
    }
    let reason = Some(words.join(" ").trim().to_string()).filter(|r| !r.is_empty());
    let suffix = reason
        .as_deref()
        .map(|r| format!(": {r}"))
        .unwrap_or_default();
    let author = profile_author();
    let store = ctx.store()?;
    let mut failed = 0;
    for id in ids {
        let req = BlockRequest {
            task_id: id.clone(),
            reason: reason.clone(),
            kind: args.kind.map(kind),
            expected_run_id: env.run_id_for(&id),
        };
        match store.block_task(&req) {
            Ok(done) => {
                if let Some(r) = &reason {
                    store.add_comment(&id, &author, &format!("BLOCKED: {r}"))?;
                }
                if let Some(w) = &done.ended_worker {
                    end_worker(store, done.run_id, w, is_own_task(&id));
                }
                match done.to {
                    Status::Todo => println!("{id} → todo (dependency wait){suffix}"),
                    Status::Triage => println!(
                        "{id} → triage (unblock loop detected — needs a human decision){suffix}"
                    ),
                    _ => println!("Blocked {id}{suffix}"),
                }
            }
            Err(e) => match refusal_note(&e) {
                Some(note) => {
                    failed += 1;
                    crate::error::refusal(format_args!("cannot block {id}{note}"));
                }
                None => return Err(e.into()),
            },
        }
    }
    Ok(if failed == 0 { 0 } else { 1 })
}
