//! Durable storage of kanban boards behind the [`Store`] trait.
//!
//! Callers get a board from the factory in [`backend`] ([`backend::open_board`]
//! or a [`backend::BoardCatalogue`]), never by naming a backend type.
//!
//! `sqlite` is the Hermes-compatible backend: same file layout, schema,
//! pragmas and event vocabulary as the Python reference, so both can operate
//! on one board at once. No SQLite type appears in this crate's public API;
//! a PostgreSQL backend implements the same trait later.
//!
//! Every state-changing method runs in one write transaction that writes the
//! row(s) and the matching event(s) together, deciding transitions with
//! `kanban_core::transitions`.

pub mod activity;
pub mod attachments;
pub mod backend;
pub mod batch;
pub mod board_files;
pub mod clock;
pub mod diagnostics;
pub mod dispatch_ops;
pub mod dump;
pub mod error;
pub mod host_identity;
pub mod lockfile;
pub mod notify_ops;
pub mod params;
pub mod private_fs;
pub mod redaction;
pub mod review;
pub mod scratch;
pub mod sqlite;
pub mod task_row_cells;
pub mod triage;
pub mod watch;

pub use batch::{BatchComment, BatchCompletion, BatchCreated, BatchTask, NewTaskBatch};
pub use clock::{Clock, SystemClock};
pub use error::{BackendError, StoreError};
pub use params::*;
pub use review::{ChangesRequest, ReviewRequest};
pub use triage::{ChildCard, DecomposeRequest, Decomposed, Specified, SpecifyRequest};

use std::collections::HashMap;

use kanban_core::context::RecentWork;
use kanban_core::{Attachment, Comment, Event, NotifySub, Run, Status, Task};

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// [`Store::render_tasks`] on the calling thread: the default, and what a
/// backend falls back to when it cannot render on several.
pub fn render_tasks_here<S: Store + ?Sized>(
    store: &S,
    query: &TaskQuery,
    render: &TaskRenderer<'_>,
    emit: &mut dyn FnMut(&[u8]) -> bool,
) -> Result<()> {
    let mut buf = Vec::with_capacity(RENDER_PIECE_BYTES);
    let mut position = 0;
    let mut open = true;
    store.for_each_task(query, &mut |t| {
        render(position, &t, &mut buf);
        position += 1;
        if buf.len() >= RENDER_PIECE_BYTES {
            open = emit(&buf);
            buf.clear();
        }
        open
    })?;
    if open && !buf.is_empty() {
        emit(&buf);
    }
    Ok(())
}

