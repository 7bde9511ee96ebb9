//! Issue 12 item 2: `kanban diagnostics` / `diag`, the diagnostics section
//! of `kanban show`, `GET /api/v1/diagnostics` and the board cards'
//! `diagnostics` / `warnings`. Boards are built with CLI verbs and store
//! calls; time-based rules get their age by moving events back in time.

use kanban_core::EventKind;
use kanban_core::RunOutcome;
use kanban_store::dispatch_ops::{FailurePolicy, ReleaseRunning, SpawnFailure};
use kanban_store::{ClaimOutcome, ClaimRequest, CompleteRequest};
use kanban_testkit::{Sandbox, stderr, stdout};
use serde_json::{Value, json};

const HOUR: i64 = 3600;

fn claim(b: &Sandbox, id: &str) -> i64 {
    let req = ClaimRequest {
        task_id: id.into(),
        claim_lock: "host:1".into(),
        ttl_seconds: 900,
        review: false,
        ceilings: Default::default(),
    };
    match b.store().claim_task(&req).expect("claim") {
        ClaimOutcome::Claimed { run_id, .. } => run_id,
        other => panic!("claim of {id}: {other:?}"),
    }
}

fn crash(b: &Sandbox, id: &str, error: &str) {
    let run = claim(b, id);
    let req = ReleaseRunning {
        task_id: id.into(),
        claim_lock: Some("host:1".into()),
        run_id: Some(run),
        worker_pid: None,
        require_expired: false,
        outcome: RunOutcome::Crashed,
        event: EventKind::Crashed,
        error: error.into(),
        payload: json!({"pid": 5}),
        run_metadata: None,
        clear_heartbeat: false,
        stamp_error: true,
        failure: FailurePolicy::Counted {
            dispatcher_limit: 100,
            forced_limit: None,
            extra: json!({}),
        },
    };
    assert!(b.store().release_running(&req).unwrap().released);
}

fn fail_spawn(b: &Sandbox, id: &str) {
    let run = claim(b, id);
    let f = SpawnFailure {
        task_id: id.into(),
        run_id: Some(run),
        error: "profile ghost: command not found".into(),
        failure_limit: 100,
    };
    assert!(b.store().record_spawn_failure(&f).unwrap().released);
}

/// Move every event of `id` (and the task's creation) `secs` into the past.
fn age(b: &Sandbox, id: &str, secs: i64) {
    let db = b.db();
    db.execute(
        "UPDATE task_events SET created_at = created_at - ?1 WHERE task_id = ?2",
        rusqlite::params![secs, id],
    )
    .unwrap();
    db.execute(
        "UPDATE tasks SET created_at = created_at - ?1 WHERE id = ?2",
        rusqlite::params![secs, id],
    )
    .unwrap();
}

fn diag_json(b: &Sandbox, extra: &[&str]) -> Vec<Value> {
    let mut args = vec!["diagnostics", "--json"];
    args.extend_from_slice(extra);
    b.json(&args).as_array().expect("a JSON list").clone()
}

fn kinds_of(rows: &[Value], id: &str) -> Vec<String> {
    rows.iter()
        .filter(|r| r["task_id"] == id)
        .flat_map(|r| r["diagnostics"].as_array().unwrap().clone())
        .map(|d| d["kind"].as_str().unwrap().to_string())
        .collect()
}

fn with_config(b: &Sandbox, yaml: &str) {
    std::fs::write(b.path("config.yaml"), yaml).unwrap();
}

