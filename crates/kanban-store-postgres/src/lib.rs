//! The PostgreSQL backend of the kanban store: one board shared by
//! gateways, CLIs and workers on several hosts.
//!
//! A board is a PostgreSQL schema (`kanban_<board>`) with the Hermes
//! tables column for column (see `schema`), so boards copy between SQLite
//! and PostgreSQL row for row. The SQL mirrors the SQLite backend module
//! by module; what differs is how concurrency is kept (see `db`): every
//! write transaction takes the board's advisory lock first, so writes
//! commit one at a time across hosts, which keeps ceilings, idempotency
//! keys and event order exactly as on SQLite.
//!
//! Layout:
//! - `connect`: URL → dedicated connections with the board's `search_path`;
//! - `pool`: one connection pool per database, shared by its boards;
//! - `conn`: a connection with its per-board statement cache;
//! - `schema`: DDL and the versioned migrations;
//! - `db`: read / snapshot / write transactions on a pooled connection, errors;
//! - `txn`: the row/event/run helpers of a write transaction;
//! - `row`: row → domain struct mapping;
//! - `tasks`, `runs`, `board`, `direct`: task CRUD, runs, attachments,
//!   board-wide reads, the dashboard's direct moves;
//! - `board_files`: attachment blobs and worker logs kept for other hosts;
//! - `activity`: the Activity view's aggregates of the event log and runs;
//! - `claim`, `lifecycle`, `recompute`: claims, transitions, promotion;
//! - `dispatch*`, `notify_claim`: the dispatcher's and notifier's stores;
//! - `catalogue`: which boards the database holds, with their metadata;
//! - `lock`: the dispatch lock (a session advisory lock);
//! - `watch`: the change probe (the board's version row).
//!
//! Use it through `kanban_store::backend`: call [`register`] once at
//! start-up, then `open_board` opens `postgres://` locations.

mod activity;
mod batch;
mod board;
mod board_files;
mod catalogue;
mod claim;
mod conn;
mod connect;
mod db;
mod diagnostics;
mod direct;
mod dispatch;
mod dispatch_batch;
mod dispatch_bulk;
mod dispatch_guard;
mod dispatch_recovery;
mod dump;
mod ended_runs;
mod hosts;
mod lifecycle;
mod lock;
mod notify_claim;
mod pool;
mod recompute;
mod review;
mod row;
mod runs;
mod schema;
mod task_rows;
mod tasks;
mod triage;
mod txn;
pub mod watch;

use std::collections::HashMap;
use std::sync::Arc;

use kanban_core::context::RecentWork;
use kanban_core::{Attachment, Comment, Event, NotifySub, Run, Status, Task};
use kanban_store::backend::{
    BackendOpener, BoardLocation, BoardStore, HostLoad, OpenRequest, PoolStatus, PostgresLocation,
    register_postgres_backend,
};
use kanban_store::dispatch_ops::{DispatchStore, Regate};
use kanban_store::params::*;
use kanban_store::watch::ChangeProbe;
use kanban_store::{BackendError, Clock, Result, Store, StoreError};

use crate::connect::Connector;

pub use crate::pool::{DEFAULT_POOL_SIZE, POOL_APPLICATION_NAME};
pub use crate::schema::SCHEMA_VERSION;

/// Make `postgres://` board locations openable through
/// `kanban_store::backend::open_board` in this process.
pub fn register() {
    register_postgres_backend(Box::new(PostgresOpener));
}

struct PostgresOpener;

impl BackendOpener for PostgresOpener {
    fn open(&self, location: &PostgresLocation, req: &OpenRequest) -> Result<Arc<dyn BoardStore>> {
        Ok(Arc::new(PgStore::open(location, req)?))
    }

    fn catalogue(
        &self,
        location: &PostgresLocation,
        req: &OpenRequest,
    ) -> Result<Box<dyn kanban_store::backend::BoardCatalogue>> {
        Ok(Box::new(catalogue::PgCatalogue::new(location, req)?))
    }
}

/// One board in a PostgreSQL database. `Send + Sync`: each call borrows a
/// connection from the database's pool (shared with every other board of
/// that database in this process), so threads sharing one store work
/// concurrently.
pub struct PgStore {
    connector: Arc<Connector>,
    schema: schema::BoardSchema,
    pool: Arc<pool::Pool>,
    clock: Arc<dyn Clock>,
    /// The host part of this process's claim locks (the host id or name).
    local_host: String,
}

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgStore")
            .field("location", &self.connector.redacted())
            .finish_non_exhaustive()
    }
}