/// Reading and editing one board. One implementation per backend.
///
/// # Concurrency contract
///
/// Many handles use one board at once: connections of this process, other
/// processes and hosts, and (on SQLite) the Python reference. Every backend
/// keeps these rules; the conformance suite (`kanban-store-conformance`)
/// checks each one with several handles on one board.
///
/// - **One transaction per state change.** A method that changes the board
///   writes its row(s), run and event(s) in one transaction: other handles
///   see all of it or nothing. An `Err` leaves the board as it was, except
///   the audit event `complete_task` records when it refuses phantom cards.
/// - **Claims are atomic with respect to every other claimer.**
///   `claim_task` decides, counts the ceilings and writes the claim as one
///   serializable step: of concurrent claimers exactly one wins a task, no
///   interleaving exceeds `max_running`, `max_in_progress` or a profile's
///   cap, and a task never has two open runs
///   (tests `claim_race_has_one_winner`, `ceilings_hold_under_concurrency`,
///   `claim_and_reclaim_race_keeps_one_open_run`).
/// - **Run-id fencing.** A run id (`expected_run_id`,
///   `HeartbeatRequest::run_id`) or claim lock in a request is compared with
///   the task's current attempt inside the write: once a reclaim, a
///   completion or a new claim has committed, the old attempt's calls fail
///   with [`StoreError::Stale`] (or `Refused`) and change nothing
///   (tests `run_fencing_decides_one_winner`,
///   `heartbeats_of_a_replaced_attempt_are_refused`).
/// - **Idempotency keys are race-free.** Creators racing with one key get
///   one task (tests `idempotency_race_creates_one_task`).
/// - **Event ids follow commit order.** Event ids increase, are never
///   reused (not even after a delete) and become visible in id order: once
///   a reader has seen id `n`, or `latest_event_id` returned `n`, no event
///   with a smaller id commits later, so a feed reading `after_id = n`
///   never skips one (tests `event_cursor_never_skips_a_commit`,
///   `latest_event_id_is_a_safe_start_cursor`).
/// - **A read is one snapshot.** A method that reads with several queries
///   (`card_facts`, `stats`, ...) answers from one
///   committed state of the board, never a mix of before and after a
///   concurrent commit (tests `card_facts_read_one_snapshot`,
///   `stats_read_one_snapshot`). Two calls are two snapshots. The default
///   bodies below compose several calls and do not keep this rule: a
///   backend overrides them.
/// - Reads never write, so an idle watcher costs no write transaction.
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
    /// Create several tasks with caller-chosen ids, their links, the
    /// completions and comments of the batch, in ONE transaction: all of
    /// it or nothing (the swarm graph). When the first task's idempotency
    /// key matches a live task, returns it and writes nothing.
    fn create_task_batch(&self, req: &NewTaskBatch) -> Result<BatchCreated>;
    fn get_task(&self, id: &str) -> Result<Option<Task>>;
    fn list_tasks(&self, query: &TaskQuery) -> Result<Vec<Task>>;
    /// The few columns of a `kanban list` line, for the same query. Backends
    /// read them without the rest of each row, so listing a 100k-task
    /// board stays within the CLI's time budget.
    fn list_task_lines(&self, query: &TaskQuery) -> Result<Vec<TaskLine>> {
        Ok(self.list_tasks(query)?.iter().map(TaskLine::from).collect())
    }
    /// Streams the lines of [`Store::list_task_lines`] to `visit` without
    /// collecting them; `visit` returns false to stop early.
    fn for_each_task_line(
        &self,
        query: &TaskQuery,
        visit: &mut dyn FnMut(TaskLineRef<'_>) -> bool,
    ) -> Result<()> {
        for line in self.list_task_lines(query)? {
            if !visit(line.as_ref_line()) {
                break;
            }
        }
        Ok(())
    }
    /// Streams the tasks of [`Store::list_tasks`] (same filters, same
    /// order, one snapshot) to `visit` one at a time, as [`TaskRow`]s
    /// borrowed from the backend's row buffer, without collecting them:
    /// memory stays flat as the board grows (`kanban list --json`).
    /// `visit` returns false to stop early.
    fn for_each_task(
        &self,
        query: &TaskQuery,
        visit: &mut dyn FnMut(TaskRow<'_>) -> bool,
    ) -> Result<()> {
        for task in self.list_tasks(query)? {
            if !visit(TaskRow::from(&task)) {
                break;
            }
        }
        Ok(())
    }
    /// The tasks of [`Store::list_tasks`] as text: `render` writes one task
    /// (and its position in the listing, 0 for the first) into a buffer,
    /// and `emit` receives the text in the query's order, in pieces; it
    /// returns false to stop. A backend may render on several threads at
    /// once from one snapshot (`kanban list --json` on a big board); this
    /// default renders here, streaming [`Store::for_each_task`].
    fn render_tasks(
        &self,
        query: &TaskQuery,
        render: &TaskRenderer<'_>,
        emit: &mut dyn FnMut(&[u8]) -> bool,
    ) -> Result<()> {
        render_tasks_here(self, query, render, emit)
    }
    /// Parent ids of a task (tasks it depends on).
    fn parents_of(&self, id: &str) -> Result<Vec<String>>;
    /// Child ids of a task (tasks that depend on it).
    fn children_of(&self, id: &str) -> Result<Vec<String>>;
    /// Title/body/priority/result edits; `edited` / `reprioritized` events.
    fn edit_task(&self, req: &EditTask) -> Result<Task>;
    /// Set or clear the assignee; refused while a worker holds the claim.
    /// With `reclaim_first` a running task is reclaimed first; use
    /// [`Store::reassign_task`] to learn which worker to end.
    fn assign_task(&self, req: &AssignTask) -> Result<Task> {
        Ok(self.reassign_task(req)?.task)
    }
    /// [`Store::assign_task`] that also returns the worker a
    /// `reclaim_first` detached (the caller ends its process group), in
    /// one transaction with the reclaim.
    fn reassign_task(&self, req: &AssignTask) -> Result<Reassigned>;
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
    /// One run by id. The default scans tasks; backends index it.
    fn get_run(&self, run_id: i64) -> Result<Option<Run>> {
        let tasks = self.list_tasks(&TaskQuery {
            include_archived: true,
            ..Default::default()
        })?;
        for t in tasks
            .iter()
            .filter(|t| t.started_at.is_some() || t.current_run_id.is_some())
        {
            if let Some(r) = self.runs(&t.id)?.into_iter().find(|r| r.id == run_id) {
                return Ok(Some(r));
            }
        }
        Ok(None)
    }
    /// The latest `completed` runs of `profile` on tasks other than
    /// `exclude_task`, newest first: the worker context's "Recent work by
    /// @assignee" (reference §5.3).
    fn recent_completed_runs(
        &self,
        profile: &str,
        exclude_task: Option<&str>,
        limit: usize,
    ) -> Result<Vec<RecentWork>> {
        let done = self.list_tasks(&TaskQuery {
            assignee: Some(profile.to_string()),
            status: Some(Status::Done),
            order: TaskOrder::Updated,
            ..Default::default()
        })?;
        let mut work = Vec::new();
        for t in done.iter().filter(|t| Some(t.id.as_str()) != exclude_task) {
            for r in self.runs(&t.id)? {
                if r.outcome.as_deref() == Some("completed")
                    && r.profile.as_deref() == Some(profile)
                {
                    work.push(RecentWork {
                        task_id: t.id.clone(),
                        title: t.title.clone(),
                        summary: r.summary.clone(),
                        ended_at: r.ended_at.unwrap_or(r.started_at),
                    });
                }
            }
        }
        work.sort_by_key(|w| std::cmp::Reverse(w.ended_at));
        work.truncate(limit);
        Ok(work)
    }
    /// Link/comment/progress counts and latest run summary (cut to
    /// `summary_chars` characters) of every task that has any, keyed by
    /// task id, in a few board-wide queries: the board view's card data
    /// without one query per task.
    fn card_facts(&self, summary_chars: Option<usize>) -> Result<HashMap<String, CardFacts>> {
        let tasks = self.list_tasks(&TaskQuery {
            include_archived: true,
            ..Default::default()
        })?;
        let status: HashMap<&str, Status> =
            tasks.iter().map(|t| (t.id.as_str(), t.status)).collect();
        let mut out = HashMap::new();
        for t in &tasks {
            let children = self.children_of(&t.id)?;
            let runs = self.runs(&t.id)?;
            let latest = runs
                .iter()
                .filter(|r| r.summary.as_deref().is_some_and(|s| !s.is_empty()))
                .max_by_key(|r| (r.ended_at.unwrap_or(r.started_at), r.id))
                .and_then(|r| r.summary.as_deref())
                .map(|s| match summary_chars {
                    Some(n) => s.chars().take(n).collect(),
                    None => s.to_string(),
                });
            out.insert(
                t.id.clone(),
                CardFacts {
                    parents: self.parents_of(&t.id)?.len() as i64,
                    children_done: children
                        .iter()
                        .filter(|c| status.get(c.as_str()) == Some(&Status::Done))
                        .count() as i64,
                    children: children.len() as i64,
                    comments: self.comments(&t.id)?.len() as i64,
                    latest_summary: latest,
                },
            );
        }
        Ok(out)
    }

    // ---- diagnostics (see `diagnostics::DiagnosticsIndex`) ---------------
    /// The history the diagnostic rules read, one entry per task that has
    /// any: events of `diagnostics::fact_event_kinds` (payload only for
    /// `payload_event_kinds`, else null) and runs ended with an outcome of
    /// `fact_run_outcomes` (error cut to a little over
    /// `ERROR_SNIPPET_CHARS`, only for crashes), oldest first. For the
    /// given tasks, or every non-archived task when `None`. One snapshot.
    fn diagnostic_histories(
        &self,
        task_ids: Option<&[String]>,
    ) -> Result<Vec<kanban_core::diagnostics::TaskHistory>> {
        use kanban_core::diagnostics as kd;
        let ids: Vec<String> = match task_ids {
            Some(ids) => ids.to_vec(),
            None => self
                .list_tasks(&TaskQuery::default())?
                .into_iter()
                .map(|t| t.id)
                .collect(),
        };
        let kinds: Vec<String> = kd::fact_event_kinds()
            .iter()
            .map(|k| k.to_string())
            .collect();
        let mut out = Vec::new();
        for id in ids {
            let mut events = self.events(&EventQuery {
                task_id: Some(id.clone()),
                kinds: Some(kinds.clone()),
                ..Default::default()
            })?;
            for e in &mut events {
                if !kd::payload_event_kinds().contains(&e.kind.as_str()) {
                    e.payload = serde_json::Value::Null;
                }
            }
            let runs: Vec<kd::RunSummary> = self
                .runs(&id)?
                .into_iter()
                .filter(|r| {
                    r.outcome
                        .as_deref()
                        .is_some_and(|o| kd::fact_run_outcomes().contains(&o))
                })
                .map(|r| kd::RunSummary {
                    id: r.id,
                    error: r
                        .error
                        .filter(|_| r.outcome.as_deref() == Some("crashed"))
                        .map(|e| e.chars().take(kd::ERROR_SNIPPET_CHARS + 1).collect()),
                    outcome: r.outcome,
                })
                .collect();
            if !events.is_empty() || !runs.is_empty() {
                out.push(kd::TaskHistory {
                    task_id: id,
                    events,
                    runs,
                });
            }
        }
        Ok(out)
    }
    /// Ids of the tasks with an event whose id is above `after_id`, each once.
    fn tasks_with_events_after(&self, after_id: i64) -> Result<Vec<String>> {
        let mut ids: Vec<String> = self
            .events(&EventQuery {
                after_id: Some(after_id),
                ..Default::default()
            })?
            .into_iter()
            .map(|e| e.task_id)
            .collect();
        ids.sort();
        ids.dedup();
        Ok(ids)
    }

    // ---- attachments -----------------------------------------------------
    /// Attachments of a task, oldest first.
    fn attachments(&self, task_id: &str) -> Result<Vec<Attachment>>;
    fn get_attachment(&self, id: i64) -> Result<Option<Attachment>>;
    /// Record a blob the caller already wrote (row + `attached` event).
    fn add_attachment(&self, req: &NewAttachment) -> Result<Attachment>;
    /// Delete the row (+ `attachment_removed` event) and return it, so the
    /// caller removes the blob; `None` when there was no such attachment.
    fn remove_attachment(&self, id: i64) -> Result<Option<Attachment>>;

    // ---- copies kept in the board for other hosts (`board_files`) -------
    /// The content of attachment `id` when the board keeps blobs itself
    /// (a database shared by hosts: copied from `stored_path` by
    /// `add_attachment` and by a completion's kept artifacts, in their
    /// transaction, under `ATTACHMENT_MAX_BYTES`). `None` when the blob is
    /// only the file at `stored_path` (SQLite, the Hermes layout) or the
    /// attachment is unknown.
    fn attachment_blob(&self, id: i64) -> Result<Option<Vec<u8>>>;
    /// Whether worker logs should be copied into the board
    /// ([`Store::append_worker_log`]): true when hosts that do not share a
    /// disk share the board.
    fn keeps_worker_logs(&self) -> bool;
    /// Add a run's new log output (a no-op on a board that does not keep
    /// logs). Not a state change: no event, no change notification.
    fn append_worker_log(&self, req: &board_files::WorkerLogAppend) -> Result<()>;
    /// A window of the task's log as the board keeps it (the kept runs,
    /// oldest first); `None` when the board holds none for the task.
    fn worker_log(
        &self,
        task_id: &str,
        range: board_files::LogRange,
    ) -> Result<Option<board_files::LogSlice>>;

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
    /// The dashboard's drag-and-drop move to triage, todo, scheduled or
    /// ready (reference `_set_status_direct`): `ready` is refused while a
    /// parent is neither done nor archived (the refusal names them);
    /// `running` and the statuses with their own verb are invalid. Clears
    /// the claim, closes an open run as `reclaimed` (the caller ends the
    /// returned worker), demotes ready children when the task leaves
    /// done/archived; event `status{status}`.
    fn set_status_direct(&self, task_id: &str, status: Status) -> Result<Transitioned>;

    // ---- review flow (newer Hermes) --------------------------------------
    /// running/ready → review: closes the attempt as `review_requested`
    /// (or synthesizes one) with the summary and metadata, reassigns to
    /// the reviewer when one is named; event `review_requested`.
    fn request_review(&self, req: &ReviewRequest) -> Result<Transitioned>;
    /// The active reviewer's verdict: a running review attempt closes as
    /// `changes_requested`, the card goes back to its implementer (ready,
    /// or todo while a parent is open), no block-loop accounting; event
    /// `review_reopened{source: request_changes}`. The caller ends the
    /// returned worker.
    fn request_changes(&self, req: &ChangesRequest) -> Result<Transitioned>;
    /// review → ready/todo by an operator, back to the implementer; with a
    /// reason a zero-length `changes_requested` run keeps it; event
    /// `review_reopened{source: reopen_review}`.
    fn reopen_review(&self, task_id: &str, reason: Option<&str>) -> Result<Transitioned>;
    /// review → done by an operator's verdict (no reviewer on the card):
    /// a `completed` attempt keeps the verdict, event
    /// `completed{…, source: approve}`, children re-gated as on completion.
    fn approve_review(&self, task_id: &str, summary: Option<&str>) -> Result<Transitioned>;
    // ---- triage (reference §2.4) -----------------------------------------
    /// triage → todo with the specifier's title/body/assignee; `specified
    /// {changed_fields}` event, an audit comment by `author` when a field
    /// changed, then the card is re-gated (ready when nothing blocks it).
    /// Refused (nothing written) when the card is not in triage.
    fn specify_triage_task(&self, req: &SpecifyRequest) -> Result<Specified>;
    /// Create the children (sibling links by index, the root's tenant and
    /// workspace), make every child a parent of the root, move the root
    /// triage → todo (reassigned to `root_assignee`), `decomposed
    /// {child_ids,root_assignee}` event and audit comment, re-gate the
    /// children: one transaction, all or nothing.
    fn decompose_triage_task(&self, req: &DecomposeRequest) -> Result<Decomposed>;
    /// Record the workspace (absolute path, optional worktree branch) a
    /// hand claim (`kanban claim`) resolved for the task.
    fn set_task_workspace(&self, task_id: &str, path: &str, branch: Option<&str>) -> Result<Task>;
    /// Hard delete with cascade (links, comments, events, runs, subs,
    /// attachment rows). With `require_archived`, only archived tasks.
    fn delete_task(&self, task_id: &str, require_archived: bool) -> Result<()>;
    /// Promote todo (and non-sticky blocked) tasks whose parents are
    /// satisfied. Returns how many were promoted.
    fn recompute_ready(&self, failure_limit: Option<i64>) -> Result<usize>;
    /// Whether an open read stops a write from committing until it ends
    /// (a SQLite board without WAL). A caller then must not wait, with a
    /// read open, for a write of its own on another connection.
    fn reads_block_writes(&self) -> bool {
        false
    }

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
