//! The gateway's auto-decompose: each dispatcher tick hands up to
//! `kanban.auto_decompose_per_tick` triage cards to the decomposer (a fake
//! chat-completions server on loopback), re-reading `kanban.auto_decompose`
//! every tick, and a slow model never holds up dispatching.

use std::time::Duration;

use kanban_testkit::fake_model::{FakeModel, Reply};
use kanban_testkit::{Sandbox, expect_until};
use serde_json::json;

fn fanout() -> String {
    json!({"fanout": true, "tasks": [{"title": "child work", "assignee": "coder"}]}).to_string()
}

fn config(b: &Sandbox, model: &FakeModel, extra: &str) -> String {
    let script = b.path("worker.sh");
    std::fs::write(&script, "sleep 30\n").unwrap();
    format!(
        "{}{}",
        b.config_with_worker("coder", &script, extra),
        model.config_yaml("tiny")
    )
}

#[test]
fn one_tick_decomposes_at_most_its_budget() {
    let model = FakeModel::answering(&fanout());
    let b = Sandbox::new();
    // One tick at start, the next an hour later: exactly one budget.
    b.write_config(&config(
        &b,
        &model,
        "  dispatch_interval_seconds: 3600\n  auto_decompose_per_tick: 1\n",
    ));
    let first = b.create("first idea", &["--triage"]);
    let second = b.create("second idea", &["--triage"]);
    let _gw = b.gateway();
    expect_until("one card decomposed", || {
        b.status(&first) != "triage" || b.status(&second) != "triage"
    });
    let left = [&first, &second]
        .iter()
        .filter(|id| b.status(id) == "triage")
        .count();
    assert_eq!(left, 1, "the budget of one card per tick was exceeded");
    assert_eq!(model.requests().len(), 1);
    let done = if b.status(&first) == "triage" {
        &second
    } else {
        &first
    };
    let shown = b.task(done);
    assert_eq!(shown["comments"][0]["author"], "auto-decomposer");
    assert_eq!(shown["parents"].as_array().unwrap().len(), 1);
}

#[test]
fn the_switch_is_reread_every_tick_and_a_slow_model_blocks_nothing() {
    let model = FakeModel::start(vec![Reply::Delayed(Duration::from_secs(60), fanout())]);
    let b = Sandbox::new();
    b.write_config(&config(
        &b,
        &model,
        "  dispatch_interval_seconds: 1\n  auto_decompose: false\n",
    ));
    let idea = b.create("an idea", &["--triage"]);
    let _gw = b.gateway();
    // Switched off: passes run (a ready task is spawned), no model call.
    let work = b.create("ready work", &["--assignee", "coder"]);
    expect_until("the worker to start", || b.status(&work) == "running");
    std::thread::sleep(Duration::from_secs(2));
    assert!(
        model.requests().is_empty(),
        "auto-decompose ran while switched off"
    );
    // Switched on (no restart): the next tick asks the (slow) model ...
    b.write_config(&config(&b, &model, "  dispatch_interval_seconds: 1\n"));
    expect_until("the decomposer to be asked", || {
        !model.requests().is_empty()
    });
    // ... and while it thinks, dispatching goes on.
    let more = b.create("more ready work", &["--assignee", "coder"]);
    expect_until("a worker to start during the model call", || {
        b.status(&more) == "running"
    });
    assert_eq!(b.status(&idea), "triage");
    assert_eq!(
        model.requests().len(),
        1,
        "a second sweep started while one was running"
    );
}
