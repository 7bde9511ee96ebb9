//! One document's examples, each checked for what it is.

use std::collections::BTreeSet;
use std::path::Path;

use kanban_testkit::{Sandbox, expect_until};
use serde_json::Value;

use crate::markdown::{Block, shell_words};
use crate::session::{DISPATCHED_RECORD, Scratch, Script};
use crate::{BIN, Use, classify, document_blocks, repo, workers};

/// Checks every block of `rel` (see the crate doc).
pub fn document(rel: &str) {
    let blocks = document_blocks(rel);
    let uses: Vec<(Block, Use)> = blocks
        .into_iter()
        .map(|b| {
            let how = classify(&b).unwrap_or_else(|why| panic!("{}: {why}", b.place));
            (b, how)
        })
        .collect();
    for (b, how) in &uses {
        match how {
            Use::Skip(reason) => println!("{}: skipped: {reason}", b.place),
            Use::Config => config_is_accepted(b),
            Use::Json => json_is_what_it_shows(b, &uses),
            Use::ConformanceMacro => conformance_macro_exists(b),
            Use::WorkerScript(path) => workers::script_worker(b, path, &configs(&uses)),
            Use::Commands | Use::DispatchedCommand => {}
        }
    }
    run_commands(&uses);
}

fn configs(uses: &[(Block, Use)]) -> Vec<&Block> {
    uses.iter()
        .filter(|(_, how)| *how == Use::Config)
        .map(|(b, _)| b)
        .collect()
}

/// The document's command blocks in one session; then each
/// `dispatched-command` block against what the worker got.
fn run_commands(uses: &[(Block, Use)]) {
    let scratch = Scratch::new(Path::new(BIN));
    let mut script = Script::default();
    let needs_hermes = uses.iter().any(|(b, how)| {
        *how == Use::DispatchedCommand
            || (*how == Use::Commands && b.lines.iter().any(|l| l.starts_with("hermes ")))
    });
    let hermes = if needs_hermes {
        kanban_testkit::reference::reference_pythonpath()
    } else {
        None
    };
    if let Some(reference) = &hermes {
        scratch.provide_hermes(reference);
    }
    let mut pg_url = || {
        let pg = kanban_testkit::postgres::cluster()?;
        Some(pg.url(&pg.unique_database("docs")))
    };
    let mut dispatched = Vec::new();
    for (b, how) in uses {
        let hermes_block = b.lines.iter().any(|l| l.starts_with("hermes "));
        if hermes_block && hermes.is_none() {
            println!(
                "SKIPPED: {} (the Python reference is unavailable, skipped on request)",
                b.place
            );
            continue;
        }
        match how {
            Use::Commands => script.push(b, &mut pg_url),
            Use::DispatchedCommand => {
                script.push_dispatch(b);
                dispatched.push(b);
            }
            _ => {}
        }
    }
    if script.is_empty() {
        return;
    }
    for note in &script.notes {
        println!("adapted {note}");
    }
    crate::session::run(&scratch, Path::new(BIN), &script);
    for b in dispatched {
        dispatched_command_matches(b, &scratch.state().join(DISPATCHED_RECORD));
    }
}

/// The block (with `<id>` the task's id) is the worker's command line.
fn dispatched_command_matches(block: &Block, record: &Path) {
    let record: Value = serde_json::from_str(&std::fs::read_to_string(record).unwrap()).unwrap();
    let task = record["task"].as_str().unwrap();
    let argv: Vec<String> = serde_json::from_value(record["argv"].clone()).unwrap();
    let expected = shell_words(&block.lines.join(" ").replace("<id>", task));
    let program = Path::new(&argv[0]).file_name().unwrap().to_string_lossy();
    let mut got = vec![program.into_owned()];
    got.extend(argv[1..].iter().cloned());
    assert_eq!(
        got, expected,
        "{}: the dispatcher ran another command for {task}",
        block.place
    );
    println!(
        "{}: the worker of {task} got exactly this command line",
        block.place
    );
}

/// Written as `<root>/config.yaml`, the block is what `kanban doctor`
/// calls a valid config.
fn config_is_accepted(block: &Block) {
    let b = Sandbox::with_bin(BIN);
    std::fs::write(b.path("config.yaml"), block.text()).unwrap();
    b.ok(&["init"]);
    let out = b.run(&["doctor", "--json"]);
    let report: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{}: doctor --json: {e}", block.place));
    let config = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "config")
        .unwrap_or_else(|| panic!("{}: doctor has no config check: {report}", block.place));
    assert_eq!(config["status"], "ok", "{}: {config}", block.place);
    println!(
        "{}: accepted as config.yaml: {}",
        block.place, config["detail"]
    );
}

