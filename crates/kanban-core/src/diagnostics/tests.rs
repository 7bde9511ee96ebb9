//! Each rule at its boundary: one step short does not fire, the threshold does.

use serde_json::{Value, json};

use super::*;
use crate::{Event, Status};

const NOW: i64 = 10_000_000;

fn task(status: Status) -> Task {
    Task {
        id: "t_0000abcd".into(),
        title: "Ship it".into(),
        body: None,
        assignee: Some("coder".into()),
        status,
        priority: 0,
        created_by: None,
        created_at: NOW - 10,
        started_at: None,
        completed_at: None,
        workspace_kind: "scratch".into(),
        workspace_path: None,
        branch_name: None,
        project_id: None,
        claim_lock: None,
        claim_expires: None,
        tenant: None,
        result: None,
        idempotency_key: None,
        consecutive_failures: 0,
        worker_pid: None,
        last_failure_error: None,
        max_runtime_seconds: None,
        last_heartbeat_at: None,
        current_run_id: None,
        workflow_template_id: None,
        current_step_key: None,
        skills: None,
        model_override: None,
        max_retries: None,
        goal_mode: false,
        goal_max_turns: None,
        session_id: None,
        block_kind: None,
        block_recurrences: 0,
    }
}

fn ev(id: i64, kind: &str, at: i64, payload: Value) -> Event {
    Event {
        id,
        task_id: "t_0000abcd".into(),
        run_id: None,
        kind: kind.into(),
        payload,
        created_at: at,
    }
}

fn run(id: i64, outcome: &str, error: Option<&str>) -> RunSummary {
    RunSummary {
        id,
        outcome: Some(outcome.into()),
        error: error.map(str::to_string),
    }
}

fn facts(events: Vec<Event>, runs: Vec<RunSummary>) -> TaskFacts {
    TaskFacts::fold(&TaskHistory {
        task_id: "t_0000abcd".into(),
        events,
        runs,
    })
}

fn kinds(t: &Task, f: &TaskFacts, now: i64, cfg: &DiagnosticsConfig) -> Vec<&'static str> {
    task_diagnostics(t, f, now, cfg)
        .iter()
        .map(|d| d.kind)
        .collect()
}

fn one(t: &Task, f: &TaskFacts, now: i64, cfg: &DiagnosticsConfig, kind: &str) -> Diagnostic {
    task_diagnostics(t, f, now, cfg)
        .into_iter()
        .find(|d| d.kind == kind)
        .unwrap_or_else(|| panic!("{kind} did not fire"))
}

#[test]
fn hallucinated_cards_fires_until_a_clean_completion() {
    let cfg = DiagnosticsConfig::default();
    let t = task(Status::Running);
    let blocked = |id, at, ids: &[&str]| {
        ev(
            id,
            "completion_blocked_hallucination",
            at,
            json!({ "phantom_cards": ids }),
        )
    };
    let f = facts(
        vec![
            blocked(1, 100, &["t_x", "t_y"]),
            blocked(2, 200, &["t_y", "t_z"]),
        ],
        vec![],
    );
    let d = one(&t, &f, NOW, &cfg, "hallucinated_cards");
    assert_eq!(d.severity, Severity::Error);
    assert_eq!((d.count, d.first_seen_at, d.last_seen_at), (2, 100, 200));
    assert_eq!(d.data["phantom_ids"], json!(["t_x", "t_y", "t_z"]));
    let action_kinds: Vec<ActionKind> = d.actions.iter().map(|a| a.kind).collect();
    assert_eq!(
        action_kinds,
        [
            ActionKind::Comment,
            ActionKind::Reclaim,
            ActionKind::Reassign
        ]
    );
    // Not running: no reclaim offered.
    let d = one(&task(Status::Ready), &f, NOW, &cfg, "hallucinated_cards");
    assert!(d.actions.iter().all(|a| a.kind != ActionKind::Reclaim));

    for clearing in ["completed", "edited"] {
        let f = facts(
            vec![blocked(1, 100, &["t_x"]), ev(2, clearing, 150, json!({}))],
            vec![],
        );
        assert!(!kinds(&t, &f, NOW, &cfg).contains(&"hallucinated_cards"));
    }
    // A block after the clean completion fires again, counting only itself.
    let f = facts(
        vec![
            blocked(1, 100, &["t_x"]),
            ev(2, "completed", 150, json!({})),
            blocked(3, 160, &["t_q"]),
        ],
        vec![],
    );
    let d = one(&t, &f, NOW, &cfg, "hallucinated_cards");
    assert_eq!(
        (d.count, d.data["phantom_ids"].clone()),
        (1, json!(["t_q"]))
    );
}

