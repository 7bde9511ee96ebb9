//! The respawn guard (reference `check_respawn_guard`): reasons not to
//! start a ready task again right now. The task stays ready; the pass
//! records `(task, reason)` and a `respawn_guarded` event.
//!
//! Ours: a task whose worker could not be started waits for its retry time
//! (exponential backoff with jitter, `spawn_backoff`) instead of being tried
//! again on every pass.
//!
//! One deliberate difference: an auth/quota-looking last error only holds
//! the task for a cooldown after the failing attempt ended, then lets one
//! attempt through. That attempt's failure counts toward the circuit
//! breaker, so a task with a permanent auth problem ends up blocked where
//! an operator sees it instead of sitting in ready forever (#73369).

use std::sync::LazyLock;

use kanban_core::defaults::{
    ACTIVE_PR_WINDOW_SECONDS, RATE_LIMIT_COOLDOWN_SECONDS, RECENT_SUCCESS_WINDOW_SECONDS,
};
use kanban_store::dispatch_ops::{DispatchStore, GuardFacts};
use regex::Regex;
use serde::Serialize;

/// Candidates whose guard facts the first read of a pass covers; each
/// further read covers twice as many, up to [`GUARD_FACTS_BATCH_MAX`].
/// Small first, so a pass that claims few (ceilings) reads few.
pub const GUARD_FACTS_BATCH_MIN: usize = 32;
/// Most candidates whose guard facts are read in one store call.
pub const GUARD_FACTS_BATCH_MAX: usize = 1024;

/// Last errors that look like quota / authentication walls.
static BLOCKER: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?i)\b(quota|rate[\s_\-]?limit|429|403|auth\w*|unauthorized|forbidden|billing|subscription|access[\s_]denied|permission[\s_]denied|invalid[\s_]api[\s_]key)\b",
    )
    .expect("static regex")
});

/// A GitHub pull-request URL: a previous worker already opened a PR.
static PR_URL: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)https?://github\.com/[^/\s]+/[^/\s]+/pull/\d+").expect("static regex")
});

/// Why a task was not spawned this pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum GuardReason {
    SpawnBackoff,
    RateLimitCooldown,
    BlockerAuth,
    RecentSuccess,
    ActivePr,
}

impl GuardReason {
    pub const ALL: [GuardReason; 5] = [
        GuardReason::SpawnBackoff,
        GuardReason::RateLimitCooldown,
        GuardReason::BlockerAuth,
        GuardReason::RecentSuccess,
        GuardReason::ActivePr,
    ];

    /// The reason [`GuardReason::as_str`] spells.
    pub fn parse(s: &str) -> Option<GuardReason> {
        Self::ALL.into_iter().find(|r| r.as_str() == s)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            GuardReason::SpawnBackoff => "spawn_backoff",
            GuardReason::RateLimitCooldown => "rate_limit_cooldown",
            GuardReason::BlockerAuth => "blocker_auth",
            GuardReason::RecentSuccess => "recent_success",
            GuardReason::ActivePr => "active_pr",
        }
    }
}

/// Guard windows in seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GuardWindows {
    /// After a rate-limited attempt (`HERMES_KANBAN_RATE_LIMIT_COOLDOWN_SECONDS`); 0 = none.
    pub rate_limit_cooldown: i64,
    /// After an attempt that failed with an auth/quota-looking error.
    pub auth_cooldown: i64,
    pub recent_success: i64,
    pub active_pr: i64,
}

impl Default for GuardWindows {
    fn default() -> Self {
        GuardWindows {
            rate_limit_cooldown: RATE_LIMIT_COOLDOWN_SECONDS,
            auth_cooldown: RATE_LIMIT_COOLDOWN_SECONDS,
            recent_success: RECENT_SUCCESS_WINDOW_SECONDS,
            active_pr: ACTIVE_PR_WINDOW_SECONDS,
        }
    }
}

/// The error looks like a quota / auth wall.
pub fn is_blocker_error(error: &str) -> bool {
    BLOCKER.is_match(error)
}

