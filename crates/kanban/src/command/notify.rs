//! `kanban notify-subscribe | notify-list | notify-unsubscribe`.

use anyhow::Result;
use kanban_store::{NewNotifySub, NotifyKey};

use crate::cli::{NotifyListArgs, NotifySubscribeArgs, NotifyUnsubscribeArgs};
use crate::context::Ctx;
use crate::error::usage;
use crate::output::{print_json, profile_author};

fn required(flag: &str, v: &str) -> Result<()> {
    if v.trim().is_empty() {
        Err(usage(format!("{flag} must not be empty")))
    } else {
        Ok(())
    }
}

pub fn run_subscribe(args: NotifySubscribeArgs, ctx: &Ctx) -> Result<i32> {
    required("--platform", &args.platform)?;
    required("--chat-id", &args.chat_id)?;
    let task = crate::command::require_task(ctx, &args.task_id)?;
    ctx.store()?.notify_subscribe(&NewNotifySub {
        task_id: task.id.clone(),
        platform: args.platform.clone(),
        chat_id: args.chat_id.clone(),
        thread_id: args.thread_id.clone(),
        user_id: args.user_id,
        notifier_profile: Some(args.notifier_profile.unwrap_or_else(profile_author)),
    })?;
    let thread = args
        .thread_id
        .filter(|t| !t.is_empty())
        .map(|t| format!(":{t}"))
        .unwrap_or_default();
    println!(
        "Subscribed {}:{}{thread} to {}",
        args.platform, args.chat_id, task.id
    );
    Ok(0)
}

pub fn run_list(args: NotifyListArgs, ctx: &Ctx) -> Result<i32> {
    let subs = ctx.store()?.notify_list(args.task_id.as_deref())?;
    if args.json {
        // Column order of kanban_notify_subs, as the reference dumps rows.
        print_json(&subs);
        return Ok(0);
    }
    if subs.is_empty() {
        println!("(no subscriptions)");
        return Ok(0);
    }
    for s in &subs {
        let thread = if s.thread_id.is_empty() {
            String::new()
        } else {
            format!(":{}", s.thread_id)
        };
        let owner = s
            .notifier_profile
            .as_deref()
            .map(|o| format!("  owner={o}"))
            .unwrap_or_default();
        println!(
            "  {:<10}  {}:{}{thread}  (since event {}){owner}",
            s.task_id, s.platform, s.chat_id, s.last_event_id
        );
    }
    Ok(0)
}

pub fn run_unsubscribe(args: NotifyUnsubscribeArgs, ctx: &Ctx) -> Result<i32> {
    let removed = ctx.store()?.notify_unsubscribe(&NotifyKey {
        task_id: args.task_id.clone(),
        platform: args.platform,
        chat_id: args.chat_id,
        thread_id: args.thread_id,
    })?;
    if !removed {
        crate::error::refusal("(no such subscription)");
        return Ok(1);
    }
    println!("Unsubscribed from {}", args.task_id);
    Ok(0)
}
