//! Tasks, links, comments, events and runs: everything that is not a
//! status transition. Writes take a [`Tx`]; reads a bare connection.

use kanban_core::payload::{self, CreatedFacts};
use kanban_core::transitions::{Action, Refusal, creation_events, creation_status, decide};
use kanban_core::validate::new_task::{TaskDraft, validate_new_task};
use kanban_core::validate::{normalize_assignee, normalize_title};
use kanban_core::{Comment, Event, EventKind, Run, Status, Task, ids};
use std::borrow::Cow;

use rusqlite::types::{Value as SqlValue, ValueRef};
use rusqlite::{Connection, OptionalExtension, params, params_from_iter};
use serde_json::Value;

use super::lifecycle;
use super::row::{
    comment_from_row, event_from_row, i64_or, opt_str, run_from_row, status_of, status_of_ref,
    str_or_empty, task_from_row,
};
use super::schema::{EVENT_COLUMNS, RUN_COLUMNS, TASK_COLUMNS};
use super::txn::{DbResult, RunEnd, Tx, facts_of};
use crate::params::*;
use crate::{BackendError, StoreError};

/// Attempts at drawing an unused random task id before giving up.
const ID_ATTEMPTS: usize = 8;

fn invalid(msg: impl Into<String>) -> StoreError {
    StoreError::invalid(msg)
}

/// Ids among `ids` that are not tasks, in the given order.
pub(crate) fn missing_ids(tx: &Tx<'_>, ids: &[&str]) -> DbResult<Vec<String>> {
    let mut st = tx
        .conn
        .prepare_cached("SELECT 1 FROM tasks WHERE id = ?1")?;
    let mut missing = Vec::new();
    for id in ids {
        if !st.exists([id])? && !missing.iter().any(|m| m == id) {
            missing.push(id.to_string());
        }
    }
    Ok(missing)
}

pub(crate) fn create(tx: &Tx<'_>, req: &NewTask) -> DbResult<Created> {
    create_with_id(tx, req, None)
}

/// [`create`] with a caller-chosen id (a task batch); refused when
/// that id is taken.
pub(crate) fn create_with_id(tx: &Tx<'_>, req: &NewTask, id: Option<&str>) -> DbResult<Created> {
    let t = validate_new_task(&TaskDraft {
        title: &req.title,
        assignee: req.assignee.as_deref(),
        workspace_kind: req.workspace_kind.as_deref(),
        workspace_path: req.workspace_path.as_deref(),
        default_workdir: req.default_workdir.as_deref(),
        branch_name: req.branch_name.as_deref(),
        skills: req.skills.as_deref(),
        parents: &req.parents,
        project_id: req.project_id.as_deref(),
        model_override: req.model_override.as_deref(),
        idempotency_key: req.idempotency_key.as_deref(),
    })?;
    let parents: Vec<&str> = t.parents.iter().map(String::as_str).collect();

    // Inside the write lock: two creators with one key cannot both miss.
    if let Some(key) = t.idempotency_key.as_deref() {
        let existing: Option<String> = tx
            .conn
            .prepare_cached(
                "SELECT id FROM tasks WHERE idempotency_key = ?1 AND status != 'archived' \
                 ORDER BY created_at DESC LIMIT 1",
            )?
            .query_row([key], |r| r.get(0))
            .optional()?;
        if let Some(id) = existing {
            return Ok(Created {
                task: tx.require_task(&id)?,
                existing: true,
            });
        }
    }

    let missing = missing_ids(tx, &parents)?;
    if !missing.is_empty() {
        return Err(invalid(format!("unknown parent task(s): {}", missing.join(", "))).into());
    }
    let parent_statuses = parent_statuses(tx, &parents)?;
    let status = creation_status(req.initial_blocked, req.triage, &parent_statuses);

    let id = match id {
        Some(id) => unused_task_id(tx, id)?,
        None => fresh_task_id(tx)?,
    };
    let skills_json = t
        .skills
        .as_ref()
        .map(|s| Value::from(s.clone()).to_string());
    tx.conn
        .prepare_cached(
            "INSERT INTO tasks (id, title, body, assignee, status, priority, created_by, \
             created_at, workspace_kind, workspace_path, branch_name, project_id, tenant, \
             idempotency_key, max_runtime_seconds, skills, max_retries, goal_mode, \
             goal_max_turns, session_id, model_override) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, \
             ?17, ?18, ?19, ?20, ?21)",
        )?
        .execute(params![
            id,
            t.title,
            req.body,
            t.assignee,
            status.as_str(),
            req.priority,
            req.created_by,
            tx.now,
            t.workspace_kind,
            t.workspace_path,
            t.branch_name,
            t.project_id,
            req.tenant,
            t.idempotency_key,
            req.max_runtime_seconds,
            skills_json,
            req.max_retries,
            req.goal_mode as i64,
            req.goal_max_turns,
            req.session_id,
            t.model_override,
        ])?;
    {
        let mut link = tx.conn.prepare_cached(
            "INSERT OR IGNORE INTO task_links (parent_id, child_id) VALUES (?1, ?2)",
        )?;
        for p in &parents {
            link.execute(params![p, id])?;
        }
    }
    for kind in creation_events(status) {
        let payload = match kind {
            EventKind::Created => payload::created(&CreatedFacts {
                assignee: t.assignee.as_deref(),
                status,
                parents: &t.parents,
                tenant: req.tenant.as_deref(),
                branch_name: t.branch_name.as_deref(),
                skills: t.skills.as_deref(),
                goal_mode: req.goal_mode,
            }),
            // The `blocked` event that makes a task created blocked stick.
            _ => payload::created_blocked(),
        };
        tx.append_event(&id, *kind, Some(payload), None)?;
    }
    Ok(Created {
        task: tx.require_task(&id)?,
        existing: false,
    })
}