/// The first guard that applies, in the reference's order (the spawn
/// backoff, ours, first: it only concerns a run that never started).
pub fn respawn_guard(f: &GuardFacts, now: i64, w: &GuardWindows) -> Option<GuardReason> {
    let backoff = spawn_backoff_until(f);
    if backoff.is_some_and(|at| now < at) {
        return Some(GuardReason::SpawnBackoff);
    }
    if let Some((outcome, ended)) = &f.latest_run
        && outcome == "rate_limited"
    {
        // Decided here either way: the stamped rate-limit text must not
        // fall through to the auth check below.
        let cooling = w.rate_limit_cooldown > 0 && now - ended < w.rate_limit_cooldown;
        return cooling.then_some(GuardReason::RateLimitCooldown);
    }
    // A spawn error ("permission denied") is no provider wall: its own
    // backoff above decides.
    if backoff.is_none()
        && f.last_failure_error
            .as_deref()
            .is_some_and(is_blocker_error)
        && f.latest_run
            .as_ref()
            .is_some_and(|(_, ended)| now - ended < w.auth_cooldown)
    {
        return Some(GuardReason::BlockerAuth);
    }
    if f.recent_completion
        .is_some_and(|at| now - at <= w.recent_success)
        && !f.requeued_after_completion
    {
        return Some(GuardReason::RecentSuccess);
    }
    if f.recent_comments.iter().any(|c| PR_URL.is_match(c)) {
        return Some(GuardReason::ActivePr);
    }
    None
}

/// The retry time of a latest run that failed to spawn.
fn spawn_backoff_until(f: &GuardFacts) -> Option<i64> {
    f.latest_run
        .as_ref()
        .filter(|(outcome, _)| outcome == "spawn_failed")
        .and(f.spawn_retry_at)
}

/// When the guard holding the task now (`reason`) stops holding it: the
/// moment a dispatcher should look again. `None` when only an event can
/// end it (an active pull request).
pub fn guard_until(f: &GuardFacts, reason: GuardReason, w: &GuardWindows) -> Option<i64> {
    let ended = f.latest_run.as_ref().map(|(_, at)| *at);
    match reason {
        GuardReason::SpawnBackoff => spawn_backoff_until(f),
        GuardReason::RateLimitCooldown => ended.map(|e| e + w.rate_limit_cooldown),
        GuardReason::BlockerAuth => ended.map(|e| e + w.auth_cooldown),
        GuardReason::RecentSuccess => f.recent_completion.map(|c| c + w.recent_success + 1),
        GuardReason::ActivePr => None,
    }
}

/// The guard facts of a pass's candidates, read ahead in batches (one
/// store call, one round trip on a server backend, per batch) instead of
/// one read per candidate. Facts of a task do not depend on the claims of
/// other tasks, so reading them before the earlier candidates are claimed
/// decides exactly as reading them one by one.
pub(crate) struct GuardLookahead {
    ids: Vec<String>,
    facts: Vec<Option<GuardFacts>>,
    /// Candidates before this index have been read.
    read_to: usize,
    /// How many the next read covers.
    chunk: usize,
    success_since: i64,
    comments_since: i64,
}

impl GuardLookahead {
    /// For candidates `ids` (in pass order), windows as their start times.
    pub(crate) fn new(ids: Vec<String>, success_since: i64, comments_since: i64) -> Self {
        GuardLookahead {
            facts: vec![None; ids.len()],
            ids,
            read_to: 0,
            chunk: GUARD_FACTS_BATCH_MIN,
            success_since,
            comments_since,
        }
    }

