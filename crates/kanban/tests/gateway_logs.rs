//! The gateway log (issue 13 item 9): one line per dispatch pass that did
//! something (claimed, spawned, reaped, ...), nothing for idle passes, a
//! start-up and a stop line; `--log-format json` (also passed through by
//! `gateway start`) gives one JSON object per line; the level comes from
//! `RUST_LOG`, else `kanban.gateway.log_level`; bad values are refused
//! (exit 2) naming the flag or the key. Black-box: real gateways and
//! workers; no timing is asserted.

use std::time::Duration;

use kanban_testkit::gateway::{GatewayChild, SETTLE_WAIT};
use kanban_testkit::{Sandbox, output_within, stderr, stdout, wait_for, wait_until};
use serde_json::Value;

/// A worker that completes its task at once.
const COMPLETE_NOW: &str = r#""$KANBAN" complete "$TASK" --summary ok >/dev/null"#;
/// The message of a pass line.
const PASS: &str = "kanban dispatcher: pass";
/// How long a task may take from ready to done (debug build, 2 cores).
const DONE_WAIT: Duration = Duration::from_secs(60);
/// How long an idle gateway (ticking every second) is watched for lines
/// that must not come.
const IDLE_WATCH: Duration = Duration::from_secs(3);
/// Ticks every second: idle passes keep happening during the test.
const TICK_EVERY_SECOND: &str = "  dispatch_interval_seconds: 1\n";

/// How long a command that must refuse at once may take (it must not
/// serve instead).
const REFUSE_WAIT: Duration = Duration::from_secs(30);

/// Run `kanban args` on `home`, killed if it does not end in time.
fn run_bounded(home: &Sandbox, args: &[&str]) -> std::process::Output {
    output_within(&mut home.kanban(args), REFUSE_WAIT)
}

/// A root with a worker profile `w` whose worker completes at once, plus
/// `extra` lines under `kanban:`.
fn root_with_worker(extra: &str) -> Sandbox {
    let home = Sandbox::new();
    let w = home.traced_worker("w", COMPLETE_NOW);
    home.write_config(&home.config_with_worker("w", &w, extra));
    home
}

/// Create a task for `w` and wait until it is done.
fn run_one_task(home: &Sandbox) -> String {
    let id = home.create("logged work", &["--assignee", "w"]);
    assert!(
        wait_until(DONE_WAIT, || home.status(&id) == "done"),
        "task {id} not done: {}",
        home.status(&id)
    );
    id
}

fn pass_lines(log: &str) -> Vec<String> {
    log.lines()
        .filter(|l| l.contains(PASS))
        .map(str::to_string)
        .collect()
}

/// Wait until a pass line containing every part of `parts` is logged.
fn wait_pass_line(gw: &GatewayChild, parts: &[&str]) -> String {
    wait_for(SETTLE_WAIT, || {
        pass_lines(&gw.log_text())
            .into_iter()
            .find(|l| parts.iter().all(|p| l.contains(p)))
    })
    .unwrap_or_else(|| panic!("no pass line with {parts:?}:\n{}", gw.log_text()))
}

#[test]
fn busy_passes_are_one_line_each_and_idle_passes_are_silent() {
    let home = root_with_worker(TICK_EVERY_SECOND);
    let gw = home.gateway();
    let id = run_one_task(&home);

    let claimed = wait_pass_line(&gw, &["board=default", "claimed=1", "spawned=1"]);
    for part in [" INFO ", "spawn_failed=0", "duration_ms="] {
        assert!(claimed.contains(part), "{part}: {claimed}");
    }
    // The worker's exit is collected by a later pass.
    let reaped = wait_pass_line(&gw, &["board=default", "reaped=1"]);
    assert!(reaped.contains("claimed=0"), "{reaped}");
    let log = gw.log_text();
    assert!(
        !log.contains("kanban_server::"),
        "no targets in text lines:\n{log}"
    );
    let started = log
        .lines()
        .find(|l| l.contains("kanban gateway: started"))
        .unwrap_or_else(|| panic!("no start-up line:\n{log}"));
    for part in [
        gw.url.as_str(),
        "boards=default",
        "dispatching=true",
        "root=",
    ] {
        assert!(started.contains(part), "{part}: {started}");
    }
    // Still the plain banner on stdout that scripts read.
    assert!(gw.banner.contains("listening on"), "{}", gw.banner);

    // Passes keep running every second, but they do nothing: no line.
    let before = pass_lines(&gw.log_text()).len();
    std::thread::sleep(IDLE_WATCH);
    let after = pass_lines(&gw.log_text());
    assert_eq!(
        after.len(),
        before,
        "idle passes logged:\n{}",
        after.join("\n")
    );
    assert!(!gw.log_text().contains("DEBUG"), "{}", gw.log_text());
    assert_eq!(home.status(&id), "done");
}

