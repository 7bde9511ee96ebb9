//! One handler per tool: validate the arguments the way the reference does,
//! apply the worker gate, call the store, shape the result JSON of
//! reference §5. Plain synchronous functions over `&dyn Store`, so they are
//! tested without a transport.

use std::str::FromStr;

use kanban_core::defaults::{TOOL_LIST_DEFAULT_LIMIT, TOOL_LIST_MAX_LIMIT};
use kanban_core::{BlockKind, Status, Task};
use kanban_hermes::layout::{BoardPaths, ProcessEnv, Root};
use kanban_hermes::scratch::{ARTIFACT_REFUSAL, BoardFiles, complete_with_files};
use kanban_store::dispatch_ops::DispatchStore;
use kanban_store::{
    BlockRequest, CompleteRequest, EventQuery, HeartbeatRequest, NewTask, Store, StoreError,
    TaskQuery,
};
use serde_json::{Map, Value, json};

use super::args::*;
use crate::worker_env::{GateError, WorkerEnv};
use crate::worker_process::end_worker;

/// A tool-level failure: the message the model reads, as `{"error": ...}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToolError(pub String);

impl From<GateError> for ToolError {
    fn from(e: GateError) -> Self {
        ToolError(e.0)
    }
}

pub type ToolResult = Result<Value, ToolError>;

pub(super) fn err(msg: impl Into<String>) -> ToolError {
    ToolError(msg.into())
}

/// Store failures, prefixed with the tool name as the reference does.
pub(super) fn store_err(tool: &str) -> impl Fn(StoreError) -> ToolError + '_ {
    move |e| err(format!("{tool}: {e}"))
}

fn any_err(tool: &str) -> impl Fn(anyhow::Error) -> ToolError + '_ {
    move |e| err(format!("{tool}: {}", crate::error::message(&e)))
}

/// What every handler works with.
pub struct ToolCx<'a> {
    pub store: &'a dyn DispatchStore,
    pub env: &'a WorkerEnv,
    pub now: i64,
    /// The board's circuit-breaker limit, for the promotion `list` runs.
    pub failure_limit: Option<i64>,
    /// The board's `default_workdir`, inherited by dir/worktree creates.
    pub default_workdir: Option<String>,
    /// The board's scratch and attachment roots (`kanban_complete` keeps
    /// declared scratch artifacts, then releases the workspace).
    pub board_files: BoardFiles,
    /// The Hermes root (the goal judge's `auxiliary.goal_judge`).
    pub root: &'a Root,
}

/// The files of the board a call targets, resolved as the store is:
/// an explicit board keeps a worker's path pins, else the default board.
pub fn board_files(root: &Root, board: Option<&str>, default: &BoardPaths) -> BoardFiles {
    let paths = board
        .map(str::trim)
        .filter(|b| !b.is_empty())
        .and_then(|b| root.resolve_board(Some(b), &ProcessEnv).ok())
        .unwrap_or_else(|| default.clone());
    kanban_hermes::scratch::board_files(&paths, Some(root))
}

pub(super) fn ok(fields: Value) -> Value {
    let mut out = Map::new();
    out.insert("ok".into(), Value::Bool(true));
    if let Value::Object(m) = fields {
        out.extend(m);
    }
    Value::Object(out)
}

/// Trimmed, non-empty text.
pub(super) fn text(v: &Option<String>) -> Option<String> {
    v.as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

/// A list of strings given as a list or as one string; blanks dropped.
fn string_list(
    name: &str,
    v: &Option<Value>,
    what: &str,
) -> Result<Option<Vec<String>>, ToolError> {
    let items = match v {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(a)) => a
            .iter()
            .map(|x| match x {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            })
            .collect(),
        Some(other) => {
            return Err(err(format!(
                "{name} must be a list of {what}, got {}",
                json_type(other)
            )));
        }
    };
    Ok(Some(
        items
            .into_iter()
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .collect(),
    ))
}

