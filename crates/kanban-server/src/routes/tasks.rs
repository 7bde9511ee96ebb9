//! Task routes: board view, detail, create, update (with the reference's
//! status semantics), delete and bulk.

use std::collections::BTreeSet;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::Json;
use axum::extract::{Path, State};
use kanban_core::{Status, Task};
use kanban_hermes::scratch::{BoardFiles, board_files, complete_with_files};
use kanban_store::{
    AssignTask, BlockRequest, CompleteRequest, EditTask, EndedWorker, EventQuery, NewTask, Store,
    StoreError, TaskQuery,
};
use serde_json::{Value, json};

use crate::api::*;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::markdown::render_markdown;
use crate::state::AppState;
use crate::worker::Ending;

/// Columns of the board view, left to right (archived only on request).
pub const BOARD_COLUMNS: [Status; 8] = [
    Status::Triage,
    Status::Todo,
    Status::Scheduled,
    Status::Ready,
    Status::Running,
    Status::Blocked,
    Status::Review,
    Status::Done,
];

pub fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// The whole board grouped by status column; with `limit` (or `column`,
/// `cursor`) one page per column, each with its `total` and `next_cursor`
/// (see `board_page`).
#[utoipa::path(get, path = "/api/v1/board", params(BoardViewQuery), tag = "board",
    responses((status = 200, body = BoardView), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn get_board(
    State(st): State<AppState>,
    ApiQuery(q): ApiQuery<BoardViewQuery>,
) -> ApiResult<axum::response::Response> {
    use axum::response::IntoResponse;
    if super::board_page::is_paged(&q) {
        return blocking(move || super::board_page::page(&st, &q, &BOARD_COLUMNS, unix_now()))
            .await
            .map(|v| Json(v).into_response());
    }
    blocking(move || {
        let board = st.hub.board(q.board.as_deref())?;
        let store = board.store.as_ref();
        let query = TaskQuery {
            tenant: q.tenant.clone(),
            include_archived: q.include_archived,
            workflow_template_id: q.workflow_template_id.clone(),
            current_step_key: q.current_step_key.clone(),
            ..Default::default()
        };
        let tasks = store.list_tasks(&query)?;
        let now = unix_now();
        // Counts, progress and summaries of every card in a few
        // board-wide queries, never one query per task.
        let facts = store.card_facts(Some(CARD_SUMMARY_PREVIEW_CHARS))?;
        let mut diagnostics = super::diagnostics::of_tasks(
            &board,
            &tasks,
            now,
            &super::diagnostics::config(&st.hub),
        )?;
        let mut columns: Vec<(Status, Vec<BoardCard>)> =
            BOARD_COLUMNS.iter().map(|s| (*s, Vec::new())).collect();
        if q.include_archived {
            columns.push((Status::Archived, Vec::new()));
        }
        let mut tenants: BTreeSet<String> = BTreeSet::new();
        for t in tasks {
            if let Some(tenant) = &t.tenant {
                tenants.insert(tenant.clone());
            }
            let status = t.status;
            let card = super::board_page::board_card(t, &facts, &mut diagnostics, now);
            match columns.iter_mut().find(|(s, _)| *s == status) {
                Some((_, v)) => v.push(card),
                // Unknown buckets go to todo, like the reference.
                None => columns[1].1.push(card),
            }
        }
        let (tenants, assignees) =
            super::board_page::filter_menus(store, q.tenant.is_some(), tenants)?;
        Ok(Json(BoardView {
            columns: columns
                .into_iter()
                .map(|(s, tasks)| BoardColumn {
                    name: s.as_str().into(),
                    tasks,
                })
                .collect(),
            tenants: tenants.into_iter().collect(),
            assignees: assignees.into_iter().collect(),
            latest_event_id: store.latest_event_id()?,
            now,
        })
        .into_response())
    })
    .await
}

#[derive(Debug, Default, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TaskDetailQuery {
    pub board: Option<String>,
    /// With `run_state_name`: filter runs by `status` or `outcome`.
    pub run_state_type: Option<String>,
    pub run_state_name: Option<String>,
}

/// A task with comments, events, links, child results and runs.
#[utoipa::path(get, path = "/api/v1/tasks/{task_id}", params(("task_id" = String, Path), TaskDetailQuery), tag = "tasks",
    responses((status = 200, body = Object), (status = 404, body = ErrorBody)))]
