//! "Dispatcher stuck" telemetry (reference §3.5), without the reference's
//! false positives (#46800, #80513): a tick only counts as bad when
//! genuinely spawnable work sat idle while capacity was free and nothing
//! (a ceiling, a respawn guard, another dispatcher's lock) explains it.

use std::time::{Duration, Instant};

use kanban_core::defaults::{STUCK_WARNING_BAD_TICKS, STUCK_WARNING_INTERVAL_SECONDS};
use serde::Serialize;

/// What one dispatch pass saw, as far as health is concerned.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TickSummary {
    /// Workers started this pass.
    pub spawned: usize,
    /// Ready/review tasks assigned to a real profile that were left
    /// unclaimed for no reason the pass could name (not capped, not
    /// guarded, not lost to another claimer).
    pub idle_spawnable: usize,
    /// A global ceiling (max running / max in progress) was full.
    pub capacity_full: bool,
    /// The pass did not run: another process held the dispatch lock.
    pub skipped_locked: bool,
}

impl TickSummary {
    /// Spawnable work idle, nothing spawned, capacity free, unexplained.
    pub fn is_bad(&self) -> bool {
        !self.skipped_locked && !self.capacity_full && self.spawned == 0 && self.idle_spawnable > 0
    }
}

/// The warning to log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct StuckWarning {
    pub bad_ticks: u32,
    pub idle_spawnable: usize,
}

impl std::fmt::Display for StuckWarning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "kanban dispatcher stuck: {} spawnable task(s) idle for {} consecutive ticks with free \
             capacity and nothing spawned; check the worker command (PATH, venv, credentials) \
             and the task logs",
            self.idle_spawnable, self.bad_ticks
        )
    }
}

/// Counts consecutive bad ticks; warns after the threshold, at most once
/// per interval. Locked-out ticks neither count nor reset (the holder is
/// the one dispatching).
#[derive(Debug, Clone)]
pub struct StuckDetector {
    threshold: u32,
    interval: Duration,
    bad_ticks: u32,
    last_warned: Option<Instant>,
}

impl Default for StuckDetector {
    fn default() -> Self {
        Self::new(
            STUCK_WARNING_BAD_TICKS,
            Duration::from_secs(STUCK_WARNING_INTERVAL_SECONDS),
        )
    }
}

impl StuckDetector {
    pub fn new(threshold: u32, interval: Duration) -> Self {
        StuckDetector {
            threshold: threshold.max(1),
            interval,
            bad_ticks: 0,
            last_warned: None,
        }
    }

    pub fn bad_ticks(&self) -> u32 {
        self.bad_ticks
    }

    /// Feed one pass; returns the warning to emit, if any.
    pub fn observe(&mut self, tick: &TickSummary, now: Instant) -> Option<StuckWarning> {
        if tick.skipped_locked {
            return None;
        }
        if !tick.is_bad() {
            self.bad_ticks = 0;
            return None;
        }
        self.bad_ticks = self.bad_ticks.saturating_add(1);
        if self.bad_ticks < self.threshold {
            return None;
        }
        if self
            .last_warned
            .is_some_and(|t| now.saturating_duration_since(t) < self.interval)
        {
            return None;
        }
        self.last_warned = Some(now);
        Some(StuckWarning {
            bad_ticks: self.bad_ticks,
            idle_spawnable: tick.idle_spawnable,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BAD: TickSummary = TickSummary {
        spawned: 0,
        idle_spawnable: 2,
        capacity_full: false,
        skipped_locked: false,
    };

    #[test]
    fn warns_after_six_bad_ticks_then_at_most_every_five_minutes() {
        let mut d = StuckDetector::default();
        let t0 = Instant::now();
        for i in 0..5 {
            assert_eq!(d.observe(&BAD, t0 + Duration::from_secs(i)), None);
        }
        let w = d.observe(&BAD, t0 + Duration::from_secs(5)).unwrap();
        assert_eq!(w.bad_ticks, 6);
        assert!(w.to_string().contains("stuck"));
        for i in 6..300 {
            assert_eq!(
                d.observe(&BAD, t0 + Duration::from_secs(i)),
                None,
                "tick {i}"
            );
        }
        assert!(d.observe(&BAD, t0 + Duration::from_secs(305)).is_some());
    }

    #[test]
    fn explained_or_productive_ticks_are_not_bad() {
        for tick in [
            TickSummary { spawned: 1, ..BAD },
            TickSummary {
                idle_spawnable: 0,
                ..BAD
            },
            TickSummary {
                capacity_full: true,
                ..BAD
            },
        ] {
            assert!(!tick.is_bad(), "{tick:?}");
        }
        let mut d = StuckDetector::default();
        let t0 = Instant::now();
        for i in 0..20 {
            // A good tick every fifth resets the streak.
            let tick = if i % 5 == 4 {
                TickSummary {
                    capacity_full: true,
                    ..BAD
                }
            } else {
                BAD
            };
            assert_eq!(d.observe(&tick, t0 + Duration::from_secs(i)), None);
        }
    }

    #[test]
    fn locked_out_ticks_neither_count_nor_reset() {
        let mut d = StuckDetector::new(3, Duration::from_secs(300));
        let t0 = Instant::now();
        let locked = TickSummary {
            skipped_locked: true,
            ..BAD
        };
        assert_eq!(d.observe(&BAD, t0), None);
        assert_eq!(d.observe(&locked, t0), None);
        assert_eq!(d.observe(&BAD, t0), None);
        assert_eq!(d.bad_ticks(), 2);
        assert!(d.observe(&BAD, t0).is_some());
    }
}