fn parent_statuses(tx: &Tx<'_>, parents: &[&str]) -> DbResult<Vec<Status>> {
    let mut st = tx
        .conn
        .prepare_cached("SELECT status FROM tasks WHERE id = ?1")?;
    let mut out = Vec::with_capacity(parents.len());
    for p in parents {
        let s: String = st.query_row([p], |r| r.get(0))?;
        out.push(status_of(&s));
    }
    Ok(out)
}

/// `id` when no task has it yet (checked inside the write lock).
fn unused_task_id(tx: &Tx<'_>, id: &str) -> DbResult<String> {
    let taken = tx
        .conn
        .prepare_cached("SELECT 1 FROM tasks WHERE id = ?1")?
        .exists([id])?;
    if taken {
        return Err(invalid(format!("task id {id} already exists")).into());
    }
    Ok(id.to_string())
}

/// A random id not used yet (checked inside the write lock).
fn fresh_task_id(tx: &Tx<'_>) -> DbResult<String> {
    let mut st = tx
        .conn
        .prepare_cached("SELECT 1 FROM tasks WHERE id = ?1")?;
    for _ in 0..ID_ATTEMPTS {
        let id = ids::new_task_id();
        if !st.exists([&id])? {
            return Ok(id);
        }
    }
    Err(StoreError::Backend(BackendError::msg("could not draw an unused task id")).into())
}

fn order_sql(order: TaskOrder) -> &'static str {
    match order {
        TaskOrder::Priority => "priority DESC, created_at ASC",
        TaskOrder::PriorityAsc => "priority ASC, created_at ASC",
        TaskOrder::Created => "created_at ASC, id ASC",
        TaskOrder::CreatedDesc => "created_at DESC, id DESC",
        TaskOrder::Status => "status ASC, created_at ASC",
        TaskOrder::Assignee => "assignee ASC, created_at ASC",
        TaskOrder::Title => "title ASC, id ASC",
        TaskOrder::Updated => "started_at DESC NULLS LAST, created_at DESC",
    }
}

