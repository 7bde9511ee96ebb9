//! Exit statuses of our own worker children, kept long enough for crash
//! detection to classify them (reference §3.1 step 1, 4).
//!
//! Only the process that spawned a worker can learn how it exited; every
//! other observer sees "pid gone" (`unknown`). The registry is bounded in
//! age and size so a long-lived gateway never grows it without limit.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use kanban_core::defaults::RATE_LIMIT_EXIT_CODE;
use serde::Serialize;

/// How long a reaped exit stays classifiable.
pub const EXIT_REGISTRY_TTL: Duration = Duration::from_secs(600);
/// Most exits kept at once.
pub const EXIT_REGISTRY_MAX: usize = 4_096;

/// How a worker process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum WorkerExit {
    /// Exited normally with this status.
    Exited(i32),
    /// Killed by this signal.
    Signaled(i32),
}

impl WorkerExit {
    /// From a standard library exit status (unix: code or signal).
    pub fn from_status(status: std::process::ExitStatus) -> Self {
        use std::os::unix::process::ExitStatusExt;
        match (status.code(), status.signal()) {
            (Some(code), _) => WorkerExit::Exited(code),
            (None, Some(sig)) => WorkerExit::Signaled(sig),
            // Stopped/continued statuses never reach us from wait(); treat
            // as an abnormal end rather than inventing an exit code.
            (None, None) => WorkerExit::Signaled(0),
        }
    }
}

/// The reference's exit classes (`exit_kind` in `crashed` payloads).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ExitKind {
    /// Status 0 while the task is still running: the worker never called
    /// complete/block (protocol violation).
    CleanExit,
    /// Status 75 (EX_TEMPFAIL): the provider rate-limited the worker.
    RateLimited,
    NonzeroExit,
    Signaled,
    /// Not our child, or reaped too long ago.
    Unknown,
}

impl ExitKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ExitKind::CleanExit => "clean_exit",
            ExitKind::RateLimited => "rate_limited",
            ExitKind::NonzeroExit => "nonzero_exit",
            ExitKind::Signaled => "signaled",
            ExitKind::Unknown => "unknown",
        }
    }
}

/// Class and code (exit status or signal number) of a worker's end.
pub fn classify_exit(exit: Option<WorkerExit>) -> (ExitKind, Option<i32>) {
    match exit {
        None => (ExitKind::Unknown, None),
        Some(WorkerExit::Exited(0)) => (ExitKind::CleanExit, Some(0)),
        Some(WorkerExit::Exited(c)) if c == RATE_LIMIT_EXIT_CODE => {
            (ExitKind::RateLimited, Some(c))
        }
        Some(WorkerExit::Exited(c)) => (ExitKind::NonzeroExit, Some(c)),
        Some(WorkerExit::Signaled(s)) => (ExitKind::Signaled, Some(s)),
    }
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    exit: WorkerExit,
    start_time: Option<u64>,
    at: Instant,
}

/// Bounded map pid → exit of recently reaped children.
#[derive(Debug)]
pub struct ExitRegistry {
    entries: HashMap<i32, Entry>,
    ttl: Duration,
    max: usize,
}

impl Default for ExitRegistry {
    fn default() -> Self {
        Self::new(EXIT_REGISTRY_TTL, EXIT_REGISTRY_MAX)
    }
}

