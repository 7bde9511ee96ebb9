//! The gateway's dispatcher loop, written against [`DispatchPass`] so the
//! server does not depend on how a pass is implemented (the binary plugs
//! in `kanban-dispatch`).
//!
//! A pass runs for a board when the ticker fires (`dispatch_interval_seconds`,
//! 0 = no ticker: every board), and at once when a board's change watcher
//! sees a commit from anyone (that board only), so a task made ready by
//! another process is picked up within a few tens of milliseconds instead
//! of on the next tick. A pass may also ask to be run again after a delay
//! (`next_pass_in_ms`: a cooldown or a spawn backoff ends, a death waits to
//! be judged): the loop sleeps until then instead of polling, and a pass
//! that writes nothing wakes nobody. A worker's exit (reported by the
//! pass through [`PassWake`]) runs a pass at once, so a death is judged and
//! the room it leaves is filled without waiting for the tick. The config is
//! re-read before every round.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use kanban_hermes::config::KanbanConfig;
use kanban_hermes::layout::{BoardPaths, Root};
use kanban_store::dispatch_ops::DispatchStore;
use serde_json::Value;
use tokio::sync::watch;

use crate::config_cache::ConfigCache;
use crate::hub::{Board, BoardHub};
use crate::logging::result_count;
use crate::metrics as m;

/// How often the loop looks for boards created, archived or deleted by
/// other processes (or hosts).
pub const BOARD_RESCAN_INTERVAL: Duration = Duration::from_secs(1);
/// Shortest delay honoured from a pass's `next_pass_in_ms` (no spinning).
pub const MIN_PASS_WAKE: Duration = Duration::from_millis(100);
/// Wait before running a board's pass again after it failed (its database
/// is unreachable, say); doubled on every further failure.
pub const PASS_RETRY_MIN: Duration = Duration::from_millis(250);
/// Longest wait between the passes of a board that keep failing.
pub const PASS_RETRY_MAX: Duration = Duration::from_secs(5);

/// The retry delay after `failures` passes of a board failed in a row.
pub fn pass_retry_delay(failures: u32) -> Duration {
    let doublings = failures.saturating_sub(1).min(16);
    PASS_RETRY_MIN
        .saturating_mul(1 << doublings)
        .min(PASS_RETRY_MAX)
}

/// Everything one pass over one board needs.
pub struct PassRequest<'a> {
    pub root: &'a Root,
    pub board: &'a BoardPaths,
    /// The board's shared store (one per board per process).
    pub store: &'a Arc<dyn DispatchStore>,
    /// Freshly read for this round.
    pub config: &'a KanbanConfig,
    pub dry_run: bool,
    /// `POST /dispatch?max=` override of `kanban.max_spawn`.
    pub max_spawn: Option<u32>,
}

/// One dispatch pass (`dispatch_once`). Returns the reference's
/// `DispatchResult` as JSON (`spawned`, `crashed`, `reclaimed`, ...).
pub trait DispatchPass: Send + Sync + 'static {
    fn run_pass(&self, req: &PassRequest<'_>) -> anyhow::Result<Value>;

    /// The hub closed the board `slug` (it left the catalogue): drop what
    /// the pass keeps for it (its store above all, so its database is let
    /// go). Its running workers are not touched.
    fn forget_board(&self, _slug: &str) {}

    /// Called once by the loop: `wake` runs a pass on every open board at
    /// once (the pass's workers exit: a death is judged, and what it frees
    /// is claimed, without waiting for a tick or a board change).
    fn set_wake(&self, _wake: PassWake) {}
}

/// Wakes the dispatcher loop from any thread (a worker's waiter, say):
/// the next round runs a pass on every open board. Wakes that arrive
/// during a round are folded into the next one.
#[derive(Clone, Default)]
pub struct PassWake(Arc<PassWakeInner>);

#[derive(Default)]
struct PassWakeInner {
    pending: std::sync::atomic::AtomicBool,
    notify: tokio::sync::Notify,
}

impl PassWake {
    /// Ask for a pass on every open board now.
    pub fn wake(&self) {
        self.0
            .pending
            .store(true, std::sync::atomic::Ordering::SeqCst);
        self.0.notify.notify_one();
    }

