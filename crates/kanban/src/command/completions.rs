//! `kanban completions <shell>` and `kanban man [--out DIR]`: the shell
//! completion script and the manual page, both generated from the clap
//! definition of the command line, so they never drift from `--help`.

use std::io::Write;

use anyhow::{Context as _, Result};
use clap::CommandFactory;

use crate::cli::{Cli, CompletionsArgs, ManArgs};

/// The program name completions are registered for.
const BIN_NAME: &str = "kanban";

/// The command line without its hidden verbs (internal ones such as
/// `__worker-exec`): some generators offer hidden subcommands otherwise.
fn visible_command() -> clap::Command {
    let full = Cli::command();
    clap::Command::new(BIN_NAME)
        .version(env!("CARGO_PKG_VERSION"))
        .args(full.get_arguments().cloned())
        .subcommands(full.get_subcommands().filter(|s| !s.is_hide_set()).cloned())
}

/// Print the completion script of `args.shell` on stdout.
pub fn run(args: CompletionsArgs) -> Result<i32> {
    let mut cmd = visible_command();
    let mut out = std::io::stdout().lock();
    clap_complete::generate(args.shell, &mut cmd, BIN_NAME, &mut out);
    out.flush()?;
    Ok(0)
}

/// Print the roff page, or write every page into `--out`.
pub fn run_man(args: ManArgs) -> Result<i32> {
    let cmd = Cli::command();
    let Some(dir) = args.out else {
        let mut out = std::io::stdout().lock();
        clap_mangen::Man::new(cmd).render(&mut out)?;
        out.flush()?;
        return Ok(0);
    };
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    clap_mangen::generate_to(cmd, &dir)
        .with_context(|| format!("cannot write the man pages into {}", dir.display()))?;
    println!("man pages written to {}", dir.display());
    Ok(0)
}
