//! Worker logs are bounded per run (issue 9, item 9): a worker writing
//! 20 MB under `kanban dispatch` leaves a log within the cap that keeps the
//! run's head and latest output around a visible cut note, and `kanban log`
//! prints a bounded tail by default.

use kanban_testkit::{Sandbox, expect_until};

/// The default per-run cap (`kanban.worker_log_max_run_bytes`).
const DEFAULT_CAP: u64 = 8 * 1024 * 1024;
/// What `kanban log` prints without `--tail` / `--all`.
const DEFAULT_TAIL: u64 = 256 * 1024;
/// Bytes the chatty worker writes between its two markers.
const FILLER_BYTES: u64 = 20_000_000;

fn chatty(home: &mut Sandbox) {
    home.profile(
        "chatty",
        &format!(
            "echo HEAD-MARKER\nyes 'filler line of a chatty worker 0123456789' | head -c {FILLER_BYTES}\n\
             echo TAIL-MARKER >&2\n$K complete --summary done"
        ),
    );
}

/// Run one chatty task to the end and return its log.
fn run_chatty(home: &Sandbox) -> (String, Vec<u8>) {
    let id = home.create("chatty", &["--assignee", "chatty"]);
    home.dispatch();
    let log = home.path(&format!("kanban/logs/{id}.log"));
    expect_until("the worker finished writing its log", || {
        std::fs::read(&log).is_ok_and(|b| b.windows(b"Completed".len()).any(|w| w == b"Completed"))
    });
    // The wrapper copies the last bytes and exits right after the worker.
    expect_until("the task is done", || home.status(&id) == "done");
    std::thread::sleep(std::time::Duration::from_millis(300));
    (id, std::fs::read(&log).unwrap())
}

fn contains(hay: &[u8], needle: &str) -> bool {
    hay.windows(needle.len()).any(|w| w == needle.as_bytes())
}

#[test]
fn a_twenty_megabyte_run_leaves_a_capped_log_with_head_tail_and_note() {
    let mut home = Sandbox::new();
    chatty(&mut home);
    let (id, log) = run_chatty(&home);
    assert!(
        log.len() as u64 <= DEFAULT_CAP,
        "log is {} bytes, cap {DEFAULT_CAP}",
        log.len()
    );
    assert!(log.starts_with(b"HEAD-MARKER\nfiller line"), "head kept");
    assert!(contains(&log, "TAIL-MARKER\n"), "latest output kept");
    assert!(
        contains(&log, "bytes of this run's output were cut here"),
        "cut noted"
    );

    // `kanban log` prints a bounded tail by default, the whole log on --all.
    let out = home.run(&["log", &id]);
    assert!(out.status.success());
    assert!(
        out.stdout.len() as u64 <= DEFAULT_TAIL + 1,
        "kanban log printed {} bytes",
        out.stdout.len()
    );
    assert!(contains(&out.stdout, "TAIL-MARKER"));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--all"), "says how to see more: {err}");
    let all = home.run(&["log", &id, "--all"]);
    assert!(all.status.success());
    assert!(all.stdout.len() >= log.len() && all.stdout.starts_with(b"HEAD-MARKER"));
}

#[test]
fn the_cap_is_configurable() {
    let mut home = Sandbox::new();
    home.kanban_config("  worker_log_max_run_bytes: 100000\n");
    chatty(&mut home);
    let (_, log) = run_chatty(&home);
    assert!(log.len() <= 100_000, "log is {} bytes", log.len());
    assert!(log.starts_with(b"HEAD-MARKER\n"));
    assert!(contains(&log, "TAIL-MARKER\n"));
    assert!(contains(&log, "worker_log_max_run_bytes = 100000"));
}
