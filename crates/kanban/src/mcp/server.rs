//! The MCP server object: the tool routes (one per tool, each calling its
//! handler) and the `ServerHandler` methods that gate the tool list by mode.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use kanban_store::layout::{BoardPaths, ProcessEnv, Root};
use kanban_store::{Clock, Store};
use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::handler::server::tool::ToolCallContext;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, Implementation,
    ListToolsResult, PaginatedRequestParams, ServerCapabilities, ServerConfig, Tool,
};
use rmcp::service::RequestContext;
use rmcp::{ErrorData, RoleServer, ServerHandler, tool, tool_router};
use serde_json::json;

use super::args::*;
use super::handlers::{self, ToolCx, ToolError, ToolResult};
use super::instructions;
use crate::worker_env::WorkerEnv;

/// Tools only an orchestrator sees (reference §5 gating).
pub const ORCHESTRATOR_ONLY: [&str; 2] = ["kanban_list", "kanban_unblock"];

/// Shared state: where boards live and the stores opened so far.
struct Boards {
    root: Root,
    default_board: BoardPaths,
    clock: Arc<dyn Clock>,
    failure_limit: Option<i64>,
    open: Mutex<HashMap<PathBuf, Arc<dyn Store>>>,
}

impl Boards {
    /// The store of the requested board (else the default), opened once.
    fn store(&self, board: Option<&str>) -> Result<Arc<dyn Store>, ToolError> {
        let paths = match board.map(str::trim).filter(|b| !b.is_empty()) {
            Some(slug) => self
                .root
                .resolve_board(Some(slug), &ProcessEnv)
                .map_err(|e| ToolError(e.to_string()))?,
            None => self.default_board.clone(),
        };
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(s) = open.get(&paths.db) {
            return Ok(s.clone());
        }
        let store: Arc<dyn Store> = Arc::new(
            crate::context::open_store(&paths, self.clock.clone())
                .map_err(|e| ToolError(crate::error::message(&e)))?,
        );
        open.insert(paths.db.clone(), store.clone());
        Ok(store)
    }
}

#[derive(Clone)]
pub struct KanbanMcp {
    boards: Arc<Boards>,
    env: Arc<WorkerEnv>,
    tool_router: ToolRouter<Self>,
}

/// The tool result: the JSON text of the reference's result column, or a
/// tool error carrying `{"error": "..."}`.
fn to_result(r: ToolResult) -> CallToolResult {
    match r {
        Ok(v) => CallToolResult::success(vec![ContentBlock::text(v.to_string())]),
        Err(ToolError(msg)) => CallToolResult::error(vec![ContentBlock::text(
            json!({ "error": msg }).to_string(),
        )]),
    }
}

impl KanbanMcp {
    pub fn new(
        root: Root,
        default_board: BoardPaths,
        clock: Arc<dyn Clock>,
        failure_limit: Option<i64>,
        env: WorkerEnv,
    ) -> KanbanMcp {
        KanbanMcp {
            boards: Arc::new(Boards {
                root,
                default_board,
                clock,
                failure_limit,
                open: Mutex::new(HashMap::new()),
            }),
            env: Arc::new(env),
            tool_router: Self::tool_router(),
        }
    }

