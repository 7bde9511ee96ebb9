//! The router: every REST route under `/api/v1` (also mounted at the
//! reference's `/api/plugins/kanban` so its dashboard bundle works
//! unchanged), `/metrics`, `/healthz`, the OpenAPI document, and the
//! layers every request passes (auth, origin, body limit, JSON errors).

pub mod actions;
pub mod activity;
pub mod attachments;
pub mod board_page;
pub mod boards;
pub mod diagnostics;
pub mod openapi;
pub mod review;
pub mod tasks;
pub mod triage;

use axum::extract::{DefaultBodyLimit, State};
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::{get, patch, post};
use axum::{Json, Router, middleware};
use serde::Serialize;
use tower_http::limit::RequestBodyLimitLayer;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{OpenApi, ToSchema};

use crate::api::*;
use crate::error::ErrorBody;
use crate::hub::{BoardFault, EventBatch};
use crate::state::AppState;
use crate::{auth, ws};

/// Where the reference dashboard plugin mounts the same API.
pub const REFERENCE_API_PREFIX: &str = "/api/plugins/kanban";
pub const API_PREFIX: &str = "/api/v1";

fn api_routes() -> Router<AppState> {
    Router::new()
        .route("/board", get(tasks::get_board))
        .route("/tasks", post(tasks::create_task))
        .route("/tasks/bulk", post(tasks::bulk_update))
        .route(
            "/tasks/{task_id}",
            get(tasks::get_task)
                .patch(tasks::update_task)
                .delete(tasks::delete_task),
        )
        .route("/tasks/{task_id}/comments", post(actions::add_comment))
        .route(
            "/attachments/{attachment_id}",
            get(attachments::download).delete(attachments::delete),
        )
        .route("/tasks/{task_id}/runs", get(actions::task_runs))
        .route("/tasks/{task_id}/log", get(actions::task_log))
        .route("/tasks/{task_id}/reclaim", post(actions::reclaim_task))
        .route("/tasks/{task_id}/reassign", post(actions::reassign_task))
        .route(
            "/tasks/{task_id}/request-review",
            post(review::request_review),
        )
        .route(
            "/tasks/{task_id}/request-changes",
            post(review::request_changes),
        )
        .route(
            "/tasks/{task_id}/reopen-review",
            post(review::reopen_review),
        )
        .route("/tasks/{task_id}/approve", post(review::approve))
        .route("/tasks/{task_id}/specify", post(triage::specify))
        .route("/tasks/{task_id}/decompose", post(triage::decompose))
        .route("/profiles", get(triage::list_profiles))
        .route("/profiles/{name}", patch(triage::patch_profile))
        .route(
            "/profiles/{name}/describe-auto",
            post(triage::describe_auto),
        )
        .route(
            "/orchestration",
            get(triage::get_orchestration).put(triage::put_orchestration),
        )
        .route("/runs/{run_id}", get(actions::get_run))
        .route("/runs/{run_id}/terminate", post(actions::terminate_run))
        .route("/workers/active", get(actions::active_workers))
        .route(
            "/links",
            post(actions::add_link).delete(actions::delete_link),
        )
        .route("/stats", get(actions::stats))
        .route("/diagnostics", get(diagnostics::list))
        .route("/activity", get(activity::activity))
        .route("/assignees", get(actions::assignees))
        .route("/dispatch", post(actions::dispatch))
        .route("/boards", get(boards::list).post(boards::create))
        .route(
            "/boards/{slug}",
            patch(boards::update).delete(boards::delete),
        )
        .route("/boards/{slug}/switch", post(boards::switch))
        .route("/events", get(ws::events))
        .route("/openapi.json", get(openapi_json))
}

/// Attachment upload: the one route whose body may exceed the JSON limit.
fn upload_routes() -> Router<AppState> {
    Router::new().route(
        "/tasks/{task_id}/attachments",
        get(attachments::list).post(attachments::upload),
    )
}

/// The whole application. Every request, the dashboard's included, passes
/// the `Host` check (DNS rebinding); API routes need the token (when set)
/// and pass the origin check; anything else is a dashboard asset or a JSON 404.
pub fn router(state: AppState, body_limit: usize) -> Router {
    let json_api = Router::new()
        .nest(API_PREFIX, api_routes())
        .nest(REFERENCE_API_PREFIX, api_routes())
        .route("/metrics", get(metrics_text))
        .route("/healthz", get(healthz))
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(RequestBodyLimitLayer::new(body_limit));
    let uploads = Router::new()
        .nest(API_PREFIX, upload_routes())
        .nest(REFERENCE_API_PREFIX, upload_routes())
        .layer(DefaultBodyLimit::max(attachments::UPLOAD_BODY_LIMIT))
        .layer(RequestBodyLimitLayer::new(attachments::UPLOAD_BODY_LIMIT));
    json_api
        .merge(uploads)
        .route_layer(middleware::from_fn_with_state(state.clone(), auth::guard))
        .fallback(crate::assets::serve)
        .layer(middleware::from_fn(auth::json_errors))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            auth::host_guard,
        ))
        .with_state(state)
}

