//! Backend-internal checks: schema parity with the reference, legacy
//! migration, board states only the reference or an older version writes
//! (seeded with raw SQL: no trait call produces them), interop with the
//! Python implementation, query plans and recompute cost. Behaviour,
//! dispatcher operations included, is tested once for every backend by
//! the conformance suite (`kanban-store-conformance`, run by
//! `tests/sqlite.rs`).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, OnceLock};

use kanban_core::Status;
use rusqlite::Connection;
use serde_json::Value;

use super::*;
use crate::clock::ManualClock;
use crate::{ClaimOutcome, ClaimRequest, CompleteRequest, NewTask, Store, TaskQuery};

fn store_at(path: &Path) -> SqliteStore {
    SqliteStore::open(
        path,
        OpenOptions::create(),
        Arc::new(ManualClock::new(1_700_000_000)),
    )
    .unwrap()
}

fn task(title: &str) -> NewTask {
    NewTask {
        title: title.into(),
        assignee: Some("coder".into()),
        ..Default::default()
    }
}

/// A task and a child of it (todo while the parent is not done).
fn parent_and_child(s: &SqliteStore) -> (kanban_core::Task, kanban_core::Task) {
    let parent = s.create_task(&task("parent")).unwrap().task;
    let child = s
        .create_task(&NewTask {
            parents: vec![parent.id.clone()],
            ..task("child")
        })
        .unwrap()
        .task;
    (parent, child)
}

fn sql(s: &SqliteStore, q: &str) {
    s.read(|c| Ok(c.execute_batch(q)?)).unwrap();
}

fn truthy(name: &str) -> bool {
    matches!(
        std::env::var(name).as_deref().map(str::trim),
        Ok("1" | "true" | "yes")
    )
}

/// The unpacked reference wheel (hermes-agent 0.19.0), fetched on first
/// use by `scripts/fetch_reference.py` as the other interop tests do.
/// `None` (a loud skip) only with `KANBAN_SKIP_REFERENCE=1` and without
/// `KANBAN_REQUIRE_REFERENCE=1`; otherwise an unavailable reference fails.
fn reference_wheel() -> Option<PathBuf> {
    static FETCHED: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    let fetched = FETCHED.get_or_init(|| {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/fetch_reference.py");
        let out = Command::new("python3")
            .arg(&script)
            .stdin(std::process::Stdio::null())
            .output()
            .map_err(|e| format!("cannot run python3 {}: {e}", script.display()))?;
        if !out.status.success() {
            return Err(String::from_utf8_lossy(&out.stderr).into_owned());
        }
        let dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        if dir.join("hermes_cli/kanban_db.py").exists() {
            Ok(dir)
        } else {
            Err(format!("{} has no hermes_cli/kanban_db.py", dir.display()))
        }
    });
    match fetched {
        Ok(dir) => Some(dir.clone()),
        Err(why) if truthy("KANBAN_SKIP_REFERENCE") && !truthy("KANBAN_REQUIRE_REFERENCE") => {
            eprintln!(
                "SKIPPED: the Python reference is unavailable (KANBAN_SKIP_REFERENCE=1): {why}"
            );
            None
        }
        Err(why) => panic!(
            "this test needs the Python reference hermes-agent==0.19.0 \
             (python3 scripts/fetch_reference.py): {why}\n\
             Set KANBAN_SKIP_REFERENCE=1 to skip it offline."
        ),
    }
}

/// Run `code` in the reference with `HERMES_HOME=home`; returns stdout JSON.
fn python(wheel: &Path, home: &Path, code: &str) -> Value {
    let out = Command::new("python3")
        .arg("-c")
        .arg(code)
        .env("PYTHONPATH", wheel)
        .env("HERMES_HOME", home)
        .env_remove("HERMES_KANBAN_HOME")
        .env_remove("HERMES_KANBAN_DB")
        .env_remove("HERMES_KANBAN_BOARD")
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "python failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(stdout.lines().last().unwrap_or("null")).expect("json from python")
}

