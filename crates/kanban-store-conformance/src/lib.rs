//! The conformance suite of the kanban store traits: every behaviour and
//! concurrency rule a backend must keep, written once against `&dyn`
//! [`Store`], [`NotifyStore`] and [`DispatchStore`], plus a model-based
//! property test of the task state machine.
//!
//! A backend runs all of it by adding ONE test file that names how to open
//! its boards:
//!
//! ```text
//! kanban_store_conformance::store_conformance_tests!(
//!     // A new handle (connection) to the board of `place`, created empty
//!     // on first open.
//!     open = |place| Box::new(MyStore::open(place).expect("open board")),
//!     // A change probe of that (already opened) board.
//!     probe = |place| Box::new(MyStore::probe(place).expect("probe")),
//! );
//! ```
//!
//! Every test gets a fresh [`TestBoard`] (a temporary directory and a
//! unique name a server backend can use as its database or schema name)
//! and may open it several times, from several threads. The opener hands
//! out a [`SuiteStore`]: one object with every capability trait, so tests
//! of a trait added to the suite later run on every backend without any
//! change to the backends' test files.
//!
//! This crate is a dev-dependency only (`publish = false`); it must not
//! depend on any backend.

pub mod activity;
pub mod board_files;
pub mod concurrency;
pub mod dashboard;
pub mod diagnostics;
pub mod dispatch;
pub mod dispatch_batch;
pub mod dispatch_quiet;
pub mod dispatch_races;
pub mod dispatch_recovery;
pub mod feeds;
pub mod hosts;
pub mod lifecycle;
pub mod model;
pub mod notify;
pub mod rendering;
pub mod review;
pub mod review_release;
pub mod streaming;
pub mod support;
pub mod swarm;
pub mod tasks;
pub mod triage;

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use kanban_store::Store;
use kanban_store::backend::BoardStore;
use kanban_store::dispatch_ops::DispatchStore;
use kanban_store::notify_ops::NotifyStore;
use kanban_store::watch::ChangeProbe;

/// A store with every capability trait the suite tests (a [`BoardStore`]
/// has them all, and loads board copies, which seed histories at known
/// times). Implemented for every type that has them all; tests take the
/// `&dyn` trait they need.
pub trait SuiteStore: Store + NotifyStore + DispatchStore + BoardStore {}

impl<T: Store + NotifyStore + DispatchStore + BoardStore + ?Sized> SuiteStore for T {}

type OpenFn = dyn Fn(&TestBoard) -> Box<dyn SuiteStore> + Send + Sync;
type ProbeFn = dyn Fn(&TestBoard) -> Box<dyn ChangeProbe> + Send + Sync;

/// How the suite reaches one backend: its openers.
pub struct Backend {
    open: Box<OpenFn>,
    probe: Box<ProbeFn>,
}

impl Backend {
    /// `open` returns a new handle (its own connection) to the board of a
    /// [`TestBoard`], creating it empty on first use; `probe` returns a
    /// change probe of a board that was opened at least once.
    pub fn new(
        open: impl Fn(&TestBoard) -> Box<dyn SuiteStore> + Send + Sync + 'static,
        probe: impl Fn(&TestBoard) -> Box<dyn ChangeProbe> + Send + Sync + 'static,
    ) -> Backend {
        Backend {
            open: Box::new(open),
            probe: Box::new(probe),
        }
    }

    /// A fresh, empty board of this backend.
    pub fn board(&self) -> Board<'_> {
        Board {
            backend: self,
            place: TestBoard::new(),
        }
    }
}

/// Where one test's board lives.
#[derive(Debug)]
pub struct TestBoard {
    dir: tempfile::TempDir,
    name: String,
}

/// Distinguishes the boards of one test process.
static BOARD_SEQ: AtomicU64 = AtomicU64::new(0);

impl TestBoard {
    fn new() -> TestBoard {
        let dir = tempfile::Builder::new()
            .prefix("kanban-conformance-")
            .tempdir()
            .expect("temporary board directory");
        let seq = BOARD_SEQ.fetch_add(1, Ordering::Relaxed);
        TestBoard {
            dir,
            name: format!("kb_conf_{}_{seq}", std::process::id()),
        }
    }

    /// A temporary directory of this board only, removed after the test.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// A name unique within the test process (lowercase letters, digits,
    /// `_`), for backends that keep boards in a shared server.
    pub fn name(&self) -> &str {
        &self.name
    }
}

/// One fresh board of a backend, opened as often as a test needs.
pub struct Board<'a> {
    backend: &'a Backend,
    place: TestBoard,
}

impl Board<'_> {
    /// A new handle (connection) to this board.
    pub fn open(&self) -> Box<dyn SuiteStore> {
        (self.backend.open)(&self.place)
    }

    /// A change probe of this board (open the board first).
    pub fn probe(&self) -> Box<dyn ChangeProbe> {
        (self.backend.probe)(&self.place)
    }

    pub fn place(&self) -> &TestBoard {
        &self.place
    }
}

