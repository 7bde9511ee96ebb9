//! A backend-neutral copy of a whole board, for moving boards between
//! backends (`kanban boards migrate`): every table of the Hermes board and
//! our `kanban_rs_*` bookkeeping tables, row for row, with their ids.
//!
//! A backend fills a [`BoardDump`] from one snapshot
//! (`BoardStore::dump_board`) and writes one into an empty board in one
//! transaction (`BoardStore::load_board`). [`BOARD_TABLES`] is the one list
//! of what is copied: backend-specific bookkeeping (SQLite's
//! `kanban_rs_meta`, PostgreSQL's migration and version tables) is not.
//! [`compare`] checks two dumps row for row and names the first mismatch.

use std::collections::BTreeMap;
use std::fmt;

use serde::Serialize;

use crate::StoreError;

/// One cell. Boards hold only integers, text and NULL; a SQLite cell of
/// another type is converted leniently (REAL → integer, numbers → text),
/// as the SQLite backend's row readers do.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Cell {
    Null,
    Int(i64),
    Text(String),
}

impl fmt::Display for Cell {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Cell::Null => f.write_str("NULL"),
            Cell::Int(i) => write!(f, "{i}"),
            Cell::Text(s) => {
                let short: String = s.chars().take(SHOWN_TEXT_CHARS).collect();
                let more = if short.len() < s.len() { "…" } else { "" };
                write!(f, "{short:?}{more}")
            }
        }
    }
}

/// How much of a text cell a mismatch message shows.
const SHOWN_TEXT_CHARS: usize = 60;

/// The type of a column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColumnKind {
    Int,
    Text,
}

/// A copied table: its columns (in dump order), the columns that identify
/// a row, and whether its `id` comes from a counter (AUTOINCREMENT /
/// identity) that must continue after the copied ids.
#[derive(Debug, Clone, Copy)]
pub struct TableSpec {
    pub name: &'static str,
    pub columns: &'static [(&'static str, ColumnKind)],
    pub key: &'static [&'static str],
    pub counted_id: bool,
}

impl TableSpec {
    /// The column names, comma-separated (plain identifiers on both backends).
    pub fn column_list(&self) -> String {
        self.columns
            .iter()
            .map(|(c, _)| *c)
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// Position of each key column.
    fn key_indexes(&self) -> Vec<usize> {
        self.key
            .iter()
            .map(|k| {
                self.columns
                    .iter()
                    .position(|(c, _)| c == k)
                    .expect("key columns are columns")
            })
            .collect()
    }

    /// Is this one of our own tables (created on first use on SQLite)?
    pub fn is_bookkeeping(&self) -> bool {
        self.name.starts_with("kanban_rs_")
    }
}

/// The spec of table `name`.
pub fn table_spec(name: &str) -> Option<&'static TableSpec> {
    BOARD_TABLES.iter().find(|t| t.name == name)
}

use ColumnKind::{Int, Text};

const RUN_KEY: &[&str] = &["run_id"];
const ID_KEY: &[&str] = &["id"];
const SUB_KEY: &[&str] = &["task_id", "platform", "chat_id", "thread_id"];