#[test]
fn gateway_start_writes_json_lines_to_its_log_file() {
    let home = root_with_worker("");
    let out = home.run(&["gateway", "start", "--port", "0", "--log-format", "json"]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    let log_file = home.path("kanban/logs/gateway.log");
    let check = || {
        run_one_task(&home);
        let pass = wait_for(SETTLE_WAIT, || {
            json_lines(&log_file)
                .into_iter()
                .find(|v| v["message"] == PASS && v["claimed"] == 1)
        })
        .unwrap_or_else(|| panic!("no JSON pass line:\n{}", read(&log_file)));
        assert_eq!(pass["level"], "INFO", "{pass}");
        assert_eq!(pass["board"], "default", "{pass}");
        assert_eq!(pass["spawned"], 1, "{pass}");
        assert!(pass["duration_ms"].is_u64(), "{pass}");
        assert!(pass["timestamp"].is_string(), "{pass}");
        let started = json_lines(&log_file)
            .into_iter()
            .find(|v| v["message"] == "kanban gateway: started")
            .unwrap_or_else(|| panic!("no start-up line:\n{}", read(&log_file)));
        assert!(
            started["url"].as_str().unwrap().starts_with("http://"),
            "{started}"
        );
        assert_eq!(started["dispatching"], true, "{started}");
    };
    let result = std::panic::catch_unwind(check);
    home.ok(&["gateway", "stop"]);
    if let Err(e) = result {
        std::panic::resume_unwind(e);
    }
    let text = read(&log_file);
    // Every line is JSON but the plain banner the gateway prints on stdout.
    for line in text.lines().filter(|l| !l.contains("listening on")) {
        let v: Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}\n{text}"));
        assert!(v["level"].is_string() && v["message"].is_string(), "{line}");
    }
    assert!(
        json_lines(&log_file)
            .iter()
            .any(|v| v["message"] == "kanban gateway: stopped"),
        "no stop line:\n{text}"
    );
}

fn read(path: &std::path::Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

/// The lines of `path` that are JSON objects.
fn json_lines(path: &std::path::Path) -> Vec<Value> {
    read(path)
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(Value::is_object)
        .collect()
}

#[test]
fn rust_log_and_the_config_set_the_level() {
    // The config asks for debug: idle passes (every second) show.
    let home = root_with_worker(&format!(
        "{TICK_EVERY_SECOND}  gateway: {{log_level: debug}}\n"
    ));
    let gw = home.gateway();
    let debug = wait_for(SETTLE_WAIT, || {
        let log = gw.log_text();
        log.lines()
            .find(|l| l.contains("DEBUG") && l.contains("kanban dispatcher: idle pass"))
            .map(str::to_string)
    });
    assert!(debug.is_some(), "no debug line:\n{}", gw.log_text());
    drop(gw);

    // RUST_LOG wins over the config: warn hides the pass lines.
    let home = root_with_worker(&format!(
        "{TICK_EVERY_SECOND}  gateway: {{log_level: debug}}\n"
    ));
    let gw = home.gateway_with(&[("RUST_LOG", "warn")], &[]);
    run_one_task(&home);
    std::thread::sleep(IDLE_WATCH);
    let log = gw.log_text();
    assert!(pass_lines(&log).is_empty(), "pass lines at warn:\n{log}");
    assert!(!log.contains(" INFO ") && !log.contains("DEBUG"), "{log}");
    drop(gw);

    // A RUST_LOG that is no filter is reported, not fatal.
    let home = root_with_worker("");
    let gw = home.gateway_with(&[("RUST_LOG", "=[nope")], &[]);
    let log = gw.log_text();
    assert!(
        log.lines()
            .any(|l| l.contains("WARN") && l.contains("RUST_LOG")),
        "{log}"
    );
    run_one_task(&home);
    wait_pass_line(&gw, &["claimed=1"]);
}

#[test]
fn bad_log_formats_and_levels_are_refused() {
    let home = Sandbox::new();
    for verb in ["run", "start"] {
        let out = run_bounded(
            &home,
            &["gateway", verb, "--port", "0", "--log-format", "xml"],
        );
        assert_eq!(out.status.code(), Some(2), "{verb}: {}", stderr(&out));
        let err = stderr(&out);
        assert!(
            err.contains("--log-format") && err.contains("text or json"),
            "{err}"
        );
    }
    let help = home.ok(&["gateway", "run", "--help"]);
    assert!(
        help.contains("--log-format") && help.contains("RUST_LOG"),
        "{help}"
    );

    let config = home.path("config.yaml").display().to_string();
    for (yaml, key) in [
        (
            "  gateway: {log_format: yaml}\n",
            "kanban.gateway.log_format",
        ),
        ("  gateway: {log_level: loud}\n", "kanban.gateway.log_level"),
    ] {
        home.write_config(&format!("kanban:\n{yaml}"));
        for verb in ["run", "start"] {
            let out = run_bounded(&home, &["gateway", verb, "--port", "0"]);
            let err = stderr(&out);
            assert_eq!(out.status.code(), Some(2), "{verb} {yaml}: {err}");
            assert!(err.contains(key) && err.contains(&config), "{verb}: {err}");
        }
        // Only the gateway refuses it: other verbs keep the config.
        home.ok(&["list"]);
    }
    assert_eq!(home.run(&["gateway", "status"]).status.code(), Some(1));
}

#[test]
fn a_broken_board_is_warned_about_once_not_on_every_rescan() {
    let home = Sandbox::new();
    home.ok(&["boards", "create", "side"]);
    std::fs::write(home.path("kanban/boards/side/kanban.db"), "not a database").unwrap();
    let gw = home.gateway();
    let warnings = || {
        gw.log_text()
            .lines()
            .filter(|l| l.contains("WARN") && l.contains("side"))
            .count()
    };
    let unhealthy = wait_for(SETTLE_WAIT, || {
        gw.log_text()
            .lines()
            .any(|l| l.contains("board 'side' is unhealthy"))
            .then_some(())
    });
    assert!(unhealthy.is_some(), "{}", gw.log_text());
    let first = warnings();
    // The dispatcher looks at the catalogue every second meanwhile.
    std::thread::sleep(IDLE_WATCH);
    assert_eq!(warnings(), first, "warned again:\n{}", gw.log_text());
}