/// `SELECT <columns> FROM tasks WHERE <filters> ORDER BY <order>`: one
/// query, every filter bound as a parameter.
pub(crate) fn list_query(columns: &str, q: &TaskQuery) -> (String, Vec<SqlValue>) {
    let mut sql = format!("SELECT {columns} FROM tasks WHERE 1=1");
    let mut args: Vec<SqlValue> = Vec::new();
    let mut filter = |col: &str, v: Option<String>| {
        if let Some(v) = v {
            args.push(SqlValue::Text(v));
            sql.push_str(&format!(" AND {col} = ?{}", args.len()));
        }
    };
    // Stored assignees are lower-cased, so lower-casing the filter makes it
    // case-insensitive while keeping the (assignee, status) index usable.
    filter(
        "assignee",
        q.assignee.as_deref().map(|a| a.trim().to_lowercase()),
    );
    filter("status", q.status.map(|s| s.as_str().to_string()));
    filter("tenant", q.tenant.clone());
    filter("session_id", q.session_id.clone());
    filter("workflow_template_id", q.workflow_template_id.clone());
    filter("current_step_key", q.current_step_key.clone());
    if !q.include_archived && q.status != Some(Status::Archived) {
        sql.push_str(" AND status != 'archived'");
    }
    sql.push_str(" ORDER BY ");
    sql.push_str(order_sql(q.order));
    if let Some(n) = q.limit.filter(|n| *n > 0) {
        sql.push_str(&format!(" LIMIT {n}"));
    }
    (sql, args)
}

#[cfg(test)]
pub(crate) fn list_query_for_test(q: &TaskQuery) -> (String, Vec<SqlValue>) {
    list_query(LINE_COLUMNS, q)
}

/// Columns of a [`TaskLine`], in reading order.
const LINE_COLUMNS: &str = "id, title, assignee, status, tenant, priority, created_at";