/// (table or index) → its shape: columns with type/notnull/default/pk, or
/// indexed columns with uniqueness. Our own `kanban_rs_*` objects excluded.
fn schema_shape(conn: &Connection) -> Vec<String> {
    let mut out = Vec::new();
    let mut st = conn
        .prepare(
            "SELECT type, name, tbl_name FROM sqlite_master WHERE name NOT LIKE 'sqlite_%' \
             AND name NOT LIKE 'kanban_rs_%' ORDER BY type, name",
        )
        .unwrap();
    let objs: Vec<(String, String, String)> = st
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .map(|r| r.unwrap())
        .collect();
    for (ty, name, tbl) in objs {
        if ty == "table" {
            let mut cols = conn.prepare(&format!("PRAGMA table_info({name})")).unwrap();
            let cols: Vec<String> = cols
                .query_map([], |r| {
                    Ok(format!(
                        "{}:{}:{}:{:?}:{}",
                        r.get::<_, String>(1)?,
                        r.get::<_, String>(2)?,
                        r.get::<_, i64>(3)?,
                        r.get::<_, Option<String>>(4)?,
                        r.get::<_, i64>(5)?
                    ))
                })
                .unwrap()
                .map(|r| r.unwrap())
                .collect();
            out.push(format!("table {name} [{}]", cols.join(", ")));
        } else if ty == "index" {
            let mut cols = conn.prepare(&format!("PRAGMA index_info({name})")).unwrap();
            let cols: Vec<String> = cols
                .query_map([], |r| r.get::<_, String>(2))
                .unwrap()
                .map(|r| r.unwrap())
                .collect();
            out.push(format!("index {name} on {tbl}({})", cols.join(", ")));
        } else {
            out.push(format!("{ty} {name}"));
        }
    }
    out
}

#[test]
fn schema_matches_the_reference() {
    let Some(wheel) = reference_wheel() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let py_home = dir.path().join("py");
    std::fs::create_dir_all(&py_home).unwrap();
    python(
        &wheel,
        &py_home,
        "import hermes_cli.kanban_db as kb, json; kb.init_db(); print(json.dumps(1))",
    );
    let ours = store_at(&dir.path().join("rs/kanban.db"));
    let theirs = Connection::open(py_home.join("kanban.db")).unwrap();
    let ours_shape = ours.read(|c| Ok(schema_shape(c))).unwrap();
    assert_eq!(ours_shape, schema_shape(&theirs));
    assert!(
        ours_shape
            .iter()
            .any(|s| s.starts_with("index idx_events_run"))
    );
    assert!(
        ours_shape
            .iter()
            .any(|s| s.starts_with("index idx_tasks_session_id"))
    );
}

