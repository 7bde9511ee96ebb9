//! `kanban_attach`, `kanban_attach_url` and `kanban_attachments` (reference
//! §5): store a file given inline (base64) or by URL as an attachment of a
//! task, list a task's attachments. Stores go through the write path the
//! CLI and the dashboard upload share
//! (`kanban_hermes::attachments::store_attachment_bytes`); URLs through the
//! SSRF-guarded fetch of [`super::fetch`]. A worker may attach only to its
//! own task; listing is not restricted.

use base64::Engine as _;
use kanban_core::defaults::ATTACHMENT_MAX_BYTES;
use kanban_hermes::attachments::{BlobUpload, store_attachment_bytes, too_large_message};
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::CallToolResult;
use rmcp::schemars::{self, JsonSchema};
use rmcp::{tool, tool_router};
use serde::Deserialize;
use serde_json::json;

use super::args::board_schema;
use super::fetch::{FetchPolicy, default_filename, fetch};
use super::handlers::{ToolCx, ToolResult, err, ok, store_err, text};
use super::server::KanbanMcp;
use crate::command::attachments::attachment_json;

/// `uploaded_by` of files stored by an agent (the reference's label).
const AGENT_UPLOADER: &str = "agent";

#[derive(Debug, Default, Deserialize, JsonSchema)]
pub struct AttachArgs {
    /// Task id. Defaults to your own task; a worker may attach only to its own.
    pub task_id: Option<String>,
    /// File name to store it under (e.g. `report.pdf`); no directory parts.
    #[schemars(required)]
    pub filename: Option<String>,
    /// The file's bytes, base64-encoded; at most 25 MiB decoded.
    #[schemars(required)]
    pub content_base64: Option<String>,
    /// MIME type (e.g. `application/pdf`); optional.
    pub content_type: Option<String>,
    #[serde(default)]
    #[schemars(schema_with = "board_schema")]
    pub board: Option<String>,
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
pub struct AttachUrlArgs {
    /// Task id. Defaults to your own task; a worker may attach only to its own.
    pub task_id: Option<String>,
    /// http(s) URL to download and store (public addresses only).
    #[schemars(required)]
    pub url: Option<String>,
    /// Name to store it under (default: the last segment of the URL path).
    pub filename: Option<String>,
    /// MIME type (default: the Content-Type the server sends).
    pub content_type: Option<String>,
    #[serde(default)]
    #[schemars(schema_with = "board_schema")]
    pub board: Option<String>,
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
pub struct AttachmentsArgs {
    /// Task id. Defaults to your own task.
    pub task_id: Option<String>,
    #[serde(default)]
    #[schemars(schema_with = "board_schema")]
    pub board: Option<String>,
}

/// Longest base64 text that can decode to at most the cap.
fn max_base64_len() -> usize {
    (ATTACHMENT_MAX_BYTES as usize).div_ceil(3) * 4
}

/// Store `data` for `tid` as the agent; the reference's result.
fn store(
    cx: &ToolCx<'_>,
    tool: &str,
    tid: &str,
    filename: &str,
    data: &[u8],
    content_type: Option<&str>,
) -> ToolResult {
    let up = BlobUpload {
        task_id: tid,
        filename,
        data,
        content_type,
        uploaded_by: Some(AGENT_UPLOADER),
    };
    let att = store_attachment_bytes(cx.store, &cx.board_files.attachments_root, &up)
        .map_err(store_err(tool))?;
    Ok(ok(
        json!({"task_id": tid, "attachment_id": att.id, "size": att.size}),
    ))
}

pub fn attach(cx: &ToolCx<'_>, a: AttachArgs) -> ToolResult {
    const TOOL: &str = "kanban_attach";
    let tid = cx.env.task_or_own(a.task_id.as_deref())?;
    cx.env.check_lifecycle(&tid)?;
    let Some(filename) = text(&a.filename) else {
        return Err(err("filename is required"));
    };
    let Some(b64) = text(&a.content_base64) else {
        return Err(err("content_base64 is required"));
    };
    if b64.len() > max_base64_len() {
        return Err(err(format!("{TOOL}: {}", too_large_message())));
    }
    let data = base64::engine::general_purpose::STANDARD
        .decode(b64.as_bytes())
        .map_err(|e| err(format!("content_base64 is not valid base64: {e}")))?;
    let content_type = text(&a.content_type);
    store(cx, TOOL, &tid, &filename, &data, content_type.as_deref())
}

pub fn attach_url(cx: &ToolCx<'_>, a: AttachUrlArgs, policy: FetchPolicy) -> ToolResult {
    const TOOL: &str = "kanban_attach_url";
    let tid = cx.env.task_or_own(a.task_id.as_deref())?;
    cx.env.check_lifecycle(&tid)?;
    let Some(url) = text(&a.url) else {
        return Err(err("url is required"));
    };
    let filename = text(&a.filename).unwrap_or_else(|| default_filename(&url));
    // Refuse what would be refused after the download, before it.
    kanban_hermes::attachments::safe_attachment_name(&filename).map_err(store_err(TOOL))?;
    if cx.store.get_task(&tid).map_err(store_err(TOOL))?.is_none() {
        return Err(err(format!("{TOOL}: no such task: {tid}")));
    }
    let fetched =
        fetch(&url, policy, ATTACHMENT_MAX_BYTES).map_err(|e| err(format!("{TOOL}: {e}")))?;
    let content_type = text(&a.content_type).or(fetched.content_type);
    store(
        cx,
        TOOL,
        &tid,
        &filename,
        &fetched.data,
        content_type.as_deref(),
    )
}

pub fn attachments(cx: &ToolCx<'_>, a: AttachmentsArgs) -> ToolResult {
    const TOOL: &str = "kanban_attachments";
    let tid = cx.env.task_or_own(a.task_id.as_deref())?;
    if cx.store.get_task(&tid).map_err(store_err(TOOL))?.is_none() {
        return Err(err(format!("task {tid} not found")));
    }
    let atts = cx.store.attachments(&tid).map_err(store_err(TOOL))?;
    Ok(ok(json!({
        "task_id": tid,
        "attachments": atts.iter().map(attachment_json).collect::<Vec<_>>(),
    })))
}

#[tool_router(router = attachment_tool_router, vis = "pub(super)")]
impl KanbanMcp {
    #[tool(
        name = "kanban_attach",
        description = "Attach a file to a task by passing its bytes inline (base64): reports, \
                       images, exports the next worker or a human should download. Stored as a \
                       real attachment (at most 25 MiB). Prefer kanban_attach_url when you \
                       only have a URL."
    )]
    fn kanban_attach(&self, Parameters(a): Parameters<AttachArgs>) -> CallToolResult {
        let board = a.board.clone();
        self.call(board.as_deref(), |cx| attach(cx, a))
    }

