//! Runs the whole store conformance suite (`kanban-store-conformance`)
//! against `SqliteStore`, each test on its own temporary board file.

use std::sync::Arc;

use kanban_store::SystemClock;
use kanban_store::sqlite::watch::SqliteChangeProbe;
use kanban_store::sqlite::{OpenOptions, SqliteStore};

/// The board file of a test board.
const BOARD_FILE: &str = "kanban.db";

kanban_store_conformance::store_conformance_tests!(
    open = |place| {
        let path = place.dir().join(BOARD_FILE);
        let store = SqliteStore::open(&path, OpenOptions::create(), Arc::new(SystemClock));
        Box::new(store.expect("open board"))
    },
    probe =
        |place| Box::new(SqliteChangeProbe::open(&place.dir().join(BOARD_FILE)).expect("probe")),
);