/// What the generated `#[test]` functions call: each gives the test a
/// fresh board in the form it takes.
#[doc(hidden)]
pub mod run {
    use super::*;

    pub fn store(backend: &Backend, test: fn(&dyn Store)) {
        let board = backend.board();
        test(&*board.open());
    }

    pub fn notify(backend: &Backend, test: fn(&dyn NotifyStore)) {
        let board = backend.board();
        test(&*board.open());
    }

    pub fn dispatch(backend: &Backend, test: fn(&dyn DispatchStore)) {
        let board = backend.board();
        test(&*board.open());
    }

    /// Tests that open several handles (and probes) on one board.
    pub fn board(backend: &Backend, test: fn(&Board<'_>)) {
        test(&backend.board());
    }

    /// Tests that need many fresh boards (the model test).
    pub fn backend(backend: &Backend, test: fn(&Backend)) {
        test(backend);
    }
}

/// Expands to one `#[test]` per conformance test, each on a fresh board of
/// the backend that `open` (and `probe`) reach; see the crate docs. The
/// test names are the suite functions' names.
#[macro_export]
macro_rules! store_conformance_tests {
    (open = $open:expr, probe = $probe:expr $(,)?) => {
        $crate::store_conformance_tests!(available = || true, open = $open, probe = $probe);
    };
    // `available`: false when the backend's server is missing and the
    // operator asked to skip it (each test then returns at once).
    (available = $available:expr, open = $open:expr, probe = $probe:expr $(,)?) => {
        fn conformance_available() -> bool {
            ($available)()
        }

        fn conformance_backend() -> $crate::Backend {
            $crate::Backend::new($open, $probe)
        }

        $crate::__conformance_tests! {
            store: tasks::creation_status_inference,
            store: tasks::creation_normalises_and_validates,
            store: tasks::idempotency_key_returns_existing,
            store: tasks::links_and_cycles,
            store: tasks::fan_in_waits_for_every_parent,
            store: tasks::comments_and_events,
            store: tasks::list_filters_and_orders,
            store: tasks::edit_and_assign,
            store: tasks::stats_and_counts,
            store: tasks::notify_subscriptions,
            store: tasks::gc_events_keeps_live_tasks,
            store: streaming::for_each_task_streams_what_list_tasks_returns,
            store: streaming::for_each_task_stops_when_the_visitor_says_so,
            store: rendering::render_tasks_renders_what_streaming_gives,
            store: rendering::render_tasks_stops_when_emit_says_so,
            store: lifecycle::claim_opens_a_run,
            store: lifecycle::claim_with_pending_parents_demotes,
            store: lifecycle::claim_respects_ceilings,
            store: lifecycle::review_claim,
            store: review::request_review_closes_the_run_and_hands_over,
            store: review::request_review_without_a_run_synthesizes_one,
            store: review::request_review_refuses_bad_input_and_changes_nothing,
            store: review::request_changes_returns_the_card_to_its_implementer,
            store: review::request_changes_reapplies_parent_gating,
            store: review::request_changes_is_only_a_reviewers_verdict,
            store: review::reopen_review_sends_a_waiting_card_back,
            store: review::reopen_review_refuses_other_statuses,
            store: review_release::a_reclaimed_review_attempt_waits_for_a_reviewer_again,
            dispatch: review_release::a_crashed_review_attempt_waits_for_a_reviewer_again,
            dispatch: review_release::a_review_claim_whose_spawn_failed_waits_for_a_reviewer_again,
            dispatch: review_release::a_crashed_ready_attempt_still_goes_back_to_ready,
            dispatch: review_release::the_breaker_still_blocks_a_failing_review,
            store: swarm::swarm_batch_creates_the_whole_graph,
            store: swarm::failed_batch_leaves_nothing_behind,
            store: swarm::batch_key_replay_returns_the_first_graph,
            store: triage::specify_rewrites_and_promotes,
            store: triage::decompose_builds_the_graph_atomically,
            store: triage::decompose_can_keep_children_in_todo,
            store: review::approve_review_completes_a_waiting_card,
            store: review::approve_review_refuses_what_is_not_waiting_in_review,
            store: lifecycle::heartbeat_extends_and_is_fenced,
            store: lifecycle::complete_closes_the_run,
            store: lifecycle::complete_without_run_synthesizes_one,
            store: lifecycle::complete_cas_on_run_id,
            store: lifecycle::complete_rejects_phantom_cards,
            store: lifecycle::block_unblock_and_loop_breaker,
            store: lifecycle::dependency_block_waits_in_todo,
            store: lifecycle::unblock_regates_on_parents,
            store: lifecycle::schedule_parks_the_task,
            store: lifecycle::promote_manual,
            store: lifecycle::reclaim_returns_to_ready,
            store: lifecycle::archive_and_delete,
            store: lifecycle::initial_blocked_stays_blocked,
            store: lifecycle::recompute_promotes_in_bulk,
            store: dashboard::direct_move_to_ready_requires_satisfied_parents,
            store: dashboard::direct_move_refuses_running_and_verb_statuses,
            store: dashboard::direct_move_off_running_closes_the_run,
            store: dashboard::direct_move_off_done_demotes_ready_children,
            store: dashboard::attachments_rows_and_events,
            store: dashboard::recent_completed_runs_of_a_profile,
            store: dashboard::card_facts_for_the_whole_board,
            store: dashboard::hand_claim_records_the_workspace,
            store: diagnostics::tasks_with_events_after_names_each_changed_task_once,
            store: diagnostics::diagnostics_index_refolds_only_changed_tasks,
            dispatch: diagnostics::diagnostic_histories_read_only_the_rule_inputs,
            store: board_files::attachment_blobs_are_kept_by_boards_that_keep_logs,
            store: board_files::worker_logs_are_kept_in_order_under_the_run_cap,
            dispatch: dashboard::detached_workers_are_returned,
            dispatch: dispatch::set_worker_records_identity_and_running_tasks_reads_it_back,
            dispatch: dispatch::complete_reports_the_ended_worker,
            dispatch: dispatch::release_is_a_compare_and_swap_and_counts_toward_the_breaker,
            dispatch: dispatch::task_max_retries_wins_but_a_systemic_crash_blocks_at_once,
            dispatch: dispatch::protocol_violations_trip_on_a_streak_only,
            dispatch: dispatch::ttl_release_and_extension_only_apply_to_expired_claims,
            dispatch: dispatch::deferring_holds_the_claim,
            dispatch: dispatch::spawn_failures_requeue_then_give_up,
            dispatch: dispatch::regate_follows_changes_and_dry_run_writes_nothing,
            dispatch: dispatch::default_assignee_only_fills_an_empty_assignee,
            dispatch: dispatch::candidates_and_guard_facts,
            dispatch: dispatch::finished_workers_are_listed_until_forgotten,
            dispatch: dispatch_quiet::guard_facts_of_a_batch_match_one_by_one,
            dispatch: dispatch_batch::claim_batch_counts_its_own_claims_toward_the_ceilings,
            dispatch: dispatch_batch::record_launches_applies_each_entry_to_its_attempt,
            dispatch: dispatch_batch::a_launch_recorded_after_its_worker_finished_still_names_the_worker,
            dispatch: dispatch_batch::set_workspace_is_fenced_to_the_attempt,
            dispatch: dispatch_recovery::spawn_failures_get_one_retry_time_in_their_run,
            dispatch: dispatch_recovery::a_guard_note_is_written_once_per_hold,
            dispatch: dispatch_recovery::a_decided_release_is_read_with_the_attempt_and_cleared_by_it,
            dispatch: dispatch_recovery::intents_work_without_prepare_dispatch,
            dispatch: dispatch_recovery::the_launcher_of_a_worker_stays_its_supervisor_unless_released,
            dispatch: dispatch_recovery::excused_deaths_streak_through_crashes_until_anything_else_ends_a_run,
            dispatch: hosts::host_leases_are_renewed_per_host_without_events,
            notify: notify::claim_moves_cursor_once_and_rewind_is_cas,
            notify: notify::delivered_resets_failures_and_unsubscribes_finished_tasks,
            board: concurrency::claim_race_has_one_winner,
            board: concurrency::ceilings_hold_under_concurrency,
            board: concurrency::idempotency_race_creates_one_task,
            board: concurrency::claim_and_reclaim_race_keeps_one_open_run,
            board: concurrency::run_fencing_decides_one_winner,
            board: concurrency::heartbeats_of_a_replaced_attempt_are_refused,
            board: rendering::render_tasks_reads_one_snapshot_under_writes,
            board: feeds::event_cursor_never_skips_a_commit,
            board: feeds::latest_event_id_is_a_safe_start_cursor,
            board: feeds::card_facts_read_one_snapshot,
            board: feeds::stats_read_one_snapshot,
            board: feeds::probe_sees_commits_of_every_handle,
            board: feeds::probe_sees_concurrent_commits,
            board: notify::notify_claims_are_exclusive_under_concurrency,
            board: dispatch_races::batch_and_single_claims_win_each_task_once,
            board: dispatch_races::batch_and_single_claims_keep_the_ceilings,
            board: dispatch_races::release_and_complete_race_has_one_winner,
            board: dispatch_races::release_races_a_new_claim_and_leaves_one_open_run,
            board: dispatch_races::first_recorded_intent_wins_under_concurrency,
            board: dispatch_races::changed_since_passes_miss_no_concurrent_change,
            board: dispatch_quiet::board_version_moves_with_every_commit_and_only_then,
            board: activity::aggregates_of_a_seeded_history,
            board: activity::live_writes_reach_every_chart,
            backend: model::state_machine_matches_the_model,
        }
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __conformance_tests {
    ($($runner:ident : $module:ident :: $name:ident),* $(,)?) => {$(
        #[test]
        fn $name() {
            if !conformance_available() {
                return;
            }
            $crate::run::$runner(&conformance_backend(), $crate::$module::$name);
        }
    )*};
}