pub(crate) fn list(conn: &Connection, q: &TaskQuery) -> DbResult<Vec<Task>> {
    let (sql, args) = list_query(TASK_COLUMNS, q);
    let mut st = conn.prepare_cached(&sql)?;
    let rows = st.query_map(params_from_iter(args), task_from_row)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Only the columns of a list line; in the default order this is an
/// index-only scan of `kanban_rs_idx_tasks_list`.
pub(crate) fn list_lines(conn: &Connection, q: &TaskQuery) -> DbResult<Vec<TaskLine>> {
    let (sql, args) = list_query(LINE_COLUMNS, q);
    let mut st = conn.prepare_cached(&sql)?;
    let rows = st.query_map(params_from_iter(args), |r| {
        Ok(TaskLine {
            id: str_or_empty(r, 0)?,
            title: str_or_empty(r, 1)?,
            assignee: opt_str(r, 2)?,
            status: status_of_ref(r, 3)?,
            tenant: opt_str(r, 4)?,
            priority: i64_or(r, 5, 0)?,
            created_at: i64_or(r, 6, 0)?,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// [`list_lines`] without materialising rows: each line borrows the
/// statement's row buffer while `visit` runs.
pub(crate) fn visit_lines(
    conn: &Connection,
    q: &TaskQuery,
    visit: &mut dyn FnMut(TaskLineRef<'_>) -> bool,
) -> DbResult<()> {
    fn text<'a>(v: ValueRef<'a>) -> Option<Cow<'a, str>> {
        match v {
            ValueRef::Text(t) | ValueRef::Blob(t) => Some(super::row::text_of(t)),
            ValueRef::Integer(i) => Some(Cow::Owned(i.to_string())),
            ValueRef::Real(f) => Some(Cow::Owned(f.to_string())),
            ValueRef::Null => None,
        }
    }
    let (sql, args) = list_query(LINE_COLUMNS, q);
    let mut st = conn.prepare_cached(&sql)?;
    let mut rows = st.query(params_from_iter(args))?;
    while let Some(r) = rows.next()? {
        let line = TaskLineRef {
            id: text(r.get_ref(0)?).unwrap_or_default(),
            title: text(r.get_ref(1)?).unwrap_or_default(),
            assignee: text(r.get_ref(2)?),
            status: status_of_ref(r, 3)?,
            tenant: text(r.get_ref(4)?),
            priority: i64_or(r, 5, 0)?,
            created_at: i64_or(r, 6, 0)?,
        };
        if !visit(line) {
            break;
        }
    }
    Ok(())
}

pub(crate) enum Direction {
    Parents,
    Children,
}

pub(crate) fn linked(conn: &Connection, id: &str, dir: Direction) -> DbResult<Vec<String>> {
    let sql = match dir {
        Direction::Parents => {
            "SELECT parent_id FROM task_links WHERE child_id = ?1 ORDER BY parent_id"
        }
        Direction::Children => {
            "SELECT child_id FROM task_links WHERE parent_id = ?1 ORDER BY child_id"
        }
    };
    let mut st = conn.prepare_cached(sql)?;
    let rows = st.query_map([id], |r| r.get::<_, String>(0))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

fn as_object(meta: Option<&Value>) -> DbResult<Option<&Value>> {
    match meta {
        Some(v) if !v.is_object() => Err(invalid("metadata must be a JSON object").into()),
        other => Ok(other),
    }
}

pub(crate) fn edit(tx: &Tx<'_>, req: &EditTask) -> DbResult<Task> {
    let task = tx.require_task(&req.task_id)?;
    let handoff = req.result.is_some() || req.summary.is_some() || req.metadata.is_some();
    if req.title.is_none() && req.body.is_none() && req.priority.is_none() && !handoff {
        return Err(invalid(
            "nothing to edit: pass a title, body, priority, result, summary or metadata",
        )
        .into());
    }
    let metadata = as_object(req.metadata.as_ref())?;
    if handoff && task.status != Status::Done {
        return Err(StoreError::Refused {
            action: "edit",
            task_id: task.id.clone(),
            reason: format!(
                "task is {}; result/summary/metadata can only be back-filled on a done task \
                 (complete it instead)",
                task.status
            ),
        }
        .into());
    }
    if req.title.is_some() || req.body.is_some() {
        let title = match &req.title {
            Some(t) => normalize_title(t)?,
            None => task.title.clone(),
        };
        let body = req.body.clone().or(task.body.clone());
        tx.conn.execute(
            "UPDATE tasks SET title = ?1, body = ?2 WHERE id = ?3",
            params![title, body, task.id],
        )?;
        tx.append_event(&task.id, EventKind::Edited, None, None)?;
    }
    if let Some(p) = req.priority {
        tx.conn.execute(
            "UPDATE tasks SET priority = ?1 WHERE id = ?2",
            params![p, task.id],
        )?;
        tx.append_event(
            &task.id,
            EventKind::Reprioritized,
            Some(payload::reprioritized(p)),
            None,
        )?;
    }
    if handoff {
        let result = req.result.clone().or(task.result.clone());
        let summary = req.summary.clone().or(result.clone());
        tx.conn.execute(
            "UPDATE tasks SET result = ?1 WHERE id = ?2",
            params![result, task.id],
        )?;
        let run: Option<i64> = tx
            .conn
            .query_row(
                "SELECT id FROM task_runs WHERE task_id = ?1 AND outcome = 'completed' \
                 ORDER BY COALESCE(ended_at, started_at, 0) DESC, id DESC LIMIT 1",
                [&task.id],
                |r| r.get(0),
            )
            .optional()?;
        let run_id = match run {
            Some(id) => {
                tx.conn.execute(
                    "UPDATE task_runs SET summary = ?1 WHERE id = ?2",
                    params![summary, id],
                )?;
                if let Some(m) = metadata {
                    tx.conn.execute(
                        "UPDATE task_runs SET metadata = ?1 WHERE id = ?2",
                        params![m.to_string(), id],
                    )?;
                }
                id
            }
            None => tx.synthesize_run(
                &task.id,
                &RunEnd {
                    summary: summary.as_deref(),
                    metadata,
                    ..RunEnd::new("completed")
                },
            )?,
        };
        tx.append_event(
            &task.id,
            EventKind::Edited,
            Some(payload::edited_handoff(
                metadata.is_some(),
                result.as_deref(),
                summary.as_deref(),
            )),
            Some(run_id),
        )?;
    }
    tx.require_task(&task.id)
}

/// Reassign; with `reclaim_first`, a running attempt is reclaimed in the
/// same transaction and its worker returned for the caller to end.
/// `local_host` names this process's host in claim locks.
pub(crate) fn assign(tx: &Tx<'_>, req: &AssignTask, local_host: &str) -> DbResult<Reassigned> {
    let mut task = tx.require_task(&req.task_id)?;
    let assignee = normalize_assignee(req.assignee.as_deref());
    let mut reclaimed = None;
    if req.reclaim_first && (task.status == Status::Running || task.claim_lock.is_some()) {
        reclaimed = Some(lifecycle::reclaim(
            tx,
            &task.id,
            Some(req.reason.as_deref().unwrap_or("reassign")),
            local_host,
        )?);
        task = tx.require_task(&req.task_id)?;
    }
    // Whether its parents are finished does not matter to an assignment.
    let d = match decide(Action::Assign, &facts_of(&task, true)) {
        Ok(d) => d,
        Err(Refusal::Claimed) => {
            return Err(StoreError::Refused {
                action: "reassign",
                task_id: task.id.clone(),
                reason: "currently running (claimed). Wait for completion or reclaim the stale \
                         lock first (`kanban reclaim`, or reassign with --reclaim)"
                    .into(),
            }
            .into());
        }
        Err(why) => return Err(lifecycle::refusal(tx, Action::Assign, &task, why)?.into()),
    };
    if task.assignee != assignee {
        // A human moving the task to another profile is a recovery action:
        // the new profile does not inherit the old one's failure streak.
        tx.conn.execute(
            "UPDATE tasks SET assignee = ?1, consecutive_failures = 0, last_failure_error = NULL \
             WHERE id = ?2",
            params![assignee, task.id],
        )?;
    }
    let payload = payload::assigned(assignee.as_deref(), req.source.as_deref());
    tx.append_event(&task.id, d.event, Some(payload), None)?;
    Ok(Reassigned {
        task: tx.require_task(&task.id)?,
        reclaimed_run_id: reclaimed.as_ref().and_then(|r| r.run_id),
        ended_worker: reclaimed.and_then(|r| r.ended_worker),
    })
}

/// True when `child` can reach `parent` over existing parent→child links,
/// i.e. linking parent→child would close a cycle.
fn would_cycle(tx: &Tx<'_>, parent: &str, child: &str) -> DbResult<bool> {
    let hit: Option<i64> = tx
        .conn
        .prepare_cached(
            "WITH RECURSIVE down(id) AS (SELECT ?1 UNION SELECT l.child_id FROM task_links l \
             JOIN down d ON l.parent_id = d.id) SELECT 1 FROM down WHERE id = ?2 LIMIT 1",
        )?
        .query_row(params![child, parent], |r| r.get(0))
        .optional()?;
    Ok(hit.is_some())
}

pub(crate) fn link(tx: &Tx<'_>, parent: &str, child: &str) -> DbResult<()> {
    if parent == child {
        return Err(invalid("a task cannot depend on itself").into());
    }
    let missing = missing_ids(tx, &[parent, child])?;
    if !missing.is_empty() {
        return Err(invalid(format!("unknown task(s): {}", missing.join(", "))).into());
    }
    if would_cycle(tx, parent, child)? {
        return Err(invalid(format!("linking {parent} -> {child} would create a cycle")).into());
    }
    let added = tx.conn.execute(
        "INSERT OR IGNORE INTO task_links (parent_id, child_id) VALUES (?1, ?2)",
        params![parent, child],
    )?;
    // Linking an existing pair again changes nothing, so it records nothing
    // (the reference appends a second `linked` event).
    if added == 0 {
        return Ok(());
    }
    let parent_status: String =
        tx.conn
            .query_row("SELECT status FROM tasks WHERE id = ?1", [parent], |r| {
                r.get(0)
            })?;
    let task = tx.require_task(child)?;
    let action = Action::Link {
        parent_finished: status_of(&parent_status).satisfies_children(),
    };
    // The rule looks at the new parent only.
    let d = match decide(action, &facts_of(&task, true)) {
        Ok(d) => d,
        Err(why) => return Err(lifecycle::refusal(tx, action, &task, why)?.into()),
    };
    if d.to != task.status {
        // Only a ready child is demoted (the rule's precondition).
        tx.conn.execute(
            "UPDATE tasks SET status = ?1 WHERE id = ?2 AND status = 'ready'",
            params![d.to.as_str(), child],
        )?;
    }
    tx.append_event(child, d.event, Some(payload::link(parent, child)), None)?;
    Ok(())
}

pub(crate) fn unlink(tx: &Tx<'_>, parent: &str, child: &str) -> DbResult<bool> {
    let n = tx.conn.execute(
        "DELETE FROM task_links WHERE parent_id = ?1 AND child_id = ?2",
        params![parent, child],
    )?;
    if n == 0 {
        return Ok(false);
    }
    tx.append_event(
        child,
        EventKind::Unlinked,
        Some(payload::link(parent, child)),
        None,
    )?;
    // The child may be free now (#22459): re-gate it at once.
    let child = [child.to_string()];
    lifecycle::recompute_ready(tx, None, Some(lifecycle::Scope::Ids(&child)))?;
    Ok(true)
}

pub(crate) fn add_comment(
    tx: &Tx<'_>,
    task_id: &str,
    author: &str,
    body: &str,
) -> DbResult<Comment> {
    if body.trim().is_empty() {
        return Err(invalid("comment body is required").into());
    }
    if author.trim().is_empty() {
        return Err(invalid("comment author is required").into());
    }
    tx.require_task(task_id)?;
    tx.conn.execute(
        "INSERT INTO task_comments (task_id, author, body, created_at) VALUES (?1, ?2, ?3, ?4)",
        params![task_id, author.trim(), body.trim(), tx.now],
    )?;
    let id = tx.conn.last_insert_rowid();
    tx.append_event(
        task_id,
        EventKind::Commented,
        Some(payload::commented(author, body)),
        None,
    )?;
    Ok(Comment {
        id,
        task_id: task_id.to_string(),
        author: author.trim().to_string(),
        body: body.trim().to_string(),
        created_at: tx.now,
    })
}

/// A comment written as part of another state change whose own event
/// records it (specify, decompose): the row only, no `commented` event,
/// as the reference writes it.
pub(crate) fn add_audit_comment(
    tx: &Tx<'_>,
    task_id: &str,
    author: &str,
    body: &str,
) -> DbResult<()> {
    tx.conn.execute(
        "INSERT INTO task_comments (task_id, author, body, created_at) VALUES (?1, ?2, ?3, ?4)",
        params![task_id, author.trim(), body.trim(), tx.now],
    )?;
    Ok(())
}

pub(crate) fn comments(conn: &Connection, task_id: &str) -> DbResult<Vec<Comment>> {
    let mut st = conn.prepare_cached(
        "SELECT id, task_id, author, body, created_at FROM task_comments WHERE task_id = ?1 \
         ORDER BY created_at ASC, id ASC",
    )?;
    let rows = st.query_map([task_id], comment_from_row)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

pub(crate) fn events(conn: &Connection, q: &EventQuery) -> DbResult<Vec<Event>> {
    let mut where_sql = String::from("1=1");
    let mut args: Vec<SqlValue> = Vec::new();
    if let Some(t) = &q.task_id {
        args.push(SqlValue::Text(t.clone()));
        where_sql.push_str(&format!(" AND task_id = ?{}", args.len()));
    }
    if let Some(after) = q.after_id {
        args.push(SqlValue::Integer(after));
        where_sql.push_str(&format!(" AND id > ?{}", args.len()));
    }
    if let Some(kinds) = &q.kinds {
        if kinds.is_empty() {
            return Ok(Vec::new());
        }
        let mut marks = Vec::new();
        for k in kinds {
            args.push(SqlValue::Text(k.clone()));
            marks.push(format!("?{}", args.len()));
        }
        where_sql.push_str(&format!(" AND kind IN ({})", marks.join(", ")));
    }
    let sql = match (q.last, q.limit) {
        (Some(n), _) => format!(
            "SELECT {EVENT_COLUMNS} FROM (SELECT {EVENT_COLUMNS} FROM task_events WHERE {where_sql} \
             ORDER BY id DESC LIMIT {n}) ORDER BY id ASC"
        ),
        (None, Some(n)) => {
            format!(
                "SELECT {EVENT_COLUMNS} FROM task_events WHERE {where_sql} ORDER BY id ASC LIMIT {n}"
            )
        }
        (None, None) => {
            format!("SELECT {EVENT_COLUMNS} FROM task_events WHERE {where_sql} ORDER BY id ASC")
        }
    };
    let mut st = conn.prepare_cached(&sql)?;
    let rows = st.query_map(params_from_iter(args), event_from_row)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

pub(crate) fn latest_event_id(conn: &Connection) -> DbResult<i64> {
    Ok(
        conn.query_row("SELECT COALESCE(MAX(id), 0) FROM task_events", [], |r| {
            r.get(0)
        })?,
    )
}

pub(crate) fn runs(conn: &Connection, task_id: &str) -> DbResult<Vec<Run>> {
    let sql = format!(
        "SELECT {RUN_COLUMNS} FROM task_runs WHERE task_id = ?1 ORDER BY started_at ASC, id ASC"
    );
    let mut st = conn.prepare_cached(&sql)?;
    let rows = st.query_map([task_id], run_from_row)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}
