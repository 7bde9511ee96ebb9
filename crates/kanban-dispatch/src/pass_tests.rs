//! The dispatch pass against a real SQLite board, with real worker
//! processes (shell scripts as template profiles) where behaviour depends
//! on them.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use kanban_core::Status;
use kanban_hermes::config::ProfileSpec;
use kanban_hermes::layout::{Env, MapEnv};
use kanban_hermes::profiles::ProfileKind;
use kanban_store::backend::{BoardLocation, OpenRequest, open_board};
use kanban_store::clock::ManualClock;
use kanban_store::dispatch_ops::DispatchStore;
use kanban_store::{EventQuery, NewTask};

use crate::dispatcher::*;
use crate::liveness::ProcLiveness;
use crate::options::DispatchOptions;
use crate::result::DispatchResult;
use crate::spawner::{ProcessSpawner, Spawner};
use crate::terminate::Terminator;
use crate::testutil::{wait_for, write_script};

pub(crate) const T0: i64 = 1_700_000_000;

/// Profiles by name.
#[derive(Default)]
pub(crate) struct MapProfiles(pub HashMap<String, ProfileKind>);

impl ProfileSource for MapProfiles {
    fn resolve_profile(&self, name: &str) -> Option<ProfileKind> {
        self.0.get(name).cloned()
    }
}

pub(crate) struct Fixture {
    pub dir: tempfile::TempDir,
    pub store: Arc<dyn DispatchStore>,
    pub clock: Arc<ManualClock>,
    pub spawner: Arc<ProcessSpawner>,
    pub profiles: MapProfiles,
}

impl Fixture {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let clock = Arc::new(ManualClock::new(T0));
        let location = BoardLocation::Sqlite(dir.path().join("kanban.db"));
        let board =
            open_board(&location, &OpenRequest::create().with_clock(clock.clone())).unwrap();
        Fixture {
            dir,
            store: board.dispatch(),
            clock,
            spawner: Arc::new(ProcessSpawner::new()),
            profiles: MapProfiles::default(),
        }
    }

    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    /// A template profile running `body` as a shell script.
    pub fn script_profile(&mut self, name: &str, body: &str) {
        let script = write_script(self.root(), &format!("{name}.sh"), body);
        let spec = ProfileSpec {
            command: vec![script.to_string_lossy().into_owned()],
            ..Default::default()
        };
        self.profiles
            .0
            .insert(name.into(), ProfileKind::Template { spec });
    }

    pub fn board(&self) -> BoardContext {
        BoardContext {
            slug: "default".into(),
            db_path: self.root().join("kanban.db"),
            database_url: None,
            workspaces_root: self.root().join("kanban/workspaces"),
            logs_dir: self.root().join("kanban/logs"),
            default_workdir: None,
            scratch_tip_sentinel: Some(self.root().join(".scratch_tip_shown")),
        }
    }

    pub fn dispatcher(&self) -> Dispatcher {
        let liveness = Arc::new(ProcLiveness::new());
        let parts = DispatcherParts {
            store: self.store.clone(),
            spawner: self.spawner.clone(),
            liveness: liveness.clone(),
            profiles: Arc::new(MapProfiles(self.profiles.0.clone())),
            context: Arc::new(TitleBodyContext),
            env: Arc::new(MapEnv::new().with("PATH", std::env::var("PATH").unwrap_or_default()))
                as Arc<dyn Env + Send + Sync>,
            board: self.board(),
        };
        let terminator =
            Terminator::with_timing(liveness, Duration::from_millis(200), Duration::from_secs(5));
        Dispatcher::with_terminator(parts, terminator)
    }

    pub fn create(&self, title: &str, assignee: Option<&str>) -> String {
        self.create_with(NewTask {
            title: title.into(),
            assignee: assignee.map(str::to_string),
            ..Default::default()
        })
    }

    pub fn create_with(&self, req: NewTask) -> String {
        self.store.create_task(&req).unwrap().task.id
    }

    pub fn task(&self, id: &str) -> kanban_core::Task {
        self.store.get_task(id).unwrap().unwrap()
    }

    pub fn kinds(&self, id: &str) -> Vec<String> {
        let q = EventQuery {
            task_id: Some(id.into()),
            ..Default::default()
        };
        self.store
            .events(&q)
            .unwrap()
            .into_iter()
            .map(|e| e.kind)
            .collect()
    }

    /// Wait until the worker of `id` has exited (and been reaped).
    pub fn wait_exit(&self, id: &str) {
        let rt = self
            .store
            .running_tasks()
            .unwrap()
            .into_iter()
            .find(|r| r.id == id)
            .unwrap();
        let w = rt.worker.unwrap();
        let ident = crate::liveness::WorkerIdentity {
            pid: w.pid as i32,
            start_time: w.start_time.map(|t| t as u64),
        };
        wait_for(Duration::from_secs(10), || {
            self.spawner.exit_status(&ident).is_some()
        });
    }
}

