//! Parsing the verbs that workers and scripts run most (`create`,
//! `complete`, `heartbeat`, `show`, `list`) without building the whole
//! command tree: clap's derive builds every verb's arguments before it
//! parses, about a millisecond of each process's start-up, a third of a
//! `kanban create`.
//!
//! The quick parse knows the global options and the one verb named. It
//! answers only when it accepts the command line; anything else (help,
//! `--version`, a mistake, any other verb) is parsed again by the whole
//! CLI, so every message and every help text is the whole CLI's. The tests
//! hold the two to the same result.

use std::ffi::OsString;

use clap::{Arg, ArgAction, Args, Command, FromArgMatches, Parser};

use crate::cli::{self, Cli};

/// The command line of this process, parsed.
pub fn parse() -> Cli {
    let argv: Vec<OsString> = std::env::args_os().collect();
    quick(&argv).unwrap_or_else(|| Cli::parse_from(argv))
}

/// The global options (each takes a value), which may stand before the verb.
const GLOBALS: [(&str, &str); 2] = [("board", "SLUG"), ("db", "URL")];

/// The quick parse of `argv`, when it accepts it.
fn quick(argv: &[OsString]) -> Option<Cli> {
    let verb = hot_verb(verb_of(argv)?)?;
    let top = Command::new("kanban")
        .disable_help_flag(true)
        .disable_help_subcommand(true)
        .args(GLOBALS.map(|(id, value_name)| global(id, value_name)))
        .subcommand(verb.disable_help_flag(true));
    let matches = top.try_get_matches_from(argv).ok()?;
    Cli::from_arg_matches(&matches).ok()
}

/// The verb of `argv`: its first word after the global options.
fn verb_of(argv: &[OsString]) -> Option<&str> {
    let mut words = argv.iter().skip(1).map(|w| w.to_str());
    while let Some(word) = words.next() {
        let word = word?;
        let Some(long) = word.strip_prefix("--") else {
            return Some(word);
        };
        if GLOBALS.iter().any(|(id, _)| *id == long) {
            words.next();
        } else if !GLOBALS
            .iter()
            .any(|(id, _)| long.strip_prefix(id).is_some_and(|v| v.starts_with('=')))
        {
            return None;
        }
    }
    None
}

/// A global option taking one value, as `Cli` declares it.
fn global(id: &'static str, value_name: &'static str) -> Arg {
    Arg::new(id)
        .long(id)
        .global(true)
        .value_name(value_name)
        .action(ArgAction::Set)
        .value_parser(clap::value_parser!(String))
}

/// The arguments of `verb` if it is one of the quick verbs.
fn hot_verb(verb: &str) -> Option<Command> {
    Some(match verb {
        "create" => cli::CreateArgs::augment_args(Command::new("create")),
        "complete" => cli::CompleteArgs::augment_args(Command::new("complete")),
        "heartbeat" => cli::HeartbeatArgs::augment_args(Command::new("heartbeat")),
        "show" => cli::ShowArgs::augment_args(Command::new("show")),
        "list" | "ls" => cli::ListArgs::augment_args(Command::new("list")).visible_alias("ls"),
        _ => return None,
    })
}

