//! Command-line surface: the verbs, flags and help text of
//! `hermes kanban <verb>` (reference §4), plus the seed forms
//! (`add --title --profile --column`, `list --profile`).

use clap::{Args, Parser, Subcommand, ValueEnum};

use kanban_core::defaults::{CLAIM_TTL_SECONDS, GC_EVENT_RETENTION_DAYS, GC_LOG_RETENTION_DAYS};

/// Durable task board for fleets of AI-agent workers (Hermes-compatible).
///
/// Tasks live in a SQLite board under the Hermes root ($HERMES_KANBAN_HOME,
/// else $HERMES_HOME, else ~/.hermes). Tasks are claimed atomically, can
/// depend on other tasks, and are executed by a named profile in an
/// isolated workspace.
#[derive(Debug, Parser)]
#[command(
    name = "kanban",
    version,
    propagate_version = true,
    max_term_width = 100
)]
pub struct Cli {
    /// Board to operate on (default: $HERMES_KANBAN_BOARD, then the board
    /// chosen with `kanban boards switch`, then `default`).
    #[arg(long, global = true, value_name = "SLUG")]
    pub board: Option<String>,

    /// Keep the boards in this PostgreSQL database (`postgres://…`) instead
    /// of SQLite files (default: $HERMES_KANBAN_DATABASE_URL, then
    /// `kanban.database_url` in config.yaml). Prefer the variable or the
    /// config for URLs with a password: arguments are visible to every user.
    #[arg(long, global = true, value_name = "URL")]
    pub db: Option<String>,

    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create the board's database if missing (idempotent) and list profiles.
    Init,
    /// Manage boards (one board per project or workstream).
    Boards(crate::command::boards::BoardsArgs),
    /// Run the gateway: REST/WebSocket API, dashboard and embedded dispatcher
    /// (run|start|stop|status).
    #[command(subcommand)]
    Gateway(crate::command::gateway::GatewayCommand),
    /// Create a new task.
    Create(CreateArgs),
    /// Create a swarm: parallel workers -> verifier -> synthesizer under a
    /// completed planning root, all in one transaction.
    Swarm(crate::command::swarm::SwarmArgs),
    /// Create a task, scripting form: prints only the new id.
    ///
    /// `--column` chooses where it starts: `triage` parks it for a
    /// specifier; `backlog`, `todo` and `ready` all create a normal task,
    /// which is ready at once when it has no unfinished parent and waits in
    /// todo (gated) until its parents are done otherwise.
    Add(AddArgs),
    /// List tasks (promotes tasks whose parents finished first).
    #[command(visible_alias = "ls")]
    List(ListArgs),
    /// Show a task with comments, events and runs.
    Show(ShowArgs),
    /// Assign or unassign a task (refused while a worker holds it).
    Assign(AssignArgs),
    /// Reassign a task to another profile, optionally reclaiming it first.
    Reassign(ReassignArgs),
    /// Release an active worker claim; the task goes back to ready.
    Reclaim(ReclaimArgs),
    /// Add a parent -> child dependency.
    Link(LinkArgs),
    /// Remove a parent -> child dependency.
    Unlink(LinkArgs),
    /// Append a comment to a task.
    Comment(CommentArgs),
    /// Attach a local file to a task (25 MiB cap).
    Attach(crate::command::attach::AttachArgs),
    /// List a task's attachments.
    Attachments(crate::command::attachments::AttachmentsArgs),
    /// Delete an attachment by id (row and stored file).
    AttachRm(crate::command::attach_rm::AttachRmArgs),
    /// Mark one or more tasks done.
    Complete(CompleteArgs),
    /// Edit a task: result/summary/metadata of a done task, or title, body, priority.
    Edit(EditArgs),
    /// Mark one or more tasks blocked (or waiting on dependencies with --kind dependency).
    Block(BlockArgs),
    /// Return blocked/scheduled tasks to ready (or todo while parents remain open).
    Unblock(UnblockArgs),
    /// Hand a task to review (same card): running/ready -> review.
    RequestReview(crate::command::review::RequestReviewArgs),
    /// Reviewer verdict: send the task under review back to its implementer.
    RequestChanges(crate::command::review::RequestChangesArgs),
    /// Send tasks waiting in review back to their implementer (ready/todo).
    ReopenReview(crate::command::review::ReopenReviewArgs),
    /// Approve tasks waiting in review (no reviewer on them): review -> done.
    Approve(crate::command::review::ApproveArgs),
    /// Park one or more tasks in scheduled (waiting on time, not on a human).
    Schedule(ScheduleArgs),
    /// Manually move todo/blocked tasks to ready (recovery path).
    Promote(PromoteArgs),
    /// Turn rough triage tasks into specifications (auxiliary model) and move them to todo.
    Specify(crate::command::specify::SpecifyArgs),
    /// Fan triage tasks out into child tasks routed to profiles (auxiliary model).
    Decompose(crate::command::decompose::DecomposeArgs),
    /// Archive tasks, or with --rm permanently delete archived ones.
    Archive(ArchiveArgs),
    /// Per-status and per-assignee counts, and the oldest ready age.
    Stats(JsonArgs),
    /// Active diagnostics (distress signals with suggested fixes) of the board.
    #[command(visible_alias = "diag")]
    Diagnostics(crate::command::diagnostics::DiagnosticsArgs),
    /// Known profiles and assignees with per-status task counts.
    Assignees(JsonArgs),
    /// Attempt history of a task (one row per run).
    Runs(RunsArgs),
    /// Print the context a worker sees for a task (inside a worker: its own).
    Context(OptTaskIdArg),
    /// Atomically claim a ready task and print its workspace.
    Claim(ClaimArgs),
    /// Record a worker heartbeat on a running task (inside a worker: its own).
    Heartbeat(HeartbeatArgs),
    /// Serve the worker tools over the Model Context Protocol (stdio).
    ///
    /// Start it as an agent's MCP server from a profile's command template.
    /// With HERMES_KANBAN_TASK set (a dispatcher-spawned worker) it offers
    /// kanban_show, complete, block, heartbeat, comment, create, link and the
    /// attachment tools, scoped to that task; otherwise also kanban_list and
    /// kanban_unblock.
    Mcp,
    /// Print the worker log of a task.
    Log(LogArgs),
    /// Follow one task's event stream (Ctrl-C to stop).
    Tail(TailArgs),
    /// Live-stream board events from now on (Ctrl-C to stop).
    Watch(WatchArgs),
    /// Remove archived tasks' scratch dirs, old events of finished tasks, old logs.
    Gc(GcArgs),
    /// Run one dispatcher pass now: reclaim, detect crashes, promote, spawn.
    Dispatch(crate::command::dispatch::DispatchArgs),
    /// DEPRECATED: the dispatcher runs in the gateway (`kanban gateway
    /// start`); or run `kanban dispatch` from cron.
    Daemon(crate::command::daemon::DaemonArgs),
    /// Internal: run a worker and record its exit (used by the dispatcher).
    #[command(name = "__worker-exec", hide = true)]
    WorkerExec(crate::worker_process::WorkerExecArgs),
    /// Subscribe a chat destination to a task's terminal events.
    NotifySubscribe(NotifySubscribeArgs),
    /// List notification subscriptions (optionally of one task).
    NotifyList(NotifyListArgs),
    /// Remove a notification subscription.
    NotifyUnsubscribe(NotifyUnsubscribeArgs),
    /// Live terminal view of the board: counts, running workers, profile
    /// usage, recent events and throughput (q, Esc or Ctrl-C quits).
    Top(crate::command::top::TopArgs),
    /// Check the installation (root, permissions, config, profiles,
    /// gateway, locks, boards) and say what to do about each problem.
    ///
    /// Exit 0 when every check is ok, 1 when one warns or fails.
    Doctor(crate::command::doctor::DoctorArgs),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    ///
    /// Bash: `kanban completions bash > ~/.local/share/bash-completion/completions/kanban`;
    /// zsh: into a directory of your $fpath as `_kanban`; fish:
    /// `kanban completions fish > ~/.config/fish/completions/kanban.fish`.
    Completions(CompletionsArgs),
    /// Print the man page (roff), or write one page per verb with --out.
    ///
    /// Read it with `kanban man | man -l -`.
    Man(ManArgs),
}

