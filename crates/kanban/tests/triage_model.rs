//! Triage by an auxiliary model (`kanban specify`, `kanban decompose`) and
//! the goal-mode completion judge, against a fake chat-completions server
//! on loopback and a fake command-template model. Malformed or hostile
//! answers are refused with a reason and change nothing.

use kanban_testkit::fake_model::{FakeModel, Reply};
use kanban_testkit::{Sandbox, event_kinds, stderr, stdout};
use serde_json::{Value, json};

fn sandbox_with(model: &FakeModel, extra: &str) -> Sandbox {
    let mut b = Sandbox::new();
    b.env.insert("FAKE_MODEL_KEY".into(), "sekrit".into());
    b.write_config(&format!("{}{extra}", model.config_yaml("tiny")));
    b
}

fn triage(b: &Sandbox, title: &str) -> String {
    b.create(title, &["--triage"])
}

fn json_lines(text: &str) -> Vec<Value> {
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn specify_rewrites_a_triage_card_through_the_endpoint() {
    let model = FakeModel::answering(
        "```json\n{\"title\": \"Add a login page\", \"body\": \"**Goal** users sign in\"}\n```",
    );
    let b = sandbox_with(&model, "");
    let t = triage(&b, "login??");
    let out = b.ok(&["specify", &t, "--author", "alice", "--json"]);
    let v = &json_lines(&out)[0];
    assert_eq!(
        (&v["ok"], &v["new_title"], &v["task_id"]),
        (&json!(true), &json!("Add a login page"), &json!(t))
    );
    let shown = b.task(&t);
    assert_eq!(shown["task"]["title"], "Add a login page");
    assert_eq!(shown["task"]["body"], "**Goal** users sign in");
    // Specified into todo, then re-gated: no parents, so ready at once.
    assert_eq!(shown["task"]["status"], "ready");
    assert!(event_kinds(&shown).contains(&"specified".to_string()));
    let comment = &shown["comments"][0];
    assert_eq!(comment["author"], "alice");
    assert!(
        comment["body"]
            .as_str()
            .unwrap()
            .starts_with("Specified — updated title, body")
    );
    // What reached the endpoint: model, key from the variable, the card.
    let req = &model.requests()[0];
    assert_eq!(req["model"], "tiny");
    assert!(
        req["messages"][1]["content"]
            .as_str()
            .unwrap()
            .contains("login??")
    );
    assert_eq!(model.auth_headers()[0].as_deref(), Some("Bearer sekrit"));
    // Human output; a card no longer in triage fails (exit 1).
    let out = b.run(&["specify", &t]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("not in triage"), "{}", stderr(&out));
}

#[test]
fn specify_all_reports_each_and_fails_only_when_nothing_succeeded() {
    let model = FakeModel::answering("{\"title\": \"Sharp\", \"body\": \"Spec\"}");
    let b = sandbox_with(&model, "");
    let a = b.create("a", &["--triage", "--tenant", "x"]);
    let c = b.create("c", &["--triage", "--tenant", "y"]);
    let out = b.ok(&["specify", "--all", "--tenant", "x"]);
    assert!(out.contains(&format!("Specified {a} → todo")), "{out}");
    assert_eq!(b.status(&c), "triage");
    model.set_replies(vec![Reply::Content("".into())]);
    let out = b.run(&["specify", "--all", "--json"]);
    assert_eq!(out.status.code(), Some(1));
    let lines = json_lines(&stdout(&out));
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0]["ok"], false);
    // Nothing left to do: exit 0.
    let d = b.ok(&["specify", "--all", "--tenant", "none", "--json"]);
    assert_eq!(json_lines(&d)[0], json!({"specified": 0, "total": 0}));
    // Usage errors.
    b.refuses(&["specify", &c, "--all"], 2, "either a task id or --all");
    b.refuses(&["specify"], 2, "requires a task id or --all");
}

