//! Request and response shapes of the REST API (the reference dashboard
//! plugin's, reference §6), and helpers shared by the handlers.

use axum::extract::{FromRequest, FromRequestParts};
use kanban_core::{Run, Task};
use kanban_store::Store;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

use crate::error::{ApiError, ApiResult};

/// `Json` whose rejections are [`ApiError`]s (400 bad JSON, 413 too big,
/// 415 wrong content type) with the `{error, detail}` body.
#[derive(FromRequest)]
#[from_request(via(axum::Json), rejection(ApiError))]
pub struct ApiJson<T>(pub T);

/// `Query` whose rejections are 400 [`ApiError`]s.
#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(ApiError))]
pub struct ApiQuery<T>(pub T);

/// A JSON body that may be absent (empty means all defaults).
pub fn optional_json<T: serde::de::DeserializeOwned + Default>(bytes: &[u8]) -> ApiResult<T> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    serde_json::from_slice(bytes)
        .map_err(|e| ApiError::bad_request(format!("invalid JSON body: {e}")))
}

/// Run blocking store work off the async runtime.
pub async fn blocking<T, F>(f: F) -> ApiResult<T>
where
    T: Send + 'static,
    F: FnOnce() -> ApiResult<T> + Send + 'static,
{
    tokio::task::spawn_blocking(f).await?
}

/// Card preview length of `latest_summary` on the board view.
pub const CARD_SUMMARY_PREVIEW_CHARS: usize = 200;

// ---- queries ------------------------------------------------------------

