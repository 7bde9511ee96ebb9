//! The SQLite backend: Hermes 0.19.0 schema, pragmas and semantics, so the
//! Python implementation can work on the same file at the same time.
//!
//! Layout of this module:
//! - `schema`: SQL text of the reference schema and our `kanban_rs_*` extras;
//! - `open`: file modes, init lock, header/integrity checks, migrations;
//! - `txn`: the `BEGIN IMMEDIATE` write transaction and the row/event/run
//!   helpers every state change is built from (`pub(crate)`, for the
//!   dispatcher too);
//! - `row`: row → domain struct mapping;
//! - `tasks`: create/read/list/edit/assign/links/comments/events/runs;
//! - `claim`: claim (compare-and-swap + ceilings) and heartbeat;
//! - `lifecycle`: complete, block, unblock, schedule, promote, reclaim,
//!   archive, delete (re-exports `claim` and `recompute` items);
//! - `recompute`: set-based dependency promotion;
//! - `direct`: the dashboard's direct status move, hand-claim workspace;
//! - `runs`: run/attachment lookups by id, recent work, board card facts,
//!   attachment rows;
//! - `board`: stats, assignee counts, notify subscriptions, gc.
//! - `activity`: the Activity view's aggregates of the event log and runs.
//!
//! No rusqlite type appears in a public signature.

mod activity;
mod batch;
mod board;
mod busy;
mod claim;
mod corrupt;
mod diagnostics;
mod direct;
mod dispatch;
pub(crate) mod dispatch_lock;
mod dump;
pub(crate) mod host_loads;
mod lifecycle;
mod migrate;
mod notify_claim;
pub(crate) mod open;
pub mod poke;
pub(crate) mod recompute;
mod review;
pub(crate) mod row;
mod runs;
pub(crate) mod schema;
mod task_lanes;
mod task_rows;
mod tasks;
mod triage;
pub(crate) mod txn;
mod wal_trim;
pub mod watch;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use std::collections::HashMap;

use kanban_core::context::RecentWork;
use kanban_core::{Attachment, Comment, Event, NotifySub, Run, Status, Task};
use rusqlite::Connection;

use crate::dispatch_ops::{DispatchStore, Regate};
use crate::params::*;
use crate::triage::{DecomposeRequest, Decomposed, Specified, SpecifyRequest};
use crate::{Clock, Result, Store};

/// Options for opening a board database.
#[derive(Debug, Clone, Default)]
pub struct OpenOptions {
    /// Create the file (and parent directory) when missing.
    pub create: bool,
    /// Busy timeout in milliseconds (`None` or 0: the default). Adapters
    /// pass `HERMES_KANBAN_BUSY_TIMEOUT_MS` here; the store reads no
    /// environment.
    pub busy_timeout_ms: Option<u64>,
}

impl OpenOptions {
    /// Open, creating the board when it does not exist yet.
    pub fn create() -> Self {
        OpenOptions {
            create: true,
            ..Default::default()
        }
    }
}

/// A board stored in one SQLite file. Cheap to share between threads
/// (`Send + Sync`); it holds one connection behind a mutex, so open one
/// store per thread when threads must write concurrently.
pub struct SqliteStore {
    path: PathBuf,
    /// Busy timeout of this store's connections (ms), for its change probe.
    busy_timeout_ms: u64,
    conn: Mutex<Connection>,
    clock: Arc<dyn Clock>,
    /// The host part of this process's claim locks (the host id or name).
    local_host: String,
    /// Tells a running gateway about each commit (see [`poke`]).
    poker: poke::Poker,
}

