//! `kanban doctor`: each check finds the problem it is for, says what to
//! do, and the exit code and `--json` shape tell scripts the same.

use std::os::unix::fs::PermissionsExt;

use kanban_testkit::{Sandbox, stderr, stdout};
use serde_json::Value;

const CHECKS: [&str; 10] = [
    "root",
    "permissions",
    "config",
    "auxiliary",
    "database",
    "profiles",
    "gateway",
    "stale_locks",
    "boards",
    "hermes_gateway",
];

/// `doctor --json`: the exit code and the report.
fn doctor(b: &Sandbox, env: &[(&str, &str)]) -> (i32, Value) {
    let out = b.run_env(&["doctor", "--json"], env);
    let v: Value = serde_json::from_str(&stdout(&out))
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}\n{}", stdout(&out), stderr(&out)));
    (out.status.code().unwrap_or(-1), v)
}

fn check<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no {name} check: {report:#}"))
}

fn status(report: &Value, name: &str) -> String {
    check(report, name)["status"].as_str().unwrap().to_string()
}

fn text(report: &Value, name: &str, field: &str) -> String {
    check(report, name)[field]
        .as_str()
        .unwrap_or("")
        .to_string()
}

/// A root with a board and one worker profile whose program exists.
fn healthy() -> Sandbox {
    let mut b = Sandbox::new();
    b.profile("coder", "exit 0");
    b.ok(&["init"]);
    // Assigned to a person: no worker runs for it.
    b.create("Review the plan", &["--assignee", "alice"]);
    b
}

#[test]
fn a_missing_root_fails_and_says_to_run_init() {
    let b = Sandbox::new();
    let missing = b.path("nowhere");
    let (code, v) = doctor(&b, &[("HERMES_HOME", missing.to_str().unwrap())]);
    assert_eq!(code, 1, "{v:#}");
    assert_eq!(v["ok"], false);
    assert_eq!(status(&v, "root"), "fail");
    assert!(text(&v, "root", "fix").contains("kanban init"), "{v:#}");
    assert!(!missing.exists(), "doctor must not create the root");
}

#[test]
fn a_healthy_root_with_a_dispatching_gateway_is_all_ok() {
    let b = healthy();
    let (code, v) = doctor(&b, &[]);
    assert_eq!(code, 1, "no gateway yet: {v:#}");
    assert_eq!(status(&v, "gateway"), "warn");
    assert!(
        text(&v, "gateway", "fix").contains("kanban gateway start"),
        "{v:#}"
    );

    let _gw = b.gateway();
    let (code, v) = doctor(&b, &[]);
    let names: Vec<&str> = v["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, CHECKS);
    for c in v["checks"].as_array().unwrap() {
        assert_eq!(c["status"], "ok", "{c:#}");
        assert!(c["fix"].is_null(), "{c:#}");
        let keys: Vec<&String> = c.as_object().unwrap().keys().collect();
        assert_eq!(keys, ["name", "status", "detail", "fix"]);
    }
    assert_eq!((code, &v["ok"]), (0, &Value::Bool(true)), "{v:#}");
    assert!(
        text(&v, "gateway", "detail").contains("dispatcher on"),
        "{v:#}"
    );
    assert!(text(&v, "profiles", "detail").contains("coder"), "{v:#}");
    assert!(
        text(&v, "profiles", "detail").contains("alice (1)"),
        "{v:#}"
    );
    assert!(
        text(&v, "boards", "detail").contains("default: opens and reads, 1 task"),
        "{v:#}"
    );

    let out = b.run(&["doctor"]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    assert!(
        stdout(&out).contains("All 10 checks passed."),
        "{}",
        stdout(&out)
    );
}

#[test]
fn an_invalid_config_fails_and_names_the_file() {
    let b = healthy();
    b.write_config("kanban:\n  profiles:\n    coder:\n      command: [\"{nope}\"]\n");
    let (code, v) = doctor(&b, &[]);
    assert_eq!(code, 1);
    assert_eq!(status(&v, "config"), "fail");
    assert!(
        text(&v, "config", "detail").contains("unknown placeholder"),
        "{v:#}"
    );
    assert!(text(&v, "config", "fix").contains("config.yaml"), "{v:#}");
    assert_eq!(status(&v, "profiles"), "warn");

    b.write_config("kanban:\n  profiles: [oops\n");
    let (_, v) = doctor(&b, &[]);
    assert_eq!(status(&v, "config"), "fail");
    assert!(text(&v, "config", "fix").contains("at line"), "{v:#}");
}

#[test]
fn a_worker_program_that_cannot_be_found_fails() {
    let mut b = healthy();
    b.profile_argv("ghost", vec!["no-such-agent-cli".into(), "{prompt}".into()]);
    b.profile_argv("local", vec!["./build-report".into()]);
    let (code, v) = doctor(&b, &[]);
    assert_eq!(code, 1);
    assert_eq!(status(&v, "profiles"), "fail");
    let detail = text(&v, "profiles", "detail");
    assert!(
        detail.contains("ghost: `no-such-agent-cli` is not on PATH"),
        "{detail}"
    );
    assert!(
        detail.contains("local: `./build-report` is resolved in each task's workspace"),
        "{detail}"
    );
    let fix = text(&v, "profiles", "fix");
    assert!(fix.contains("kanban.profiles.ghost.command[0]"), "{fix}");
    assert!(fix.contains("kanban.profiles.local.command[0]"), "{fix}");
}

#[test]
fn files_others_can_read_are_reported_with_the_chmod_to_run() {
    let b = healthy();
    let db = b.path("kanban.db");
    let logs = b.path("kanban/logs");
    std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o644)).unwrap();
    std::fs::set_permissions(&logs, std::fs::Permissions::from_mode(0o755)).unwrap();
    let (code, v) = doctor(&b, &[]);
    assert_eq!(code, 1);
    assert_eq!(status(&v, "permissions"), "warn");
    let detail = text(&v, "permissions", "detail");
    assert!(
        detail.contains(&format!("{} (0644)", db.display())),
        "{detail}"
    );
    assert!(
        detail.contains(&format!("{} (0755)", logs.display())),
        "{detail}"
    );
    let fix = text(&v, "permissions", "fix");
    assert!(fix.starts_with("chmod go-rwx "), "{fix}");
    // Running the fix makes the check pass.
    let ran = std::process::Command::new("sh")
        .arg("-c")
        .arg(&fix)
        .output()
        .unwrap();
    assert!(ran.status.success(), "{}", stderr(&ran));
    let (_, v) = doctor(&b, &[]);
    assert_eq!(status(&v, "permissions"), "ok", "{v:#}");
}