pub(super) fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "str",
        Value::Array(_) => "list",
        Value::Object(_) => "dict",
    }
}

/// A boolean given as a boolean or as true/false/1/0/yes/no text.
fn flag(name: &str, v: &Option<Value>) -> Result<bool, ToolError> {
    let bad = || err(format!("{name} must be a boolean or 'true'/'false'"));
    match v {
        None | Some(Value::Null) => Ok(false),
        Some(Value::Bool(b)) => Ok(*b),
        Some(Value::Number(n)) if n.as_i64() == Some(1) => Ok(true),
        Some(Value::Number(n)) if n.as_i64() == Some(0) => Ok(false),
        Some(Value::String(s)) => match s.trim().to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" => Ok(true),
            "false" | "0" | "no" => Ok(false),
            _ => Err(bad()),
        },
        Some(_) => Err(bad()),
    }
}

/// An integer given as a number or as its text.
fn integer(name: &str, v: &Option<Value>) -> Result<Option<i64>, ToolError> {
    let bad = || err(format!("{name} must be an integer"));
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => n
            .as_i64()
            .or_else(|| n.as_f64().filter(|f| f.fract() == 0.0).map(|f| f as i64))
            .map(Some)
            .ok_or_else(bad),
        Some(Value::String(s)) => s.trim().parse().map(Some).map_err(|_| bad()),
        Some(_) => Err(bad()),
    }
}

fn require_task(store: &dyn Store, tool: &str, id: &str) -> Result<Task, ToolError> {
    store
        .get_task(id)
        .map_err(store_err(tool))?
        .ok_or_else(|| err(format!("task {id} not found")))
}

// ---- kanban_show -------------------------------------------------------------

pub fn show(cx: &ToolCx<'_>, a: ShowArgs) -> ToolResult {
    const TOOL: &str = "kanban_show";
    /// Events returned; the full log is on the CLI.
    const SHOW_EVENTS: usize = 50;
    let tid = cx.env.task_or_own(a.task_id.as_deref())?;
    let s = cx.store;
    let task = require_task(s, TOOL, &tid)?;
    let e = store_err(TOOL);
    let comments = s.comments(&tid).map_err(&e)?;
    let events = s
        .events(&EventQuery {
            task_id: Some(tid.clone()),
            last: Some(SHOW_EVENTS),
            ..Default::default()
        })
        .map_err(&e)?;
    let runs = s.runs(&tid).map_err(&e)?;
    let parents = s.parents_of(&tid).map_err(&e)?;
    let children = s.children_of(&tid).map_err(&e)?;
    let context = crate::command::context::render_with(s, cx.now, &tid).map_err(any_err(TOOL))?;
    Ok(json!({
        "task": {
            "id": task.id, "title": task.title, "body": task.body,
            "assignee": task.assignee, "status": task.status.as_str(),
            "tenant": task.tenant, "priority": task.priority,
            "workspace_kind": task.workspace_kind, "workspace_path": task.workspace_path,
            "created_by": task.created_by, "created_at": task.created_at,
            "started_at": task.started_at, "completed_at": task.completed_at,
            "result": task.result, "current_run_id": task.current_run_id,
            "model_override": task.model_override,
        },
        "parents": parents,
        "children": children,
        "comments": comments.iter().map(|c| json!({
            "author": c.author, "body": c.body, "created_at": c.created_at,
        })).collect::<Vec<_>>(),
        "events": events.iter().map(|ev| json!({
            "kind": ev.kind, "payload": ev.payload,
            "created_at": ev.created_at, "run_id": ev.run_id,
        })).collect::<Vec<_>>(),
        "runs": runs.iter().map(|r| json!({
            "id": r.id, "profile": r.profile, "status": r.status, "outcome": r.outcome,
            "summary": r.summary, "error": r.error, "metadata": r.metadata,
            "started_at": r.started_at, "ended_at": r.ended_at,
        })).collect::<Vec<_>>(),
        "worker_context": context,
    }))
}