pub async fn get_task(
    State(st): State<AppState>,
    Path(task_id): Path<String>,
    ApiQuery(q): ApiQuery<TaskDetailQuery>,
) -> ApiResult<Json<Value>> {
    blocking(move || {
        if q.run_state_type.is_some() != q.run_state_name.is_some() {
            return Err(ApiError::bad_request(
                "run_state_type and run_state_name must be passed together or omitted",
            ));
        }
        if let Some(t) = q.run_state_type.as_deref()
            && t != "status"
            && t != "outcome"
        {
            return Err(ApiError::bad_request(
                "run_state_type must be 'status' or 'outcome'",
            ));
        }
        let board = st.hub.board(q.board.as_deref())?;
        let store = board.store.as_ref();
        let task = require_task(store, &task_id)?;
        let runs = store.runs(&task_id)?;
        let now = unix_now();
        let mut task_d = task_json(&task, now, latest_summary(&runs));
        let (diags, warnings) = super::diagnostics::card_fields(
            super::diagnostics::of_tasks(
                &board,
                [&task],
                now,
                &super::diagnostics::config(&st.hub),
            )?
            .remove(&task.id),
        );
        if let Some(d) = diags {
            task_d["diagnostics"] = json!(d);
            task_d["warnings"] = json!(warnings);
        }
        task_d["body_html"] = json!(task.body.as_deref().map(render_markdown));
        let parents = store.parents_of(&task_id)?;
        let children = store.children_of(&task_id)?;
        let mut child_results = Vec::new();
        for c in &children {
            if let Some(child) = store.get_task(c)? {
                child_results.push(json!({
                    "id": child.id,
                    "title": child.title,
                    "status": child.status,
                    "latest_summary": task_latest_summary(store, &child)?,
                    "result": child.result,
                }));
            }
        }
        let events = store.events(&EventQuery {
            task_id: Some(task_id.clone()),
            ..Default::default()
        })?;
        let runs: Vec<Value> = runs
            .iter()
            .filter(
                |r| match (q.run_state_type.as_deref(), q.run_state_name.as_deref()) {
                    (Some("status"), Some(n)) => r.status == n,
                    (Some("outcome"), Some(n)) => r.outcome.as_deref() == Some(n),
                    _ => true,
                },
            )
            .map(run_json)
            .collect();
        let comments: Vec<Value> = store
            .comments(&task_id)?
            .into_iter()
            .map(|c| {
                let html = render_markdown(&c.body);
                let mut v = serde_json::to_value(c).unwrap_or(Value::Null);
                v["body_html"] = json!(html);
                v
            })
            .collect();
        Ok(Json(json!({
            "task": task_d,
            "comments": comments,
            "events": events,
            "attachments": store.attachments(&task_id)?,
            "links": {"parents": parents, "children": children},
            "child_results": child_results,
            "runs": runs,
        })))
    })
    .await
}

