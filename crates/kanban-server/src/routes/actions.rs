//! Comments, links, runs, logs, recovery actions, stats, assignees and the
//! dispatch nudge.

use std::collections::BTreeMap;
use std::io::{Read, Seek, SeekFrom};

use axum::Json;
use axum::extract::{Path, State};
use kanban_core::defaults::LOG_VIEW_DEFAULT_TAIL_BYTES;
use kanban_core::{Run, Status};
use kanban_hermes::profiles::Profiles;
use kanban_store::board_files::LogRange as LogWindow;
use kanban_store::{AssignTask, BoardStats, Store, TaskQuery};
use serde_json::{Value, json};

use super::tasks::unix_now;
use crate::api::*;
use crate::dispatch::run_pass_blocking;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::state::AppState;

/// Largest `tail` (and page `limit`) the log route accepts, as the reference.
pub const LOG_TAIL_MAX_BYTES: u64 = 2_000_000;
/// `POST /dispatch` cap when `max` is omitted (the reference's default).
pub const DISPATCH_NUDGE_DEFAULT_MAX: u32 = 8;

/// Append a comment.
#[utoipa::path(post, path = "/api/v1/tasks/{task_id}/comments", params(("task_id" = String, Path), BoardQuery),
    request_body = CommentBody, tag = "tasks",
    responses((status = 200, body = Ack), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn add_comment(
    State(st): State<AppState>,
    Path(task_id): Path<String>,
    ApiQuery(q): ApiQuery<BoardQuery>,
    ApiJson(body): ApiJson<CommentBody>,
) -> ApiResult<Json<Ack>> {
    blocking(move || {
        if body.body.trim().is_empty() {
            return Err(ApiError::bad_request("body is required"));
        }
        let board = st.hub.board(q.board.as_deref())?;
        require_task(board.store.as_ref(), &task_id)?;
        let author = body
            .author
            .filter(|a| !a.trim().is_empty())
            .unwrap_or_else(|| "dashboard".into());
        let c = board.store.add_comment(&task_id, &author, &body.body)?;
        Ok(Json(Ack::ok().with("comment", c)))
    })
    .await
}

/// Add a parent → child dependency (400 on cycle, self-link, unknown id).
#[utoipa::path(post, path = "/api/v1/links", params(BoardQuery), request_body = LinkBody, tag = "links",
    responses((status = 200, body = Ack), (status = 400, body = ErrorBody)))]
pub async fn add_link(
    State(st): State<AppState>,
    ApiQuery(q): ApiQuery<BoardQuery>,
    ApiJson(body): ApiJson<LinkBody>,
) -> ApiResult<Json<Ack>> {
    blocking(move || {
        let board = st.hub.board(q.board.as_deref())?;
        board
            .store
            .link_tasks(&body.parent_id, &body.child_id)
            .map_err(|e| match e {
                // The ids are in the body, not the path: a bad reference is a bad request.
                kanban_store::StoreError::TaskNotFound(id) => {
                    ApiError::bad_request(format!("unknown task: {id}"))
                }
                e => e.into(),
            })?;
        Ok(Json(Ack::ok()))
    })
    .await
}

/// Remove a dependency; `ok` is false when there was none.
#[utoipa::path(delete, path = "/api/v1/links", params(UnlinkQuery), tag = "links",
    responses((status = 200, body = Ack), (status = 400, body = ErrorBody)))]
pub async fn delete_link(
    State(st): State<AppState>,
    ApiQuery(q): ApiQuery<UnlinkQuery>,
) -> ApiResult<Json<Ack>> {
    blocking(move || {
        let board = st.hub.board(q.board.as_deref())?;
        let removed = board.store.unlink_tasks(&q.parent_id, &q.child_id)?;
        Ok(Json(Ack {
            ok: removed,
            extra: Default::default(),
        }))
    })
    .await
}

/// Attempt history of a task, oldest first.
#[utoipa::path(get, path = "/api/v1/tasks/{task_id}/runs", params(("task_id" = String, Path), BoardQuery), tag = "runs",
    responses((status = 200, body = Object), (status = 404, body = ErrorBody)))]
