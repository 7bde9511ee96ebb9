//! The review verbs (newer Hermes): request-review, request-changes and
//! reopen-review, with bad input refused and nothing changed.

use kanban_testkit::{Sandbox, event_kinds};
use serde_json::{Value, json};

#[test]
fn request_review_then_reopen_review() {
    let b = Sandbox::new();
    let t = b.create("T", &["--assignee", "coder"]);
    b.ok(&["claim", &t]);
    let out = b.ok(&[
        "request-review",
        &t,
        "--summary",
        "did it",
        "--metadata",
        r#"{"tests":3}"#,
        "--reviewer",
        "rev",
        "--json",
    ]);
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        (&v["ok"], &v["status"], &v["assignee"]),
        (&json!(true), &json!("review"), &json!("rev"))
    );
    let shown = b.task(&t);
    assert_eq!(shown["task"]["status"], "review");
    assert!(event_kinds(&shown).contains(&"review_requested".to_string()));

    let out = b.ok(&["reopen-review", &t, "--reason", "rename the flag"]);
    assert_eq!(out, format!("Reopened {t}: back to coder (ready)\n"));
    let shown = b.task(&t);
    assert_eq!(shown["task"]["status"], "ready");
    assert_eq!(shown["task"]["assignee"], "coder");
    assert!(event_kinds(&shown).contains(&"review_reopened".to_string()));
}

#[test]
fn bad_input_is_refused_and_changes_nothing() {
    let b = Sandbox::new();
    let t = b.create("T", &["--assignee", "coder"]);
    let before = event_kinds(&b.task(&t)).len();
    // No summary, bad metadata: usage errors.
    b.refuses(&["request-review", &t], 2, "summary is required");
    b.refuses(
        &["request-review", &t, "--summary", "x", "--metadata", "[1"],
        2,
        "--metadata is not valid JSON",
    );
    b.refuses(
        &["request-review", &t, "--summary", "x", "--metadata", "[1]"],
        2,
        "metadata must be a JSON object",
    );
    // Wrong status / not a review run / unknown id: refusals.
    b.refuses(
        &["reopen-review", &t],
        1,
        &format!("cannot reopen review of {t}"),
    );
    b.ok(&["claim", &t]);
    b.refuses(
        &["request-changes", &t, "add", "tests"],
        1,
        "not under review",
    );
    b.refuses(
        &["request-review", "t_00000000", "--summary", "x"],
        1,
        "unknown task",
    );
    let shown = b.task(&t);
    assert_eq!(shown["task"]["status"], "running");
    // Only the claim's own events were added.
    let kinds = event_kinds(&shown);
    assert!(!kinds.iter().any(|k| k.starts_with("review_")), "{kinds:?}");
    assert!(kinds.len() <= before + 2, "{kinds:?}");
}

/// Ours: `kanban approve` finishes cards waiting in review (for boards
/// whose dispatcher spawns no reviewers); `complete` stays refused there.
#[test]
fn approve_finishes_waiting_cards_and_refuses_the_rest() {
    let b = Sandbox::new();
    let t = b.create("T", &["--assignee", "coder"]);
    let ready = b.create("R", &["--assignee", "coder"]);
    b.ok(&[
        "request-review",
        &t,
        "--summary",
        "did it",
        "--reviewer",
        "rev",
    ]);
    let snapshot = |id: &str| {
        let shown = b.task(id);
        (shown["task"]["status"].clone(), event_kinds(&shown).len())
    };
    let before = snapshot(&t);
    b.refuses(&["complete", &t, "--summary", "x"], 1, "review");
    assert_eq!(snapshot(&t), before, "complete from review changed it");
    let before_ready = snapshot(&ready);
    b.refuses(
        &["approve", &ready],
        1,
        &format!("cannot approve {ready}: task is ready; approve applies only to review"),
    );
    assert_eq!(snapshot(&ready), before_ready);
    b.refuses(&["approve", "t_00000000"], 1, "unknown task");
    b.refuses(&["approve"], 2, "required");

    let out = b.ok(&["approve", &t, &t, "--summary", "looks right", "--json"]);
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        v.as_array().unwrap().len(),
        1,
        "duplicates approved once: {v}"
    );
    assert_eq!(
        (&v[0]["ok"], &v[0]["status"]),
        (&json!(true), &json!("done"))
    );
    let shown = b.task(&t);
    assert_eq!(shown["task"]["status"], "done");
    let runs = shown["runs"].as_array().unwrap();
    let last = runs.last().unwrap();
    assert_eq!(
        (&last["outcome"], &last["summary"]),
        (&json!("completed"), &json!("looks right"))
    );
    b.refuses(&["approve", &t], 1, "task is done");
}
