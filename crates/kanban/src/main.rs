//! `kanban`: the command-line binary. Parses arguments, resolves the board,
//! runs one verb, and turns every error into `kanban: <message>` plus an exit
//! code in exactly one place (here).

mod cli;
mod command;
mod context;
mod error;
mod mcp;
mod output;
mod worker_env;
mod worker_process;

use std::process::ExitCode;

use clap::{CommandFactory, Parser};

use crate::error::exit_code_for;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    let Some(command) = cli.command else {
        // No verb: help on stdout, success (as the reference does).
        let _ = cli::Cli::command().print_help();
        return ExitCode::SUCCESS;
    };
    match command::run(command, cli.board.as_deref()) {
        Ok(code) => ExitCode::from(code.clamp(0, 255) as u8),
        Err(err) => {
            eprintln!("{}", error::render(&err));
            ExitCode::from(exit_code_for(&err))
        }
    }
}
