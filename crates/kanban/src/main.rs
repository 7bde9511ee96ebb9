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
    match std::env::args_os().nth(1) {
        Some(verb) if verb == worker_process::WORKER_EXEC_VERB => return worker_exec_main(),
        Some(verb) if verb == worker_process::FORK_SERVER_VERB => return fork_server_main(),
        _ => {}
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
    // The wrapper mirrors the worker's log into a PostgreSQL board.
    kanban_store_postgres::register();
    // The verb stands where the program name would.
    exit_status(worker_exec_code(std::env::args_os().skip(1)))
}

/// The wrapper's work, in its own process or in a child of the fork
/// server: its exit code.
fn worker_exec_code<I, T>(argv: I) -> i32
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    #[derive(clap::Parser)]
    #[command(name = "kanban __worker-exec", bin_name = "kanban __worker-exec")]
    struct WorkerExecOnly {
        #[command(flatten)]
        args: worker_process::WorkerExecArgs,
    }
    let parsed = WorkerExecOnly::parse_from(argv);
    if let Err(msg) = kanban_hermes::host::check_process_host_id() {
        error::refusal(msg);
        return i32::from(error::EXIT_USAGE);
    }
    outcome_code(worker_process::run_worker_exec(parsed.args))
}

/// `kanban __worker-forkserver`: the gateway's helper that forks worker
/// wrappers (see `kanban_dispatch::fork_server`). Its socket is fd 3.
fn fork_server_main() -> ExitCode {
    use std::os::fd::FromRawFd;
    kanban_store_postgres::register();
    // SAFETY: the gateway starts this verb with its socket on this fd,
    // and nothing else in this process uses that number.
    let sock =
        unsafe { std::os::fd::OwnedFd::from_raw_fd(kanban_dispatch::fork_server::FORK_SERVER_FD) };
    exit_status(kanban_dispatch::fork_server::serve(sock, |args| {
        worker_exec_code(std::iter::once("kanban __worker-exec".to_string()).chain(args))
    }))
}

/// A verb's outcome as the exit status; an error printed once, here.
fn finish(outcome: anyhow::Result<i32>) -> ExitCode {
    exit_status(outcome_code(outcome))
}

/// An exit code as the process's status (0–255).
fn exit_status(code: i32) -> ExitCode {
    ExitCode::from(code.clamp(0, 255) as u8)
}

/// A verb's outcome as an exit code, printing the error if there is one.
fn outcome_code(outcome: anyhow::Result<i32>) -> i32 {
    match outcome {
        Ok(code) => code,
        Err(err) => {
            eprintln!("{}", error::render(&err));
            i32::from(exit_code_for(&err))
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