#[test]
fn prose_phantom_refs_is_a_warning_that_clears() {
    let cfg = DiagnosticsConfig::default();
    let t = task(Status::Done);
    let hit = ev(
        1,
        "suspected_hallucinated_references",
        100,
        json!({"phantom_refs": ["t_dead"]}),
    );
    let d = one(
        &t,
        &facts(vec![hit.clone()], vec![]),
        NOW,
        &cfg,
        "prose_phantom_refs",
    );
    assert_eq!(d.severity, Severity::Warning);
    assert_eq!(d.data["phantom_refs"], json!(["t_dead"]));
    assert_eq!(d.actions.len(), 1);
    assert_eq!(d.actions[0].kind, ActionKind::Reassign);
    let f = facts(vec![hit, ev(2, "completed", 101, json!({}))], vec![]);
    assert!(kinds(&t, &f, NOW, &cfg).is_empty());
}

#[test]
fn repeated_failures_at_the_threshold_and_twice_it() {
    let cfg = DiagnosticsConfig::with_failure_limit(2);
    let mut t = task(Status::Ready);
    let f = facts(vec![], vec![run(1, "spawn_failed", None)]);
    t.consecutive_failures = 1;
    assert!(!kinds(&t, &f, NOW, &cfg).contains(&"repeated_failures"));
    t.consecutive_failures = 2;
    t.last_failure_error = Some("boom: no such binary\nsecond line".into());
    let d = one(&t, &f, NOW, &cfg, "repeated_failures");
    assert_eq!(d.severity, Severity::Error);
    assert_eq!(d.title, "Agent spawn x2: boom: no such binary");
    assert_eq!(d.actions[0].command(), Some("hermes -p coder doctor"));
    assert!(d.actions[0].suggested);
    assert_eq!(d.data["most_recent_outcome"], json!("spawn_failed"));
    t.consecutive_failures = 3;
    assert_eq!(
        one(&t, &f, NOW, &cfg, "repeated_failures").severity,
        Severity::Error
    );
    t.consecutive_failures = 4;
    assert_eq!(
        one(&t, &f, NOW, &cfg, "repeated_failures").severity,
        Severity::Critical
    );
    // A crash points at the log instead of the profile.
    let f = facts(
        vec![],
        vec![run(1, "spawn_failed", None), run(2, "crashed", None)],
    );
    let d = one(&t, &f, NOW, &cfg, "repeated_failures");
    assert_eq!(d.actions[0].command(), Some("kanban log t_0000abcd"));
    // Running, done and archived are exempt.
    for s in [Status::Running, Status::Done, Status::Archived] {
        t.status = s;
        assert!(!kinds(&t, &f, NOW, &cfg).contains(&"repeated_failures"));
    }
}

#[test]
fn long_errors_are_cut() {
    let cfg = DiagnosticsConfig::default();
    let mut t = task(Status::Blocked);
    t.consecutive_failures = 2;
    t.last_failure_error = Some("x".repeat(ERROR_SNIPPET_CHARS + 5));
    let d = one(&t, &TaskFacts::default(), NOW, &cfg, "repeated_failures");
    assert!(
        d.detail
            .contains(&format!("{}…", "x".repeat(ERROR_SNIPPET_CHARS)))
    );
    assert_eq!(d.title, format!("Agent failure x2: {}", "x".repeat(160)));
}

#[test]
fn repeated_crashes_counts_the_trailing_streak() {
    let cfg = DiagnosticsConfig::with_failure_limit(5);
    let t = task(Status::Ready);
    let one_crash = facts(
        vec![],
        vec![run(1, "completed", None), run(2, "crashed", None)],
    );
    assert!(!kinds(&t, &one_crash, NOW, &cfg).contains(&"repeated_crashes"));
    // Other failures neither count nor break; completed/reclaimed break.
    let f = facts(
        vec![],
        vec![
            run(1, "crashed", Some("old")),
            run(2, "reclaimed", None),
            run(3, "crashed", Some("OOM killed")),
            run(4, "timed_out", None),
            run(5, "crashed", None),
        ],
    );
    let d = one(&t, &f, NOW, &cfg, "repeated_crashes");
    assert_eq!((d.count, d.severity), (2, Severity::Error));
    assert_eq!(d.title, "Agent crashed 2x: OOM killed");
    assert_eq!(d.actions[0].command(), Some("kanban log t_0000abcd"));
    let four = facts(vec![], (1..=4).map(|i| run(i, "crashed", None)).collect());
    let d = one(&t, &four, NOW, &cfg, "repeated_crashes");
    assert_eq!(d.severity, Severity::Critical);
    assert_eq!(d.title, "Agent crashed 4x (no error recorded)");
    // The unified rule covers it once the counter reaches its threshold.
    let mut covered = task(Status::Ready);
    covered.consecutive_failures = 5;
    assert_eq!(kinds(&covered, &four, NOW, &cfg), ["repeated_failures"]);
    assert!(kinds(&task(Status::Running), &four, NOW, &cfg).is_empty());
}