// ---- kanban_list -------------------------------------------------------------

pub fn list(cx: &ToolCx<'_>, a: ListArgs) -> ToolResult {
    const TOOL: &str = "kanban_list";
    cx.env.require_orchestrator(TOOL)?;
    let include_archived = flag("include_archived", &a.include_archived)?;
    let limit = integer("limit", &a.limit)?.unwrap_or(TOOL_LIST_DEFAULT_LIMIT as i64);
    if limit < 1 {
        return Err(err("limit must be >= 1"));
    }
    if limit > TOOL_LIST_MAX_LIMIT as i64 {
        return Err(err(format!("limit must be <= {TOOL_LIST_MAX_LIMIT}")));
    }
    let limit = limit as usize;
    let status = match text(&a.status) {
        Some(s) => Some(Status::from_str(&s).map_err(|e| err(format!("{TOOL}: {e}")))?),
        None => None,
    };
    let s = cx.store;
    let e = store_err(TOOL);
    // Like the CLI: tasks whose parents just finished show up as ready.
    let promoted = s.recompute_ready(cx.failure_limit).map_err(&e)?;
    // One extra row tells whether the listing was cut.
    let rows = s
        .list_tasks(&TaskQuery {
            assignee: text(&a.assignee),
            status,
            tenant: text(&a.tenant),
            include_archived,
            limit: Some(limit + 1),
            ..Default::default()
        })
        .map_err(&e)?;
    let truncated = rows.len() > limit;
    let mut tasks = Vec::new();
    for t in rows.iter().take(limit) {
        let parents = s.parents_of(&t.id).map_err(&e)?;
        let children = s.children_of(&t.id).map_err(&e)?;
        tasks.push(json!({
            "id": t.id, "title": t.title, "assignee": t.assignee,
            "status": t.status.as_str(), "priority": t.priority, "tenant": t.tenant,
            "workspace_kind": t.workspace_kind, "workspace_path": t.workspace_path,
            "project_id": t.project_id, "created_by": t.created_by,
            "created_at": t.created_at, "started_at": t.started_at,
            "completed_at": t.completed_at, "current_run_id": t.current_run_id,
            "model_override": t.model_override,
            "parent_count": parents.len(), "child_count": children.len(),
            "parents": parents, "children": children,
        }));
    }
    let next_limit =
        (truncated && limit < TOOL_LIST_MAX_LIMIT).then(|| (limit * 2).min(TOOL_LIST_MAX_LIMIT));
    Ok(json!({
        "tasks": tasks,
        "count": tasks.len(),
        "limit": limit,
        "truncated": truncated,
        "next_limit": next_limit,
        "promoted": promoted,
    }))
}

// ---- kanban_complete ---------------------------------------------------------

/// Merge artifact paths into `metadata.artifacts`, keeping any the worker
/// already listed there, without duplicates.
fn merge_artifacts(metadata: &mut Map<String, Value>, artifacts: Vec<String>) {
    let mut merged: Vec<String> = match metadata.get("artifacts") {
        Some(Value::Array(items)) => items
            .iter()
            .map(|i| match i {
                Value::String(s) => s.trim().to_string(),
                other => other.to_string(),
            })
            .filter(|s| !s.is_empty())
            .collect(),
        _ => Vec::new(),
    };
    for a in artifacts {
        if !merged.contains(&a) {
            merged.push(a);
        }
    }
    merged.dedup();
    metadata.insert("artifacts".into(), json!(merged));
}

