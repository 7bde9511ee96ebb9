//! Decisions of the dispatcher that depend on facts only: when a task
//! whose worker could not be started is tried again, and whether a dead
//! worker's end is the task's own failure or was caused by its host or
//! its gateway going away (SPEC §6).

use super::breaker::EndedRun;
use crate::RunOutcome;
use crate::defaults::{
    EXCUSED_DEATH_STREAK_LIMIT, MASS_DEATH_MIN_WORKERS, SPAWN_RETRY_BASE_SECONDS,
    SPAWN_RETRY_JITTER, SPAWN_RETRY_MAX_SECONDS,
};

/// Exponential backoff of spawn retries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpawnRetryPolicy {
    /// Delay after the first failure, doubled per consecutive failure.
    pub base_seconds: i64,
    /// Cap of the delay.
    pub max_seconds: i64,
}

impl Default for SpawnRetryPolicy {
    fn default() -> Self {
        SpawnRetryPolicy {
            base_seconds: SPAWN_RETRY_BASE_SECONDS,
            max_seconds: SPAWN_RETRY_MAX_SECONDS,
        }
    }
}

impl SpawnRetryPolicy {
    /// Seconds to wait after the `failures`-th consecutive failure (1 =
    /// the first), before jitter: `base · 2^(failures-1)`, capped.
    pub fn delay(&self, failures: i64) -> i64 {
        let base = self.base_seconds.max(1);
        let cap = self.max_seconds.max(base);
        let doublings = u32::try_from(failures.saturating_sub(1).clamp(0, 62)).unwrap_or(62);
        base.saturating_mul(1_i64.checked_shl(doublings).unwrap_or(i64::MAX))
            .min(cap)
    }

    /// The delay with jitter: shortened by up to [`SPAWN_RETRY_JITTER`] of
    /// itself, by `unit` ∈ [0, 1); never under one second.
    pub fn jittered_delay(&self, failures: i64, unit: f64) -> i64 {
        let d = self.delay(failures) as f64;
        let cut = d * SPAWN_RETRY_JITTER * unit.clamp(0.0, 1.0);
        ((d - cut).round() as i64).max(1)
    }

    /// When the task may be tried again after its `failures`-th consecutive
    /// spawn failure at `failed_at`. The jitter is derived from the task
    /// and the attempt, so every reader computes the same time and tasks
    /// that failed together spread out.
    pub fn next_attempt(&self, task_id: &str, failures: i64, failed_at: i64) -> i64 {
        failed_at + self.jittered_delay(failures, jitter_unit(task_id, failures))
    }
}

/// A number in [0, 1) from a task id and an attempt number (FNV-1a).
pub fn jitter_unit(task_id: &str, failures: i64) -> f64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in task_id.bytes().chain(failures.to_le_bytes()) {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    (h >> 11) as f64 / (1_u64 << 53) as f64
}

/// Why a worker's death is not the task's own failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeathCause {
    /// The machine rebooted under it (another boot id).
    HostRebooted,
    /// The gateway that started and supervised it is gone too.
    SupervisorGone,
    /// Killed from outside together with other workers in the same moment.
    MassDeath,
}

impl DeathCause {
    /// The `reason` of the `reclaimed` event that requeues the task.
    pub fn as_str(self) -> &'static str {
        match self {
            DeathCause::HostRebooted => "host_rebooted",
            DeathCause::SupervisorGone => "supervisor_gone",
            DeathCause::MassDeath => "mass_death",
        }
    }
}

/// How a worker ended, as far as anyone knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeathExit {
    /// Exited with this status: the worker decided to end.
    Code(i32),
    /// Killed by this signal.
    Signal(i32),
    /// Nobody saw it end.
    Unknown,
}

/// What is known about one dead worker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeathFacts {
    /// It was started before the machine's current boot.
    pub rebooted: bool,
    /// The long-lived dispatcher that started it is no longer running.
    pub supervisor_gone: bool,
    pub exit: DeathExit,
    /// Workers (this one included) killed by an outside signal within the
    /// mass-death window around this death.
    pub killed_together: usize,
}

