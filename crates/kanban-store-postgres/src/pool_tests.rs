//! The pool on a real server: calls through one store run concurrently,
//! the pool never opens more than its size, boards of one database share
//! it without sharing statements, and dead connections are replaced.
//! Structural checks only (who waits for whom, what `pg_stat_activity`
//! lists): no assertion on how long anything takes.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, mpsc};
use std::time::{Duration, Instant};

use kanban_store::Store;
use kanban_store::backend::{BoardLocation, BoardStore as _, OpenRequest};
use kanban_store::params::{NewTask, TaskQuery};
use kanban_testkit::postgres::{Shutdown, TestCluster};

use super::{ALIVE_BYPASS, POOL_APPLICATION_NAME};
use crate::PgStore;

/// Bound on a step that must not block: a deadlock fails the test instead
/// of hanging it (never reached when the code is right).
const STEP_WAIT: Duration = Duration::from_secs(30);

/// A fresh database on the shared test server: its URL and name.
fn database(prefix: &str) -> (String, String) {
    let pg = kanban_testkit::postgres::cluster().expect("PostgreSQL for the tests");
    let db = pg.unique_database(prefix);
    (pg.url(&db), db)
}

fn open(url: &str, board: &str, pool_size: Option<u32>) -> PgStore {
    let BoardLocation::Postgres(pg) = BoardLocation::parse(url).expect("test URL") else {
        panic!("not a PostgreSQL URL: {url}");
    };
    let location = pg.with_board(board).expect("board name");
    PgStore::open(&location, &OpenRequest::create().with_pool_size(pool_size)).expect("open")
}

fn task(title: &str) -> NewTask {
    NewTask {
        title: title.into(),
        ..NewTask::default()
    }
}

fn titles(store: &PgStore) -> Vec<String> {
    let tasks = store.list_tasks(&TaskQuery::default()).expect("list");
    tasks.into_iter().map(|t| t.title).collect()
}

/// Pooled backends of database `db` now, seen from outside.
fn pooled_backends(pg: &TestCluster, db: &str) -> i64 {
    pg.client("postgres")
        .query_one(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = $1 AND application_name = $2",
            &[&db, &POOL_APPLICATION_NAME],
        )
        .expect("pg_stat_activity")
        .get(0)
}

fn shared_cluster() -> &'static TestCluster {
    kanban_testkit::postgres::cluster().expect("PostgreSQL for the tests")
}

