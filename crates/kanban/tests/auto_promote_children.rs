//! `kanban.auto_promote_children: false` (reference `decompose_triage_task`
//! with `auto_promote=False`): a decomposition leaves every child in todo
//! instead of promoting the parent-free ones itself; the next dispatcher
//! pass (its ready recompute) moves them on. The default promotes at once.

use kanban_testkit::Sandbox;
use kanban_testkit::fake_model::FakeModel;
use serde_json::{Value, json};

fn decompose_config(extra: &str) -> String {
    format!(
        "kanban:\n  dispatch_in_gateway: false\n{extra}  profiles:\n    coder:\n      command: [/bin/true]\n      description: Writes Rust\n"
    )
}

fn decompose(b: &Sandbox) -> Vec<String> {
    let root = b.create("feature X", &["--triage"]);
    let out = b.ok(&["decompose", &root, "--json"]);
    let v: Value = serde_json::from_str(out.lines().next().unwrap()).unwrap();
    assert_eq!(v["fanout"], json!(true), "{out}");
    v["child_ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_string())
        .collect()
}

fn answer() -> String {
    json!({"fanout": true, "tasks": [
        {"title": "Write the code", "assignee": "coder", "parents": []},
        {"title": "Test it", "assignee": "coder", "parents": [0]}
    ]})
    .to_string()
}

#[test]
fn children_stay_in_todo_until_the_next_dispatch_pass() {
    let model = FakeModel::answering(&answer());
    let b = Sandbox::new();
    b.write_config(&format!(
        "{}{}",
        decompose_config("  auto_promote_children: false\n"),
        model.config_yaml("tiny")
    ));
    let kids = decompose(&b);
    assert_eq!(
        (b.status(&kids[0]), b.status(&kids[1])),
        ("todo".to_string(), "todo".to_string()),
        "auto_promote_children: false promoted a child"
    );
    b.ok(&["dispatch"]);
    assert_ne!(
        b.status(&kids[0]),
        "todo",
        "the dispatcher pass did not promote"
    );
    assert_eq!(
        b.status(&kids[1]),
        "todo",
        "a child with a pending parent moved"
    );
}

#[test]
fn by_default_parent_free_children_are_ready_at_once() {
    let model = FakeModel::answering(&answer());
    let b = Sandbox::new();
    b.write_config(&format!(
        "{}{}",
        decompose_config(""),
        model.config_yaml("tiny")
    ));
    let kids = decompose(&b);
    assert_eq!(
        (b.status(&kids[0]), b.status(&kids[1])),
        ("ready".to_string(), "todo".to_string())
    );
}
