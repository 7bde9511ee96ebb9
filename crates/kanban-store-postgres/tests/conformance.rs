//! Runs the whole store conformance suite (`kanban-store-conformance`)
//! against `PgStore` on a real PostgreSQL server (the test kit's cluster):
//! one database for this test process, one board (schema) per test.

use std::sync::OnceLock;

use kanban_store::backend::{BoardLocation, OpenRequest, PostgresLocation};
use kanban_store_postgres::PgStore;

/// The database of this test process, created on first use; `None` when
/// PostgreSQL is missing and `KANBAN_SKIP_POSTGRES=1` asked to skip
/// (without it, a missing server fails the tests with how to install it).
fn database() -> Option<&'static str> {
    static URL: OnceLock<Option<String>> = OnceLock::new();
    URL.get_or_init(|| {
        let pg = kanban_testkit::postgres::cluster()?;
        Some(pg.url(&pg.unique_database("kb_conformance")))
    })
    .as_deref()
}

fn database_url() -> &'static str {
    database().expect("checked by `available`")
}

fn location(board: &str) -> PostgresLocation {
    match BoardLocation::parse(database_url()).expect("test URL") {
        BoardLocation::Postgres(pg) => pg.with_board(board).expect("board name"),
        other => panic!("not a PostgreSQL location: {other:?}"),
    }
}

kanban_store_conformance::store_conformance_tests!(
    available = || database().is_some(),
    open = |place| {
        let store = PgStore::open(&location(place.name()), &OpenRequest::create());
        Box::new(store.expect("open board"))
    },
    probe = |place| {
        let store = PgStore::open(&location(place.name()), &OpenRequest::existing());
        Box::new(store.expect("open board").change_probe().expect("probe"))
    },
);
