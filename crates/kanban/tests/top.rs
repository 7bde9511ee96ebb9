//! `kanban top`: one frame of a seeded board printed with `--once`; the
//! live view in a pseudo-terminal (as over SSH), redrawing when the board
//! changes and quitting on `q`; and refusing to start without a terminal.

use std::io::Write;
use std::process::Stdio;
use std::time::Duration;

use kanban_testkit::{Sandbox, expect_until, stderr, stdout, wait_until};

/// How long the live view may take to quit after `q` (it polls keys
/// every 500 ms).
const QUIT_WAIT: Duration = Duration::from_secs(10);

#[test]
fn top_once_prints_counts_workers_usage_and_events() {
    let b = Sandbox::new();
    b.write_config("kanban:\n  profile_limits: {alice: 2}\n  max_in_progress: 5\n");
    b.ok(&["init"]);
    let done = b.create("Ship the release notes", &["--assignee", "alice"]);
    b.ok(&["claim", &done]);
    b.ok(&["complete", &done, "--summary", "shipped"]);
    let busy = b.create("Write the migration", &["--assignee", "alice"]);
    b.ok(&["claim", &busy]);
    b.ok(&["heartbeat", &busy, "--note", "halfway"]);
    b.create("Waiting for alice", &["--assignee", "alice"]);
    b.create("Needs a person", &["--assignee", "bob"]);

    let out = b.run(&["top", "--once", "--width", "110"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.starts_with("kanban top  board default"), "{text}");
    for count in ["ready 2", "running 1", "done 1", "blocked 0"] {
        assert!(text.contains(count), "{count}:\n{text}");
    }
    assert!(text.contains("Running 1/5"), "{text}");
    let row = text
        .lines()
        .find(|l| l.contains(&busy) && l.contains("Write the migration"))
        .unwrap_or_else(|| panic!("no worker row:\n{text}"));
    assert!(row.contains("alice") && row.contains(" ago"), "{row}");
    let alice = text
        .lines()
        .find(|l| l.contains("alice") && l.contains("1/2"))
        .unwrap_or_else(|| panic!("no usage row:\n{text}"));
    assert!(alice.contains("1 ready"), "{alice}");
    let bob = text
        .lines()
        .find(|l| l.contains("bob") && l.contains("0/-"))
        .unwrap_or_else(|| panic!("no usage row for bob:\n{text}"));
    assert!(bob.contains("1 ready"), "{bob}");
    assert!(
        text.lines()
            .any(|l| l.contains(&done) && l.contains("completed") && l.contains("@alice")),
        "{text}"
    );
    assert!(text.contains("last 30 min: 1 total"), "{text}");
    assert!(text.contains("gateway: not running"), "{text}");
    assert!(text.lines().all(|l| l.chars().count() <= 110), "{text}");
}

#[test]
fn top_once_follows_board_and_minutes() {
    let b = Sandbox::new();
    b.ok(&["boards", "create", "ops"]);
    b.ok(&["--board", "ops", "create", "On ops"]);
    let text = b.ok(&["--board", "ops", "top", "--once", "--minutes", "5"]);
    assert!(text.contains("board ops"), "{text}");
    assert!(text.contains("ready 1"), "{text}");
    assert!(text.contains("last 5 min: 0 total"), "{text}");
    let out = b.run(&["top", "--once", "--minutes", "0"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
}

#[test]
fn the_live_view_needs_a_terminal() {
    let b = Sandbox::new();
    b.ok(&["init"]);
    let out = b.run(&["top"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("kanban top --once"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn the_live_view_redraws_on_change_and_quits_on_q() {
    let b = Sandbox::new();
    b.ok(&["init"]);
    let screen = b.path("screen.out");
    // util-linux `script` gives the view a pseudo-terminal of its own.
    let inner = format!("stty cols 100 rows 30; exec '{}' top", b.bin().display());
    let mut child = b
        .command("script")
        .args(["-qfec", &inner, "/dev/null"])
        .env("TERM", "xterm")
        .stdin(Stdio::piped())
        .stdout(std::fs::File::create(&screen).unwrap())
        .stderr(Stdio::piped())
        .spawn()
        .expect("script(1) from util-linux");
    let shown = |word: &str| {
        std::fs::read(&screen)
            .map(|s| String::from_utf8_lossy(&s).contains(word))
            .unwrap_or(false)
    };
    expect_until("the first frame", || shown("Recent"));
    b.create("Refreshtest", &[]);
    expect_until("the new task on screen", || shown("Refreshtest"));
    child.stdin.as_mut().unwrap().write_all(b"q").unwrap();
    let quit = wait_until(QUIT_WAIT, || child.try_wait().unwrap().is_some());
    if !quit {
        let _ = child.kill();
    }
    assert!(quit, "still running after q");
    assert!(child.wait().unwrap().success());
    // The terminal is given back: the alternate screen is left.
    assert!(shown("\x1b[?1049l"), "alternate screen not left");
}
