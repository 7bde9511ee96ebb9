//! The respawn guard (reference `check_respawn_guard`): reasons not to
//! start a ready task again right now. The task stays ready; the pass
//! records `(task, reason)` and a `respawn_guarded` event.
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
use kanban_store::dispatch_ops::GuardFacts;
use regex::Regex;
use serde::Serialize;

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
    RateLimitCooldown,
    BlockerAuth,
    RecentSuccess,
    ActivePr,
}

impl GuardReason {
    pub fn as_str(self) -> &'static str {
        match self {
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

/// The first guard that applies, in the reference's order.
pub fn respawn_guard(f: &GuardFacts, now: i64, w: &GuardWindows) -> Option<GuardReason> {
    if let Some((outcome, ended)) = &f.latest_run
        && outcome == "rate_limited"
    {
        // Decided here either way: the stamped rate-limit text must not
        // fall through to the auth check below.
        let cooling = w.rate_limit_cooldown > 0 && now - ended < w.rate_limit_cooldown;
        return cooling.then_some(GuardReason::RateLimitCooldown);
    }
    if f.last_failure_error
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
