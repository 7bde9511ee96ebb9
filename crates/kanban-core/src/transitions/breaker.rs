//! The circuit breaker (reference §3.4): consecutive failed attempts of a
//! task are counted, and at the limit the task is blocked with a `gave_up`
//! event until someone unblocks it.
//!
//! A store reads the task's counter, its `max_retries` and (for protocol
//! violations) its trailing streak of violation runs, asks [`judge`], and
//! writes what the [`Verdict`] says in the same transaction as the release.

use serde_json::{Value, json};

use crate::RunOutcome;
use crate::defaults::FAILURE_ERROR_MAX_CHARS;

/// Where a failure limit comes from (`limit_source` of `gave_up`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LimitSource {
    /// A systemic crash (the same failure across tasks) forces the limit.
    Systemic,
    /// The task's own `max_retries`.
    Task,
    /// The dispatcher's `kanban.failure_limit` (or its default).
    Dispatcher,
}

impl LimitSource {
    pub fn as_str(self) -> &'static str {
        match self {
            LimitSource::Systemic => "systemic",
            LimitSource::Task => "task",
            LimitSource::Dispatcher => "dispatcher",
        }
    }
}

/// The failure limit that applies to a task, and why.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FailureLimit {
    pub limit: i64,
    pub source: LimitSource,
}

impl FailureLimit {
    /// The task's `max_retries` when it sets one, else the dispatcher's.
    pub fn effective(max_retries: Option<i64>, dispatcher_limit: i64) -> FailureLimit {
        match max_retries {
            Some(limit) => FailureLimit {
                limit,
                source: LimitSource::Task,
            },
            None => FailureLimit {
                limit: dispatcher_limit,
                source: LimitSource::Dispatcher,
            },
        }
    }

    /// [`FailureLimit::effective`], unless a systemic failure forces one.
    pub fn with_forced(
        forced: Option<i64>,
        max_retries: Option<i64>,
        dispatcher_limit: i64,
    ) -> FailureLimit {
        match forced {
            Some(limit) => FailureLimit {
                limit,
                source: LimitSource::Systemic,
            },
            None => FailureLimit::effective(max_retries, dispatcher_limit),
        }
    }
}

/// Whether and how a failed attempt counts toward the breaker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Counting {
    /// Expired claim, stale heartbeat, rate limit, excused death: no failure.
    NotCounted,
    /// Crash, timeout, spawn failure: the counter goes up by one and trips
    /// at the task's `max_retries`, else `dispatcher_limit`; a
    /// `forced_limit` (systemic crash) wins over both.
    Counted {
        dispatcher_limit: i64,
        forced_limit: Option<i64>,
    },
    /// Protocol violation (exit 0 without completing): trips only when the
    /// trailing streak of violation runs reaches the task's `max_retries`,
    /// else `default_limit`; below it the counter is left alone.
    ViolationStreak { default_limit: i64 },
}

/// What the breaker knows about the task.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FailureFacts {
    /// `consecutive_failures` before this attempt.
    pub failures: i64,
    pub max_retries: Option<i64>,
    /// Trailing protocol-violation runs, this one included (see
    /// [`violation_streak`]); read only for [`Counting::ViolationStreak`].
    pub violation_streak: i64,
}

/// The breaker tripped: block the task and record `gave_up`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Trip {
    /// The new `consecutive_failures`.
    pub failures: i64,
    pub limit: FailureLimit,
    /// The violation streak that tripped it, for protocol violations.
    pub violations: Option<i64>,
}

impl Trip {
    /// The `gave_up` payload (reference keys; ours: `protocol_violations`
    /// and `protocol_violation_limit` for a violation streak). `error` is
    /// already cut with [`failure_error`].
    pub fn gave_up_payload(&self, error: &str, trigger_outcome: &str) -> Value {
        let mut p = json!({
            "failures": self.failures,
            "effective_limit": self.limit.limit,
            "limit_source": self.limit.source.as_str(),
            "error": error,
            "trigger_outcome": trigger_outcome,
        });
        if let Some(streak) = self.violations {
            p["protocol_violations"] = json!(streak);
            p["protocol_violation_limit"] = json!(self.limit.limit);
        }
        p
    }