pub fn complete(cx: &ToolCx<'_>, a: CompleteArgs) -> ToolResult {
    const TOOL: &str = "kanban_complete";
    let tid = cx.env.task_or_own(a.task_id.as_deref())?;
    cx.env.check_lifecycle(&tid)?;
    let summary = text(&a.summary);
    let result = text(&a.result);
    let mut metadata = match a.metadata {
        None | Some(Value::Null) => None,
        Some(Value::Object(m)) => Some(m),
        Some(other) => {
            return Err(err(format!(
                "metadata must be an object/dict, got {}",
                json_type(&other)
            )));
        }
    };
    let created_cards = string_list("created_cards", &a.created_cards, "task ids")?;
    if let Some(artifacts) = string_list("artifacts", &a.artifacts, "file paths")?
        && !artifacts.is_empty()
    {
        merge_artifacts(metadata.get_or_insert_with(Map::new), artifacts);
    }
    if summary.is_none() && result.is_none() {
        return Err(err("provide at least one of: summary (preferred), result"));
    }
    // The session id is trusted only from our own environment, for our own task.
    if let (true, Some(session)) = (cx.env.is_own_task(&tid), &cx.env.session_id) {
        metadata
            .get_or_insert_with(Map::new)
            .insert("worker_session_id".into(), json!(session));
    }
    let evidence = summary.as_deref().or(result.as_deref()).unwrap_or("");
    if let Err(reason) = crate::goal_gate::check(cx.root, cx.store, &tid, evidence) {
        return Err(err(format!(
            "the goal judge refused this completion: {reason}. Your task is unchanged. Either \
             call {TOOL} again with a summary that shows each acceptance criterion met, or \
             create follow-up tasks with parents=[{tid}] and keep working."
        )));
    }
    let req = CompleteRequest {
        task_id: tid.clone(),
        result,
        summary,
        metadata: metadata.map(Value::Object),
        created_cards: created_cards.unwrap_or_default(),
        expected_run_id: cx.env.run_id_for(&tid),
        files: None,
    };
    match complete_with_files(cx.store, &req, &cx.board_files) {
        Ok(done) => {
            if let Some(w) = &done.ended_worker {
                end_worker(cx.store, done.run_id, w, cx.env.is_own_task(&tid));
            }
            Ok(ok(json!({"task_id": tid, "run_id": done.run_id})))
        }
        Err(StoreError::TaskNotFound(_)) => Err(err(format!(
            "could not complete {tid} (unknown id or already terminal)"
        ))),
        Err(StoreError::Refused { reason, .. }) if reason.starts_with(ARTIFACT_REFUSAL) => {
            let detail = reason
                .trim_start_matches(ARTIFACT_REFUSAL)
                .trim_start_matches(": ");
            let detail = detail.split(". The task is still").next().unwrap_or(detail);
            Err(err(format!(
                "{TOOL} could not preserve the declared artifacts: {detail}. Your task is still \
                 in-flight and its scratch workspace was kept. Fix the artifact path or storage \
                 error, then retry {TOOL} with the same handoff."
            )))
        }
        Err(StoreError::Refused { reason, .. }) if reason.contains("created_cards") => {
            Err(err(format!(
                "{TOOL} blocked: {reason}. Your task is still in flight (no state change): call \
                 {TOOL} again with the same summary and either drop those ids from \
                 created_cards or pass created_cards=[]."
            )))
        }
        Err(StoreError::Refused { reason, .. } | StoreError::Stale { reason, .. }) => {
            Err(err(format!("could not complete {tid} ({reason})")))
        }
        Err(e) => Err(store_err(TOOL)(e)),
    }
}

// ---- kanban_block ------------------------------------------------------------

