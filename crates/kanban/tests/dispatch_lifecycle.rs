//! `kanban dispatch` end to end with real worker processes: each worker is
//! a shell script run through a config-defined profile (or a fake `hermes`
//! on PATH), calling this same binary, and each test drives the board with
//! separate `kanban dispatch` processes until it settles.

use std::os::unix::process::CommandExt;
use std::process::Command;

use kanban_testkit::workers::read_env;
use kanban_testkit::{Sandbox, expect_until, pid_alive};

#[test]
fn completing_blocking_and_crashing_workers() {
    let mut h = Sandbox::new();
    h.profile("finisher", "$K complete \"$1\" --summary \"all good\"");
    h.profile("blocker", "$K block \"$1\" \"need a human\"");
    h.profile("crasher", "echo boom >&2\nexit 3");
    let done = h.create("finish me", &["--assignee", "finisher"]);
    let blocked = h.create("block me", &["--assignee", "blocker"]);
    let crash = h.create("crash me", &["--assignee", "crasher"]);
    h.settle(&[&done, &blocked, &crash], &["done", "blocked"]);
    assert_eq!(h.status(&done), "done");
    assert_eq!(h.outcomes(&done), vec![Some("completed".into())]);
    assert_eq!(h.status(&blocked), "blocked");
    assert_eq!(h.outcomes(&blocked), vec![Some("blocked".into())]);
    // Exit 3 is a crash, counted: two of them trip the default breaker.
    assert_eq!(h.status(&crash), "blocked");
    assert_eq!(
        h.outcomes(&crash),
        vec![Some("crashed".into()), Some("crashed".into())]
    );
    let err: String = h
        .db()
        .query_row(
            "SELECT error FROM task_runs WHERE task_id = ?1 ORDER BY id LIMIT 1",
            [&crash],
            |r| r.get(0),
        )
        .unwrap();
    // Classified from the exit code although a different `kanban
    // dispatch` process spawned it.
    assert!(err.contains("exited with code 3"), "{err}");
    assert_eq!(h.event_count(&crash, "gave_up"), 1);
}

/// Fails today: the breaker trip of the third violation leaves
/// `consecutive_failures` at 1, and the promotion step of the same pass
/// (kanban-store `sqlite/recompute.rs`, failure limit 2) re-promotes the
/// blocked task, so a fourth attempt runs (`gave_up` twice).
#[test]
fn clean_exit_without_completing_is_a_protocol_violation_blocked_on_the_third() {
    let mut h = Sandbox::new();
    h.profile("quitter", "echo did nothing");
    let t = h.create("quit", &["--assignee", "quitter"]);
    h.settle(&[&t], &["blocked"]);
    assert_eq!(h.outcomes(&t).len(), 3, "{:?}", h.outcomes(&t));
    assert_eq!(h.event_count(&t, "protocol_violation"), 3);
}

