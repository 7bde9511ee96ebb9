//! `kanban list --json` streams its array task by task; its bytes must stay
//! those of the whole array pretty-printed at once (the Hermes `--json`
//! contract: `_task_to_dict` keys in order, two-space indent). Checked on
//! a board of a few thousand varied rows, for every filter and order
//! `list` takes, against an array rendered here from the store's
//! collected `list_tasks` (the non-streaming path) with its own key list.

use kanban_store::{Store, TaskOrder, TaskQuery};
use kanban_testkit::Sandbox;
use rusqlite::params;
use serde_json::{Map, Value, json};

/// Rows of the generated board.
const TASKS: usize = 3000;

/// `kanban_core` statuses the generator cycles through.
const STATUSES: [&str; 8] = [
    "ready",
    "todo",
    "done",
    "blocked",
    "triage",
    "archived",
    "running",
    "scheduled",
];

/// A board of [`TASKS`] rows whose optional columns are set or NULL in
/// varying patterns, inserted in one transaction (a few thousand `kanban
/// create` processes would take minutes).
fn big_board() -> Sandbox {
    let b = Sandbox::new();
    b.ok(&["init"]);
    // Two rows through the CLI, as a user makes them.
    b.create(
        "made by the cli",
        &["--assignee", "alice", "--tenant", "t1"],
    );
    b.create(
        "second \"quoted\" one",
        &["--skill", "rust", "--max-retries", "2"],
    );
    let mut db = b.db();
    let tx = db.transaction().unwrap();
    {
        let mut ins = tx
            .prepare(
                "INSERT INTO tasks (id, title, body, assignee, status, priority, created_by, \
                 created_at, started_at, completed_at, workspace_kind, workspace_path, \
                 branch_name, project_id, tenant, result, skills, max_retries, session_id, \
                 workflow_template_id, current_step_key) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, \
                 ?16, ?17, ?18, ?19, ?20, ?21)",
            )
            .unwrap();
        for i in 0..TASKS {
            let id = format!(
                "t_{:08x}",
                (i as u64).wrapping_mul(2_654_435_761) & 0xffff_ffff
            );
            let status = STATUSES[i % STATUSES.len()];
            let odd = i % 2 == 1;
            let title = match i % 5 {
                0 => format!("task {i}"),
                1 => format!("tâche «{i}» ✓ \"q\" back\\slash"),
                2 => format!("ctrl \u{1}\u{1b}[0m tab\t{i}"),
                3 => format!("emoji 🦀 {i}"),
                _ => format!("line\nbreak {i}"),
            };
            let assignee = match i % 4 {
                0 => None,
                1 => Some("alice"),
                2 => Some("bob"),
                _ => Some("carol"),
            };
            let created = 1_700_000_000 + (i as i64 % 997) * 3;
            let done = status == "done" || status == "archived";
            let skills = match i % 6 {
                0 => Some(r#"["rust","sql"]"#),
                1 => Some("[]"),
                2 => Some(r#"["", null, 3]"#),
                _ => None,
            };
            ins.execute(params![
                id,
                title,
                odd.then(|| format!("body {i}\n\twith \"quotes\"")),
                assignee,
                status,
                (i % 7) as i64 - 2,
                (i % 3 != 0).then_some("bench"),
                created,
                (done || status == "running").then_some(created + 5),
                done.then_some(created + 60),
                match i % 3 {
                    0 => "scratch",
                    1 => "dir",
                    _ => "worktree",
                },
                (i % 3 == 1).then(|| format!("/srv/work/{i}")),
                (i % 3 == 2).then(|| format!("wt/{i}")),
                (i % 10 == 0).then_some("proj"),
                (i % 5 == 1).then_some("t1"),
                done.then(|| format!("result {i}")),
                skills,
                (i % 4 == 3).then_some(3_i64),
                (i % 9 == 0).then_some("sess-1"),
                (i % 11 == 0).then_some("wf1"),
                (i % 13 == 0).then_some("step-a"),
            ])
            .unwrap();
        }
    }
    tx.commit().unwrap();
    b
}

/// The reference's task dict (`_task_to_dict`), key by key.
fn task_dict(t: &kanban_core::Task) -> Value {
    let mut m = Map::new();
    m.insert("id".into(), json!(t.id));
    m.insert("title".into(), json!(t.title));
    m.insert("body".into(), json!(t.body));
    m.insert("assignee".into(), json!(t.assignee));
    m.insert("status".into(), json!(t.status.as_str()));
    m.insert("priority".into(), json!(t.priority));
    m.insert("tenant".into(), json!(t.tenant));
    m.insert("workspace_kind".into(), json!(t.workspace_kind));
    m.insert("workspace_path".into(), json!(t.workspace_path));
    m.insert("branch_name".into(), json!(t.branch_name));
    m.insert("project_id".into(), json!(t.project_id));
    m.insert("created_by".into(), json!(t.created_by));
    m.insert("created_at".into(), json!(t.created_at));
    m.insert("started_at".into(), json!(t.started_at));
    m.insert("completed_at".into(), json!(t.completed_at));
    m.insert("result".into(), json!(t.result));
    m.insert("skills".into(), json!(t.skills.clone().unwrap_or_default()));
    m.insert("max_retries".into(), json!(t.max_retries));
    m.insert("session_id".into(), json!(t.session_id));
    m.insert("workflow_template_id".into(), json!(t.workflow_template_id));
    m.insert("current_step_key".into(), json!(t.current_step_key));
    Value::Object(m)
}

/// What `list --json` printed before it streamed: the collected tasks as
/// one pretty array, then a newline.
fn expected(store: &dyn Store, q: &TaskQuery) -> String {
    let tasks = store.list_tasks(q).unwrap();
    let array = Value::Array(tasks.iter().map(task_dict).collect());
    serde_json::to_string_pretty(&array).unwrap() + "\n"
}

fn stdout_of(b: &Sandbox, args: &[&str], env: &[(&str, &str)]) -> String {
    let out = b.run_env(args, env);
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8 output")
}

#[test]
fn streamed_list_json_is_byte_identical_for_every_filter_and_order() {
    let b = big_board();
    let store = b.store();
    let base = TaskQuery::default();
    let cases: Vec<(Vec<&str>, TaskQuery)> = vec![
        (vec![], base.clone()),
        (
            vec!["--archived"],
            TaskQuery {
                include_archived: true,
                ..base.clone()
            },
        ),
        (
            vec!["--status", "ready"],
            TaskQuery {
                status: Some(kanban_core::Status::Ready),
                ..base.clone()
            },
        ),
        (
            vec!["--status", "archived"],
            TaskQuery {
                status: Some(kanban_core::Status::Archived),
                include_archived: true,
                ..base.clone()
            },
        ),
        (
            vec!["--assignee", "BOB"],
            TaskQuery {
                assignee: Some("bob".into()),
                ..base.clone()
            },
        ),
        (
            vec!["--profile", "alice", "--tenant", "t1"],
            TaskQuery {
                assignee: Some("alice".into()),
                tenant: Some("t1".into()),
                ..base.clone()
            },
        ),
        (
            vec!["--session", "sess-1", "--archived"],
            TaskQuery {
                session_id: Some("sess-1".into()),
                include_archived: true,
                ..base.clone()
            },
        ),
        (
            vec!["--workflow-template-id", "wf1"],
            TaskQuery {
                workflow_template_id: Some("wf1".into()),
                ..base.clone()
            },
        ),
        (
            vec!["--step-key", "step-a", "--status", "done"],
            TaskQuery {
                current_step_key: Some("step-a".into()),
                status: Some(kanban_core::Status::Done),
                ..base.clone()
            },
        ),
    ];
    let sorts = [
        ("priority", TaskOrder::Priority),
        ("priority-desc", TaskOrder::PriorityAsc),
        ("created", TaskOrder::Created),
        ("created-desc", TaskOrder::CreatedDesc),
        ("status", TaskOrder::Status),
        ("assignee", TaskOrder::Assignee),
        ("title", TaskOrder::Title),
        ("updated", TaskOrder::Updated),
    ];
    let mut checked = 0;
    for (flags, q) in cases
        .iter()
        .cloned()
        .chain(sorts.iter().map(|(name, order)| {
            (
                vec!["--archived", "--sort", name],
                TaskQuery {
                    order: *order,
                    include_archived: true,
                    ..TaskQuery::default()
                },
            )
        }))
    {
        let mut args = vec!["list", "--json"];
        args.extend(&flags);
        let mine = stdout_of(&b, &args, &[]);
        let want = expected(&*store, &q);
        assert!(
            mine == want,
            "{args:?}: streamed output differs (first difference at byte {})",
            mine.bytes()
                .zip(want.bytes())
                .position(|(a, b)| a != b)
                .unwrap_or(mine.len().min(want.len()))
        );
        checked += serde_json::from_str::<Value>(&mine)
            .unwrap()
            .as_array()
            .unwrap()
            .len();
    }
    // The board and the filters did select thousands of rows in all.
    assert!(checked > 2 * TASKS, "only {checked} rows compared");

    // `--mine` reads the profile from the environment.
    let mine = stdout_of(
        &b,
        &["list", "--json", "--mine"],
        &[("HERMES_PROFILE", "carol")],
    );
    let carol = TaskQuery {
        assignee: Some("carol".into()),
        ..TaskQuery::default()
    };
    assert_eq!(mine, expected(&*store, &carol));
}

#[test]
fn an_empty_listing_is_an_empty_array() {
    let b = Sandbox::new();
    b.ok(&["init"]);
    assert_eq!(stdout_of(&b, &["list", "--json"], &[]), "[]\n");
    b.create("only", &["--tenant", "t1"]);
    assert_eq!(
        stdout_of(&b, &["list", "--json", "--tenant", "nobody"], &[]),
        "[]\n"
    );
    let one = stdout_of(&b, &["list", "--json", "--tenant", "t1"], &[]);
    assert!(one.starts_with("[\n  {\n    \"id\": \"t_"), "{one}");
    assert!(one.ends_with("\n  }\n]\n"), "{one}");
}
