//! Durable storage of kanban boards behind the [`Store`] trait.
//!
//! `sqlite` is the Hermes-compatible backend: same file layout, schema,
//! pragmas and event vocabulary as the Python reference, so both can operate
//! on one board at once. No SQLite type appears in this crate's public API;
//! a PostgreSQL backend implements the same trait later.
//!
//! Every state-changing method runs in one write transaction that writes the
//! row(s) and the matching event(s) together, deciding transitions with
//! `kanban_core::transitions`.

pub mod clock;
pub mod config;
pub mod dispatch_ops;
pub mod error;
pub mod layout;
pub mod params;
pub mod sqlite;
pub mod watch;

pub use clock::{Clock, SystemClock};
pub use error::StoreError;
pub use params::*;

use kanban_core::{Comment, Event, NotifySub, Run, Task};

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// Reading and editing one board. One implementation per backend.
pub trait Store: Send + Sync {
    /// Short backend name (`sqlite`, `postgres`).
    fn backend(&self) -> &'static str;
    /// Where the board lives, for messages (file path or redacted URL).
    fn location(&self) -> String;

    // ---- tasks -----------------------------------------------------------
    /// Create a task (with parent links, `created` event, and for
    /// `initial_status=blocked` a `blocked` event so the block sticks).
    /// With an idempotency key that matches a live task, returns that task
    /// with `existing = true` and writes nothing.
    fn create_task(&self, req: &NewTask) -> Result<Created>;
    fn get_task(&self, id: &str) -> Result<Option<Task>>;
    fn list_tasks(&self, query: &TaskQuery) -> Result<Vec<Task>>;
    /// The few columns of a `kanban list` line, for the same query. Backends
    /// read them without the rest of each row, so listing a 100k-task
    /// board stays within the CLI's time budget.
    fn list_task_lines(&self, query: &TaskQuery) -> Result<Vec<TaskLine>> {
        Ok(self.list_tasks(query)?.iter().map(TaskLine::from).collect())
    }
    /// Parent ids of a task (tasks it depends on).
    fn parents_of(&self, id: &str) -> Result<Vec<String>>;
    /// Child ids of a task (tasks that depend on it).
    fn children_of(&self, id: &str) -> Result<Vec<String>>;
    /// Title/body/priority/result edits; `edited` / `reprioritized` events.
    fn edit_task(&self, req: &EditTask) -> Result<Task>;
    /// Set or clear the assignee; refused while a worker holds the claim.
    fn assign_task(&self, req: &AssignTask) -> Result<Task>;
    fn link_tasks(&self, parent_id: &str, child_id: &str) -> Result<()>;
    /// Returns false when no such link existed.
    fn unlink_tasks(&self, parent_id: &str, child_id: &str) -> Result<bool>;
    fn add_comment(&self, task_id: &str, author: &str, body: &str) -> Result<Comment>;
    fn comments(&self, task_id: &str) -> Result<Vec<Comment>>;
    fn events(&self, query: &EventQuery) -> Result<Vec<Event>>;
    /// Highest event id on the board (0 when empty): the start cursor of feeds.
    fn latest_event_id(&self) -> Result<i64>;
    /// Runs of a task, oldest first.
    fn runs(&self, task_id: &str) -> Result<Vec<Run>>;

    // ---- lifecycle -------------------------------------------------------
    /// ready → running (or review → running), atomically: exactly one
    /// caller wins. Opens a run. Ceilings in the request are checked inside
    /// the same transaction.
    fn claim_task(&self, req: &ClaimRequest) -> Result<ClaimOutcome>;
    /// Extend the claim and record a heartbeat; with `run_id`/`claim_lock`
    /// only the matching attempt may heartbeat.
    fn heartbeat(&self, req: &HeartbeatRequest) -> Result<()>;
    fn complete_task(&self, req: &CompleteRequest) -> Result<Completion>;
    fn block_task(&self, req: &BlockRequest) -> Result<Transitioned>;
    fn unblock_task(&self, task_id: &str, reason: Option<&str>) -> Result<Transitioned>;
    fn schedule_task(&self, task_id: &str, reason: Option<&str>) -> Result<Transitioned>;
    fn promote_task(&self, req: &PromoteRequest) -> Result<Transitioned>;
    /// Operator reclaim: abort the claim, task back to ready, failure
    /// counter reset. The caller ends the returned worker.
    fn reclaim_task(&self, task_id: &str, reason: Option<&str>) -> Result<Transitioned>;
    fn archive_task(&self, task_id: &str) -> Result<Transitioned>;
    /// Hard delete with cascade (links, comments, events, runs, subs,
    /// attachment rows). With `require_archived`, only archived tasks.
    fn delete_task(&self, task_id: &str, require_archived: bool) -> Result<()>;
    /// Promote todo (and non-sticky blocked) tasks whose parents are
    /// satisfied. Returns how many were promoted.
    fn recompute_ready(&self, failure_limit: Option<i64>) -> Result<usize>;

    // ---- board-wide reads -----------------------------------------------
    fn stats(&self) -> Result<BoardStats>;
    /// (assignee, status, count) for every non-archived assigned task.
    fn assignee_counts(&self) -> Result<Vec<(String, String, i64)>>;

    // ---- notify subscriptions -------------------------------------------
    /// Returns false when the subscription already existed.
    fn notify_subscribe(&self, sub: &NewNotifySub) -> Result<bool>;
    fn notify_list(&self, task_id: Option<&str>) -> Result<Vec<NotifySub>>;
    fn notify_unsubscribe(&self, key: &NotifyKey) -> Result<bool>;

    // ---- maintenance -----------------------------------------------------
    /// Delete events older than `older_than` (unix seconds) of done/archived
    /// tasks. Returns the number deleted.
    fn gc_events(&self, older_than: i64) -> Result<usize>;
}
