//! Hardening of the board surface seen from the command line (issue 9):
//! idempotent links, workspace specs checked at create, a bad
//! `HERMES_KANBAN_BOARD` refused, another program's SQLite file left alone.

use kanban_testkit::{Sandbox, event_kinds, stderr, stdout};

/// Item 19: linking an existing pair again is a no-op: same output as the
/// first time (the reference prints `Linked` again), exit 0, no second
/// `linked` event, no other change.
#[test]
fn linking_twice_writes_one_event() {
    let b = Sandbox::new();
    let a = b.create("parent", &[]);
    let c = b.create("child", &[]);
    assert_eq!(b.ok(&["link", &a, &c]), format!("Linked {a} -> {c}\n"));
    let before = b.snapshot();
    assert_eq!(b.ok(&["link", &a, &c]), format!("Linked {a} -> {c}\n"));
    assert_eq!(b.snapshot(), before, "the second link changed the board");
    let kinds = event_kinds(&b.task(&c));
    assert_eq!(
        kinds.iter().filter(|k| *k == "linked").count(),
        1,
        "{kinds:?}"
    );
}

/// Item 18: workspace specs that can never be spawned are refused at
/// create, naming the problem and the fix; the board is unchanged.
#[test]
fn create_refuses_unusable_workspaces() {
    let b = Sandbox::new();
    let out = b.refuses(
        &["create", "t", "--workspace", "worktree:../../wt"],
        2,
        "worktree",
    );
    let err = stderr(&out);
    assert!(err.contains("../../wt"), "{err}");
    assert!(err.contains("absolute"), "{err}");
    b.refuses(
        &["create", "t", "--workspace", "dir:rel/path"],
        2,
        "absolute",
    );
    // Absolute and home-relative paths are accepted (`~` is expanded).
    let t = b.create("ok", &["--workspace", "worktree:/srv/repo/wt"]);
    assert_eq!(b.task(&t)["task"]["workspace_path"], "/srv/repo/wt");
    let t = b.create("ok", &["--workspace", "dir:~/proj"]);
    assert_eq!(
        b.task(&t)["task"]["workspace_path"],
        b.root().join("proj").to_str().unwrap()
    );
    // A path-less worktree waits for the board's default workdir.
    b.create("later", &["--workspace", "worktree"]);
}

/// Item 17: an invalid or unknown `HERMES_KANBAN_BOARD` is refused like a
/// bad `--board`, naming the variable, instead of silently using default.
#[test]
fn bad_env_board_is_refused() {
    let b = Sandbox::new();
    b.create("on default", &[]);
    let out = b.run_env(&["list"], &[("HERMES_KANBAN_BOARD", "ghost")]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert!(stdout(&out).is_empty(), "{}", stdout(&out));
    let err = stderr(&out);
    assert!(err.contains("HERMES_KANBAN_BOARD"), "{err}");
    assert!(err.contains("'ghost' does not exist"), "{err}");

    let out = b.run_env(&["create", "x"], &[("HERMES_KANBAN_BOARD", "a/b")]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(err.contains("HERMES_KANBAN_BOARD"), "{err}");
    assert!(err.contains("invalid board slug"), "{err}");
    assert_eq!(b.json(&["list", "--json"]).as_array().unwrap().len(), 1);

    // A blank value means unset; a valid existing board is used.
    b.ok(&["boards", "create", "alpha"]);
    let out = b.run_env(&["list"], &[("HERMES_KANBAN_BOARD", "  ")]);
    assert!(stdout(&out).contains("on default"), "{}", stdout(&out));
    let out = b.run_env(&["list"], &[("HERMES_KANBAN_BOARD", "Alpha")]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(
        stdout(&out),
        "Board: alpha (1 other board — `kanban boards list`)\n\n(no matching tasks)\n"
    );
    // Board management still works, so the variable can be fixed.
    let out = b.run_env(&["boards", "list"], &[("HERMES_KANBAN_BOARD", "ghost")]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
}

/// Bytes and table names of a SQLite file, read with Python's stdlib.
fn sqlite_tables(db: &std::path::Path) -> String {
    let out = std::process::Command::new("python3")
        .args([
            "-S",
            "-c",
            "import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); \
             print(sorted(r[0] for r in c.execute(\"SELECT name FROM sqlite_master\")))",
        ])
        .arg(db)
        .output()
        .expect("python3");
    assert!(out.status.success(), "{}", stderr(&out));
    stdout(&out)
}

/// Item 16: a valid SQLite file holding another program's tables is refused
/// with a message naming it, and left byte for byte as it was.
#[test]
fn foreign_sqlite_file_is_refused_and_untouched() {
    let b = Sandbox::new();
    let db = b.path("kanban.db");
    let out = std::process::Command::new("python3")
        .args([
            "-S",
            "-c",
            "import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); \
             c.execute('CREATE TABLE notes (id INTEGER PRIMARY KEY, text TEXT)'); \
             c.execute(\"INSERT INTO notes (text) VALUES ('mine')\"); c.commit()",
        ])
        .arg(&db)
        .output()
        .expect("python3");
    assert!(out.status.success(), "{}", stderr(&out));
    let bytes = std::fs::read(&db).unwrap();
    let tables = sqlite_tables(&db);
    for args in [&["list"][..], &["show", "t_00000000"], &["create", "x"]] {
        let out = b.run(args);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {}", stdout(&out));
        let err = stderr(&out);
        assert!(err.contains(db.to_str().unwrap()), "{args:?}: {err}");
        assert!(err.contains("not a kanban board"), "{args:?}: {err}");
        assert!(err.contains("notes"), "{args:?}: {err}");
    }
    assert_eq!(sqlite_tables(&db), tables);
    assert_eq!(std::fs::read(&db).unwrap(), bytes, "the file was modified");
    let mut siblings: Vec<String> = std::fs::read_dir(b.root())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("kanban.db"))
        .collect();
    siblings.sort();
    assert_eq!(siblings, ["kanban.db"], "files were added next to it");

    // An empty file, and a SQLite file without any table, are initialised
    // as the reference does.
    let empty = Sandbox::new();
    std::fs::write(empty.path("kanban.db"), b"").unwrap();
    empty.ok(&["list"]);
    let blank = Sandbox::new();
    let out = std::process::Command::new("python3")
        .args([
            "-S",
            "-c",
            "import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); \
             c.execute('PRAGMA user_version=1'); c.commit()",
        ])
        .arg(blank.path("kanban.db"))
        .output()
        .expect("python3");
    assert!(out.status.success(), "{}", stderr(&out));
    blank.create("fine", &[]);
    assert!(sqlite_tables(&blank.path("kanban.db")).contains("'tasks'"));
}
