//! `kanban boards migrate` (issue 11, "moving boards"): a Hermes SQLite
//! board copied to PostgreSQL reads the same through every verb, new ids
//! continue after the copied ones, and copied back to a SQLite file it is
//! the original row for row, readable by the Python reference. A non-empty
//! destination is refused unchanged; a bad `--to` is a usage error.
//! Runs against the test kit's real PostgreSQL server.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use kanban_testkit::{Sandbox, stderr, stdout};
use rusqlite::Connection;
use serde_json::{Value, json};

/// A password the server never asks for: it must never be printed.
const SECRET: &str = "mig-s3cret";

/// A fresh database as a URL carrying [`SECRET`]; `None` only when
/// PostgreSQL is missing and `KANBAN_SKIP_POSTGRES=1` asked to skip.
fn database_url() -> Option<String> {
    let pg = kanban_testkit::postgres::cluster()?;
    let url = pg.url(&pg.unique_database("kb_migrate"));
    let (scheme, rest) = url.split_once("://").expect("URL");
    let (user, host) = rest.split_once('@').expect("user@host");
    Some(format!("{scheme}://{user}:{SECRET}@{host}"))
}

/// A board with parents, comments, a claimed and completed run with an
/// attachment, a blocked task, an archived one and a notify subscription.
fn build_board(b: &Sandbox) {
    let parent = b.create("Parent", &["--assignee", "coder", "--priority", "3"]);
    let child = b.create("Child", &["--assignee", "coder", "--parent", &parent]);
    let blocked = b.create(
        "Blocked",
        &["--assignee", "coder", "--body", "line 1\nline 2"],
    );
    b.ok(&["block", &blocked, "needs input"]);
    b.ok(&["comment", &parent, "looks fine"]);
    b.ok(&["comment", &child, "waiting for the parent"]);
    let claimed = b.ok(&["claim", &parent]);
    let ws = claimed
        .lines()
        .find_map(|l| l.strip_prefix("Workspace: "))
        .expect("claim prints the workspace");
    std::fs::write(Path::new(ws).join("report.md"), "# report\n").unwrap();
    let meta = json!({"artifacts": [Path::new(ws).join("report.md")]}).to_string();
    let env = b.worker_env(&parent, "coder");
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let done = b.run_env(
        &[
            "complete",
            &parent,
            "--summary",
            "built it",
            "--metadata",
            &meta,
        ],
        &env,
    );
    assert!(done.status.success(), "{}", stderr(&done));
    b.ok(&[
        "notify-subscribe",
        &child,
        "--platform",
        "slack",
        "--chat-id",
        "c1",
    ]);
    let old = b.create("Old", &[]);
    b.ok(&["archive", &old]);
    // A deleted task leaves a gap in the event ids that must not be reused.
    let gone = b.create("Gone", &[]);
    b.ok(&["archive", &gone]);
    b.store().delete_task(&gone, true).expect("delete");
}

/// `list`, `show` of every task and `stats`, as JSON, with `pre` first.
fn views(b: &Sandbox, pre: &[&str]) -> Value {
    let run = |args: &[&str]| -> Value {
        let mut all: Vec<&str> = pre.to_vec();
        all.extend_from_slice(args);
        b.json(&all)
    };
    // Keyed by id: the backends break ties of equal priority and creation
    // second in different orders.
    let list = run(&["list", "--json", "--archived"]);
    let mut listed = BTreeMap::new();
    let mut shown = BTreeMap::new();
    for t in list.as_array().expect("list") {
        let id = t["id"].as_str().expect("id");
        listed.insert(id.to_string(), t.clone());
        shown.insert(id.to_string(), run(&["show", id, "--json"]));
    }
    let list = json!(listed);
    let mut stats = run(&["stats", "--json"]);
    // Clock readings, not board state.
    for key in ["now", "oldest_ready_age_seconds"] {
        stats.as_object_mut().expect("stats").remove(key);
    }
    json!({ "list": list, "show": shown, "stats": stats })
}

/// Every row of every table of a SQLite file, as sorted text; a missing
/// table reads as an empty one.
fn raw_rows(path: &Path) -> BTreeMap<String, Vec<String>> {
    let c = Connection::open(path).expect("open");
    let names: Vec<String> = c
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table'")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let mut out = BTreeMap::new();
    for name in names {
        let mut st = c.prepare(&format!("SELECT * FROM \"{name}\"")).unwrap();
        let width = st.column_count();
        let mut rows: Vec<String> = st
            .query_map([], |r| {
                let cells: Vec<rusqlite::types::Value> =
                    (0..width).map(|i| r.get(i)).collect::<Result<_, _>>()?;
                Ok(format!("{cells:?}"))
            })
            .unwrap()
            .map(Result::unwrap)
            .collect();
        rows.sort();
        if !rows.is_empty() {
            out.insert(name, rows);
        }
    }
    out
}

fn max_event_id(path: &Path) -> i64 {
    Connection::open(path)
        .unwrap()
        .query_row("SELECT MAX(id) FROM task_events", [], |r| r.get(0))
        .unwrap()
}

