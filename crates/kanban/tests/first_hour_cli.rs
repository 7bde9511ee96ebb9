//! Issue 13, what a new user meets in the first hour (items 3, 5, 7, 8b, 8c):
//! - 3: `kanban init` and docs/workers.md tell the truth (pick-up at once,
//!   the failure limit of kanban-core);
//! - 5: workers find `kanban` (first on `PATH`, and `KANBAN_BIN`) even when
//!   the dispatcher's own `PATH` lacks it;
//! - 7: `show` and `runs` number the same runs the same way (the run id);
//! - 8b: the `stats` status rows align;
//! - 8c: runtime errors share one prefix, `kanban`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use kanban_testkit::{Sandbox, stderr, wait_until};

/// A `PATH` holding the system tools but not the built `kanban`.
const SYSTEM_PATH: &str = "/usr/bin:/bin";
/// How long a gateway's worker may take to finish its task.
const WORKER_WAIT: Duration = Duration::from_secs(30);

fn repo_file(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(rel)
}

/// `text` with every run of whitespace made one space.
fn flat(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[test]
fn init_says_work_is_picked_up_at_once_not_on_a_tick() {
    let b = Sandbox::new();
    let out = flat(&b.ok(&["init"]));
    assert!(!out.contains("ticks every"), "{out}");
    assert!(out.contains("picks ready tasks up at once"), "{out}");
}

/// The number written just before `after` in `doc` (a word or digits).
fn number_before(doc: &str, after: &str) -> i64 {
    let at = doc
        .find(after)
        .unwrap_or_else(|| panic!("docs/workers.md does not say `... {after}`"));
    let word = doc[..at].split_whitespace().last().unwrap_or_default();
    let word = word.trim_matches(|c: char| !c.is_ascii_alphanumeric());
    match word.to_ascii_lowercase().as_str() {
        "one" => 1,
        "two" => 2,
        "three" => 3,
        "four" => 4,
        "five" => 5,
        w => w.parse().unwrap_or_else(|_| panic!("not a number: {w:?}")),
    }
}

#[test]
fn workers_doc_states_the_limits_of_kanban_core() {
    use kanban_core::defaults::{FAILURE_LIMIT, PROTOCOL_VIOLATION_STREAK_LIMIT};
    let doc = flat(&std::fs::read_to_string(repo_file("docs/workers.md")).unwrap());
    assert_eq!(
        number_before(&doc, "failures in a row block the task"),
        FAILURE_LIMIT
    );
    let default = "failures in a row block the task (`kanban.failure_limit`, default ";
    let at = doc.find(default).expect("the failure_limit default") + default.len();
    let digits: String = doc[at..].chars().take_while(char::is_ascii_digit).collect();
    assert_eq!(digits.parse::<i64>().unwrap(), FAILURE_LIMIT);
    assert_eq!(
        number_before(&doc, "violations in a row block it"),
        PROTOCOL_VIOLATION_STREAK_LIMIT
    );
}

/// A sandbox whose commands (so the dispatcher, so its workers) run with
/// [`SYSTEM_PATH`], and two profiles: `bare` runs `kanban complete` by its
/// bare name, `env` records `$KANBAN_BIN` and completes through it.
fn without_kanban_on_path() -> Sandbox {
    for dir in SYSTEM_PATH.split(':') {
        assert!(
            !Path::new(dir).join("kanban").exists(),
            "{dir}/kanban exists: this test needs a PATH without kanban"
        );
    }
    let mut b = Sandbox::new();
    b.env.insert("PATH".into(), SYSTEM_PATH.into());
    b.profile_argv(
        "bare",
        ["kanban", "complete", "--summary", "found on PATH"]
            .map(String::from)
            .to_vec(),
    );
    std::fs::create_dir_all(b.out("")).unwrap();
    let record = b.out("kanban-bin");
    b.profile_argv(
        "env",
        vec![
            "/bin/sh".into(),
            "-c".into(),
            format!(
                "printf '%s' \"$KANBAN_BIN\" > '{}' && \"$KANBAN_BIN\" complete --summary via-env",
                record.display()
            ),
        ],
    );
    b
}

#[test]
fn dispatch_gives_workers_its_own_kanban_on_path_and_as_kanban_bin() {
    let b = without_kanban_on_path();
    let bare = b.create("bare name", &["--assignee", "bare"]);
    let env = b.create("through KANBAN_BIN", &["--assignee", "env"]);
    b.settle(&[&bare, &env], &["done", "blocked"]);
    assert_eq!(b.status(&bare), "done", "{}", b.task(&bare));
    assert_eq!(b.status(&env), "done", "{}", b.task(&env));
    let seen = std::fs::read_to_string(b.out("kanban-bin")).unwrap();
    assert_eq!(
        std::fs::canonicalize(seen).unwrap(),
        std::fs::canonicalize(b.bin()).unwrap()
    );
}

#[test]
fn the_gateway_gives_workers_its_own_kanban_on_path() {
    let b = without_kanban_on_path();
    let _gw = b.gateway();
    let t = b.create("bare name", &["--assignee", "bare"]);
    let finished = wait_until(WORKER_WAIT, || {
        matches!(b.status(&t).as_str(), "done" | "blocked")
    });
    assert!(finished, "{}", b.task(&t));
    assert_eq!(b.status(&t), "done", "{}", b.task(&t));
}

/// Numbers of the `Runs (n):` section of `show` (`  #<n> ...`).
fn show_run_numbers(out: &str) -> Vec<i64> {
    out.lines()
        .skip_while(|l| !l.starts_with("Runs ("))
        .filter_map(|l| l.trim_start().strip_prefix('#'))
        .map(|rest| rest.split_whitespace().next().unwrap().parse().unwrap())
        .collect()
}

/// Numbers in the first column of the `runs` table.
fn runs_table_numbers(out: &str) -> Vec<i64> {
    out.lines()
        .skip(1)
        .filter_map(|l| l.split_whitespace().next()?.parse().ok())
        .collect()
}

#[test]
fn show_and_runs_number_the_same_runs_alike() {
    let b = Sandbox::new();
    // Another task's run first, so this task's run ids are not 1, 2.
    let other = b.claimed("other", "coder");
    b.ok(&["complete", &other]);
    let t = b.claimed("retried", "coder");
    b.ok(&["reclaim", &t]);
    b.ok(&["claim", &t]);
    b.ok(&["complete", &t, "--summary", "second try"]);
    let ids: Vec<i64> = b
        .json(&["runs", &t, "--json"])
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_i64().unwrap())
        .collect();
    assert_eq!(ids, [2, 3]);
    let show = b.ok(&["show", &t]);
    assert_eq!(show_run_numbers(&show), ids, "{show}");
    let runs = b.ok(&["runs", &t]);
    assert_eq!(runs_table_numbers(&runs), ids, "{runs}");
}

