//! What one dispatch pass did: every bucket of reference §3.2, serialised
//! for `kanban dispatch --json` with the reference's shapes (objects for
//! the tuples), plus the buckets the reference leaves out of its JSON.

use serde::Serialize;

use crate::health::TickSummary;

/// A worker started (or, in a dry run, that would be started).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SpawnedTask {
    pub task_id: String,
    pub assignee: String,
    /// Empty in a dry run.
    pub workspace: String,
}

/// A task left for later because its profile is at its ceiling.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CappedTask {
    pub task_id: String,
    pub assignee: String,
    /// Running tasks of that profile when it was skipped.
    pub current: i64,
}

/// A task the respawn guard held back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GuardedTask {
    pub task_id: String,
    pub reason: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct DispatchResult {
    /// Expired claims released (live-worker extensions do not count).
    pub reclaimed: usize,
    pub crashed: Vec<String>,
    pub timed_out: Vec<String>,
    pub stale: Vec<String>,
    /// Tasks the circuit breaker blocked this pass.
    pub auto_blocked: Vec<String>,
    pub promoted: usize,
    pub spawned: Vec<SpawnedTask>,
    pub skipped_unassigned: Vec<String>,
    pub skipped_nonspawnable: Vec<String>,
    pub skipped_per_profile_capped: Vec<CappedTask>,
    pub auto_assigned_default: Vec<String>,
    pub respawn_guarded: Vec<GuardedTask>,
    /// Workers that hit a provider rate limit (exit 75), requeued without
    /// counting a failure.
    pub rate_limited: Vec<String>,
    /// Another process held the board's dispatch lock (or it could not be
    /// taken): nothing was read or written.
    pub skipped_locked: bool,
    /// Why the lock could not be taken at all (fail closed).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lock_error: Option<String>,
    /// Tasks whose worker is being terminated; they are released by a
    /// later pass once the process group is gone.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub terminating: Vec<String>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub dry_run: bool,
    /// A later pass has work in this many milliseconds without any change
    /// on the board (a cooldown or a spawn backoff ends, a death waits to
    /// be judged, a termination finishes): a long-lived dispatcher wakes
    /// then instead of polling.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_pass_in_ms: Option<u64>,
    /// Health facts of this pass (not part of the JSON).
    #[serde(skip)]
    pub health: TickSummary,
    /// How long each successful claim of this pass took: the duration of
    /// its claim transaction shared among the claims it made (for metrics;
    /// not part of the JSON).
    #[serde(skip)]
    pub claim_durations: Vec<std::time::Duration>,
}

impl DispatchResult {
    pub(crate) fn locked(lock_error: Option<String>) -> Self {
        DispatchResult {
            skipped_locked: true,
            lock_error,
            health: TickSummary {
                skipped_locked: true,
                ..Default::default()
            },
            ..Default::default()
        }
    }

    /// Ask for a pass after `delay` (the earliest request wins).
    pub fn wake_in(&mut self, delay: std::time::Duration) {
        let ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX);
        self.next_pass_in_ms = Some(self.next_pass_in_ms.map_or(ms, |d| d.min(ms)));
    }

    /// Whether anything happened worth a log line.
    pub fn is_idle(&self) -> bool {
        self.reclaimed == 0
            && self.promoted == 0
            && self.spawned.is_empty()
            && self.crashed.is_empty()
            && self.timed_out.is_empty()
            && self.stale.is_empty()
            && self.auto_blocked.is_empty()
            && self.rate_limited.is_empty()
    }
}
