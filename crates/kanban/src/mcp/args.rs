//! Arguments of the MCP tools, one struct per tool, with the JSON Schemas
//! clients see in `tools/list`.
//!
//! Required arguments are `Option` in Rust but marked required in the
//! schema: a client that leaves one out gets the reference's plain-language
//! tool error ("title is required") instead of a deserializer message.
//! Fields the reference accepts in two shapes (a list or a single string,
//! a boolean or "true"/"false", a number or its text) are kept as raw JSON
//! and checked by the handler, with the schema naming the preferred shape.

use rmcp::schemars::{self, JsonSchema};
use serde::Deserialize;
use serde_json::{Map, Value};

/// `board` on every tool: explicit slug, else the environment's board.
pub(super) fn board_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "type": "string",
        "description": "Board slug. Leave it out to use the board this server was started \
                        on (HERMES_KANBAN_BOARD / HERMES_KANBAN_DB, else the current board)."
    })
}

fn status_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    let names: Vec<&str> = kanban_core::Status::ALL
        .iter()
        .map(|s| s.as_str())
        .collect();
    schemars::json_schema!({
        "type": "string",
        "enum": names,
        "description": "Only tasks in this status."
    })
}

fn block_kind_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    let names: Vec<&str> = kanban_core::BlockKind::ALL
        .iter()
        .map(|s| s.as_str())
        .collect();
    schemars::json_schema!({
        "type": "string",
        "enum": names,
        "description": "Why you are blocked: dependency (waiting on other tasks), \
                        needs_input (a human must answer or decide), capability (you lack \
                        a tool, access or skill), transient (retry later)."
    })
}

fn string_list_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "anyOf": [
            {"type": "array", "items": {"type": "string"}},
            {"type": "string"}
        ]
    })
}