/// Every table a board copy carries, parents before children, with the
/// Hermes columns in the reference's order.
pub const BOARD_TABLES: &[TableSpec] = &[
    TableSpec {
        name: "tasks",
        columns: &[
            ("id", Text),
            ("title", Text),
            ("body", Text),
            ("assignee", Text),
            ("status", Text),
            ("priority", Int),
            ("created_by", Text),
            ("created_at", Int),
            ("started_at", Int),
            ("completed_at", Int),
            ("workspace_kind", Text),
            ("workspace_path", Text),
            ("branch_name", Text),
            ("project_id", Text),
            ("claim_lock", Text),
            ("claim_expires", Int),
            ("tenant", Text),
            ("result", Text),
            ("idempotency_key", Text),
            ("consecutive_failures", Int),
            ("worker_pid", Int),
            ("last_failure_error", Text),
            ("max_runtime_seconds", Int),
            ("last_heartbeat_at", Int),
            ("current_run_id", Int),
            ("workflow_template_id", Text),
            ("current_step_key", Text),
            ("skills", Text),
            ("model_override", Text),
            ("max_retries", Int),
            ("goal_mode", Int),
            ("goal_max_turns", Int),
            ("session_id", Text),
            ("block_kind", Text),
            ("block_recurrences", Int),
        ],
        key: ID_KEY,
        counted_id: false,
    },
    TableSpec {
        name: "task_links",
        columns: &[("parent_id", Text), ("child_id", Text)],
        key: &["parent_id", "child_id"],
        counted_id: false,
    },
    TableSpec {
        name: "task_comments",
        columns: &[
            ("id", Int),
            ("task_id", Text),
            ("author", Text),
            ("body", Text),
            ("created_at", Int),
        ],
        key: ID_KEY,
        counted_id: true,
    },
    TableSpec {
        name: "task_events",
        columns: &[
            ("id", Int),
            ("task_id", Text),
            ("run_id", Int),
            ("kind", Text),
            ("payload", Text),
            ("created_at", Int),
        ],
        key: ID_KEY,
        counted_id: true,
    },
    TableSpec {
        name: "task_runs",
        columns: &[
            ("id", Int),
            ("task_id", Text),
            ("profile", Text),
            ("step_key", Text),
            ("status", Text),
            ("claim_lock", Text),
            ("claim_expires", Int),
            ("worker_pid", Int),
            ("max_runtime_seconds", Int),
            ("last_heartbeat_at", Int),
            ("started_at", Int),
            ("ended_at", Int),
            ("outcome", Text),
            ("summary", Text),
            ("metadata", Text),
            ("error", Text),
        ],
        key: ID_KEY,
        counted_id: true,
    },
    TableSpec {
        name: "task_attachments",
        columns: &[
            ("id", Int),
            ("task_id", Text),
            ("filename", Text),
            ("stored_path", Text),
            ("content_type", Text),
            ("size", Int),
            ("uploaded_by", Text),
            ("created_at", Int),
        ],
        key: ID_KEY,
        counted_id: true,
    },
    TableSpec {
        name: "kanban_notify_subs",
        columns: &[
            ("task_id", Text),
            ("platform", Text),
            ("chat_id", Text),
            ("thread_id", Text),
            ("user_id", Text),
            ("notifier_profile", Text),
            ("created_at", Int),
            ("last_event_id", Int),
        ],
        key: SUB_KEY,
        counted_id: false,
    },
    TableSpec {
        name: "kanban_rs_workers",
        columns: &[
            ("run_id", Int),
            ("task_id", Text),
            ("pid", Int),
            ("start_time", Int),
            ("boot_id", Text),
            ("host", Text),
            ("spawned_at", Int),
        ],
        key: RUN_KEY,
        counted_id: false,
    },
    TableSpec {
        name: "kanban_rs_launches",
        columns: &[
            ("run_id", Int),
            ("task_id", Text),
            ("pid", Int),
            ("start_time", Int),
            ("boot_id", Text),
            ("host", Text),
            ("claimed_at", Int),
        ],
        key: RUN_KEY,
        counted_id: false,
    },
    TableSpec {
        name: "kanban_rs_supervisors",
        columns: &[
            ("run_id", Int),
            ("task_id", Text),
            ("pid", Int),
            ("start_time", Int),
            ("boot_id", Text),
            ("host", Text),
        ],
        key: RUN_KEY,
        counted_id: false,
    },
    TableSpec {
        name: "kanban_rs_intents",
        columns: &[
            ("run_id", Int),
            ("task_id", Text),
            ("kind", Text),
            ("detail", Text),
            ("decided_at", Int),
        ],
        key: RUN_KEY,
        counted_id: false,
    },
    TableSpec {
        name: "kanban_rs_notify_failures",
        columns: &[
            ("task_id", Text),
            ("platform", Text),
            ("chat_id", Text),
            ("thread_id", Text),
            ("sub_created_at", Int),
            ("failures", Int),
            ("last_error", Text),
            ("updated_at", Int),
        ],
        key: SUB_KEY,
        counted_id: false,
    },
];

/// One table's rows, each in the order of `columns`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableDump {
    pub name: String,
    pub columns: Vec<String>,
    pub rows: Vec<Vec<Cell>>,
    /// For tables with a counted id: the highest id the counter ever
    /// handed out (at least the highest id present; 0 when none), so ids
    /// of deleted rows are not reused after a copy either.
    pub last_id: Option<i64>,
}

impl TableDump {
    /// An empty dump of `spec` (a table the board does not have yet).
    pub fn empty(spec: &TableSpec) -> TableDump {
        TableDump {
            name: spec.name.to_string(),
            columns: spec.columns.iter().map(|(c, _)| c.to_string()).collect(),
            rows: Vec::new(),
            last_id: spec.counted_id.then_some(0),
        }
    }

