//! The gateway's auto-decompose (reference §2.4): with
//! `kanban.auto_decompose: true` (the default) each dispatcher tick hands
//! up to `kanban.auto_decompose_per_tick` triage cards, across boards, to
//! the decomposer (`auxiliary.kanban_decomposer`). Both keys are read from
//! the config of the round, so turning it off stops the next tick.
//!
//! The model is slow, so a sweep runs on a blocking thread of its own and
//! the dispatcher never waits for it; while one sweep runs the next tick
//! starts none. A card the model could not decompose is left alone for
//! [`RETRY_AFTER`] instead of costing a model call every tick.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use kanban_aux::{client_from_root, decompose_setup, ops};
use kanban_hermes::auxiliary::TASK_KANBAN_DECOMPOSER;
use kanban_hermes::config::KanbanConfig;

use crate::hub::BoardHub;

/// Author of the audit comments auto-decompose writes.
pub const AUTO_DECOMPOSE_AUTHOR: &str = "auto-decomposer";
/// How long a card the decomposer failed on is skipped.
pub const RETRY_AFTER: Duration = Duration::from_secs(600);

/// One gateway's auto-decomposer: the in-flight flag and the cards to skip.
#[derive(Default)]
pub struct AutoDecompose {
    busy: Arc<AtomicBool>,
    failed: Arc<Mutex<HashMap<(String, String), Instant>>>,
}

impl AutoDecompose {
    /// Start a sweep off the caller's thread when the config asks for one
    /// and none is running; returns at once either way.
    pub fn tick(&self, hub: &Arc<BoardHub>, config: &KanbanConfig) -> bool {
        if !config.auto_decompose || config.auto_decompose_per_tick == 0 {
            return false;
        }
        if self.busy.swap(true, Ordering::AcqRel) {
            return false;
        }
        let (busy, failed, hub, config) = (
            self.busy.clone(),
            self.failed.clone(),
            hub.clone(),
            config.clone(),
        );
        tokio::task::spawn_blocking(move || {
            let n = sweep(&hub, &config, &failed);
            if n > 0 {
                tracing::info!(
                    decomposed = n,
                    "kanban auto-decompose: triage cards handled"
                );
            }
            busy.store(false, Ordering::Release);
        });
        true
    }
}

/// Decompose up to the per-tick budget of triage cards; the successes.
fn sweep(
    hub: &BoardHub,
    config: &KanbanConfig,
    failed: &Mutex<HashMap<(String, String), Instant>>,
) -> usize {
    let root = hub.root();
    let client = match client_from_root(root, TASK_KANBAN_DECOMPOSER) {
        Ok(Some(c)) => c,
        Ok(None) => return 0,
        Err(e) => {
            tracing::warn!(error = %e, "kanban auto-decompose: cannot read the auxiliary config");
            return 0;
        }
    };
    let setup = decompose_setup(root, config);
    let mut budget = config.auto_decompose_per_tick as usize;
    let mut done = 0;
    let now = Instant::now();
    failed
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .retain(|_, at| now.duration_since(*at) < RETRY_AFTER);
    for board in hub.open_boards() {
        if budget == 0 {
            break;
        }
        let ids = match ops::triage_ids(board.store.as_ref(), None) {
            Ok(ids) => ids,
            Err(e) => {
                tracing::debug!(board = %board.slug, error = %e, "kanban auto-decompose: cannot list triage");
                continue;
            }
        };
        for id in ids {
            if budget == 0 {
                break;
            }
            let key = (board.slug.clone(), id.clone());
            if failed
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .contains_key(&key)
            {
                continue;
            }
            budget -= 1;
            let out = ops::decompose(
                board.store.as_ref(),
                Some(client.as_ref()),
                &setup,
                &id,
                AUTO_DECOMPOSE_AUTHOR,
            );
            if out.ok {
                done += 1;
                tracing::info!(board = %board.slug, task = %id, reason = %out.reason, "kanban auto-decompose");
            } else {
                tracing::warn!(board = %board.slug, task = %id, reason = %out.reason,
                    "kanban auto-decompose: left in triage");
                failed
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert(key, Instant::now());
            }
        }
    }
    done
}
