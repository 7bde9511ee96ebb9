//! `kanban init`: create the board's database if missing (idempotent), list
//! the profiles tasks can be assigned to, and say how dispatch will happen.
//!
//! Wiring: `Command::Init => init::run_init(&ctx.root, &ctx.board)`.

use anyhow::Result;

use kanban_hermes::config::{KanbanConfig, open_request};
use kanban_hermes::layout::{BoardPaths, Env, ProcessEnv, Root};
use kanban_hermes::profiles::{ProfileKind, Profiles};
use kanban_store::backend::open_board;

use crate::output::line;

/// Initialise `board` under `root` and print the getting-started notes.
pub fn run_init(root: &Root, board: &BoardPaths) -> Result<i32> {
    run_init_with_env(root, board, &ProcessEnv)
}

fn run_init_with_env(root: &Root, board: &BoardPaths, env: &dyn Env) -> Result<i32> {
    board.ensure_dirs()?;
    open_board(&board.location(), &open_request(true))?;
    match &board.database {
        // Schema created or migrated; the URL is printed redacted.
        Some(_) => println!("Kanban board initialized in {}", board.location()),
        None => println!("Kanban DB initialized at {}", board.db.display()),
    }
    println!();

    // A broken config must not stop init: say so and carry on with defaults.
    let config = KanbanConfig::load(root, env).unwrap_or_else(|e| {
        eprintln!("kanban: warning: {e} (using default settings)");
        KanbanConfig::default()
    });
    let profiles = Profiles::new(root, &config).list_profiles();
    let any_template = profiles
        .iter()
        .any(|p| matches!(p.kind, ProfileKind::Template { .. }));
    if profiles.is_empty() {
        println!(
            "No profiles found under {}/.",
            root.profiles_dir().display()
        );
        println!(
            "Create one with `hermes -p <name> setup`, or define a command template under \
             kanban.profiles in {}, before assigning tasks.",
            root.config_file().display()
        );
    } else {
        let where_ = if any_template { "" } else { " on disk" };
        println!(
            "Discovered {} profile(s){where_}; any of these can be an --assignee:",
            profiles.len()
        );
        for p in &profiles {
            match &p.kind {
                ProfileKind::Hermes { .. } => println!("  {}", line(&p.name)),
                ProfileKind::Template { spec } => println!(
                    "  {}  (command: {})",
                    line(&p.name),
                    line(&spec.command.join(" "))
                ),
            }
        }
    }
    println!();
    print_dispatch_hint(&config);
    Ok(0)
}

fn print_dispatch_hint(config: &KanbanConfig) {
    if !config.dispatch_in_gateway || config.dispatch_interval().is_none() {
        let why = if config.dispatch_disabled_by_env {
            "HERMES_KANBAN_DISPATCH_IN_GATEWAY turns gateway dispatch off"
        } else if !config.dispatch_in_gateway {
            "kanban.dispatch_in_gateway is false"
        } else {
            "kanban.dispatch_interval_seconds is 0"
        };
        println!("Dispatch is external ({why}): run `kanban dispatch` from cron or a");
        println!("controller, otherwise tasks stay in 'ready' forever.");
        return;
    }
    println!("Next step: start the gateway so ready tasks actually get picked up.");
    println!("  kanban gateway start");
    println!();
    println!(
        "The gateway hosts an embedded dispatcher that picks ready tasks up at\n\
         once (and re-checks every {} seconds, config:\n\
         kanban.dispatch_interval_seconds). Without a running gateway, tasks\n\
         stay in 'ready' forever.",
        config.dispatch_interval_seconds
    );
}
