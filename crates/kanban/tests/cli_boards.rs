//! Black-box tests of `kanban boards …` and `kanban init` against a
//! throwaway Hermes root. Each test gets its own root through
//! `HERMES_KANBAN_HOME` and a scrubbed environment.

use std::path::Path;

use assert_cmd::Command;
use kanban_testkit::Sandbox;
use kanban_testkit::reference::run_ok;
use kanban_testkit::sandbox::isolate_at;
use predicates::prelude::*;
use serde_json::Value;

/// The binary on `root`, named by `HERMES_KANBAN_HOME` (not `HERMES_HOME`).
fn kanban(root: &Path) -> Command {
    let mut c = std::process::Command::new(kanban_testkit::kanban_bin());
    isolate_at(&mut c, root)
        .env_remove("HERMES_HOME")
        .env("HERMES_KANBAN_HOME", root);
    Command::from_std(c)
}

fn stdout(root: &Path, args: &[&str]) -> String {
    let out = kanban(root)
        .args(args)
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    String::from_utf8(out).unwrap()
}

fn json(root: &Path, args: &[&str]) -> Value {
    serde_json::from_str(&stdout(root, args)).unwrap()
}

#[test]
fn fresh_root_lists_only_default_as_current() {
    let t = tempfile::tempdir().unwrap();
    let out = stdout(t.path(), &["boards", "list"]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines[0].trim_end(),
        format!("{:2}  {:24}  {:28}  COUNTS", "", "SLUG", "NAME")
    );
    assert!(lines[1].starts_with("●   default "), "{out}");
    assert!(lines[1].ends_with("(empty)"), "{out}");
    assert!(out.contains("Current board: default"));
    assert!(!out.contains("Switch boards with"));
    // No action means list.
    assert_eq!(stdout(t.path(), &["boards"]), out);

    let v = json(t.path(), &["boards", "ls", "--json"]);
    let list = v.as_array().unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0]["slug"], "default");
    assert_eq!(list[0]["name"], "Default");
    assert_eq!(list[0]["is_current"], true);
    assert_eq!(list[0]["counts"], serde_json::json!({}));
    assert_eq!(list[0]["total"], 0);
    assert_eq!(
        list[0]["db_path"],
        t.path().join("kanban.db").to_string_lossy().as_ref()
    );
}

#[test]
fn create_is_idempotent_and_listed() {
    let t = tempfile::tempdir().unwrap();
    let root = t.path();
    let out = stdout(
        root,
        &["boards", "create", "Atm10-Server", "--description", "mods"],
    );
    assert!(out.starts_with("Board 'atm10-server' created.\n"), "{out}");
    assert!(out.contains("  Display name: Atm10 Server\n"), "{out}");
    assert!(out.contains("kanban boards switch atm10-server"), "{out}");
    let dir = root.join("kanban/boards/atm10-server");
    assert!(dir.join("kanban.db").is_file());
    let meta: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("board.json")).unwrap()).unwrap();
    assert_eq!(meta["description"], "mods");
    assert!(
        meta.get("db_path").is_none(),
        "db_path is computed, never stored"
    );

    let again = stdout(root, &["boards", "new", "atm10-server"]);
    assert!(
        again.starts_with("Board 'atm10-server' already exists.\n"),
        "{again}"
    );

    let v = json(root, &["boards", "list", "--json"]);
    let slugs: Vec<&str> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["slug"].as_str().unwrap())
        .collect();
    assert_eq!(slugs, ["default", "atm10-server"]);
    assert!(
        stdout(root, &["boards", "list"])
            .contains("Switch boards with `kanban boards switch <slug>`.")
    );
}