#[test]
fn pid_files_and_claims_that_outlived_their_process_are_stale() {
    let b = healthy();
    let dead = {
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        pid
    };
    std::fs::write(b.path("kanban/gateway.pid"), format!("{dead}\n")).unwrap();
    let id = b.create("Held by a dead worker", &["--assignee", "alice"]);
    b.ok(&["claim", &id]);
    b.db()
        .execute(
            "UPDATE tasks SET worker_pid = ?1 WHERE id = ?2",
            rusqlite::params![dead, id],
        )
        .unwrap();
    let (code, v) = doctor(&b, &[]);
    assert_eq!(code, 1);
    assert_eq!(status(&v, "stale_locks"), "warn");
    let detail = text(&v, "stale_locks", "detail");
    assert!(
        detail.contains(&format!("pid {dead}, no longer running")),
        "{detail}"
    );
    assert!(
        detail.contains(&format!(
            "1 running task(s) whose worker process is gone: {id} (pid {dead})"
        )),
        "{detail}"
    );
    let fix = text(&v, "stale_locks", "fix");
    assert!(fix.contains("kanban gateway stop"), "{fix}");
    assert!(fix.contains("kanban dispatch"), "{fix}");

    // The fix it names removes the pid file.
    let _ = b.run(&["gateway", "stop"]);
    assert!(!b.path("kanban/gateway.pid").exists());
}

#[test]
fn a_foreign_gateway_holding_the_lock_is_reported_as_hermes() {
    let b = healthy();
    // What the Python gateway does for its lifetime: an exclusive flock
    // on <root>/kanban/.dispatcher.lock, and no pid file of ours.
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(b.path("kanban/.dispatcher.lock"))
        .unwrap();
    lock.try_lock().unwrap();
    let (code, v) = doctor(&b, &[]);
    assert_eq!(code, 1);
    assert_eq!(status(&v, "hermes_gateway"), "warn");
    let detail = text(&v, "hermes_gateway", "detail");
    assert!(
        detail.contains(&format!("pid {}", std::process::id())),
        "{detail}"
    );
    assert!(
        text(&v, "hermes_gateway", "fix").contains("one gateway per root"),
        "{v:#}"
    );
    assert!(
        text(&v, "gateway", "detail").contains("Hermes gateway"),
        "{v:#}"
    );
    lock.unlock().unwrap();
    let (_, v) = doctor(&b, &[]);
    assert_eq!(status(&v, "hermes_gateway"), "ok", "{v:#}");
}

#[test]
fn a_damaged_board_fails_and_the_others_still_open() {
    let b = healthy();
    b.ok(&["boards", "create", "broken"]);
    let db = b.path("kanban/boards/broken/kanban.db");
    std::fs::write(&db, b"this is not a SQLite database, not at all, no").unwrap();
    let (code, v) = doctor(&b, &[]);
    assert_eq!(code, 1);
    assert_eq!(status(&v, "boards"), "fail");
    let detail = text(&v, "boards", "detail");
    assert!(detail.contains("default: opens and reads"), "{detail}");
    assert!(detail.contains("broken: "), "{detail}");
    assert!(
        text(&v, "boards", "fix").contains("kanban boards rm broken"),
        "{v:#}"
    );
}