    /// The facts of candidate `at`; when not read yet, reads them with the
    /// following candidates, at most `room` in all (what the capacity left
    /// can still claim: guarded ones claim nothing, so a later call reads
    /// on).
    pub(crate) fn facts(
        &mut self,
        store: &dyn DispatchStore,
        at: usize,
        room: usize,
    ) -> kanban_store::Result<GuardFacts> {
        if at >= self.read_to {
            let end = at
                .saturating_add(self.chunk.min(room).max(1))
                .min(self.ids.len());
            self.chunk = (self.chunk * 2).min(GUARD_FACTS_BATCH_MAX);
            let read = store.respawn_guard_facts_of(
                &self.ids[at..end],
                self.success_since,
                self.comments_since,
            )?;
            for (slot, facts) in self.facts[at..end].iter_mut().zip(read) {
                *slot = Some(facts);
            }
            self.read_to = end;
        }
        Ok(self
            .facts
            .get_mut(at)
            .and_then(Option::take)
            .unwrap_or_default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_000_000;

    fn facts() -> GuardFacts {
        GuardFacts::default()
    }

    #[test]
    fn fresh_tasks_are_not_guarded() {
        assert_eq!(respawn_guard(&facts(), NOW, &GuardWindows::default()), None);
    }

    #[test]
    fn rate_limited_runs_cool_down_then_probe() {
        let w = GuardWindows::default();
        let f = GuardFacts {
            latest_run: Some(("rate_limited".into(), NOW - 10)),
            last_failure_error: Some("pid 3 exited rate-limited (quota wall)".into()),
            ..facts()
        };
        assert_eq!(
            respawn_guard(&f, NOW, &w),
            Some(GuardReason::RateLimitCooldown)
        );
        // After the cooldown: allowed, and never mistaken for blocker_auth.
        assert_eq!(respawn_guard(&f, NOW + 300, &w), None);
        let off = GuardWindows {
            rate_limit_cooldown: 0,
            ..w
        };
        assert_eq!(respawn_guard(&f, NOW, &off), None);
    }

    #[test]
    fn auth_errors_hold_for_a_cooldown_only() {
        let w = GuardWindows::default();
        for err in [
            "HTTP 403 Forbidden",
            "quota exceeded",
            "Unauthorized",
            "Authentication failed",
            "authorization",
        ] {
            let f = GuardFacts {
                last_failure_error: Some(err.into()),
                latest_run: Some(("crashed".into(), NOW - 5)),
                ..facts()
            };
            assert_eq!(
                respawn_guard(&f, NOW, &w),
                Some(GuardReason::BlockerAuth),
                "{err}"
            );
            assert_eq!(
                respawn_guard(&f, NOW + 300, &w),
                None,
                "{err}: must eventually retry"
            );
        }
        let f = GuardFacts {
            last_failure_error: Some("segfault".into()),
            latest_run: Some(("crashed".into(), NOW)),
            ..facts()
        };
        assert_eq!(respawn_guard(&f, NOW, &w), None);
    }

    #[test]
    fn recent_success_unless_requeued() {
        let w = GuardWindows::default();
        let f = GuardFacts {
            recent_completion: Some(NOW - 60),
            ..facts()
        };
        assert_eq!(respawn_guard(&f, NOW, &w), Some(GuardReason::RecentSuccess));
        let f = GuardFacts {
            requeued_after_completion: true,
            ..f
        };
        assert_eq!(respawn_guard(&f, NOW, &w), None);
        let f = GuardFacts {
            recent_completion: Some(NOW - 7200),
            ..facts()
        };
        assert_eq!(respawn_guard(&f, NOW, &w), None);
    }

    #[test]
    fn failed_spawns_wait_for_their_retry_time() {
        let w = GuardWindows::default();
        let f = GuardFacts {
            latest_run: Some(("spawn_failed".into(), NOW - 2)),
            // Spawn errors may look like auth walls; the backoff decides.
            last_failure_error: Some("permission denied".into()),
            spawn_retry_at: Some(NOW + 8),
            ..facts()
        };
        assert_eq!(respawn_guard(&f, NOW, &w), Some(GuardReason::SpawnBackoff));
        assert_eq!(
            guard_until(&f, GuardReason::SpawnBackoff, &w),
            Some(NOW + 8)
        );
        assert_eq!(respawn_guard(&f, NOW + 8, &w), None);
        // A retry time of an older run does not hold a newer outcome.
        let newer = GuardFacts {
            latest_run: Some(("crashed".into(), NOW)),
            last_failure_error: None,
            ..f
        };
        assert_eq!(respawn_guard(&newer, NOW, &w), None);
    }

    #[test]
    fn guards_end_when_their_window_does() {
        let w = GuardWindows::default();
        let f = GuardFacts {
            latest_run: Some(("rate_limited".into(), NOW - 10)),
            ..facts()
        };
        let until = guard_until(&f, GuardReason::RateLimitCooldown, &w).unwrap();
        assert_eq!(until, NOW - 10 + w.rate_limit_cooldown);
        assert_eq!(
            respawn_guard(&f, until - 1, &w),
            Some(GuardReason::RateLimitCooldown)
        );
        assert_eq!(respawn_guard(&f, until, &w), None);
        assert_eq!(guard_until(&f, GuardReason::ActivePr, &w), None);
    }

    #[test]
    fn pull_request_comments_guard() {
        let f = GuardFacts {
            recent_comments: vec!["opened https://github.com/o/r/pull/42 for review".into()],
            ..facts()
        };
        assert_eq!(
            respawn_guard(&f, NOW, &GuardWindows::default()),
            Some(GuardReason::ActivePr)
        );
        let f = GuardFacts {
            recent_comments: vec!["see https://github.com/o/r/issues/42".into()],
            ..facts()
        };
        assert_eq!(respawn_guard(&f, NOW, &GuardWindows::default()), None);
    }
}