fn json_is_what_it_shows(block: &Block, uses: &[(Block, Use)]) {
    let value: Value = serde_json::from_str(&block.text()).unwrap();
    if value.get("mcpServers").is_some() {
        workers::mcp_worker(block, &configs(uses));
    } else if ["task_id", "kind", "payload", "task"]
        .iter()
        .all(|k| value.get(k).is_some())
    {
        notifier_event_has_the_delivered_shape(block, &value);
    } else {
        println!("{}: JSON parses", block.place);
    }
}

/// An exec subscription receives an event of the documented kind; the
/// documented one has the same keys, at every level, with values of the
/// same JSON types.
fn notifier_event_has_the_delivered_shape(block: &Block, documented: &Value) {
    let kind = documented["kind"].as_str().unwrap();
    assert_eq!(
        kind, "completed",
        "{}: the test completes a task",
        block.place
    );
    let b = Sandbox::with_bin(BIN);
    let out = b.path("events.jsonl");
    std::fs::write(
        b.path("config.yaml"),
        format!(
            "kanban:\n  notify_exec:\n    capture: [\"/bin/sh\", \"-c\", \"cat >> {}\"]\n",
            out.display()
        ),
    )
    .unwrap();
    b.ok(&["init"]);
    let task = documented["task"]["title"].as_str().unwrap();
    let t = b.create(task, &["--assignee", "alice"]);
    b.ok(&[
        "notify-subscribe",
        &t,
        "--platform",
        "exec",
        "--chat-id",
        "capture",
    ]);
    let _gateway = b.gateway();
    b.ok(&["claim", &t]);
    b.ok(&["complete", &t, "--summary", "shipped it"]);
    let mut delivered = None;
    expect_until("the completed event delivered to the exec command", || {
        delivered = std::fs::read_to_string(&out)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .find(|e| e["kind"] == kind);
        delivered.is_some()
    });
    let delivered = delivered.unwrap();
    let mut differences = Vec::new();
    same_shape("", documented, &delivered, &mut differences);
    assert!(
        differences.is_empty(),
        "{}: the documented event differs from the delivered one:\n{}\ndelivered: {delivered}",
        block.place,
        differences.join("\n")
    );
    println!(
        "{}: the shape of the delivered event: {delivered}",
        block.place
    );
}

fn same_shape(at: &str, doc: &Value, real: &Value, differences: &mut Vec<String>) {
    let kind = |v: &Value| match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    };
    match (doc, real) {
        (Value::Object(d), Value::Object(r)) => {
            let keys: BTreeSet<&String> = d.keys().chain(r.keys()).collect();
            for k in keys {
                match (d.get(k), r.get(k)) {
                    (Some(dv), Some(rv)) => same_shape(&format!("{at}{k}."), dv, rv, differences),
                    (Some(_), None) => {
                        differences.push(format!("{at}{k}: documented, not delivered"))
                    }
                    (None, Some(_)) => {
                        differences.push(format!("{at}{k}: delivered, not documented"))
                    }
                    (None, None) => {}
                }
            }
        }
        _ if kind(doc) != kind(real) => {
            differences.push(format!(
                "{at}: documented {}, delivered {}",
                kind(doc),
                kind(real)
            ));
        }
        _ => {}
    }
}

/// The block calls the conformance macro with argument names one of its
/// arms takes (`MyStore` is the reader's type, so it is not compiled;
/// crates/kanban-store/tests/sqlite.rs is a compiled use).
fn conformance_macro_exists(block: &Block) {
    let keys: Vec<String> = block
        .lines
        .iter()
        .filter_map(|l| l.trim().split_once(" = "))
        .map(|(k, _)| k.to_string())
        .collect();
    assert!(!keys.is_empty(), "{}: no `name = …` arguments", block.place);
    let arm = keys
        .iter()
        .map(|k| format!("{k} = ${k}:expr"))
        .collect::<Vec<_>>()
        .join(", ");
    let lib =
        std::fs::read_to_string(repo().join("crates/kanban-store-conformance/src/lib.rs")).unwrap();
    assert!(
        block
            .text()
            .contains("kanban_store_conformance::store_conformance_tests!(")
            && lib.contains("macro_rules! store_conformance_tests")
            && lib.contains(&format!("({arm} $(,)?)")),
        "{}: kanban_store_conformance::store_conformance_tests! has no arm `({arm})`",
        block.place
    );
    println!("{}: store_conformance_tests! takes ({arm})", block.place);
}
