//! Whole-board copies on SQLite (`BoardStore::dump_board` / `load_board`):
//! every table of [`BOARD_TABLES`] read in one read transaction, or written
//! into an empty board in one `BEGIN IMMEDIATE` transaction.
//!
//! The board's schema is the one `open` creates (the reference's), so the
//! Python implementation reads a loaded file as its own; our bookkeeping
//! tables are created here only when the copy has rows for them, with the
//! same definitions the dispatcher and notifier use (a test keeps them
//! equal). `sqlite_sequence` is set so AUTOINCREMENT ids continue after
//! the copied ones.

use rusqlite::types::{Value, ValueRef};
use rusqlite::{Connection, OptionalExtension, params_from_iter};

use super::SqliteStore;
use super::txn::{DbResult, Tx};
use crate::dump::{BOARD_TABLES, BoardDump, Cell, ColumnKind, TableDump, TableSpec, not_empty};
use crate::{BackendError, Result, StoreError};

/// Definitions of our bookkeeping tables, identical to the ones the
/// dispatcher (`dispatch*.rs`) and notifier (`notify_claim.rs`) create on
/// first use (`bookkeeping_tables_match_their_owners` checks it).
const BOOKKEEPING_SQL: &[(&str, &str)] = &[
    (
        "kanban_rs_workers",
        "CREATE TABLE IF NOT EXISTS kanban_rs_workers (
    run_id     INTEGER PRIMARY KEY,
    task_id    TEXT NOT NULL,
    pid        INTEGER NOT NULL,
    start_time INTEGER,
    boot_id    TEXT,
    host       TEXT,
    spawned_at INTEGER NOT NULL
)",
    ),
    (
        "kanban_rs_launches",
        "CREATE TABLE IF NOT EXISTS kanban_rs_launches (
    run_id     INTEGER PRIMARY KEY,
    task_id    TEXT NOT NULL,
    pid        INTEGER NOT NULL,
    start_time INTEGER,
    boot_id    TEXT,
    host       TEXT,
    claimed_at INTEGER NOT NULL
)",
    ),
    (
        "kanban_rs_supervisors",
        "CREATE TABLE IF NOT EXISTS kanban_rs_supervisors (
    run_id     INTEGER PRIMARY KEY,
    task_id    TEXT NOT NULL,
    pid        INTEGER NOT NULL,
    start_time INTEGER,
    boot_id    TEXT,
    host       TEXT
)",
    ),
    (
        "kanban_rs_intents",
        "CREATE TABLE IF NOT EXISTS kanban_rs_intents (
    run_id     INTEGER PRIMARY KEY,
    task_id    TEXT NOT NULL,
    kind       TEXT NOT NULL,
    detail     TEXT,
    decided_at INTEGER NOT NULL
)",
    ),
    (
        "kanban_rs_notify_failures",
        "CREATE TABLE IF NOT EXISTS kanban_rs_notify_failures (
    task_id        TEXT NOT NULL,
    platform       TEXT NOT NULL,
    chat_id        TEXT NOT NULL,
    thread_id      TEXT NOT NULL DEFAULT '',
    sub_created_at INTEGER NOT NULL,
    failures       INTEGER NOT NULL,
    last_error     TEXT,
    updated_at     INTEGER NOT NULL,
    PRIMARY KEY (task_id, platform, chat_id, thread_id)
)",
    ),
];

/// Rows of one multi-row `INSERT` (SQLite allows 32766 parameters).
const INSERT_ROWS_MAX: usize = 500;

impl SqliteStore {
    pub(crate) fn dump_all(&self) -> Result<BoardDump> {
        self.read_snapshot(|c| {
            let tables = BOARD_TABLES
                .iter()
                .map(|spec| dump_table(c, spec))
                .collect::<DbResult<Vec<_>>>()?;
            Ok(BoardDump { tables })
        })
    }