/// A store that goes away empties an oversized WAL (see [`wal_trim`]).
impl Drop for SqliteStore {
    fn drop(&mut self) {
        let bound = match self.poker.gateway_heard() {
            Some(false) => wal_trim::WAL_TRIM_ALONE_BYTES,
            _ => wal_trim::WAL_TRIM_BYTES,
        };
        if let Ok(conn) = self.conn.get_mut() {
            wal_trim::trim_wal(conn, &self.path, bound);
        }
    }
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl SqliteStore {
    /// Open the board at `path`: refuses a non-SQLite or corrupt file
    /// (backing the corrupt one up first), creates a missing one when
    /// `opts.create`, and migrates a board not yet migrated by this version.
    pub fn open(path: &Path, opts: OpenOptions, clock: Arc<dyn Clock>) -> Result<SqliteStore> {
        let conn = open::open_board(path, &opts, clock.now())?;
        Ok(SqliteStore {
            path: path.to_path_buf(),
            busy_timeout_ms: open::busy_timeout_ms(&opts),
            conn: Mutex::new(conn),
            clock,
            local_host: crate::host_identity::hostname(),
            poker: poke::Poker::new(path),
        })
    }

    /// Name this process's host as `host` (its `KANBAN_HOST_ID`) rather
    /// than by the host name.
    pub fn with_local_host(mut self, host: String) -> SqliteStore {
        self.local_host = host;
        self
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Store for SqliteStore {
    fn backend(&self) -> &'static str {
        "sqlite"
    }

    fn location(&self) -> String {
        self.path.display().to_string()
    }

    fn create_task(&self, req: &NewTask) -> Result<Created> {
        self.write(|tx| tasks::create(tx, req))
    }

    fn create_task_batch(&self, req: &crate::NewTaskBatch) -> Result<crate::BatchCreated> {
        self.write(|tx| batch::create_batch(tx, req))
    }

    fn get_task(&self, id: &str) -> Result<Option<Task>> {
        self.read(|c| txn::load_task(c, id))
    }

    fn list_tasks(&self, query: &TaskQuery) -> Result<Vec<Task>> {
        self.read(|c| tasks::list(c, query))
    }

    fn list_task_lines(&self, query: &TaskQuery) -> Result<Vec<TaskLine>> {
        self.read(|c| tasks::list_lines(c, query))
    }

    fn for_each_task_line(
        &self,
        query: &TaskQuery,
        visit: &mut dyn FnMut(TaskLineRef<'_>) -> bool,
    ) -> Result<()> {
        self.read(|c| tasks::visit_lines(c, query, visit))
    }

    fn for_each_task(
        &self,
        query: &TaskQuery,
        visit: &mut dyn FnMut(TaskRow<'_>) -> bool,
    ) -> Result<()> {
        self.read(|c| task_rows::visit_tasks(c, query, visit))
    }

    fn reads_block_writes(&self) -> bool {
        let mode =
            self.read(|c| Ok(c.query_row("PRAGMA journal_mode", [], |r| r.get::<_, String>(0))?));
        !mode.is_ok_and(|m| m.eq_ignore_ascii_case("wal"))
    }

    fn render_tasks(
        &self,
        query: &TaskQuery,
        render: &TaskRenderer<'_>,
        emit: &mut dyn FnMut(&[u8]) -> bool,
    ) -> Result<()> {
        if self.read(|c| task_lanes::worth_lanes(c, query))?
            && task_lanes::render_in_lanes(&self.path, self.busy_timeout_ms, query, render, emit)
                .map_err(|e| self.classify(e))?
        {
            return Ok(());
        }
        crate::render_tasks_here(self, query, render, emit)
    }

    fn parents_of(&self, id: &str) -> Result<Vec<String>> {
        self.read(|c| tasks::linked(c, id, tasks::Direction::Parents))
    }

    fn children_of(&self, id: &str) -> Result<Vec<String>> {
        self.read(|c| tasks::linked(c, id, tasks::Direction::Children))
    }

    fn edit_task(&self, req: &EditTask) -> Result<Task> {
        let req = &req.redacted();
        self.write(|tx| tasks::edit(tx, req))
    }

    fn reassign_task(&self, req: &AssignTask) -> Result<Reassigned> {
        self.write(|tx| tasks::assign(tx, req, &self.local_host))
    }

    fn link_tasks(&self, parent_id: &str, child_id: &str) -> Result<()> {
        self.write(|tx| tasks::link(tx, parent_id, child_id))
    }

    fn unlink_tasks(&self, parent_id: &str, child_id: &str) -> Result<bool> {
        self.write(|tx| tasks::unlink(tx, parent_id, child_id))
    }

    fn add_comment(&self, task_id: &str, author: &str, body: &str) -> Result<Comment> {
        let body = &crate::redaction::comment_body(body);
        self.write(|tx| tasks::add_comment(tx, task_id, author, body))
    }

    fn comments(&self, task_id: &str) -> Result<Vec<Comment>> {
        self.read(|c| tasks::comments(c, task_id))
    }

    fn events(&self, query: &EventQuery) -> Result<Vec<Event>> {
        self.read(|c| tasks::events(c, query))
    }

    fn latest_event_id(&self) -> Result<i64> {
        self.read(tasks::latest_event_id)
    }

    fn diagnostic_histories(
        &self,
        task_ids: Option<&[String]>,
    ) -> Result<Vec<kanban_core::diagnostics::TaskHistory>> {
        self.read_snapshot(|c| diagnostics::diagnostic_histories(c, task_ids))
    }

    fn tasks_with_events_after(&self, after_id: i64) -> Result<Vec<String>> {
        self.read(|c| diagnostics::tasks_with_events_after(c, after_id))
    }

    fn runs(&self, task_id: &str) -> Result<Vec<Run>> {
        self.read(|c| tasks::runs(c, task_id))
    }

    fn get_run(&self, run_id: i64) -> Result<Option<Run>> {
        self.read(|c| runs::get_run(c, run_id))
    }

    fn recent_completed_runs(
        &self,
        profile: &str,
        exclude_task: Option<&str>,
        limit: usize,
    ) -> Result<Vec<RecentWork>> {
        self.read(|c| runs::recent_completed_runs(c, profile, exclude_task, limit))
    }

    fn card_facts(&self, summary_chars: Option<usize>) -> Result<HashMap<String, CardFacts>> {
        self.read_snapshot(|c| runs::card_facts(c, summary_chars))
    }

    fn attachments(&self, task_id: &str) -> Result<Vec<Attachment>> {
        self.read(|c| runs::attachments(c, task_id))
    }

    fn get_attachment(&self, id: i64) -> Result<Option<Attachment>> {
        self.read(|c| runs::get_attachment(c, id))
    }

    fn add_attachment(&self, req: &NewAttachment) -> Result<Attachment> {
        self.write(|tx| runs::add_attachment(tx, req))
    }

    fn remove_attachment(&self, id: i64) -> Result<Option<Attachment>> {
        self.write(|tx| runs::remove_attachment(tx, id))
    }

    // The Hermes layout: blobs and logs are the files, on the board's host.
    fn attachment_blob(&self, _id: i64) -> Result<Option<Vec<u8>>> {
        Ok(None)
    }

    fn keeps_worker_logs(&self) -> bool {
        false
    }

    fn append_worker_log(&self, _req: &crate::board_files::WorkerLogAppend) -> Result<()> {
        Ok(())
    }

    fn worker_log(
        &self,
        _task_id: &str,
        _range: crate::board_files::LogRange,
    ) -> Result<Option<crate::board_files::LogSlice>> {
        Ok(None)
    }

    fn claim_task(&self, req: &ClaimRequest) -> Result<ClaimOutcome> {
        self.write(|tx| lifecycle::claim(tx, req))
    }

    fn heartbeat(&self, req: &HeartbeatRequest) -> Result<()> {
        self.write(|tx| lifecycle::heartbeat(tx, req))
    }

    fn complete_task(&self, req: &CompleteRequest) -> Result<Completion> {
        let req = &req.redacted();
        self.write(|tx| lifecycle::complete(tx, req))?.into_result()
    }

    fn block_task(&self, req: &BlockRequest) -> Result<Transitioned> {
        let req = &req.redacted();
        self.write(|tx| lifecycle::block(tx, req))
    }

    fn unblock_task(&self, task_id: &str, reason: Option<&str>) -> Result<Transitioned> {
        self.write(|tx| lifecycle::unblock(tx, task_id, reason))
    }

    fn schedule_task(&self, task_id: &str, reason: Option<&str>) -> Result<Transitioned> {
        self.write(|tx| lifecycle::schedule(tx, task_id, reason))
    }

    fn promote_task(&self, req: &PromoteRequest) -> Result<Transitioned> {
        self.write(|tx| lifecycle::promote(tx, req))
    }

    fn reclaim_task(&self, task_id: &str, reason: Option<&str>) -> Result<Transitioned> {
        self.write(|tx| lifecycle::reclaim(tx, task_id, reason, &self.local_host))
    }

    fn archive_task(&self, task_id: &str) -> Result<Transitioned> {
        self.write(|tx| lifecycle::archive(tx, task_id))
    }

    fn set_status_direct(&self, task_id: &str, status: Status) -> Result<Transitioned> {
        self.write(|tx| direct::set_status_direct(tx, task_id, status))
    }

    fn request_review(&self, req: &crate::ReviewRequest) -> Result<Transitioned> {
        let req = &req.redacted();
        self.write(|tx| review::request_review(tx, req))
    }

    fn request_changes(&self, req: &crate::ChangesRequest) -> Result<Transitioned> {
        let req = &req.redacted();
        self.write(|tx| review::request_changes(tx, req))
    }

    fn reopen_review(&self, task_id: &str, reason: Option<&str>) -> Result<Transitioned> {
        self.write(|tx| review::reopen_review(tx, task_id, reason))
    }

    fn approve_review(&self, task_id: &str, summary: Option<&str>) -> Result<Transitioned> {
        self.write(|tx| review::approve_review(tx, task_id, summary))
    }

    fn specify_triage_task(&self, req: &SpecifyRequest) -> Result<Specified> {
        self.write(|tx| triage::specify(tx, req))
    }

    fn decompose_triage_task(&self, req: &DecomposeRequest) -> Result<Decomposed> {
        self.write(|tx| triage::decompose(tx, req))
    }

    fn set_task_workspace(&self, task_id: &str, path: &str, branch: Option<&str>) -> Result<Task> {
        self.write(|tx| direct::set_task_workspace(tx, task_id, path, branch))
    }

    fn delete_task(&self, task_id: &str, require_archived: bool) -> Result<()> {
        self.write(|tx| lifecycle::delete(tx, task_id, require_archived))
    }

    fn recompute_ready(&self, failure_limit: Option<i64>) -> Result<usize> {
        Ok(DispatchStore::regate(self, &Regate::whole_board(failure_limit))?.promoted)
    }

    fn stats(&self) -> Result<BoardStats> {
        let now = self.now();
        self.read_snapshot(|c| board::stats(c, now))
    }

    fn assignee_counts(&self) -> Result<Vec<(String, String, i64)>> {
        self.read(board::assignee_counts)
    }

    fn notify_subscribe(&self, sub: &NewNotifySub) -> Result<bool> {
        self.write(|tx| board::notify_subscribe(tx, sub))
    }

    fn notify_list(&self, task_id: Option<&str>) -> Result<Vec<NotifySub>> {
        self.read(|c| board::notify_list(c, task_id))
    }

    fn notify_unsubscribe(&self, key: &NotifyKey) -> Result<bool> {
        self.write(|tx| board::notify_unsubscribe(tx, key))
    }

    fn gc_events(&self, older_than: i64) -> Result<usize> {
        self.write(|tx| board::gc_events(tx, older_than))
    }
}

#[cfg(test)]
mod tests;