/// A board we created is read, recomputed and extended by the reference,
/// and its changes read back by us. The reference's own recompute keeps
/// our `initial_blocked` task blocked.
#[test]
fn python_reference_interop() {
    let Some(wheel) = reference_wheel() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("kanban.db");
    let s = store_at(&db);
    let parked = s
        .create_task(&NewTask {
            initial_blocked: true,
            ..task("parked")
        })
        .unwrap()
        .task;
    let (parent, child) = parent_and_child(&s);
    let run = match s
        .claim_task(&ClaimRequest {
            task_id: parent.id.clone(),
            claim_lock: "h:1".into(),
            ttl_seconds: 900,
            review: false,
            ceilings: Default::default(),
        })
        .unwrap()
    {
        ClaimOutcome::Claimed { run_id, .. } => run_id,
        other => panic!("{other:?}"),
    };
    s.complete_task(&CompleteRequest {
        task_id: parent.id.clone(),
        summary: Some("done".into()),
        expected_run_id: Some(run),
        ..Default::default()
    })
    .unwrap();
    // Make the child look stale-todo so the reference has something to do.
    sql(
        &s,
        &format!("UPDATE tasks SET status = 'todo' WHERE id = '{}'", child.id),
    );
    let code = format!(
        r#"
import json, hermes_cli.kanban_db as kb
kb.init_db()
conn = kb.connect()
before = {{t.id: t.status for t in kb.list_tasks(conn)}}
promoted = kb.recompute_ready(conn)
after = {{t.id: t.status for t in kb.list_tasks(conn)}}
new = kb.create_task(conn, title="from python", assignee="Coder", parents=["{parent}"])
runs = [(r.outcome, r.summary) for r in kb.list_runs(conn, "{parent}")]
print(json.dumps({{"before": before, "promoted": promoted, "after": after, "new": new, "runs": runs}}))
"#,
        parent = parent.id
    );
    let out = python(&wheel, dir.path(), &code);
    assert_eq!(out["before"].as_object().unwrap().len(), 3);
    assert_eq!(out["promoted"], 1, "{out}");
    assert_eq!(
        out["after"][&parked.id], "blocked",
        "reference recompute keeps initial_blocked blocked"
    );
    assert_eq!(out["after"][&child.id], "ready");
    assert_eq!(out["runs"], serde_json::json!([["completed", "done"]]));

    let again = store_at(&db);
    let new_id = out["new"].as_str().unwrap();
    let t = again.get_task(new_id).unwrap().unwrap();
    assert_eq!(
        (t.status, t.assignee.as_deref()),
        (Status::Ready, Some("coder"))
    );
    assert_eq!(again.list_tasks(&TaskQuery::default()).unwrap().len(), 4);
    assert_eq!(again.recompute_ready(None).unwrap(), 0);
}

/// A task blocked by the breaker of an older version (no `blocked` or
/// `gave_up` event; ours writes `gave_up`, which holds until an unblock)
/// recovers once it is under its failure limit.
#[test]
fn breaker_blocked_tasks_follow_the_failure_limit() {
    let dir = tempfile::tempdir().unwrap();
    let s = store_at(&dir.path().join("kanban.db"));
    let ids: Vec<String> = (0..3)
        .map(|i| s.create_task(&task(&format!("b{i}"))).unwrap().task.id)
        .collect();
    // Blocked by the circuit breaker: no `blocked` event, counter set.
    sql(
        &s,
        &format!(
            "UPDATE tasks SET status = 'blocked', consecutive_failures = 2 WHERE id IN ('{}', '{}');
             UPDATE tasks SET status = 'blocked', consecutive_failures = 2, max_retries = 5 WHERE id = '{}';",
            ids[0], ids[1], ids[2]
        ),
    );
    // Default limit 2: the task override (5) lets only the third recover.
    assert_eq!(s.recompute_ready(None).unwrap(), 1);
    assert_eq!(s.get_task(&ids[2]).unwrap().unwrap().status, Status::Ready);
    assert_eq!(
        s.get_task(&ids[2]).unwrap().unwrap().consecutive_failures,
        2,
        "counter preserved"
    );
    // A raised dispatcher limit frees the others.
    assert_eq!(s.recompute_ready(Some(3)).unwrap(), 2);
}

/// A child left in todo after its parent completed, with no event of its
/// own (written by another implementation: this store promotes inline), is
/// found by a `ChangedSince` re-gate through its parent's `completed`
/// event.
#[test]
fn regate_reaches_children_of_changed_parents() {
    use crate::dispatch_ops::{DispatchStore, Regate, RegateScope};
    let dir = tempfile::tempdir().unwrap();
    let s = store_at(&dir.path().join("kanban.db"));
    let parent = s.create_task(&task("p")).unwrap().task.id;
    let child = s
        .create_task(&NewTask {
            parents: vec![parent.clone()],
            ..task("c")
        })
        .unwrap()
        .task
        .id;
    let all = Regate {
        scope: RegateScope::All,
        failure_limit: None,
        dry_run: false,
    };
    let first = s.regate(&all).unwrap();
    s.complete_task(&CompleteRequest {
        task_id: parent.clone(),
        ..Default::default()
    })
    .unwrap();
    sql(
        &s,
        &format!("UPDATE tasks SET status = 'todo' WHERE id = '{child}'"),
    );
    let scoped = Regate {
        scope: RegateScope::ChangedSince(first.cursor),
        ..all
    };
    assert_eq!(s.regate(&scoped).unwrap().promoted, 1);
    assert_eq!(s.get_task(&child).unwrap().unwrap().status, Status::Ready);
}