/// Signals that come from outside the worker (an operator, the OOM killer,
/// a service manager, a hang-up), as opposed to its own faults (SIGSEGV,
/// SIGABRT, SIGBUS...). Linux numbering.
pub fn is_external_signal(signal: i32) -> bool {
    const SIGHUP: i32 = 1;
    const SIGINT: i32 = 2;
    const SIGKILL: i32 = 9;
    const SIGTERM: i32 = 15;
    matches!(signal, SIGHUP | SIGINT | SIGKILL | SIGTERM)
}

/// The cause that explains this death without blaming the task, if any.
/// A worker that exited with a status, or died of its own fault, is never
/// excused; one killed from outside is, when its host rebooted, its
/// supervising gateway went away, or several workers were killed at once.
pub fn explained_death(f: &DeathFacts) -> Option<DeathCause> {
    if f.rebooted {
        return Some(DeathCause::HostRebooted);
    }
    let outside = match f.exit {
        DeathExit::Code(_) => return None,
        DeathExit::Signal(s) => is_external_signal(s),
        DeathExit::Unknown => true,
    };
    if !outside {
        return None;
    }
    if f.supervisor_gone {
        return Some(DeathCause::SupervisorGone);
    }
    // Only a seen signal has a moment to compare with others.
    let seen = matches!(f.exit, DeathExit::Signal(_));
    (seen && f.killed_together >= MASS_DEATH_MIN_WORKERS).then_some(DeathCause::MassDeath)
}

/// Key marking a run released without a failure because its worker's
/// death was explained by its host or gateway going away (run metadata).
pub const EXCUSED_KEY: &str = "excused";

/// Excused deaths in the trailing run of deaths of a task (its ended runs,
/// newest first): deaths in a row, counted or not, of which only the
/// excused ones are counted, so a death counted because the excuses ran
/// out keeps them run out. Any other run ends the streak.
pub fn excused_death_streak<'a>(newest_first: impl IntoIterator<Item = EndedRun<'a>>) -> i64 {
    let mut streak = 0;
    for run in newest_first {
        let excused = run.outcome == Some(RunOutcome::Reclaimed.as_str()) && run.flag(EXCUSED_KEY);
        if excused {
            streak += 1;
        } else if run.outcome != Some(RunOutcome::Crashed.as_str()) {
            break;
        }
    }
    streak
}