    #[tool(
        name = "kanban_attach_url",
        description = "Attach a file to a task by URL: the board downloads it (http/https, \
                       public addresses only, at most 5 redirects, at most 25 MiB) and stores \
                       it as a real attachment."
    )]
    fn kanban_attach_url(&self, Parameters(a): Parameters<AttachUrlArgs>) -> CallToolResult {
        let board = a.board.clone();
        let policy = FetchPolicy::from_env();
        self.call(board.as_deref(), |cx| attach_url(cx, a, policy))
    }

    #[tool(
        name = "kanban_attachments",
        description = "List the files attached to a task: id, filename, content_type, size, \
                       who uploaded it and the absolute path you can read. Defaults to your \
                       own task."
    )]
    fn kanban_attachments(&self, Parameters(a): Parameters<AttachmentsArgs>) -> CallToolResult {
        let board = a.board.clone();
        self.call(board.as_deref(), |cx| attachments(cx, a))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use kanban_hermes::layout::Root;
    use kanban_store::{NewTask, SystemClock};

    use super::*;
    use crate::worker_env::WorkerEnv;

    /// Over the cap, decoded or not even decoded: refused, nothing stored.
    /// (Over stdio, `mcp_attachments::a_full_size_attachment_travels_over_stdio`.)
    #[test]
    fn inline_files_over_the_cap_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let root = Root::at(dir.path());
        let paths = root.board_paths("default");
        let store = crate::context::open_board(&paths, Arc::new(SystemClock))
            .unwrap()
            .dispatch();
        let task = store
            .create_task(&NewTask {
                title: "Big".into(),
                ..Default::default()
            })
            .unwrap()
            .task
            .id;
        let env = WorkerEnv::default();
        let cx = ToolCx {
            store: store.as_ref(),
            env: &env,
            now: 0,
            failure_limit: None,
            default_workdir: None,
            board_files: kanban_hermes::scratch::board_files(&paths, None),
            root: &root,
        };
        let engine = base64::engine::general_purpose::STANDARD;
        let cap = ATTACHMENT_MAX_BYTES as usize;
        for size in [cap + 1, cap + 4 * 1024] {
            let a = AttachArgs {
                task_id: Some(task.clone()),
                filename: Some("big.bin".into()),
                content_base64: Some(engine.encode(vec![7u8; size])),
                ..Default::default()
            };
            let e = attach(&cx, a).unwrap_err().0;
            assert_eq!(e, "kanban_attach: attachment exceeds 25 MB limit", "{size}");
        }
        assert!(store.attachments(&task).unwrap().is_empty());
        assert!(!paths.task_attachments_dir(&task).join("big.bin").exists());
        let at_cap = AttachArgs {
            task_id: Some(task.clone()),
            filename: Some("cap.bin".into()),
            content_base64: Some(engine.encode(vec![7u8; cap])),
            ..Default::default()
        };
        assert_eq!(attach(&cx, at_cap).unwrap()["size"], cap);
    }
}