/// A task the reference parked at creation has a `created` event with
/// status `blocked` and no `blocked` event: it stays blocked (issue 9 item
/// 10) until an explicit unblock; a dependency-blocked task without such a
/// payload still recovers, and a malformed payload breaks nothing.
#[test]
fn reference_parked_tasks_stay_blocked() {
    let dir = tempfile::tempdir().unwrap();
    let s = store_at(&dir.path().join("kanban.db"));
    let parked = s.create_task(&task("parked")).unwrap().task.id;
    let plain = s.create_task(&task("plain")).unwrap().task.id;
    let odd = s.create_task(&task("odd payload")).unwrap().task.id;
    sql(
        &s,
        &format!(
            "UPDATE tasks SET status = 'blocked' WHERE id IN ('{parked}', '{plain}', '{odd}');
             UPDATE task_events SET payload = json_set(payload, '$.status', 'blocked')
               WHERE task_id = '{parked}' AND kind = 'created';
             UPDATE task_events SET payload = 'not json' WHERE task_id = '{odd}';"
        ),
    );
    assert_eq!(s.recompute_ready(None).unwrap(), 2);
    assert_eq!(
        s.get_task(&parked).unwrap().unwrap().status,
        Status::Blocked
    );
    assert_eq!(s.get_task(&plain).unwrap().unwrap().status, Status::Ready);
    assert_eq!(s.get_task(&odd).unwrap().unwrap().status, Status::Ready);
}

#[test]
fn legacy_board_is_migrated_once() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("kanban.db");
    {
        let c = Connection::open(&db).unwrap();
        c.execute_batch(
            "CREATE TABLE tasks (id TEXT PRIMARY KEY, title TEXT NOT NULL, body TEXT, assignee TEXT,
               status TEXT NOT NULL, priority INTEGER DEFAULT 0, created_by TEXT,
               created_at INTEGER NOT NULL, started_at INTEGER, completed_at INTEGER,
               workspace_kind TEXT NOT NULL DEFAULT 'scratch', workspace_path TEXT,
               claim_lock TEXT, claim_expires INTEGER, spawn_failures INTEGER, last_spawn_error TEXT);
             CREATE TABLE task_events (id TEXT PRIMARY KEY, task_id TEXT NOT NULL, kind TEXT NOT NULL,
               payload TEXT, created_at INTEGER NOT NULL);
             CREATE TABLE task_runs (id INTEGER PRIMARY KEY AUTOINCREMENT, task_id TEXT NOT NULL,
               profile TEXT, step_key TEXT, status TEXT NOT NULL, claim_lock TEXT,
               claim_expires INTEGER, worker_pid INTEGER, max_runtime_seconds INTEGER,
               last_heartbeat_at INTEGER, started_at INTEGER NOT NULL, ended_at INTEGER,
               outcome TEXT, summary TEXT, metadata TEXT, error TEXT);
             INSERT INTO tasks (id, title, status, created_at, spawn_failures, last_spawn_error, claim_lock, started_at)
               VALUES ('t_0000000a', 'old', 'running', 100, 3, 'boom', 'h:1', 150);
             INSERT INTO task_events VALUES ('e1', 't_0000000a', 'ready', NULL, 100);",
        )
        .unwrap();
    }
    let s = store_at(&db);
    let t = s.get_task("t_0000000a").unwrap().unwrap();
    assert_eq!(
        (t.consecutive_failures, t.last_failure_error.as_deref()),
        (3, Some("boom"))
    );
    let run = t
        .current_run_id
        .expect("running task got a back-filled run");
    let runs = s.runs(&t.id).unwrap();
    assert_eq!(
        (runs[0].id, runs[0].status.as_str(), runs[0].started_at),
        (run, "running", 150)
    );
    let evs = s.events(&Default::default()).unwrap();
    assert_eq!(
        (evs[0].id, evs[0].kind.as_str()),
        (1, "promoted"),
        "TEXT ids rebuilt, kind renamed"
    );
    let (version, indexes): (String, i64) = s
        .read(|c| {
            Ok((
                c.query_row(schema::META_VERSION_QUERY, [], |r| r.get(0))?,
                c.query_row(
                    "SELECT COUNT(*) FROM sqlite_master WHERE type = 'index' AND name IN \
                     ('idx_tasks_tenant', 'idx_tasks_idempotency', 'idx_tasks_session_id', 'idx_events_run')",
                    [],
                    |r| r.get(0),
                )?,
            ))
        })
        .unwrap();
    assert_eq!((version, indexes), (schema::SCHEMA_VERSION.to_string(), 4));
    // Idempotent: a second pass changes nothing.
    s.raw(|c| open::migrate(c, 0)).unwrap();
    assert_eq!(s.runs(&t.id).unwrap().len(), 1);
}

