//! Triage shared with the Python reference (hermes-agent 0.19.0) on one
//! board: a triage card the reference created is specified by `kanban
//! specify` (against the fake chat-completions server) and read back by the
//! reference; a card decomposed by `kanban decompose` fans out into children
//! that the reference's dispatcher (`dispatch --dry-run --json`) sees as
//! ours does, step by step while the reference completes them.

use kanban_testkit::Sandbox;
use kanban_testkit::fake_model::FakeModel;
use kanban_testkit::reference::{run_json, run_ok, task_id};
use serde_json::{Value, json};

/// Unwraps a reference command, or returns from the test when skipping is allowed.
macro_rules! reference {
    ($board:expr, $args:expr) => {
        match $board.reference($args) {
            Some(cmd) => cmd,
            None => return,
        }
    };
}

/// The environment variable the fake model's key is read from.
const KEY_ENV: &str = "FAKE_MODEL_KEY";
/// Profiles of the decomposition: a command each for `kanban`, a profile
/// directory each for the reference's spawnability check.
const PROFILES: [&str; 3] = ["lead", "coder", "writer"];

fn sandbox_with(model: &FakeModel) -> Sandbox {
    let mut b = Sandbox::new();
    b.env.insert(KEY_ENV.into(), "sekrit".into());
    let mut config = model.config_yaml("tiny");
    config.push_str("kanban:\n  orchestrator_profile: lead\n  profiles:\n");
    for p in PROFILES {
        config.push_str(&format!("    {p}:\n      command: [/bin/true]\n"));
        std::fs::create_dir_all(b.path(&format!("profiles/{p}"))).unwrap();
    }
    b.write_config(&config);
    b
}

fn event_kinds(show: &Value) -> Vec<&str> {
    show["events"]
        .as_array()
        .unwrap_or_else(|| panic!("no events in {show}"))
        .iter()
        .map(|e| e["kind"].as_str().unwrap_or_default())
        .collect()
}