#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct BoardQuery {
    /// Board slug; omitted = the root's current board.
    pub board: Option<String>,
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct BoardViewQuery {
    pub board: Option<String>,
    /// Only tasks of this tenant.
    pub tenant: Option<String>,
    /// Add an `archived` column.
    #[serde(default)]
    pub include_archived: bool,
    pub workflow_template_id: Option<String>,
    pub current_step_key: Option<String>,
    /// Paged view: at most this many cards per column (0..=500), with each
    /// column's `total` and `next_cursor`. Without `limit`, `column` and
    /// `cursor`: the whole board.
    #[param(minimum = 0, maximum = 500)]
    pub limit: Option<usize>,
    /// Paged view of this one column only (with `cursor`: its next page).
    pub column: Option<String>,
    /// A column's `next_cursor` from an earlier paged answer (needs `column`).
    pub cursor: Option<String>,
    /// Paged view: only cards with every word (case-insensitive) in id,
    /// title, assignee, tenant or body.
    pub q: Option<String>,
    /// Paged view: only this assignee's cards (`(unassigned)`: none).
    pub assignee: Option<String>,
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct LogQuery {
    pub board: Option<String>,
    /// Last N bytes only (1..=2000000). Without `tail` and `offset`, the
    /// last 262144 bytes.
    #[param(minimum = 1, maximum = 2000000)]
    pub tail: Option<u64>,
    /// Page from this byte of the file instead of a tail.
    #[param(minimum = 0)]
    pub offset: Option<u64>,
    /// Most bytes of the page that starts at `offset` (1..=2000000,
    /// default 262144).
    #[param(minimum = 1, maximum = 2000000)]
    pub limit: Option<u64>,
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct UnlinkQuery {
    pub board: Option<String>,
    pub parent_id: String,
    pub child_id: String,
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DispatchQuery {
    pub board: Option<String>,
    #[serde(default)]
    pub dry_run: bool,
    /// Live concurrency cap for this pass (default 8, as the reference).
    pub max: Option<u32>,
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct BoardsListQuery {
    #[serde(default)]
    pub include_archived: bool,
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct BoardDeleteQuery {
    /// Hard-delete instead of archiving.
    #[serde(default)]
    pub delete: bool,
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EventsQuery {
    /// Send every event after this id first (default 0: the whole history).
    pub since: Option<i64>,
    pub board: Option<String>,
    /// Bearer token, for browsers that cannot set headers on upgrades.
    pub token: Option<String>,
}

// ---- bodies ---------------------------------------------------------------

#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct CreateTaskBody {
    /// Required, not blank.
    #[schema(min_length = 1, pattern = r"\S")]
    pub title: String,
    pub body: Option<String>,
    pub assignee: Option<String>,
    pub tenant: Option<String>,
    #[serde(default)]
    pub priority: i64,
    /// `scratch` (default), `dir` or `worktree`.
    pub workspace_kind: Option<String>,
    pub workspace_path: Option<String>,
    #[serde(default)]
    pub parents: Vec<String>,
    #[serde(default)]
    pub triage: bool,
    pub idempotency_key: Option<String>,
    pub max_runtime_seconds: Option<i64>,
    pub skills: Option<Vec<String>>,
    #[serde(default)]
    pub goal_mode: bool,
    pub goal_max_turns: Option<i64>,
    pub max_retries: Option<i64>,
}

#[derive(Debug, Default, Clone, Deserialize, ToSchema)]
pub struct UpdateTaskBody {
    /// done → complete, blocked → block, scheduled → schedule, ready →
    /// unblock/promote/reclaim, archived → archive; running is refused (400).
    pub status: Option<String>,
    /// `""` unassigns.
    pub assignee: Option<String>,
    pub priority: Option<i64>,
    /// Not blank when given.
    #[schema(min_length = 1, pattern = r"\S")]
    pub title: Option<String>,
    pub body: Option<String>,
    pub result: Option<String>,
    pub block_reason: Option<String>,
    pub summary: Option<String>,
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<Value>,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct BulkTaskBody {
    /// At least one task id.
    #[schema(min_items = 1)]
    pub ids: Vec<String>,
    pub status: Option<String>,
    pub assignee: Option<String>,
    pub priority: Option<i64>,
    #[serde(default)]
    pub archive: bool,
    pub result: Option<String>,
    pub summary: Option<String>,
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<Value>,
    #[serde(default)]
    pub reclaim_first: bool,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct CommentBody {
    /// Required, not blank.
    #[schema(min_length = 1, pattern = r"\S")]
    pub body: String,
    pub author: Option<String>,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct LinkBody {
    #[schema(min_length = 1, pattern = r"\S")]
    pub parent_id: String,
    #[schema(min_length = 1, pattern = r"\S")]
    pub child_id: String,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct ReasonBody {
    pub reason: Option<String>,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct ReassignBody {
    /// `""` or absent unassigns.
    pub profile: Option<String>,
    #[serde(default)]
    pub reclaim_first: bool,
    pub reason: Option<String>,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct CreateBoardBody {
    /// 1-64 lowercase letters, digits, `-` or `_`, not starting with `-`/`_`.
    #[schema(pattern = "^[a-z0-9][a-z0-9_-]{0,63}$")]
    pub slug: String,
    pub name: Option<String>,
    pub description: Option<String>,
    pub icon: Option<String>,
    pub color: Option<String>,
    pub default_workdir: Option<String>,
    #[serde(default)]
    pub switch: bool,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct UpdateBoardBody {
    pub name: Option<String>,
    pub description: Option<String>,
    pub icon: Option<String>,
    pub color: Option<String>,
    /// `""` clears; a path must be absolute and an existing directory.
    pub default_workdir: Option<String>,
}

// ---- responses -------------------------------------------------------------

/// `{task, warning?}` of `POST /tasks`.
#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedTask {
    #[schema(value_type = Object)]
    pub task: Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub warning: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TaskEnvelope {
    #[schema(value_type = Object)]
    pub task: Value,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct BoardColumn {
    pub name: String,
    #[schema(value_type = Vec<Object>)]
    pub tasks: Vec<BoardCard>,
}

/// `{created_age_seconds, started_age_seconds, time_to_complete_seconds}`.
#[derive(Debug, Clone, Serialize)]
pub struct TaskAge {
    pub created_age_seconds: i64,
    pub started_age_seconds: Option<i64>,
    pub time_to_complete_seconds: Option<i64>,
}

impl TaskAge {
    pub fn of(task: &Task, now: i64) -> TaskAge {
        TaskAge {
            created_age_seconds: now - task.created_at,
            started_age_seconds: task.started_at.map(|s| now - s),
            time_to_complete_seconds: task
                .completed_at
                .map(|c| c - task.started_at.unwrap_or(task.created_at)),
        }
    }
}

#[derive(Debug, Clone, Copy, Serialize)]
pub struct LinkCounts {
    pub parents: i64,
    pub children: i64,
}

#[derive(Debug, Clone, Copy, Serialize)]
pub struct Progress {
    pub done: i64,
    pub total: i64,
}

/// One card of the board view: the task dict of [`task_json`] plus the
/// card aggregates, serialized straight from typed data (a 5,000-card
/// board is megabytes of JSON; no intermediate `Value` tree).
#[derive(Debug, Serialize)]
pub struct BoardCard {
    #[serde(flatten)]
    pub task: Task,
    pub age: TaskAge,
    pub latest_summary: Option<String>,
    pub link_counts: LinkCounts,
    pub comment_count: i64,
    pub progress: Option<Progress>,
    /// Active diagnostics, most severe first (absent when none).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub diagnostics: Option<Vec<kanban_core::diagnostics::Diagnostic>>,
    /// The badge summary of `diagnostics` (absent when none).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub warnings: Option<kanban_core::diagnostics::WarningsSummary>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct BoardView {
    pub columns: Vec<BoardColumn>,
    pub tenants: Vec<String>,
    pub assignees: Vec<String>,
    pub latest_event_id: i64,
    pub now: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct BulkItem {
    pub id: String,
    pub ok: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct BulkResult {
    pub results: Vec<BulkItem>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct LogView {
    pub task_id: String,
    pub path: String,
    pub exists: bool,
    pub size_bytes: u64,
    pub content: String,
    /// `content` is not the whole file.
    pub truncated: bool,
    /// Byte of the file `content` starts at.
    pub offset: u64,
    /// Byte after the returned range: the `offset` of the next page.
    pub next_offset: u64,
}

/// Generic `{ok: true, ...}` acknowledgement.
#[derive(Debug, Serialize, ToSchema)]
pub struct Ack {
    pub ok: bool,
    #[serde(flatten)]
    #[schema(value_type = Object)]
    pub extra: serde_json::Map<String, Value>,
}

impl Ack {
    pub fn ok() -> Ack {
        Ack {
            ok: true,
            extra: Default::default(),
        }
    }
    pub fn with(mut self, key: &str, value: impl Serialize) -> Ack {
        self.extra.insert(
            key.into(),
            serde_json::to_value(value).unwrap_or(Value::Null),
        );
        self
    }
}

// ---- task serialisation ----------------------------------------------------

/// `{created_age_seconds, started_age_seconds, time_to_complete_seconds}`.
pub fn task_age(task: &Task, now: i64) -> Value {
    serde_json::to_value(TaskAge::of(task, now)).unwrap_or(Value::Null)
}

/// The reference's task dict: every column, plus `age` and `latest_summary`.
pub fn task_json(task: &Task, now: i64, latest_summary: Option<String>) -> Value {
    let mut v = serde_json::to_value(task).unwrap_or(Value::Null);
    if let Value::Object(map) = &mut v {
        map.insert("age".into(), task_age(task, now));
        map.insert(
            "latest_summary".into(),
            latest_summary.map(Value::String).unwrap_or(Value::Null),
        );
    }
    v
}

/// Newest non-empty run summary.
pub fn latest_summary(runs: &[Run]) -> Option<String> {
    runs.iter()
        .rev()
        .find_map(|r| r.summary.clone().filter(|s| !s.is_empty()))
}

/// Latest summary of a task, reading its runs only when it ever ran.
pub fn task_latest_summary(store: &dyn Store, task: &Task) -> ApiResult<Option<String>> {
    if task.started_at.is_none()
        && task.current_run_id.is_none()
        && task.status != kanban_core::Status::Done
    {
        return Ok(None);
    }
    Ok(latest_summary(&store.runs(&task.id)?))
}

/// A task that must exist (404 otherwise).
pub fn require_task(store: &dyn Store, id: &str) -> ApiResult<Task> {
    store
        .get_task(id)?
        .ok_or_else(|| ApiError::not_found(format!("task {id} not found")))
}

/// Run row as the reference serialises it.
pub fn run_json(run: &Run) -> Value {
    serde_json::to_value(run).unwrap_or(Value::Null)
}