#[test]
fn bad_model_answers_change_nothing() {
    let model = FakeModel::start(vec![Reply::Raw(500, "boom".into())]);
    let b = sandbox_with(&model, "");
    let t = triage(&b, "idea");
    b.refuses(&["specify", &t], 1, "HTTP 500");
    for (answer, why) in [
        ("", "empty answer"),
        ("{\"title\": \"broken", "malformed JSON"),
        ("{\"title\": 42}", "not a string"),
    ] {
        model.set_replies(vec![Reply::Content(answer.into())]);
        b.refuses(&["specify", &t], 1, why);
    }
    model.set_replies(vec![Reply::Raw(200, "{\"not\": \"a completion\"}".into())]);
    b.refuses(&["specify", &t], 1, "choices[0].message.content");
    // No model configured at all.
    let plain = Sandbox::new();
    let u = triage(&plain, "idea");
    plain.refuses(&["specify", &u], 1, "auxiliary.triage_specifier");
    plain.refuses(&["decompose", &u], 1, "auxiliary.kanban_decomposer");
    plain.refuses(&["specify", "t_deadbeef"], 1, "unknown task id");
}

fn profiles_config() -> &'static str {
    "kanban:\n  orchestrator_profile: lead\n  profiles:\n    lead:\n      command: [/bin/true]\n      description: Plans and reviews\n    coder:\n      command: [/bin/true]\n      description: Writes Rust\n    writer:\n      command: [/bin/true]\n      description: Writes docs\n"
}