    /// Metadata of the `gave_up` run a spawn failure closes.
    pub fn run_metadata(&self, trigger_outcome: &str) -> Value {
        json!({
            "failures": self.failures,
            "trigger_outcome": trigger_outcome,
            "effective_limit": self.limit.limit,
            "limit_source": self.limit.source.as_str(),
        })
    }
}

/// What to write for a failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The counter stays as it is.
    Unchanged,
    /// The counter becomes `failures`, still below the limit.
    Counted {
        failures: i64,
    },
    Trip(Trip),
}

impl Verdict {
    /// The counter after the verdict, given the one before.
    pub fn failures(&self, before: i64) -> i64 {
        match self {
            Verdict::Unchanged => before,
            Verdict::Counted { failures } => *failures,
            Verdict::Trip(t) => t.failures,
        }
    }
}

/// The breaker's decision on one failed attempt.
pub fn judge(counting: Counting, f: &FailureFacts) -> Verdict {
    match counting {
        Counting::NotCounted => Verdict::Unchanged,
        Counting::Counted {
            dispatcher_limit,
            forced_limit,
        } => {
            let failures = f.failures + 1;
            let limit = FailureLimit::with_forced(forced_limit, f.max_retries, dispatcher_limit);
            if failures >= limit.limit {
                Verdict::Trip(Trip {
                    failures,
                    limit,
                    violations: None,
                })
            } else {
                Verdict::Counted { failures }
            }
        }
        Counting::ViolationStreak { default_limit } => {
            let limit = FailureLimit::effective(f.max_retries, default_limit);
            if f.violation_streak >= limit.limit {
                Verdict::Trip(Trip {
                    failures: f.failures + 1,
                    limit,
                    violations: Some(f.violation_streak),
                })
            } else {
                Verdict::Unchanged
            }
        }
    }
}

/// A failure message as stored (`last_failure_error`, run error, payloads):
/// at most [`FAILURE_ERROR_MAX_CHARS`] characters.
pub fn failure_error(error: &str) -> String {
    error.chars().take(FAILURE_ERROR_MAX_CHARS).collect()
}

/// Marks a crashed run as a protocol violation in its metadata.
pub const PROTOCOL_VIOLATION_KEY: &str = "protocol_violation";
/// The same mark in a run's error text (runs written by the reference).
const PROTOCOL_VIOLATION_TEXT: &str = "protocol violation";

/// One ended run, as the streak rules read it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EndedRun<'a> {
    pub outcome: Option<&'a str>,
    pub error: Option<&'a str>,
    /// The run's metadata as stored (JSON text).
    pub metadata: Option<&'a str>,
}

impl EndedRun<'_> {
    /// `metadata[key]` as a bool (false when missing or not JSON).
    pub fn flag(&self, key: &str) -> bool {
        self.metadata
            .and_then(|m| serde_json::from_str::<Value>(m).ok())
            .and_then(|m| m.get(key).and_then(Value::as_bool))
            .unwrap_or(false)
    }

    fn is(&self, outcome: RunOutcome) -> bool {
        self.outcome == Some(outcome.as_str())
    }
}

