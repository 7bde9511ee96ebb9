//! Small outputs compared line for line with the reference's own command
//! line (hermes-agent 0.19.0 `hermes kanban ...`, run through
//! `tests/interop/ref_board.py cli`) on the same board.

use kanban_testkit::Sandbox;
use kanban_testkit::reference::run_ok;

macro_rules! reference {
    ($board:expr, $args:expr) => {
        match $board.reference($args) {
            Some(cmd) => cmd,
            None => return,
        }
    };
}

fn text(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Four ready tasks of `alice`, one of `bob`, one unassigned, one for a
/// lane that is no profile.
fn dispatch_board() -> Sandbox {
    let b = Sandbox::new();
    for p in ["alice", "bob"] {
        std::fs::create_dir_all(b.path(&format!("profiles/{p}"))).unwrap();
    }
    b.ok(&["init"]);
    for i in 1..=4 {
        b.create(&format!("task {i}"), &["--assignee", "alice"]);
    }
    b.create("task b", &["--assignee", "bob"]);
    b.create("nobody", &[]);
    b.create("ghost lane", &["--assignee", "ghost"]);
    b
}

#[test]
fn dry_run_with_max_lists_what_the_reference_lists() {
    let b = dispatch_board();
    for args in [
        vec!["dispatch", "--dry-run", "--max", "2"],
        vec!["dispatch", "--dry-run"],
    ] {
        let mine = text(&run_ok(&mut b.kanban(&args)));
        let mut cli = vec!["cli"];
        cli.extend(&args);
        let theirs = text(&run_ok(&mut reference!(b, &cli)));
        assert_eq!(mine, theirs, "{args:?}");
        assert!(mine.contains("Spawned:      5"), "{mine}");
        assert!(mine.contains("Skipped (unassigned): t_"), "{mine}");
    }
    // JSON: the reference's keys carry the same lists.
    let mine = b.json(&["dispatch", "--dry-run", "--max", "2", "--json"]);
    let theirs: serde_json::Value = serde_json::from_slice(
        &run_ok(&mut reference!(
            b,
            ["cli", "dispatch", "--dry-run", "--max", "2", "--json"]
        ))
        .stdout,
    )
    .unwrap();
    for key in [
        "spawned",
        "skipped_unassigned",
        "skipped_nonspawnable",
        "promoted",
    ] {
        assert_eq!(mine[key], theirs[key], "{key}");
    }
    // Nothing was written by either dry run.
    assert_eq!(b.sql_count("SELECT count(*) AS n FROM task_runs", &[]), 0);
}

#[test]
fn dry_run_lists_nothing_once_max_workers_run() {
    let b = dispatch_board();
    let alice = b.sql("SELECT id FROM tasks WHERE title = 'task 1'", &[]);
    b.ok(&["claim", alice[0][0].as_str().unwrap()]);
    let args = ["dispatch", "--dry-run", "--max", "1"];
    let mine = text(&run_ok(&mut b.kanban(args)));
    let theirs = text(&run_ok(&mut reference!(
        b,
        ["cli", "dispatch", "--dry-run", "--max", "1"]
    )));
    assert!(mine.contains("Spawned:      0"), "{mine}");
    assert!(theirs.contains("Spawned:      0"), "{theirs}");
}

#[test]
fn assignees_report_on_disk_as_the_reference_does() {
    let b = Sandbox::new();
    // A configured profile, a bare directory, an idle configured one.
    for (p, configured) in [("alice", true), ("bob", false), ("idle", true)] {
        let dir = b.path(&format!("profiles/{p}"));
        std::fs::create_dir_all(&dir).unwrap();
        if configured {
            std::fs::write(dir.join("config.yaml"), "model: {}\n").unwrap();
        }
    }
    b.ok(&["init"]);
    b.create("a", &["--assignee", "alice"]);
    b.create("b", &["--assignee", "bob"]);
    b.create("g", &["--assignee", "ghost"]);
    for args in [vec!["assignees"], vec!["assignees", "--json"]] {
        let mine = text(&run_ok(&mut b.kanban(&args)));
        let mut cli = vec!["cli"];
        cli.extend(&args);
        let theirs = text(&run_ok(&mut reference!(b, &cli)));
        assert_eq!(mine, theirs, "{args:?}");
    }
    let rows = b.json(&["assignees", "--json"]);
    let on_disk: Vec<(&str, bool)> = rows
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["name"].as_str().unwrap(), r["on_disk"].as_bool().unwrap()))
        .collect();
    assert_eq!(
        on_disk,
        [
            ("alice", true),
            ("bob", false),
            ("default", true),
            ("ghost", false),
            ("idle", true)
        ]
    );
}

/// With several boards both print a `Board: ...` header and a blank line
/// before the task lines, into a pipe too; only the command the header
/// points to is named after each program.
#[test]
fn piped_list_is_the_reference_list_with_its_board_header() {
    let b = Sandbox::new();
    b.ok(&["init"]);
    b.ok(&["boards", "create", "second"]);
    b.create("one", &["--assignee", "alice"]);
    b.create("two", &[]);
    let mine = text(&run_ok(&mut b.kanban(["list"])));
    let theirs = text(&run_ok(&mut reference!(b, ["cli", "list"])));
    assert!(
        theirs.starts_with("Board: default (1 other board — `hermes kanban boards list`)\n\n"),
        "{theirs}"
    );
    assert_eq!(
        mine,
        theirs.replace("`hermes kanban boards list`", "`kanban boards list`")
    );
    assert_eq!(mine.lines().count(), 4);
}
