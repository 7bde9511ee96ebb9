//! `kanban`: the command-line binary. Parses arguments, resolves the board,
//! runs one verb, and turns every error into `kanban: <message>` plus an exit
//! code in exactly one place (here).

mod cli;
mod command;
mod context;
mod error;
mod goal_gate;
mod mcp;
mod output;
mod quick_parse;
mod worker_env;
mod worker_process;

use std::process::ExitCode;

use clap::{CommandFactory, Parser};

use crate::error::exit_code_for;

fn main() -> ExitCode {
    // The worker wrapper starts with every worker, on the pick-up's path:
    // it parses its own arguments only, not the whole CLI's command tree.
    if std::env::args_os()
        .nth(1)
        .is_some_and(|verb| verb == worker_process::WORKER_EXEC_VERB)
    {
        return worker_exec_main();
    }
    let cli = quick_parse::parse();
    let Some(command) = cli.command else {
        // No verb: help on stdout, success (as the reference does).
        let _ = cli::Cli::command().print_help();
        return ExitCode::SUCCESS;
    };
    if command.is_one_shot() {
        restore_default_sigpipe();
    }
    kanban_store_postgres::register();
    // Every verb names this host in claim locks and worker records: refuse
    // a malformed host id before anything is written with it.
    if let Err(msg) = kanban_hermes::host::check_process_host_id() {
        error::refusal(msg);
        return ExitCode::from(error::EXIT_USAGE);
    }
    finish(command::run(
        command,
        cli.board.as_deref(),
        cli.db.as_deref(),
    ))
}

/// `kanban __worker-exec …` (see [`main`]).
fn worker_exec_main() -> ExitCode {
    #[derive(clap::Parser)]
    #[command(name = "kanban __worker-exec", bin_name = "kanban __worker-exec")]
    struct WorkerExecOnly {
        #[command(flatten)]
        args: worker_process::WorkerExecArgs,
    }
    // The verb stands where the program name would.
    let parsed = WorkerExecOnly::parse_from(std::env::args_os().skip(1));
    // The wrapper mirrors the worker's log into a PostgreSQL board.
    kanban_store_postgres::register();
    if let Err(msg) = kanban_hermes::host::check_process_host_id() {
        error::refusal(msg);
        return ExitCode::from(error::EXIT_USAGE);
    }
    finish(worker_process::run_worker_exec(parsed.args))
}

/// A verb's outcome as the exit status; an error printed once, here.
fn finish(outcome: anyhow::Result<i32>) -> ExitCode {
    match outcome {
        Ok(code) => ExitCode::from(code.clamp(0, 255) as u8),
        Err(err) => {
            eprintln!("{}", error::render(&err));
            ExitCode::from(exit_code_for(&err))
        }
    }
}

/// Rust ignores SIGPIPE, so `kanban show X | head` would panic on the
/// broken pipe. One-shot verbs take the default action instead and end
/// quietly, like any Unix filter; long-running servers keep ignoring it so
/// a closed client pipe is an error they handle, not their death.
fn restore_default_sigpipe() {
    // SAFETY: called at start-up before any thread exists; SIG_DFL is a
    // valid disposition for SIGPIPE.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}
