//! Whole-board copies between SQLite and PostgreSQL through the neutral
//! dump (`BoardStore::dump_board` / `load_board`): row for row, ids kept,
//! counters continued, a non-empty destination refused unchanged.

use kanban_store::backend::{BoardHandle, BoardLocation, OpenRequest, open_board};
use kanban_store::dump::{Cell, compare};
use kanban_store::{NewTask, StoreError};

fn pg_location(board: &str) -> Option<BoardLocation> {
    let pg = kanban_testkit::postgres::cluster()?;
    let url = pg.url(&pg.unique_database("kb_dump"));
    let BoardLocation::Postgres(loc) = BoardLocation::parse(&url).expect("URL") else {
        panic!("not postgres")
    };
    Some(BoardLocation::Postgres(
        loc.with_board(board).expect("board"),
    ))
}

fn open(loc: &BoardLocation) -> BoardHandle {
    kanban_store_postgres::register();
    open_board(loc, &OpenRequest::create()).expect("open board")
}

fn task(h: &BoardHandle, title: &str, parents: &[String]) -> String {
    h.store()
        .create_task(&NewTask {
            title: title.into(),
            parents: parents.to_vec(),
            ..Default::default()
        })
        .expect("create")
        .task
        .id
}

#[test]
fn a_board_goes_to_postgres_and_back_row_for_row() {
    let Some(pg_loc) = pg_location("moved") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let src = open(&BoardLocation::sqlite(dir.path().join("src.db")));
    let a = task(&src, "parent", &[]);
    let b = task(&src, "child", std::slice::from_ref(&a));
    src.store().add_comment(&b, "me", "note").unwrap();
    // A deleted task's events leave a gap the counters must remember.
    let gone = task(&src, "gone", &[]);
    src.store().archive_task(&gone).unwrap();
    src.store().delete_task(&gone, true).unwrap();
    let dump = src.dump_board().unwrap();
    let copied_events = dump.table("task_events").unwrap();
    let last_event = copied_events.last_id.unwrap();
    assert!(last_event > copied_events.max_id(), "the gap is recorded");

    let pg = open(&pg_loc);
    pg.load_board(&dump).unwrap();
    let on_pg = pg.dump_board().unwrap();
    assert_eq!(compare(&dump, &on_pg), Ok(()));
    assert_eq!(on_pg, dump);

    // Refused when not empty, nothing changed.
    let err = pg.load_board(&dump).unwrap_err();
    assert!(matches!(err, StoreError::Refused { .. }), "{err}");
    assert!(!err.to_string().contains("postgres:postgres@"), "{err}");
    assert_eq!(pg.dump_board().unwrap(), on_pg);

    // New rows get ids above the copied ones (and above the deleted ones).
    let c = pg.store().add_comment(&a, "pg", "after").unwrap();
    assert_eq!(
        c.id,
        dump.table("task_comments").unwrap().last_id.unwrap() + 1
    );
    assert_eq!(pg.store().latest_event_id().unwrap(), last_event + 1);

    // And back to a new SQLite file.
    let back = open(&BoardLocation::sqlite(dir.path().join("back.db")));
    let from_pg = pg.dump_board().unwrap();
    back.load_board(&from_pg).unwrap();
    assert_eq!(back.dump_board().unwrap(), from_pg);
    let Some(Cell::Text(title)) = from_pg
        .table("tasks")
        .unwrap()
        .rows
        .first()
        .map(|r| r[1].clone())
    else {
        panic!("a task title")
    };
    assert!(["parent", "child"].contains(&title.as_str()));
}