#[test]
fn a_reference_triage_card_specified_by_kanban_reads_back_in_the_reference() {
    let model = FakeModel::answering(
        "```json\n{\"title\": \"Add a login page\", \"body\": \"**Goal** users sign in\"}\n```",
    );
    let b = sandbox_with(&model);
    run_ok(&mut reference!(b, ["init"]));
    let prereq = task_id(&run_json(&mut reference!(b, ["create", "set up auth"])));
    let card = task_id(&run_json(&mut reference!(
        b,
        ["create", "login??", "--triage", "--parent", &prereq]
    )));
    let lone = task_id(&run_json(&mut reference!(
        b,
        ["create", "idea", "--triage"]
    )));

    b.ok(&["specify", &card, "--author", "alice", "--json"]);
    let theirs = run_json(&mut reference!(b, ["show", &card]));
    let task = &theirs["task"];
    assert_eq!(
        (&task["status"], &task["title"], &task["body"]),
        (
            &json!("todo"),
            &json!("Add a login page"),
            &json!("**Goal** users sign in")
        ),
        "its parent is open, so the card waits in todo: {theirs:#}"
    );
    let comments = theirs["comments"].as_array().unwrap();
    assert_eq!(comments.len(), 1, "{comments:?}");
    assert_eq!(comments[0]["author"], "alice");
    assert_eq!(
        comments[0]["body"],
        "Specified — updated title, body and promoted to todo."
    );
    let specified: Vec<&Value> = theirs["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "specified")
        .collect();
    assert_eq!(specified.len(), 1, "{theirs:#}");
    assert_eq!(
        specified[0]["payload"],
        json!({"changed_fields": ["title", "body"]})
    );
    // The audit comment is recorded by the `specified` event alone, as
    // the reference writes it: no `commented` event.
    assert!(
        !event_kinds(&theirs).contains(&"commented"),
        "specify appends no commented event: {theirs:#}"
    );
    assert_eq!(theirs["parents"], json!([prereq]));

    // The reference finishes the parent: its own promotion wakes the card.
    run_ok(&mut reference!(
        b,
        ["complete", &prereq, "--summary", "auth is up"]
    ));
    assert_eq!(b.status(&card), "ready");

    // A card without parents is ready at once after specify, in both.
    model.set_replies(vec![kanban_testkit::fake_model::Reply::Content(
        "{\"title\": \"Sharp idea\", \"body\": \"Spec\"}".into(),
    )]);
    b.ok(&["specify", &lone]);
    let theirs = run_json(&mut reference!(b, ["show", &lone]));
    assert_eq!(
        (&theirs["task"]["status"], &theirs["task"]["title"]),
        (&json!("ready"), &json!("Sharp idea"))
    );
    assert!(event_kinds(&theirs).contains(&"specified"));
    // Without --author the comment is signed by the CLI's default author,
    // `user` outside a profile, as the reference's `specify` signs it.
    let comments = theirs["comments"].as_array().unwrap();
    assert_eq!(
        (comments.len(), &comments[0]["author"]),
        (1, &json!("user")),
        "{comments:?}"
    );
}

/// `dispatch --dry-run --json` of both on the board; the lists both print.
fn dry_runs(b: &Sandbox) -> Option<(Value, Value)> {
    let mine = b.json(&["dispatch", "--dry-run", "--json"]);
    let theirs = run_json(&mut b.reference(["cli", "dispatch", "--dry-run", "--json"])?);
    for key in [
        "spawned",
        "promoted",
        "skipped_unassigned",
        "skipped_nonspawnable",
    ] {
        assert_eq!(
            mine[key], theirs[key],
            "{key}\nours: {mine:#}\ntheirs: {theirs:#}"
        );
    }
    Some((mine, theirs))
}

fn spawned(dry: &Value) -> Vec<(String, String)> {
    dry["spawned"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["task_id"].as_str().unwrap().to_owned(),
                s["assignee"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[test]
fn children_of_a_kanban_decomposition_dispatch_alike_in_the_reference() {
    let answer = json!({
        "fanout": true,
        "rationale": "code first, then docs",
        "tasks": [
            {"title": "Write the code", "body": "do it", "assignee": "coder", "parents": []},
            {"title": "Document it", "body": "docs", "assignee": "writer", "parents": [0]}
        ]
    });
    let model = FakeModel::answering(&answer.to_string());
    let b = sandbox_with(&model);
    run_ok(&mut reference!(b, ["init"]));
    let root = task_id(&run_json(&mut reference!(
        b,
        ["create", "feature X", "--triage"]
    )));
    let out = b.json(&["decompose", &root, "--json"]);
    let kids: Vec<String> = out["child_ids"]
        .as_array()
        .unwrap_or_else(|| panic!("no child_ids in {out}"))
        .iter()
        .map(|c| c.as_str().unwrap().to_owned())
        .collect();
    assert_eq!(kids.len(), 2, "{out}");
    let (code, docs) = (&kids[0], &kids[1]);

    // The reference reads the graph: root waits on both children, docs on code.
    let shown = run_json(&mut reference!(b, ["show", &root]));
    assert_eq!(
        (&shown["task"]["status"], &shown["task"]["assignee"]),
        (&json!("todo"), &json!("lead"))
    );
    let mut parents: Vec<String> = serde_json::from_value(shown["parents"].clone()).unwrap();
    parents.sort();
    let mut expected = kids.clone();
    expected.sort();
    assert_eq!(parents, expected);
    assert!(event_kinds(&shown).contains(&"decomposed"), "{shown:#}");
    let docs_shown = run_json(&mut reference!(b, ["show", docs]));
    assert_eq!(docs_shown["parents"], json!([code]));
    assert_eq!(docs_shown["task"]["status"], "todo");

    let runs = || b.sql_count("SELECT count(*) FROM task_runs", &[]);
    let runs_before = runs();
    // Step 1: only the code child can run.
    let Some((mine, _)) = dry_runs(&b) else {
        return;
    };
    assert_eq!(spawned(&mine), [(code.clone(), "coder".to_owned())]);

    // Step 2: the reference completes it; the docs child is next for both.
    run_ok(&mut reference!(
        b,
        ["complete", code, "--summary", "code written"]
    ));
    let Some((mine, _)) = dry_runs(&b) else {
        return;
    };
    assert_eq!(spawned(&mine), [(docs.clone(), "writer".to_owned())]);

    // Step 3: with both children done the root wakes for its orchestrator.
    run_ok(&mut reference!(
        b,
        ["complete", docs, "--summary", "docs written"]
    ));
    let Some((mine, _)) = dry_runs(&b) else {
        return;
    };
    assert_eq!(spawned(&mine), [(root.clone(), "lead".to_owned())]);
    assert_eq!(b.status(&root), "ready");
    // Dry runs never claim anything (the runs are the reference's two
    // completions, each closing a run of its own).
    assert_eq!(runs(), runs_before + 2);
    assert_eq!(b.running_count(), 0);
}