pub fn block(cx: &ToolCx<'_>, a: BlockArgs) -> ToolResult {
    const TOOL: &str = "kanban_block";
    /// Goal-mode tasks may only leave the goal loop for genuine outside blockers.
    const GOAL_MODE_KINDS: [BlockKind; 2] = [BlockKind::Dependency, BlockKind::NeedsInput];
    let tid = cx.env.task_or_own(a.task_id.as_deref())?;
    cx.env.check_lifecycle(&tid)?;
    let Some(reason) = text(&a.reason) else {
        return Err(err("reason is required — explain what input you need"));
    };
    let kind = match text(&a.kind) {
        Some(k) => Some(BlockKind::from_str(&k).map_err(|_| {
            let names: Vec<&str> = BlockKind::ALL.iter().map(|k| k.as_str()).collect();
            err(format!("kind must be one of {names:?} (or omit it)"))
        })?),
        None => None,
    };
    let task = require_task(cx.store, TOOL, &tid)?;
    if task.goal_mode && !kind.is_some_and(|k| GOAL_MODE_KINDS.contains(&k)) {
        return Err(err(format!(
            "goal_mode tasks can only block with kind dependency or needs_input (got {}). \
             If the work is finished or cannot go on for another reason, call kanban_complete.",
            kind.map_or("none", |k| k.as_str())
        )));
    }
    let req = BlockRequest {
        task_id: tid.clone(),
        reason: Some(reason),
        kind,
        expected_run_id: cx.env.run_id_for(&tid),
    };
    match cx.store.block_task(&req) {
        Ok(done) => {
            if let Some(w) = &done.ended_worker {
                end_worker(cx.store, done.run_id, w, cx.env.is_own_task(&tid));
            }
            Ok(ok(json!({
                "task_id": tid,
                "run_id": done.run_id,
                "status": done.to.as_str(),
                "block_kind": kind.map(|k| k.as_str()),
            })))
        }
        Err(StoreError::Refused { reason, .. } | StoreError::Stale { reason, .. }) => {
            Err(err(format!("could not block {tid} ({reason})")))
        }
        Err(e) => Err(store_err(TOOL)(e)),
    }
}

// ---- kanban_heartbeat --------------------------------------------------------

pub fn heartbeat(cx: &ToolCx<'_>, a: HeartbeatArgs) -> ToolResult {
    const TOOL: &str = "kanban_heartbeat";
    let tid = cx.env.task_or_own(a.task_id.as_deref())?;
    cx.env.check_lifecycle(&tid)?;
    let req = HeartbeatRequest {
        task_id: tid.clone(),
        note: text(&a.note),
        run_id: cx.env.run_id_for(&tid),
        claim_lock: cx.env.claim_lock_for(&tid),
        // The claim is extended by `HERMES_KANBAN_CLAIM_TTL_SECONDS`.
        ttl_seconds: Some(
            kanban_hermes::config::EnvTunables::from_env(&ProcessEnv).claim_ttl_seconds,
        ),
    };
    match cx.store.heartbeat(&req) {
        Ok(()) => Ok(ok(json!({"task_id": tid}))),
        Err(
            StoreError::Refused { .. } | StoreError::Stale { .. } | StoreError::TaskNotFound(_),
        ) => Err(err(format!(
            "could not heartbeat {tid} (unknown id or not running)"
        ))),
        Err(e) => Err(store_err(TOOL)(e)),
    }
}

// ---- kanban_comment ----------------------------------------------------------

pub fn comment(cx: &ToolCx<'_>, a: CommentArgs) -> ToolResult {
    const TOOL: &str = "kanban_comment";
    let Some(tid) = text(&a.task_id) else {
        return Err(err(
            "task_id is required (pass your own task id to comment on your task)",
        ));
    };
    let Some(body) = text(&a.body) else {
        return Err(err("body is required"));
    };
    // The author is who we are, never what the caller claims to be.
    let c = cx
        .store
        .add_comment(&tid, &cx.env.author(), &body)
        .map_err(store_err(TOOL))?;
    Ok(ok(json!({"task_id": tid, "comment_id": c.id})))
}

// ---- kanban_create -----------------------------------------------------------

