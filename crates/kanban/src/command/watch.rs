//! `kanban watch`: board-wide event stream from now on.

use std::collections::HashMap;
use std::io::Write;

use anyhow::Result;
use kanban_core::defaults::EVENT_BATCH_LIMIT;
use kanban_store::EventQuery;

use crate::cli::WatchArgs;
use crate::command::tail::Follow;
use crate::context::Ctx;
use crate::output::{fmt_ts, line, payload_suffix};

/// Default poll interval of `watch`.
const WATCH_INTERVAL_SECONDS: f64 = 0.5;

pub fn run(args: WatchArgs, ctx: &Ctx) -> Result<i32> {
    let follow = Follow::new(&args.follow, WATCH_INTERVAL_SECONDS)?;
    let kinds: Option<Vec<String>> = args.kinds.as_deref().map(|k| {
        k.split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(String::from)
            .collect()
    });
    let kinds = kinds.filter(|k| !k.is_empty());
    let assignee = kanban_core::validate::normalize_assignee(args.assignee.as_deref());
    let store = ctx.store()?;
    println!("Watching kanban events. Ctrl-C to stop.");
    // Start at the newest event: history is what `show` is for.
    let mut cursor = store.latest_event_id()?;
    loop {
        let events = store.events(&EventQuery {
            after_id: Some(cursor),
            limit: Some(EVENT_BATCH_LIMIT),
            ..Default::default()
        })?;
        // Owner and tenant of each task, looked up once per poll.
        let mut owners: HashMap<String, (Option<String>, Option<String>)> = HashMap::new();
        for e in &events {
            cursor = cursor.max(e.id);
            if kinds.as_ref().is_some_and(|k| !k.contains(&e.kind)) {
                continue;
            }
            if !owners.contains_key(&e.task_id) {
                let t = store.get_task(&e.task_id)?;
                owners.insert(
                    e.task_id.clone(),
                    t.map(|t| (t.assignee, t.tenant)).unwrap_or((None, None)),
                );
            }
            let (who, tenant) = &owners[&e.task_id];
            if assignee.is_some() && who != &assignee {
                continue;
            }
            if args.tenant.is_some() && tenant != &args.tenant {
                continue;
            }
            println!(
                "[{}] {:<10} {:<18} (@{}){}",
                fmt_ts(Some(e.created_at)),
                line(&e.task_id),
                line(&e.kind),
                line(who.as_deref().unwrap_or("-")),
                payload_suffix(&e.payload)
            );
        }
        std::io::stdout().flush()?;
        // A full batch means more is waiting: fetch it without sleeping.
        if events.len() >= EVENT_BATCH_LIMIT {
            continue;
        }
        if !follow.wait() {
            return Ok(0);
        }
    }
}
