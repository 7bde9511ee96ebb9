//! The review flow of newer Hermes over REST: `request-review`,
//! `request-changes` and `reopen-review`, the same store operations (and
//! the same rules in `kanban_core::transitions::review`) as the CLI verbs
//! and the MCP tools, plus our `approve` (an operator's verdict on a card
//! waiting in Review, for boards with `kanban.review_dispatch: false`).
//! Bad input is a 400, a refusal a 409 naming the status and the way out;
//! neither changes anything.

use axum::Json;
use axum::extract::{Path, State};
use kanban_store::{ChangesRequest, EndedWorker, ReviewRequest, Transitioned};
use serde::Deserialize;
use serde_json::Value;
use utoipa::ToSchema;

use crate::api::*;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::state::AppState;

/// `POST /tasks/{id}/request-review`.
#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct RequestReviewBody {
    /// The handoff the reviewer reads (required, not blank).
    #[schema(min_length = 1, pattern = r"\S")]
    pub summary: String,
    /// Structured handoff kept on the closed attempt (a JSON object).
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<Value>,
    /// Profile that reviews; the card is reassigned to it. Absent: the
    /// current assignee reviews (with the review skill).
    #[schema(min_length = 1, pattern = r"\S")]
    pub reviewer: Option<String>,
}

/// `POST /tasks/{id}/request-changes`.
#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct RequestChangesBody {
    /// The required changes (required, not blank).
    #[schema(min_length = 1, pattern = r"\S")]
    pub reason: String,
}

/// `POST /tasks/{id}/reopen-review` (the body is optional).
#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct ReopenReviewBody {
    /// Why the card goes back; kept on a `changes_requested` attempt.
    pub reason: Option<String>,
}

fn reply(t: &Transitioned) -> Json<Ack> {
    Json(
        Ack::ok()
            .with("task_id", t.task.id.clone())
            .with("status", t.to.as_str())
            .with("assignee", t.task.assignee.clone())
            .with("run_id", t.run_id),
    )
}

/// Hand a running or ready card to review: its attempt closes as
/// `review_requested` with the handoff, the card waits in Review (for
/// `reviewer` when named). A worker asking for itself uses the CLI or MCP
/// tool and exits on its own; handed over from here, a running attempt's
/// worker is ended, as on completion.
#[utoipa::path(post, path = "/api/v1/tasks/{task_id}/request-review", params(("task_id" = String, Path), BoardQuery),
    request_body = RequestReviewBody, tag = "tasks",
    responses((status = 200, body = Ack), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, description = "Not running or ready", body = ErrorBody)))]
pub async fn request_review(
    State(st): State<AppState>,
    Path(task_id): Path<String>,
    ApiQuery(q): ApiQuery<BoardQuery>,
    ApiJson(body): ApiJson<RequestReviewBody>,
) -> ApiResult<Json<Ack>> {
    blocking(move || {
        if body.summary.trim().is_empty() {
            return Err(ApiError::bad_request(
                "summary is required to request review",
            ));
        }
        let board = st.hub.board(q.board.as_deref())?;
        let before = require_task(board.store.as_ref(), &task_id)?;
        let t = board.store.request_review(&ReviewRequest {
            task_id,
            summary: body.summary,
            metadata: body.metadata,
            reviewer: body.reviewer,
            expected_run_id: None,
        })?;
        // Only the worker of the attempt this call closed.
        let closed_its_run = before.current_run_id.is_some() && before.current_run_id == t.run_id;
        if let (true, Some(pid)) = (closed_its_run, before.worker_pid) {
            let worker = EndedWorker {
                pid,
                claim_lock: before.claim_lock.clone(),
            };
            st.ending(&board).end(t.run_id, Some(&worker));
        }
        Ok(reply(&t))
    })
    .await
}

/// The verdict on an active review attempt: it closes as
/// `changes_requested`, its worker is ended, and the card goes back to
/// its implementer (ready, or todo while parents are unfinished). A card
/// waiting in Review with no reviewer on it is sent back with
/// `reopen-review`.
#[utoipa::path(post, path = "/api/v1/tasks/{task_id}/request-changes", params(("task_id" = String, Path), BoardQuery),
    request_body = RequestChangesBody, tag = "tasks",
    responses((status = 200, body = Ack), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, description = "No review attempt is running", body = ErrorBody)))]
pub async fn request_changes(
    State(st): State<AppState>,
    Path(task_id): Path<String>,
    ApiQuery(q): ApiQuery<BoardQuery>,
    ApiJson(body): ApiJson<RequestChangesBody>,
) -> ApiResult<Json<Ack>> {
    blocking(move || {
        if body.reason.trim().is_empty() {
            return Err(ApiError::bad_request(
                "reason (the required changes) is required",
            ));
        }
        let board = st.hub.board(q.board.as_deref())?;
        require_task(board.store.as_ref(), &task_id)?;
        let t = board.store.request_changes(&ChangesRequest {
            task_id,
            reason: body.reason,
            expected_run_id: None,
        })?;
        st.ending(&board).end(t.run_id, t.ended_worker.as_ref());
        Ok(reply(&t))
    })
    .await
}

/// Send a card waiting in Review (no reviewer on it) back to its
/// implementer, with an optional reason.
#[utoipa::path(post, path = "/api/v1/tasks/{task_id}/reopen-review", params(("task_id" = String, Path), BoardQuery),
    request_body = ReopenReviewBody, tag = "tasks",
    responses((status = 200, body = Ack), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, description = "Not waiting in review, or a reviewer holds it", body = ErrorBody)))]
pub async fn reopen_review(
    State(st): State<AppState>,
    Path(task_id): Path<String>,
    ApiQuery(q): ApiQuery<BoardQuery>,
    body: axum::body::Bytes,
) -> ApiResult<Json<Ack>> {
    blocking(move || {
        let body = optional_json::<ReopenReviewBody>(&body)?;
        let board = st.hub.board(q.board.as_deref())?;
        require_task(board.store.as_ref(), &task_id)?;
        let t = board
            .store
            .reopen_review(&task_id, body.reason.as_deref())?;
        Ok(reply(&t))
    })
    .await
}

/// `POST /tasks/{id}/approve` (the body is optional).
#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct ApproveBody {
    /// The verdict, kept on the `completed` attempt.
    pub summary: Option<String>,
}

/// An operator's approval of a card waiting in Review (no reviewer on
/// it): done, with a `completed` attempt holding the verdict. A running
/// review attempt is approved by completing it (`PATCH status=done`);
/// `PATCH status=done` on a card waiting in Review is refused.
#[utoipa::path(post, path = "/api/v1/tasks/{task_id}/approve", params(("task_id" = String, Path), BoardQuery),
    request_body = ApproveBody, tag = "tasks",
    responses((status = 200, body = Ack), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, description = "Not waiting in review, or a reviewer holds it", body = ErrorBody)))]
pub async fn approve(
    State(st): State<AppState>,
    Path(task_id): Path<String>,
    ApiQuery(q): ApiQuery<BoardQuery>,
    body: axum::body::Bytes,
) -> ApiResult<Json<Ack>> {
    blocking(move || {
        let body = optional_json::<ApproveBody>(&body)?;
        let board = st.hub.board(q.board.as_deref())?;
        require_task(board.store.as_ref(), &task_id)?;
        let t = board
            .store
            .approve_review(&task_id, body.summary.as_deref())?;
        Ok(reply(&t))
    })
    .await
}