/// `kanban completions <shell>`.
#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// Shell to generate the script for.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

/// `kanban man [--out DIR]`.
#[derive(Debug, Args)]
pub struct ManArgs {
    /// Write kanban.1 and one page per verb (kanban-list.1, ...) into this
    /// directory (created if missing) instead of printing kanban.1.
    #[arg(long, value_name = "DIR")]
    pub out: Option<std::path::PathBuf>,
}

/// Where `kanban add --column` puts a task.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Column {
    /// Normal task (ready, or todo while parents are unfinished).
    Backlog,
    /// Same as backlog.
    Todo,
    /// Same as backlog: a task with unfinished parents still waits.
    Ready,
    /// Parked for a specifier; never dispatched until promoted.
    Triage,
}

/// Initial status of `create --initial-status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum InitialStatus {
    /// The normal path (ready / todo / triage by inference).
    Running,
    /// Park the task in blocked; it stays there until unblocked.
    Blocked,
}

#[derive(Debug, Args)]
pub struct CreateArgs {
    /// Task title.
    pub title: String,
    /// Opening post / specification.
    #[arg(long)]
    pub body: Option<String>,
    /// Profile name to assign (`none` leaves it unassigned).
    #[arg(long)]
    pub assignee: Option<String>,
    /// Parent task id this task depends on (repeatable).
    #[arg(long = "parent", value_name = "ID")]
    pub parents: Vec<String>,
    /// scratch | worktree | worktree:<path> | dir:<absolute path>.
    #[arg(long, default_value = "scratch")]
    pub workspace: String,
    /// Branch name for worktree tasks, e.g. wt/t6-wire.
    #[arg(long)]
    pub branch: Option<String>,
    /// Link to a project (id or slug).
    #[arg(long)]
    pub project: Option<String>,
    /// Tenant namespace (soft isolation inside a board).
    #[arg(long)]
    pub tenant: Option<String>,
    /// Priority; higher is dispatched first.
    #[arg(long, default_value_t = 0, allow_negative_numbers = true)]
    pub priority: i64,
    /// Park in triage: a specifier fleshes out the spec and promotes it.
    #[arg(long)]
    pub triage: bool,
    /// Dedup key: when a non-archived task has it, that task's id is returned.
    #[arg(long)]
    pub idempotency_key: Option<String>,
    /// Per-attempt runtime cap: seconds (300) or 90s, 30m, 2h, 1d.
    #[arg(long, value_name = "DURATION")]
    pub max_runtime: Option<String>,
    /// Author recorded on the task.
    #[arg(long, default_value = "user")]
    pub created_by: String,
    /// Skill to force-load into the worker (repeatable).
    #[arg(long = "skill", value_name = "NAME")]
    pub skills: Vec<String>,
    /// Trip the circuit breaker on the Nth consecutive failure (N >= 1);
    /// default: the dispatcher's kanban.failure_limit (2).
    #[arg(long, value_name = "N", allow_negative_numbers = true)]
    pub max_retries: Option<i64>,
    /// Run the worker in a judge-gated goal loop.
    #[arg(long = "goal")]
    pub goal_mode: bool,
    /// Turn budget for --goal workers (default 20).
    #[arg(long, value_name = "N")]
    pub goal_max_turns: Option<i64>,
    /// Model override passed to the worker.
    #[arg(long)]
    pub model: Option<String>,
    /// `running` (normal path) or `blocked` (park for a human).
    #[arg(long, value_enum, default_value = "running")]
    pub initial_status: InitialStatus,
    /// Print the created task as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct AddArgs {
    /// Task title.
    #[arg(long)]
    pub title: String,
    /// Profile that will run the task.
    #[arg(long, visible_alias = "assignee")]
    pub profile: Option<String>,
    /// Starting column: backlog, todo, ready or triage.
    #[arg(long, value_enum, default_value = "backlog")]
    pub column: Column,
    /// Parent task id (repeatable).
    #[arg(long = "parent", value_name = "ID")]
    pub parents: Vec<String>,
    /// Opening post / specification.
    #[arg(long)]
    pub body: Option<String>,
    /// Tenant namespace.
    #[arg(long)]
    pub tenant: Option<String>,
    /// Priority; higher is dispatched first.
    #[arg(long, default_value_t = 0, allow_negative_numbers = true)]
    pub priority: i64,
    /// Print the created task as JSON instead of the bare id.
    #[arg(long)]
    pub json: bool,
}