impl PgStore {
    /// Open the board at `location`: with `req.create`, creates its schema
    /// and applies every pending migration (safe from several hosts at
    /// once); otherwise a board that does not exist is an error naming
    /// `kanban init`. A board migrated by a newer version is refused.
    pub fn open(location: &PostgresLocation, req: &OpenRequest) -> Result<PgStore> {
        let redacted = BoardLocation::Postgres(location.clone()).redacted();
        let connector = Arc::new(Connector::new(location, redacted)?);
        let pool = pool::shared(location.connection_url(), connector.config(), req.pool_size);
        let store = PgStore {
            schema: connector.schema().clone(),
            connector,
            pool,
            clock: req.clock.clone(),
            local_host: req.local_host_or_hostname(),
        };
        let applied = store.with_conn(|conn| schema::applied_version(conn, &store.schema))?;
        if applied > SCHEMA_VERSION {
            return Err(StoreError::Backend(BackendError::msg(format!(
                "{}: board schema version {applied} is newer than this kanban knows \
                 ({SCHEMA_VERSION}); upgrade kanban",
                store.connector.redacted()
            ))));
        }
        if applied == 0 && !req.create {
            return Err(StoreError::Backend(BackendError::msg(format!(
                "{}: no such board; create it with `kanban init`",
                store.connector.redacted()
            ))));
        }
        if applied < SCHEMA_VERSION {
            // The migration lock is a session lock: on a connection of its
            // own, never one the pool lends on.
            let mut conn = store.connector.connect().map_err(|e| store.classify(e))?;
            schema::migrate(&mut conn, &store.schema, store.clock.now())
                .map_err(|e| store.classify(e))?;
            if applied == 0 {
                // A new board: the database's catalogue lists it from now on.
                catalogue::register_board(
                    &mut conn,
                    store.schema.board(),
                    store.connector.redacted(),
                )
                .map_err(|e| store.classify(e))?;
            }
        }
        Ok(store)
    }

    /// The board's name.
    pub fn board(&self) -> &str {
        self.schema.board()
    }

    /// A change probe with a connection of its own.
    pub fn change_probe(&self) -> Result<watch::PgChangeProbe> {
        watch::PgChangeProbe::open(&self.connector)
    }
}

impl BoardStore for PgStore {
    fn open_change_probe(&self) -> Result<Box<dyn ChangeProbe>> {
        Ok(Box::new(self.change_probe()?))
    }

    fn dump_board(&self) -> Result<kanban_store::dump::BoardDump> {
        self.dump_all()
    }

    fn load_board(&self, dump: &kanban_store::dump::BoardDump) -> Result<()> {
        self.load_all(dump)
    }

    fn host_loads(&self) -> Result<Vec<HostLoad>> {
        self.read(hosts::host_loads)
    }

    fn pool_status(&self) -> Option<PoolStatus> {
        Some(self.pool.status())
    }
}

impl Store for PgStore {
    fn backend(&self) -> &'static str {
        "postgres"
    }

    fn location(&self) -> String {
        self.connector.redacted().to_string()
    }

    fn create_task(&self, req: &NewTask) -> Result<Created> {
        self.write(|tx| tasks::create(tx, req))
    }

    fn create_task_batch(
        &self,
        req: &kanban_store::NewTaskBatch,
    ) -> Result<kanban_store::BatchCreated> {
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
        let body = &kanban_store::redaction::comment_body(body);
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

    fn attachment_blob(&self, id: i64) -> Result<Option<Vec<u8>>> {
        self.read(|c| board_files::blob(c, id))
    }

    fn keeps_worker_logs(&self) -> bool {
        true
    }

    fn append_worker_log(&self, req: &kanban_store::board_files::WorkerLogAppend) -> Result<()> {
        self.read(|c| board_files::append_log(c, req))
    }

    fn worker_log(
        &self,
        task_id: &str,
        range: kanban_store::board_files::LogRange,
    ) -> Result<Option<kanban_store::board_files::LogSlice>> {
        self.read_snapshot(|c| board_files::read_log(c, task_id, range))
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

    fn request_review(&self, req: &kanban_store::ReviewRequest) -> Result<Transitioned> {
        let req = &req.redacted();
        self.write(|tx| review::request_review(tx, req))
    }

    fn request_changes(&self, req: &kanban_store::ChangesRequest) -> Result<Transitioned> {
        let req = &req.redacted();
        self.write(|tx| review::request_changes(tx, req))
    }

    fn reopen_review(&self, task_id: &str, reason: Option<&str>) -> Result<Transitioned> {
        self.write(|tx| review::reopen_review(tx, task_id, reason))
    }

    fn approve_review(&self, task_id: &str, summary: Option<&str>) -> Result<Transitioned> {
        self.write(|tx| review::approve_review(tx, task_id, summary))
    }

    fn specify_triage_task(
        &self,
        req: &kanban_store::SpecifyRequest,
    ) -> Result<kanban_store::Specified> {
        self.write(|tx| triage::specify(tx, req))
    }

    fn decompose_triage_task(
        &self,
        req: &kanban_store::DecomposeRequest,
    ) -> Result<kanban_store::Decomposed> {
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