fn bool_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "anyOf": [
            {"type": "boolean"},
            {"type": "string", "enum": ["true", "false", "1", "0", "yes", "no"]}
        ]
    })
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
pub struct ShowArgs {
    /// Task id. Defaults to your own task (HERMES_KANBAN_TASK).
    pub task_id: Option<String>,
    #[serde(default)]
    #[schemars(schema_with = "board_schema")]
    pub board: Option<String>,
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
pub struct ListArgs {
    /// Only tasks assigned to this profile.
    pub assignee: Option<String>,
    #[serde(default)]
    #[schemars(schema_with = "status_schema")]
    pub status: Option<String>,
    /// Only tasks of this tenant.
    pub tenant: Option<String>,
    /// Include archived tasks (default false).
    #[serde(default)]
    #[schemars(schema_with = "bool_schema")]
    pub include_archived: Option<Value>,
    /// Most tasks returned, 1 to 200 (default 50).
    #[schemars(with = "Option<i64>")]
    pub limit: Option<Value>,
    #[serde(default)]
    #[schemars(schema_with = "board_schema")]
    pub board: Option<String>,
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
pub struct CompleteArgs {
    /// Task id. Defaults to your own task; a worker may complete only its own.
    pub task_id: Option<String>,
    /// Handoff for humans and downstream tasks: what you did, where the results
    /// are, anything the next worker must know. One of summary/result is required.
    pub summary: Option<String>,
    /// Short result text stored on the task (used when no summary is given).
    pub result: Option<String>,
    /// Structured facts about the outcome (changed files, test counts, links).
    #[schemars(with = "Option<Map<String, Value>>")]
    pub metadata: Option<Value>,
    /// Ids of tasks you created during this run. Each is checked; an id that
    /// does not exist (or that you did not create) rejects the completion
    /// and leaves the task unchanged.
    #[serde(default)]
    #[schemars(schema_with = "string_list_schema")]
    pub created_cards: Option<Value>,
    /// Absolute paths of the deliverable files you produced; recorded in
    /// metadata.artifacts. Files inside your scratch workspace are copied to
    /// the task's attachments before the workspace is deleted; a declared
    /// scratch file that does not exist keeps the task in flight so you can
    /// fix the path and call kanban_complete again.
    #[serde(default)]
    #[schemars(schema_with = "string_list_schema")]
    pub artifacts: Option<Value>,
    #[serde(default)]
    #[schemars(schema_with = "board_schema")]
    pub board: Option<String>,
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
pub struct BlockArgs {
    /// What you need and from whom; a human reads this to unblock you.
    #[schemars(required)]
    pub reason: Option<String>,
    #[serde(default)]
    #[schemars(schema_with = "block_kind_schema")]
    pub kind: Option<String>,
    /// Task id. Defaults to your own task; a worker may block only its own.
    pub task_id: Option<String>,
    #[serde(default)]
    #[schemars(schema_with = "board_schema")]
    pub board: Option<String>,
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
pub struct RequestReviewArgs {
    /// What you did and what the reviewer should look at (kept on your run).
    #[schemars(required)]
    pub summary: Option<String>,
    /// Structured handoff (a JSON object), kept on your run.
    pub metadata: Option<Value>,
    /// Profile that reviews; the card is reassigned to it. Omit to keep the
    /// current assignee.
    pub reviewer: Option<String>,
    /// Task id. Defaults to your own task.
    pub task_id: Option<String>,
    #[serde(default)]
    #[schemars(schema_with = "board_schema")]
    pub board: Option<String>,
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
pub struct RequestChangesArgs {
    /// The changes the implementer must make (the reviewer's verdict).
    #[schemars(required)]
    pub reason: Option<String>,
    /// Task id. Defaults to your own task (the one you are reviewing).
    pub task_id: Option<String>,
    #[serde(default)]
    #[schemars(schema_with = "board_schema")]
    pub board: Option<String>,
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
pub struct HeartbeatArgs {
    /// What you are doing right now (shown in the task's event log).
    pub note: Option<String>,
    /// Task id. Defaults to your own task.
    pub task_id: Option<String>,
    #[serde(default)]
    #[schemars(schema_with = "board_schema")]
    pub board: Option<String>,
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
pub struct CommentArgs {
    /// Task to comment on: your own or any other (comments are the hand-off
    /// channel between tasks).
    #[schemars(required)]
    pub task_id: Option<String>,
    /// Comment text (markdown).
    #[schemars(required)]
    pub body: Option<String>,
    #[serde(default)]
    #[schemars(schema_with = "board_schema")]
    pub board: Option<String>,
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
pub struct CreateArgs {
    /// Short title of the new task.
    #[schemars(required)]
    pub title: Option<String>,
    /// Profile that will execute it (tasks without one are never dispatched).
    #[schemars(required)]
    pub assignee: Option<String>,
    /// Full specification and acceptance criteria.
    pub body: Option<String>,
    /// Tasks that must be done first; pass your own task id to make a child.
    #[serde(default)]
    #[schemars(schema_with = "string_list_schema")]
    pub parents: Option<Value>,
    /// Tenant namespace (default: HERMES_TENANT).
    pub tenant: Option<String>,
    /// Higher runs sooner.
    #[schemars(with = "Option<i64>")]
    pub priority: Option<Value>,
    /// scratch (fresh directory), dir (an absolute shared path) or worktree
    /// (git worktree). Default: your own task's workspace, else scratch.
    #[schemars(with = "Option<WorkspaceKindName>")]
    pub workspace_kind: Option<String>,
    /// Absolute path for dir / worktree workspaces.
    pub workspace_path: Option<String>,
    /// Project id to attach the task to.
    pub project: Option<String>,
    /// Park the task in triage for a specifier to flesh out.
    #[serde(default)]
    #[schemars(schema_with = "bool_schema")]
    pub triage: Option<Value>,
    /// Retry-safe creation: an existing live task with this key is returned instead.
    pub idempotency_key: Option<String>,
    /// Kill and retry the worker after this many seconds.
    #[schemars(with = "Option<i64>")]
    pub max_runtime_seconds: Option<Value>,
    /// `blocked` parks the task until a human unblocks it; default `running`
    /// keeps the normal path (ready when parents are done).
    #[schemars(with = "Option<InitialStatusName>")]
    pub initial_status: Option<String>,
    /// Skills the worker must load.
    #[serde(default)]
    #[schemars(schema_with = "string_list_schema")]
    pub skills: Option<Value>,
    /// Run the worker in a goal loop until a judge accepts the result.
    #[serde(default)]
    #[schemars(schema_with = "bool_schema")]
    pub goal_mode: Option<Value>,
    /// Turn budget of goal_mode.
    #[schemars(with = "Option<i64>")]
    pub goal_max_turns: Option<Value>,
    #[serde(default)]
    #[schemars(schema_with = "board_schema")]
    pub board: Option<String>,
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
pub struct UnblockArgs {
    /// The blocked (or scheduled) task to release.
    #[schemars(required)]
    pub task_id: Option<String>,
    #[serde(default)]
    #[schemars(schema_with = "board_schema")]
    pub board: Option<String>,
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
pub struct LinkArgs {
    /// The task that must finish first.
    #[schemars(required)]
    pub parent_id: Option<String>,
    /// The task that waits for it.
    #[schemars(required)]
    pub child_id: Option<String>,
    #[serde(default)]
    #[schemars(schema_with = "board_schema")]
    pub board: Option<String>,
}

/// Schema-only enums (the handlers parse the strings themselves).
#[derive(JsonSchema)]
#[serde(rename_all = "lowercase")]
#[allow(dead_code)]
pub enum WorkspaceKindName {
    Scratch,
    Dir,
    Worktree,
}

#[derive(JsonSchema)]
#[serde(rename_all = "lowercase")]
#[allow(dead_code)]
pub enum InitialStatusName {
    Running,
    Blocked,
}
