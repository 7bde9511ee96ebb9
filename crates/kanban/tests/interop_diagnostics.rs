//! Diagnostics parity with the Python reference (hermes-agent 0.19.0): one
//! board, written partly by `kanban`, partly by the reference's library and
//! CLI (and aged by raw SQL), is read by `kanban diagnostics --json` and by
//! the reference's `hermes kanban diagnostics --json`. Per task both report
//! the same diagnostic kinds, severities and suggested action kinds; titles
//! and details are worded differently on purpose and are not compared.

use std::collections::BTreeMap;

use kanban_core::{EventKind, RunOutcome};
use kanban_store::dispatch_ops::{FailurePolicy, ReleaseRunning};
use kanban_store::{ClaimOutcome, ClaimRequest};
use kanban_testkit::Sandbox;
use kanban_testkit::reference::{run_json, run_ok};
use serde_json::{Value, json};

/// The reference's `hermes kanban <args>` with site-packages visible:
/// `ref_board.py` runs under `python3 -S`, but the reference's
/// `diagnostics` loads `config.yaml` through PyYAML (installed by `.ci/run`).
macro_rules! reference_cli {
    ($board:expr, $args:expr) => {
        match $board.reference_code(RUN_REF_BOARD) {
            Some(mut cmd) => {
                cmd.arg(kanban_testkit::reference::ref_board_script())
                    .args(["cli", "--"])
                    .args($args);
                cmd
            }
            None => return,
        }
    };
}

/// `python3 -c` body running `ref_board.py` with the arguments after it.
const RUN_REF_BOARD: &str =
    "import runpy, sys; sys.argv = sys.argv[1:]; runpy.run_path(sys.argv[0], run_name='__main__')";

const HOUR: i64 = 3600;
const MINUTE: i64 = 60;
/// Both read this from `config.yaml`: failures tripping the breaker at five,
/// the diagnostics' failure threshold at three, and no main model (so the
/// triage card gets its "no decomposer model" warning).
const CONFIG: &str = "model: ''\nkanban:\n  dispatch_in_gateway: false\n  failure_limit: 5\n  \
                      diagnostics:\n    failure_threshold: 3\n";
const CLAIM_LOCK: &str = "host:1";

/// Per task: kind -> (severity, action kinds in order).
type Summary = BTreeMap<String, BTreeMap<String, (String, Vec<String>)>>;

fn summarize(rows: &Value) -> Summary {
    rows.as_array()
        .unwrap_or_else(|| panic!("expected a JSON list, got {rows}"))
        .iter()
        .map(|row| {
            let per_kind = row["diagnostics"]
                .as_array()
                .unwrap_or_else(|| panic!("no diagnostics list in {row}"))
                .iter()
                .map(|d| {
                    let actions = d["actions"]
                        .as_array()
                        .unwrap_or_else(|| panic!("no actions list in {d}"))
                        .iter()
                        .map(|a| a["kind"].as_str().unwrap_or_default().to_owned())
                        .collect();
                    (
                        d["kind"].as_str().unwrap_or_default().to_owned(),
                        (
                            d["severity"].as_str().unwrap_or_default().to_owned(),
                            actions,
                        ),
                    )
                })
                .collect();
            (row["task_id"].as_str().unwrap().to_owned(), per_kind)
        })
        .collect()
}

fn ours(b: &Sandbox, extra: &[&str]) -> Value {
    let mut args = vec!["diagnostics", "--json"];
    args.extend_from_slice(extra);
    b.json(&args)
}

fn claim(b: &Sandbox, id: &str) -> i64 {
    let req = ClaimRequest {
        task_id: id.into(),
        claim_lock: CLAIM_LOCK.into(),
        ttl_seconds: 900,
        review: false,
        ceilings: Default::default(),
    };
    match b.store().claim_task(&req).expect("claim") {
        ClaimOutcome::Claimed { run_id, .. } => run_id,
        other => panic!("claim of {id}: {other:?}"),
    }
}