/// Sort orders of `list --sort`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SortOrder {
    /// Oldest first.
    Created,
    /// Newest first.
    CreatedDesc,
    /// Highest priority first, then oldest (the default).
    Priority,
    /// Lowest priority first, then oldest (the reference's naming).
    PriorityDesc,
    /// By status name, then oldest.
    Status,
    /// By assignee, then oldest.
    Assignee,
    /// By title.
    Title,
    /// Most recently started first.
    Updated,
}

#[derive(Debug, Args)]
pub struct ListArgs {
    /// Only tasks assigned to $HERMES_PROFILE.
    #[arg(long)]
    pub mine: bool,
    /// Only tasks assigned to this profile.
    #[arg(long, visible_alias = "profile")]
    pub assignee: Option<String>,
    /// Only tasks in this status.
    #[arg(long, value_parser = parse_status)]
    pub status: Option<kanban_core::Status>,
    /// Only tasks of this tenant.
    #[arg(long)]
    pub tenant: Option<String>,
    /// Only tasks created from this chat/agent session.
    #[arg(long)]
    pub session: Option<String>,
    /// Include archived tasks.
    #[arg(long)]
    pub archived: bool,
    /// Print a JSON array.
    #[arg(long)]
    pub json: bool,
    /// Sort order (default: priority high to low, then oldest first).
    #[arg(long, value_enum)]
    pub sort: Option<SortOrder>,
    /// Only tasks with this workflow_template_id.
    #[arg(long, value_name = "ID")]
    pub workflow_template_id: Option<String>,
    /// Only tasks with this current_step_key.
    #[arg(long, value_name = "KEY")]
    pub step_key: Option<String>,
}