pub async fn task_runs(
    State(st): State<AppState>,
    Path(task_id): Path<String>,
    ApiQuery(q): ApiQuery<BoardQuery>,
) -> ApiResult<Json<Value>> {
    blocking(move || {
        let board = st.hub.board(q.board.as_deref())?;
        require_task(board.store.as_ref(), &task_id)?;
        let runs: Vec<Value> = board.store.runs(&task_id)?.iter().map(run_json).collect();
        Ok(Json(json!({"task_id": task_id, "runs": runs})))
    })
    .await
}

/// The run with this id (404 otherwise).
fn find_run(store: &dyn Store, run_id: i64) -> ApiResult<Run> {
    store
        .get_run(run_id)?
        .ok_or_else(|| ApiError::not_found(format!("run {run_id} not found")))
}

#[utoipa::path(get, path = "/api/v1/runs/{run_id}", params(("run_id" = i64, Path), BoardQuery), tag = "runs",
    responses((status = 200, body = Object), (status = 404, body = ErrorBody)))]
pub async fn get_run(
    State(st): State<AppState>,
    Path(run_id): Path<i64>,
    ApiQuery(q): ApiQuery<BoardQuery>,
) -> ApiResult<Json<Value>> {
    blocking(move || {
        let board = st.hub.board(q.board.as_deref())?;
        let run = find_run(board.store.as_ref(), run_id)?;
        Ok(Json(json!({"run": run_json(&run)})))
    })
    .await
}

