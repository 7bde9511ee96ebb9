//! A gateway waiting on a PostgreSQL board's change probe is woken by
//! another connection's commit (LISTEN/NOTIFY), not by the end of its poll.

use std::time::{Duration, Instant};

use kanban_store::backend::{BoardLocation, OpenRequest};
use kanban_store::watch::ChangeProbe;
use kanban_store::{NewTask, Store};
use kanban_store_postgres::PgStore;

/// Far longer than any wake-up: a wait that lasts it was not woken.
const LONG_WAIT: Duration = Duration::from_secs(30);

#[test]
fn a_commit_on_another_connection_ends_the_wait_and_changes_the_version() {
    let Some(pg) = kanban_testkit::postgres::cluster() else {
        return;
    };
    let url = pg.url(&pg.unique_database("kb_wake"));
    let BoardLocation::Postgres(location) = BoardLocation::parse(&url).unwrap() else {
        panic!("not a PostgreSQL URL: {url}");
    };
    let waiter = PgStore::open(&location, &OpenRequest::create()).unwrap();
    let mut probe = waiter.change_probe().unwrap();
    let before = probe.version().unwrap();

    let writer = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(200));
        let store = PgStore::open(&location, &OpenRequest::existing()).unwrap();
        store
            .create_task(&NewTask {
                title: "wake up".into(),
                ..Default::default()
            })
            .unwrap();
    });
    let started = Instant::now();
    probe.wait_for_change(LONG_WAIT);
    let waited = started.elapsed();
    writer.join().unwrap();
    assert!(
        waited < LONG_WAIT,
        "not woken by the commit (waited {waited:?})"
    );
    assert_ne!(probe.version().unwrap(), before);
}