#[test]
fn rate_limited_worker_is_never_blocked_and_waits_for_the_cooldown() {
    let mut h = Sandbox::new();
    h.env.insert(
        "HERMES_KANBAN_RATE_LIMIT_COOLDOWN_SECONDS".into(),
        "2".into(),
    );
    // Rate-limited three times, then succeeds.
    h.profile(
        "limited",
        "n=$(cat \"$OUT/n.$1\" 2>/dev/null || echo 0)\nn=$((n+1))\necho $n > \"$OUT/n.$1\"\n\
         if [ $n -le 3 ]; then exit 75; fi\n$K complete \"$1\" --summary finally",
    );
    let t = h.create("limited", &["--assignee", "limited"]);
    h.dispatch_until("rate-limited task completes", |h| h.status(&t) == "done");
    let outcomes = h.outcomes(&t);
    assert_eq!(
        outcomes,
        vec![
            Some("rate_limited".into()),
            Some("rate_limited".into()),
            Some("rate_limited".into()),
            Some("completed".into())
        ]
    );
    assert_eq!(h.event_count(&t, "gave_up"), 0);
    // Passes inside the cooldown held it back instead of respawning.
    assert!(
        h.event_count(&t, "respawn_guarded") >= 1,
        "cooldown never held the task back"
    );
    // Respawns are at least the cooldown apart.
    let db = h.db();
    let mut st = db
        .prepare("SELECT started_at, ended_at FROM task_runs WHERE task_id = ?1 ORDER BY id")
        .unwrap();
    let runs: Vec<(i64, Option<i64>)> = st
        .query_map([&t], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    for w in runs.windows(2) {
        let ended = w[0].1.unwrap();
        assert!(
            w[1].0 >= ended + 2,
            "respawned inside the cooldown: {runs:?}"
        );
    }
}

#[test]
fn hung_worker_is_killed_with_its_children_retried_then_blocked() {
    let mut h = Sandbox::new();
    h.profile(
        "hanger",
        "sleep 300 &\necho $! >> \"$OUT/children.$1\"\nwait",
    );
    let t = h.create("hang", &["--assignee", "hanger", "--max-runtime", "1"]);
    h.settle(&[&t], &["blocked"]);
    assert_eq!(
        h.outcomes(&t),
        vec![Some("timed_out".into()), Some("timed_out".into())]
    );
    let children = std::fs::read_to_string(h.out(&format!("children.{t}"))).unwrap();
    let pids: Vec<i64> = children.lines().map(|l| l.parse().unwrap()).collect();
    assert_eq!(pids.len(), 2);
    for pid in pids {
        expect_until(&format!("child sleep {pid} gone"), || !pid_alive(pid));
    }
}

#[test]
fn missing_executable_trips_the_breaker() {
    let mut h = Sandbox::new();
    h.profile_argv(
        "ghost",
        vec!["/nonexistent/agent-bin".into(), "{task_id}".into()],
    );
    let t = h.create("ghost", &["--assignee", "ghost"]);
    h.settle(&[&t], &["blocked"]);
    assert!(h.event_count(&t, "spawn_failed") >= 1);
    assert_eq!(h.event_count(&t, "gave_up"), 1);
}

#[test]
fn lanes_and_unassigned_tasks_are_skipped_without_claiming() {
    let mut h = Sandbox::new();
    h.profile("finisher", "$K complete \"$1\"");
    let lane = h.create("lane", &["--assignee", "human-review"]);
    let loose = h.create("nobody", &[]);
    for _ in 0..3 {
        let r = h.dispatch();
        assert!(r["skipped_nonspawnable"].to_string().contains(&lane), "{r}");
        assert!(r["skipped_unassigned"].to_string().contains(&loose), "{r}");
    }
    for id in [&lane, &loose] {
        assert_eq!(h.status(id), "ready");
        assert_eq!(h.event_count(id, "claimed"), 0);
        assert!(h.outcomes(id).is_empty());
    }
}

#[test]
fn child_spawns_only_after_its_parent_completes() {
    let mut h = Sandbox::new();
    h.profile("slow", "sleep 1\n$K complete \"$1\" --summary parent-done");
    h.profile("fast", "$K complete \"$1\"");
    let parent = h.create("parent", &["--assignee", "slow"]);
    let child = h.create("child", &["--assignee", "fast", "--parent", &parent]);
    let first = h.dispatch();
    assert_eq!(first["spawned"].as_array().unwrap().len(), 1, "{first}");
    assert_eq!(h.status(&child), "todo");
    h.settle(&[&parent, &child], &["done"]);
    let completed = h.first_event(&parent, "completed").unwrap();
    let claimed = h.first_event(&child, "claimed").unwrap();
    assert!(claimed > completed, "child claimed before parent completed");
}

#[test]
fn worker_environment_log_and_rotation() {
    let mut h = Sandbox::new();
    h.profile(
        "envdump",
        "env > \"$OUT/env.$1\"\npwd > \"$OUT/pwd.$1\"\necho hello-from-worker\n$K complete \"$1\"",
    );
    h.env.insert("HERMES_TUI".into(), "1".into());
    let t = h.create("env", &["--assignee", "envdump", "--tenant", "acme"]);
    // A log over 2 MiB from an earlier attempt is rotated at spawn.
    let log = h.path(&format!("kanban/logs/{t}.log"));
    std::fs::create_dir_all(log.parent().unwrap()).unwrap();
    std::fs::write(&log, vec![b'x'; 2 * 1024 * 1024 + 10]).unwrap();
    h.settle(&[&t], &["done"]);
    let env = read_env(&h.out(&format!("env.{t}")));
    let task = h.json(&["show", &t, "--json"]);
    let ws = task["task"]["workspace_path"].as_str().unwrap().to_string();
    let run_id: i64 = h
        .db()
        .query_row("SELECT id FROM task_runs WHERE task_id = ?1", [&t], |r| {
            r.get(0)
        })
        .unwrap();
    let root = h.root().display().to_string();
    let expect = [
        ("HERMES_KANBAN_TASK", t.clone()),
        ("HERMES_KANBAN_RUN_ID", run_id.to_string()),
        ("HERMES_KANBAN_WORKSPACE", ws.clone()),
        ("TERMINAL_CWD", ws.clone()),
        ("HERMES_KANBAN_DB", format!("{root}/kanban.db")),
        ("HERMES_KANBAN_BOARD", "default".into()),
        (
            "HERMES_KANBAN_WORKSPACES_ROOT",
            format!("{root}/kanban/workspaces"),
        ),
        ("HERMES_PROFILE", "envdump".into()),
        ("HERMES_TENANT", "acme".into()),
        ("HERMES_HOME", root.clone()),
    ];
    for (k, v) in expect {
        assert_eq!(env.get(k), Some(&v), "{k} in {env:?}");
    }
    let lock = env.get("HERMES_KANBAN_CLAIM_LOCK").expect("claim lock");
    assert!(lock.contains(':'), "{lock}");
    assert!(
        !env.contains_key("HERMES_TUI"),
        "HERMES_TUI must be removed"
    );
    assert!(!env.contains_key("HERMES_KANBAN_BRANCH"));
    let pwd = std::fs::read_to_string(h.out(&format!("pwd.{t}"))).unwrap();
    assert_eq!(pwd.trim(), ws);
    // Completion released the scratch workspace (reference §5.4).
    assert!(!std::path::Path::new(&ws).exists());
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.contains("hello-from-worker"), "{text}");
    let rotated = h.path(&format!("kanban/logs/{t}.log.1"));
    assert!(rotated.exists(), "log was not rotated");
    assert!(std::fs::metadata(rotated).unwrap().len() > 2 * 1024 * 1024);
    assert!(h.ok(&["log", &t]).contains("hello-from-worker"));
}