/// A crashed run recorded by our store (counted, never tripping the breaker).
fn crash(b: &Sandbox, id: &str, error: &str) {
    let run = claim(b, id);
    let req = ReleaseRunning {
        task_id: id.into(),
        claim_lock: Some(CLAIM_LOCK.into()),
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

/// Moves every event of `id` (and its creation) `secs` into the past.
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

/// The board: (expected kind, task id) per rule, plus a clean task.
struct Board {
    cases: Vec<(&'static str, String)>,
    clean: String,
}

impl Board {
    fn id(&self, kind: &str) -> &str {
        &self
            .cases
            .iter()
            .find(|(k, _)| *k == kind)
            .unwrap_or_else(|| panic!("no case {kind}"))
            .1
    }
}

/// `None` when the reference is unavailable and skipping is allowed.
fn build_board(b: &Sandbox) -> Option<Board> {
    std::fs::write(b.path("config.yaml"), CONFIG).unwrap();
    let mut cases = Vec::new();
    let reference_create = |title: &str, extra: &[&str]| -> Option<String> {
        let mut args = vec!["create", title];
        args.extend_from_slice(extra);
        let v = run_json(&mut b.reference(args)?);
        Some(kanban_testkit::reference::task_id(&v))
    };

    // The reference's complete_task refuses phantom created cards and
    // records the attempt (reference library).
    let orchestrator = reference_create("orchestrate", &["--assignee", "coder"])?;
    let code = format!(
        "from hermes_cli import kanban_db as kb\n\
         conn = kb.connect()\n\
         assert kb.claim_task(conn, '{orchestrator}', claimer='{CLAIM_LOCK}')\n\
         try:\n    kb.complete_task(conn, '{orchestrator}', summary='made cards', \
         created_cards=['t_0badc0de'])\n\
         except Exception as e:\n    print(type(e).__name__)\n\
         else:\n    raise SystemExit('complete_task accepted a phantom card')\n"
    );
    run_ok(&mut b.reference_code(&code)?);
    cases.push(("hallucinated_cards", orchestrator));

    // Prose references to a missing card, completed by the reference CLI.
    let prose = b.create("summarise", &[]);
    run_ok(&mut b.reference([
        "cli",
        "--",
        "complete",
        &prose,
        "--summary",
        "follow-up is t_deadbeef",
    ])?);
    cases.push(("prose_phantom_refs", prose));

    // Three spawn failures recorded by the reference: error (threshold 3).
    let failing = b.create("flaky", &["--assignee", "ghost"]);
    let code = format!(
        "from hermes_cli import kanban_db as kb\n\
         conn = kb.connect()\n\
         for _ in range(3):\n    \
         assert kb.claim_task(conn, '{failing}', claimer='{CLAIM_LOCK}')\n    \
         kb._record_spawn_failure(conn, '{failing}', 'profile ghost: command not found', \
         failure_limit=100)\n"
    );
    run_ok(&mut b.reference_code(&code)?);
    cases.push(("repeated_failures", failing));

    // Six spawn failures recorded by our store: critical (twice the threshold).
    let critical = reference_create("very flaky", &["--assignee", "ghost"])?;
    for _ in 0..6 {
        let run = claim(b, &critical);
        let f = kanban_store::dispatch_ops::SpawnFailure {
            task_id: critical.clone(),
            run_id: Some(run),
            error: "profile ghost: command not found".into(),
            failure_limit: 100,
        };
        assert!(b.store().record_spawn_failure(&f).unwrap().released);
    }
    cases.push(("repeated_failures_critical", critical));

    // Two crashes (below the failure threshold) recorded by our store.
    let crashy = reference_create("crashy", &["--assignee", "coder"])?;
    crash(b, &crashy, "Traceback: OOM");
    crash(b, &crashy, "Traceback: OOM again");
    cases.push(("repeated_crashes", crashy));

    // Blocked by the reference CLI a day ago, never answered.
    let stuck = b.create("stuck", &[]);
    run_ok(&mut b.reference(["cli", "--", "block", &stuck, "waiting on creds"])?);
    age(b, &stuck, 25 * HOUR);
    cases.push(("stuck_in_blocked", stuck));

    // Blocked and unblocked by turns, by both (alternating kinds: the same
    // kind twice routes the task to triage instead).
    let cycling = reference_create("cycling", &[])?;
    let kinds = ["needs_input", "capability", "needs_input", "capability"];
    for (i, kind) in kinds.iter().enumerate() {
        if i % 2 == 0 {
            b.ok(&["block", &cycling, "--kind", kind]);
            run_ok(&mut b.reference(["cli", "--", "unblock", &cycling])?);
        } else {
            run_ok(&mut b.reference(["block", &cycling, "--kind", kind])?);
            if i + 1 < kinds.len() {
                b.ok(&["unblock", &cycling]);
            }
        }
    }
    cases.push(("block_unblock_cycling", cycling));

    // Ready for 31 minutes with an assignee no dispatcher serves.
    let stranded = reference_create("stranded", &["--assignee", "nobody-polls-this"])?;
    age(b, &stranded, 31 * MINUTE);
    cases.push(("stranded_in_ready", stranded));

    // A triage card and no model to specify it.
    let triage = b.create("rough idea", &["--triage"]);
    cases.push(("triage_aux_unavailable", triage));

    let clean = reference_create("fine", &[])?;
    Some(Board { cases, clean })
}

/// The one deliberate difference in what the rules suggest: for a triage
/// card with no model, the reference adds "Or configure fallback <slot>"
/// (`hermes config set <slot>.provider auto`, a second `cli_hint`) whenever
/// the fallback slot is not configured either. `kanban` suggests the fallback
/// only when it can run (`kanban specify|decompose <id>`) and otherwise
/// points once at `kanban doctor`, which names what each model slot lacks
/// (there is no `provider: auto` to set: a slot is usable when it names an
/// endpoint or a command). Asserts the difference on every triage row, then
/// drops the reference's extra hint so the rest compares equal.
fn reconcile_triage_actions(theirs: &mut Summary, ours: &Summary) {
    for (task, kinds) in theirs.iter_mut() {
        let Some((_, their_actions)) = kinds.get_mut("triage_aux_unavailable") else {
            continue;
        };
        let our_actions = &ours
            .get(task)
            .and_then(|k| k.get("triage_aux_unavailable"))
            .unwrap_or_else(|| {
                panic!("{task}: the reference reports triage_aux_unavailable, we do not")
            })
            .1;
        assert_eq!(
            *their_actions,
            ["cli_hint", "cli_hint"],
            "{task}: the reference's configure-slot and configure-fallback hints"
        );
        assert_eq!(*our_actions, ["cli_hint"], "{task}: our single doctor hint");
        their_actions.truncate(1);
    }
}

/// Both outputs for the same arguments, reconciled as above.
fn both(b: &Sandbox, extra: &[&str]) -> Option<(Summary, Summary)> {
    let mut cmd = b.reference_code(RUN_REF_BOARD)?;
    cmd.arg(kanban_testkit::reference::ref_board_script())
        .args(["cli", "--", "diagnostics", "--json"])
        .args(extra);
    let theirs_json = run_json(&mut cmd);
    let ours_json = ours(b, extra);
    assert_same_rows(&theirs_json, &ours_json);
    let (mut theirs, ours) = (summarize(&theirs_json), summarize(&ours_json));
    reconcile_triage_actions(&mut theirs, &ours);
    Some((theirs, ours))
}

/// The JSON shapes match: the same rows, the same row keys with the same
/// task title/status/assignee, the same keys per diagnostic and per action,
/// and the same `suggested` flag and `count` (texts and `data` aside: the
/// `data` keys are rule details and differ, e.g. the triage rule's
/// `main_model_visible` against our `fallback_available`).
///
/// Row order differs on purpose: the reference prints rows in SQLite's scan
/// order of `SELECT * FROM tasks` (unspecified), `kanban` most severe first,
/// then most recent; that order is asserted on ours.
fn assert_same_rows(theirs: &Value, ours: &Value) {
    let (t, o) = (theirs.as_array().unwrap(), ours.as_array().unwrap());
    let ids = |rows: &[Value]| -> BTreeMap<String, Value> {
        rows.iter()
            .map(|r| (r["task_id"].as_str().unwrap().to_owned(), r.clone()))
            .collect()
    };
    let (t, o) = (ids(t), ids(o));
    assert_eq!(
        o.keys().collect::<Vec<_>>(),
        t.keys().collect::<Vec<_>>(),
        "the same rows\nours: {ours:#}\ntheirs: {theirs:#}"
    );
    let rank = |r: &Value| match r["diagnostics"][0]["severity"].as_str() {
        Some("critical") => 2,
        Some("error") => 1,
        _ => 0,
    };
    let ranks: Vec<i32> = ours.as_array().unwrap().iter().map(rank).collect();
    assert!(
        ranks.windows(2).all(|w| w[0] >= w[1]),
        "ours most severe first: {ranks:?}"
    );
    let keys = |v: &Value| -> Vec<String> { v.as_object().unwrap().keys().cloned().collect() };
    for (tr, or) in t.values().zip(o.values()) {
        assert_eq!(keys(or), keys(tr), "row keys");
        for k in ["title", "status", "assignee"] {
            assert_eq!(or[k], tr[k], "{k} of {}", tr["task_id"]);
        }
        let (td, od) = (
            tr["diagnostics"].as_array().unwrap(),
            or["diagnostics"].as_array().unwrap(),
        );
        for (tdi, odi) in td.iter().zip(od) {
            assert_eq!(keys(odi), keys(tdi), "diagnostic keys of {}", tr["task_id"]);
            let suggested = |d: &Value| -> Vec<(String, bool)> {
                d["actions"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|a| {
                        assert_eq!(keys(a), ["kind", "label", "payload", "suggested"], "{a}");
                        (
                            a["kind"].as_str().unwrap().to_owned(),
                            a["suggested"].as_bool().unwrap(),
                        )
                    })
                    .collect()
            };
            let (ts, os) = (suggested(tdi), suggested(odi));
            let n = ts.len().min(os.len());
            assert_eq!(
                os[..n],
                ts[..n],
                "suggested flags of {} {}",
                tr["task_id"],
                tdi["kind"]
            );
            assert_eq!(
                odi["count"], tdi["count"],
                "count of {} {}",
                tr["task_id"], tdi["kind"]
            );
        }
    }
}

#[test]
fn both_report_the_same_kinds_severities_and_actions() {
    let b = Sandbox::new();
    let Some(board) = build_board(&b) else { return };
    let Some((theirs, ours)) = both(&b, &[]) else {
        return;
    };
    assert_eq!(ours, theirs, "per task: kinds, severities, action kinds");
    let expected: Vec<(&str, &str)> = vec![
        ("hallucinated_cards", "error"),
        ("prose_phantom_refs", "warning"),
        ("repeated_failures", "error"),
        ("repeated_failures_critical", "critical"),
        ("repeated_crashes", "error"),
        ("stuck_in_blocked", "warning"),
        ("block_unblock_cycling", "warning"),
        ("stranded_in_ready", "warning"),
        ("triage_aux_unavailable", "warning"),
    ];
    for (case, severity) in expected {
        let kind = case.trim_end_matches("_critical");
        let got = &ours[board.id(case)];
        assert_eq!(got.keys().collect::<Vec<_>>(), [kind], "{case}: {got:?}");
        assert_eq!(got[kind].0, severity, "{case}");
    }
    assert!(
        !ours.contains_key(&board.clean),
        "a healthy task has no row"
    );
    assert_eq!(ours.len(), board.cases.len());
}

#[test]
fn severity_and_task_filters_agree() {
    let b = Sandbox::new();
    let Some(board) = build_board(&b) else { return };
    for (severity, rows) in [("warning", 9), ("error", 4), ("critical", 1)] {
        let Some((theirs, ours)) = both(&b, &["--severity", severity]) else {
            return;
        };
        assert_eq!(ours, theirs, "--severity {severity}");
        assert_eq!(ours.len(), rows, "--severity {severity}: {ours:?}");
    }
    for (case, id) in &board.cases {
        let Some((theirs, ours)) = both(&b, &["--task", id]) else {
            return;
        };
        assert_eq!(ours, theirs, "--task {id} ({case})");
        assert_eq!(ours.len(), 1, "--task {id}");
    }
    // Both filters together: a warning-only task at `--severity error` has
    // no row in either.
    let stuck = board.id("stuck_in_blocked");
    let Some((theirs, ours)) = both(&b, &["--task", stuck, "--severity", "error"]) else {
        return;
    };
    assert_eq!(
        ours, theirs,
        "--task of a warning-only task at --severity error"
    );
    assert!(ours.is_empty(), "{ours:?}");
}

/// `--task` on a healthy task: both list the task with an empty
/// `diagnostics` list ("0 active diagnostic(s) across 1 task(s):");
/// a `--severity` filter prunes the empty row on both.
#[test]
fn task_filter_on_a_healthy_task() {
    let b = Sandbox::new();
    std::fs::write(b.path("config.yaml"), CONFIG).unwrap();
    let clean = b.create("fine", &[]);
    let theirs = run_json(&mut reference_cli!(
        b,
        ["diagnostics", "--task", &clean, "--json"]
    ));
    assert_eq!(
        theirs,
        json!([{"task_id": clean, "title": "fine", "status": "ready", "assignee": null,
                "diagnostics": []}])
    );
    assert_eq!(ours(&b, &["--task", &clean]), theirs);
    let text = run_ok(&mut reference_cli!(b, ["diagnostics", "--task", &clean]));
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(
        text.contains("0 active diagnostic(s) across 1 task(s)"),
        "{text}"
    );
    let mine = b.ok(&["diagnostics", "--task", &clean]);
    assert!(
        mine.contains("0 active diagnostic(s) across 1 task(s)"),
        "{mine}"
    );
    // With a severity filter the reference prunes the empty row too.
    let theirs = run_json(&mut reference_cli!(
        b,
        [
            "diagnostics",
            "--task",
            &clean,
            "--severity",
            "warning",
            "--json"
        ]
    ));
    assert_eq!(theirs, json!([]));
    assert_eq!(
        ours(&b, &["--task", &clean, "--severity", "warning"]),
        json!([])
    );
    // An unknown task: exit 1 and the same message from both.
    let missing = reference_cli!(b, ["diagnostics", "--task", "t_00000000"])
        .output()
        .unwrap();
    let mine = b.run(&["diagnostics", "--task", "t_00000000"]);
    assert_eq!(missing.status.code(), Some(1));
    assert_eq!(mine.status.code(), Some(1));
    let (theirs_err, ours_err) = (
        String::from_utf8_lossy(&missing.stderr),
        String::from_utf8_lossy(&mine.stderr),
    );
    assert!(
        theirs_err.contains("no such task: t_00000000"),
        "{theirs_err}"
    );
    assert!(ours_err.contains("no such task: t_00000000"), "{ours_err}");
}

/// A rule that differs on purpose: `triage_aux_unavailable` with a main
/// model configured (`model.provider` + `model.default`) and no auxiliary
/// slots. The reference counts the main model as the `provider: auto`
/// fallback of every auxiliary slot and stays quiet; `kanban` has no
/// provider registry to reach a named provider through, so only an
/// auxiliary slot (or `auxiliary.default`) naming an endpoint or a command
/// can move a triage card, and it still warns.
#[test]
fn triage_warning_with_only_a_main_model_differs_on_purpose() {
    let b = Sandbox::new();
    std::fs::write(
        b.path("config.yaml"),
        "model:\n  provider: openrouter\n  default: some/model\n",
    )
    .unwrap();
    let triage = b.create("rough idea", &["--triage"]);
    let theirs = run_json(&mut reference_cli!(b, ["diagnostics", "--json"]));
    assert_eq!(theirs, json!([]), "the reference relies on the main model");
    let mine = summarize(&ours(&b, &[]));
    assert_eq!(
        mine[&triage].keys().collect::<Vec<_>>(),
        ["triage_aux_unavailable"],
        "{mine:?}"
    );
}