/// Trailing streak of protocol-violation runs, newest run first:
/// rate-limited runs are skipped, anything else ends the streak.
pub fn violation_streak<'a>(newest_first: impl IntoIterator<Item = EndedRun<'a>>) -> i64 {
    let mut streak = 0;
    for run in newest_first {
        if run.is(RunOutcome::RateLimited) {
            continue;
        }
        let violation = run.is(RunOutcome::Crashed)
            && (run.flag(PROTOCOL_VIOLATION_KEY)
                || run
                    .error
                    .unwrap_or_default()
                    .contains(PROTOCOL_VIOLATION_TEXT));
        if !violation {
            break;
        }
        streak += 1;
    }
    streak
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(failures: i64, max_retries: Option<i64>) -> FailureFacts {
        FailureFacts {
            failures,
            max_retries,
            violation_streak: 0,
        }
    }

    const COUNTED: Counting = Counting::Counted {
        dispatcher_limit: 2,
        forced_limit: None,
    };

    #[test]
    fn limit_precedence_forced_task_dispatcher() {
        let l = FailureLimit::with_forced(Some(1), Some(5), 2);
        assert_eq!((l.limit, l.source.as_str()), (1, "systemic"));
        let l = FailureLimit::with_forced(None, Some(5), 2);
        assert_eq!((l.limit, l.source.as_str()), (5, "task"));
        let l = FailureLimit::effective(None, 2);
        assert_eq!((l.limit, l.source.as_str()), (2, "dispatcher"));
    }

    #[test]
    fn counted_failures_trip_at_the_limit() {
        assert_eq!(
            judge(COUNTED, &facts(0, None)),
            Verdict::Counted { failures: 1 }
        );
        let Verdict::Trip(t) = judge(COUNTED, &facts(1, None)) else {
            panic!("no trip")
        };
        assert_eq!((t.failures, t.limit.limit), (2, 2));
        assert_eq!(
            judge(COUNTED, &facts(1, Some(5))),
            Verdict::Counted { failures: 2 }
        );
        let systemic = Counting::Counted {
            dispatcher_limit: 2,
            forced_limit: Some(1),
        };
        assert!(matches!(
            judge(systemic, &facts(0, Some(5))),
            Verdict::Trip(Trip {
                failures: 1,
                limit: FailureLimit {
                    source: LimitSource::Systemic,
                    ..
                },
                ..
            })
        ));
        assert_eq!(
            judge(Counting::NotCounted, &facts(1, None)),
            Verdict::Unchanged
        );
        assert_eq!(Verdict::Unchanged.failures(3), 3);
    }

    #[test]
    fn violations_trip_on_the_streak_only() {
        let c = Counting::ViolationStreak { default_limit: 3 };
        let f = |streak, max| FailureFacts {
            failures: 0,
            max_retries: max,
            violation_streak: streak,
        };
        assert_eq!(judge(c, &f(2, None)), Verdict::Unchanged);
        let Verdict::Trip(t) = judge(c, &f(3, None)) else {
            panic!("no trip")
        };
        assert_eq!((t.failures, t.violations), (1, Some(3)));
        assert!(matches!(judge(c, &f(1, Some(1))), Verdict::Trip(_)));
    }

    #[test]
    fn gave_up_payload_keys_in_reference_order() {
        let t = Trip {
            failures: 2,
            limit: FailureLimit::effective(None, 2),
            violations: None,
        };
        assert_eq!(
            t.gave_up_payload("boom", "crashed").to_string(),
            r#"{"failures":2,"effective_limit":2,"limit_source":"dispatcher","error":"boom","trigger_outcome":"crashed"}"#
        );
        let v = Trip {
            violations: Some(3),
            ..t
        };
        let p = v.gave_up_payload("e", "crashed");
        assert_eq!(p["protocol_violations"], 3);
        assert_eq!(p["protocol_violation_limit"], 2);
        assert_eq!(
            t.run_metadata("spawn_failed").to_string(),
            r#"{"failures":2,"trigger_outcome":"spawn_failed","effective_limit":2,"limit_source":"dispatcher"}"#
        );
    }

    #[test]
    fn streak_of_violation_runs() {
        let crash = |meta, error| EndedRun {
            outcome: Some("crashed"),
            error,
            metadata: meta,
        };
        let marked = crash(Some(r#"{"protocol_violation": true}"#), None);
        let worded = crash(None, Some("protocol violation: exited 0"));
        let plain = crash(None, Some("segfault"));
        let limited = EndedRun {
            outcome: Some("rate_limited"),
            ..EndedRun::default()
        };
        let done = EndedRun {
            outcome: Some("completed"),
            ..EndedRun::default()
        };
        assert_eq!(violation_streak([marked, limited, worded, done, marked]), 2);
        assert_eq!(violation_streak([plain, marked]), 0);
        assert_eq!(violation_streak([]), 0);
    }

    #[test]
    fn failure_errors_are_cut() {
        let long = "x".repeat(FAILURE_ERROR_MAX_CHARS + 10);
        assert_eq!(
            failure_error(&long).chars().count(),
            FAILURE_ERROR_MAX_CHARS
        );
        assert_eq!(failure_error("é"), "é");
    }
}