    /// The highest value of the `id` column (0 when none).
    pub fn max_id(&self) -> i64 {
        let Some(i) = self.columns.iter().position(|c| c == "id") else {
            return 0;
        };
        self.rows
            .iter()
            .filter_map(|r| match r.get(i) {
                Some(Cell::Int(v)) => Some(*v),
                _ => None,
            })
            .max()
            .unwrap_or(0)
    }
}

/// A whole board: one [`TableDump`] per entry of [`BOARD_TABLES`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BoardDump {
    pub tables: Vec<TableDump>,
}

/// A table's name and row count, for reports.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TableCount {
    pub table: String,
    pub rows: usize,
}

impl BoardDump {
    pub fn table(&self, name: &str) -> Option<&TableDump> {
        self.tables.iter().find(|t| t.name == name)
    }

    /// Rows per table, in table order.
    pub fn counts(&self) -> Vec<TableCount> {
        self.tables
            .iter()
            .map(|t| TableCount {
                table: t.name.clone(),
                rows: t.rows.len(),
            })
            .collect()
    }

    pub fn total_rows(&self) -> usize {
        self.tables.iter().map(|t| t.rows.len()).sum()
    }

    /// Check that every table is one of [`BOARD_TABLES`] with its columns
    /// in order and rows of the right width and types, before a backend
    /// writes any of it.
    pub fn validate(&self) -> Result<(), StoreError> {
        for t in &self.tables {
            let spec = table_spec(&t.name)
                .ok_or_else(|| invalid_dump(format!("unknown table {}", t.name)))?;
            let expected: Vec<&str> = spec.columns.iter().map(|(c, _)| *c).collect();
            if t.columns != expected {
                return Err(invalid_dump(format!(
                    "table {}: columns {:?}, expected {:?}",
                    t.name, t.columns, expected
                )));
            }
            for row in &t.rows {
                let fits = row.len() == spec.columns.len()
                    && row.iter().zip(spec.columns).all(|(cell, (_, kind))| {
                        matches!(
                            (cell, kind),
                            (Cell::Null, _) | (Cell::Int(_), Int) | (Cell::Text(_), Text)
                        )
                    });
                if !fits {
                    return Err(invalid_dump(format!(
                        "table {}: row {} does not match its columns",
                        t.name,
                        row_name(spec, row)
                    )));
                }
            }
        }
        Ok(())
    }
}

fn invalid_dump(detail: String) -> StoreError {
    StoreError::Backend(crate::BackendError::msg(format!(
        "board copy is not loadable: {detail}"
    )))
}

/// The refusal of a destination that already holds rows: nothing is
/// written into a board in use.
pub fn not_empty(location: &str, table: &str) -> StoreError {
    StoreError::Refused {
        action: "copy a board into",
        task_id: location.to_string(),
        reason: format!("it is not empty (table {table} has rows); copy into a new, empty board"),
    }
}