#[test]
fn bad_slug_exits_2_unknown_board_exits_1() {
    let t = tempfile::tempdir().unwrap();
    kanban(t.path())
        .args(["boards", "create", "Bad Slug"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "kanban boards create: invalid board slug",
        ));
    kanban(t.path())
        .args(["boards", "switch", "ghost"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains(
            "board 'ghost' does not exist. Create it with `kanban boards create ghost`.",
        ));
    kanban(t.path())
        .args(["boards", "switch", "../x"])
        .assert()
        .code(2);
    kanban(t.path())
        .args(["boards", "rm", "default"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains(
            "the 'default' board cannot be removed",
        ));
    kanban(t.path())
        .args(["boards", "rename", "ghost", "X"])
        .assert()
        .code(1);
}

#[test]
fn switch_show_and_global_board_flag() {
    let t = tempfile::tempdir().unwrap();
    let root = t.path();
    stdout(
        root,
        &[
            "boards",
            "create",
            "alpha",
            "--name",
            "Alpha Team",
            "--switch",
        ],
    );
    assert_eq!(
        std::fs::read_to_string(root.join("kanban/current")).unwrap(),
        "alpha\n"
    );
    let show = stdout(root, &["boards", "show"]);
    assert!(
        show.starts_with("Current board: alpha\n  Display name: Alpha Team\n"),
        "{show}"
    );
    assert!(show.contains("  Tasks:        0 total"), "{show}");
    assert_eq!(
        stdout(root, &["boards", "use", "default"]),
        "Active board is now 'default'.\n"
    );
    assert!(stdout(root, &["boards", "current"]).starts_with("Current board: default\n"));

    // The env board wins over the pointer for `show`.
    let out = kanban(root)
        .env("HERMES_KANBAN_BOARD", "alpha")
        .args(["boards", "show"])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("Current board: alpha"));

    // `--board` on task verbs: unknown → 1, invalid → 2.
    kanban(root)
        .args(["--board", "ghost", "list"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("board 'ghost' does not exist"));
    kanban(root)
        .args(["--board", "a/b", "list"])
        .assert()
        .code(2);
}

#[test]
fn counts_follow_the_board() {
    let t = tempfile::tempdir().unwrap();
    let root = t.path();
    stdout(root, &["boards", "create", "alpha"]);
    stdout(root, &["--board", "alpha", "create", "first task"]);
    let v = json(root, &["boards", "list", "--json"]);
    let alpha = v
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["slug"] == "alpha")
        .unwrap()
        .clone();
    assert_eq!(alpha["total"], 1);
    assert_eq!(alpha["counts"]["ready"], 1);
    let default = &v[0];
    assert_eq!(default["total"], 0);
    assert!(stdout(root, &["boards", "list"]).contains("ready=1"));
}

#[test]
fn remove_archives_then_delete_alias_hard_deletes() {
    let t = tempfile::tempdir().unwrap();
    let root = t.path();
    stdout(root, &["boards", "create", "old", "--switch"]);
    let out = stdout(root, &["boards", "rm", "old"]);
    assert!(out.starts_with("Board 'old' archived → "), "{out}");
    assert!(
        !root.join("kanban/current").exists(),
        "pointer to a removed board is cleared"
    );
    let archived: Vec<_> = std::fs::read_dir(root.join("kanban/boards/_archived"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(archived.len(), 1);
    assert!(archived[0].starts_with("old-"));
    assert_eq!(
        json(root, &["boards", "list", "--json"])
            .as_array()
            .unwrap()
            .len(),
        1
    );

    stdout(root, &["boards", "create", "tmp"]);
    assert_eq!(
        stdout(root, &["boards", "delete", "tmp"]),
        "Board 'tmp' deleted.\n"
    );
    assert!(!root.join("kanban/boards/tmp").exists());
    stdout(root, &["boards", "create", "tmp2"]);
    let v = json(root, &["boards", "remove", "tmp2", "--delete", "--json"]);
    assert_eq!(
        v,
        serde_json::json!({"slug": "tmp2", "action": "deleted", "new_path": ""})
    );
}

#[test]
fn rename_and_default_workdir() {
    let t = tempfile::tempdir().unwrap();
    let root = t.path();
    stdout(root, &["boards", "create", "b"]);
    assert_eq!(
        stdout(root, &["boards", "rename", "b", "Big Board"]),
        "Board 'b' renamed to 'Big Board'.\n"
    );
    let wd = root.to_string_lossy().into_owned();
    assert_eq!(
        stdout(root, &["boards", "set-default-workdir", "b", &wd]),
        format!("Board 'b' default workdir set to '{wd}'.\n")
    );
    kanban(root)
        .args(["boards", "set-default-workdir", "b", "relative/dir"])
        .assert()
        .code(2);
    assert_eq!(
        stdout(root, &["boards", "set-default-workdir", "b"]),
        "Board 'b' default workdir cleared.\n"
    );
    let v = json(root, &["boards", "list", "--json"]);
    assert_eq!(v[1]["name"], "Big Board");
    assert_eq!(v[1]["default_workdir"], Value::Null);
}

#[test]
fn init_creates_db_and_lists_profiles() {
    let t = tempfile::tempdir().unwrap();
    let root = t.path();
    std::fs::create_dir_all(root.join("profiles/coder")).unwrap();
    std::fs::write(
        root.join("config.yaml"),
        "kanban:\n  profiles:\n    claude:\n      command: [claude, -p, '{prompt}']\n",
    )
    .unwrap();
    let out = stdout(root, &["init"]);
    assert!(
        out.starts_with(&format!(
            "Kanban DB initialized at {}\n",
            root.join("kanban.db").display()
        )),
        "{out}"
    );
    assert!(out.contains("Discovered 3 profile(s)"), "{out}");
    assert!(
        out.contains("\n  claude  (command: claude -p {prompt})\n"),
        "{out}"
    );
    assert!(
        out.contains("\n  coder\n") && out.contains("\n  default\n"),
        "{out}"
    );
    assert!(out.contains("kanban gateway start"), "{out}");
    assert!(root.join("kanban.db").is_file());
    // Idempotent.
    stdout(root, &["init"]);

    let out = kanban(root)
        .env("HERMES_KANBAN_DISPATCH_IN_GATEWAY", "0")
        .arg("init")
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("kanban dispatch"));
}

/// The Python reference reads the boards we write and we read the boards
/// it writes (fails when the reference is required and missing).
#[test]
fn reference_interop() {
    let b = Sandbox::new();
    b.ok(&["boards", "create", "ours", "--name", "Our Board"]);
    let script = "import json, hermes_cli.kanban_db as kb\n\
                  kb.create_board('theirs', name='Their Board')\n\
                  print(json.dumps([[b['slug'], b['name']] for b in kb.list_boards()]))";
    let Some(mut py) = b.reference_code(script) else {
        return;
    };
    let out = run_ok(&mut py);
    let text = String::from_utf8_lossy(&out.stdout);
    let last = text.lines().rfind(|l| !l.trim().is_empty()).unwrap_or("[]");
    let seen: Value = serde_json::from_str(last).unwrap();
    assert!(
        seen.as_array()
            .unwrap()
            .contains(&serde_json::json!(["ours", "Our Board"])),
        "{seen}"
    );
    let v = b.json(&["boards", "list", "--json"]);
    let names: Vec<&str> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["Default", "Our Board", "Their Board"]);
}