#[test]
fn stuck_in_blocked_after_the_stale_hours_without_an_answer() {
    let cfg = DiagnosticsConfig::default();
    let t = task(Status::Blocked);
    let day = 24 * 3600;
    let blocked_at = NOW - day;
    let f = facts(vec![ev(1, "blocked", blocked_at, json!({}))], vec![]);
    assert!(kinds(&t, &f, NOW - 1, &cfg).is_empty());
    let d = one(&t, &f, NOW, &cfg, "stuck_in_blocked");
    assert_eq!(d.severity, Severity::Warning);
    assert_eq!(d.title, "Blocked for 24h with no answer");
    assert_eq!(d.data["age_hours"], json!(24.0));
    assert_eq!(d.actions[0].kind, ActionKind::Comment);
    // A comment after the block answers it; one in the same second does not.
    let same_second = facts(
        vec![
            ev(1, "blocked", blocked_at, json!({})),
            ev(2, "commented", blocked_at, json!({})),
        ],
        vec![],
    );
    assert_eq!(kinds(&t, &same_second, NOW, &cfg), ["stuck_in_blocked"]);
    let answered = facts(
        vec![
            ev(1, "blocked", blocked_at, json!({})),
            ev(2, "commented", blocked_at + 1, json!({})),
        ],
        vec![],
    );
    assert!(kinds(&t, &answered, NOW, &cfg).is_empty());
    assert!(kinds(&task(Status::Ready), &f, NOW, &cfg).is_empty());
}

#[test]
fn block_unblock_cycling_counts_cycles_inside_the_window() {
    let cfg = DiagnosticsConfig::default();
    let t = task(Status::Blocked);
    let toggles = |n: i64, start: i64| {
        let mut out = vec![ev(1, "blocked", start, json!({}))];
        for i in 0..n {
            out.push(ev(2 + 2 * i, "unblocked", start + 10 * i + 5, json!({})));
            out.push(ev(3 + 2 * i, "blocked", start + 10 * i + 10, json!({})));
        }
        out
    };
    let two = facts(toggles(2, NOW - 100), vec![]);
    assert!(!kinds(&t, &two, NOW, &cfg).contains(&"block_unblock_cycling"));
    let three = facts(toggles(3, NOW - 100), vec![]);
    let d = one(&t, &three, NOW, &cfg, "block_unblock_cycling");
    assert_eq!((d.count, d.severity), (3, Severity::Warning));
    assert_eq!((d.first_seen_at, d.last_seen_at), (NOW - 100, NOW - 70));
    assert_eq!(d.actions[0].command(), Some("kanban show t_0000abcd"));
    // Outside the window the same history is quiet.
    let later = NOW + BLOCK_CYCLE_WINDOW_SECONDS_DEFAULT;
    assert!(!kinds(&t, &three, later, &cfg).contains(&"block_unblock_cycling"));
}

#[test]
fn stranded_in_ready_escalates_with_age() {
    let cfg = DiagnosticsConfig::default();
    let th = STRANDED_THRESHOLD_SECONDS_DEFAULT;
    let t = task(Status::Ready);
    let f = facts(vec![ev(1, "promoted", NOW, json!({}))], vec![]);
    assert!(kinds(&t, &f, NOW + th - 1, &cfg).is_empty());
    let d = one(&t, &f, NOW + th, &cfg, "stranded_in_ready");
    assert_eq!(d.severity, Severity::Warning);
    assert_eq!(d.title, "Ready for 30m, no worker has claimed it");
    assert_eq!(d.actions[0].kind, ActionKind::Reassign);
    assert_eq!(d.actions[0].payload["current_assignee"], json!("coder"));
    assert_eq!(
        one(&t, &f, NOW + 2 * th, &cfg, "stranded_in_ready").severity,
        Severity::Error
    );
    let d = one(&t, &f, NOW + 6 * th, &cfg, "stranded_in_ready");
    assert_eq!(
        (d.severity, d.title.as_str()),
        (
            Severity::Critical,
            "Ready for 3.0h, no worker has claimed it"
        )
    );
    // Falls back to created_at without a ready event.
    let created = task(Status::Ready).created_at;
    assert!(!kinds(&t, &TaskFacts::default(), created + th, &cfg).is_empty());
    // Claimed, unassigned or not ready: quiet.
    let mut claimed = task(Status::Ready);
    claimed.claim_lock = Some("host:1".into());
    let mut unassigned = task(Status::Ready);
    unassigned.assignee = Some("  ".into());
    for t in [claimed, unassigned, task(Status::Todo)] {
        assert!(kinds(&t, &f, NOW + 6 * th, &cfg).is_empty());
    }
}

