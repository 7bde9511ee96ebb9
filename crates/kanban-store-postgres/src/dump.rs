//! Whole-board copies on PostgreSQL (`BoardStore::dump_board` /
//! `load_board`): every table of [`BOARD_TABLES`] read in one
//! `REPEATABLE READ` snapshot, or written into an empty board in one write
//! transaction (under the board's write lock, so no other writer can slip
//! a row in between the emptiness check and the copy). The identity
//! sequences are set past the copied ids, so new events, runs, comments
//! and attachments get higher ids.

use kanban_store::dump::{
    BOARD_TABLES, BoardDump, Cell, ColumnKind, TableDump, TableSpec, not_empty,
};
use kanban_store::{BackendError, Result, StoreError};
use postgres::types::ToSql;

use crate::PgStore;
use crate::db::{Db, DbResult, Tx};

/// PostgreSQL's limit on the parameters of one statement.
const PARAMS_MAX: usize = 65_535;
/// Rows of one multi-row `INSERT`, at most.
const INSERT_ROWS_MAX: usize = 500;

impl PgStore {
    pub(crate) fn dump_all(&self) -> Result<BoardDump> {
        self.read_snapshot(|db| {
            let tables = BOARD_TABLES
                .iter()
                .map(|spec| dump_table(db, spec))
                .collect::<DbResult<Vec<_>>>()?;
            Ok(BoardDump { tables })
        })
    }

    pub(crate) fn load_all(&self, dump: &BoardDump) -> Result<()> {
        dump.validate()?;
        let location = self.connector.redacted().to_string();
        self.write(|tx| load(tx, dump, &location))
    }
}

fn dump_table(db: &Db<'_>, spec: &TableSpec) -> DbResult<TableDump> {
    let mut out = TableDump::empty(spec);
    let sql = format!("SELECT {} FROM {}", spec.column_list(), spec.name);
    for r in db.query(&sql, &[])? {
        let mut row = Vec::with_capacity(spec.columns.len());
        for (i, (_, kind)) in spec.columns.iter().enumerate() {
            row.push(match kind {
                ColumnKind::Int => r
                    .try_get::<_, Option<i64>>(i)?
                    .map_or(Cell::Null, Cell::Int),
                ColumnKind::Text => r
                    .try_get::<_, Option<String>>(i)?
                    .map_or(Cell::Null, Cell::Text),
            });
        }
        out.rows.push(row);
    }
    if spec.counted_id {
        out.last_id = Some(sequence_last(db, spec.name)?.max(out.max_id()));
    }
    Ok(out)
}

/// The identity sequence of `table.id`, as a qualified, quoted name.
fn sequence_of(db: &Db<'_>, table: &str) -> DbResult<String> {
    let row = db.query_one("SELECT pg_get_serial_sequence($1, 'id')", &[&table])?;
    row.try_get::<_, Option<String>>(0)?.ok_or_else(|| {
        StoreError::Backend(BackendError::msg(format!(
            "table {table} has no identity sequence"
        )))
        .into()
    })
}

/// The highest id the sequence handed out (0: none yet).
fn sequence_last(db: &Db<'_>, table: &str) -> DbResult<i64> {
    let seq = sequence_of(db, table)?;
    // The name comes from PostgreSQL itself, quoted: safe to splice.
    let row = db.query_one(
        &format!("SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM {seq}"),
        &[],
    )?;
    Ok(row.try_get::<_, i64>(0)?)
}

fn load(tx: &Tx<'_>, dump: &BoardDump, location: &str) -> DbResult<()> {
    for spec in BOARD_TABLES {
        let sql = format!("SELECT EXISTS (SELECT 1 FROM {})", spec.name);
        if tx.query_one(&sql, &[])?.try_get::<_, bool>(0)? {
            return Err(not_empty(location, spec.name).into());
        }
    }
    for table in &dump.tables {
        let spec = kanban_store::dump::table_spec(&table.name).expect("validated");
        insert_rows(tx, spec, &table.rows)?;
        if spec.counted_id {
            let last = table.last_id.unwrap_or(0).max(table.max_id());
            let seq = sequence_of(tx, spec.name)?;
            // `setval(seq, n, true)`: the next id is n + 1; an unused
            // sequence starts over at 1.
            let (value, called) = if last > 0 { (last, true) } else { (1, false) };
            tx.query_one(
                "SELECT setval($1::TEXT::regclass, $2, $3)",
                &[&seq, &value, &called],
            )?;
        }
    }
    crate::board_files::keep_loaded_blobs(tx)
}

fn insert_rows(tx: &Tx<'_>, spec: &TableSpec, rows: &[Vec<Cell>]) -> DbResult<()> {
    let width = spec.columns.len();
    let per_insert = INSERT_ROWS_MAX.min(PARAMS_MAX / width);
    for chunk in rows.chunks(per_insert) {
        let tuples: Vec<String> = (0..chunk.len())
            .map(|r| {
                let marks: Vec<String> =
                    (1..=width).map(|c| format!("${}", r * width + c)).collect();
                format!("({})", marks.join(", "))
            })
            .collect();
        let sql = format!(
            "INSERT INTO {} ({}) VALUES {}",
            spec.name,
            spec.column_list(),
            tuples.join(", ")
        );
        let values: Vec<Box<dyn ToSql + Sync>> = chunk
            .iter()
            .flat_map(|row| row.iter().zip(spec.columns))
            .map(|(cell, (_, kind))| param_of(cell, *kind))
            .collect();
        let refs: Vec<&(dyn ToSql + Sync)> = values.iter().map(|b| b.as_ref()).collect();
        tx.execute(&sql, &refs)?;
    }
    Ok(())
}

/// A cell as a parameter of its column's type (a NULL needs one too).
fn param_of(cell: &Cell, kind: ColumnKind) -> Box<dyn ToSql + Sync> {
    match (cell, kind) {
        (Cell::Int(i), _) => Box::new(Some(*i)),
        (Cell::Text(s), _) => Box::new(Some(s.clone())),
        (Cell::Null, ColumnKind::Int) => Box::new(None::<i64>),
        (Cell::Null, ColumnKind::Text) => Box::new(None::<String>),
    }
}