/// One board with a task per rule; returns (kind, task id) pairs.
fn board_with_every_rule(b: &Sandbox) -> Vec<(&'static str, String)> {
    // Crash streaks below the failure limit stay `repeated_crashes`; a main
    // model-less config gives triage context.
    with_config(
        b,
        "model: ''\nkanban:\n  dispatch_in_gateway: false\n  failure_limit: 5\n  diagnostics:\n    failure_threshold: 3\n",
    );
    let mut out = Vec::new();

    let orchestrator = b.create("orchestrate", &["--assignee", "coder"]);
    claim(b, &orchestrator);
    b.store()
        .complete_task(&CompleteRequest {
            task_id: orchestrator.clone(),
            summary: Some("made cards".into()),
            created_cards: vec!["t_0badc0de".into()],
            ..Default::default()
        })
        .unwrap_err();
    out.push(("hallucinated_cards", orchestrator));

    let prose = b.create("summarise", &[]);
    b.ok(&["complete", &prose, "--summary", "follow-up is t_deadbeef"]);
    out.push(("prose_phantom_refs", prose));

    let failing = b.create("flaky", &["--assignee", "ghost"]);
    for _ in 0..3 {
        fail_spawn(b, &failing);
    }
    out.push(("repeated_failures", failing));

    let crashy = b.create("crashy", &["--assignee", "coder"]);
    crash(b, &crashy, "Traceback: OOM");
    crash(b, &crashy, "Traceback: OOM again");
    out.push(("repeated_crashes", crashy));

    let stuck = b.create("stuck", &[]);
    b.ok(&["block", &stuck]);
    age(b, &stuck, 25 * HOUR);
    out.push(("stuck_in_blocked", stuck));

    let cycling = b.create("cycling", &[]);
    // Alternating kinds: the same kind twice in a row would route the task
    // to triage (the block-loop breaker) instead of blocking it again.
    let kinds = ["needs_input", "capability", "needs_input", "capability"];
    for (i, kind) in kinds.iter().enumerate() {
        b.ok(&["block", &cycling, "--kind", kind]);
        if i + 1 < kinds.len() {
            b.ok(&["unblock", &cycling]);
        }
    }
    out.push(("block_unblock_cycling", cycling));

    let stranded = b.create("stranded", &["--assignee", "nobody-polls-this"]);
    age(b, &stranded, 31 * 60);
    out.push(("stranded_in_ready", stranded));

    let triage = b.create("rough idea", &["--triage"]);
    out.push(("triage_aux_unavailable", triage));
    out
}

#[test]
fn every_rule_fires_on_its_board() {
    let b = Sandbox::new();
    let cases = board_with_every_rule(&b);
    let rows = diag_json(&b, &[]);
    for (kind, id) in &cases {
        assert!(
            kinds_of(&rows, id).contains(&kind.to_string()),
            "{kind} on {id}: {rows:#?}"
        );
    }
    // The row shape of the reference's `--json`.
    let row = rows.iter().find(|r| r["task_id"] == cases[2].1).unwrap();
    assert_eq!(row["title"], "flaky");
    assert_eq!(row["assignee"], "ghost");
    let d = &row["diagnostics"][0];
    for key in [
        "kind",
        "severity",
        "title",
        "detail",
        "actions",
        "first_seen_at",
        "last_seen_at",
        "count",
        "run_id",
        "data",
    ] {
        assert!(d.get(key).is_some(), "{key} missing: {d}");
    }
    // Three failures at a threshold of three: error (critical from six).
    assert_eq!(
        (d["kind"].as_str(), d["severity"].as_str()),
        (Some("repeated_failures"), Some("error")),
        "{d}"
    );
}

