//! Error kinds the binary distinguishes, their exit codes, and the one
//! style of every error line on stderr.
//!
//! Exit 2 = the command line itself is wrong (bad flag value, malformed
//! duration, bad slug, relative `dir:` path); exit 1 = the board refused
//! (unknown id, cycle, wrong status), as the reference's ValueError /
//! RuntimeError paths do.
//!
//! Every runtime error or warning line starts with `kanban`: `kanban: <msg>`
//! ([`PREFIX`]), or `kanban boards <verb>: <msg>` where the reference names
//! the sub-verb. The reference's own refusal texts follow the prefix
//! unchanged (`kanban: no such task: <id>`, `kanban: cannot complete <id>
//! (...)`). Only clap's command-line syntax errors keep clap's `error: `.

use std::fmt;

/// A bad flag value or flag combination: exit 2.
#[derive(Debug)]
pub struct UsageError(pub String);

impl fmt::Display for UsageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UsageError {}

/// Shorthand for returning a usage error.
pub fn usage(msg: impl Into<String>) -> anyhow::Error {
    anyhow::Error::new(UsageError(msg.into()))
}

pub const EXIT_REFUSED: u8 = 1;
pub const EXIT_USAGE: u8 = 2;

pub fn exit_code_for(err: &anyhow::Error) -> u8 {
    if err.chain().any(|e| e.is::<UsageError>()) {
        EXIT_USAGE
    } else {
        EXIT_REFUSED
    }
}

/// What every runtime error line starts with.
pub const PREFIX: &str = "kanban: ";

/// Print a refusal that does not end the verb (one of several ids).
pub fn refusal(msg: impl fmt::Display) {
    eprintln!("{PREFIX}{msg}");
}

/// Print a warning: `kanban: warning: <msg>`.
pub fn warning(msg: impl fmt::Display) {
    eprintln!("{PREFIX}warning: {msg}");
}

/// The whole stderr line. An unknown id reads `kanban: no such task: <id>`:
/// the reference's text (show/assign/claim), without its cause chain.
pub fn render(err: &anyhow::Error) -> String {
    if let Some(kanban_store::StoreError::TaskNotFound(id)) = err.downcast_ref() {
        return format!("{PREFIX}no such task: {id}");
    }
    format!("{PREFIX}{}", message(err))
}

/// The message printed after `kanban: `: the outermost context, then the
/// causes, joined the way people read them.
pub fn message(err: &anyhow::Error) -> String {
    let parts: Vec<String> = err.chain().map(|e| e.to_string()).collect();
    let mut out: Vec<String> = Vec::new();
    for p in parts {
        // Context layers often repeat their cause verbatim; print it once.
        if out.last().is_some_and(|last| last.ends_with(&p)) {
            continue;
        }
        out.push(p);
    }
    out.join(": ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usage_errors_exit_2_even_with_context() {
        let e = usage("bad").context("--max-runtime");
        assert_eq!(exit_code_for(&e), EXIT_USAGE);
        assert_eq!(message(&e), "--max-runtime: bad");
        assert_eq!(exit_code_for(&anyhow::anyhow!("no")), EXIT_REFUSED);
    }
}