#[test]
fn decompose_fans_out_into_routed_children() {
    let answer = json!({
        "fanout": true,
        "rationale": "two parts",
        "tasks": [
            {"title": "Write the code", "body": "do it", "assignee": "coder", "parents": []},
            {"title": "Document it", "body": "docs", "assignee": "Writer", "parents": [0]}
        ]
    });
    let model = FakeModel::answering(&answer.to_string());
    let b = sandbox_with(&model, profiles_config());
    let root = b.create("feature X", &["--triage", "--tenant", "acme"]);
    let out = b.ok(&["decompose", &root, "--json"]);
    let v = &json_lines(&out)[0];
    assert_eq!((&v["ok"], &v["fanout"]), (&json!(true), &json!(true)));
    let kids: Vec<String> = v["child_ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_string())
        .collect();
    assert_eq!(kids.len(), 2);
    let code = b.task(&kids[0]);
    let docs = b.task(&kids[1]);
    assert_eq!(
        (
            &code["task"]["assignee"],
            &code["task"]["status"],
            &code["task"]["tenant"]
        ),
        (&json!("coder"), &json!("ready"), &json!("acme"))
    );
    assert_eq!(
        (&docs["task"]["assignee"], &docs["task"]["status"]),
        (&json!("writer"), &json!("todo"))
    );
    let shown = b.task(&root);
    assert_eq!(
        (&shown["task"]["status"], &shown["task"]["assignee"]),
        (&json!("todo"), &json!("lead"))
    );
    assert_eq!(shown["parents"].as_array().unwrap().len(), 2);
    assert!(event_kinds(&shown).contains(&"decomposed".to_string()));
    // The roster with descriptions reached the model.
    let prompt = model.requests()[0]["messages"][1]["content"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        prompt.contains("coder: Writes Rust") && prompt.contains("writer: Writes docs"),
        "{prompt}"
    );
}

#[test]
fn decompose_single_card_answer_specifies_it() {
    let model = FakeModel::answering(
        r#"{"fanout": false, "title": "One thing", "body": "spec", "assignee": "coder"}"#,
    );
    let b = sandbox_with(&model, profiles_config());
    let t = triage(&b, "small");
    let out = b.ok(&["decompose", &t]);
    assert!(
        out.contains(&format!("Specified {t} → todo (no fan-out)")),
        "{out}"
    );
    let shown = b.task(&t);
    assert_eq!(
        (&shown["task"]["title"], &shown["task"]["assignee"]),
        (&json!("One thing"), &json!("coder"))
    );
}

#[test]
fn hostile_decompositions_are_refused_and_change_nothing() {
    let model = FakeModel::answering("{}");
    let b = sandbox_with(&model, profiles_config());
    let t = triage(&b, "idea");
    let cases = [
        (
            json!({"fanout": true, "tasks": [{"title": "a", "parents": [1]}, {"title": "b", "parents": [0]}]}),
            "cycle",
        ),
        (
            json!({"fanout": true, "tasks": [{"title": "a", "assignee": "root"}]}),
            "not a known profile",
        ),
        (
            json!({"fanout": true, "tasks": [{"title": "a", "parents": ["t_deadbeef"]}]}),
            "not an index",
        ),
        (
            json!({"fanout": true, "tasks": [{"title": "a", "parents": [3]}]}),
            "past the last",
        ),
        (json!({"fanout": true, "tasks": []}), "no tasks"),
        (
            json!({"fanout": true, "tasks": (0..21).map(|i| json!({"title": format!("t{i}")})).collect::<Vec<_>>()}),
            "at most 20",
        ),
        (
            json!({"fanout": true, "tasks": [{"title": "x".repeat(500)}]}),
            "longer than",
        ),
    ];
    for (answer, why) in cases {
        model.set_replies(vec![Reply::Content(answer.to_string())]);
        b.refuses(&["decompose", &t], 1, why);
    }
    model.set_replies(vec![Reply::Content(
        "I think you should split it in two.".into(),
    )]);
    b.refuses(&["decompose", &t], 1, "not return a JSON object");
    // A huge answer is cut off by the client's cap and refused.
    model.set_replies(vec![Reply::Content("y".repeat(300 * 1024))]);
    b.refuses(&["decompose", &t], 1, "model call failed");
}

#[test]
fn a_command_template_model_works_like_an_endpoint() {
    let b = Sandbox::new();
    let script = b.path("fake-model.sh");
    std::fs::write(
        &script,
        "#!/bin/sh\ncat > \"$0.prompt\"\nprintf '{\"title\": \"From the CLI model %s\", \"body\": \"ok\"}' \"$1\"\n",
    )
    .unwrap();
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    b.write_config(&format!(
        "auxiliary:\n  triage_specifier:\n    command: [{}, '{{model}}']\n    model: m7\n",
        script.display()
    ));
    let t = triage(&b, "idea from stdin");
    b.ok(&["specify", &t]);
    assert_eq!(b.task(&t)["task"]["title"], "From the CLI model m7");
    let prompt = std::fs::read_to_string(format!("{}.prompt", script.display())).unwrap();
    assert!(prompt.contains("idea from stdin"), "{prompt}");
}

#[test]
fn goal_mode_completion_is_gated_by_the_judge() {
    let model = FakeModel::answering(r#"{"verdict": "continue", "reason": "no tests were run"}"#);
    let b = sandbox_with(&model, "");
    let t = b.create(
        "Make tests pass",
        &["--goal", "--goal-max-turns", "3", "--assignee", "coder"],
    );
    b.refuses(
        &["complete", &t, "--summary", "I think it is fine"],
        1,
        "no tests were run",
    );
    let judged = model.requests();
    assert!(
        judged[0]["messages"][1]["content"]
            .as_str()
            .unwrap()
            .contains("I think it is fine")
    );
    model.set_replies(vec![Reply::Content(
        r#"{"verdict": "done", "reason": "12 tests pass"}"#.into(),
    )]);
    b.ok(&["complete", &t, "--summary", "cargo test: 12 passed"]);
    assert_eq!(b.status(&t), "done");
    // A malformed verdict refuses too; a non-goal task is never judged.
    model.set_replies(vec![Reply::Content("yes".into())]);
    let u = b.create("again", &["--goal", "--assignee", "coder"]);
    b.refuses(&["complete", &u, "--summary", "done"], 1, "judge");
    let before = model.requests().len();
    let plain = b.create("plain", &["--assignee", "coder"]);
    b.ok(&["complete", &plain, "--summary", "done"]);
    assert_eq!(model.requests().len(), before);
}

#[test]
fn goal_mode_without_a_judge_completes() {
    let b = Sandbox::new();
    let t = b.create("goal", &["--goal", "--assignee", "coder"]);
    b.ok(&["complete", &t, "--summary", "done"]);
    assert_eq!(b.status(&t), "done");
}