    pub(crate) fn load_all(&self, dump: &BoardDump) -> Result<()> {
        dump.validate()?;
        let location = self.path().display().to_string();
        self.write(|tx| load(tx, dump, &location))
    }
}

/// The table's column names, `None` when it does not exist.
fn columns_of(c: &Connection, table: &str) -> DbResult<Option<Vec<String>>> {
    let mut st = c.prepare("SELECT name FROM pragma_table_info(?1)")?;
    let cols = st
        .query_map([table], |r| r.get::<_, String>(0))?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok((!cols.is_empty()).then_some(cols))
}

fn dump_table(c: &Connection, spec: &TableSpec) -> DbResult<TableDump> {
    let mut out = TableDump::empty(spec);
    let Some(present) = columns_of(c, spec.name)? else {
        return Ok(out);
    };
    // A column we do not know (a newer Hermes) would be lost: refuse.
    if let Some(extra) = present
        .iter()
        .find(|p| !spec.columns.iter().any(|(c, _)| c == p))
    {
        return Err(StoreError::Backend(BackendError::msg(format!(
            "cannot copy table {}: it has a column this kanban does not know ({extra})",
            spec.name
        )))
        .into());
    }
    // Columns an older writer never added read as NULL.
    let select: Vec<String> = spec
        .columns
        .iter()
        .map(|(col, _)| match present.iter().any(|p| p == col) {
            true => col.to_string(),
            false => "NULL".to_string(),
        })
        .collect();
    let sql = format!("SELECT {} FROM {}", select.join(", "), spec.name);
    let mut st = c.prepare(&sql)?;
    let mut rows = st.query([])?;
    while let Some(r) = rows.next()? {
        let mut row = Vec::with_capacity(spec.columns.len());
        for (i, (_, kind)) in spec.columns.iter().enumerate() {
            row.push(cell_of(r.get_ref(i)?, *kind));
        }
        out.rows.push(row);
    }
    if spec.counted_id {
        let seq: Option<i64> = c
            .query_row(
                "SELECT seq FROM sqlite_sequence WHERE name = ?1",
                [spec.name],
                |r| r.get(0),
            )
            .optional()?;
        out.last_id = Some(seq.unwrap_or(0).max(out.max_id()));
    }
    Ok(out)
}

/// A SQLite value as a cell of the column's kind, leniently (as
/// `row::opt_i64` / `row::opt_str` read them).
fn cell_of(v: ValueRef<'_>, kind: ColumnKind) -> Cell {
    match (kind, v) {
        (_, ValueRef::Null) => Cell::Null,
        (ColumnKind::Int, ValueRef::Integer(i)) => Cell::Int(i),
        (ColumnKind::Int, ValueRef::Real(f)) if f.is_finite() => Cell::Int(f as i64),
        (ColumnKind::Int, ValueRef::Text(t)) => std::str::from_utf8(t)
            .ok()
            .and_then(|s| {
                let s = s.trim();
                s.parse::<i64>()
                    .ok()
                    .or_else(|| s.parse::<f64>().ok().map(|f| f as i64))
            })
            .map_or(Cell::Null, Cell::Int),
        (ColumnKind::Int, _) => Cell::Null,
        (ColumnKind::Text, ValueRef::Text(t) | ValueRef::Blob(t)) => {
            Cell::Text(String::from_utf8_lossy(t).into_owned())
        }
        (ColumnKind::Text, ValueRef::Integer(i)) => Cell::Text(i.to_string()),
        (ColumnKind::Text, ValueRef::Real(f)) => Cell::Text(f.to_string()),
    }
}

fn value_of(cell: &Cell) -> Value {
    match cell {
        Cell::Null => Value::Null,
        Cell::Int(i) => Value::Integer(*i),
        Cell::Text(s) => Value::Text(s.clone()),
    }
}