#[test]
fn spawns_a_template_worker_with_the_worker_contract() {
    let mut f = Fixture::new();
    let out = f.root().join("env.out");
    f.script_profile(
        "agent",
        &format!(
            "{{ echo \"task=$HERMES_KANBAN_TASK\"; echo \"run=$HERMES_KANBAN_RUN_ID\"; echo \"db=$HERMES_KANBAN_DB\"; \
             echo \"board=$HERMES_KANBAN_BOARD\"; echo \"profile=$HERMES_PROFILE\"; echo \"cwd=$(pwd)\"; }} > {}.tmp\n\
             mv {0}.tmp {0}\nsleep 30\n",
            out.display()
        ),
    );
    let id = f.create("write it", Some("agent"));
    let d = f.dispatcher();
    let r = d.dispatch_once(&DispatchOptions::default()).unwrap();
    assert_eq!(r.spawned.len(), 1, "{r:?}");
    let ws = f.root().join("kanban/workspaces").join(&id);
    assert_eq!(r.spawned[0].workspace, ws.to_string_lossy());
    wait_for(Duration::from_secs(10), || out.exists());
    let text = std::fs::read_to_string(&out).unwrap();
    let t = f.task(&id);
    assert_eq!(t.status, Status::Running);
    for line in [
        format!("task={id}"),
        format!("run={}", t.current_run_id.unwrap()),
        format!("db={}", f.root().join("kanban.db").display()),
        "board=default".into(),
        "profile=agent".into(),
        format!("cwd={}", ws.display()),
    ] {
        assert!(text.lines().any(|l| l == line), "missing {line} in {text}");
    }
    assert!(t.worker_pid.is_some());
    assert_eq!(t.workspace_path.as_deref(), Some(ws.to_str().unwrap()));
    let kinds = f.kinds(&id);
    assert!(
        kinds.ends_with(&[
            "claimed".into(),
            "tip_scratch_workspace".into(),
            "spawned".into()
        ]),
        "{kinds:?}"
    );
    let rt = &f.store.running_tasks().unwrap()[0];
    assert!(rt.worker.as_ref().unwrap().start_time.is_some());
    assert!(
        f.root()
            .join("kanban/logs")
            .join(format!("{id}.log"))
            .exists()
    );
    // A second pass leaves the live worker alone.
    let r2 = d.dispatch_once(&DispatchOptions::default()).unwrap();
    assert!(r2.is_idle(), "{r2:?}");
    // Clean up the sleeper.
    let reclaimed = f.store.reclaim_task(&id, None).unwrap();
    nix::sys::signal::killpg(
        nix::unistd::Pid::from_raw(reclaimed.ended_worker.unwrap().pid as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
}

#[test]
fn exits_are_classified_as_violation_rate_limit_or_crash() {
    let mut f = Fixture::new();
    f.script_profile("clean", "exit 0\n");
    f.script_profile("limited", "exit 75\n");
    f.script_profile("broken", "exit 3\n");
    let clean = f.create("a", Some("clean"));
    let limited = f.create("b", Some("limited"));
    let broken = f.create("c", Some("broken"));
    let d = f.dispatcher();
    assert_eq!(
        d.dispatch_once(&DispatchOptions::default())
            .unwrap()
            .spawned
            .len(),
        3
    );
    for id in [&clean, &limited, &broken] {
        f.wait_exit(id);
    }
    let r = d.dispatch_once(&DispatchOptions::default()).unwrap();
    let mut crashed = r.crashed.clone();
    crashed.sort();
    let mut want = vec![clean.clone(), broken.clone()];
    want.sort();
    assert_eq!(crashed, want, "{r:?}");
    assert_eq!(r.rate_limited, vec![limited.clone()]);
    assert!(r.auto_blocked.is_empty());
    assert!(f.kinds(&clean).contains(&"protocol_violation".to_string()));
    assert!(f.kinds(&limited).contains(&"rate_limited".to_string()));
    assert!(f.kinds(&broken).contains(&"crashed".to_string()));
    // Released to ready, then (same pass) spawned again unless guarded.
    let (c, l, b) = (f.task(&clean), f.task(&limited), f.task(&broken));
    assert_eq!((c.status, c.consecutive_failures), (Status::Running, 0));
    assert!(c.last_failure_error.unwrap().contains("protocol violation"));
    assert_eq!((l.status, l.consecutive_failures), (Status::Ready, 0));
    assert_eq!((b.status, b.consecutive_failures), (Status::Running, 1));
    assert!(
        b.last_failure_error
            .unwrap()
            .ends_with("exited with code 3")
    );
    let ev = f.store.events(&EventQuery {
        task_id: Some(broken),
        kinds: Some(vec!["crashed".into()]),
        ..Default::default()
    });
    assert_eq!(ev.unwrap()[0].payload["exit_kind"], "nonzero_exit");
    // The rate-limited task cools down (guarded, not spawned).
    assert!(
        r.respawn_guarded
            .iter()
            .any(|g| g.task_id == limited && g.reason == "rate_limit_cooldown"),
        "{r:?}"
    );
    let runs = f.store.runs(&limited).unwrap();
    assert_eq!(
        runs.last().unwrap().outcome.as_deref(),
        Some("rate_limited")
    );
    d.terminator.wait_idle(Duration::from_secs(5));
}

#[test]
fn identical_crashes_in_one_pass_are_systemic() {
    let mut f = Fixture::new();
    f.script_profile("broken", "exit 3\n");
    let ids: Vec<String> = (0..3)
        .map(|i| f.create(&format!("t{i}"), Some("broken")))
        .collect();
    let d = f.dispatcher();
    d.dispatch_once(&DispatchOptions::default()).unwrap();
    for id in &ids {
        f.wait_exit(id);
    }
    let r = d.dispatch_once(&DispatchOptions::default()).unwrap();
    assert_eq!(r.crashed.len(), 3);
    assert_eq!(r.auto_blocked.len(), 3, "{r:?}");
    for id in &ids {
        assert_eq!(f.task(id).status, Status::Blocked);
    }
}

#[test]
fn max_runtime_kills_the_group_without_blocking_the_pass() {
    let mut f = Fixture::new();
    f.script_profile("stubborn", "trap '' TERM\nsleep 30 &\nwait\n");
    let id = f.create_with(NewTask {
        title: "slow".into(),
        assignee: Some("stubborn".into()),
        max_runtime_seconds: Some(60),
        ..Default::default()
    });
    let d = f.dispatcher();
    d.dispatch_once(&DispatchOptions::default()).unwrap();
    let pid = f.task(&id).worker_pid.unwrap() as i32;
    let l = ProcLiveness::new();
    wait_for(Duration::from_secs(5), || {
        crate::liveness::Liveness::group_members(&l, pid).len() >= 2
    });
    f.clock.advance(61);
    let t0 = Instant::now();
    let r = d.dispatch_once(&DispatchOptions::default()).unwrap();
    assert!(
        t0.elapsed() < Duration::from_millis(500),
        "pass blocked for {:?}",
        t0.elapsed()
    );
    assert_eq!(r.terminating, vec![id.clone()], "{r:?}");
    assert_eq!(
        f.task(&id).status,
        Status::Running,
        "not released while the worker lives"
    );
    wait_for(Duration::from_secs(10), || {
        d.terminator.pending_count() == 0
    });
    let r = d.dispatch_once(&DispatchOptions::default()).unwrap();
    assert_eq!(r.timed_out, vec![id.clone()], "{r:?}");
    // Released first, then started again by the same pass.
    let t = f.task(&id);
    assert_eq!((t.status, t.consecutive_failures), (Status::Running, 1));
    assert_eq!(
        f.store.runs(&id).unwrap()[0].outcome.as_deref(),
        Some("timed_out")
    );
    kill_all(&f);
    let ev = f.store.events(&EventQuery {
        task_id: Some(id),
        kinds: Some(vec!["timed_out".into()]),
        ..Default::default()
    });
    let payload = &ev.unwrap()[0].payload;
    assert_eq!(payload["sigkill"], true);
    assert_eq!(payload["limit_seconds"], 60);
    assert!(crate::liveness::Liveness::group_members(&l, pid).is_empty());
}

#[test]
fn expired_claims_are_extended_for_live_workers_and_reclaimed_for_dead_ones() {
    let mut f = Fixture::new();
    f.script_profile("sleepy", "sleep 30\n");
    let id = f.create("s", Some("sleepy"));
    let d = f.dispatcher();
    d.dispatch_once(&DispatchOptions::default()).unwrap();
    f.clock.advance(901);
    let r = d.dispatch_once(&DispatchOptions::default()).unwrap();
    assert_eq!(r.reclaimed, 0);
    assert_eq!(f.kinds(&id).last().unwrap(), "claim_extended", "{r:?}");
    assert_eq!(f.task(&id).claim_expires, Some(T0 + 901 + 900));
    let pid = f.task(&id).worker_pid.unwrap() as i32;
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    f.wait_exit(&id);
    f.clock.advance(901);
    let r = d.dispatch_once(&DispatchOptions::default()).unwrap();
    assert_eq!(r.reclaimed, 1, "{r:?}");
    assert!(
        r.crashed.is_empty(),
        "TTL reclaim comes first and counts no failure"
    );
    let t = f.task(&id);
    assert_eq!(t.consecutive_failures, 0);
    assert!(f.kinds(&id).contains(&"reclaimed".to_string()));
    assert_eq!(
        f.store.runs(&id).unwrap()[0].outcome.as_deref(),
        Some("reclaimed")
    );
    kill_all(&f);
}

#[test]
fn missing_executable_is_a_spawn_failure_then_the_breaker_trips() {
    let mut f = Fixture::new();
    let spec = ProfileSpec {
        command: vec!["kanban-test-no-such-agent".into(), "{prompt}".into()],
        ..Default::default()
    };
    f.profiles
        .0
        .insert("ghost".into(), ProfileKind::Template { spec });
    let id = f.create("g", Some("ghost"));
    let d = f.dispatcher();
    let r = d.dispatch_once(&DispatchOptions::default()).unwrap();
    assert!(r.spawned.is_empty());
    assert_eq!(r.health.idle_spawnable, 1);
    let t = f.task(&id);
    assert_eq!((t.status, t.consecutive_failures), (Status::Ready, 1));
    assert!(
        t.last_failure_error
            .unwrap()
            .contains("`kanban-test-no-such-agent` executable not found")
    );
    assert!(f.kinds(&id).contains(&"spawn_failed".to_string()));
    // The retry waits for its backoff (first delay ≤ the base), and the
    // pass asks to be woken for it.
    let base = kanban_core::defaults::SPAWN_RETRY_BASE_SECONDS;
    let wake = r.next_pass_in_ms.expect("a wake-up for the retry");
    assert!(wake <= (base as u64) * 1000 + 100, "{wake}");
    let r = d.dispatch_once(&DispatchOptions::default()).unwrap();
    assert!(r.spawned.is_empty() && r.auto_blocked.is_empty(), "{r:?}");
    assert_eq!(r.respawn_guarded[0].reason, "spawn_backoff");
    let r = d.dispatch_once(&DispatchOptions::default()).unwrap();
    assert_eq!(r.respawn_guarded.len(), 1);
    let guards = f
        .kinds(&id)
        .iter()
        .filter(|k| *k == "respawn_guarded")
        .count();
    assert_eq!(guards, 1, "one note per hold: {:?}", f.kinds(&id));
    f.clock.advance(base);
    let r = d.dispatch_once(&DispatchOptions::default()).unwrap();
    assert_eq!(r.auto_blocked, vec![id.clone()]);
    assert_eq!(f.task(&id).status, Status::Blocked);
}

#[test]
fn skip_buckets_and_default_assignee() {
    let mut f = Fixture::new();
    f.script_profile("agent", "sleep 30\n");
    let unassigned = f.create("u", None);
    let lane = f.create("l", Some("orion-cc"));
    let d = f.dispatcher();
    let r = d
        .dispatch_once(&DispatchOptions {
            dry_run: true,
            ..Default::default()
        })
        .unwrap();
    assert_eq!(r.skipped_unassigned, vec![unassigned.clone()]);
    assert_eq!(r.skipped_nonspawnable, vec![lane.clone()]);
    let opts = DispatchOptions {
        default_assignee: Some("Agent".into()),
        ..Default::default()
    };
    let r = d.dispatch_once(&opts).unwrap();
    assert_eq!(r.auto_assigned_default, vec![unassigned.clone()]);
    assert_eq!(r.spawned.len(), 1);
    assert_eq!(f.task(&unassigned).assignee.as_deref(), Some("agent"));
    assert_eq!(
        f.task(&lane).status,
        Status::Ready,
        "lanes are never claimed"
    );
    // A default assignee that is no profile changes nothing.
    let other = f.create("u2", None);
    let r = d
        .dispatch_once(&DispatchOptions {
            default_assignee: Some("nobody".into()),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(r.skipped_unassigned, vec![other]);
    kill_all(&f);
}

#[test]
fn ceilings_hold_running_counts() {
    let mut f = Fixture::new();
    f.script_profile("a", "sleep 30\n");
    f.script_profile("b", "sleep 30\n");
    let a1 = f.create("a1", Some("a"));
    let a2 = f.create("a2", Some("a"));
    let b1 = f.create("b1", Some("b"));
    let d = f.dispatcher();
    let opts = DispatchOptions {
        max_in_progress_per_profile: Some(1),
        max_spawn: Some(2),
        ..Default::default()
    };
    let r = d.dispatch_once(&opts).unwrap();
    let spawned: Vec<&str> = r.spawned.iter().map(|s| s.task_id.as_str()).collect();
    assert_eq!(spawned, vec![a1.as_str(), b1.as_str()], "{r:?}");
    assert_eq!(r.skipped_per_profile_capped.len(), 1);
    assert_eq!(r.skipped_per_profile_capped[0].task_id, a2);
    assert_eq!(r.skipped_per_profile_capped[0].current, 1);
    // max_spawn is a live ceiling: two running, nothing more starts.
    let r = d
        .dispatch_once(&DispatchOptions {
            max_spawn: Some(2),
            ..Default::default()
        })
        .unwrap();
    assert!(r.spawned.is_empty() && r.health.capacity_full, "{r:?}");
    assert!(!r.health.is_bad());
    kill_all(&f);
}

#[test]
fn dry_run_writes_nothing_at_all() {
    let mut f = Fixture::new();
    f.script_profile("agent", "sleep 30\n");
    let ready = f.create("r", Some("agent"));
    let parent = f.create("p", Some("lane"));
    let child = f.create_with(NewTask {
        title: "c".into(),
        assignee: Some("agent".into()),
        parents: vec![parent.clone()],
        ..Default::default()
    });
    // An expired claim held by a dead worker.
    let claim = kanban_store::ClaimRequest {
        task_id: parent.clone(),
        claim_lock: "elsewhere:1".into(),
        ttl_seconds: 10,
        review: false,
        ceilings: Default::default(),
    };
    f.store.claim_task(&claim).unwrap();
    f.clock.advance(20);
    let before = f.store.latest_event_id().unwrap();
    let db = f.root().join("kanban.db");
    let wal = f.root().join("kanban.db-wal");
    let size = |p: &Path| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
    let (db_size, wal_size) = (size(&db), size(&wal));
    let d = f.dispatcher();
    let r = d
        .dispatch_once(&DispatchOptions {
            dry_run: true,
            ..Default::default()
        })
        .unwrap();
    assert_eq!(r.reclaimed, 1);
    assert_eq!(r.spawned.len(), 1);
    assert_eq!(r.spawned[0].task_id, ready);
    assert_eq!(r.spawned[0].workspace, "");
    assert!(r.dry_run);
    assert_eq!(f.store.latest_event_id().unwrap(), before);
    assert_eq!((size(&db), size(&wal)), (db_size, wal_size));
    assert_eq!(f.task(&ready).status, Status::Ready);
    assert_eq!(f.task(&parent).status, Status::Running);
    assert_eq!(f.task(&child).status, Status::Todo);
    assert!(!f.root().join("kanban/workspaces").exists());
    assert!(!f.root().join(".scratch_tip_shown").exists());
    assert!(f.spawner.reap().is_empty());
}

#[test]
fn a_held_or_unusable_lock_skips_the_pass() {
    let mut f = Fixture::new();
    f.script_profile("agent", "sleep 30\n");
    let id = f.create("r", Some("agent"));
    let d = f.dispatcher();
    let held = f.store.dispatch_lock().try_acquire().unwrap().unwrap();
    let r = d.dispatch_once(&DispatchOptions::default()).unwrap();
    assert!(r.skipped_locked && r.lock_error.is_none());
    assert!(r.spawned.is_empty());
    assert_eq!(f.task(&id).status, Status::Ready);
    drop(held);
    // A directory where the lock file belongs: it cannot be opened.
    let lock_file = f.root().join("kanban.db.dispatch.lock");
    std::fs::remove_file(&lock_file).unwrap();
    std::fs::create_dir(&lock_file).unwrap();
    let board = f.board();
    let parts = DispatcherParts {
        store: f.store.clone(),
        spawner: f.spawner.clone(),
        liveness: Arc::new(ProcLiveness::new()),
        profiles: Arc::new(MapProfiles(f.profiles.0.clone())),
        context: Arc::new(TitleBodyContext),
        env: Arc::new(MapEnv::new()),
        board,
    };
    let r = Dispatcher::new(parts)
        .dispatch_once(&DispatchOptions::default())
        .unwrap();
    assert!(r.skipped_locked);
    assert!(r.lock_error.unwrap().contains("dispatch lock"));
    assert_eq!(
        f.task(&id).status,
        Status::Ready,
        "fail closed: nothing written"
    );
    assert!(
        serde_json::to_value(DispatchResult::default())
            .unwrap()
            .get("lock_error")
            .is_none()
    );
}

#[test]
fn workspace_failures_count_as_spawn_failures() {
    let mut f = Fixture::new();
    f.script_profile("agent", "sleep 30\n");
    let id = f.create_with(NewTask {
        title: "wt".into(),
        assignee: Some("agent".into()),
        workspace_kind: Some("worktree".into()),
        ..Default::default()
    });
    let d = f.dispatcher();
    let r = d.dispatch_once(&DispatchOptions::default()).unwrap();
    assert!(r.spawned.is_empty());
    let t = f.task(&id);
    assert_eq!(t.status, Status::Ready);
    assert!(
        t.last_failure_error.unwrap().starts_with("workspace: "),
        "{:?}",
        f.task(&id)
    );
}

#[test]
fn stale_running_tasks_are_reclaimed_without_counting_a_failure() {
    let mut f = Fixture::new();
    f.script_profile("quiet", "sleep 30\n");
    let id = f.create("q", Some("quiet"));
    let d = f.dispatcher();
    d.dispatch_once(&DispatchOptions::default()).unwrap();
    f.clock.advance(500);
    let opts = DispatchOptions {
        stale_timeout_seconds: 400,
        claim_ttl_seconds: 100_000,
        ..Default::default()
    };
    // Released in the same pass when SIGTERM ends it at once, else later.
    let mut stale = Vec::new();
    for _ in 0..50 {
        let r = d.dispatch_once(&opts).unwrap();
        stale.extend(r.stale);
        if !stale.is_empty() {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(stale, vec![id.clone()]);
    let t = f.task(&id);
    assert_eq!(t.consecutive_failures, 0);
    let run = &f.store.runs(&id).unwrap()[0];
    assert_eq!(run.outcome.as_deref(), Some("stale"));
    assert!(
        run.error
            .as_deref()
            .unwrap()
            .starts_with("no heartbeat ever after 500s"),
        "{run:?}"
    );
    kill_all(&f);
}

/// End every worker still running on the board.
fn kill_all(f: &Fixture) {
    for rt in f.store.running_tasks().unwrap() {
        if let Some(pid) = rt.worker_pid {
            let _ = nix::sys::signal::killpg(
                nix::unistd::Pid::from_raw(pid as i32),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
    }
}