/// End the worker of an open run (reclaims its task). 409 when the run ended.
#[utoipa::path(post, path = "/api/v1/runs/{run_id}/terminate", params(("run_id" = i64, Path), BoardQuery),
    request_body = ReasonBody, tag = "runs",
    responses((status = 200, body = Ack), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn terminate_run(
    State(st): State<AppState>,
    Path(run_id): Path<i64>,
    ApiQuery(q): ApiQuery<BoardQuery>,
    body: axum::body::Bytes,
) -> ApiResult<Json<Ack>> {
    blocking(move || {
        let board = st.hub.board(q.board.as_deref())?;
        let store = board.store.as_ref();
        let run = find_run(store, run_id)?;
        if run.ended_at.is_some() {
            return Err(ApiError::conflict(format!("run {run_id} already ended")));
        }
        let reason = optional_json::<ReasonBody>(&body)?.reason;
        let t = store
            .reclaim_task(&run.task_id, reason.as_deref())
            .map_err(|e| match e {
                kanban_store::StoreError::Refused { .. } => ApiError::conflict(format!(
                    "cannot terminate run {run_id}: task {} is no longer in a reclaimable state",
                    run.task_id
                )),
                e => e.into(),
            })?;
        st.ending(&board).end(t.run_id, t.ended_worker.as_ref());
        Ok(Json(
            Ack::ok()
                .with("run_id", run_id)
                .with("task_id", run.task_id),
        ))
    })
    .await
}

/// Release an active claim: the task goes back to ready.
#[utoipa::path(post, path = "/api/v1/tasks/{task_id}/reclaim", params(("task_id" = String, Path), BoardQuery),
    request_body = ReasonBody, tag = "tasks",
    responses((status = 200, body = Ack), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn reclaim_task(
    State(st): State<AppState>,
    Path(task_id): Path<String>,
    ApiQuery(q): ApiQuery<BoardQuery>,
    body: axum::body::Bytes,
) -> ApiResult<Json<Ack>> {
    blocking(move || {
        let board = st.hub.board(q.board.as_deref())?;
        require_task(board.store.as_ref(), &task_id)?;
        let reason = optional_json::<ReasonBody>(&body)?.reason;
        let t = board.store.reclaim_task(&task_id, reason.as_deref())?;
        st.ending(&board).end(t.run_id, t.ended_worker.as_ref());
        Ok(Json(Ack::ok().with("task_id", task_id)))
    })
    .await
}

/// Reassign to another profile, optionally reclaiming a running task first.
#[utoipa::path(post, path = "/api/v1/tasks/{task_id}/reassign", params(("task_id" = String, Path), BoardQuery),
    request_body = ReassignBody, tag = "tasks",
    responses((status = 200, body = Ack), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn reassign_task(
    State(st): State<AppState>,
    Path(task_id): Path<String>,
    ApiQuery(q): ApiQuery<BoardQuery>,
    ApiJson(body): ApiJson<ReassignBody>,
) -> ApiResult<Json<Ack>> {
    blocking(move || {
        let board = st.hub.board(q.board.as_deref())?;
        require_task(board.store.as_ref(), &task_id)?;
        let profile = body
            .profile
            .map(|p| p.trim().to_string())
            .filter(|p| !p.is_empty());
        let out = board.store.reassign_task(&AssignTask {
            task_id: task_id.clone(),
            assignee: profile,
            reclaim_first: body.reclaim_first,
            reason: body.reason,
            ..Default::default()
        })?;
        st.ending(&board)
            .end(out.reclaimed_run_id, out.ended_worker.as_ref());
        let task = out.task;
        Ok(Json(
            Ack::ok()
                .with("task_id", task_id)
                .with("assignee", task.assignee),
        ))
    })
    .await
}

/// The worker log, one bounded window of it: the last `tail` bytes, the
/// page `offset`..`offset + limit`, or by default the last
/// [`LOG_VIEW_DEFAULT_TAIL_BYTES`] (the reference returns the whole file;
/// a log holds several runs of up to the per-run cap each).
#[utoipa::path(get, path = "/api/v1/tasks/{task_id}/log", params(("task_id" = String, Path), LogQuery), tag = "tasks",
    responses((status = 200, body = LogView), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn task_log(
    State(st): State<AppState>,
    Path(task_id): Path<String>,
    ApiQuery(q): ApiQuery<LogQuery>,
) -> ApiResult<Json<LogView>> {
    blocking(move || {
        let window = log_window(&q)?;
        let board = st.hub.board(q.board.as_deref())?;
        require_task(board.store.as_ref(), &task_id)?;
        let path = board.paths.log_file(&task_id);
        // A board shared by hosts keeps a copy of every run's log: the same
        // answer on every gateway, wherever the worker ran (ADR 0002).
        let kept = if board.store.keeps_worker_logs() {
            board.store.worker_log(&task_id, window)?
        } else {
            None
        };
        let (exists, size, offset, content) = match (kept, std::fs::File::open(&path)) {
            (Some(slice), _) => (true, slice.size, slice.offset, slice.bytes),
            (None, Ok(mut f)) => {
                let size = f.metadata().map(|m| m.len()).unwrap_or(0);
                let (start, len) = window.bounds(size);
                let mut buf = Vec::with_capacity(len as usize);
                f.seek(SeekFrom::Start(start))
                    .and_then(|_| f.take(len).read_to_end(&mut buf))
                    .map_err(|e| {
                        ApiError::internal(format!("cannot read {}: {e}", path.display()))
                    })?;
                (true, size, start, buf)
            }
            (None, Err(_)) => (false, 0, 0, Vec::new()),
        };
        let next_offset = offset + content.len() as u64;
        Ok(Json(LogView {
            task_id,
            path: path.display().to_string(),
            exists,
            size_bytes: size,
            truncated: offset > 0 || next_offset < size,
            content: String::from_utf8_lossy(&content).into_owned(),
            offset,
            next_offset,
        }))
    })
    .await
}

fn log_window(q: &LogQuery) -> ApiResult<LogWindow> {
    let bounded = |name: &str, v: u64| {
        if (1..=LOG_TAIL_MAX_BYTES).contains(&v) {
            Ok(v)
        } else {
            Err(ApiError::bad_request(format!(
                "{name} must be between 1 and {LOG_TAIL_MAX_BYTES}"
            )))
        }
    };
    match (q.tail, q.offset, q.limit) {
        (Some(_), Some(_), _) | (Some(_), _, Some(_)) => Err(ApiError::bad_request(
            "use either tail, or offset and limit",
        )),
        (Some(t), None, None) => Ok(LogWindow::Tail(bounded("tail", t)?)),
        (None, None, None) => Ok(LogWindow::Tail(LOG_VIEW_DEFAULT_TAIL_BYTES)),
        (None, offset, limit) => Ok(LogWindow::Page {
            offset: offset.unwrap_or(0),
            limit: bounded("limit", limit.unwrap_or(LOG_VIEW_DEFAULT_TAIL_BYTES))?,
        }),
    }
}

/// Open runs with a worker pid on running tasks.
#[utoipa::path(get, path = "/api/v1/workers/active", params(BoardQuery), tag = "runs",
    responses((status = 200, body = Object)))]
pub async fn active_workers(
    State(st): State<AppState>,
    ApiQuery(q): ApiQuery<BoardQuery>,
) -> ApiResult<Json<Value>> {
    blocking(move || {
        let board = st.hub.board(q.board.as_deref())?;
        let store = board.store.as_ref();
        let running = store.list_tasks(&TaskQuery { status: Some(Status::Running), ..Default::default() })?;
        let mut workers = Vec::new();
        for t in running {
            for r in store.runs(&t.id)?.into_iter().filter(|r| r.ended_at.is_none() && r.worker_pid.is_some()) {
                workers.push(json!({
                    "run_id": r.id, "task_id": t.id, "task_title": t.title, "task_status": t.status,
                    "task_assignee": t.assignee, "profile": r.profile, "worker_pid": r.worker_pid,
                    "started_at": r.started_at, "claim_lock": r.claim_lock, "claim_expires": r.claim_expires,
                    "last_heartbeat_at": r.last_heartbeat_at, "max_runtime_seconds": r.max_runtime_seconds,
                }));
            }
        }
        Ok(Json(json!({"count": workers.len(), "workers": workers, "checked_at": unix_now()})))
    })
    .await
}

/// Per-status and per-assignee counts, oldest ready age.
#[utoipa::path(get, path = "/api/v1/stats", params(BoardQuery), tag = "board",
    responses((status = 200, body = Object), (status = 404, body = ErrorBody)))]
