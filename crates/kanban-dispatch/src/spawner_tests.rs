//! Spawner tests with real processes (small shell scripts).

use std::os::unix::fs::PermissionsExt;
use std::sync::atomic::AtomicUsize;
use std::time::Duration;

use super::*;
use crate::testutil::{wait_for, write_script};

fn spec(dir: &Path, argv: &[&str]) -> WorkerSpec {
    WorkerSpec {
        task_id: "t_0000beef".into(),
        run_id: Some(3),
        argv: argv.iter().map(|s| s.to_string()).collect(),
        env: EnvPlan::default(),
        cwd: None,
        log: LogSpec::for_task(&dir.join("logs"), "t_0000beef"),
        not_found_hint: "Install it.".into(),
    }
}

fn wait_exit(sp: &ProcessSpawner, w: &SpawnedWorker) -> WorkerExit {
    let mut got = None;
    wait_for(Duration::from_secs(10), || {
        got = sp.exit_status(&w.identity());
        got.is_some()
    });
    got.unwrap()
}

#[test]
fn worker_gets_env_cwd_devnull_stdin_and_a_private_log() {
    let dir = tempfile::tempdir().unwrap();
    let ws = dir.path().join("ws");
    std::fs::create_dir(&ws).unwrap();
    let script = write_script(
        dir.path(),
        "w.sh",
        "echo \"task=$HERMES_KANBAN_TASK\"\necho \"home=${HOME-unset}\"\necho \"cwd=$(pwd)\"\n\
         echo \"stdin=$(readlink /proc/self/fd/0)\"\necho oops >&2\n",
    );
    let mut s = spec(dir.path(), &[script.to_str().unwrap()]);
    s.env.set("HERMES_KANBAN_TASK", "t_0000beef");
    s.env.remove("HOME");
    s.cwd = Some(ws.clone());
    let sp = ProcessSpawner::new();
    let w = sp.spawn(&s).unwrap();
    assert!(w.start_time.is_some());
    assert_eq!(wait_exit(&sp, &w), WorkerExit::Exited(0));
    let log = std::fs::read_to_string(&s.log.path).unwrap();
    assert!(log.contains("task=t_0000beef\n"), "{log}");
    assert!(log.contains("home=unset\n"), "{log}");
    assert!(log.contains(&format!("cwd={}\n", ws.display())), "{log}");
    assert!(log.contains("stdin=/dev/null\n"), "{log}");
    assert!(log.contains("oops\n"), "stderr goes to the log too: {log}");
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&s.log.path), 0o600);
    assert_eq!(mode(s.log.path.parent().unwrap()), 0o700);
}

#[test]
fn worker_leads_its_own_session_and_process_group() {
    let dir = tempfile::tempdir().unwrap();
    let script = write_script(dir.path(), "w.sh", "sleep 30\n");
    let sp = ProcessSpawner::new();
    let w = sp
        .spawn(&spec(dir.path(), &[script.to_str().unwrap()]))
        .unwrap();
    let l = ProcLiveness::new();
    let st = l.stat(w.pid).unwrap();
    assert_eq!((st.session, st.pgrp), (w.pid, w.pid));
    assert_eq!(Some(st.start_time), w.start_time);
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(w.pid),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    assert_eq!(wait_exit(&sp, &w), WorkerExit::Signaled(9));
}

#[test]
fn exits_are_reaped_and_classified() {
    let dir = tempfile::tempdir().unwrap();
    let sp = ProcessSpawner::new();
    let hooked = Arc::new(AtomicUsize::new(0));
    let h = Arc::clone(&hooked);
    sp.on_exit(Arc::new(move |_, _| {
        h.fetch_add(1, Ordering::SeqCst);
    }));
    let l = ProcLiveness::new();
    let mut workers = Vec::new();
    for (code, expect) in [
        ("exit 0", WorkerExit::Exited(0)),
        ("exit 75", WorkerExit::Exited(75)),
        ("exit 3", WorkerExit::Exited(3)),
        ("kill -TERM $$", WorkerExit::Signaled(15)),
    ] {
        let s = spec(dir.path(), &["/bin/sh", "-c", code]);
        workers.push((sp.spawn(&s).unwrap(), expect));
    }
    for (w, expect) in &workers {
        assert_eq!(wait_exit(&sp, w), *expect);
        // Reaped: not even a zombie is left behind.
        wait_for(Duration::from_secs(5), || l.stat(w.pid).is_none());
    }
    let mut reaped: Vec<i32> = sp.reap().into_iter().map(|(p, _)| p).collect();
    reaped.sort();
    let mut pids: Vec<i32> = workers.iter().map(|(w, _)| w.pid).collect();
    pids.sort();
    assert_eq!(reaped, pids);
    assert!(sp.reap().is_empty(), "each exit is handed out once");
    assert_eq!(hooked.load(Ordering::SeqCst), 4);
    // A different start time for the same pid is another process.
    let (w, _) = workers[0];
    assert_eq!(
        sp.exit_status(&WorkerIdentity::new(w.pid, w.start_time.unwrap() + 1)),
        None
    );
}