fn load(tx: &Tx<'_>, dump: &BoardDump, location: &str) -> DbResult<()> {
    let c = tx.conn;
    for spec in BOARD_TABLES {
        if columns_of(c, spec.name)?.is_some() {
            let sql = format!("SELECT EXISTS (SELECT 1 FROM {})", spec.name);
            if c.query_row(&sql, [], |r| r.get::<_, bool>(0))? {
                return Err(not_empty(location, spec.name).into());
            }
        }
    }
    for table in &dump.tables {
        let spec = crate::dump::table_spec(&table.name).expect("validated");
        if !table.rows.is_empty()
            && let Some((_, ddl)) = BOOKKEEPING_SQL.iter().find(|(n, _)| *n == spec.name)
        {
            c.execute_batch(ddl)?;
        }
        insert_rows(c, spec, &table.rows)?;
        if let Some(last) = table.last_id.filter(|n| *n > 0) {
            // Inserting explicit ids already advanced the counter to the
            // highest one; ids of rows deleted before the copy count too.
            c.execute(
                "INSERT INTO sqlite_sequence (name, seq) SELECT ?1, ?2 \
                 WHERE NOT EXISTS (SELECT 1 FROM sqlite_sequence WHERE name = ?1)",
                rusqlite::params![spec.name, last],
            )?;
            c.execute(
                "UPDATE sqlite_sequence SET seq = ?2 WHERE name = ?1 AND seq < ?2",
                rusqlite::params![spec.name, last],
            )?;
        }
    }
    Ok(())
}

