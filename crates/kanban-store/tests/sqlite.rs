//! Runs the backend-independent store suite against `SqliteStore`, each
//! test on its own temporary board file.

mod suite;

use std::path::Path;
use std::sync::Arc;

use kanban_store::sqlite::{OpenOptions, SqliteStore};
use kanban_store::{Store, SystemClock};

fn open_at(path: &Path) -> Box<dyn Store> {
    Box::new(
        SqliteStore::open(path, OpenOptions::create(), Arc::new(SystemClock)).expect("open board"),
    )
}

macro_rules! store_tests {
    ($($module:ident :: $name:ident),* $(,)?) => {$(
        #[test]
        fn $name() {
            let dir = tempfile::tempdir().unwrap();
            let store = open_at(&dir.path().join("kanban.db"));
            suite::$module::$name(&*store);
        }
    )*};
}

macro_rules! race_tests {
    ($($name:ident),* $(,)?) => {$(
        #[test]
        fn $name() {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("kanban.db");
            drop(open_at(&path));
            suite::concurrency::$name(&|| open_at(&path));
        }
    )*};
}

store_tests!(
    tasks::creation_status_inference,
    tasks::creation_normalises_and_validates,
    tasks::idempotency_key_returns_existing,
    tasks::links_and_cycles,
    tasks::fan_in_waits_for_every_parent,
    tasks::comments_and_events,
    tasks::list_filters_and_orders,
    tasks::edit_and_assign,
    tasks::stats_and_counts,
    tasks::notify_subscriptions,
    tasks::gc_events_keeps_live_tasks,
    lifecycle::claim_opens_a_run,
    lifecycle::claim_with_pending_parents_demotes,
    lifecycle::claim_respects_ceilings,
    lifecycle::review_claim,
    lifecycle::heartbeat_extends_and_is_fenced,
    lifecycle::complete_closes_the_run,
    lifecycle::complete_without_run_synthesizes_one,
    lifecycle::complete_cas_on_run_id,
    lifecycle::complete_rejects_phantom_cards,
    lifecycle::block_unblock_and_loop_breaker,
    lifecycle::dependency_block_waits_in_todo,
    lifecycle::unblock_regates_on_parents,
    lifecycle::schedule_parks_the_task,
    lifecycle::promote_manual,
    lifecycle::reclaim_returns_to_ready,
    lifecycle::archive_and_delete,
    lifecycle::initial_blocked_stays_blocked,
    lifecycle::recompute_promotes_in_bulk,
    dashboard::direct_move_to_ready_requires_satisfied_parents,
    dashboard::direct_move_refuses_running_and_verb_statuses,
    dashboard::direct_move_off_running_closes_the_run,
    dashboard::direct_move_off_done_demotes_ready_children,
    dashboard::attachments_rows_and_events,
    dashboard::recent_completed_runs_of_a_profile,
    dashboard::card_facts_for_the_whole_board,
    dashboard::hand_claim_records_the_workspace,
);

#[test]
fn detached_workers_are_returned() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(
        &dir.path().join("kanban.db"),
        OpenOptions::create(),
        Arc::new(SystemClock),
    )
    .expect("open board");
    suite::dashboard::detached_workers_are_returned(&store);
}

race_tests!(
    claim_race_has_one_winner,
    ceilings_hold_under_concurrency,
    idempotency_race_creates_one_task
);
