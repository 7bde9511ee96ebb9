//! `kanban specify [id | --all]`: the auxiliary model (`auxiliary.
//! triage_specifier`) turns rough triage cards into specifications and
//! moves them to todo. Shares its sweep with `kanban decompose`.

use anyhow::Result;
use clap::Args;
use kanban_aux::{ModelClient, Outcome, client_from_root, ops};
use kanban_hermes::auxiliary::TASK_TRIAGE_SPECIFIER;
use kanban_store::Store;

use crate::context::Ctx;
use crate::error::usage;
use crate::output::profile_author;

#[derive(Debug, Args)]
pub struct TriageArgs {
    /// The triage task to work on.
    pub task_id: Option<String>,
    /// Every task in the triage column (optionally of one --tenant).
    #[arg(long = "all")]
    pub all: bool,
    /// With --all: only this tenant's triage tasks.
    #[arg(long)]
    pub tenant: Option<String>,
    /// Author of the audit comment (default: $HERMES_PROFILE, else user).
    #[arg(long)]
    pub author: Option<String>,
    /// One JSON object per task, one per line.
    #[arg(long)]
    pub json: bool,
}

pub type SpecifyArgs = TriageArgs;

/// The verb's name, for messages.
pub(crate) enum Verb {
    Specify,
    Decompose,
}

impl Verb {
    fn name(&self) -> &'static str {
        match self {
            Verb::Specify => "specify",
            Verb::Decompose => "decompose",
        }
    }
}

pub fn run(args: SpecifyArgs, ctx: &Ctx) -> Result<i32> {
    let client = client_from_root(&ctx.root, TASK_TRIAGE_SPECIFIER).map_err(anyhow::Error::msg)?;
    sweep(&args, ctx, Verb::Specify, &|store, id, author| {
        ops::specify(store, client.as_deref(), id, author)
    })
}

type Apply<'a> = dyn Fn(&dyn Store, &str, &str) -> Outcome + 'a;

/// The ids of one invocation, each applied and printed; exit 1 when
/// nothing succeeded (a single id: when it failed).
pub(crate) fn sweep(args: &TriageArgs, ctx: &Ctx, verb: Verb, apply: &Apply<'_>) -> Result<i32> {
    let name = verb.name();
    if args.task_id.is_some() && args.all {
        return Err(usage("pass either a task id or --all, not both"));
    }
    if args.tenant.is_some() && !args.all {
        return Err(usage("--tenant narrows --all; pass --all with it"));
    }
    let store = ctx.store()?;
    let ids = match &args.task_id {
        Some(id) => vec![id.clone()],
        None if args.all => ops::triage_ids(store, args.tenant.as_deref())?,
        None => return Err(usage(format!("{name} requires a task id or --all"))),
    };
    if ids.is_empty() {
        if args.json {
            let key = match verb {
                Verb::Specify => "specified",
                Verb::Decompose => "decomposed",
            };
            println!("{}", serde_json::json!({ key: 0, "total": 0 }));
        } else {
            match &args.tenant {
                Some(t) => println!("No triage tasks for tenant {t:?}."),
                None => println!("No triage tasks."),
            }
        }
        return Ok(0);
    }
    let author = args
        .author
        .clone()
        .filter(|a| !a.trim().is_empty())
        .unwrap_or_else(profile_author);
    let mut ok = 0;
    for id in &ids {
        let out = apply(store, id, &author);
        if out.ok {
            ok += 1;
        }
        print_outcome(&out, args.json, name);
    }
    Ok(if ok > 0 { 0 } else { 1 })
}

fn print_outcome(out: &Outcome, json: bool, verb: &str) {
    if json {
        println!("{}", serde_json::to_string(out).unwrap_or_default());
        return;
    }
    if !out.ok {
        crate::error::refusal(format_args!("{verb} {}: {}", out.task_id, out.reason));
        return;
    }
    let retitled = out
        .new_title
        .as_deref()
        .map(|t| format!(" — retitled: {t:?}"))
        .unwrap_or_default();
    match &out.child_ids {
        Some(children) if out.fanout => println!(
            "Decomposed {} → {} children ({}); it waits in todo for them",
            out.task_id,
            children.len(),
            children.join(", ")
        ),
        _ if verb == "decompose" => {
            println!("Specified {} → todo (no fan-out){retitled}", out.task_id)
        }
        _ => println!("Specified {} → todo{retitled}", out.task_id),
    }
}

/// A client as a plain reference, for the ops.
pub(crate) fn as_ref(c: &Option<Box<dyn ModelClient>>) -> Option<&dyn ModelClient> {
    c.as_deref()
}