fn insert_rows(c: &Connection, spec: &TableSpec, rows: &[Vec<Cell>]) -> DbResult<()> {
    let width = spec.columns.len();
    let one = format!("({})", vec!["?"; width].join(", "));
    for chunk in rows.chunks(INSERT_ROWS_MAX) {
        let sql = format!(
            "INSERT INTO {} ({}) VALUES {}",
            spec.name,
            spec.column_list(),
            vec![one.as_str(); chunk.len()].join(", ")
        );
        let values = chunk.iter().flatten().map(value_of);
        c.prepare_cached(&sql)?.execute(params_from_iter(values))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::clock::ManualClock;
    use crate::dispatch_ops::DispatchStore;
    use crate::dump::compare;
    use crate::notify_ops::{DeliveryFailure, NotifyStore};
    use crate::sqlite::OpenOptions;
    use crate::{NewNotifySub, NewTask, NotifyKey, Store};

    fn store_at(path: &std::path::Path) -> SqliteStore {
        SqliteStore::open(
            path,
            OpenOptions::create(),
            Arc::new(ManualClock::new(1_700_000_000)),
        )
        .unwrap()
    }

    fn table_info(
        s: &SqliteStore,
        table: &str,
    ) -> Vec<(String, String, bool, Option<String>, i64)> {
        s.read(|c| {
            let mut st = c.prepare(
                "SELECT name, type, \"notnull\", dflt_value, pk FROM pragma_table_info(?1)",
            )?;
            let rows = st
                .query_map([table], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
                })?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Ok(rows)
        })
        .unwrap()
    }

    /// A board with a row in every table, our bookkeeping ones included.
    fn busy_board(s: &SqliteStore) {
        let t = s
            .create_task(&NewTask {
                title: "one".into(),
                ..Default::default()
            })
            .unwrap()
            .task;
        s.create_task(&NewTask {
            title: "two".into(),
            parents: vec![t.id.clone()],
            ..Default::default()
        })
        .unwrap();
        s.add_comment(&t.id, "me", "hello").unwrap();
        s.notify_subscribe(&NewNotifySub {
            task_id: t.id.clone(),
            platform: "slack".into(),
            chat_id: "c1".into(),
            ..Default::default()
        })
        .unwrap();
        s.prepare_dispatch().unwrap();
        s.notify_delivery_failed(&DeliveryFailure {
            key: NotifyKey {
                task_id: t.id.clone(),
                platform: "slack".into(),
                chat_id: "c1".into(),
                ..Default::default()
            },
            old_cursor: 0,
            claimed_cursor: 0,
            rewind_to: 0,
            error: "down".into(),
        })
        .unwrap();
        s.write(|tx| {
            tx.conn.execute_batch(
                "INSERT INTO kanban_rs_workers VALUES (7, 't', 1, 2, 'b', 'h', 3);
                 INSERT INTO kanban_rs_launches VALUES (7, 't', 1, 2, 'b', 'h', 3);
                 INSERT INTO kanban_rs_supervisors VALUES (7, 't', 1, 2, 'b', 'h');
                 INSERT INTO kanban_rs_intents VALUES (7, 't', 'k', NULL, 3);
                 INSERT INTO task_runs (task_id, status, started_at) VALUES ('t', 'done', 1);
                 INSERT INTO task_attachments (task_id, filename, stored_path, created_at)
                     VALUES ('t', 'f.txt', '/p/f.txt', 1);
                 DELETE FROM task_comments;",
            )?;
            Ok(())
        })
        .unwrap();
    }

    #[test]
    fn bookkeeping_tables_match_their_owners() {
        let dir = tempfile::tempdir().unwrap();
        let theirs = store_at(&dir.path().join("a.db"));
        busy_board(&theirs);
        let ours = store_at(&dir.path().join("b.db"));
        ours.write(|tx| {
            for (_, ddl) in BOOKKEEPING_SQL {
                tx.conn.execute_batch(ddl)?;
            }
            Ok(())
        })
        .unwrap();
        for (name, _) in BOOKKEEPING_SQL {
            let info = table_info(&theirs, name);
            assert!(!info.is_empty(), "{name} was created by its owner");
            assert_eq!(info, table_info(&ours, name), "{name}");
        }
    }

    #[test]
    fn a_board_copies_row_for_row_and_keeps_its_counters() {
        let dir = tempfile::tempdir().unwrap();
        let src = store_at(&dir.path().join("src.db"));
        busy_board(&src);
        let dump = src.dump_all().unwrap();
        let empty: Vec<&str> = dump
            .tables
            .iter()
            .filter(|t| t.rows.is_empty())
            .map(|t| t.name.as_str())
            .collect();
        assert_eq!(empty, ["task_comments"]);
        assert_eq!(dump.table("task_comments").unwrap().last_id, Some(1));

        let dst = store_at(&dir.path().join("dst.db"));
        dst.load_all(&dump).unwrap();
        let copied = dst.dump_all().unwrap();
        assert_eq!(compare(&dump, &copied), Ok(()));
        assert_eq!(copied, dump);
        // A board with rows is refused, unchanged.
        let err = dst.load_all(&dump).unwrap_err();
        assert!(matches!(err, StoreError::Refused { .. }), "{err}");
        assert!(err.to_string().contains("not empty"), "{err}");
        assert_eq!(dst.dump_all().unwrap(), copied);
        // The deleted comment's id is not reused.
        let Cell::Text(id) = &dump.table("tasks").unwrap().rows[0][0] else {
            panic!("task id")
        };
        assert_eq!(dst.add_comment(id, "me", "again").unwrap().id, 2);
    }

    #[test]
    fn odd_cells_are_read_leniently() {
        assert_eq!(cell_of(ValueRef::Real(5.0), ColumnKind::Int), Cell::Int(5));
        assert_eq!(
            cell_of(ValueRef::Text(b" 7 "), ColumnKind::Int),
            Cell::Int(7)
        );
        assert_eq!(cell_of(ValueRef::Text(b"x"), ColumnKind::Int), Cell::Null);
        assert_eq!(
            cell_of(ValueRef::Integer(3), ColumnKind::Text),
            Cell::Text("3".into())
        );
        assert_eq!(
            cell_of(ValueRef::Blob(b"ab"), ColumnKind::Text),
            Cell::Text("ab".into())
        );
    }
}