fn parse_status(s: &str) -> Result<kanban_core::Status, String> {
    s.parse().map_err(|e: kanban_core::CoreError| e.to_string())
}

/// Column of `task_runs` used by `--state-type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum RunStateType {
    /// The run's status column.
    Status,
    /// The run's outcome column.
    Outcome,
}

#[derive(Debug, Args)]
pub struct RunFilter {
    /// With --state-name: filter runs by this task_runs column.
    #[arg(long, value_enum)]
    pub state_type: Option<RunStateType>,
    /// With --state-type: keep runs whose column equals this value.
    #[arg(long, value_name = "VALUE")]
    pub state_name: Option<String>,
}

#[derive(Debug, Args)]
pub struct ShowArgs {
    /// Task id (t_xxxxxxxx); inside a worker, defaults to its own task.
    pub task_id: Option<String>,
    /// Print `{task, latest_summary, parents, children, comments, events, runs}`.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub runs: RunFilter,
}

#[derive(Debug, Args)]
pub struct AssignArgs {
    /// Task id (t_xxxxxxxx).
    pub task_id: String,
    /// Profile name, or none / - / null to unassign.
    pub profile: String,
}

#[derive(Debug, Args)]
pub struct ReassignArgs {
    /// Task id (t_xxxxxxxx).
    pub task_id: String,
    /// New profile name, or none to unassign.
    pub profile: String,
    /// Release an active claim first (required when the task is running).
    #[arg(long)]
    pub reclaim: bool,
    /// Reason recorded on the reclaimed event.
    #[arg(long)]
    pub reason: Option<String>,
}

#[derive(Debug, Args)]
pub struct ReclaimArgs {
    /// Task id (t_xxxxxxxx).
    pub task_id: String,
    /// Reason recorded on the reclaimed event.
    #[arg(long)]
    pub reason: Option<String>,
}

#[derive(Debug, Args)]
pub struct LinkArgs {
    /// The task that must finish first.
    pub parent_id: String,
    /// The task that waits for it.
    pub child_id: String,
}

#[derive(Debug, Args)]
pub struct CommentArgs {
    /// Task id (t_xxxxxxxx).
    pub task_id: String,
    /// Comment text (words are joined with spaces).
    #[arg(required = true, num_args = 1..)]
    pub text: Vec<String>,
    /// Author name (default: $HERMES_PROFILE or `user`).
    #[arg(long)]
    pub author: Option<String>,
    /// Trim the stored body to this many characters, with a visible marker.
    #[arg(long, value_name = "N", allow_negative_numbers = true)]
    pub max_len: Option<i64>,
}