pub fn create(cx: &ToolCx<'_>, a: CreateArgs) -> ToolResult {
    const TOOL: &str = "kanban_create";
    let Some(title) = text(&a.title) else {
        return Err(err("title is required"));
    };
    let Some(assignee) = text(&a.assignee) else {
        return Err(err(
            "assignee is required — name the profile that should execute this task \
             (the dispatcher only spawns tasks that have an assignee)",
        ));
    };
    let parents = string_list("parents", &a.parents, "task ids")?.unwrap_or_default();
    let skills = string_list("skills", &a.skills, "skill names")?;
    let triage = flag("triage", &a.triage)?;
    let goal_mode = flag("goal_mode", &a.goal_mode)?;
    let priority = integer("priority", &a.priority)?.unwrap_or(0);
    let max_runtime_seconds = integer("max_runtime_seconds", &a.max_runtime_seconds)?;
    let goal_max_turns = integer("goal_max_turns", &a.goal_max_turns)?;
    let initial_blocked = match text(&a.initial_status).as_deref() {
        None | Some("running") => false,
        Some("blocked") => true,
        Some(other) => {
            return Err(err(format!(
                "initial_status must be 'running' or 'blocked', got {other:?}"
            )));
        }
    };
    let mut workspace_kind = text(&a.workspace_kind);
    let mut workspace_path = text(&a.workspace_path);
    let mut project_id = text(&a.project);
    // A worker's follow-ups stay in its workspace (and project) unless told otherwise.
    if workspace_kind.is_none()
        && workspace_path.is_none()
        && let Some(own) = &cx.env.task
        && let Some(t) = cx.store.get_task(own).map_err(store_err(TOOL))?
    {
        workspace_kind = Some(t.workspace_kind.clone());
        workspace_path = t.workspace_path.clone();
        project_id = project_id.or(t.project_id.clone());
    }
    let req = NewTask {
        title,
        body: a.body.filter(|b| !b.trim().is_empty()),
        assignee: Some(assignee),
        created_by: Some(cx.env.author()),
        workspace_kind,
        workspace_path,
        project_id,
        tenant: text(&a.tenant).or(cx.env.tenant.clone()),
        priority,
        parents,
        triage,
        initial_blocked,
        idempotency_key: text(&a.idempotency_key),
        max_runtime_seconds,
        skills,
        goal_mode,
        goal_max_turns,
        session_id: cx.env.session_id.clone(),
        default_workdir: cx.default_workdir.clone(),
        ..Default::default()
    };
    let created = cx.store.create_task(&req).map_err(store_err(TOOL))?;
    Ok(ok(json!({
        "task_id": created.task.id,
        "status": created.task.status.as_str(),
        // No chat session to subscribe from a stdio MCP server.
        "subscribed": false,
    })))
}

// ---- kanban_unblock ----------------------------------------------------------

pub fn unblock(cx: &ToolCx<'_>, a: UnblockArgs) -> ToolResult {
    const TOOL: &str = "kanban_unblock";
    cx.env.require_orchestrator(TOOL)?;
    let Some(tid) = text(&a.task_id) else {
        return Err(err("task_id is required"));
    };
    match cx.store.unblock_task(&tid, None) {
        Ok(done) => Ok(ok(json!({"task_id": tid, "status": done.to.as_str()}))),
        Err(StoreError::Refused { .. } | StoreError::TaskNotFound(_)) => Err(err(format!(
            "could not unblock {tid} (not blocked or unknown)"
        ))),
        Err(e) => Err(store_err(TOOL)(e)),
    }
}

// ---- kanban_link -------------------------------------------------------------

pub fn link(cx: &ToolCx<'_>, a: LinkArgs) -> ToolResult {
    const TOOL: &str = "kanban_link";
    let (Some(parent), Some(child)) = (text(&a.parent_id), text(&a.child_id)) else {
        return Err(err("both parent_id and child_id are required"));
    };
    cx.store
        .link_tasks(&parent, &child)
        .map_err(store_err(TOOL))?;
    Ok(ok(json!({"parent_id": parent, "child_id": child})))
}