#[test]
fn severity_and_task_filters_and_the_human_view() {
    let b = Sandbox::new();
    let cases = board_with_every_rule(&b);
    let errors = diag_json(&b, &["--severity", "error"]);
    for r in &errors {
        for d in r["diagnostics"].as_array().unwrap() {
            assert_ne!(d["severity"], "warning", "{d}");
        }
    }
    assert!(kinds_of(&errors, &cases[0].1).contains(&"hallucinated_cards".to_string()));
    assert!(
        kinds_of(&errors, &cases[1].1).is_empty(),
        "prose refs are warnings"
    );

    let one = diag_json(&b, &["--task", &cases[4].1]);
    assert_eq!(one.len(), 1);
    assert_eq!(kinds_of(&one, &cases[4].1), ["stuck_in_blocked"]);

    // Human view: header, task line, marker line, data, suggested action.
    let text = b.ok(&["diag"]);
    assert!(text.contains("active diagnostic(s) across"), "{text}");
    assert!(text.contains("!! [error] hallucinated_cards: "), "{text}");
    assert!(text.contains("data: phantom_ids=t_0badc0de"), "{text}");
    assert!(text.contains("⚠ [warning] stuck_in_blocked: "), "{text}");
    assert!(text.contains("→ Read the worker log: kanban log"), "{text}");

    // `show` prints the task's diagnostics under its header.
    let show = b.ok(&["show", &cases[3].1]);
    assert!(show.contains("Diagnostics (1):"), "{show}");
    assert!(
        show.contains("[error] Agent crashed 2x: Traceback: OOM again"),
        "{show}"
    );
    let quiet = b.create("fine", &[]);
    assert!(!b.ok(&["show", &quiet]).contains("Diagnostics"));
}

#[test]
fn diagnostics_clear_when_the_cause_is_gone() {
    let b = Sandbox::new();
    let stuck = b.create("stuck", &[]);
    b.ok(&["block", &stuck]);
    age(&b, &stuck, 25 * HOUR);
    assert_eq!(kinds_of(&diag_json(&b, &[]), &stuck), ["stuck_in_blocked"]);
    b.ok(&["comment", &stuck, "creds are in the vault"]);
    assert!(kinds_of(&diag_json(&b, &[]), &stuck).is_empty());
    assert_eq!(
        b.ok(&["diagnostics"]).trim(),
        "No active diagnostics on this board."
    );
}

