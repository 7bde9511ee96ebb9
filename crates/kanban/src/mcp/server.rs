//! The MCP server object: the tool routes (one per tool, each calling its
//! handler) and the `ServerHandler` methods that gate the tool list by mode.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use kanban_hermes::layout::{BoardPaths, ProcessEnv, Root};
use kanban_store::Clock;
use kanban_store::backend::BoardCatalogue;
use kanban_store::dispatch_ops::DispatchStore;
use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::handler::server::tool::ToolCallContext;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, Implementation,
    ListToolsResult, PaginatedRequestParams, ServerCapabilities, ServerConfig, Tool,
};
use rmcp::service::RequestContext;
use rmcp::transport::async_rw::AsyncRwTransport;
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
    /// The root's board catalogue (metadata such as the default workdir).
    catalogue: Box<dyn BoardCatalogue>,
    default_board: BoardPaths,
    clock: Arc<dyn Clock>,
    failure_limit: Option<i64>,
    open: Mutex<HashMap<PathBuf, Arc<dyn DispatchStore>>>,
}

impl Boards {
    /// The store of the requested board (else the default), opened once,
    /// with the board's slug.
    fn store(&self, board: Option<&str>) -> Result<(Arc<dyn DispatchStore>, String), ToolError> {
        let paths = match board.map(str::trim).filter(|b| !b.is_empty()) {
            Some(slug) => self
                .root
                .resolve_board(Some(slug), &ProcessEnv)
                .map_err(|e| ToolError(e.to_string()))?,
            None => self.default_board.clone(),
        };
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(s) = open.get(&paths.db) {
            return Ok((s.clone(), paths.slug));
        }
        let store = crate::context::open_board(&paths, self.clock.clone())
            .map_err(|e| ToolError(crate::error::message(&e)))?
            .dispatch();
        open.insert(paths.db.clone(), store.clone());
        Ok((store, paths.slug))
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
                catalogue: kanban_hermes::catalogue::for_root(&root),
                root,
                default_board,
                clock,
                failure_limit,
                open: Mutex::new(HashMap::new()),
            }),
            env: Arc::new(env),
            tool_router: Self::tool_router() + Self::attachment_tool_router(),
        }
    }

    /// Run one handler against the requested board.
    pub(super) fn call(
        &self,
        board: Option<&str>,
        f: impl FnOnce(&ToolCx<'_>) -> ToolResult,
    ) -> CallToolResult {
        let (store, slug) = match self.boards.store(board) {
            Ok(s) => s,
            Err(e) => return to_result(Err(e)),
        };
        let cx = ToolCx {
            store: store.as_ref(),
            env: &self.env,
            now: self.boards.clock.now(),
            failure_limit: self.boards.failure_limit,
            default_workdir: self
                .boards
                .catalogue
                .metadata(&slug)
                .ok()
                .and_then(|m| m.default_workdir),
            board_files: super::handlers::board_files(
                &self.boards.root,
                board,
                &self.boards.default_board,
            ),
            root: &self.boards.root,
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
        name = "kanban_request_review",
        description = "Hand your finished work to a reviewer instead of completing it: a \
                       summary of what you did (kept on your run), optional metadata and the \
                       reviewing profile. The card waits in Review. Then stop."
    )]
    fn kanban_request_review(
        &self,
        Parameters(a): Parameters<RequestReviewArgs>,
    ) -> CallToolResult {
        let board = a.board.clone();
        self.call(board.as_deref(), |cx| super::review::request_review(cx, a))
    }

    #[tool(
        name = "kanban_request_changes",
        description = "As the reviewer of a card, send it back to its implementer with the \
                       changes to make (the reason). The card returns to Ready. Then stop."
    )]
    fn kanban_request_changes(
        &self,
        Parameters(a): Parameters<RequestChangesArgs>,
    ) -> CallToolResult {
        let board = a.board.clone();
        self.call(board.as_deref(), |cx| super::review::request_changes(cx, a))
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

/// Longest request line read, by the filter and by rmcp: room for a
/// `kanban_attach` call carrying a whole attachment (base64 makes 4 bytes
/// of 3) plus the JSON around it. A longer line is discarded and answered
/// with a parse error.
const MAX_LINE_BYTES: usize =
    (kanban_core::defaults::ATTACHMENT_MAX_BYTES as usize).div_ceil(3) * 4 + 1024 * 1024;
/// Lines buffered between the filter and rmcp (backpressure beyond it).
const FILTER_PIPE_BYTES: usize = 64 * 1024;
/// JSON-RPC 2.0 "Parse error".
const PARSE_ERROR: i64 = -32700;
/// UTF-8 byte order mark, which JSON parsers may skip (RFC 8259 §8.1).
const UTF8_BOM: &[u8] = b"\xEF\xBB\xBF";

/// Standard output shared by rmcp and the line filter: every write is one
/// whole buffer under a lock, so a parse-error reply never lands inside a
/// response rmcp is writing. Writes block; one client reads them in turn.
#[derive(Clone)]
pub struct SharedStdout(Arc<Mutex<std::io::Stdout>>);

impl SharedStdout {
    fn write_line(&self, line: &str) -> std::io::Result<()> {
        use std::io::Write;
        let mut out = self.0.lock().unwrap_or_else(|p| p.into_inner());
        out.write_all(line.as_bytes())?;
        out.write_all(b"\n")?;
        out.flush()
    }
}

impl tokio::io::AsyncWrite for SharedStdout {
    fn poll_write(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        use std::io::Write;
        let mut out = self.0.lock().unwrap_or_else(|p| p.into_inner());
        std::task::Poll::Ready(out.write_all(buf).map(|()| buf.len()))
    }

    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        use std::io::Write;
        let mut out = self.0.lock().unwrap_or_else(|p| p.into_inner());
        std::task::Poll::Ready(out.flush())
    }

    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        self.poll_flush(cx)
    }
}

