//! Streaming the rows of `kanban list --json` ([`kanban_store::Store::for_each_task`]).

use std::borrow::Cow;

use kanban_core::Status;
use kanban_store::params::{TaskQuery, TaskRow};
use kanban_store::task_row_cells::{TASK_ROW_COLUMNS, TaskRowCells, task_row_from_cells};
use postgres::types::ToSql;

use crate::db::{Db, DbResult};
use crate::row::{i64_or, opt_i64, status_at};
use crate::tasks::list_query;

/// `tasks::list` without collecting: rows stream from the server (`query_raw`)
/// and each [`TaskRow`] borrows its row while `visit` runs; only its
/// columns are read. Cells are decoded as `row::task_from_row` decodes them.
pub(crate) fn visit_tasks(
    db: &Db<'_>,
    q: &TaskQuery,
    visit: &mut dyn FnMut(TaskRow<'_>) -> bool,
) -> DbResult<()> {
    let (sql, args) = list_query(TASK_ROW_COLUMNS, q);
    let params: Vec<&(dyn ToSql + Sync)> = args.iter().map(|a| a as &(dyn ToSql + Sync)).collect();
    db.for_each_row(&sql, &params, |r| {
        let row = task_row_from_cells(&Cells(r))?;
        Ok(visit(row))
    })
}

/// A PostgreSQL row read as [`TaskRowCells`]: text borrows the row.
struct Cells<'r>(&'r postgres::Row);

impl<'r> TaskRowCells<'r> for Cells<'r> {
    type Error = crate::db::DbError;

    fn text(&self, i: usize) -> DbResult<Option<Cow<'r, str>>> {
        Ok(self.0.try_get::<_, Option<&str>>(i)?.map(Cow::Borrowed))
    }

    fn status(&self, i: usize) -> DbResult<Status> {
        status_at(self.0, i)
    }

    fn int_or(&self, i: usize, default: i64) -> DbResult<i64> {
        i64_or(self.0, i, default)
    }

    fn opt_int(&self, i: usize) -> DbResult<Option<i64>> {
        opt_i64(self.0, i)
    }
}