#[test]
fn hermes_profile_runs_the_hermes_command_from_path() {
    let h = Sandbox::new();
    std::fs::create_dir_all(h.path("profiles/researcher")).unwrap();
    h.script(
        "hermes",
        "printf '%s\\n' \"$@\" > \"$OUT/argv.$HERMES_KANBAN_TASK\"\n\
         env > \"$OUT/env.$HERMES_KANBAN_TASK\"\n\
         $K complete \"$HERMES_KANBAN_TASK\" --summary from-hermes",
    );
    let t = h.create("research", &["--assignee", "researcher"]);
    h.settle(&[&t], &["done"]);
    let argv = std::fs::read_to_string(h.out(&format!("argv.{t}"))).unwrap();
    let argv: Vec<&str> = argv.lines().collect();
    assert_eq!(&argv[..2], ["-p", "researcher"], "{argv:?}");
    let q = argv.iter().position(|a| *a == "-q").expect("-q");
    assert_eq!(argv[q - 1], "chat");
    assert_eq!(argv[q + 1], format!("work kanban task {t}"));
    let env = read_env(&h.out(&format!("env.{t}")));
    let home = h.path("profiles/researcher").display().to_string();
    assert_eq!(env.get("HERMES_HOME"), Some(&home));
    assert_eq!(env.get("HERMES_KANBAN_TASK"), Some(&t));
    assert_eq!(
        env.get("HERMES_PROFILE").map(String::as_str),
        Some("researcher")
    );
}

