//! Every code example in README.md, docs/*.md and docs/adr/*.md runs as
//! written (issue 13, item 4), so the docs cannot rot:
//! - `sh` blocks of commands run in order in one `bash -Eeuo pipefail`
//!   per document, in a scratch directory with a fresh `HERMES_HOME` and
//!   the built binary first on `PATH`, and must exit 0 (see [`session`]
//!   for the few adaptations, each printed);
//! - a `sh` block that is a script (`#!…`) is the worker of a profile of
//!   the document's YAML: a task is dispatched to it and must end as the
//!   script says;
//! - YAML blocks parse and `kanban doctor` accepts them as `config.yaml`;
//!   JSON blocks parse, an MCP config is used by a worker through its
//!   profile, a notifier event has the shape the notifier delivers;
//! - the Rust block names a macro arm that exists;
//! - anything else needs a `<!-- docs-test: skip — reason -->` marker
//!   (see [`markdown`]), listed and counted by
//!   [`every_example_is_checked_or_skipped_with_a_reason`].

mod checks;
mod markdown;
mod session;
mod workers;

use std::path::{Path, PathBuf};

use markdown::Block;

/// The binary under test.
const BIN: &str = env!("CARGO_BIN_EXE_kanban");

pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// How the test checks one block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Use {
    Skip(String),
    /// Shell commands, run in the document's session.
    Commands,
    /// The command line the dispatcher runs (compared after a dispatch).
    DispatchedCommand,
    /// A worker script at this path (from its `# /path: …` line).
    WorkerScript(String),
    /// `config.yaml` (a `kanban:` mapping).
    Config,
    Json,
    /// Invokes `store_conformance_tests!`.
    ConformanceMacro,
}

/// `Err` says why the test cannot check `block`.
/// A pipe into `grep -q`, `head` or the like: a flaky example.
fn quits_reading_early(line: &str) -> bool {
    line.split('|').skip(1).any(|stage| {
        let words: Vec<&str> = stage.split_whitespace().collect();
        match words.first() {
            Some(&"head") => true,
            Some(&"grep") => words
                .iter()
                .any(|w| *w == "-q" || *w == "--quiet" || *w == "-m"),
            _ => false,
        }
    })
}

pub fn classify(block: &Block) -> Result<Use, String> {
    if let Some(reason) = block.skip_reason() {
        return Ok(Use::Skip(reason.to_string()));
    }
    if block.is_dispatched_command() {
        return Ok(Use::DispatchedCommand);
    }
    match block.lang.as_str() {
        "sh" | "bash" | "shell" => {
            if block.lines.first().is_some_and(|l| l.starts_with("#!")) {
                let path = block
                    .lines
                    .iter()
                    .skip(1)
                    .find_map(|l| l.strip_prefix("# /"))
                    .and_then(|rest| rest.split([':', ' ']).next())
                    .map(|p| format!("/{p}"));
                path.map(Use::WorkerScript)
                    .ok_or("a script block needs its path on a `# /path/to/script: …` line".into())
            } else if let Some(line) = block.lines.iter().find(|l| quits_reading_early(l)) {
                Err(format!(
                    "`{line}` pipes into a reader that may quit before the writer is done; \
                     the writer then dies of SIGPIPE (exit 141 under pipefail) now and then: \
                     let the reader read everything (`grep` without -q, `sed -n 1p`)"
                ))
            } else {
                Ok(Use::Commands)
            }
        }
        "yaml" | "yml" => {
            let doc: serde_norway::Value = serde_norway::from_str(&block.text())
                .map_err(|e| format!("YAML does not parse: {e}"))?;
            if doc.get("kanban").is_some() {
                Ok(Use::Config)
            } else {
                Err("a YAML block that is not a config.yaml (`kanban:`)".into())
            }
        }
        "json" => serde_json::from_str::<serde_json::Value>(&block.text())
            .map(|_| Use::Json)
            .map_err(|e| format!("JSON does not parse: {e}")),
        "rust" if block.text().contains("store_conformance_tests!") => Ok(Use::ConformanceMacro),
        "" => Err("a block without a language: mark it <!-- docs-test: skip — why -->".into()),
        lang => Err(format!(
            "the test cannot run a `{lang}` block: mark it <!-- docs-test: skip — why -->"
        )),
    }
}

/// README.md, docs/*.md, docs/adr/*.md (relative to the repository).
fn documents() -> Vec<String> {
    let mut docs = vec!["README.md".to_string()];
    for dir in ["docs", "docs/adr"] {
        let mut found: Vec<String> = std::fs::read_dir(repo().join(dir))
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".md"))
            .map(|n| format!("{dir}/{n}"))
            .collect();
        found.sort();
        docs.extend(found);
    }
    docs
}

/// The blocks of `rel`; panics on a malformed marker or fence.
pub fn document_blocks(rel: &str) -> Vec<Block> {
    markdown::blocks(&repo().join(rel), rel)
        .unwrap_or_else(|errors| panic!("{}", errors.join("\n")))
}

/// One test per document (run in parallel); the inventory test fails on
/// a document missing here.
macro_rules! document_tests {
    ($($name:ident => $file:literal,)*) => {
        const TESTED: &[&str] = &[$($file),*];
        $(
            #[test]
            fn $name() {
                checks::document($file);
            }
        )*
    };
}

document_tests! {
    readme => "README.md",
    docs_team_notes => "docs/TEAM-NOTES.md",
    docs_architecture => "docs/architecture.md",
    docs_dashboard => "docs/dashboard.md",
    docs_diagnostics => "docs/diagnostics.md",
    docs_notifier => "docs/notifier.md",
    docs_state_machine => "docs/state-machine.md",
    docs_workers => "docs/workers.md",
    docs_adr_0001 => "docs/adr/0001-idempotency-keys.md",
    docs_adr_0002 => "docs/adr/0002-logs-and-attachments-on-postgres.md",
    docs_adr_0003 => "docs/adr/0003-fixed-address-binary.md",
}

#[test]
fn every_example_is_checked_or_skipped_with_a_reason() {
    let mut problems = Vec::new();
    let mut skips = Vec::new();
    let mut checked = 0;
    for rel in documents() {
        if !TESTED.contains(&rel.as_str()) {
            problems.push(format!(
                "{rel}: no test runs its examples (add it to document_tests!)"
            ));
        }
        let blocks = match markdown::blocks(&repo().join(&rel), &rel) {
            Ok(b) => b,
            Err(errors) => {
                problems.extend(errors);
                continue;
            }
        };
        for b in &blocks {
            for (command, reason) in b.skipped_lines() {
                skips.push(format!("{}: line `{command}`: {reason}", b.place));
            }
            match classify(b) {
                Ok(Use::Skip(reason)) => skips.push(format!("{}: {reason}", b.place)),
                Ok(how) => {
                    checked += 1;
                    println!("{}: {} block: {how:?}", b.place, b.lang);
                }
                Err(why) => problems.push(format!("{}: {why}", b.place)),
            }
        }
    }
    println!("{checked} blocks checked; {} skipped:", skips.len());
    for s in &skips {
        println!("  skip {s}");
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