fn seed_waiting_board(path: &PathBuf, n: usize) {
    let c = Connection::open(path).unwrap();
    c.execute_batch("BEGIN").unwrap();
    {
        let mut task = c
            .prepare("INSERT INTO tasks (id, title, status, created_at, assignee) VALUES (?1, ?2, ?3, 1, 'coder')")
            .unwrap();
        let mut link = c
            .prepare("INSERT INTO task_links (parent_id, child_id) VALUES (?1, ?2)")
            .unwrap();
        for i in 0..n {
            let (p, ch) = (format!("t_p{i:07x}"), format!("t_c{i:07x}"));
            task.execute(rusqlite::params![p, "parent", "blocked"])
                .unwrap();
            task.execute(rusqlite::params![ch, "child", "todo"])
                .unwrap();
            link.execute(rusqlite::params![p, ch]).unwrap();
        }
    }
    c.execute_batch("COMMIT").unwrap();
}

/// SQLite's plan for `sql` with `params`, its steps joined by " | ".
fn query_plan(s: &SqliteStore, sql: &str, params: impl rusqlite::Params) -> String {
    s.read(|c| {
        let mut st = c.prepare(&format!("EXPLAIN QUERY PLAN {sql}"))?;
        let rows = st.query_map(params, |r| r.get::<_, String>(3))?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    })
    .unwrap()
    .join(" | ")
}

/// 10k todo children waiting on 10k blocked parents: one set-based pass,
/// one statement driven by the status index (no scan of the whole
/// table, no statement per task); its cost is in `dispatch_bench`.
#[test]
fn recompute_is_set_based() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("kanban.db");
    drop(store_at(&db));
    seed_waiting_board(&db, 10_000);
    let s = store_at(&db);
    s.recompute_ready(None).unwrap();
    assert_eq!(s.recompute_ready(None).unwrap(), 0);
    let plan = query_plan(&s, recompute::RECOMPUTE_SQL, []);
    assert!(
        plan.contains("SEARCH t USING INDEX idx_tasks_status"),
        "{plan}"
    );
    assert!(!plan.contains("SCAN"), "{plan}");
    assert_eq!(s.list_tasks(&TaskQuery::default()).unwrap().len(), 20_000);
}

/// The default `kanban list` query is an index-only scan: no sort, no
/// table reads.
#[test]
fn list_lines_use_the_covering_index() {
    let dir = tempfile::tempdir().unwrap();
    let s = store_at(&dir.path().join("kanban.db"));
    let (sql, _) = tasks::list_query_for_test(&TaskQuery::default());
    let plan = query_plan(&s, &sql, []);
    assert!(
        plan.contains("COVERING INDEX kanban_rs_idx_tasks_list"),
        "{plan}"
    );
    assert!(!plan.contains("TEMP B-TREE"), "{plan}");
}

