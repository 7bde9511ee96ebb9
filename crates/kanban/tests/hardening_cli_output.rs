//! Issue 9 item 2: control characters a task carries (ESC, BEL, BS, NUL,
//! other C0 and C1 controls, DEL) never reach the terminal raw in the human
//! output of `list`, `show`, `watch`, `tail`, `runs` and `log`: they are
//! shown as `\xNN`. Newlines (and tabs) survive where the text is a block;
//! `--json` output keeps the exact text.

use std::io::{BufRead, BufReader};
use std::process::Stdio;

use kanban_testkit::{Sandbox, stderr};

/// Clears the screen, sets the window title, rings, backspaces, and a C1
/// CSI (U+009B) that some terminals obey like ESC [.
const EVIL: &str = "\u{1b}[2J\u{1b}]0;owned\u{7}\u{8}\u{7f}\u{9b}31m";

/// Every control character in `out` except newline (and tab when
/// `tabs` is true) is a failure; C1 controls are U+0080..U+009F.
fn assert_terminal_safe(what: &str, out: &[u8], tabs: bool) {
    let text = String::from_utf8_lossy(out);
    let bad: Vec<String> = text
        .chars()
        .filter(|&c| {
            let n = c as u32;
            (n < 0x20 && c != '\n' && !(tabs && c == '\t')) || (0x7f..=0x9f).contains(&n)
        })
        .map(|c| format!("U+{:04X}", c as u32))
        .collect();
    assert!(
        bad.is_empty(),
        "{what}: raw control characters {bad:?} in:\n{text:?}"
    );
}

/// Set a column of one row with Python's sqlite3: values a CLI argument
/// cannot carry (NUL), as another writer of the board could store them.
fn sql_set(b: &Sandbox, sql: &str, args: &[&str]) {
    let out = std::process::Command::new("python3")
        .args([
            "-S",
            "-c",
            "import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); \
             a=[x.replace('<NUL>', chr(0)) for x in sys.argv[3:]]; \
             c.execute(sys.argv[2], a); c.commit()",
        ])
        .arg(b.path("kanban.db"))
        .arg(sql)
        .args(args)
        .output()
        .expect("python3");
    assert!(out.status.success(), "{}", stderr(&out));
}

#[test]
fn human_output_escapes_control_characters() {
    let b = Sandbox::new();
    let title = format!("deploy{EVIL}");
    let body = format!("line one\n\tindented{EVIL}\nline three");
    let t = b.create(
        &title,
        &[
            "--body",
            &body,
            "--assignee",
            "coder",
            "--tenant",
            "acme\u{1b}x",
        ],
    );
    sql_set(
        &b,
        "UPDATE tasks SET title = title || ? WHERE id = ?",
        &["<NUL>end", &t],
    );
    b.ok(&["comment", &t, &format!("look{EVIL}\nsecond line")]);
    b.ok(&["claim", &t]);
    b.ok(&[
        "complete",
        &t,
        "--summary",
        &format!("done{EVIL}\nmore"),
        "--result",
        &format!("result{EVIL}"),
    ]);
    sql_set(
        &b,
        "UPDATE task_runs SET error = ? WHERE task_id = ?",
        &[&format!("boom{EVIL}"), &t],
    );

    let list = b.run(&["list"]);
    assert_terminal_safe("list", &list.stdout, false);
    let list = String::from_utf8_lossy(&list.stdout).into_owned();
    assert!(
        list.contains("deploy\\x1b[2J\\x1b]0;owned\\x07\\x08\\x7f\\x9b31m\\x00end"),
        "{list}"
    );
    assert!(list.contains("[acme\\x1bx]"), "{list}");
    assert_eq!(list.lines().count(), 1, "{list}");

    let show = b.run(&["show", &t]);
    assert_terminal_safe("show", &show.stdout, true);
    let show = String::from_utf8_lossy(&show.stdout).into_owned();
    assert!(show.contains("line one\n\tindented\\x1b[2J"), "{show}");
    assert!(show.contains("look\\x1b[2J"), "{show}");
    assert!(show.contains("\\x1b]0;owned\\x07"), "{show}");
    assert!(show.contains("boom\\x1b"), "{show}");

    let runs = b.run(&["runs", &t]);
    assert_terminal_safe("runs", &runs.stdout, false);
    assert!(String::from_utf8_lossy(&runs.stdout).contains("done\\x1b[2J"));

    let tail = b.run(&["tail", &t, "--once"]);
    assert_terminal_safe("tail", &tail.stdout, false);

    // JSON stays exact.
    let v = b.task(&t);
    assert_eq!(v["task"]["title"], format!("{title}\u{0}end"));
    assert_eq!(v["task"]["body"], body);
    assert_eq!(v["comments"][0]["body"], format!("look{EVIL}\nsecond line"));

    // The worker log: escapes shown, lines kept.
    let logs = b.path("kanban/logs");
    std::fs::create_dir_all(&logs).unwrap();
    std::fs::write(
        logs.join(format!("{t}.log")),
        "start\n\u{1b}[31mred\u{1b}[0m\u{7}\n\u{0}\u{9b}end\n",
    )
    .unwrap();
    let log = b.run(&["log", &t]);
    assert_terminal_safe("log", &log.stdout, true);
    assert_eq!(
        String::from_utf8_lossy(&log.stdout),
        "start\n\\x1b[31mred\\x1b[0m\\x07\n\\x00\\x9bend\n"
    );
}

#[test]
fn watch_escapes_control_characters() {
    let b = Sandbox::new();
    let t = b.create("plain", &[]);
    let mut watch = b
        .std_cmd()
        .args(["watch", "--interval", "0.1", "--timeout", "5"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn watch");
    let mut out = BufReader::new(watch.stdout.take().unwrap());
    let mut first = String::new();
    out.read_line(&mut first).unwrap();
    assert!(first.starts_with("Watching"), "{first}");
    // Events written after `watch` started: an assignee and a reason
    // carrying escapes.
    b.ok(&["assign", &t, &format!("bob{EVIL}")]);
    b.ok(&["block", &t, &format!("why{EVIL}")]);
    let mut rest = Vec::new();
    std::io::Read::read_to_end(&mut out, &mut rest).unwrap();
    let status = watch.wait().unwrap();
    assert!(status.success(), "watch exited with {status}");
    let text = String::from_utf8_lossy(&rest).into_owned();
    assert!(
        text.contains("blocked"),
        "watch saw no block event:\n{text}"
    );
    assert_terminal_safe("watch", &rest, false);
    assert!(text.contains("why\\x1b[2J"), "{text}");
}
