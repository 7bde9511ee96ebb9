//! Diagnostics: the board-wide list (`GET /diagnostics`) and the per-card
//! `diagnostics` / `warnings` of the board view and task detail.
//!
//! Each board keeps a `DiagnosticsIndex`: a request refolds only the tasks
//! with events since the previous one, then applies the rules (with the
//! current time) to the task rows the request read anyway.

use std::collections::HashMap;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::Json;
use axum::extract::State;
use kanban_core::Task;
use kanban_core::diagnostics::{
    Diagnostic, DiagnosticsConfig, Severity, WarningsSummary, at_or_above, warnings_summary,
};
use kanban_hermes::config::KanbanConfig;
use kanban_hermes::layout::ProcessEnv;
use kanban_store::TaskQuery;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::api::{ApiQuery, blocking};
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::hub::{Board, BoardHub};
use crate::state::AppState;

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// The thresholds and triage context from the root's `config.yaml`.
pub fn config(hub: &BoardHub) -> DiagnosticsConfig {
    let limit = KanbanConfig::load(hub.root(), &ProcessEnv)
        .map(|c| c.failure_limit)
        .unwrap_or(kanban_core::defaults::FAILURE_LIMIT);
    kanban_hermes::diagnostics_config::load(hub.root(), limit)
}

/// Active diagnostics of `tasks` (those with none are left out), keyed by id.
pub fn of_tasks<'a>(
    board: &Board,
    tasks: impl IntoIterator<Item = &'a Task>,
    now: i64,
    cfg: &DiagnosticsConfig,
) -> ApiResult<HashMap<String, Vec<Diagnostic>>> {
    let mut index = board
        .diagnostics
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    index.refresh(board.store.as_ref())?;
    Ok(tasks
        .into_iter()
        .filter_map(|t| {
            let d = index.diagnose(t, now, cfg);
            (!d.is_empty()).then(|| (t.id.clone(), d))
        })
        .collect())
}

/// A card's diagnostics and their badge summary.
pub fn card_fields(
    found: Option<Vec<Diagnostic>>,
) -> (Option<Vec<Diagnostic>>, Option<WarningsSummary>) {
    match found {
        Some(d) if !d.is_empty() => {
            let w = warnings_summary(&d);
            (Some(d), w)
        }
        _ => (None, None),
    }
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DiagnosticsQuery {
    pub board: Option<String>,
    /// Only diagnostics at or above: `warning`, `error` or `critical`.
    pub severity: Option<String>,
}

/// One task with active diagnostics.
#[derive(Debug, Serialize, ToSchema)]
pub struct TaskDiagnostics {
    pub task_id: String,
    pub task_title: String,
    pub task_status: String,
    pub task_assignee: Option<String>,
    /// `{kind, severity, title, detail, actions[{kind, label, payload,
    /// suggested}], first_seen_at, last_seen_at, count, run_id, data}`,
    /// most severe first.
    #[schema(value_type = Vec<Object>)]
    pub diagnostics: Vec<Diagnostic>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DiagnosticsList {
    /// Most severe first, then most recent.
    pub diagnostics: Vec<TaskDiagnostics>,
    /// Number of diagnostics (not tasks).
    pub count: usize,
}

/// Every task of the board with an active diagnostic.
#[utoipa::path(get, path = "/api/v1/diagnostics", params(DiagnosticsQuery), tag = "board",
    responses((status = 200, body = DiagnosticsList), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn list(
    State(st): State<AppState>,
    ApiQuery(q): ApiQuery<DiagnosticsQuery>,
) -> ApiResult<Json<DiagnosticsList>> {
    let min = match q.severity.as_deref().filter(|s| !s.is_empty()) {
        None => None,
        Some(s) => Some(
            s.parse::<Severity>()
                .map_err(|e| ApiError::bad_request(e.to_string()))?,
        ),
    };
    blocking(move || {
        let board = st.hub.board(q.board.as_deref())?;
        let cfg = config(&st.hub);
        let tasks = board.store.list_tasks(&TaskQuery::default())?;
        let mut found = of_tasks(&board, &tasks, now(), &cfg)?;
        let mut rows: Vec<TaskDiagnostics> = tasks
            .into_iter()
            .filter_map(|t| {
                let d = at_or_above(found.remove(&t.id)?, min);
                (!d.is_empty()).then(|| TaskDiagnostics {
                    task_id: t.id,
                    task_title: t.title,
                    task_status: t.status.as_str().into(),
                    task_assignee: t.assignee,
                    diagnostics: d,
                })
            })
            .collect();
        rows.sort_by_key(|r| {
            (
                std::cmp::Reverse(r.diagnostics[0].severity),
                std::cmp::Reverse(r.diagnostics[0].last_seen_at),
            )
        });
        let count = rows.iter().map(|r| r.diagnostics.len()).sum();
        Ok(Json(DiagnosticsList {
            diagnostics: rows,
            count,
        }))
    })
    .await
}