#[derive(Debug, Args)]
pub struct CompleteArgs {
    /// One or more task ids (only --result applies to several); inside a
    /// worker, defaults to its own task.
    #[arg(num_args = 0..)]
    pub task_ids: Vec<String>,
    /// Result text stored on the task.
    #[arg(long)]
    pub result: Option<String>,
    /// Handoff summary for downstream tasks (falls back to --result).
    #[arg(long)]
    pub summary: Option<String>,
    /// JSON object of structured facts stored on the closing run.
    #[arg(long, value_name = "JSON")]
    pub metadata: Option<String>,
}

#[derive(Debug, Args)]
pub struct EditArgs {
    /// Task id (t_xxxxxxxx).
    pub task_id: String,
    /// Back-filled result of a done task.
    #[arg(long)]
    pub result: Option<String>,
    /// Handoff summary stored on the latest completed run.
    #[arg(long)]
    pub summary: Option<String>,
    /// JSON object stored on the latest completed run.
    #[arg(long, value_name = "JSON")]
    pub metadata: Option<String>,
    /// New title.
    #[arg(long)]
    pub title: Option<String>,
    /// New body.
    #[arg(long)]
    pub body: Option<String>,
    /// New priority.
    #[arg(long, allow_negative_numbers = true)]
    pub priority: Option<i64>,
}

/// `--kind` of `block`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
#[value(rename_all = "snake_case")]
pub enum BlockKindArg {
    /// Wait in todo until parents finish (no human needed).
    Dependency,
    /// Needs an answer from a human.
    NeedsInput,
    /// The worker lacks a capability.
    Capability,
    /// Possibly flaky failure.
    Transient,
}

#[derive(Debug, Args)]
pub struct BlockArgs {
    /// Task id (t_xxxxxxxx). Inside a worker it may be left out: a first
    /// word that is not a task id starts the reason for its own task.
    pub task_id: Option<String>,
    /// Reason (also added as a `BLOCKED: ...` comment).
    pub reason: Vec<String>,
    /// More task ids to block with the same reason.
    #[arg(long, num_args = 1..)]
    pub ids: Vec<String>,
    /// Typed block reason; the same kind blocked twice routes to triage.
    #[arg(long, value_enum)]
    pub kind: Option<BlockKindArg>,
}

#[derive(Debug, Args)]
pub struct UnblockArgs {
    /// One or more task ids.
    #[arg(required = true, num_args = 1..)]
    pub task_ids: Vec<String>,
    /// Reason, recorded as an `UNBLOCK: ...` comment.
    #[arg(long)]
    pub reason: Option<String>,
}

#[derive(Debug, Args)]
pub struct ScheduleArgs {
    /// Task id (t_xxxxxxxx).
    pub task_id: String,
    /// Reason / timing note (also added as a `SCHEDULED: ...` comment).
    pub reason: Vec<String>,
    /// More task ids to schedule with the same reason.
    #[arg(long, num_args = 1..)]
    pub ids: Vec<String>,
}