    /// Whether a wake arrived since the last call.
    fn take(&self) -> bool {
        self.0
            .pending
            .swap(false, std::sync::atomic::Ordering::SeqCst)
    }
}

/// The figures of a pass's result that the metrics record.
fn pass_counts(result: &Value) -> m::PassCounts {
    m::PassCounts {
        spawned: result_count(result, "spawned"),
        crashed: result_count(result, "crashed"),
        reclaimed: result_count(result, "reclaimed"),
        timed_out: result_count(result, "timed_out"),
        claim_seconds: result
            .get("claim_seconds")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Value::as_f64).collect()),
    }
}

/// Run one pass on a board, recording metrics. Blocking.
pub fn run_pass_blocking(
    pass: &dyn DispatchPass,
    root: &Root,
    board: &Board,
    config: &KanbanConfig,
    dry_run: bool,
    max_spawn: Option<u32>,
) -> anyhow::Result<Value> {
    let started = Instant::now();
    let req = PassRequest {
        root,
        board: &board.paths,
        store: &board.store,
        config,
        dry_run,
        max_spawn,
    };
    let out = pass.run_pass(&req);
    let counts = out.as_ref().ok().map(pass_counts);
    m::record_pass(&board.slug, started.elapsed(), counts.as_ref());
    if let (Ok(result), false) = (&out, dry_run) {
        crate::logging::log_pass(&board.slug, result, started.elapsed());
    }
    out
}