#[test]
fn stats_status_rows_align() {
    let b = Sandbox::new();
    b.create("a", &[]);
    let out = b.ok(&["stats"]);
    let rows: Vec<&str> = out.lines().skip(1).take_while(|l| !l.is_empty()).collect();
    assert_eq!(rows.len(), 7, "{out}");
    assert!(rows.iter().any(|r| r.trim_start().starts_with("scheduled")));
    let columns: Vec<usize> = rows.iter().map(|r| r.rfind(' ').unwrap() + 1).collect();
    assert!(
        columns.iter().all(|c| *c == columns[0]),
        "counts start at columns {columns:?}:\n{out}"
    );
    // The reference's rows other than `scheduled` are kept as they were.
    assert!(
        out.starts_with("By status:\n  triage    0\n  todo      0\n"),
        "{out}"
    );
}

/// Run a verb that must fail; every line it writes to stderr.
fn failing(b: &Sandbox, args: &[&str]) -> Vec<String> {
    let out = b.run(args);
    assert!(!out.status.success(), "kanban {args:?} succeeded");
    let err = stderr(&out);
    assert!(!err.trim().is_empty(), "kanban {args:?}: nothing on stderr");
    err.lines().map(str::to_string).collect()
}

#[test]
fn runtime_errors_share_the_kanban_prefix() {
    let b = Sandbox::new();
    let todo = b.create("not running", &["--parent", &b.create("parent", &[])]);
    let other = b.create("other", &[]);
    let cases: Vec<Vec<&str>> = vec![
        vec!["show", "t_00000000"],
        vec!["complete", "t_00000000"],
        vec!["block", "t_00000000", "why"],
        vec!["archive", "t_00000000"],
        vec!["reclaim", &todo],
        vec!["heartbeat", &todo],
        vec!["unlink", &todo, &other],
        vec!["--board", "ghost", "list"],
        vec!["create", "x", "--max-runtime", "soon"],
        vec!["gateway", "stop"],
    ];
    for args in &cases {
        for line in failing(&b, args) {
            assert!(
                line.starts_with("kanban: "),
                "kanban {args:?}: {line:?} lacks the `kanban: ` prefix"
            );
        }
    }
    // Board verbs keep the reference's `kanban boards <verb>: ` form.
    for line in failing(&b, &["boards", "create", "Bad Slug!"]) {
        assert!(line.starts_with("kanban boards create: "), "{line:?}");
    }
    // Command-line syntax errors keep clap's own format.
    let usage = failing(&b, &["list", "--no-such-flag"]);
    assert!(usage[0].starts_with("error: "), "{usage:?}");
}