/// Create a task. `warning` is set when it is ready and assigned but no
/// dispatcher will pick it up.
#[utoipa::path(post, path = "/api/v1/tasks", params(BoardQuery), request_body = CreateTaskBody, tag = "tasks",
    responses((status = 200, body = CreatedTask), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn create_task(
    State(st): State<AppState>,
    ApiQuery(q): ApiQuery<BoardQuery>,
    ApiJson(body): ApiJson<CreateTaskBody>,
) -> ApiResult<Json<CreatedTask>> {
    let st2 = st.clone();
    let task = blocking(move || {
        let board = st2.hub.board(q.board.as_deref())?;
        let req = NewTask {
            title: body.title,
            body: body.body,
            assignee: body.assignee.filter(|a| !a.trim().is_empty()),
            created_by: Some("dashboard".into()),
            workspace_kind: body.workspace_kind,
            workspace_path: body.workspace_path,
            tenant: body.tenant.filter(|t| !t.trim().is_empty()),
            priority: body.priority,
            parents: body.parents,
            triage: body.triage,
            idempotency_key: body.idempotency_key,
            max_runtime_seconds: body.max_runtime_seconds,
            skills: body.skills,
            max_retries: body.max_retries,
            goal_mode: body.goal_mode,
            goal_max_turns: body.goal_max_turns,
            default_workdir: st2.hub.catalogue().metadata(&board.slug)?.default_workdir,
            ..Default::default()
        };
        Ok(board.store.create_task(&req)?.task)
    })
    .await?;
    let warning = (task.status == Status::Ready && task.assignee.is_some())
        .then(|| st.dispatcher_warning())
        .flatten();
    Ok(Json(CreatedTask {
        task: task_json(&task, unix_now(), None),
        warning,
    }))
}

/// What a `status` value asks for, validated before anything is written.
enum StatusMove {
    Complete,
    Block,
    Schedule,
    Ready,
    Archive,
    /// Drag-and-drop into a parking column (triage, todo).
    Direct(Status),
}

fn parse_status_move(s: &str) -> ApiResult<StatusMove> {
    match s.trim().to_ascii_lowercase().as_str() {
        "done" => Ok(StatusMove::Complete),
        "blocked" => Ok(StatusMove::Block),
        "scheduled" => Ok(StatusMove::Schedule),
        "ready" => Ok(StatusMove::Ready),
        "archived" => Ok(StatusMove::Archive),
        "running" => Err(ApiError::bad_request(
            "Cannot set status to 'running' directly; use the dispatcher/claim path",
        )),
        "todo" => Ok(StatusMove::Direct(Status::Todo)),
        "triage" => Ok(StatusMove::Direct(Status::Triage)),
        _ => Err(ApiError::bad_request(format!("unknown status: {s}"))),
    }
}

/// Parents that keep `task_id` out of ready, for an actionable 409.
fn ready_refusal(store: &dyn Store, task_id: &str, err: StoreError) -> ApiError {
    if !matches!(err, StoreError::Refused { .. }) {
        return err.into();
    }
    let mut blockers = Vec::new();
    for p in store.parents_of(task_id).unwrap_or_default() {
        if let Ok(Some(t)) = store.get_task(&p)
            && !t.status.satisfies_children()
        {
            blockers.push(format!("{:?} ({}, status={})", t.title, t.id, t.status));
        }
    }
    if blockers.is_empty() {
        return err.into();
    }
    ApiError::conflict(format!(
        "Cannot move to 'ready': blocked by parent(s) not done — {}",
        blockers.join(", ")
    ))
}

fn move_status(
    store: &dyn Store,
    ending: Ending<'_>,
    task_id: &str,
    mv: StatusMove,
    p: &UpdateTaskBody,
    files: &BoardFiles,
) -> ApiResult<()> {
    match mv {
        StatusMove::Complete => {
            // Keeps declared scratch artifacts, then releases the workspace.
            let req = CompleteRequest {
                task_id: task_id.into(),
                result: p.result.clone(),
                summary: p.summary.clone(),
                metadata: p.metadata.clone(),
                ..Default::default()
            };
            let c = complete_with_files(store, &req, files)?;
            ending.end(c.run_id, c.ended_worker.as_ref());
        }
        StatusMove::Block => {
            let t = store.block_task(&BlockRequest {
                task_id: task_id.into(),
                reason: p.block_reason.clone(),
                ..Default::default()
            })?;
            ending.end(t.run_id, t.ended_worker.as_ref());
        }
        StatusMove::Schedule => {
            // The verb where it applies (it records the reason on the
            // run); a drag from triage/review/done is a direct move.
            let t = match store.schedule_task(task_id, p.block_reason.as_deref()) {
                Err(StoreError::Refused { .. }) => {
                    store.set_status_direct(task_id, Status::Scheduled)?
                }
                other => other?,
            };
            ending.end(t.run_id, t.ended_worker.as_ref());
        }
        StatusMove::Direct(to) => {
            let t = store.set_status_direct(task_id, to)?;
            ending.end(t.run_id, t.ended_worker.as_ref());
        }
        StatusMove::Archive => {
            let t = store.archive_task(task_id)?;
            ending.end(t.run_id, t.ended_worker.as_ref());
        }
        StatusMove::Ready => {
            let current = require_task(store, task_id)?;
            match current.status {
                Status::Ready => {}
                Status::Blocked | Status::Scheduled => {
                    store
                        .unblock_task(task_id, None)
                        .map_err(|e| ready_refusal(store, task_id, e))?;
                }
                _ => {
                    let t = store
                        .set_status_direct(task_id, Status::Ready)
                        .map_err(|e| ready_refusal(store, task_id, e))?;
                    ending.end(t.run_id, t.ended_worker.as_ref());
                }
            }
        }
    }
    Ok(())
}

/// Apply an update: assignee, then status, then priority/title/body, as
/// the reference does. Everything is validated before the first write.
pub fn apply_update(
    store: &dyn Store,
    ending: Ending<'_>,
    task_id: &str,
    p: &UpdateTaskBody,
    reclaim_first: bool,
    files: &BoardFiles,
) -> ApiResult<Task> {
    if let Some(t) = &p.title
        && t.trim().is_empty()
    {
        return Err(ApiError::bad_request("title cannot be empty"));
    }
    let mv = p.status.as_deref().map(parse_status_move).transpose()?;
    require_task(store, task_id)?;
    if let Some(a) = &p.assignee {
        let a = a.trim();
        let out = store.reassign_task(&AssignTask {
            task_id: task_id.into(),
            assignee: (!a.is_empty()).then(|| a.to_string()),
            reclaim_first,
            ..Default::default()
        })?;
        ending.end(out.reclaimed_run_id, out.ended_worker.as_ref());
    }
    if let Some(mv) = mv {
        move_status(store, ending, task_id, mv, p, files)?;
    }
    if p.priority.is_some() || p.title.is_some() || p.body.is_some() {
        store.edit_task(&EditTask {
            task_id: task_id.into(),
            title: p.title.clone(),
            body: p.body.clone(),
            priority: p.priority,
            ..Default::default()
        })?;
    }
    require_task(store, task_id)
}

/// Update a task (status moves map to lifecycle verbs; refusals are 409).
#[utoipa::path(patch, path = "/api/v1/tasks/{task_id}", params(("task_id" = String, Path), BoardQuery),
    request_body = UpdateTaskBody, tag = "tasks",
    responses((status = 200, body = TaskEnvelope), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 501, body = ErrorBody)))]