/// The verbs of [`hot_verb`], for the tests.
#[cfg(test)]
const HOT_VERBS: &[&str] = &["create", "complete", "heartbeat", "show", "list"];

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    fn os(args: &[&str]) -> Vec<OsString> {
        std::iter::once("kanban")
            .chain(args.iter().copied())
            .map(OsString::from)
            .collect()
    }

    /// Whatever the quick parse accepts, the whole CLI parses the same way.
    #[test]
    fn the_quick_parse_agrees_with_the_whole_cli() {
        let lines: &[&[&str]] = &[
            &["create", "a title"],
            &[
                "create",
                "t",
                "--assignee",
                "coder",
                "--priority",
                "3",
                "--parent",
                "t_1",
            ],
            &[
                "create",
                "t",
                "--body",
                "b",
                "--workspace",
                "worktree:/tmp/x",
                "--branch",
                "f",
            ],
            &[
                "create", "--board", "b2", "t", "--skill", "a", "--skill", "b", "--json",
            ],
            &[
                "--board",
                "b2",
                "create",
                "t",
                "--triage",
                "--max-retries",
                "2",
            ],
            &["--board=b2", "--db", "postgres://h/db", "show", "t_1"],
            &[
                "--db",
                "postgres://h/db",
                "complete",
                "t_1",
                "--summary",
                "done",
            ],
            &[
                "complete",
                "t_1",
                "t_2",
                "--result",
                "r",
                "--metadata",
                "{\"a\":1}",
            ],
            &["heartbeat", "t_1", "--note", "alive"],
            &["heartbeat"],
            &["show", "t_1", "--json"],
            &[
                "list",
                "--json",
                "--status",
                "ready",
                "--assignee",
                "x",
                "--sort",
                "created",
            ],
            &["ls", "--mine", "--archived"],
        ];
        for line in lines {
            let argv = os(line);
            let whole = Cli::try_parse_from(&argv).map(|c| format!("{c:?}"));
            let quick = quick(&argv).map(|c| format!("{c:?}"));
            match (&whole, &quick) {
                (Ok(w), Some(q)) => assert_eq!(w, q, "{line:?}"),
                (Err(_), None) => {}
                // The quick parse may decline what the whole CLI accepts
                // (it is parsed again), never accept what it refuses.
                (Ok(_), None) => panic!("quick parse declined a valid line: {line:?}"),
                (Err(e), Some(q)) => panic!("{line:?}: whole CLI refuses ({e}), quick gave {q}"),
            }
        }
    }

    /// Help, version and mistakes go to the whole CLI.
    #[test]
    fn help_version_and_mistakes_are_left_to_the_whole_cli() {
        for line in [
            &["create", "--help"][..],
            &["create", "-h"],
            &["create", "--version"],
            &["create"],
            &["create", "t", "--priority", "high"],
            &["list", "--status", "nope"],
            &["list", "--no-such-flag"],
            &["--board"],
            &["--verbose", "list"],
        ] {
            // Each of them is an error, help or version for the whole CLI.
            assert!(Cli::try_parse_from(os(line)).is_err(), "{line:?}");
            assert!(quick(&os(line)).is_none(), "{line:?}");
        }
    }

    /// Other verbs are not parsed quickly.
    #[test]
    fn other_verbs_go_to_the_whole_cli() {
        for line in [
            &["gateway", "run"][..],
            &["init"],
            &["--board", "b", "boards", "list"],
        ] {
            assert!(Cli::try_parse_from(os(line)).is_ok(), "{line:?}");
            assert!(quick(&os(line)).is_none(), "{line:?}");
        }
    }

    /// Each quick verb has the whole CLI's arguments, with the same ids,
    /// flags and requirements.
    #[test]
    fn quick_verbs_declare_the_whole_clis_arguments() {
        let whole = Cli::command();
        for verb in HOT_VERBS {
            let full = whole.find_subcommand(verb).expect(verb);
            let quick = hot_verb(verb).expect(verb);
            let shape = |c: &Command| {
                let mut args: Vec<String> = c
                    .get_arguments()
                    .filter(|a| !matches!(a.get_id().as_str(), "help" | "version"))
                    .map(|a| {
                        format!(
                            "{} {:?} {:?} {} {:?}",
                            a.get_id(),
                            a.get_long(),
                            a.get_short(),
                            a.is_required_set(),
                            a.get_num_args()
                        )
                    })
                    .collect();
                args.sort();
                args
            };
            assert_eq!(shape(full), shape(&quick), "{verb}");
            let aliases = |c: &Command| c.get_all_aliases().map(str::to_owned).collect::<Vec<_>>();
            assert_eq!(aliases(full), aliases(&quick), "{verb}");
        }
    }
}