impl ExitRegistry {
    pub fn new(ttl: Duration, max: usize) -> Self {
        ExitRegistry {
            entries: HashMap::new(),
            ttl,
            max: max.max(2),
        }
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Record an exit; a later exit of a recycled pid replaces the older one.
    pub fn record(&mut self, pid: i32, start_time: Option<u64>, exit: WorkerExit, now: Instant) {
        if pid <= 0 {
            return;
        }
        self.entries.insert(
            pid,
            Entry {
                exit,
                start_time,
                at: now,
            },
        );
        if self.entries.len() > self.max / 2 {
            let ttl = self.ttl;
            self.entries
                .retain(|_, e| now.saturating_duration_since(e.at) <= ttl);
        }
        if self.entries.len() > self.max {
            // Still over the cap with only fresh entries: keep the newer half.
            let mut ages: Vec<(i32, Instant)> =
                self.entries.iter().map(|(p, e)| (*p, e.at)).collect();
            ages.sort_by_key(|(_, at)| *at);
            for (pid, _) in ages.iter().take(ages.len() / 2) {
                self.entries.remove(pid);
            }
        }
    }

    /// The exit of `pid`, if reaped within the TTL. With a start time, an
    /// entry recorded for another process that had the same pid is ignored.
    pub fn get(&self, pid: i32, start_time: Option<u64>, now: Instant) -> Option<WorkerExit> {
        self.entry(pid, start_time, now).map(|e| e.exit)
    }

    /// When `pid` was reaped (same rules as [`ExitRegistry::get`]).
    pub fn exited_at(&self, pid: i32, start_time: Option<u64>, now: Instant) -> Option<Instant> {
        self.entry(pid, start_time, now).map(|e| e.at)
    }

    /// Exits reaped between `from` and `to`, both included.
    pub fn between(&self, from: Instant, to: Instant) -> Vec<WorkerExit> {
        self.entries
            .values()
            .filter(|e| e.at >= from && e.at <= to)
            .map(|e| e.exit)
            .collect()
    }

    fn entry(&self, pid: i32, start_time: Option<u64>, now: Instant) -> Option<&Entry> {
        let e = self.entries.get(&pid)?;
        if now.saturating_duration_since(e.at) > self.ttl {
            return None;
        }
        if let (Some(want), Some(have)) = (start_time, e.start_time)
            && want != have
        {
            return None;
        }
        Some(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classification_matches_the_reference() {
        assert_eq!(
            classify_exit(Some(WorkerExit::Exited(0))),
            (ExitKind::CleanExit, Some(0))
        );
        assert_eq!(
            classify_exit(Some(WorkerExit::Exited(75))),
            (ExitKind::RateLimited, Some(75))
        );
        assert_eq!(
            classify_exit(Some(WorkerExit::Exited(2))),
            (ExitKind::NonzeroExit, Some(2))
        );
        assert_eq!(
            classify_exit(Some(WorkerExit::Signaled(9))),
            (ExitKind::Signaled, Some(9))
        );
        assert_eq!(classify_exit(None), (ExitKind::Unknown, None));
        assert_eq!(ExitKind::CleanExit.as_str(), "clean_exit");
    }

    #[test]
    fn entries_expire_after_the_ttl() {
        let t0 = Instant::now();
        let mut r = ExitRegistry::new(Duration::from_secs(600), 16);
        r.record(10, Some(5), WorkerExit::Exited(1), t0);
        assert_eq!(
            r.get(10, Some(5), t0 + Duration::from_secs(600)),
            Some(WorkerExit::Exited(1))
        );
        assert_eq!(r.get(10, Some(5), t0 + Duration::from_secs(601)), None);
    }

    #[test]
    fn a_recycled_pid_does_not_inherit_an_old_exit() {
        let t0 = Instant::now();
        let mut r = ExitRegistry::default();
        r.record(10, Some(5), WorkerExit::Exited(1), t0);
        assert_eq!(r.get(10, Some(6), t0), None);
        assert_eq!(r.get(10, None, t0), Some(WorkerExit::Exited(1)));
    }

    #[test]
    fn exit_times_are_kept_and_windowed() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let mut r = ExitRegistry::default();
        r.record(10, Some(1), WorkerExit::Signaled(9), t0);
        r.record(11, Some(1), WorkerExit::Signaled(9), t0 + ms(400));
        r.record(12, Some(1), WorkerExit::Exited(0), t0 + ms(3_000));
        assert_eq!(r.exited_at(11, Some(1), t0 + ms(500)), Some(t0 + ms(400)));
        assert_eq!(r.exited_at(11, Some(2), t0 + ms(500)), None);
        assert_eq!(r.between(t0, t0 + ms(1_000)).len(), 2);
        assert_eq!(
            r.between(t0 + ms(2_000), t0 + ms(4_000)),
            [WorkerExit::Exited(0)]
        );
    }

    #[test]
    fn size_stays_bounded() {
        let t0 = Instant::now();
        let mut r = ExitRegistry::new(Duration::from_secs(600), 4_096);
        for pid in 1..=10_000 {
            r.record(
                pid,
                None,
                WorkerExit::Exited(0),
                t0 + Duration::from_millis(pid as u64),
            );
            assert!(r.len() <= 4_096);
        }
        // The newest survive.
        assert!(r.get(10_000, None, t0 + Duration::from_secs(11)).is_some());
        // Old entries are dropped by age once the map is half full.
        let later = t0 + Duration::from_secs(700);
        r.record(20_000, None, WorkerExit::Exited(0), later);
        assert_eq!(r.len(), 1);
    }
}