/// A row named by its key: `id=17`, `parent_id="a", child_id="b"`.
fn row_name(spec: &TableSpec, row: &[Cell]) -> String {
    spec.key_indexes()
        .iter()
        .zip(spec.key)
        .map(|(i, k)| {
            let v = row.get(*i).map_or("?".to_string(), Cell::to_string);
            format!("{k}={v}")
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// The first difference between two copies of a board.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("table {table}, {row}: {detail}")]
pub struct Mismatch {
    pub table: String,
    /// The row by its key (`id=17`), or `row count` / `id counter`.
    pub row: String,
    pub detail: String,
}

/// Compare `left` (e.g. what was read from the source) with `right` (what
/// the destination holds) row for row, table by table, rows matched by
/// their key; also the id counters (`right` may be ahead of `left`, never
/// behind). Names the first mismatch.
pub fn compare(left: &BoardDump, right: &BoardDump) -> Result<(), Mismatch> {
    for spec in BOARD_TABLES {
        let empty = TableDump::empty(spec);
        let l = left.table(spec.name).unwrap_or(&empty);
        let r = right.table(spec.name).unwrap_or(&empty);
        compare_table(spec, l, r)?;
    }
    Ok(())
}

fn compare_table(spec: &TableSpec, l: &TableDump, r: &TableDump) -> Result<(), Mismatch> {
    let mismatch = |row: String, detail: String| Mismatch {
        table: spec.name.to_string(),
        row,
        detail,
    };
    if l.columns != r.columns {
        return Err(mismatch(
            "columns".into(),
            format!("{:?} vs {:?}", l.columns, r.columns),
        ));
    }
    let keys = spec.key_indexes();
    let keyed = |t: &TableDump| -> BTreeMap<Vec<Cell>, Vec<Cell>> {
        t.rows
            .iter()
            .map(|row| (keys.iter().map(|i| row[*i].clone()).collect(), row.clone()))
            .collect()
    };
    let (lm, rm) = (keyed(l), keyed(r));
    for (key, lrow) in &lm {
        let Some(rrow) = rm.get(key) else {
            return Err(mismatch(
                row_name(spec, lrow),
                "missing in the destination".into(),
            ));
        };
        if let Some(i) = (0..lrow.len()).find(|i| lrow.get(*i) != rrow.get(*i)) {
            let show = |row: &Vec<Cell>| row.get(i).map_or("-".to_string(), Cell::to_string);
            return Err(mismatch(
                row_name(spec, lrow),
                format!(
                    "column {}: {} in the source, {} in the destination",
                    l.columns[i],
                    show(lrow),
                    show(rrow)
                ),
            ));
        }
    }
    if let Some((_, rrow)) = rm.iter().find(|(k, _)| !lm.contains_key(*k)) {
        return Err(mismatch(
            row_name(spec, rrow),
            "in the destination only".into(),
        ));
    }
    if l.rows.len() != r.rows.len() {
        return Err(mismatch(
            "row count".into(),
            format!(
                "{} in the source, {} in the destination",
                l.rows.len(),
                r.rows.len()
            ),
        ));
    }
    if let (Some(a), Some(b)) = (l.last_id, r.last_id)
        && b < a
    {
        return Err(mismatch(
            "id counter".into(),
            format!("{a} in the source, {b} in the destination: new ids would be reused"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn events(rows: Vec<Vec<Cell>>, last_id: i64) -> BoardDump {
        let spec = table_spec("task_events").unwrap();
        let mut t = TableDump::empty(spec);
        t.rows = rows;
        t.last_id = Some(last_id);
        BoardDump { tables: vec![t] }
    }

    fn ev(id: i64, kind: &str) -> Vec<Cell> {
        vec![
            Cell::Int(id),
            Cell::Text("t_1".into()),
            Cell::Null,
            Cell::Text(kind.into()),
            Cell::Null,
            Cell::Int(100),
        ]
    }

    #[test]
    fn specs_are_consistent() {
        for t in BOARD_TABLES {
            assert!(!t.key.is_empty(), "{}", t.name);
            t.key_indexes();
            assert_eq!(t.counted_id, t.key == ID_KEY && t.columns[0].1 == Int);
        }
        assert_eq!(BOARD_TABLES.len(), 12);
    }

    #[test]
    fn compare_names_the_table_and_row_of_a_difference() {
        let a = events(vec![ev(1, "created"), ev(2, "claimed")], 2);
        assert_eq!(compare(&a, &a.clone()), Ok(()));
        // Row order does not matter; keys do.
        let swapped = events(vec![ev(2, "claimed"), ev(1, "created")], 2);
        assert_eq!(compare(&a, &swapped), Ok(()));
        let changed = events(vec![ev(1, "created"), ev(2, "completed")], 2);
        let e = compare(&a, &changed).unwrap_err();
        assert_eq!(e.table, "task_events");
        assert_eq!(e.row, "id=2");
        assert!(e.detail.contains("column kind"), "{e}");
        let missing = events(vec![ev(1, "created")], 2);
        assert_eq!(compare(&a, &missing).unwrap_err().row, "id=2");
        assert!(
            compare(&missing, &a)
                .unwrap_err()
                .detail
                .contains("destination only")
        );
        let behind = events(vec![ev(1, "created"), ev(2, "claimed")], 1);
        assert_eq!(compare(&a, &behind).unwrap_err().row, "id counter");
        // A missing table equals an empty one.
        assert_eq!(compare(&BoardDump::default(), &events(vec![], 0)), Ok(()));
    }

    #[test]
    fn validate_refuses_unknown_tables_and_mistyped_cells() {
        assert!(events(vec![ev(1, "created")], 1).validate().is_ok());
        let mut bad = events(vec![ev(1, "created")], 1);
        bad.tables[0].rows[0][0] = Cell::Text("1".into());
        assert!(bad.validate().is_err());
        let mut unknown = events(vec![], 0);
        unknown.tables[0].name = "sqlite_sequence".into();
        assert!(unknown.validate().is_err());
    }
}
