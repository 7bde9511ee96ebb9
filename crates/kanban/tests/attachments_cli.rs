//! `kanban attach`, `attachments` and `attach-rm` black-box (reference §4):
//! the blob under `<root>/kanban/attachments/<task>/`, the row, the
//! `attached` / `attachment_removed` events, the reference's output and
//! JSON shapes, and refusals that change nothing.

use std::path::{Path, PathBuf};

use kanban_testkit::{Sandbox, event_kinds, stdout};
use serde_json::{Value, json};

/// The cap of `kanban_core::defaults::ATTACHMENT_MAX_BYTES`.
const CAP: u64 = 25 * 1024 * 1024;

/// Every file under the board's attachments root, with its content.
fn blobs(b: &Sandbox) -> Vec<(PathBuf, Vec<u8>)> {
    fn walk(dir: &Path, out: &mut Vec<(PathBuf, Vec<u8>)>) {
        let Ok(rd) = std::fs::read_dir(dir) else {
            return;
        };
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(&p, out);
            } else {
                out.push((p.clone(), std::fs::read(&p).unwrap()));
            }
        }
    }
    let mut out = Vec::new();
    walk(&b.path("kanban/attachments"), &mut out);
    out.sort();
    out
}

fn write(b: &Sandbox, name: &str, content: &[u8]) -> String {
    let p = b.path(name);
    std::fs::write(&p, content).unwrap();
    p.display().to_string()
}