#[test]
fn worktree_task_runs_in_a_git_worktree_with_its_branch() {
    let mut h = Sandbox::new();
    let repo = h.path("repo");
    std::fs::create_dir_all(&repo).unwrap();
    let git = |args: &[&str]| {
        let out = Command::new("git")
            .args(["-c", "user.email=t@example.com", "-c", "user.name=t"])
            .args(args)
            .current_dir(&repo)
            .output()
            .expect("git");
        assert!(out.status.success(), "git {args:?}: {out:?}");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    git(&["init", "-q"]);
    git(&["commit", "-q", "--allow-empty", "-m", "init"]);
    h.profile(
        "coder",
        "pwd > \"$OUT/pwd.$1\"\necho \"$HERMES_KANBAN_BRANCH\" > \"$OUT/branch.$1\"\n$K complete \"$1\"",
    );
    let spec = format!("worktree:{}", repo.display());
    let t = h.create("code", &["--assignee", "coder", "--workspace", &spec]);
    h.settle(&[&t], &["done"]);
    let branch = format!("wt/{t}");
    assert!(git(&["branch", "--list", &branch]).contains(&branch));
    let pwd = std::fs::read_to_string(h.out(&format!("pwd.{t}"))).unwrap();
    assert!(git(&["worktree", "list"]).contains(pwd.trim()), "{pwd}");
    let b = std::fs::read_to_string(h.out(&format!("branch.{t}"))).unwrap();
    assert_eq!(b.trim(), branch);
}

/// Every row of the board's main tables, as text.
fn board_state(h: &Sandbox) -> String {
    let db = h.db();
    let mut out = String::new();
    for table in [
        "tasks",
        "task_events",
        "task_runs",
        "task_links",
        "task_comments",
    ] {
        let mut st = db
            .prepare(&format!("SELECT * FROM {table} ORDER BY rowid"))
            .unwrap();
        let n = st.column_count();
        let rows = st
            .query_map([], |r| {
                let cols: Vec<String> = (0..n)
                    .map(|i| format!("{:?}", r.get_ref(i).unwrap()))
                    .collect();
                Ok(cols.join("|"))
            })
            .unwrap();
        for row in rows {
            out.push_str(&row.unwrap());
            out.push('\n');
        }
    }
    out
}

#[test]
fn dry_run_writes_nothing() {
    let mut h = Sandbox::new();
    h.profile("finisher", "$K complete \"$1\"");
    let t = h.create("t", &["--assignee", "finisher"]);
    let before = board_state(&h);
    let r = h.json(&["dispatch", "--dry-run", "--json"]);
    assert_eq!(r["spawned"][0]["task_id"], t.as_str(), "{r}");
    assert_eq!(h.status(&t), "ready");
    assert!(before == board_state(&h), "a dry run changed the board");
    assert!(!h.path(&format!("kanban/logs/{t}.log")).exists());
    let human = h.ok(&["dispatch", "--dry-run"]);
    assert!(human.contains("(dry)"), "{human}");
}

#[test]
fn a_second_concurrent_pass_is_skipped_locked() {
    let h = Sandbox::new();
    h.ok(&["init"]);
    let lock = h.path("kanban.db.dispatch.lock");
    // Hold the board's dispatch lock the way another dispatcher would.
    let mut holder = Command::new("flock")
        .arg(&lock)
        .args(["sleep", "30"])
        .process_group(0)
        .spawn()
        .expect("flock(1)");
    expect_until("lock held", || {
        Command::new("flock")
            .args(["-n"])
            .arg(&lock)
            .arg("true")
            .status()
            .is_ok_and(|s| !s.success())
    });
    let r = h.dispatch();
    assert_eq!(r["skipped_locked"], true, "{r}");
    let human = h.ok(&["dispatch"]);
    assert!(human.contains("already running"), "{human}");
    // flock(1) and its sleep both hold the lock: end the whole group.
    let pgid = nix::unistd::Pid::from_raw(holder.id() as i32);
    nix::sys::signal::killpg(pgid, nix::sys::signal::Signal::SIGKILL).unwrap();
    holder.wait().unwrap();
    assert_eq!(h.dispatch()["skipped_locked"], false);
}

#[test]
fn daemon_is_a_deprecated_stub_unless_forced() {
    let mut h = Sandbox::new();
    let out = h.run(&["daemon"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("DEPRECATED") && err.contains("kanban gateway start"),
        "{err}"
    );
    assert!(err.contains("kanban dispatch"), "{err}");
    // --force runs the loop until SIGTERM.
    h.profile("finisher", "$K complete \"$1\"");
    let t = h.create("t", &["--assignee", "finisher"]);
    let pidfile = h.path("daemon.pid");
    let mut child = h
        .std_cmd()
        .args(["daemon", "--force", "--interval", "1", "--pidfile"])
        .arg(&pidfile)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    expect_until("daemon ran the task", || h.status(&t) == "done");
    assert!(pidfile.exists());
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(0));
    assert!(!pidfile.exists(), "pidfile removed on stop");
}

#[test]
fn operator_reclaim_and_archive_end_the_worker_group() {
    let mut h = Sandbox::new();
    h.profile("sleeper", "sleep 300 &\necho $! > \"$OUT/child.$1\"\nwait");
    let a = h.create("reclaim me", &["--assignee", "sleeper"]);
    let b = h.create("archive me", &["--assignee", "sleeper"]);
    h.dispatch();
    for id in [&a, &b] {
        // The shell creates the file before it writes the pid into it.
        expect_until("child started", || {
            std::fs::read_to_string(h.out(&format!("child.{id}")))
                .is_ok_and(|pid| pid.trim().parse::<i64>().is_ok())
        });
    }
    let child = |id: &str| -> i64 {
        std::fs::read_to_string(h.out(&format!("child.{id}")))
            .unwrap()
            .trim()
            .parse()
            .unwrap()
    };
    let (ca, cb) = (child(&a), child(&b));
    let started = std::time::Instant::now();
    h.ok(&["reclaim", &a]);
    h.ok(&["archive", &b]);
    // The CLI does not wait for the worker to die.
    assert!(started.elapsed() < std::time::Duration::from_secs(4));
    expect_until("reclaimed worker's child ended", || !pid_alive(ca));
    expect_until("archived worker's child ended", || !pid_alive(cb));
    assert_eq!(h.status(&a), "ready");
}