#[derive(Debug, Args)]
pub struct PromoteArgs {
    /// Task id (t_xxxxxxxx).
    pub task_id: String,
    /// Audit-trail reason recorded on the event.
    pub reason: Vec<String>,
    /// More task ids to promote with the same reason.
    #[arg(long, num_args = 1..)]
    pub ids: Vec<String>,
    /// Promote even when parents are not done/archived.
    #[arg(long)]
    pub force: bool,
    /// Check the promotion without changing anything.
    #[arg(long)]
    pub dry_run: bool,
    /// Print a JSON object (a list for several ids).
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct ArchiveArgs {
    /// Task ids to archive.
    pub task_ids: Vec<String>,
    /// Permanently delete these already-archived task ids.
    #[arg(long = "rm", value_name = "ID", num_args = 1..)]
    pub purge_ids: Vec<String>,
}

#[derive(Debug, Args)]
pub struct JsonArgs {
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct RunsArgs {
    /// Task id (t_xxxxxxxx).
    pub task_id: String,
    /// Print a JSON array of runs.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub runs: RunFilter,
}

#[derive(Debug, Args)]
pub struct OptTaskIdArg {
    /// Task id (t_xxxxxxxx); inside a worker, defaults to its own task.
    pub task_id: Option<String>,
}

#[derive(Debug, Args)]
pub struct ClaimArgs {
    /// Task id (t_xxxxxxxx).
    pub task_id: String,
    /// Claim time-to-live in seconds.
    #[arg(long, default_value_t = CLAIM_TTL_SECONDS, allow_negative_numbers = true, value_parser = clap::value_parser!(i64).range(1..))]
    pub ttl: i64,
}

#[derive(Debug, Args)]
pub struct HeartbeatArgs {
    /// Task id (t_xxxxxxxx); inside a worker, defaults to its own task.
    pub task_id: Option<String>,
    /// Short note attached to the heartbeat event.
    #[arg(long)]
    pub note: Option<String>,
}

#[derive(Debug, Args)]
pub struct LogArgs {
    /// Task id (t_xxxxxxxx).
    pub task_id: String,
    /// Only print the last N bytes (default: the last 256 KiB).
    #[arg(long, value_name = "BYTES", allow_negative_numbers = true)]
    pub tail: Option<u64>,
    /// Print the whole log.
    #[arg(long, conflicts_with = "tail")]
    pub all: bool,
}

#[derive(Debug, Args)]
pub struct FollowBound {
    /// Poll interval in seconds.
    #[arg(long, value_name = "SECONDS", allow_negative_numbers = true)]
    pub interval: Option<f64>,
    /// Stop after this many seconds (for scripts); default: until Ctrl-C.
    #[arg(long, value_name = "SECONDS", allow_negative_numbers = true)]
    pub timeout: Option<f64>,
    /// Print what is there now and exit without following.
    #[arg(long)]
    pub once: bool,
}

#[derive(Debug, Args)]
pub struct TailArgs {
    /// Task id (t_xxxxxxxx).
    pub task_id: String,
    #[command(flatten)]
    pub follow: FollowBound,
}

#[derive(Debug, Args)]
pub struct WatchArgs {
    /// Only events of tasks assigned to this profile.
    #[arg(long)]
    pub assignee: Option<String>,
    /// Only events of tasks in this tenant.
    #[arg(long)]
    pub tenant: Option<String>,
    /// Comma-separated event kinds, e.g. completed,blocked,gave_up.
    #[arg(long)]
    pub kinds: Option<String>,
    #[command(flatten)]
    pub follow: FollowBound,
}

#[derive(Debug, Args)]
pub struct GcArgs {
    /// Delete events older than N days of done/archived tasks.
    #[arg(long, value_name = "DAYS", default_value_t = GC_EVENT_RETENTION_DAYS, allow_negative_numbers = true,
          value_parser = clap::value_parser!(i64).range(0..))]
    pub event_retention_days: i64,
    /// Delete worker log files older than N days.
    #[arg(long, value_name = "DAYS", default_value_t = GC_LOG_RETENTION_DAYS, allow_negative_numbers = true,
          value_parser = clap::value_parser!(i64).range(0..))]
    pub log_retention_days: i64,
}

#[derive(Debug, Args)]
pub struct NotifySubscribeArgs {
    /// Task id (t_xxxxxxxx).
    pub task_id: String,
    /// Platform name (telegram, discord, slack, ...).
    #[arg(long)]
    pub platform: String,
    /// Chat / channel id on that platform.
    #[arg(long)]
    pub chat_id: String,
    /// Thread id inside the chat.
    #[arg(long)]
    pub thread_id: Option<String>,
    /// User to mention.
    #[arg(long)]
    pub user_id: Option<String>,
    /// Profile whose gateway delivers it (default: $HERMES_PROFILE or `user`).
    #[arg(long)]
    pub notifier_profile: Option<String>,
}

#[derive(Debug, Args)]
pub struct NotifyListArgs {
    /// Only this task's subscriptions.
    pub task_id: Option<String>,
    /// Print a JSON array.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct NotifyUnsubscribeArgs {
    /// Task id (t_xxxxxxxx).
    pub task_id: String,
    /// Platform of the subscription.
    #[arg(long)]
    pub platform: String,
    /// Chat / channel id of the subscription.
    #[arg(long)]
    pub chat_id: String,
    /// Thread id of the subscription (omit for none).
    #[arg(long)]
    pub thread_id: Option<String>,
}

impl Command {
    /// Verbs that print and exit (as opposed to servers and loops).
    pub fn is_one_shot(&self) -> bool {
        !matches!(
            self,
            Command::Gateway(_) | Command::Mcp | Command::Daemon(_) | Command::WorkerExec(_)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }
}
