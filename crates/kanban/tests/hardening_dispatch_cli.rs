//! Regression tests of issue 9 (items 4 and 5) through one-shot
//! `kanban dispatch` passes: a held task is noted once per hold, not once
//! per pass, and a worker that cannot be started is retried with backoff,
//! its next attempt shown by `kanban show`.

use kanban_testkit::{Sandbox, expect_until, pid_alive};

/// Item 4: repeated passes during a rate-limit cooldown write one
/// `respawn_guarded` event, and report when the cooldown ends.
#[test]
fn repeated_passes_during_a_cooldown_note_the_hold_once() {
    let mut h = Sandbox::new();
    h.env.insert(
        "HERMES_KANBAN_RATE_LIMIT_COOLDOWN_SECONDS".into(),
        "120".into(),
    );
    h.profile("limited", "exit 75");
    let t = h.create("hits a wall", &["--assignee", "limited"]);
    let first = h.dispatch();
    assert_eq!(first["spawned"].as_array().unwrap().len(), 1, "{first}");
    let pid = h.worker_pid(&t).expect("worker pid");
    expect_until("the worker exits", || !pid_alive(pid));
    h.dispatch_until("the exit 75 is classified", |h| {
        h.outcomes(&t).first() == Some(&Some("rate_limited".into()))
    });
    let mut last = serde_json::Value::Null;
    for _ in 0..5 {
        last = h.dispatch();
        assert_eq!(last["respawn_guarded"][0]["reason"], "rate_limit_cooldown");
    }
    assert_eq!(
        h.event_count(&t, "respawn_guarded"),
        1,
        "one note for one cooldown"
    );
    let wake = last["next_pass_in_ms"].as_u64().expect("next_pass_in_ms");
    assert!(
        (100_000..=121_000).contains(&wake),
        "the pass should name the cooldown's end: {wake} ms"
    );
}

/// Item 5: a profile whose command does not exist is retried after a
/// growing delay, not on every pass; `show` names the next attempt.
#[test]
fn a_worker_that_cannot_start_is_retried_with_backoff() {
    let mut h = Sandbox::new();
    h.kanban_config("  failure_limit: 100\n");
    h.profile_argv(
        "ghost",
        vec!["/nonexistent/kanban-test-worker".into(), "{task_id}".into()],
    );
    let t = h.create("cannot start", &["--assignee", "ghost"]);
    for _ in 0..5 {
        h.dispatch();
    }
    assert_eq!(
        h.event_count(&t, "spawn_failed"),
        1,
        "retried before its backoff"
    );
    assert_eq!(h.status(&t), "ready");
    let shown = h.json(&["show", &t, "--json"]);
    let failed_at = shown["runs"][0]["ended_at"].as_i64().unwrap();
    let next = shown["next_spawn_attempt_at"]
        .as_i64()
        .unwrap_or_else(|| panic!("no next attempt in show --json: {shown}"));
    let base = kanban_core::defaults::SPAWN_RETRY_BASE_SECONDS;
    assert!(
        next > failed_at && next <= failed_at + base,
        "first retry {}s after the failure",
        next - failed_at
    );
    let human = h.ok(&["show", &t]);
    assert!(human.contains("next attempt:"), "{human}");
    // Configured: a longer base is honoured.
    h.kanban_config("  failure_limit: 100\n  spawn_retry_base_seconds: 600\n");
    let u = h.create("cannot start either", &["--assignee", "ghost"]);
    h.dispatch();
    let shown = h.json(&["show", &u, "--json"]);
    let failed_at = shown["runs"][0]["ended_at"].as_i64().unwrap();
    let next = shown["next_spawn_attempt_at"].as_i64().unwrap();
    assert!(next - failed_at > 400, "{shown}");
}