/// `/healthz` body.
#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    /// `ok`, or `degraded` when a board cannot be opened.
    pub status: String,
    pub version: String,
    /// Boards whose database cannot be opened (checked at start and
    /// whenever a board is opened; cleared once the file opens again).
    pub unhealthy_boards: Vec<BoardFault>,
}

/// Health: 200 `ok`; 503 `degraded` naming every board whose database
/// cannot be opened (the others are served).
#[utoipa::path(get, path = "/healthz", tag = "ops",
    responses((status = 200, body = Health), (status = 503, description = "A board is unhealthy", body = Health)))]
pub async fn healthz(State(st): State<AppState>) -> (StatusCode, Json<Health>) {
    let unhealthy_boards = st.hub.unhealthy_boards();
    let (code, status) = if unhealthy_boards.is_empty() {
        (StatusCode::OK, "ok")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "degraded")
    };
    let body = Health {
        status: status.into(),
        version: env!("CARGO_PKG_VERSION").into(),
        unhealthy_boards,
    };
    (code, Json(body))
}

/// Prometheus text exposition.
#[utoipa::path(get, path = "/metrics", tag = "ops", responses((status = 200, content_type = "text/plain", body = String)))]
pub async fn metrics_text(State(st): State<AppState>) -> impl IntoResponse {
    let hub = st.hub.clone();
    let _ = tokio::task::spawn_blocking(move || {
        crate::metrics::refresh_from_boards(&hub.open_boards());
        crate::metrics::flush();
    })
    .await;
    let body = crate::metrics::handle()
        .map(|h| h.render())
        .unwrap_or_default();
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        body,
    )
}

/// This document.
#[utoipa::path(get, path = "/api/v1/openapi.json", tag = "ops", responses((status = 200, body = Object)))]
pub async fn openapi_json() -> Json<&'static serde_json::Value> {
    Json(openapi::document())
}

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// The OpenAPI 3 description, generated from the handlers and types.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "kanban gateway API",
        description = "REST + WebSocket API of the kanban board (Hermes 0.19 dashboard compatible). \
            Errors are `{error, detail}`. When the gateway has a token, every route needs \
            `Authorization: Bearer <token>` (the WebSocket also accepts `?token=`)."
    ),
    paths(
        tasks::get_board, tasks::get_task, tasks::create_task, tasks::update_task, tasks::delete_task,
        tasks::bulk_update, attachments::list, attachments::upload, attachments::download,
        attachments::delete, actions::add_comment, actions::add_link, actions::delete_link,
        actions::task_runs, actions::get_run, actions::terminate_run, actions::reclaim_task,
        actions::reassign_task, actions::task_log, actions::active_workers, actions::stats,
        actions::assignees, actions::dispatch, activity::activity, boards::list, boards::create, boards::update,
        boards::delete, boards::switch, ws::events, healthz, metrics_text, openapi_json,
        review::request_review, review::request_changes, review::reopen_review, review::approve,
        diagnostics::list,
        triage::specify, triage::decompose, triage::list_profiles, triage::patch_profile,
        triage::describe_auto, triage::get_orchestration, triage::put_orchestration
    ),
    components(schemas(
        ErrorBody, EventBatch, Health, BoardFault, BoardView, BoardColumn, CreatedTask, TaskEnvelope, BulkResult, BulkItem,
        LogView, Ack, CreateTaskBody, UpdateTaskBody, BulkTaskBody, CommentBody, LinkBody, ReasonBody,
        ReassignBody, CreateBoardBody, UpdateBoardBody, activity::ActivityView, activity::CountSeries,
        activity::WorkerSeries, activity::LatencyView, activity::LatencyBinView, activity::RangeParam,
        review::RequestReviewBody, review::RequestChangesBody, review::ReopenReviewBody,
        review::ApproveBody, diagnostics::DiagnosticsList, diagnostics::TaskDiagnostics,
        triage::TriageBody, triage::TriageOutcome, triage::ProfileView, triage::ProfilesView,
        triage::ProfilePatch, triage::DescribeOutcome, triage::OrchestrationView,
        triage::OrchestrationBody
    )),
    modifiers(&BearerAuth),
    security(("bearer" = [])),
    tags(
        (name = "board", description = "Board view, stats, dispatch"),
        (name = "tasks", description = "Tasks and their lifecycle"),
        (name = "links", description = "Dependencies"),
        (name = "runs", description = "Attempts and workers"),
        (name = "boards", description = "Board management"),
        (name = "events", description = "Live event feed"),
        (name = "ops", description = "Health, metrics, this document"),
        (name = "triage", description = "Specify/decompose by the auxiliary model, profiles, orchestration"),
    )
)]
pub struct ApiDoc;