/// The first path where two JSON documents differ, for readable failures.
fn first_difference(a: &Value, b: &Value, path: &str) -> Option<String> {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let keys: BTreeSet<&String> = x.keys().chain(y.keys()).collect();
            keys.into_iter().find_map(|k| {
                let (l, r) = (
                    x.get(k).unwrap_or(&Value::Null),
                    y.get(k).unwrap_or(&Value::Null),
                );
                first_difference(l, r, &format!("{path}.{k}"))
            })
        }
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => x
            .iter()
            .zip(y)
            .enumerate()
            .find_map(|(i, (l, r))| first_difference(l, r, &format!("{path}[{i}]"))),
        _ if a == b => None,
        _ => Some(format!("{path}: {a} vs {b}")),
    }
}

fn assert_same(a: &Value, b: &Value) {
    if let Some(d) = first_difference(a, b, "") {
        panic!("views differ at {d}");
    }
}

fn assert_no_secret(out: &std::process::Output) {
    for text in [stdout(out), stderr(out)] {
        assert!(!text.contains(SECRET), "password leaked: {text}");
    }
}

#[test]
fn a_board_moves_to_postgres_and_back_row_for_row() {
    let Some(url) = database_url() else { return };
    let b = Sandbox::new();
    build_board(&b);
    let original = b.db_path();
    let before = views(&b, &[]);

    let out = b.run(&["boards", "migrate", "--to", &url, "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_no_secret(&out);
    let report: Value = serde_json::from_str(&stdout(&out)).expect("JSON report");
    assert_eq!(report["board"], "default");
    assert_eq!(report["verified"], true);
    let counts: BTreeMap<String, i64> = report["tables"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["table"].as_str().unwrap().to_string(),
                t["rows"].as_i64().unwrap(),
            )
        })
        .collect();
    let db = Connection::open(&original).unwrap();
    for (table, n) in &counts {
        let exists: bool = db
            .query_row(
                "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE name = ?1)",
                [table],
                |r| r.get(0),
            )
            .unwrap();
        let want: i64 = match exists {
            true => db
                .query_row(&format!("SELECT COUNT(*) FROM {table}"), [], |r| r.get(0))
                .unwrap(),
            false => 0,
        };
        assert_eq!(*n, want, "{table}: {report}");
    }
    for table in [
        "tasks",
        "task_links",
        "task_comments",
        "task_events",
        "task_runs",
        "task_attachments",
        "kanban_notify_subs",
    ] {
        assert!(counts[table] > 0, "{table} has rows to copy: {report}");
    }

    // Every verb reads the same board on PostgreSQL.
    let on_pg = views(&b, &["--db", &url]);
    assert_same(&on_pg, &before);

    // Back to a new SQLite file in a fresh root: the same rows, the same
    // views, and the Python reference reads it.
    let home = Sandbox::new();
    let back = home.path("kanban.db");
    let to = format!("sqlite:{}", back.display());
    let out = b.run(&["--db", &url, "boards", "migrate", "--to", &to]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_no_secret(&out);
    assert!(stdout(&out).contains("Verified:"), "{}", stdout(&out));
    assert_eq!(raw_rows(&back), raw_rows(&original));
    assert_same(&views(&home, &[]), &before);
    if let Some(mut cmd) = home.reference(["list", "--archived", "--no-recompute"]) {
        let out = cmd.output().expect("run the reference");
        assert!(out.status.success(), "{}", stderr(&out));
        let listed: Value = serde_json::from_str(&stdout(&out)).expect("reference JSON");
        let ids: BTreeSet<&str> = listed
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["id"].as_str().unwrap())
            .collect();
        let want: BTreeSet<&str> = before["list"]
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(ids, want);
    }

    // New events, comments and runs on PostgreSQL get higher ids than the
    // copied ones (and than the deleted task's).
    let copied_max = max_event_id(&original);
    let gap: i64 = Connection::open(&original)
        .unwrap()
        .query_row(
            "SELECT seq FROM sqlite_sequence WHERE name = 'task_events'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert!(gap > copied_max, "the deleted task's events left a gap");
    let fresh = b.json(&["--db", &url, "create", "After the move", "--json"]);
    let id = fresh["id"].as_str().unwrap();
    b.ok(&["--db", &url, "comment", id, "new"]);
    let pg = kanban_testkit::postgres::cluster().expect("running");
    let dbname = url.rsplit('/').next().expect("database name");
    let mut client = pg.client(dbname);
    let first_event: i64 = client
        .query_one(
            "SELECT MIN(id) FROM kanban_default.task_events WHERE task_id = $1",
            &[&id],
        )
        .unwrap()
        .get(0);
    assert_eq!(first_event, gap + 1);
    let comment: i64 = client
        .query_one(
            "SELECT id FROM kanban_default.task_comments WHERE task_id = $1",
            &[&id],
        )
        .unwrap()
        .get(0);
    assert_eq!(comment, counts["task_comments"] + 1);
}

#[test]
fn a_non_empty_destination_is_refused_unchanged() {
    let Some(url) = database_url() else { return };
    let b = Sandbox::new();
    build_board(&b);
    b.ok(&["boards", "migrate", "--to", &url]);
    let pg_before = views(&b, &["--db", &url]);

    // Again into the same PostgreSQL board: refused, nothing changed.
    let out = b.run(&["boards", "migrate", "--to", &url]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert_no_secret(&out);
    assert!(stderr(&out).contains("not empty"), "{}", stderr(&out));
    assert_same(&views(&b, &["--db", &url]), &pg_before);

    // Back into an existing SQLite board with tasks: refused, unchanged.
    let other = Sandbox::new();
    other.create("Already here", &[]);
    let file = other.db_path();
    let rows = raw_rows(&file);
    let to = format!("sqlite:{}", file.display());
    let out = b.run(&["--db", &url, "boards", "migrate", "--to", &to]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("not empty"), "{}", stderr(&out));
    assert_eq!(raw_rows(&file), rows);
}

#[test]
fn a_bad_destination_is_a_usage_error() {
    let b = Sandbox::new();
    b.create("Stay", &[]);
    for to in ["mysql://root:pw@h/x", "postgres://u:pw@h/x?board=Bad!", ""] {
        let out = b.run(&["boards", "migrate", "--to", to]);
        assert_eq!(out.status.code(), Some(2), "{to}: {}", stderr(&out));
        assert!(!stderr(&out).contains(":pw@"), "{}", stderr(&out));
    }
    // The source itself is no destination.
    let to = format!("sqlite:{}", b.db_path().display());
    let out = b.run(&["boards", "migrate", "--to", &to]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let help = b.ok(&["boards", "migrate", "--help"]);
    assert!(help.contains("--to <LOCATION>"), "{help}");
}

fn board_entry(list: &Value, slug: &str) -> Value {
    list.as_array()
        .expect("board list")
        .iter()
        .find(|b| b["slug"] == slug)
        .unwrap_or_else(|| panic!("no board {slug} in {list}"))
        .clone()
}

/// The metadata `boards create` and `set-default-workdir` gave `proj`.
fn assert_metadata(board: &Value, workdir: &str) {
    for (key, want) in [
        ("name", "Project X"),
        ("icon", "🚀"),
        ("color", "#8b5cf6"),
        ("description", "shared work"),
        ("default_workdir", workdir),
    ] {
        assert_eq!(board[key], want, "{key}: {board}");
    }
    assert_eq!(board["archived"], false, "{board}");
}

#[test]
fn the_board_metadata_goes_wherever_the_destination_has_a_catalogue() {
    let Some(url) = database_url() else { return };
    let b = Sandbox::new();
    let workdir = tempfile::tempdir().unwrap();
    let wd = workdir.path().to_str().unwrap();
    b.ok(&[
        "boards",
        "create",
        "proj",
        "--name",
        "Project X",
        "--icon",
        "🚀",
        "--color",
        "#8b5cf6",
        "--description",
        "shared work",
    ]);
    b.ok(&["boards", "set-default-workdir", "proj", wd]);
    b.ok(&["--board", "proj", "create", "A task"]);

    // To PostgreSQL: the database's catalogue has it.
    let out = b.run(&[
        "--board", "proj", "boards", "migrate", "--to", &url, "--json",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_no_secret(&out);
    let report: Value = serde_json::from_str(&stdout(&out)).expect("JSON report");
    assert_eq!(report["metadata_copied"], true, "{report}");
    let on_pg = b.json(&["--db", &url, "boards", "list", "--json"]);
    assert_metadata(&board_entry(&on_pg, "proj"), wd);

    // Back into a board of a Hermes root: its board.json has it.
    let home = Sandbox::new();
    home.ok(&["boards", "create", "proj"]);
    let back = home.path("kanban/boards/proj/kanban.db");
    let to = format!("sqlite:{}", back.display());
    let out = b.run(&[
        "--db", &url, "--board", "proj", "boards", "migrate", "--to", &to,
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("Board metadata copied"),
        "{}",
        stdout(&out)
    );
    let listed = home.json(&["boards", "list", "--json"]);
    assert_metadata(&board_entry(&listed, "proj"), wd);
    assert_eq!(
        home.json(&["--board", "proj", "list", "--json"])
            .as_array()
            .unwrap()
            .len(),
        1
    );

    // A plain file has no catalogue: the tasks only, nothing beside it.
    let dir = home.path("copies");
    std::fs::create_dir_all(&dir).unwrap();
    let to = format!("sqlite:{}", dir.join("proj.db").display());
    let out = b.run(&[
        "--db", &url, "--board", "proj", "boards", "migrate", "--to", &to,
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("Board metadata not copied"),
        "{}",
        stdout(&out)
    );
    let beside: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| !n.starts_with("proj.db"))
        .collect();
    assert!(beside.is_empty(), "written beside the file: {beside:?}");
}