/// Wait until `done()`, at most [`STEP_WAIT`].
fn wait_until(what: &str, done: impl Fn() -> bool) {
    let end = Instant::now() + STEP_WAIT;
    while !done() {
        assert!(Instant::now() < end, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// A gate the reading threads wait at until the test opens it.
#[derive(Default)]
struct Gate {
    open: Mutex<bool>,
    opened: Condvar,
}

impl Gate {
    fn wait(&self) {
        let open = self.open.lock().unwrap();
        let (open, timeout) = self
            .opened
            .wait_timeout_while(open, STEP_WAIT, |o| !*o)
            .unwrap();
        assert!(*open && !timeout.timed_out(), "the gate never opened");
    }

    fn open(&self) {
        *self.open.lock().unwrap() = true;
        self.opened.notify_all();
    }
}

/// `callers` threads each read through `store` and, holding the
/// connection, wait at `gate`. Returns the threads (each yields its
/// backend pid), how many are inside a read, and the most ever inside.
struct Readers {
    threads: Vec<std::thread::JoinHandle<i32>>,
    inside: Arc<AtomicUsize>,
    most: Arc<AtomicUsize>,
    started: Arc<AtomicUsize>,
}

fn readers(store: &Arc<PgStore>, callers: usize, gate: &Arc<Gate>) -> Readers {
    let inside = Arc::new(AtomicUsize::new(0));
    let most = Arc::new(AtomicUsize::new(0));
    let started = Arc::new(AtomicUsize::new(0));
    let threads = (0..callers)
        .map(|_| {
            let (store, gate) = (store.clone(), gate.clone());
            let (inside, most, started) = (inside.clone(), most.clone(), started.clone());
            std::thread::spawn(move || {
                started.fetch_add(1, Ordering::SeqCst);
                store
                    .read(|db| {
                        let pid: i32 = db.query_one("SELECT pg_backend_pid()", &[])?.get(0);
                        let now = inside.fetch_add(1, Ordering::SeqCst) + 1;
                        most.fetch_max(now, Ordering::SeqCst);
                        gate.wait();
                        inside.fetch_sub(1, Ordering::SeqCst);
                        Ok(pid)
                    })
                    .expect("read")
            })
        })
        .collect();
    Readers {
        threads,
        inside,
        most,
        started,
    }
}

#[test]
fn a_call_completes_while_another_holds_a_transaction_on_the_same_store() {
    let (url, _) = database("kb_pool_concurrent");
    let store = Arc::new(open(&url, "main", None));
    let (entered_tx, entered_rx) = mpsc::channel();
    let (release_tx, release_rx) = mpsc::channel::<()>();
    let holder = {
        let store = store.clone();
        std::thread::spawn(move || {
            store.read_snapshot(|db| {
                db.query("SELECT count(*) FROM tasks", &[])?;
                entered_tx.send(()).unwrap();
                release_rx.recv_timeout(STEP_WAIT).expect("released");
                Ok(())
            })
        })
    };
    entered_rx
        .recv_timeout(STEP_WAIT)
        .expect("the first call opened its transaction");

    // A write and a read through the same store, while the snapshot above
    // stays open on its connection (with one connection they would wait).
    let (done_tx, done_rx) = mpsc::channel();
    let second = store.clone();
    std::thread::spawn(move || {
        let out = second
            .create_task(&task("written meanwhile"))
            .and_then(|c| second.get_task(&c.task.id));
        let _ = done_tx.send(out);
    });
    let got = done_rx
        .recv_timeout(STEP_WAIT)
        .expect("the second call completes while the first holds its connection");
    assert_eq!(got.unwrap().unwrap().title, "written meanwhile");

    release_tx.send(()).unwrap();
    holder.join().unwrap().unwrap();
    assert_eq!(titles(&store), ["written meanwhile"]);
}

#[test]
fn the_pool_never_opens_more_connections_than_its_size() {
    const SIZE: u32 = 3;
    const CALLERS: usize = 5;
    let pg = shared_cluster();
    let (url, db) = database("kb_pool_size");
    let store = Arc::new(open(&url, "main", Some(SIZE)));
    let gate = Arc::new(Gate::default());
    let r = readers(&store, CALLERS, &gate);

    // SIZE callers hold a connection each; the others wait for one.
    wait_until("every caller asked", || {
        r.started.load(Ordering::SeqCst) == CALLERS
    });
    wait_until("the pool is lent out", || {
        r.inside.load(Ordering::SeqCst) == SIZE as usize
    });
    // Room for a wrong pool to let a waiting caller in (never flaky: a
    // right one never does).
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(r.inside.load(Ordering::SeqCst), SIZE as usize);
    assert_eq!(pooled_backends(pg, &db), i64::from(SIZE));
    let status = store.pool.status();
    assert_eq!((status.size, status.busy, status.idle), (SIZE, SIZE, 0));

    gate.open();
    let pids: Vec<i32> = r.threads.into_iter().map(|t| t.join().unwrap()).collect();
    assert_eq!(pids.len(), CALLERS);
    assert_eq!(r.most.load(Ordering::SeqCst), SIZE as usize);
    let distinct: std::collections::BTreeSet<_> = pids.iter().collect();
    assert_eq!(distinct.len(), SIZE as usize, "{pids:?}");
    assert_eq!(pooled_backends(pg, &db), i64::from(SIZE));
    let status = store.pool.status();
    assert_eq!((status.busy, status.idle), (0, SIZE));
}

#[test]
fn boards_of_one_database_share_one_pool_but_not_their_statements() {
    let pg = shared_cluster();
    let (url, db) = database("kb_pool_boards");
    let alpha = open(&url, "alpha", None);
    let beta = open(&url, "beta", None);
    assert!(Arc::ptr_eq(&alpha.pool, &beta.pool));
    assert_eq!(alpha.pool_status(), beta.pool_status());

    alpha.create_task(&task("in alpha")).unwrap();
    beta.create_task(&task("in beta")).unwrap();
    // One call at a time: the one connection serves both boards in turn,
    // each time with its own board's tables.
    for _ in 0..3 {
        assert_eq!(titles(&alpha), ["in alpha"]);
        assert_eq!(titles(&beta), ["in beta"]);
    }
    let pid = |s: &PgStore| {
        s.read(|db| {
            Ok(db
                .query_one("SELECT pg_backend_pid()", &[])?
                .get::<_, i32>(0))
        })
        .unwrap()
    };
    assert_eq!(pid(&alpha), pid(&beta));
    assert_eq!(pooled_backends(pg, &db), 1);

    // The list query was prepared once per board on that session, not
    // shared between them.
    let twice: Vec<String> = alpha
        .read(|db| {
            let rows = db.query(
                "SELECT statement FROM pg_prepared_statements \
                 WHERE statement LIKE '%FROM tasks%' GROUP BY statement HAVING count(*) = 2",
                &[],
            )?;
            Ok(rows.iter().map(|r| r.get(0)).collect())
        })
        .unwrap();
    assert!(!twice.is_empty(), "no statement prepared for each board");
}

#[test]
fn the_call_after_every_pooled_backend_was_terminated_succeeds() {
    const SIZE: u32 = 3;
    let pg = shared_cluster();
    let (url, db) = database("kb_pool_terminate");
    let store = Arc::new(open(&url, "main", Some(SIZE)));
    let gate = Arc::new(Gate::default());
    let r = readers(&store, SIZE as usize, &gate);
    wait_until("every connection is open", || {
        r.inside.load(Ordering::SeqCst) == SIZE as usize
    });
    gate.open();
    let old: Vec<i32> = r.threads.into_iter().map(|t| t.join().unwrap()).collect();
    assert_eq!(store.pool.status().idle, SIZE);

    let killed: i64 = pg
        .client("postgres")
        .query_one(
            "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid, 5000)) \
             FROM pg_stat_activity WHERE datname = $1 AND application_name = $2",
            &[&db, &POOL_APPLICATION_NAME],
        )
        .unwrap()
        .get(0);
    assert_eq!(killed, i64::from(SIZE));
    // Idle long enough to be checked before use (one given back just now
    // is lent unchecked: see the module).
    std::thread::sleep(ALIVE_BYPASS + Duration::from_millis(100));

    let created = store
        .create_task(&task("after the kill"))
        .expect("the next call");
    assert_eq!(titles(&store), ["after the kill"]);
    assert_eq!(created.task.title, "after the kill");
    let now: i32 = store
        .read(|db| Ok(db.query_one("SELECT pg_backend_pid()", &[])?.get(0)))
        .unwrap();
    assert!(!old.contains(&now), "{now} was terminated: {old:?}");
    // The dead ones were dropped, not kept idle.
    assert_eq!(store.pool.status().idle + store.pool.status().busy, 1);
}

#[test]
fn calls_fail_promptly_while_the_database_is_away_and_work_once_it_is_back() {
    let pg = kanban_testkit::postgres::private_cluster().expect("PostgreSQL for the tests");
    let db = pg.unique_database("kb_pool_outage");
    let store = open(&pg.url(&db), "main", None);
    store.create_task(&task("before")).unwrap();

    pg.stop(Shutdown::Fast);
    // Every call fails: the first on its dead connection (lent unchecked,
    // it was given back just now), the next ones connecting, and they keep
    // failing rather than waiting for the server.
    let errors: Vec<String> = (0..3)
        .map(|_| {
            store
                .list_tasks(&TaskQuery::default())
                .unwrap_err()
                .to_string()
        })
        .collect();
    assert!(errors[2].contains("board main"), "{errors:?}");
    assert_eq!(store.pool.status().idle, 0);

    pg.start();
    wait_until("calls succeed again", || {
        store.list_tasks(&TaskQuery::default()).is_ok()
    });
    assert_eq!(titles(&store), ["before"]);
    store.create_task(&task("after")).unwrap();
}