    /// Run one handler against the requested board.
    fn call(
        &self,
        board: Option<&str>,
        f: impl FnOnce(&ToolCx<'_>) -> ToolResult,
    ) -> CallToolResult {
        let store = match self.boards.store(board) {
            Ok(s) => s,
            Err(e) => return to_result(Err(e)),
        };
        let cx = ToolCx {
            store: store.as_ref(),
            env: &self.env,
            now: self.boards.clock.now(),
            failure_limit: self.boards.failure_limit,
        };
        to_result(f(&cx))
    }

    /// The tools this caller may see.
    pub fn visible_tools(&self) -> Vec<Tool> {
        self.tool_router
            .list_all()
            .into_iter()
            .filter(|t| !(self.env.is_worker() && ORCHESTRATOR_ONLY.contains(&t.name.as_ref())))
            .collect()
    }
}

#[tool_router]
impl KanbanMcp {
    #[tool(
        name = "kanban_show",
        description = "Read a task: its row, parents, children, comments, recent events, \
                       attempt history and the worker context text. Defaults to your own task."
    )]
    fn kanban_show(&self, Parameters(a): Parameters<ShowArgs>) -> CallToolResult {
        let board = a.board.clone();
        self.call(board.as_deref(), |cx| handlers::show(cx, a))
    }

    #[tool(
        name = "kanban_list",
        description = "List tasks with filters (assignee, status, tenant), highest priority \
                       first. Orchestrators only."
    )]
    fn kanban_list(&self, Parameters(a): Parameters<ListArgs>) -> CallToolResult {
        let board = a.board.clone();
        self.call(board.as_deref(), |cx| handlers::list(cx, a))
    }

    #[tool(
        name = "kanban_complete",
        description = "Finish your task with a handoff: a summary for humans and downstream \
                       tasks, optional metadata, the ids of tasks you created. Call it once, \
                       at the end, then stop."
    )]
    fn kanban_complete(&self, Parameters(a): Parameters<CompleteArgs>) -> CallToolResult {
        let board = a.board.clone();
        self.call(board.as_deref(), |cx| handlers::complete(cx, a))
    }

    #[tool(
        name = "kanban_block",
        description = "Stop working on your task because you need something you cannot get \
                       yourself; a human reads the reason and unblocks it. Then stop."
    )]
    fn kanban_block(&self, Parameters(a): Parameters<BlockArgs>) -> CallToolResult {
        let board = a.board.clone();
        self.call(board.as_deref(), |cx| handlers::block(cx, a))
    }

    #[tool(
        name = "kanban_heartbeat",
        description = "Tell the board you are still working (extends your claim), with an \
                       optional progress note. Call it every few minutes during long work."
    )]
    fn kanban_heartbeat(&self, Parameters(a): Parameters<HeartbeatArgs>) -> CallToolResult {
        let board = a.board.clone();
        self.call(board.as_deref(), |cx| handlers::heartbeat(cx, a))
    }

    #[tool(
        name = "kanban_comment",
        description = "Add a durable comment to a task's thread (yours or another's): \
                       findings, questions, hand-off notes the next reader needs."
    )]
    fn kanban_comment(&self, Parameters(a): Parameters<CommentArgs>) -> CallToolResult {
        let board = a.board.clone();
        self.call(board.as_deref(), |cx| handlers::comment(cx, a))
    }

    #[tool(
        name = "kanban_create",
        description = "Create a task for a profile to execute, e.g. follow-up work or a \
                       fan-out of sub-tasks; pass parents to make it wait for other tasks."
    )]
    fn kanban_create(&self, Parameters(a): Parameters<CreateArgs>) -> CallToolResult {
        let board = a.board.clone();
        self.call(board.as_deref(), |cx| handlers::create(cx, a))
    }

    #[tool(
        name = "kanban_unblock",
        description = "Release a blocked task: it becomes ready (or waits in todo while a \
                       parent is unfinished). Orchestrators only."
    )]
    fn kanban_unblock(&self, Parameters(a): Parameters<UnblockArgs>) -> CallToolResult {
        let board = a.board.clone();
        self.call(board.as_deref(), |cx| handlers::unblock(cx, a))
    }

    #[tool(
        name = "kanban_link",
        description = "Make one existing task depend on another (the child waits until the \
                       parent is done). Cycles and self-links are refused."
    )]
    fn kanban_link(&self, Parameters(a): Parameters<LinkArgs>) -> CallToolResult {
        let board = a.board.clone();
        self.call(board.as_deref(), |cx| handlers::link(cx, a))
    }
}

impl ServerHandler for KanbanMcp {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(
                Implementation::new("kanban", env!("CARGO_PKG_VERSION"))
                    .with_title("kanban board worker tools"),
            )
            .with_instructions(instructions::for_env(&self.env))
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        Ok(ListToolsResult::with_all_items(self.visible_tools()))
    }

    fn get_tool(&self, name: &str) -> Option<Tool> {
        self.visible_tools().into_iter().find(|t| t.name == name)
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        // Hidden from workers, and refused at call time too, with the
        // reason, so a client with a stale list learns why.
        if self.env.is_worker() && ORCHESTRATOR_ONLY.contains(&request.name.as_ref()) {
            let refusal = self.env.require_orchestrator(&request.name);
            return Ok(to_result(refusal.map(|_| json!({})).map_err(ToolError::from)).into());
        }
        let tcc = ToolCallContext::new(self, request, context);
        self.tool_router.call(tcc).await
    }
}