/// Whether an explained death is still excused after `prior_streak`
/// excused deaths in the task's current run of deaths: past
/// [`EXCUSED_DEATH_STREAK_LIMIT`] it counts like a crash, so a task that
/// keeps taking its gateway or host down with it is eventually blocked.
pub fn death_excused(prior_streak: i64) -> bool {
    prior_streak < EXCUSED_DEATH_STREAK_LIMIT
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_is_capped() {
        let p = SpawnRetryPolicy {
            base_seconds: 5,
            max_seconds: 300,
        };
        let delays: Vec<i64> = (1..=9).map(|n| p.delay(n)).collect();
        assert_eq!(delays, [5, 10, 20, 40, 80, 160, 300, 300, 300]);
        assert_eq!(p.delay(0), 5);
        assert_eq!(p.delay(i64::MAX), 300);
        // A cap below the base is the base; nonsense values stay positive.
        let odd = SpawnRetryPolicy {
            base_seconds: 0,
            max_seconds: -3,
        };
        assert_eq!(odd.delay(4), 1);
    }

    #[test]
    fn jitter_shortens_by_at_most_a_quarter_and_spreads_tasks() {
        let p = SpawnRetryPolicy::default();
        for n in 1..20 {
            for unit in [0.0, 0.5, 0.999] {
                let d = p.jittered_delay(n, unit);
                let full = p.delay(n);
                assert!(
                    d <= full && d as f64 >= full as f64 * 0.75 - 1.0,
                    "{n} {unit}: {d}"
                );
            }
        }
        let at: std::collections::HashSet<i64> = (0..20)
            .map(|i| p.next_attempt(&format!("t_{i:08x}"), 8, 1_000))
            .collect();
        assert!(at.len() > 5, "jitter does not spread: {at:?}");
        // Same task and attempt: same answer, for every reader.
        assert_eq!(
            p.next_attempt("t_1", 3, 1_000),
            p.next_attempt("t_1", 3, 1_000)
        );
        for i in 0..100 {
            let u = jitter_unit(&format!("t_{i}"), i);
            assert!((0.0..1.0).contains(&u));
        }
    }

    fn facts(exit: DeathExit) -> DeathFacts {
        DeathFacts {
            rebooted: false,
            supervisor_gone: false,
            exit,
            killed_together: 1,
        }
    }

    #[test]
    fn a_lone_death_is_the_tasks_own() {
        for exit in [
            DeathExit::Code(1),
            DeathExit::Code(0),
            DeathExit::Signal(9),
            DeathExit::Signal(11),
            DeathExit::Unknown,
        ] {
            assert_eq!(explained_death(&facts(exit)), None, "{exit:?}");
        }
    }

    #[test]
    fn a_reboot_explains_any_death() {
        let f = DeathFacts {
            rebooted: true,
            ..facts(DeathExit::Unknown)
        };
        assert_eq!(explained_death(&f), Some(DeathCause::HostRebooted));
    }

    #[test]
    fn a_gone_supervisor_explains_kills_not_exits_or_faults() {
        let gone = |exit| DeathFacts {
            supervisor_gone: true,
            ..facts(exit)
        };
        assert_eq!(
            explained_death(&gone(DeathExit::Unknown)),
            Some(DeathCause::SupervisorGone)
        );
        assert_eq!(
            explained_death(&gone(DeathExit::Signal(9))),
            Some(DeathCause::SupervisorGone)
        );
        assert_eq!(explained_death(&gone(DeathExit::Code(3))), None);
        assert_eq!(explained_death(&gone(DeathExit::Signal(11))), None);
    }

    #[test]
    fn workers_killed_together_are_excused_faults_together_are_not() {
        let together = |exit, n| DeathFacts {
            killed_together: n,
            ..facts(exit)
        };
        assert_eq!(
            explained_death(&together(DeathExit::Signal(9), 3)),
            Some(DeathCause::MassDeath)
        );
        assert_eq!(
            explained_death(&together(DeathExit::Signal(15), 10)),
            Some(DeathCause::MassDeath)
        );
        assert_eq!(explained_death(&together(DeathExit::Signal(9), 2)), None);
        assert_eq!(explained_death(&together(DeathExit::Signal(6), 10)), None);
        assert_eq!(explained_death(&together(DeathExit::Code(1), 10)), None);
        assert_eq!(explained_death(&together(DeathExit::Unknown, 10)), None);
    }

    #[test]
    fn excuses_run_out() {
        assert!(death_excused(0));
        assert!(death_excused(EXCUSED_DEATH_STREAK_LIMIT - 1));
        assert!(!death_excused(EXCUSED_DEATH_STREAK_LIMIT));
    }

    #[test]
    fn excused_streak_counts_excuses_through_crashes() {
        let run = |outcome, metadata| EndedRun {
            outcome: Some(outcome),
            error: None,
            metadata,
        };
        let excused = run("reclaimed", Some(r#"{"excused": true}"#));
        let crash = run("crashed", None);
        let plain_reclaim = run("reclaimed", None);
        assert_eq!(
            excused_death_streak([excused, crash, excused, plain_reclaim, excused]),
            2
        );
        assert_eq!(excused_death_streak([run("completed", None), excused]), 0);
        assert_eq!(excused_death_streak([]), 0);
    }

    #[test]
    fn causes_have_stable_names() {
        assert_eq!(DeathCause::HostRebooted.as_str(), "host_rebooted");
        assert_eq!(DeathCause::SupervisorGone.as_str(), "supervisor_gone");
        assert_eq!(DeathCause::MassDeath.as_str(), "mass_death");
    }
}
