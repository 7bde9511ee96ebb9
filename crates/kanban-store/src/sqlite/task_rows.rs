//! Streaming the rows of `kanban list --json` ([`crate::Store::for_each_task`]).

use std::borrow::Cow;

use rusqlite::types::ValueRef;
use rusqlite::{Connection, params_from_iter};

use super::row::{i64_or, opt_i64, skills_from_json, status_of_ref};
use super::tasks::list_query;
use super::txn::DbResult;
use crate::params::{TaskQuery, TaskRow};

/// Columns of a [`TaskRow`], in reading order.
pub(crate) const ROW_COLUMNS: &str = "id, title, body, assignee, status, priority, tenant, workspace_kind, \
     workspace_path, branch_name, project_id, created_by, created_at, started_at, completed_at, \
     result, skills, max_retries, session_id, workflow_template_id, current_step_key";

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
    let text = |i: usize| -> rusqlite::Result<Option<Cow<'r, str>>> {
        Ok(match r.get_ref(i)? {
            ValueRef::Text(t) | ValueRef::Blob(t) => Some(super::row::text_of(t)),
            ValueRef::Integer(i) => Some(Cow::Owned(i.to_string())),
            ValueRef::Real(f) => Some(Cow::Owned(f.to_string())),
            ValueRef::Null => None,
        })
    };
    Ok(TaskRow {
        id: text(0)?.unwrap_or_default(),
        title: text(1)?.unwrap_or_default(),
        body: text(2)?,
        assignee: text(3)?,
        status: status_of_ref(r, 4)?,
        priority: i64_or(r, 5, 0)?,
        tenant: text(6)?,
        workspace_kind: text(7)?.unwrap_or(Cow::Borrowed("scratch")),
        workspace_path: text(8)?,
        branch_name: text(9)?,
        project_id: text(10)?,
        created_by: text(11)?,
        created_at: i64_or(r, 12, 0)?,
        started_at: opt_i64(r, 13)?,
        completed_at: opt_i64(r, 14)?,
        result: text(15)?,
        skills: text(16)?.and_then(|raw| skills_from_json(&raw)),
        max_retries: opt_i64(r, 17)?,
        session_id: text(18)?,
        workflow_template_id: text(19)?,
        current_step_key: text(20)?,
    })
}
