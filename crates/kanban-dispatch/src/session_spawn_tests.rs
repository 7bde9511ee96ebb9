use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::ExitStatusExt;
use std::process::ExitStatus;

use super::*;

/// Run `sh -c script` through `spawn_in_new_session`; (pid, exit code,
/// output).
fn run_shell(script: &str, env: &EnvPlan, cwd: Option<&Path>) -> (i32, Option<i32>, String) {
    let dir = tempfile::tempdir().unwrap();
    let out_path = dir.path().join("out");
    let out = File::create(&out_path).unwrap();
    let args = ["-c".to_string(), script.to_string()];
    let pid = spawn_in_new_session(&SessionSpawn {
        program: "sh",
        args: &args,
        env,
        cwd,
        output: &out,
        pass_fd: None,
    })
    .unwrap();
    let status = wait_child(pid, false).unwrap().unwrap();
    let code = ExitStatus::from_raw(status).code();
    (pid, code, std::fs::read_to_string(&out_path).unwrap())
}

#[test]
fn the_child_leads_a_session_of_its_own() {
    let (pid, code, out) = run_shell(
        "set -- $(cat /proc/$$/stat); echo \"$1 $6\"",
        &EnvPlan::default(),
        None,
    );
    assert_eq!(code, Some(0));
    // Field 6 of /proc/<pid>/stat is the session id.
    assert_eq!(out.trim(), format!("{pid} {pid}"));
}

#[test]
fn the_exit_code_comes_back_from_wait() {
    let (_, code, _) = run_shell("exit 7", &EnvPlan::default(), None);
    assert_eq!(code, Some(7));
}

#[test]
fn the_plan_is_applied_to_the_callers_environment() {
    let mut env = EnvPlan::default();
    env.set("KANBAN_SPAWN_TEST", "set by plan");
    env.remove.push("HOME".into());
    let (_, _, out) = run_shell(
        "echo \"$KANBAN_SPAWN_TEST|${HOME-unset}|${PATH:+has path}\"",
        &env,
        None,
    );
    assert_eq!(out.trim(), "set by plan|unset|has path");
}

#[test]
fn stdin_is_dev_null_and_stderr_shares_the_output() {
    let (_, _, out) = run_shell(
        "readlink /proc/$$/fd/0; echo to-stderr >&2",
        &EnvPlan::default(),
        None,
    );
    assert_eq!(out, "/dev/null\nto-stderr\n");
}

#[test]
fn the_working_directory_is_set() {
    let dir = tempfile::tempdir().unwrap();
    let (_, _, out) = run_shell("pwd -P", &EnvPlan::default(), Some(dir.path()));
    assert_eq!(
        out.trim(),
        dir.path().canonicalize().unwrap().display().to_string()
    );
}

#[test]
fn sigpipe_is_back_to_default_and_no_signal_is_blocked() {
    // The test harness, like every Rust program, ignores SIGPIPE.
    let (_, _, out) = run_shell(
        "exec grep -E '^Sig(Ign|Blk)' /proc/self/status",
        &EnvPlan::default(),
        None,
    );
    let mask = |name: &str| {
        let line = out.lines().find(|l| l.starts_with(name)).unwrap();
        u64::from_str_radix(line.split_whitespace().nth(1).unwrap(), 16).unwrap()
    };
    let sigpipe_bit = 1u64 << (libc::SIGPIPE - 1);
    assert_eq!(mask("SigIgn:") & sigpipe_bit, 0, "{out}");
    assert_eq!(mask("SigBlk:"), 0, "{out}");
}

#[test]
fn programs_are_found_on_the_childs_path_not_the_callers() {
    let dir = tempfile::tempdir().unwrap();
    let tool = dir.path().join("kanban-spawn-test-tool");
    std::fs::write(&tool, "#!/bin/sh\necho found\n").unwrap();
    std::fs::set_permissions(&tool, std::fs::Permissions::from_mode(0o755)).unwrap();
    let path = format!("{}:/usr/bin:/bin", dir.path().display());
    let found = resolve_program("kanban-spawn-test-tool", Some(OsStr::new(&path))).unwrap();
    assert_eq!(found, tool);
    let caller = resolve_program("kanban-spawn-test-tool", Some(OsStr::new("/usr/bin:/bin")));
    assert_eq!(caller.unwrap_err().kind(), io::ErrorKind::NotFound);
}

#[test]
fn a_file_that_is_not_executable_is_permission_denied() {
    let dir = tempfile::tempdir().unwrap();
    let tool = dir.path().join("plain");
    std::fs::write(&tool, "echo no\n").unwrap();
    std::fs::set_permissions(&tool, std::fs::Permissions::from_mode(0o644)).unwrap();
    let path = dir.path().as_os_str();
    let err = resolve_program("plain", Some(path)).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::PermissionDenied);
}

#[test]
fn a_missing_program_with_a_slash_fails_from_exec() {
    let dir = tempfile::tempdir().unwrap();
    let out = File::create(dir.path().join("out")).unwrap();
    let err = spawn_in_new_session(&SessionSpawn {
        program: "/nonexistent/kanban-worker",
        args: &[],
        env: &EnvPlan::default(),
        cwd: None,
        output: &out,
        pass_fd: None,
    })
    .unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::NotFound);
}

#[test]
fn a_nul_byte_is_invalid_input() {
    let dir = tempfile::tempdir().unwrap();
    let out = File::create(dir.path().join("out")).unwrap();
    let args = ["a\0b".to_string()];
    let err = spawn_in_new_session(&SessionSpawn {
        program: "/bin/echo",
        args: &args,
        env: &EnvPlan::default(),
        cwd: None,
        output: &out,
        pass_fd: None,
    })
    .unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
}