pub async fn update_task(
    State(st): State<AppState>,
    Path(task_id): Path<String>,
    ApiQuery(q): ApiQuery<BoardQuery>,
    ApiJson(body): ApiJson<UpdateTaskBody>,
) -> ApiResult<Json<TaskEnvelope>> {
    blocking(move || {
        let board = st.hub.board(q.board.as_deref())?;
        let store = board.store.as_ref();
        let files = board_files(&board.paths, Some(st.root()));
        let ending = st.ending(&board);
        let task = apply_update(store, ending, &task_id, &body, false, &files)?;
        let summary = task_latest_summary(store, &task)?;
        Ok(Json(TaskEnvelope {
            task: task_json(&task, unix_now(), summary),
        }))
    })
    .await
}

/// Hard delete with cascade; a running task's worker is ended.
#[utoipa::path(delete, path = "/api/v1/tasks/{task_id}", params(("task_id" = String, Path), BoardQuery), tag = "tasks",
    responses((status = 200, body = Object), (status = 404, body = ErrorBody)))]
pub async fn delete_task(
    State(st): State<AppState>,
    Path(task_id): Path<String>,
    ApiQuery(q): ApiQuery<BoardQuery>,
) -> ApiResult<Json<Value>> {
    blocking(move || {
        let board = st.hub.board(q.board.as_deref())?;
        let task = require_task(board.store.as_ref(), &task_id)?;
        let atts = board.store.attachments(&task_id)?;
        board.store.delete_task(&task_id, false)?;
        // A running task's worker is ended like archive ends it: the row
        // goes first (no reaper can requeue it), then its process group,
        // identified by the run it was started for.
        if let Some(pid) = task.worker_pid {
            let worker = EndedWorker {
                pid,
                claim_lock: task.claim_lock.clone(),
            };
            st.ending(&board).end(task.current_run_id, Some(&worker));
        }
        super::attachments::remove_task_blobs(&board.paths.attachments_root, &atts);
        Ok(Json(json!({"deleted": true, "task_id": task_id})))
    })
    .await
}

/// Apply one patch to many tasks; failures do not stop the others.
#[utoipa::path(post, path = "/api/v1/tasks/bulk", params(BoardQuery), request_body = BulkTaskBody, tag = "tasks",
    responses((status = 200, body = BulkResult), (status = 400, body = ErrorBody)))]
pub async fn bulk_update(
    State(st): State<AppState>,
    ApiQuery(q): ApiQuery<BoardQuery>,
    ApiJson(body): ApiJson<BulkTaskBody>,
) -> ApiResult<Json<BulkResult>> {
    blocking(move || {
        let ids: Vec<String> = body.ids.iter().filter(|i| !i.is_empty()).cloned().collect();
        if ids.is_empty() {
            return Err(ApiError::bad_request("ids is required"));
        }
        let board = st.hub.board(q.board.as_deref())?;
        let store = board.store.as_ref();
        let files = board_files(&board.paths, Some(st.root()));
        let ending = st.ending(&board);
        let patch = UpdateTaskBody {
            status: if body.archive {
                Some("archived".into())
            } else {
                body.status.clone()
            },
            assignee: body.assignee.clone(),
            priority: body.priority,
            result: body.result.clone(),
            summary: body.summary.clone(),
            metadata: body.metadata.clone(),
            ..Default::default()
        };
        let results = ids
            .into_iter()
            .map(
                |id| match apply_update(store, ending, &id, &patch, body.reclaim_first, &files) {
                    Ok(_) => BulkItem {
                        id,
                        ok: true,
                        error: None,
                    },
                    Err(e) => BulkItem {
                        id,
                        ok: false,
                        error: Some(e.public_detail()),
                    },
                },
            )
            .collect();
        Ok(Json(BulkResult { results }))
    })
    .await
}
