//! One listing row ([`TaskRow`]) from a backend's row, cell by cell: the
//! column list and which cell is which live here once, each backend says
//! only how it reads a cell ([`TaskRowCells`]).

use std::borrow::Cow;

use kanban_core::Status;
use serde_json::Value;

use crate::params::TaskRow;

/// Columns of a [`TaskRow`], in the order [`task_row_from_cells`] reads them.
pub const TASK_ROW_COLUMNS: &str = "id, title, body, assignee, status, priority, tenant, workspace_kind, \
     workspace_path, branch_name, project_id, created_by, created_at, started_at, completed_at, \
     result, skills, max_retries, session_id, workflow_template_id, current_step_key";

/// How a backend reads the cell at a position of a row of
/// [`TASK_ROW_COLUMNS`], borrowing text from its row buffer where it can.
pub trait TaskRowCells<'r> {
    type Error;
    /// Text (NULL: `None`).
    fn text(&self, i: usize) -> Result<Option<Cow<'r, str>>, Self::Error>;
    /// The status (unknown or NULL: `todo`).
    fn status(&self, i: usize) -> Result<Status, Self::Error>;
    /// An integer, `default` for NULL.
    fn int_or(&self, i: usize, default: i64) -> Result<i64, Self::Error>;
    /// An integer or NULL.
    fn opt_int(&self, i: usize) -> Result<Option<i64>, Self::Error>;
}

/// The [`TaskRow`] of one row of [`TASK_ROW_COLUMNS`].
pub fn task_row_from_cells<'r, C: TaskRowCells<'r>>(c: &C) -> Result<TaskRow<'r>, C::Error> {
    Ok(TaskRow {
        id: c.text(0)?.unwrap_or_default(),
        title: c.text(1)?.unwrap_or_default(),
        body: c.text(2)?,
        assignee: c.text(3)?,
        status: c.status(4)?,
        priority: c.int_or(5, 0)?,
        tenant: c.text(6)?,
        workspace_kind: c.text(7)?.unwrap_or(Cow::Borrowed("scratch")),
        workspace_path: c.text(8)?,
        branch_name: c.text(9)?,
        project_id: c.text(10)?,
        created_by: c.text(11)?,
        created_at: c.int_or(12, 0)?,
        started_at: c.opt_int(13)?,
        completed_at: c.opt_int(14)?,
        result: c.text(15)?,
        skills: c.text(16)?.and_then(|raw| skills_from_json(&raw)),
        max_retries: c.opt_int(17)?,
        session_id: c.text(18)?,
        workflow_template_id: c.text(19)?,
        current_step_key: c.text(20)?,
    })
}

/// The `skills` column's JSON array (empty, null and invalid: `None`).
pub fn skills_from_json(raw: &str) -> Option<Vec<String>> {
    if raw.is_empty() {
        return None;
    }
    match serde_json::from_str::<Value>(raw) {
        Ok(Value::Array(items)) => Some(
            items
                .into_iter()
                .filter_map(|v| match v {
                    Value::String(s) if !s.is_empty() => Some(s),
                    Value::Null | Value::String(_) => None,
                    other => Some(other.to_string()),
                })
                .collect(),
        ),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skills_keep_non_empty_strings_and_spell_other_values() {
        assert_eq!(
            skills_from_json(r#"["rust", "", null, 3]"#),
            Some(vec!["rust".to_string(), "3".to_string()])
        );
        assert_eq!(skills_from_json(""), None);
        assert_eq!(skills_from_json("not json"), None);
        assert_eq!(skills_from_json(r#"{"a": 1}"#), None);
    }
}
