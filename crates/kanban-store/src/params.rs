//! One parameter struct per storage operation, and the outcomes they return.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::path::PathBuf;

use kanban_core::{BlockKind, Status, Task};
use serde::Serialize;
use serde_json::Value;

/// Input of [`crate::Store::create_task`]. Strings are taken as given by
/// the adapter; the store validates and normalises them (title trimmed,
/// assignee lower-cased, skills cleaned, workspace checked).
#[derive(Debug, Clone, Default)]
pub struct NewTask {
    pub title: String,
    pub body: Option<String>,
    pub assignee: Option<String>,
    pub created_by: Option<String>,
    /// `scratch` (default when `None`), `worktree` or `dir`.
    pub workspace_kind: Option<String>,
    pub workspace_path: Option<String>,
    pub branch_name: Option<String>,
    pub project_id: Option<String>,
    pub tenant: Option<String>,
    pub priority: i64,
    pub parents: Vec<String>,
    pub triage: bool,
    /// Park the task in `blocked` (sticky until unblocked).
    pub initial_blocked: bool,
    pub idempotency_key: Option<String>,
    pub max_runtime_seconds: Option<i64>,
    pub skills: Option<Vec<String>>,
    pub max_retries: Option<i64>,
    pub goal_mode: bool,
    pub goal_max_turns: Option<i64>,
    pub session_id: Option<String>,
    pub model_override: Option<String>,
    /// Board default workdir inherited by `dir`/`worktree` tasks without a path.
    pub default_workdir: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Created {
    pub task: Task,
    /// True when an idempotency key matched an existing task (nothing written).
    pub existing: bool,
}

/// Sort orders of `kanban list --sort`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TaskOrder {
    /// priority DESC, created ASC (the reference default).
    #[default]
    Priority,
    PriorityAsc,
    Created,
    CreatedDesc,
    Status,
    Assignee,
    Title,
    Updated,
}

/// Filters of `kanban list` and the API board view.
#[derive(Debug, Clone, Default)]
pub struct TaskQuery {
    pub assignee: Option<String>,
    pub status: Option<Status>,
    pub tenant: Option<String>,
    pub session_id: Option<String>,
    pub include_archived: bool,
    pub workflow_template_id: Option<String>,
    pub current_step_key: Option<String>,
    pub order: TaskOrder,
    pub limit: Option<usize>,
}

/// One `kanban list` line (reference `_fmt_task_line`) plus the sort keys.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TaskLine {
    pub id: String,
    pub title: String,
    pub assignee: Option<String>,
    pub status: Status,
    pub tenant: Option<String>,
    pub priority: i64,
    pub created_at: i64,
}

/// A `kanban list` line borrowed from the backend's row buffer: listing a
/// 100k-task board allocates nothing per row.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskLineRef<'a> {
    pub id: std::borrow::Cow<'a, str>,
    pub title: std::borrow::Cow<'a, str>,
    pub assignee: Option<std::borrow::Cow<'a, str>>,
    pub status: Status,
    pub tenant: Option<std::borrow::Cow<'a, str>>,
    pub priority: i64,
    pub created_at: i64,
}

impl TaskLine {
    pub fn as_ref_line(&self) -> TaskLineRef<'_> {
        TaskLineRef {
            id: self.id.as_str().into(),
            title: self.title.as_str().into(),
            assignee: self.assignee.as_deref().map(Into::into),
            status: self.status,
            tenant: self.tenant.as_deref().map(Into::into),
            priority: self.priority,
            created_at: self.created_at,
        }
    }
}

impl From<&Task> for TaskLine {
    fn from(t: &Task) -> Self {
        TaskLine {
            id: t.id.clone(),
            title: t.title.clone(),
            assignee: t.assignee.clone(),
            status: t.status,
            tenant: t.tenant.clone(),
            priority: t.priority,
            created_at: t.created_at,
        }
    }
}

/// One task with the columns of the reference's task dict
/// (`_task_to_dict`, what `kanban list --json` prints), borrowed from the
/// backend's row buffer while [`crate::Store::for_each_task`] visits it:
/// streaming a 100k-task board reads no other column and allocates
/// nothing per row (only `skills`, when set, is decoded).
#[derive(Debug, Clone, PartialEq)]
pub struct TaskRow<'a> {
    pub id: Cow<'a, str>,
    pub title: Cow<'a, str>,
    pub body: Option<Cow<'a, str>>,
    pub assignee: Option<Cow<'a, str>>,
    pub status: Status,
    pub priority: i64,
    pub tenant: Option<Cow<'a, str>>,
    pub workspace_kind: Cow<'a, str>,
    pub workspace_path: Option<Cow<'a, str>>,
    pub branch_name: Option<Cow<'a, str>>,
    pub project_id: Option<Cow<'a, str>>,
    pub created_by: Option<Cow<'a, str>>,
    pub created_at: i64,
    pub started_at: Option<i64>,
    pub completed_at: Option<i64>,
    pub result: Option<Cow<'a, str>>,
    pub skills: Option<Vec<String>>,
    pub max_retries: Option<i64>,
    pub session_id: Option<Cow<'a, str>>,
    pub workflow_template_id: Option<Cow<'a, str>>,
    pub current_step_key: Option<Cow<'a, str>>,
}