/// The "recent work" of a spawned worker's context reads a few index
/// entries, not every run of the board.
#[test]
fn recent_work_walks_its_index_without_a_sort() {
    let dir = tempfile::tempdir().unwrap();
    let s = store_at(&dir.path().join("kanban.db"));
    let params = rusqlite::params!["p", "t", 5];
    let plan = query_plan(&s, runs::RECENT_COMPLETED_RUNS_SQL, params);
    assert!(
        plan.contains("SEARCH r USING INDEX kanban_rs_idx_runs_recent"),
        "{plan}"
    );
    assert!(
        !plan.contains("SCAN") && !plan.contains("TEMP B-TREE"),
        "{plan}"
    );
}

/// A pass finds the tasks whose start failed from their own index, not by
/// reading every ready task.
#[test]
fn failed_starts_are_found_without_reading_every_ready_task() {
    let dir = tempfile::tempdir().unwrap();
    let s = store_at(&dir.path().join("kanban.db"));
    let plan = query_plan(&s, &dispatch::recovery::PENDING_SPAWN_RETRIES_SQL, []);
    assert!(
        plan.contains("SEARCH t USING INDEX kanban_rs_idx_tasks_failing"),
        "{plan}"
    );
    assert!(!plan.contains("SCAN"), "{plan}");
}

/// A cached statement with `LIMIT ?` keeps its compiled program from one
/// use to the next (SQLite would compile it again at every new binding).
#[test]
fn a_cached_statement_with_a_bound_limit_is_not_compiled_again() {
    let dir = tempfile::tempdir().unwrap();
    let s = store_at(&dir.path().join("kanban.db"));
    let sql = "SELECT id FROM tasks ORDER BY created_at LIMIT ?1";
    let recompiled = s
        .read(|c| {
            for limit in [1, 5, 2, 5] {
                let mut st = c.prepare_cached(sql)?;
                let _ = st.query_map([limit], |r| r.get::<_, String>(0))?.count();
            }
            let st = c.prepare_cached(sql)?;
            Ok(st.get_status(rusqlite::StatementStatus::RePrepare))
        })
        .unwrap();
    assert_eq!(recompiled, 0);
}

#[test]
fn store_is_send_and_sync() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<SqliteStore>();
}

#[test]
fn a_panicking_transaction_does_not_poison_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let s = store_at(&dir.path().join("kanban.db"));
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let _ = s.write(|tx| -> txn::DbResult<()> {
            tx.conn.execute_batch("UPDATE tasks SET title = 'x'")?;
            panic!("boom");
        });
    }));
    assert!(r.is_err());
    assert!(s.create_task(&task("after the panic")).is_ok());
}

/// A sweep that finds nothing promotable (the usual `kanban list`) reads
/// only: it goes on while another process holds the write lock, where a
/// write transaction would wait and fail busy. What is promotable is
/// still promoted, under the lock.
#[test]
fn a_recompute_with_nothing_to_promote_takes_no_write_lock() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kanban.db");
    let opts = OpenOptions {
        create: true,
        busy_timeout_ms: Some(200),
    };
    let s = SqliteStore::open(&path, opts, Arc::new(ManualClock::new(1_700_000_000))).unwrap();
    let (parent, child) = parent_and_child(&s);
    assert_eq!(child.status, Status::Todo);

    let writer = Connection::open(&path).unwrap();
    writer.execute_batch("BEGIN IMMEDIATE").unwrap();
    assert_eq!(s.recompute_ready(None).unwrap(), 0, "read-only sweep");
    // The parent finishes inside the other writer's transaction: once it
    // commits, the child is promotable, and promoting needs the lock.
    writer
        .execute(
            "UPDATE tasks SET status = 'done' WHERE id = ?1",
            [&parent.id],
        )
        .unwrap();
    writer.execute_batch("COMMIT").unwrap();
    writer.execute_batch("BEGIN IMMEDIATE").unwrap();
    let busy = s.recompute_ready(None).unwrap_err();
    assert!(matches!(busy, crate::StoreError::Busy(_)), "{busy:?}");
    writer.execute_batch("ROLLBACK").unwrap();
    assert_eq!(s.recompute_ready(None).unwrap(), 1);
    assert_eq!(
        s.get_task(&child.id).unwrap().unwrap().status,
        Status::Ready
    );
}