#[test]
fn missing_or_non_executable_programs_fail_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let sp = ProcessSpawner::new();
    let err = sp
        .spawn(&spec(dir.path(), &["kanban-no-such-program-xyz", "-p"]))
        .unwrap_err();
    assert!(
        matches!(err, DispatchError::ExecutableNotFound { .. }),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        "`kanban-no-such-program-xyz` executable not found on PATH. Install it."
    );
    let plain = dir.path().join("plain.sh");
    std::fs::write(&plain, "echo hi\n").unwrap();
    let err = sp
        .spawn(&spec(dir.path(), &[plain.to_str().unwrap()]))
        .unwrap_err();
    assert!(
        matches!(err, DispatchError::NotExecutable { .. }),
        "{err:?}"
    );
    let err = sp.spawn(&spec(dir.path(), &[])).unwrap_err();
    assert!(matches!(err, DispatchError::Command(_)), "{err:?}");
}

#[test]
fn log_rotates_at_spawn_keeping_one_backup() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = spec(dir.path(), &["/bin/sh", "-c", "echo new run"]);
    s.log.rotate_bytes = 16;
    std::fs::create_dir_all(s.log.path.parent().unwrap()).unwrap();
    let backup = rotated_log_path(&s.log.path, 1);
    std::fs::write(&backup, "ancient\n").unwrap();
    std::fs::write(&s.log.path, "previous run output, long enough\n").unwrap();
    let sp = ProcessSpawner::new();
    let w = sp.spawn(&s).unwrap();
    wait_exit(&sp, &w);
    assert_eq!(
        std::fs::read_to_string(&backup).unwrap(),
        "previous run output, long enough\n"
    );
    assert_eq!(std::fs::read_to_string(&s.log.path).unwrap(), "new run\n");
    assert!(!rotated_log_path(&s.log.path, 2).exists());
    // Small logs are appended to, not rotated.
    let w = sp.spawn(&s).unwrap();
    wait_exit(&sp, &w);
    assert_eq!(
        std::fs::read_to_string(&s.log.path).unwrap(),
        "new run\nnew run\n"
    );
}

#[test]
fn rotation_shifts_generations_and_zero_backups_deletes() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("t.log");
    std::fs::write(&log, "gen0-long-content").unwrap();
    std::fs::write(rotated_log_path(&log, 1), "gen1").unwrap();
    std::fs::write(rotated_log_path(&log, 2), "gen2").unwrap();
    assert!(rotate_log(&log, 4, 2).unwrap());
    assert!(!log.exists());
    assert_eq!(
        std::fs::read_to_string(rotated_log_path(&log, 1)).unwrap(),
        "gen0-long-content"
    );
    assert_eq!(
        std::fs::read_to_string(rotated_log_path(&log, 2)).unwrap(),
        "gen1"
    );
    std::fs::write(&log, "again-long").unwrap();
    assert!(rotate_log(&log, 4, 0).unwrap());
    assert!(!log.exists());
    assert!(!rotate_log(&log, 4, 1).unwrap(), "missing log is fine");
}

#[test]
fn an_existing_log_is_made_private() {
    let dir = tempfile::tempdir().unwrap();
    let s = LogSpec::for_task(dir.path(), "t_1");
    std::fs::write(&s.path, "x").unwrap();
    std::fs::set_permissions(&s.path, std::fs::Permissions::from_mode(0o644)).unwrap();
    open_worker_log(&s).unwrap();
    assert_eq!(
        std::fs::metadata(&s.path).unwrap().permissions().mode() & 0o777,
        0o600
    );
}

#[test]
fn stub_spawner_hands_out_fake_live_workers() {
    let l = Arc::new(StaticLiveness::new("h"));
    let sp = StubSpawner::with_liveness(Arc::clone(&l));
    let dir = tempfile::tempdir().unwrap();
    let w = sp.spawn(&spec(dir.path(), &["x"])).unwrap();
    assert!(w.pid >= STUB_FIRST_PID);
    assert!(l.worker_alive(&w.identity()));
    sp.exit(w.pid, WorkerExit::Exited(75));
    assert!(!l.worker_alive(&w.identity()));
    assert_eq!(sp.exit_status(&w.identity()), Some(WorkerExit::Exited(75)));
    assert_eq!(sp.reap(), vec![(w.pid, WorkerExit::Exited(75))]);
    sp.fail_with(Some("boom"));
    assert!(sp.spawn(&spec(dir.path(), &["x"])).is_err());
    assert_eq!(sp.spawned().len(), 1);
}
