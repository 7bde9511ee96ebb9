//! A closing `SqliteStore` empties an oversized WAL (never deletes it, never
//! waits for another connection) and leaves a small one alone. No gateway
//! listens here, so the bound is the one of a board without a gateway
//! (256 KiB; with a gateway listening it is 1 MiB, see the unit tests of
//! `sqlite::wal_trim`).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use kanban_store::sqlite::{OpenOptions, SqliteStore};
use kanban_store::*;

/// The trim bound of a store whose commits found no gateway listening.
const BIG_WAL: u64 = 256 * 1024;
/// Creates before giving up on growing the WAL past [`BIG_WAL`].
const MAX_CREATES: usize = 2000;

fn open(path: &Path) -> SqliteStore {
    SqliteStore::open(path, OpenOptions::create(), Arc::new(SystemClock)).expect("open board")
}

fn wal_len(db: &Path) -> u64 {
    let mut wal = db.as_os_str().to_owned();
    wal.push("-wal");
    std::fs::metadata(PathBuf::from(wal)).map_or(0, |m| m.len())
}

fn count(db: &Path) -> usize {
    let store = open(db);
    let n = store
        .list_tasks(&TaskQuery {
            include_archived: true,
            ..Default::default()
        })
        .expect("list")
        .len();
    drop(store);
    n
}

/// One commit larger than [`BIG_WAL`] (a task with a big body), so the
/// WAL file is over the bound afterwards (a checkpoint never shrinks it).
fn grow_wal(store: &SqliteStore, db: &Path) {
    store
        .create_task(&NewTask {
            title: "big".into(),
            body: Some("y".repeat(BIG_WAL as usize + BIG_WAL as usize / 2)),
            ..Default::default()
        })
        .expect("create");
    assert!(wal_len(db) > BIG_WAL, "WAL of {} bytes", wal_len(db));
}

/// What a board without a gateway sees: one short-lived store (a CLI
/// process) per small commit. The WAL grows across them until a closing
/// store finds it over the bound and empties it; returns the commits made.
fn small_commits_until_trimmed(db: &Path) -> usize {
    for i in 0..MAX_CREATES {
        let store = open(db);
        store
            .create_task(&NewTask {
                title: format!("cli {i}"),
                ..Default::default()
            })
            .expect("create");
        let before = wal_len(db);
        drop(store);
        if before > BIG_WAL {
            assert_eq!(wal_len(db), 0, "WAL of {before} bytes not emptied");
            return i + 1;
        }
        assert_eq!(wal_len(db), before, "a WAL under the bound was touched");
    }
    panic!("the WAL stayed under {BIG_WAL} bytes after {MAX_CREATES} processes");
}

#[test]
fn a_closing_store_empties_an_oversized_wal() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("kanban.db");
    let store = open(&db);
    grow_wal(&store, &db);
    drop(store);
    assert_eq!(wal_len(&db), 0, "WAL not emptied");
    assert!(
        std::fs::metadata(format!("{}-wal", db.display())).is_ok(),
        "the WAL file itself stays"
    );
    assert_eq!(count(&db), 1, "the commit reached the database");
}

#[test]
fn short_lived_stores_keep_the_wal_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("kanban.db");
    // The board's creation (its schema) fills most of the first WAL.
    let initial = small_commits_until_trimmed(&db);
    let first = small_commits_until_trimmed(&db);
    let second = small_commits_until_trimmed(&db);
    assert!(first > 1 && second > 1, "{first} {second}");
    assert_eq!(count(&db), initial + first + second);
}

#[test]
fn a_small_wal_is_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("kanban.db");
    // The board's creation (its schema) fills most of a first WAL, which
    // the first short-lived writer empties.
    small_commits_until_trimmed(&db);
    let store = open(&db);
    store
        .create_task(&NewTask {
            title: "one".into(),
            ..Default::default()
        })
        .expect("create");
    let before = wal_len(&db);
    drop(store);
    assert!(before > 0 && before <= BIG_WAL, "{before}");
    assert_eq!(
        wal_len(&db),
        before,
        "a small WAL was checkpointed on close"
    );
}

#[test]
fn a_reader_of_another_connection_is_not_waited_for() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("kanban.db");
    let store = open(&db);
    grow_wal(&store, &db);
    // A small commit after the checkpoint: frames the reader below reads
    // from the WAL (a reader of a fully checkpointed WAL reads the
    // database file alone, and emptying the WAL under it is harmless).
    store
        .create_task(&NewTask {
            title: "small".into(),
            ..Default::default()
        })
        .expect("create");
    let made = 2;
    // Another connection (as the Python reference would be) in the middle
    // of a read transaction.
    let reader = rusqlite::Connection::open(&db).unwrap();
    reader.execute_batch("BEGIN").unwrap();
    let seen: i64 = reader
        .query_row("SELECT count(*) FROM tasks", [], |r| r.get(0))
        .unwrap();
    assert_eq!(seen as usize, made);
    let before = wal_len(&db);
    drop(store); // must return at once: busy, so the WAL stays
    assert_eq!(wal_len(&db), before, "truncated under a live reader");
    let again: i64 = reader
        .query_row("SELECT count(*) FROM tasks", [], |r| r.get(0))
        .unwrap();
    assert_eq!(again, seen, "the reader's snapshot holds");
    reader.execute_batch("COMMIT").unwrap();
    drop(reader);
    assert_eq!(count(&db), made);
}
