//! State-changing verbs: assign, reassign, reclaim, link, unlink, comment,
//! complete, edit, block, unblock, schedule, promote, archive, claim,
//! heartbeat.

use kanban_testkit::{Sandbox, event_kinds, stderr, stdout};
use serde_json::json;

#[test]
fn assign_and_reassign() {
    let b = Sandbox::new();
    let t = b.create("T", &[]);
    assert_eq!(
        b.ok(&["assign", &t, "Coder"]),
        format!("Assigned {t} to coder\n")
    );
    assert_eq!(b.task(&t)["task"]["assignee"], "coder");
    assert_eq!(
        b.ok(&["assign", &t, "none"]),
        format!("Assigned {t} to (unassigned)\n")
    );
    assert!(b.task(&t)["task"]["assignee"].is_null());
    b.refuses(&["assign", "t_00000000", "coder"], 1, "t_00000000");

    b.ok(&["assign", &t, "coder"]);
    b.ok(&["claim", &t]);
    b.refuses(&["assign", &t, "writer"], 1, "kanban: ");
    b.refuses(
        &["reassign", &t, "writer"],
        1,
        &format!("cannot reassign {t}"),
    );
    let out = b.ok(&["reassign", &t, "writer", "--reclaim", "--reason", "stuck"]);
    assert_eq!(out, format!("Reassigned {t} to writer (claim reclaimed)\n"));
    let v = b.task(&t);
    assert_eq!(v["task"]["status"], "ready");
    assert_eq!(v["task"]["assignee"], "writer");
    assert!(event_kinds(&v).contains(&"reclaimed".to_string()));
    b.refuses(
        &["reassign", "t_00000000", "x"],
        1,
        "cannot reassign t_00000000",
    );
}

