//! Attachments shared with the Python reference (hermes-agent 0.19.0) on
//! one board: a file attached by `kanban attach` is listed and removed by
//! the reference's `hermes kanban attachments` / `attach-rm`, and one the
//! reference attached is listed and removed by `kanban` (same rows, same
//! blob layout, same collision names).

use kanban_testkit::Sandbox;
use kanban_testkit::reference::{run_json, run_ok};
use serde_json::Value;

/// Unwraps a reference command, or returns from the test when skipping is allowed.
macro_rules! reference {
    ($board:expr, $args:expr) => {
        match $board.reference($args) {
            Some(cmd) => cmd,
            None => return,
        }
    };
}

fn write(b: &Sandbox, name: &str, content: &str) -> String {
    let p = b.path(name);
    std::fs::write(&p, content).unwrap();
    p.display().to_string()
}

fn stdout_of(cmd: &mut std::process::Command) -> String {
    String::from_utf8_lossy(&run_ok(cmd).stdout).into_owned()
}

#[test]
fn kanban_attachments_are_listed_and_removed_by_the_reference() {
    let b = Sandbox::new();
    let t = b.create("Shared files", &[]);
    let src = write(&b, "report.md", "# report\n");
    let mine = b.json(&["attach", &t, &src, "--author", "alice", "--json"]);
    let id = mine["id"].as_i64().unwrap();

    let theirs: Value = run_json(&mut reference!(
        b,
        ["cli", "--", "attachments", &t, "--json"]
    ));
    let ours = b.json(&["attachments", &t, "--json"]);
    assert_eq!(theirs, ours, "both list the same rows with the same keys");
    assert_eq!(theirs[0]["filename"], "report.md");
    assert_eq!(theirs[0]["uploaded_by"], "alice");
    let stored = theirs[0]["stored_path"].as_str().unwrap().to_string();
    assert_eq!(std::fs::read_to_string(&stored).unwrap(), "# report\n");

    // The reference attaches the same name: its collision scheme, our directory.
    run_ok(&mut reference!(b, ["cli", "--", "attach", &t, &src]));
    let after = b.json(&["attachments", &t, "--json"]);
    assert_eq!(after[1]["filename"], "report (1).md");

    let removed = stdout_of(&mut reference!(
        b,
        ["cli", "--", "attach-rm", &id.to_string()]
    ));
    assert!(
        removed.contains(&format!("Deleted attachment {id} (report.md) from {t}")),
        "{removed}"
    );
    assert!(!std::path::Path::new(&stored).exists(), "the blob is gone");
    let left = b.json(&["attachments", &t, "--json"]);
    assert_eq!(left.as_array().unwrap().len(), 1);
    assert_eq!(b.event_count(&t, "attachment_removed"), 1);
}

#[test]
fn reference_attachments_are_listed_and_removed_by_kanban() {
    let b = Sandbox::new();
    let t = b.create("Files from Python", &[]);
    let src = write(&b, "data.csv", "a,b\n1,2\n");
    run_ok(&mut reference!(
        b,
        ["cli", "--", "attach", &t, &src, "--author", "bob"]
    ));
    let ours = b.json(&["attachments", &t, "--json"]);
    let row = &ours[0];
    assert_eq!(row["filename"], "data.csv");
    assert_eq!(row["uploaded_by"], "bob");
    assert_eq!(row["size"], 8);
    let stored = row["stored_path"].as_str().unwrap().to_string();
    assert_eq!(
        std::path::Path::new(&stored).parent().unwrap(),
        std::fs::canonicalize(b.path(&format!("kanban/attachments/{t}"))).unwrap()
    );
    let human = b.ok(&["attachments", &t]);
    let theirs = stdout_of(&mut reference!(b, ["cli", "--", "attachments", &t]));
    assert_eq!(human, theirs, "the same listing text");
    // The `attached` event as the reference wrote it.
    let shown = b.task(&t);
    let ev = shown["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["kind"] == "attached")
        .expect("an attached event");
    assert_eq!(ev["payload"]["by"], "bob");

    let id = row["id"].as_i64().unwrap().to_string();
    let out = b.ok(&["attach-rm", &id]);
    assert_eq!(
        out.trim(),
        format!("Deleted attachment {id} (data.csv) from {t}")
    );
    assert!(!std::path::Path::new(&stored).exists());
    let theirs: Value = run_json(&mut reference!(
        b,
        ["cli", "--", "attachments", &t, "--json"]
    ));
    assert_eq!(theirs, Value::Array(vec![]));
}
