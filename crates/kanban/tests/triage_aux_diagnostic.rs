//! `triage_aux_unavailable` agrees with the model client: a triage task is
//! flagged exactly when the step that should move it (the decomposer with
//! auto-decompose on, the specifier off) has no model — its own
//! `auxiliary.<task>` entry or `auxiliary.default`, an endpoint or a
//! command. Hermes' `provider: auto` slots and main model do not count:
//! kanban never calls them.

use kanban_testkit::Sandbox;
use serde_json::Value;

const KIND: &str = "triage_aux_unavailable";

fn fired(b: &Sandbox, yaml: &str, id: &str) -> Option<Value> {
    b.write_config(yaml);
    let rows = b.json(&["diagnostics", "--json"]);
    rows.as_array()
        .unwrap()
        .iter()
        .filter(|r| r["task_id"] == id)
        .flat_map(|r| r["diagnostics"].as_array().unwrap().clone())
        .find(|d| d["kind"] == KIND)
}

#[test]
fn fires_only_when_the_model_client_has_no_model() {
    let b = Sandbox::new();
    let id = b.create("rough idea", &["--triage"]);
    let base = "kanban:\n  dispatch_in_gateway: false\n";
    // Hermes-style slots and a main model: nothing kanban can call.
    let d = fired(
        &b,
        &format!(
            "model: {{provider: openrouter, default: x}}\n{base}auxiliary:\n  kanban_decomposer:\n    provider: auto\n"
        ),
        &id,
    )
    .expect("no model: the rule fires");
    assert_eq!(
        d["actions"][0]["payload"]["command"], "kanban doctor",
        "{d:#}"
    );
    assert_eq!(d["data"]["primary_slot"], "auxiliary.kanban_decomposer");
    // `auxiliary.default` answers the decomposer.
    let with_default = format!(
        "{base}auxiliary:\n  default:\n    base_url: http://127.0.0.1:9/v1\n    model: m\n"
    );
    assert_eq!(fired(&b, &with_default, &id), None);
    // So does a command template.
    let with_command = format!("{base}auxiliary:\n  kanban_decomposer:\n    command: [llm]\n");
    assert_eq!(fired(&b, &with_command, &id), None);
    // Auto-decompose off: the specifier must run; the decomposer's
    // command is offered as the way out by hand.
    let d = fired(
        &b,
        "kanban:\n  dispatch_in_gateway: false\n  auto_decompose: false\nauxiliary:\n  kanban_decomposer:\n    command: [llm]\n",
        &id,
    )
    .expect("no specifier: the rule fires");
    assert_eq!(d["data"]["primary_slot"], "auxiliary.triage_specifier");
    assert_eq!(
        d["actions"][1]["payload"]["command"],
        format!("kanban decompose {id}")
    );
}