#[test]
fn the_human_report_prints_a_fix_under_each_problem() {
    let b = healthy();
    let out = b.run(&["doctor"]);
    assert_eq!(out.status.code(), Some(1));
    let text = stdout(&out);
    assert!(
        text.starts_with(&format!("kanban doctor: {}", b.root().display())),
        "{text}"
    );
    let lines: Vec<&str> = text.lines().collect();
    let at = lines
        .iter()
        .position(|l| l.starts_with("warn  gateway"))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(
        lines[at + 1]
            .trim_start()
            .starts_with("fix: `kanban gateway start`"),
        "{text}"
    );
    assert!(
        lines.iter().any(|l| l.starts_with("ok    boards")),
        "{text}"
    );
    assert!(
        text.contains("1 check(s) need attention: 0 failed, 1 warning(s)."),
        "{text}"
    );
}

#[test]
fn on_postgres_the_connection_is_checked() {
    let Some(pg) = kanban_testkit::postgres::cluster() else {
        return;
    };
    let url = pg.url(&pg.unique_database("kb_doctor"));
    let mut b = Sandbox::new();
    b.env.insert("HERMES_KANBAN_DATABASE_URL".into(), url);
    b.ok(&["init"]);
    b.create("On the server", &[]);
    let (_, v) = doctor(&b, &[]);
    assert_eq!(status(&v, "database"), "ok", "{v:#}");
    assert!(
        text(&v, "database", "detail").contains("PostgreSQL"),
        "{v:#}"
    );
    assert!(
        text(&v, "database", "detail").contains("reachable"),
        "{v:#}"
    );
    assert_eq!(status(&v, "boards"), "ok", "{v:#}");
    assert!(text(&v, "boards", "detail").contains("1 task"), "{v:#}");
    assert_eq!(status(&v, "permissions"), "ok", "{v:#}");

    let (code, v) = doctor(
        &b,
        &[(
            "HERMES_KANBAN_DATABASE_URL",
            "postgresql://kanban:hunter2@127.0.0.1:1/nothing",
        )],
    );
    assert_eq!(code, 1);
    assert_eq!(status(&v, "database"), "fail", "{v:#}");
    assert!(
        text(&v, "database", "fix").contains("HERMES_KANBAN_DATABASE_URL"),
        "{v:#}"
    );
    assert!(!v.to_string().contains("hunter2"), "password leaked: {v:#}");
    let (code, v) = doctor(&b, &[("HERMES_KANBAN_DATABASE_URL", "mysql://x/y")]);
    assert_eq!(code, 1);
    assert_eq!(status(&v, "database"), "fail", "{v:#}");
    assert_eq!(status(&v, "boards"), "fail", "{v:#}");
}

#[test]
fn auxiliary_models_are_checked_entry_by_entry() {
    let b = healthy();
    // Nothing configured: fine, and the report says what is off.
    let (_, v) = doctor(&b, &[]);
    assert_eq!(status(&v, "auxiliary"), "ok", "{v:#}");
    assert!(
        text(&v, "auxiliary", "detail").contains("no auxiliary model configured"),
        "{v:#}"
    );
    // A default endpoint answers every task; a bad URL, a missing key and
    // an unknown program are each named with their fix. Hermes' own
    // entries (`vision`) are not kanban's business.
    b.write_config(
        "auxiliary:\n  default:\n    base_url: localhost:11434\n    model: m\n    api_key_env: KANBAN_TEST_NO_SUCH_KEY\n  goal_judge:\n    command: [no-such-model-cli, '{model}']\n    model: m\n  vision:\n    base_url: nonsense\n",
    );
    let (code, v) = doctor(&b, &[]);
    assert_eq!(code, 1);
    assert_eq!(status(&v, "auxiliary"), "fail", "{v:#}");
    let detail = text(&v, "auxiliary", "detail");
    assert!(detail.contains("auxiliary.default.base_url"), "{detail}");
    assert!(
        detail.contains("KANBAN_TEST_NO_SUCH_KEY is not set"),
        "{detail}"
    );
    assert!(
        detail.contains("`no-such-model-cli` is not on PATH"),
        "{detail}"
    );
    assert!(
        detail.contains("a model answers triage_specifier"),
        "{detail}"
    );
    assert!(!detail.contains("vision"), "{detail}");
    assert!(
        text(&v, "auxiliary", "fix").contains("export KANBAN_TEST_NO_SUCH_KEY"),
        "{v:#}"
    );
    // Fixed: all ok.
    b.write_config(
        "auxiliary:\n  default:\n    base_url: http://127.0.0.1:9/v1\n    model: m\n    api_key_env: KANBAN_TEST_KEY\n  goal_judge:\n    command: [sh, -c, cat]\n",
    );
    let (_, v) = doctor(&b, &[("KANBAN_TEST_KEY", "k")]);
    assert_eq!(status(&v, "auxiliary"), "ok", "{v:#}");
}