/// The loop; returns when `shutdown` flips to true.
pub async fn run_loop(
    hub: Arc<BoardHub>,
    pass: Arc<dyn DispatchPass>,
    mut shutdown: watch::Receiver<bool>,
) {
    let root = hub.root().clone();
    let mut changes = hub.subscribe_any_change();
    let mut seen: HashMap<String, u64> = HashMap::new();
    // Boards whose last pass asked to run again at a given moment.
    let mut due: HashMap<String, Instant> = HashMap::new();
    // Passes failed in a row, per board (the retry backoff).
    let mut failures: HashMap<String, u32> = HashMap::new();
    let mut next_tick = Instant::now();
    let mut next_rescan = Instant::now();
    // Boards open after the last rescan: those gone since were closed.
    let mut open: HashSet<String> = HashSet::new();
    let auto_decompose = crate::auto_decompose::AutoDecompose::default();
    let wake = PassWake::default();
    pass.set_wake(wake.clone());
    let mut config_cache = ConfigCache::default();
    loop {
        let config = config_cache.current(&root);
        // What this round acts on is what `gateway status`, gateway.json
        // and the create warning report (hot reload, both directions).
        hub.set_dispatching(config.dispatch_in_gateway);
        let now = Instant::now();
        if now >= next_rescan {
            let was_open = std::mem::take(&mut open);
            open = sync_boards(&hub).await;
            crate::logging::log_boards_opened(&was_open, &open);
            // Forget what the loop and the pass knew of boards closed
            // meanwhile (here, by their watcher, or by an API request).
            for slug in was_open.difference(&open) {
                pass.forget_board(slug);
            }
            seen.retain(|slug, _| open.contains(slug));
            due.retain(|slug, _| open.contains(slug));
            failures.retain(|slug, _| open.contains(slug));
            next_rescan = now + BOARD_RESCAN_INTERVAL;
        }
        let tick_due = now >= next_tick;
        if let Some(period) = config.dispatch_interval() {
            if tick_due {
                next_tick = now + period;
            }
        } else {
            // No internal ticker: only changes (and the rescan) wake us.
            next_tick = now + Duration::from_secs(3600);
        }
        if config.dispatch_in_gateway && tick_due {
            // Off this thread: the model never holds up a pass.
            auto_decompose.tick(&hub, &config);
        }
        // Taken before the passes: a wake during them asks for one more.
        let woken_all = wake.take();
        if config.dispatch_in_gateway {
            for board in hub.open_boards() {
                let generation = board.change_generation();
                let changed = seen.get(&board.slug) != Some(&generation);
                seen.insert(board.slug.clone(), generation);
                let woken = due.get(&board.slug).is_some_and(|at| *at <= now);
                if !(tick_due || changed || woken || woken_all) {
                    continue;
                }
                due.remove(&board.slug);
                let (pass, root, cfg, b, h) = (
                    pass.clone(),
                    root.clone(),
                    config.clone(),
                    board.clone(),
                    hub.clone(),
                );
                let res = tokio::task::spawn_blocking(move || {
                    let out = run_pass_blocking(pass.as_ref(), &root, &b, &cfg, false, None);
                    // A pass fails on a board deleted under it: close it
                    // quietly instead of retrying until restart.
                    let departed = out.is_err() && h.close_if_departed(&b.slug);
                    if departed {
                        pass.forget_board(&b.slug);
                    }
                    (out, departed)
                })
                .await;
                match res {
                    Ok((_, true)) => {
                        failures.remove(&board.slug);
                        due.remove(&board.slug);
                        seen.remove(&board.slug);
                    }
                    Ok((Ok(result), false)) => {
                        if let Some(n) = failures.remove(&board.slug) {
                            crate::hub::log_warning(&format!(
                                "kanban dispatcher: board '{}' dispatches again after {n} failed pass(es)",
                                board.slug
                            ));
                        }
                        if let Some(ms) = result.get("next_pass_in_ms").and_then(Value::as_u64) {
                            let wait = Duration::from_millis(ms).max(MIN_PASS_WAKE);
                            due.insert(board.slug.clone(), Instant::now() + wait);
                        }
                        if changed && result_count(&result, "spawned") > 0 {
                            m::record_pickup(&board.slug, now.elapsed());
                        }
                    }
                    Ok((Err(e), false)) => {
                        // Keep going (the database may be restarting): retry
                        // this board with a growing delay.
                        let n = failures.entry(board.slug.clone()).or_default();
                        *n += 1;
                        let wait = pass_retry_delay(*n);
                        due.insert(board.slug.clone(), Instant::now() + wait);
                        // The first failure is a warning (below); each retry only debug.
                        tracing::debug!(board = %board.slug, error = %e, "kanban dispatcher: pass failed");
                        if *n == 1 {
                            crate::hub::log_warning(&format!(
                                "kanban dispatcher: a pass on board '{}' failed, retrying with \
                                 backoff (at most every {}s): {e}",
                                board.slug,
                                PASS_RETRY_MAX.as_secs()
                            ));
                        }
                    }
                    Err(e) => {
                        tracing::error!(board = %board.slug, error = %e, "kanban dispatcher: pass panicked")
                    }
                }
            }
        } else if config.dispatch_disabled_by_env {
            tracing::info!("kanban dispatcher: disabled via HERMES_KANBAN_DISPATCH_IN_GATEWAY");
            return;
        }
        let mut wake_at = next_tick.min(next_rescan);
        if config.dispatch_in_gateway
            && let Some(first) = due.values().min()
        {
            wake_at = wake_at.min(*first);
        }
        tokio::select! {
            _ = shutdown.changed() => {}
            r = changes.changed() => { if r.is_err() { return; } }
            _ = wake.0.notify.notified() => {}
            _ = tokio::time::sleep_until(wake_at.into()) => {}
        }
        if *shutdown.borrow() {
            return;
        }
    }
}

/// Open every non-archived board of the root so each has a watcher, and
/// close those that left the catalogue (see [`BoardHub::sync_with_catalogue`]).
/// Returns the slugs open afterwards.
async fn sync_boards(hub: &Arc<BoardHub>) -> HashSet<String> {
    let hub = hub.clone();
    let synced = tokio::task::spawn_blocking(move || {
        hub.sync_with_catalogue("kanban dispatcher");
        hub.open_boards()
            .iter()
            .map(|b| b.slug.clone())
            .collect::<HashSet<_>>()
    })
    .await;
    synced.unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failed_passes_back_off_up_to_the_cap() {
        assert_eq!(pass_retry_delay(1), PASS_RETRY_MIN);
        assert_eq!(pass_retry_delay(2), PASS_RETRY_MIN * 2);
        assert_eq!(pass_retry_delay(3), PASS_RETRY_MIN * 4);
        assert_eq!(pass_retry_delay(50), PASS_RETRY_MAX);
        assert!((1..50).all(|n| pass_retry_delay(n) <= pass_retry_delay(n + 1)));
    }
}