#[test]
fn claim_heartbeat_reclaim() {
    let b = Sandbox::new();
    let t = b.create("T", &["--assignee", "coder"]);
    let out = b.ok(&["claim", &t, "--ttl", "60"]);
    let ws = b.path(&format!("kanban/workspaces/{t}"));
    assert_eq!(out, format!("Claimed {t}\nWorkspace: {}\n", ws.display()));
    assert!(ws.is_dir());
    assert_eq!(b.status(&t), "running");
    b.refuses(
        &["claim", &t],
        1,
        &format!("cannot claim {t}: status=running lock="),
    );
    b.refuses(&["claim", "t_00000000"], 1, "no such task");
    b.refuses(&["claim", &t, "--ttl", "0"], 2, "--ttl");

    assert_eq!(
        b.ok(&["heartbeat", &t, "--note", "50%"]),
        format!("Heartbeat recorded for {t}\n")
    );
    let v = b.task(&t);
    let hb = v["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["kind"] == "heartbeat")
        .unwrap();
    assert_eq!(hb["payload"], json!({"note": "50%"}));
    // A worker presenting another run id is fenced out.
    let fenced = b.run_env(
        &["heartbeat", &t],
        &[
            ("HERMES_KANBAN_TASK", &t),
            ("HERMES_KANBAN_RUN_ID", "999999"),
        ],
    );
    assert_eq!(fenced.status.code(), Some(1), "{}", stderr(&fenced));
    assert!(stderr(&fenced).contains(&format!("cannot heartbeat {t}")));

    assert_eq!(
        b.ok(&["reclaim", &t, "--reason", "manual"]),
        format!("Reclaimed {t}\n")
    );
    assert_eq!(b.status(&t), "ready");
    b.refuses(
        &["reclaim", &t],
        1,
        &format!("cannot reclaim {t} (not running or unknown id)"),
    );
    b.refuses(
        &["heartbeat", &t],
        1,
        &format!("cannot heartbeat {t} (not running?)"),
    );
}

#[test]
fn link_unlink_and_cycles() {
    let b = Sandbox::new();
    let a = b.create("A", &[]);
    let c = b.create("C", &[]);
    assert_eq!(b.ok(&["link", &a, &c]), format!("Linked {a} -> {c}\n"));
    assert_eq!(
        b.status(&c),
        "todo",
        "ready child demoted behind an open parent"
    );
    b.refuses(&["link", &c, &a], 1, "cycle");
    b.refuses(&["link", &a, &a], 1, "itself");
    b.refuses(&["link", &a, "t_00000000"], 1, "t_00000000");
    assert_eq!(b.ok(&["unlink", &a, &c]), format!("Unlinked {a} -> {c}\n"));
    b.refuses(&["unlink", &a, &c], 1, &format!("No such link: {a} -> {c}"));
    b.ok(&["list"]);
    assert_eq!(b.status(&c), "ready");
}

#[test]
fn comment_with_author_and_trim() {
    let b = Sandbox::new();
    let t = b.create("T", &[]);
    assert_eq!(
        b.ok(&["comment", &t, "hello", "world"]),
        format!("Comment added to {t}\n")
    );
    let long = "x".repeat(200);
    b.ok(&["comment", &t, &long, "--max-len", "80", "--author", "bot"]);
    let v = b.task(&t);
    assert_eq!(v["comments"][0]["author"], "user");
    assert_eq!(v["comments"][0]["body"], "hello world");
    let trimmed = v["comments"][1]["body"].as_str().unwrap();
    assert!(
        trimmed.ends_with("[trimmed to 80 chars by --max-len]"),
        "{trimmed}"
    );
    assert!(trimmed.chars().count() <= 80);
    b.refuses(
        &["comment", &t, "x", "--max-len", "0"],
        2,
        "--max-len must be positive",
    );
    b.refuses(&["comment", "t_00000000", "hi"], 1, "t_00000000");
    b.refuses(&["comment", &t], 2, "required");
}

#[test]
fn complete_single_and_bulk() {
    let b = Sandbox::new();
    let t1 = b.create("One", &[]);
    let t2 = b.create("Two", &[]);
    let t3 = b.create("Three", &[]);
    let out = b.ok(&[
        "complete",
        &t1,
        "--summary",
        "done well",
        "--metadata",
        r#"{"tests": 3}"#,
    ]);
    assert_eq!(out, format!("Completed {t1}\n"));
    let v = b.task(&t1);
    assert_eq!(v["task"]["status"], "done");
    assert_eq!(v["latest_summary"], "done well");
    assert_eq!(
        v["runs"].as_array().unwrap().last().unwrap()["metadata"],
        json!({"tests": 3})
    );
    assert_eq!(
        b.ok(&["complete", &t2, &t3, "--result", "ok"]),
        format!("Completed {t2}\nCompleted {t3}\n")
    );
    assert_eq!(b.task(&t2)["task"]["result"], "ok");

    // One bad id among good ones: the good one completes, exit 1.
    let t4 = b.create("Four", &[]);
    let out = b.run(&["complete", &t4, "t_00000000"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(stdout(&out), format!("Completed {t4}\n"));
    assert!(stderr(&out).contains("cannot complete t_00000000 (unknown id or terminal state)"));
}

#[test]
fn complete_refusals() {
    let b = Sandbox::new();
    let t = b.create("T", &[]);
    let u = b.create("U", &[]);
    b.refuses(
        &["complete", &t, &u, "--summary", "s"],
        2,
        "can't be used with multiple ids",
    );
    b.refuses(
        &["complete", &t, &u, "--metadata", "{}"],
        2,
        "can't be used with multiple ids",
    );
    b.refuses(
        &["complete", &t, "--metadata", "[1, 2]"],
        2,
        "--metadata: must be a JSON object",
    );
    b.refuses(
        &["complete", &t, "--metadata", "{oops"],
        2,
        "--metadata: invalid JSON",
    );
    b.refuses(&["complete", "t_00000000"], 1, "cannot complete t_00000000");
    let tri = b.create("Idea", &["--triage"]);
    b.refuses(&["complete", &tri], 1, &format!("cannot complete {tri}"));
    b.refuses(&["complete"], 2, "required");
}

#[test]
fn edit_fields() {
    let b = Sandbox::new();
    let t = b.create("Old", &[]);
    assert_eq!(
        b.ok(&[
            "edit",
            &t,
            "--title",
            "New",
            "--body",
            "B",
            "--priority",
            "4"
        ]),
        format!("Edited {t}\n")
    );
    let v = b.task(&t)["task"].clone();
    assert_eq!(
        (
            v["title"].as_str(),
            v["body"].as_str(),
            v["priority"].as_i64()
        ),
        (Some("New"), Some("B"), Some(4))
    );
    b.ok(&["complete", &t]);
    b.ok(&[
        "edit",
        &t,
        "--result",
        "backfilled",
        "--metadata",
        r#"{"k": 1}"#,
    ]);
    assert_eq!(b.task(&t)["task"]["result"], "backfilled");
    b.refuses(&["edit", &t], 2, "nothing to edit");
    b.refuses(
        &["edit", &t, "--title", "  "],
        2,
        "--title must not be empty",
    );
    b.refuses(&["edit", &t, "--metadata", "3"], 2, "must be a JSON object");
    b.refuses(&["edit", "t_00000000", "--title", "x"], 1, "t_00000000");
}

#[test]
fn block_lands_and_reports() {
    let b = Sandbox::new();
    let t = b.create("T", &["--assignee", "coder"]);
    assert_eq!(
        b.ok(&["block", &t, "need", "keys", "--kind", "needs_input"]),
        format!("Blocked {t}: need keys\n")
    );
    let v = b.task(&t);
    assert_eq!(v["task"]["status"], "blocked");
    assert_eq!(v["comments"][0]["body"], "BLOCKED: need keys");
    b.ok(&["list"]);
    assert_eq!(b.status(&t), "blocked", "a human block sticks");
    assert_eq!(
        b.ok(&["unblock", &t, "--reason", "keys added"]),
        format!("Unblocked {t}: keys added\n")
    );
    assert_eq!(b.task(&t)["comments"][1]["body"], "UNBLOCK: keys added");
    // Same kind again: the unblock-loop breaker routes to triage.
    let out = b.ok(&["block", &t, "still", "--kind", "needs_input"]);
    assert_eq!(
        out,
        format!("{t} → triage (unblock loop detected — needs a human decision): still\n")
    );

    let d = b.create("D", &[]);
    assert_eq!(
        b.ok(&["block", &d, "--kind", "dependency"]),
        format!("{d} → todo (dependency wait)\n")
    );
    let e1 = b.create("E1", &[]);
    let e2 = b.create("E2", &[]);
    assert_eq!(
        b.ok(&["block", &e1, "--ids", &e2]),
        format!("Blocked {e1}\nBlocked {e2}\n")
    );
}

#[test]
fn block_refusals() {
    let b = Sandbox::new();
    let t = b.create("T", &[]);
    b.refuses(
        &["block", "t_00000000", "why"],
        1,
        "cannot block t_00000000",
    );
    b.refuses(&["block", &t, "--kind", "bored"], 2, "invalid value");
    b.ok(&["complete", &t]);
    b.refuses(&["block", &t, "late"], 1, &format!("cannot block {t}"));
}

#[test]
fn unblock_and_schedule() {
    let b = Sandbox::new();
    let t = b.create("T", &[]);
    b.refuses(
        &["unblock", &t],
        1,
        &format!("cannot unblock {t} (not blocked/scheduled?)"),
    );
    b.refuses(&["unblock", "t_00000000"], 1, "cannot unblock t_00000000");
    assert_eq!(
        b.ok(&["schedule", &t, "next", "week"]),
        format!("Scheduled {t}: next week\n")
    );
    let v = b.task(&t);
    assert_eq!(v["task"]["status"], "scheduled");
    assert_eq!(v["comments"][0]["body"], "SCHEDULED: next week");
    assert_eq!(b.ok(&["unblock", &t]), format!("Unblocked {t}\n"));
    assert_eq!(b.status(&t), "ready");
    b.refuses(&["schedule", "t_00000000"], 1, "cannot schedule t_00000000");
    b.refuses(&["unblock"], 2, "required");
}

#[test]
fn promote_paths_and_json() {
    let b = Sandbox::new();
    let p = b.create("P", &[]);
    let c = b.create("C", &["--parent", &p]);
    let v = b.run(&["promote", &c, "--json"]);
    assert_eq!(v.status.code(), Some(1));
    let obj: serde_json::Value = serde_json::from_slice(&v.stdout).unwrap();
    assert_eq!(obj["task_id"], c.as_str());
    assert_eq!(obj["promoted"], false);
    assert!(obj["error"].as_str().unwrap().contains(&p), "{obj}");
    let mut keys: Vec<&str> = obj
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort();
    assert_eq!(
        keys,
        [
            "dry_run", "error", "forced", "promoted", "reason", "task_id"
        ]
    );

    assert_eq!(
        b.ok(&["promote", &c, "--force", "--dry-run"]),
        format!("Would promote {c} -> ready (dry)\n")
    );
    assert_eq!(b.status(&c), "todo", "dry run writes nothing");
    assert_eq!(
        b.ok(&["promote", &c, "ops", "call", "--force"]),
        format!("Promoted {c} -> ready: ops call\n")
    );
    assert_eq!(b.status(&c), "ready");
    b.refuses(&["promote", &c], 1, &format!("cannot promote {c}"));
    b.refuses(&["promote", "t_00000000"], 1, "cannot promote t_00000000");
    let x = b.create("X", &["--parent", &p]);
    let y = b.create("Y", &["--parent", &p]);
    let list = b.run(&["promote", &x, "--ids", &y, "--json", "--dry-run", "--force"]);
    let arr: serde_json::Value = serde_json::from_slice(&list.stdout).unwrap();
    assert_eq!(arr.as_array().unwrap().len(), 2);
    assert_eq!(arr[1]["dry_run"], true);
}

#[test]
fn archive_and_delete() {
    let b = Sandbox::new();
    let t = b.create("T", &[]);
    let u = b.create("U", &[]);
    b.refuses(
        &["archive", "--rm", &t],
        1,
        &format!("cannot delete {t} (must already be archived)"),
    );
    assert_eq!(
        b.ok(&["archive", &t, &u]),
        format!("Archived {t}\nArchived {u}\n")
    );
    assert_eq!(b.status(&t), "archived");
    b.refuses(&["archive", &t, "--rm", &u], 2, "choose either");
    b.refuses(&["archive"], 2, "at least one task id");
    b.refuses(&["archive", "t_00000000"], 1, "cannot archive t_00000000");
    assert_eq!(b.ok(&["archive", "--rm", &t]), format!("Deleted {t}\n"));
    b.refuses(&["show", &t], 1, "no such task");
}

#[test]
fn worker_mode_fences_on_the_run_id() {
    let b = Sandbox::new();
    let t = b.create("T", &["--assignee", "coder"]);
    b.ok(&["claim", &t]);
    let (run_id, lock) = b.worker_ids(&t);
    let env = [
        ("HERMES_KANBAN_TASK", t.as_str()),
        ("HERMES_KANBAN_RUN_ID", run_id.as_str()),
        ("HERMES_KANBAN_CLAIM_LOCK", lock.as_str()),
    ];
    let hb = b.run_env(&["heartbeat", &t, "--note", "alive"], &env);
    assert!(hb.status.success(), "{}", stderr(&hb));
    // The task is reclaimed and claimed again: the old worker's run id is stale.
    b.ok(&["reclaim", &t]);
    b.ok(&["claim", &t]);
    let before = b.snapshot();
    let late = b.run_env(&["complete", &t, "--summary", "late"], &env);
    assert_eq!(late.status.code(), Some(1), "{}", stdout(&late));
    assert!(
        stderr(&late).contains(&format!("cannot complete {t}")),
        "{}",
        stderr(&late)
    );
    let late_block = b.run_env(&["block", &t, "stuck"], &env);
    assert_eq!(late_block.status.code(), Some(1));
    assert_eq!(b.snapshot(), before, "a stale worker changed the board");
    // The current attempt's worker may complete.
    let (run_id, lock) = b.worker_ids(&t);
    let env = [
        ("HERMES_KANBAN_TASK", t.as_str()),
        ("HERMES_KANBAN_RUN_ID", run_id.as_str()),
        ("HERMES_KANBAN_CLAIM_LOCK", lock.as_str()),
    ];
    let done = b.run_env(&["complete", &t, "--summary", "on time"], &env);
    assert!(done.status.success(), "{}", stderr(&done));
    assert_eq!(b.status(&t), "done");
}