/// The stdio transport of `kanban mcp`: rmcp's line transport behind a
/// filter. rmcp drops input that is not JSON (or nested deeper than the
/// parser allows) without a word, which leaves a client waiting forever;
/// the filter answers each such line with a JSON-RPC parse error (-32700,
/// id null, as JSON-RPC 2.0 asks) and passes every JSON line on, so rmcp
/// still answers everything else (invalid requests included). Must be
/// called inside the runtime: it spawns the filter task.
pub fn stdio_transport()
-> AsyncRwTransport<rmcp::RoleServer, tokio::io::ReadHalf<tokio::io::SimplexStream>, SharedStdout> {
    let out = SharedStdout(Arc::new(Mutex::new(std::io::stdout())));
    let (to_rmcp_read, to_rmcp_write) = tokio::io::simplex(FILTER_PIPE_BYTES);
    tokio::spawn(filter_lines(tokio::io::stdin(), to_rmcp_write, out.clone()));
    AsyncRwTransport::new_server(to_rmcp_read, out).with_max_line_length(MAX_LINE_BYTES)
}

/// One input line, as the filter sees it.
enum Line {
    Complete,
    TooLong,
    End,
}

/// Read one `\n`-terminated line into `buf` without letting it grow past
/// [`MAX_LINE_BYTES`] (the rest of a longer line is skipped).
async fn read_line<R>(reader: &mut R, buf: &mut Vec<u8>) -> std::io::Result<Line>
where
    R: tokio::io::AsyncBufRead + Unpin,
{
    use tokio::io::AsyncBufReadExt;
    let mut too_long = false;
    loop {
        let available = reader.fill_buf().await?;
        if available.is_empty() {
            // A last line without its newline is still a line.
            return Ok(match (too_long, buf.is_empty()) {
                (true, _) => Line::TooLong,
                (false, true) => Line::End,
                (false, false) => Line::Complete,
            });
        }
        let newline = available.iter().position(|b| *b == b'\n');
        let take = newline.map_or(available.len(), |i| i + 1);
        if !too_long && buf.len() + take <= MAX_LINE_BYTES {
            buf.extend_from_slice(&available[..take]);
        } else {
            too_long = true;
            buf.clear();
        }
        reader.consume(take);
        if newline.is_some() {
            return Ok(if too_long {
                Line::TooLong
            } else {
                Line::Complete
            });
        }
    }
}

/// Why a line is not a JSON document (`None`: it is one).
fn parse_failure(line: &[u8]) -> Option<String> {
    // serde_json's recursion limit applies here exactly as in rmcp's parse.
    serde_json::from_slice::<serde_json::Value>(line)
        .err()
        .map(|e| e.to_string())
}

fn parse_error_reply(detail: &str) -> String {
    json!({
        "jsonrpc": "2.0",
        "id": null,
        "error": {"code": PARSE_ERROR, "message": "Parse error", "data": detail},
    })
    .to_string()
}

async fn filter_lines<R, W>(input: R, mut to_rmcp: W, out: SharedStdout)
where
    R: tokio::io::AsyncRead + Unpin,
    W: tokio::io::AsyncWrite + Unpin,
{
    use tokio::io::AsyncWriteExt;
    let mut reader = tokio::io::BufReader::new(input);
    let mut buf = Vec::new();
    loop {
        buf.clear();
        let detail = match read_line(&mut reader, &mut buf).await {
            Err(_) | Ok(Line::End) => break,
            Ok(Line::TooLong) => format!("message longer than {MAX_LINE_BYTES} bytes"),
            Ok(Line::Complete) => {
                let mut line = buf.strip_suffix(b"\n").unwrap_or(&buf);
                line = line.strip_suffix(b"\r").unwrap_or(line);
                line = line.strip_prefix(UTF8_BOM).unwrap_or(line);
                if line.iter().all(u8::is_ascii_whitespace) {
                    continue;
                }
                match parse_failure(line) {
                    None => {
                        let sent = async {
                            to_rmcp.write_all(line).await?;
                            to_rmcp.write_all(b"\n").await?;
                            to_rmcp.flush().await
                        };
                        if sent.await.is_err() {
                            break; // rmcp has stopped reading
                        }
                        continue;
                    }
                    Some(detail) => detail,
                }
            }
        };
        if out.write_line(&parse_error_reply(&detail)).is_err() {
            break; // nobody reads our answers any more
        }
    }
    // Dropping the pipe tells rmcp the input has ended.
    let _ = to_rmcp.shutdown().await;
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
        // Tools call the store, which blocks (and on PostgreSQL runs a
        // client with a runtime of its own, which must not be started from
        // inside this one): run them outside the async context. The tools
        // are synchronous, so a plain executor drives their futures.
        tokio::task::block_in_place(|| futures_executor::block_on(self.tool_router.call(tcc)))
    }
}
