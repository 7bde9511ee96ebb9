//! Streaming the rows of `kanban list --json` ([`crate::Store::for_each_task`]).

use std::borrow::Cow;

use kanban_core::Status;
use rusqlite::types::ValueRef;
use rusqlite::{Connection, params_from_iter};

use super::row::{i64_or, opt_i64, status_of_ref};
use super::tasks::list_query;
use super::txn::DbResult;
use crate::params::{TaskQuery, TaskRow};
use crate::task_row_cells::{TaskRowCells, task_row_from_cells};

/// Columns of a [`TaskRow`], in reading order.
pub(crate) use crate::task_row_cells::TASK_ROW_COLUMNS as ROW_COLUMNS;

/// `tasks::list` without collecting: each task's [`TaskRow`] borrows the
/// statement's row buffer while `visit` runs; only its columns are read.
/// Cells are decoded as `row::task_from_row` decodes them.
pub(crate) fn visit_tasks(
    conn: &Connection,
    q: &TaskQuery,
    visit: &mut dyn FnMut(TaskRow<'_>) -> bool,
) -> DbResult<()> {
    let (sql, args) = list_query(ROW_COLUMNS, q);
    let mut st = conn.prepare_cached(&sql)?;
    let mut rows = st.query(params_from_iter(args))?;
    while let Some(r) = rows.next()? {
        if !visit(task_row(r)?) {
            break;
        }
    }
    Ok(())
}

/// The [`TaskRow`] of a row of [`ROW_COLUMNS`], borrowing its cells.
/// Cells are decoded as `row::task_from_row` decodes them.
pub(crate) fn task_row<'r>(r: &'r rusqlite::Row<'_>) -> rusqlite::Result<TaskRow<'r>> {
    task_row_from_cells(&Cells(r))
}

/// A SQLite row read as [`TaskRowCells`]: text borrows the row buffer.
struct Cells<'r, 's>(&'r rusqlite::Row<'s>);

impl<'r> TaskRowCells<'r> for Cells<'r, '_> {
    type Error = rusqlite::Error;

    fn text(&self, i: usize) -> rusqlite::Result<Option<Cow<'r, str>>> {
        Ok(match self.0.get_ref(i)? {
            ValueRef::Text(t) | ValueRef::Blob(t) => Some(super::row::text_of(t)),
            ValueRef::Integer(i) => Some(Cow::Owned(i.to_string())),
            ValueRef::Real(f) => Some(Cow::Owned(f.to_string())),
            ValueRef::Null => None,
        })
    }

    fn status(&self, i: usize) -> rusqlite::Result<Status> {
        status_of_ref(self.0, i)
    }

    fn int_or(&self, i: usize, default: i64) -> rusqlite::Result<i64> {
        i64_or(self.0, i, default)
    }

    fn opt_int(&self, i: usize) -> rusqlite::Result<Option<i64>> {
        opt_i64(self.0, i)
    }
}
