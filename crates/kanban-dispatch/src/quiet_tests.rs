//! Quiet passes on both backends (SQLite, and PostgreSQL on the test kit's
//! server): skipped while nothing changed, full again as soon as the board
//! changes through any handle, the options or profiles change, or a
//! deadline passes with no change at all.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};

use kanban_hermes::config::ProfileSpec;
use kanban_hermes::layout::{Env, MapEnv};
use kanban_hermes::profiles::ProfileKind;
use kanban_store::NewTask;
use kanban_store::backend::{BoardLocation, OpenRequest, open_board};
use kanban_store::clock::ManualClock;
use kanban_store::dispatch_ops::DispatchStore;

use crate::dispatcher::*;
use crate::liveness::StaticLiveness;
use crate::options::DispatchOptions;
use crate::result::DispatchResult;
use crate::spawner::StubSpawner;

const T0: i64 = 1_700_000_000;

/// Profiles that can appear while the dispatcher runs (as a gateway
/// re-reads them every round).
#[derive(Default)]
struct LiveProfiles(RwLock<HashMap<String, ProfileKind>>);

impl LiveProfiles {
    fn add(&self, name: &str) {
        let spec = ProfileSpec {
            command: vec![name.into(), "{task_id}".into()],
            ..Default::default()
        };
        self.0
            .write()
            .unwrap()
            .insert(name.into(), ProfileKind::Template { spec });
    }
}

impl ProfileSource for LiveProfiles {
    fn resolve_profile(&self, name: &str) -> Option<ProfileKind> {
        self.0.read().unwrap().get(name).cloned()
    }
}

/// A board of one backend, its dispatcher and what drives it.
struct Rig {
    dir: tempfile::TempDir,
    location: BoardLocation,
    clock: Arc<ManualClock>,
    store: Arc<dyn DispatchStore>,
    spawner: Arc<StubSpawner>,
    profiles: Arc<LiveProfiles>,
    dispatcher: Dispatcher,
}

impl Rig {
    fn new(location: BoardLocation, dir: tempfile::TempDir) -> Rig {
        let clock = Arc::new(ManualClock::new(T0));
        let store = open_board(&location, &OpenRequest::create().with_clock(clock.clone()))
            .expect("open board")
            .dispatch();
        let liveness = Arc::new(StaticLiveness::new("h"));
        let spawner = Arc::new(StubSpawner::with_liveness(liveness.clone()));
        let profiles = Arc::new(LiveProfiles::default());
        profiles.add("agent");
        let root: PathBuf = dir.path().into();
        let dispatcher = Dispatcher::new(DispatcherParts {
            store: store.clone(),
            spawner: spawner.clone(),
            liveness,
            profiles: profiles.clone(),
            context: Arc::new(TitleBodyContext),
            env: Arc::new(MapEnv::new()) as Arc<dyn Env + Send + Sync>,
            board: BoardContext {
                slug: "default".into(),
                db_path: root.join("kanban.db"),
                database_url: None,
                workspaces_root: root.join("workspaces"),
                logs_dir: root.join("logs"),
                default_workdir: None,
                scratch_tip_sentinel: None,
            },
        });
        Rig {
            dir,
            location,
            clock,
            store,
            spawner,
            profiles,
            dispatcher,
        }
    }

    /// Another handle (connection) on the same board.
    fn other_handle(&self) -> Arc<dyn DispatchStore> {
        let req = OpenRequest::existing().with_clock(self.clock.clone());
        open_board(&self.location, &req)
            .expect("open board")
            .dispatch()
    }

    fn pass_with(&self, opts: &DispatchOptions) -> (DispatchResult, bool) {
        let before = self.dispatcher.state().quiet_passes;
        let r = self.dispatcher.dispatch_once(opts).expect("pass");
        (r, self.dispatcher.state().quiet_passes > before)
    }

    /// One pass with the default options: its result, and whether it was
    /// quiet (answered without reading the board).
    fn pass(&self) -> (DispatchResult, bool) {
        self.pass_with(&DispatchOptions::default())
    }

    /// Passes until one is quiet (a full pass may write a note that the
    /// next full pass sees); panics after a few.
    fn settle(&self) -> DispatchResult {
        for _ in 0..4 {
            let (r, quiet) = self.pass();
            if quiet {
                return r;
            }
        }
        panic!("no quiet pass on an unchanging board");
    }
}

fn create(store: &dyn DispatchStore, title: &str, assignee: &str) -> String {
    store
        .create_task(&NewTask {
            title: title.into(),
            assignee: Some(assignee.into()),
            ..Default::default()
        })
        .expect("create")
        .task
        .id
}

fn spawned(r: &DispatchResult) -> Vec<&str> {
    r.spawned.iter().map(|s| s.task_id.as_str()).collect()
}