#[test]
fn bad_input_is_refused_and_changes_nothing() {
    let b = Sandbox::new();
    let id = b.create("t", &[]);
    let before = b.snapshot();
    let out = b.run(&["diagnostics", "--severity", "fatal"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let out = b.run(&["diagnostics", "--task", "t_00000000"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("no such task: t_00000000"),
        "{}",
        stderr(&out)
    );
    assert!(stdout(&out).is_empty());
    assert_eq!(b.snapshot(), before, "diagnostics never write");
    assert_eq!(b.status(&id), "ready");
}

#[test]
fn gateway_lists_diagnostics_and_cards_carry_them() {
    let b = Sandbox::new();
    let cases = board_with_every_rule(&b);
    let gw = b.gateway();
    let r = gw.request("GET", "/api/v1/diagnostics", None);
    assert_eq!(r.status, 200, "{}", r.body);
    let list = r.json();
    let rows = list["diagnostics"].as_array().unwrap();
    let total: usize = rows
        .iter()
        .map(|r| r["diagnostics"].as_array().unwrap().len())
        .sum();
    assert_eq!(list["count"], json!(total));
    let rank = |s: &Value| {
        ["warning", "error", "critical"]
            .iter()
            .position(|x| s == x)
            .unwrap()
    };
    let tops: Vec<usize> = rows
        .iter()
        .map(|r| rank(&r["diagnostics"][0]["severity"]))
        .collect();
    assert!(
        tops.windows(2).all(|w| w[0] >= w[1]),
        "most severe first: {tops:?}"
    );
    let row = rows
        .iter()
        .find(|r| r["task_id"] == cases[6].1)
        .expect("stranded task");
    assert_eq!(row["task_title"], "stranded");
    assert_eq!(row["task_status"], "ready");
    assert_eq!(row["task_assignee"], "nobody-polls-this");

    let crit = gw
        .request("GET", "/api/v1/diagnostics?severity=critical", None)
        .json();
    for r in crit["diagnostics"].as_array().unwrap() {
        for d in r["diagnostics"].as_array().unwrap() {
            assert_eq!(d["severity"], "critical");
        }
    }
    let bad = gw.request("GET", "/api/v1/diagnostics?severity=fatal", None);
    assert_eq!(bad.status, 400, "{}", bad.body);
    assert!(bad.json()["error"].is_string(), "{}", bad.body);
    let missing = gw.request("GET", "/api/v1/diagnostics?board=no-such-board", None);
    assert_eq!(missing.status, 404, "{}", missing.body);

    // Board cards: full list plus the badge summary; clean cards have neither.
    let board = gw.request("GET", "/api/v1/board", None).json();
    let cards: Vec<&Value> = board["columns"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|c| c["tasks"].as_array().unwrap())
        .collect();
    let card = |id: &str| *cards.iter().find(|c| c["id"] == id).unwrap();
    let blocked = card(&cases[0].1);
    assert_eq!(blocked["diagnostics"][0]["kind"], "hallucinated_cards");
    let w = &blocked["warnings"];
    assert_eq!(w["highest_severity"], "error");
    assert_eq!(w["kinds"]["hallucinated_cards"], 1);
    assert!(w["count"].as_i64().unwrap() >= 1 && w["latest_at"].as_i64().unwrap() > 0);
    let clean = b.create("clean", &[]);
    let board = gw.request("GET", "/api/v1/board", None).json();
    let clean_card = board["columns"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|c| c["tasks"].as_array().unwrap())
        .find(|c| c["id"] == clean)
        .unwrap()
        .clone();
    assert!(clean_card.get("diagnostics").is_none() && clean_card.get("warnings").is_none());

    // A change after the first read is seen (the index refolds the task).
    b.ok(&["comment", &cases[4].1, "answered"]);
    let after = gw.request("GET", "/api/v1/diagnostics", None).json();
    let still: Vec<&Value> = after["diagnostics"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["task_id"] == cases[4].1)
        .collect();
    assert!(still.is_empty(), "the comment answers the block: {still:?}");
    // The task detail carries them too; an unknown task is a 404.
    let detail = gw
        .request("GET", &format!("/api/v1/tasks/{}", cases[3].1), None)
        .json();
    assert_eq!(detail["task"]["diagnostics"][0]["kind"], "repeated_crashes");
    assert_eq!(
        gw.request("GET", "/api/v1/tasks/t_00000000", None).status,
        404
    );
}

/// The same rules through the PostgreSQL backend's reads (thresholds at
/// zero so no clock has to move; PostgreSQL from the test kit).
#[test]
fn diagnostics_on_a_postgres_board() {
    let Some(pg) = kanban_testkit::postgres::cluster() else {
        return;
    };
    let mut b = Sandbox::new();
    b.env.insert(
        "HERMES_KANBAN_DATABASE_URL".into(),
        pg.url(&pg.unique_database("kb_diag")),
    );
    with_config(
        &b,
        "kanban:\n  diagnostics:\n    blocked_stale_hours: 0\n    stranded_threshold_seconds: 0\n",
    );
    b.ok(&["init"]);
    let stuck = b.create("stuck", &[]);
    b.ok(&["block", &stuck]);
    let stranded = b.create("stranded", &["--assignee", "nobody"]);
    let prose = b.create("summarise", &[]);
    b.ok(&["complete", &prose, "--summary", "see t_deadbeef"]);
    let rows = diag_json(&b, &[]);
    assert_eq!(kinds_of(&rows, &stuck), ["stuck_in_blocked"], "{rows:#?}");
    assert_eq!(kinds_of(&rows, &stranded), ["stranded_in_ready"]);
    assert_eq!(kinds_of(&rows, &prose), ["prose_phantom_refs"]);
    let one = diag_json(&b, &["--task", &prose]);
    assert_eq!(
        one[0]["diagnostics"][0]["data"]["phantom_refs"],
        json!(["t_deadbeef"])
    );
    // (A comment in the same second as the block does not answer it, as in
    // the reference: only a strictly later one does. Unblocking does.)
    b.ok(&["unblock", &stuck]);
    assert!(kinds_of(&diag_json(&b, &[]), &stuck).is_empty());
}