pub async fn stats(
    State(st): State<AppState>,
    ApiQuery(q): ApiQuery<BoardQuery>,
) -> ApiResult<Json<BoardStats>> {
    blocking(move || Ok(Json(st.hub.board(q.board.as_deref())?.store.stats()?))).await
}

/// Profiles on disk and in config, united with assignees in use.
#[utoipa::path(get, path = "/api/v1/assignees", params(BoardQuery), tag = "board",
    responses((status = 200, body = Object), (status = 404, body = ErrorBody)))]
pub async fn assignees(
    State(st): State<AppState>,
    ApiQuery(q): ApiQuery<BoardQuery>,
) -> ApiResult<Json<Value>> {
    blocking(move || {
        let board = st.hub.board(q.board.as_deref())?;
        let config = st.config()?;
        let on_disk: Vec<String> =
            Profiles::new(st.root(), &config).list_profiles().into_iter().map(|p| p.name).collect();
        let mut counts: BTreeMap<String, BTreeMap<String, i64>> = BTreeMap::new();
        for (who, status, n) in board.store.assignee_counts()? {
            counts.entry(who).or_default().insert(status, n);
        }
        let mut names: Vec<String> = on_disk.iter().cloned().chain(counts.keys().cloned()).collect();
        names.sort();
        names.dedup();
        let rows: Vec<Value> = names
            .iter()
            .map(|n| json!({"name": n, "on_disk": on_disk.contains(n), "counts": counts.get(n).cloned().unwrap_or_default()}))
            .collect();
        Ok(Json(json!({"assignees": rows})))
    })
    .await
}

/// Run one dispatch pass now. 501 when this server has no dispatcher.
#[utoipa::path(post, path = "/api/v1/dispatch", params(DispatchQuery), tag = "board",
    responses((status = 200, body = Object), (status = 501, body = ErrorBody)))]
pub async fn dispatch(
    State(st): State<AppState>,
    ApiQuery(q): ApiQuery<DispatchQuery>,
) -> ApiResult<Json<Value>> {
    let Some(pass) = st.dispatch.clone() else {
        return Err(ApiError::not_implemented(
            "this server has no dispatcher attached; run `kanban dispatch` instead",
        ));
    };
    blocking(move || {
        let board = st.hub.board(q.board.as_deref())?;
        let config = st.config()?;
        let max = q.max.unwrap_or(DISPATCH_NUDGE_DEFAULT_MAX);
        let out = run_pass_blocking(
            pass.as_ref(),
            st.root(),
            &board,
            &config,
            q.dry_run,
            Some(max),
        )
        .map_err(|e| ApiError::internal(format!("dispatch failed: {e:#}")))?;
        Ok(Json(out))
    })
    .await
}