#[test]
fn triage_aux_unavailable_needs_config_context() {
    let mut cfg = DiagnosticsConfig::default();
    let t = task(Status::Triage);
    assert!(kinds(&t, &TaskFacts::default(), NOW, &cfg).is_empty());
    let broken = TriageAuxStatus {
        auto_decompose: true,
        decomposer_available: false,
        specifier_available: false,
    };
    cfg.triage = Some(broken);
    let d = one(
        &t,
        &TaskFacts::default(),
        NOW,
        &cfg,
        "triage_aux_unavailable",
    );
    assert_eq!(d.severity, Severity::Warning);
    assert_eq!(d.actions.len(), 1);
    assert_eq!(d.actions[0].command(), Some("kanban doctor"));
    // The specifier has a model: offered as the way out by hand.
    cfg.triage = Some(TriageAuxStatus {
        specifier_available: true,
        ..broken
    });
    let d = one(
        &t,
        &TaskFacts::default(),
        NOW,
        &cfg,
        "triage_aux_unavailable",
    );
    assert_eq!(d.actions[1].command(), Some("kanban specify t_0000abcd"));
    // Auto-decompose off: the specifier is what must run.
    cfg.triage = Some(TriageAuxStatus {
        auto_decompose: false,
        decomposer_available: true,
        specifier_available: false,
    });
    let d = one(
        &t,
        &TaskFacts::default(),
        NOW,
        &cfg,
        "triage_aux_unavailable",
    );
    assert_eq!(d.data["primary_slot"], json!("auxiliary.triage_specifier"));
    assert_eq!(d.actions[1].command(), Some("kanban decompose t_0000abcd"));
    for fixed in [
        TriageAuxStatus {
            decomposer_available: true,
            ..broken
        },
        TriageAuxStatus {
            auto_decompose: false,
            specifier_available: true,
            ..broken
        },
    ] {
        cfg.triage = Some(fixed);
        assert!(kinds(&t, &TaskFacts::default(), NOW, &cfg).is_empty());
    }
    cfg.triage = Some(broken);
    assert!(kinds(&task(Status::Todo), &TaskFacts::default(), NOW, &cfg).is_empty());
}

#[test]
fn sorted_by_severity_then_recency_and_summarised() {
    let cfg = DiagnosticsConfig::default();
    let mut t = task(Status::Ready);
    t.consecutive_failures = 4;
    let f = facts(
        vec![
            ev(1, "suspected_hallucinated_references", 50, json!({})),
            ev(2, "completion_blocked_hallucination", 60, json!({})),
        ],
        vec![],
    );
    let list = task_diagnostics(&t, &f, NOW, &cfg);
    let got: Vec<(&str, Severity)> = list.iter().map(|d| (d.kind, d.severity)).collect();
    assert_eq!(
        got,
        [
            ("repeated_failures", Severity::Critical),
            ("hallucinated_cards", Severity::Error),
            ("prose_phantom_refs", Severity::Warning),
        ]
    );
    let w = warnings_summary(&list).expect("summary");
    assert_eq!((w.count, w.latest_at), (6, NOW));
    assert_eq!(w.highest_severity, Some(Severity::Critical));
    assert_eq!(w.kinds["repeated_failures"], json!(4));
    assert!(warnings_summary(&[]).is_none());
    let kept = at_or_above(list, Some(Severity::Error));
    assert_eq!(kept.len(), 2);
    assert!("fatal".parse::<Severity>().is_err());
    assert_eq!(
        "Critical".parse::<Severity>().ok(),
        Some(Severity::Critical)
    );
}

#[test]
fn data_line_is_compact() {
    let d = data(vec![
        ("ids", json!(["a", "b"])),
        ("n", json!(2)),
        ("err", Value::Null),
        ("ok", json!(true)),
    ]);
    assert_eq!(data_line(&d), "ids=a,b | n=2 | err=None | ok=True");
}

#[test]
fn every_kind_is_listed_once() {
    let mut k = DIAGNOSTIC_KINDS.to_vec();
    k.sort();
    k.dedup();
    assert_eq!(k.len(), RULES.len());
    assert!(fact_event_kinds().contains(&"commented"));
}