fn sqlite_rig() -> Rig {
    let dir = tempfile::tempdir().unwrap();
    let location = BoardLocation::Sqlite(dir.path().join("kanban.db"));
    Rig::new(location, dir)
}

/// `None` only when the operator asked to skip PostgreSQL
/// (`KANBAN_SKIP_POSTGRES`); a missing server otherwise fails the test.
fn postgres_rig() -> Option<Rig> {
    kanban_store_postgres::register();
    let pg = kanban_testkit::postgres::cluster()?;
    let url = pg.url(&pg.unique_database("kb_dispatch_quiet"));
    let location = match BoardLocation::parse(&url).expect("test URL") {
        BoardLocation::Postgres(p) => BoardLocation::Postgres(p.with_board("default").unwrap()),
        other => panic!("not a PostgreSQL location: {other:?}"),
    };
    Some(Rig::new(location, tempfile::tempdir().unwrap()))
}

fn on_both_backends(test: fn(&Rig)) {
    test(&sqlite_rig());
    match postgres_rig() {
        Some(rig) => test(&rig),
        None => eprintln!("PostgreSQL half skipped: KANBAN_SKIP_POSTGRES is set"),
    }
}

#[test]
fn commits_by_any_handle_end_the_quiet() {
    on_both_backends(|rig| {
        let (_, quiet) = rig.pass();
        assert!(!quiet, "the first pass reads the board");
        assert!(rig.pass().1, "nothing changed: the next pass is quiet");
        // A task only a profile to come can run (no running task follows).
        let own = create(&*rig.store, "own", "ghost");
        let (r, quiet) = rig.pass();
        assert!(!quiet, "a write through the dispatcher's own handle");
        assert_eq!(r.skipped_nonspawnable, vec![own.clone()]);
        let (r, quiet) = rig.pass();
        assert!(quiet);
        assert_eq!(
            r.skipped_nonspawnable,
            vec![own.clone()],
            "a quiet pass answers what the full one found"
        );
        rig.clock.advance(1); // creation order is candidate order
        let other = create(&*rig.other_handle(), "other", "ghost");
        let (r, quiet) = rig.pass();
        assert!(!quiet, "a write through another handle");
        assert_eq!(r.skipped_nonspawnable, vec![own.clone(), other.clone()]);
        assert!(rig.pass().1);
        // The profile appears on disk: no board change, yet a full pass.
        rig.profiles.add("ghost");
        let (r, quiet) = rig.pass();
        assert!(!quiet, "a leftover's profile resolves now");
        assert_eq!(spawned(&r), vec![own.as_str(), other.as_str()]);
        assert!(!rig.pass().1, "running tasks: every pass reads the board");
        assert!(rig.dir.path().exists());
    });
}

#[test]
fn changed_options_end_the_quiet() {
    on_both_backends(|rig| {
        let id = create(&*rig.store, "t", "agent");
        let closed = DispatchOptions {
            max_spawn: Some(0),
            ..DispatchOptions::default()
        };
        let (r, _) = rig.pass_with(&closed);
        assert!(r.spawned.is_empty() && r.health.capacity_full);
        let (r, quiet) = rig.pass_with(&closed);
        assert!(quiet && r.spawned.is_empty());
        let (r, quiet) = rig.pass();
        assert!(!quiet, "other options: a full pass");
        assert_eq!(spawned(&r), vec![id.as_str()]);
    });
}

/// The deadline case: nothing at all changes on the board, only the clock
/// reaches a failed spawn's retry time; the pass at that second claims.
#[test]
fn a_due_retry_ends_the_quiet_without_any_change() {
    on_both_backends(|rig| {
        let id = create(&*rig.store, "t", "agent");
        rig.spawner.fail_with(Some("no such binary"));
        let (r, _) = rig.pass();
        assert!(r.spawned.is_empty(), "the spawn failed");
        let r = rig.settle();
        assert_eq!(r.respawn_guarded.len(), 1, "held by its backoff: {r:?}");
        assert!(
            r.next_pass_in_ms.is_some(),
            "a quiet pass still asks to wake"
        );
        let now = rig.store.now();
        let retry_at = rig
            .store
            .respawn_guard_facts(&id, now - 3600, now - 86_400)
            .unwrap()
            .spawn_retry_at
            .expect("retry time recorded");
        assert!(retry_at > now);
        // Fixed outside the board (the binary installed): no commit.
        rig.spawner.fail_with(None);
        while rig.store.now() < retry_at - 1 {
            rig.clock.advance(1);
            let (r, quiet) = rig.pass();
            assert!(quiet && r.spawned.is_empty(), "before the retry time");
        }
        rig.clock.set(retry_at);
        let (r, quiet) = rig.pass();
        assert!(!quiet, "the retry time came: a full pass");
        assert_eq!(spawned(&r), vec![id.as_str()]);
    });
}