#[test]
fn attach_list_and_remove_round_trip() {
    let b = Sandbox::new();
    let t = b.create("With files", &[]);
    let src = write(&b, "notes.txt", b"hello\nattachment\n");
    let out = b.ok(&["attach", &t, &src, "--author", "alice"]);
    assert_eq!(
        out.trim(),
        format!("Attached notes.txt to {t} (attachment 1, 17 bytes)")
    );
    // The blob sits where the reference puts it, byte for byte.
    let dir = b.path(&format!("kanban/attachments/{t}"));
    assert_eq!(
        std::fs::read(dir.join("notes.txt")).unwrap(),
        b"hello\nattachment\n"
    );

    // Same name again: a collision-free second file; --name and --content-type.
    let second = b.json(&["attach", &t, &src, "--json"]);
    assert_eq!(second["filename"], "notes (1).txt", "{second}");
    assert_eq!(second["uploaded_by"], "user");
    assert_eq!(second["content_type"], "text/plain");
    let third = b.json(&[
        "attach",
        &t,
        &src,
        "--name",
        "renamed.bin",
        "--content-type",
        "application/x-test",
        "--json",
    ]);
    assert_eq!(third["filename"], "renamed.bin");
    assert_eq!(third["content_type"], "application/x-test");

    let listed = b.json(&["attachments", &t, "--json"]);
    let rows = listed.as_array().unwrap();
    assert_eq!(rows.len(), 3);
    let first = &rows[0];
    let keys: Vec<&str> = first
        .as_object()
        .unwrap()
        .keys()
        .map(|k| k.as_str())
        .collect();
    assert_eq!(
        keys,
        [
            "id",
            "filename",
            "content_type",
            "size",
            "uploaded_by",
            "stored_path",
            "created_at"
        ]
    );
    assert_eq!(first["filename"], "notes.txt");
    assert_eq!(first["size"], 17);
    assert_eq!(first["uploaded_by"], "alice");
    let stored = first["stored_path"].as_str().unwrap();
    assert!(Path::new(stored).is_absolute(), "{stored}");
    assert_eq!(
        std::fs::canonicalize(stored).unwrap(),
        std::fs::canonicalize(dir.join("notes.txt")).unwrap()
    );

    let human = b.ok(&["attachments", &t]);
    let mut lines = human.lines();
    assert_eq!(lines.next(), Some(format!("Attachments on {t}:").as_str()));
    assert_eq!(
        lines.next(),
        Some("  [1] notes.txt  (17 bytes, text/plain, by alice)")
    );
    assert_eq!(lines.next(), Some(format!("        {stored}").as_str()));

    // Events: one `attached` per file with the reference's payload.
    let shown = b.task(&t);
    let kinds = event_kinds(&shown);
    assert_eq!(kinds.iter().filter(|k| *k == "attached").count(), 3);
    let ev = shown["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["kind"] == "attached")
        .unwrap();
    assert_eq!(
        ev["payload"],
        json!({"filename": "notes.txt", "size": 17, "by": "alice"})
    );

    // Remove: row, blob and an `attachment_removed` event.
    let out = b.ok(&["attach-rm", "1"]);
    assert_eq!(
        out.trim(),
        format!("Deleted attachment 1 (notes.txt) from {t}")
    );
    assert!(!dir.join("notes.txt").exists());
    assert!(dir.join("notes (1).txt").exists());
    let gone = b.json(&["attach-rm", "3", "--json"]);
    assert_eq!(
        gone,
        json!({"ok": true, "id": 3, "task_id": t, "filename": "renamed.bin"})
    );
    let left = b.json(&["attachments", &t, "--json"]);
    assert_eq!(left.as_array().unwrap().len(), 1);
    assert_eq!(b.event_count(&t, "attachment_removed"), 2);
}

#[test]
fn a_task_without_attachments_says_so() {
    let b = Sandbox::new();
    let t = b.create("Bare", &[]);
    assert_eq!(
        b.ok(&["attachments", &t]).trim(),
        format!("No attachments on {t}")
    );
    assert_eq!(b.json(&["attachments", &t, "--json"]), Value::Array(vec![]));
}

#[test]
fn bad_input_is_refused_and_changes_nothing() {
    let b = Sandbox::new();
    let t = b.create("Target", &[]);
    let ok_file = write(&b, "fine.txt", b"fine");
    b.ok(&["attach", &t, &ok_file]);
    let before = blobs(&b);

    let missing = b.path("nope.txt").display().to_string();
    b.refuses(&["attach", &t, &missing], 1, "no such file:");
    let dir = b.path("a-directory");
    std::fs::create_dir(&dir).unwrap();
    b.refuses(
        &["attach", &t, &dir.display().to_string()],
        1,
        "is a directory",
    );
    b.refuses(
        &["attach", "t_00000000", &ok_file],
        1,
        "no such task: t_00000000",
    );
    for bad in ["../escape.txt", ".hidden", "a/b.txt", ""] {
        b.refuses(
            &["attach", &t, &ok_file, "--name", bad],
            1,
            "invalid attachment filename",
        );
    }
    // One byte over the cap (a sparse file: nothing is really written).
    let big = b.path("big.bin");
    std::fs::File::create(&big)
        .unwrap()
        .set_len(CAP + 1)
        .unwrap();
    b.refuses(
        &["attach", &t, &big.display().to_string()],
        1,
        "attachment exceeds 25 MB limit",
    );
    b.refuses(&["attach-rm", "99"], 1, "no such attachment: 99");
    b.refuses(
        &["attachments", "t_00000000"],
        1,
        "no such task: t_00000000",
    );
    let out = b.run(&["attach-rm", "not-a-number"]);
    assert_eq!(out.status.code(), Some(2), "{}", stdout(&out));

    assert_eq!(blobs(&b), before, "no blob was added or removed");
    assert!(
        !b.path("kanban/attachments/t_00000000").exists(),
        "no directory for an unknown task"
    );
}

#[test]
fn a_file_at_the_cap_is_accepted() {
    let b = Sandbox::new();
    let t = b.create("Big", &[]);
    let big = b.path("exact.bin");
    std::fs::File::create(&big).unwrap().set_len(CAP).unwrap();
    let att = b.json(&["attach", &t, &big.display().to_string(), "--json"]);
    assert_eq!(att["size"], CAP);
}

#[test]
fn attachments_of_another_board_stay_in_that_board() {
    let b = Sandbox::new();
    b.ok(&["boards", "create", "side"]);
    let t = b.create("On side", &["--board", "side"]);
    let src = write(&b, "side.txt", b"side board");
    b.ok(&["--board", "side", "attach", &t, &src]);
    assert!(
        b.path(&format!("kanban/boards/side/attachments/{t}/side.txt"))
            .exists()
    );
    let listed = b.json(&["--board", "side", "attachments", &t, "--json"]);
    assert_eq!(listed[0]["filename"], "side.txt");
}