/// Writes one task of a listing as text, given its position in the
/// listing (0 for the first): [`crate::Store::render_tasks`]. `Sync`, as
/// a backend may call it from several threads at once.
pub type TaskRenderer<'a> = dyn Fn(usize, &TaskRow<'_>, &mut Vec<u8>) + Sync + 'a;

/// Rendered text handed on at once by [`crate::Store::render_tasks`]:
/// big enough that a write syscall per piece costs nothing, small enough
/// that pieces waiting in line keep memory flat.
pub const RENDER_PIECE_BYTES: usize = 64 * 1024;

impl<'a> From<&'a Task> for TaskRow<'a> {
    fn from(t: &'a Task) -> Self {
        let s = |v: &'a Option<String>| v.as_deref().map(Cow::Borrowed);
        TaskRow {
            id: Cow::Borrowed(&t.id),
            title: Cow::Borrowed(&t.title),
            body: s(&t.body),
            assignee: s(&t.assignee),
            status: t.status,
            priority: t.priority,
            tenant: s(&t.tenant),
            workspace_kind: Cow::Borrowed(&t.workspace_kind),
            workspace_path: s(&t.workspace_path),
            branch_name: s(&t.branch_name),
            project_id: s(&t.project_id),
            created_by: s(&t.created_by),
            created_at: t.created_at,
            started_at: t.started_at,
            completed_at: t.completed_at,
            result: s(&t.result),
            skills: t.skills.clone(),
            max_retries: t.max_retries,
            session_id: s(&t.session_id),
            workflow_template_id: s(&t.workflow_template_id),
            current_step_key: s(&t.current_step_key),
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct EditTask {
    pub task_id: String,
    pub title: Option<String>,
    pub body: Option<String>,
    pub priority: Option<i64>,
    pub result: Option<String>,
    /// Back-fill the latest completed run's summary / metadata.
    pub summary: Option<String>,
    pub metadata: Option<Value>,
}

#[derive(Debug, Clone, Default)]
pub struct AssignTask {
    pub task_id: String,
    /// `None` unassigns.
    pub assignee: Option<String>,
    /// Recorded as `source` in the `assigned` event (e.g. `kanban.default_assignee`).
    pub source: Option<String>,
    /// Reclaim a running task first (reassign `--reclaim`).
    pub reclaim_first: bool,
    pub reason: Option<String>,
}

#[derive(Debug, Clone, Default)]
pub struct EventQuery {
    pub task_id: Option<String>,
    /// Only events with `id > after_id`.
    pub after_id: Option<i64>,
    pub kinds: Option<Vec<String>>,
    /// Newest-first tail of this many events (returned oldest first).
    pub last: Option<usize>,
    /// Cap on rows returned after `after_id`, oldest first.
    pub limit: Option<usize>,
}

/// Concurrency ceilings checked inside the claim transaction (the rule
/// lives in `kanban_core::transitions::ceilings`).
pub use kanban_core::transitions::ceilings::Ceilings;

#[derive(Debug, Clone)]
pub struct ClaimRequest {
    pub task_id: String,
    /// `host:pid` of the claimer.
    pub claim_lock: String,
    pub ttl_seconds: i64,
    /// Claim from `review` instead of `ready`.
    pub review: bool,
    pub ceilings: Ceilings,
}

// A claim returns the task by value on the hot path; boxing it would cost
// an allocation per claim for no gain.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone)]
pub enum ClaimOutcome {
    Claimed {
        task: Task,
        run_id: i64,
    },
    /// Another claimer won, or the task is not claimable any more.
    Lost {
        status: Status,
        claim_lock: Option<String>,
    },
    /// Parents not done: demoted to todo with a `claim_rejected` event.
    ParentsPending,
    /// A ceiling is full; nothing written. The string names the ceiling.
    CeilingReached(String),
}

#[derive(Debug, Clone, Default)]
pub struct HeartbeatRequest {
    pub task_id: String,
    pub note: Option<String>,
    pub run_id: Option<i64>,
    pub claim_lock: Option<String>,
    pub ttl_seconds: Option<i64>,
}

#[derive(Debug, Clone, Default)]
pub struct CompleteRequest {
    pub task_id: String,
    pub result: Option<String>,
    pub summary: Option<String>,
    /// Must be a JSON object when given.
    pub metadata: Option<Value>,
    /// Ids the worker says it created; phantoms reject the completion.
    pub created_cards: Vec<String>,
    /// Compare-and-swap on `current_run_id` (worker's `HERMES_KANBAN_RUN_ID`).
    pub expected_run_id: Option<i64>,
    /// The board's scratch and attachment roots: declared artifacts in a
    /// managed scratch workspace are kept as attachments and the workspace
    /// is released (`crate::scratch`). `None`: artifacts are only recorded.
    pub files: Option<BoardFiles>,
}

/// A worker process a transition has just detached from its task; the
/// caller ends its process group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EndedWorker {
    pub pid: i64,
    pub claim_lock: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Completion {
    pub task: Task,
    pub run_id: Option<i64>,
    pub ended_worker: Option<EndedWorker>,
    /// Ids in the summary/result that do not exist (advisory event written).
    pub suspected_phantoms: Vec<String>,
    /// Scratch workspaces this completion released (its own, parents whose
    /// children are now all done): removed once the completion committed.
    pub release_scratch: Vec<std::path::PathBuf>,
}

#[derive(Debug, Clone, Default)]
pub struct BlockRequest {
    pub task_id: String,
    pub reason: Option<String>,
    pub kind: Option<BlockKind>,
    pub expected_run_id: Option<i64>,
}

#[derive(Debug, Clone, Default)]
pub struct PromoteRequest {
    pub task_id: String,
    pub force: bool,
    pub reason: Option<String>,
    pub actor: Option<String>,
    /// Decide without writing.
    pub dry_run: bool,
}

/// Result of a single-task transition.
#[derive(Debug, Clone)]
pub struct Transitioned {
    pub task: Task,
    pub from: Status,
    pub to: Status,
    pub run_id: Option<i64>,
    pub ended_worker: Option<EndedWorker>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct BoardStats {
    pub by_status: BTreeMap<String, i64>,
    pub by_assignee: BTreeMap<String, BTreeMap<String, i64>>,
    pub oldest_ready_age_seconds: Option<i64>,
    pub now: i64,
}

#[derive(Debug, Clone, Default)]
pub struct NewNotifySub {
    pub task_id: String,
    pub platform: String,
    pub chat_id: String,
    pub thread_id: Option<String>,
    pub user_id: Option<String>,
    pub notifier_profile: Option<String>,
}

#[derive(Debug, Clone, Default)]
pub struct NotifyKey {
    pub task_id: String,
    pub platform: String,
    pub chat_id: String,
    pub thread_id: Option<String>,
}

/// Result of [`crate::Store::reassign_task`]: the task after the change and,
/// when `reclaim_first` released a running attempt, the worker the caller
/// must end.
#[derive(Debug, Clone)]
pub struct Reassigned {
    pub task: Task,
    /// The run the reclaim closed, if one was open.
    pub reclaimed_run_id: Option<i64>,
    pub ended_worker: Option<EndedWorker>,
}

/// Input of [`crate::Store::add_attachment`]. The caller has already
/// written the blob at `stored_path` (see [`crate::attachments`]); a
/// board that keeps blobs itself copies that file into its transaction
/// (see [`crate::Store::attachment_blob`]).
#[derive(Debug, Clone, Default)]
pub struct NewAttachment {
    pub task_id: String,
    /// Display name; must pass [`crate::attachments::safe_attachment_name`].
    pub filename: String,
    /// Absolute path of the blob, under the board's attachments root.
    pub stored_path: String,
    pub content_type: Option<String>,
    pub size: i64,
    pub uploaded_by: Option<String>,
}

/// What a board card shows about a task besides its own row, read for
/// the whole board in a few set-based queries.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct CardFacts {
    /// Tasks this one depends on.
    pub parents: i64,
    /// Tasks depending on this one.
    pub children: i64,
    /// Children that are `done` (the card's N/M progress).
    pub children_done: i64,
    pub comments: i64,
    /// Newest non-empty run summary, cut to the requested length.
    pub latest_summary: Option<String>,
}

/// Where one board keeps scratch workspaces and attachments: plain paths,
/// filled in by whoever knows the board's directory layout
/// (`kanban_hermes::scratch::board_files` for a Hermes root).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BoardFiles {
    /// `<attachments_root>/<task_id>/` receives the kept artifacts.
    pub attachments_root: PathBuf,
    /// Managed workspaces roots: a scratch directory strictly below one of
    /// them may be deleted.
    pub scratch_roots: Vec<PathBuf>,
    /// What a leading `~` in a workspace or artifact path stands for.
    pub home: Option<PathBuf>,
}
