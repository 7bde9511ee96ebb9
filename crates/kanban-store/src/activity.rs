//! The Activity view's aggregates of a board's history, as a capability
//! trait on top of [`Store`]: tasks finished per bucket, queue depth by
//! status, attempts running per profile, pick-up latency and failures by
//! kind, over the last hour, day or week.
//!
//! What each chart means is decided here, once: which event kinds move a
//! task to which status ([`STATUS_EVENTS`]), which kinds count as a
//! failure ([`FAILURE_KINDS`]), how time is bucketed ([`ActivityWindow`])
//! and how rows become series ([`ActivityBuilder`]). A backend only runs
//! one aggregate query per chart, inside one read snapshot, and hands the
//! rows to the builder, so every backend answers the same [`Activity`]
//! for the same board (the conformance suite checks it).
//!
//! The queue depth is rebuilt from the event log: each task's status is
//! that of its latest status-setting event. Events that do not say where
//! a task went (`linked`, which may send a ready child back to todo) are
//! not counted, so the picture can lag the board until the task's next
//! status event; tasks deleted with their events never appear.

use std::collections::BTreeMap;

use kanban_core::{EventKind, Status};

use crate::{Result, Store};

/// The Activity view's reads.
pub trait ActivityStore: Store {
    /// The aggregates of `req`'s window, read in one snapshot with one
    /// query per chart. Reads only.
    fn activity(&self, req: &ActivityRequest) -> Result<Activity>;
}

/// A time range of the Activity view and its bucket size.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ActivityRange {
    /// The last hour, in 1-minute buckets.
    LastHour,
    /// The last 24 hours, in 15-minute buckets.
    LastDay,
    /// The last 7 days, in 1-hour buckets.
    LastWeek,
}

/// Seconds of one minute, hour, day.
const MINUTE: i64 = 60;
const HOUR: i64 = 60 * MINUTE;
const DAY: i64 = 24 * HOUR;

/// Bucket of the last-day range.
pub const DAY_BUCKET_SECONDS: i64 = 15 * MINUTE;

impl ActivityRange {
    pub const ALL: [ActivityRange; 3] = [
        ActivityRange::LastHour,
        ActivityRange::LastDay,
        ActivityRange::LastWeek,
    ];

    /// The API spelling: `1h`, `24h`, `7d`.
    pub fn as_str(self) -> &'static str {
        match self {
            ActivityRange::LastHour => "1h",
            ActivityRange::LastDay => "24h",
            ActivityRange::LastWeek => "7d",
        }
    }

    pub fn parse(s: &str) -> Option<ActivityRange> {
        ActivityRange::ALL.into_iter().find(|r| r.as_str() == s)
    }

    /// How far back the range reaches.
    pub fn span_seconds(self) -> i64 {
        match self {
            ActivityRange::LastHour => HOUR,
            ActivityRange::LastDay => DAY,
            ActivityRange::LastWeek => 7 * DAY,
        }
    }

    /// One bucket of the range's charts.
    pub fn bucket_seconds(self) -> i64 {
        match self {
            ActivityRange::LastHour => MINUTE,
            ActivityRange::LastDay => DAY_BUCKET_SECONDS,
            ActivityRange::LastWeek => HOUR,
        }
    }

    /// Buckets of the range (60, 96, 168).
    pub fn buckets(self) -> i64 {
        self.span_seconds() / self.bucket_seconds()
    }
}

/// What to aggregate: a range ending with the bucket that holds `now`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ActivityRequest {
    pub range: ActivityRange,
    /// Unix seconds: the caller's clock, so one answer can be cached per
    /// bucket.
    pub now: i64,
}

/// The buckets of one request: `buckets` of `step` seconds from `start`,
/// aligned to multiples of `step`, the last one holding `now` (and so
/// not over yet).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ActivityWindow {
    pub start: i64,
    pub step: i64,
    pub buckets: i64,
    pub now: i64,
}

impl ActivityWindow {
    pub fn new(req: &ActivityRequest) -> ActivityWindow {
        let step = req.range.bucket_seconds();
        let buckets = req.range.buckets();
        let end = (req.now.div_euclid(step) + 1) * step;
        ActivityWindow {
            start: end - buckets * step,
            step,
            buckets,
            now: req.now,
        }
    }

    /// End of the last bucket (exclusive).
    pub fn end(&self) -> i64 {
        self.start + self.buckets * self.step
    }

    pub fn bucket_start(&self, i: usize) -> i64 {
        self.start + i as i64 * self.step
    }

    /// Seconds of bucket `i` that have passed at `now`: the whole bucket
    /// but for the current one (at least 1).
    pub fn elapsed_in(&self, i: usize) -> i64 {
        (self.now - self.bucket_start(i)).clamp(1, self.step)
    }

    fn index(&self, bucket: i64) -> Option<usize> {
        (0..self.buckets)
            .contains(&bucket)
            .then(|| usize::try_from(bucket).ok())
            .flatten()
    }

    fn len(&self) -> usize {
        usize::try_from(self.buckets).unwrap_or(0)
    }
}

/// The charts of one window; every series has one value per bucket.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Activity {
    pub window: ActivityWindow,
    /// `completed` events per bucket.
    pub finished: Vec<i64>,
    /// Tasks in each status at the end of each bucket (at `now` for the
    /// current one), for every status in [`Status::ALL`] order.
    pub queue_depth: Vec<(Status, Vec<i64>)>,
    /// Seconds attempts ran within each bucket, by profile (`""`: runs
    /// without one). Open attempts run until `now`.
    pub busy_seconds: BTreeMap<String, Vec<i64>>,
    /// Pick-up latencies (seconds from becoming ready to being claimed)
    /// of the claims in the window, and how many claims took each.
    pub pickup_latency: BTreeMap<i64, i64>,
    /// Failure events per bucket, by kind (only kinds that occurred).
    pub failures: BTreeMap<String, Vec<i64>>,
}

/// Upper bounds (exclusive, seconds) of the pick-up latency histogram's
/// bins; the last bin holds everything slower.
pub const LATENCY_BIN_EDGES_SECONDS: [i64; 8] = [1, 5, 15, 60, 300, 900, 3600, 14400];

/// One bar of the pick-up latency histogram: `[min, max)` seconds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LatencyBin {
    pub min_seconds: i64,
    /// `None` for the last, open-ended bin.
    pub max_seconds: Option<i64>,
    pub count: i64,
}

impl Activity {
    /// Average attempts running in each bucket, by profile: busy seconds
    /// over the seconds of the bucket that have passed.
    pub fn running_workers(&self) -> Vec<(String, Vec<f64>)> {
        self.busy_seconds
            .iter()
            .map(|(profile, secs)| {
                let avg = secs
                    .iter()
                    .enumerate()
                    .map(|(i, s)| *s as f64 / self.window.elapsed_in(i) as f64)
                    .collect();
                (profile.clone(), avg)
            })
            .collect()
    }

    /// The pick-up latencies in the bins of [`LATENCY_BIN_EDGES_SECONDS`]
    /// (a negative latency, from clocks of several hosts, counts as 0).
    pub fn latency_histogram(&self) -> Vec<LatencyBin> {
        let mut bins: Vec<LatencyBin> = std::iter::once(0)
            .chain(LATENCY_BIN_EDGES_SECONDS)
            .enumerate()
            .map(|(i, min_seconds)| LatencyBin {
                min_seconds,
                max_seconds: LATENCY_BIN_EDGES_SECONDS.get(i).copied(),
                count: 0,
            })
            .collect();
        for (latency, n) in &self.pickup_latency {
            let bin = LATENCY_BIN_EDGES_SECONDS.partition_point(|edge| *edge <= *latency);
            bins[bin].count += n;
        }
        bins
    }

    /// Claims in the window.
    pub fn pickups(&self) -> i64 {
        self.pickup_latency.values().sum()
    }

    /// The latency at or under which `percent` % of the claims were picked
    /// up (nearest rank); `None` without claims.
    pub fn latency_percentile(&self, percent: u32) -> Option<i64> {
        let total = self.pickups();
        if total == 0 {
            return None;
        }
        let rank = ((i64::from(percent.min(100)) * total + 99) / 100).max(1);
        let mut seen = 0;
        self.pickup_latency.iter().find_map(|(latency, n)| {
            seen += n;
            (seen >= rank).then_some(*latency)
        })
    }
}

/// Where the status an event moves its task to comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusSource {
    /// Always this status.
    Fixed(Status),
    /// The payload's `status` key.
    Payload,
    /// The payload's `status` key when present, else this status.
    PayloadOr(Status),
}

/// Event kinds that move a task to a status (the transition rules of
/// `kanban_core::transitions`): the queue-depth chart replays them.
pub const STATUS_EVENTS: &[(EventKind, StatusSource)] = &[
    (EventKind::Created, StatusSource::Payload),
    (EventKind::StatusChanged, StatusSource::Payload),
    (EventKind::Unblocked, StatusSource::PayloadOr(Status::Ready)),
    (EventKind::Promoted, StatusSource::Fixed(Status::Ready)),
    (
        EventKind::PromotedManual,
        StatusSource::Fixed(Status::Ready),
    ),
    (EventKind::Claimed, StatusSource::Fixed(Status::Running)),
    (EventKind::Completed, StatusSource::Fixed(Status::Done)),
    (EventKind::Blocked, StatusSource::Fixed(Status::Blocked)),
    (EventKind::GaveUp, StatusSource::Fixed(Status::Blocked)),
    (
        EventKind::BlockLoopDetected,
        StatusSource::Fixed(Status::Triage),
    ),
    (EventKind::DependencyWait, StatusSource::Fixed(Status::Todo)),
    (EventKind::ClaimRejected, StatusSource::Fixed(Status::Todo)),
    (EventKind::Scheduled, StatusSource::Fixed(Status::Scheduled)),
    (EventKind::Archived, StatusSource::Fixed(Status::Archived)),
    // A running attempt released back to the queue.
    (EventKind::Reclaimed, StatusSource::Fixed(Status::Ready)),
    (EventKind::Crashed, StatusSource::Fixed(Status::Ready)),
    (EventKind::TimedOut, StatusSource::Fixed(Status::Ready)),
    (EventKind::Stale, StatusSource::Fixed(Status::Ready)),
    (EventKind::SpawnFailed, StatusSource::Fixed(Status::Ready)),
    (EventKind::RateLimited, StatusSource::Fixed(Status::Ready)),
    (
        EventKind::ProtocolViolation,
        StatusSource::Fixed(Status::Ready),
    ),
];

/// The event counted as a finished task.
pub const FINISHED_KIND: EventKind = EventKind::Completed;
/// The event that ends a pick-up (the task was ready before it).
pub const PICKUP_KIND: EventKind = EventKind::Claimed;

/// Event kinds of the failures chart: attempts that ended badly and
/// tasks that stopped for a human.
pub const FAILURE_KINDS: &[EventKind] = &[
    EventKind::Crashed,
    EventKind::TimedOut,
    EventKind::SpawnFailed,
    EventKind::RateLimited,
    EventKind::ProtocolViolation,
    EventKind::Stale,
    EventKind::Reclaimed,
    EventKind::GaveUp,
    EventKind::Blocked,
    EventKind::BlockLoopDetected,
    EventKind::CompletionBlockedHallucination,
];

/// `'a', 'b'`: a SQL list of constant names (never user input).
pub fn sql_list<'a>(names: impl IntoIterator<Item = &'a str>) -> String {
    names
        .into_iter()
        .map(|n| format!("'{n}'"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The kinds of [`STATUS_EVENTS`] as a SQL list.
pub fn status_kinds_sql() -> String {
    sql_list(STATUS_EVENTS.iter().map(|(k, _)| k.as_str()))
}

/// Every status as a SQL list (a payload's status must be one of them).
pub fn statuses_sql() -> String {
    sql_list(Status::ALL.iter().map(|s| s.as_str()))
}

/// The kinds of [`FAILURE_KINDS`] as a SQL list.
pub fn failure_kinds_sql() -> String {
    sql_list(FAILURE_KINDS.iter().map(|k| k.as_str()))
}

/// A SQL `CASE` on the `kind` column giving the status an event of
/// [`STATUS_EVENTS`] moves its task to; `payload_status` is the backend's
/// expression for the payload's `status` key (NULL when absent or when the
/// payload is not JSON).
pub fn status_case_sql(payload_status: &str) -> String {
    let mut sql = String::from("CASE kind");
    for (kind, source) in STATUS_EVENTS {
        let then = match source {
            StatusSource::Fixed(s) => format!("'{}'", s.as_str()),
            StatusSource::Payload => payload_status.to_string(),
            StatusSource::PayloadOr(s) => format!("COALESCE({payload_status}, '{}')", s.as_str()),
        };
        sql.push_str(&format!(" WHEN '{}' THEN {then}", kind.as_str()));
    }
    sql.push_str(" END");
    sql
}

/// Folds the rows of a backend's queries into an [`Activity`]. Bucket
/// indexes outside the window are ignored (`-1` means "before the window"
/// for [`ActivityBuilder::transition`]).
#[derive(Debug)]
pub struct ActivityBuilder {
    activity: Activity,
    /// Net change of each status's count per bucket; index 0 is "before
    /// the window", bucket `i` is at `i + 1`.
    depth_changes: Vec<[i64; STATUS_COUNT]>,
}

const STATUS_COUNT: usize = 9;

fn status_index(name: &str) -> Option<usize> {
    Status::ALL.iter().position(|s| s.as_str() == name)
}

impl ActivityBuilder {
    pub fn new(req: &ActivityRequest) -> ActivityBuilder {
        let window = ActivityWindow::new(req);
        let n = window.len();
        ActivityBuilder {
            activity: Activity {
                window,
                finished: vec![0; n],
                ..Activity::default()
            },
            depth_changes: vec![[0; STATUS_COUNT]; n + 1],
        }
    }

    pub fn window(&self) -> &ActivityWindow {
        &self.activity.window
    }

    /// `count` tasks finished in `bucket`.
    pub fn finished(&mut self, bucket: i64, count: i64) {
        if let Some(i) = self.activity.window.index(bucket) {
            self.activity.finished[i] += count;
        }
    }

    /// `count` tasks moved from `from` (`None`: a new task) to `to` in
    /// `bucket` (`-1`: before the window). Unknown statuses are ignored.
    pub fn transition(&mut self, bucket: i64, to: &str, from: Option<&str>, count: i64) {
        let slot = if bucket < 0 {
            Some(0)
        } else {
            self.activity.window.index(bucket).map(|i| i + 1)
        };
        let Some(slot) = slot else { return };
        if from == Some(to) {
            return;
        }
        if let Some(t) = status_index(to) {
            self.depth_changes[slot][t] += count;
        }
        if let Some(f) = from.and_then(status_index) {
            self.depth_changes[slot][f] -= count;
        }
    }

    /// Attempts of `profile` ran `seconds` within `bucket`.
    pub fn busy(&mut self, bucket: i64, profile: &str, seconds: i64) {
        let n = self.activity.window.len();
        if let Some(i) = self.activity.window.index(bucket) {
            self.activity
                .busy_seconds
                .entry(profile.to_string())
                .or_insert_with(|| vec![0; n])[i] += seconds;
        }
    }

    /// `count` claims came `latency_seconds` after their task became ready.
    pub fn pickup(&mut self, latency_seconds: i64, count: i64) {
        *self
            .activity
            .pickup_latency
            .entry(latency_seconds)
            .or_default() += count;
    }

    /// `count` failure events of `kind` in `bucket`.
    pub fn failure(&mut self, bucket: i64, kind: &str, count: i64) {
        let n = self.activity.window.len();
        if let Some(i) = self.activity.window.index(bucket) {
            self.activity
                .failures
                .entry(kind.to_string())
                .or_insert_with(|| vec![0; n])[i] += count;
        }
    }

    pub fn finish(mut self) -> Activity {
        let n = self.activity.window.len();
        let mut level = self.depth_changes[0];
        let mut series: Vec<Vec<i64>> = (0..STATUS_COUNT).map(|_| Vec::with_capacity(n)).collect();
        for changes in &self.depth_changes[1..] {
            for (s, values) in series.iter_mut().enumerate() {
                level[s] += changes[s];
                values.push(level[s]);
            }
        }
        self.activity.queue_depth = Status::ALL.iter().copied().zip(series).collect();
        self.activity
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(range: ActivityRange, now: i64) -> ActivityRequest {
        ActivityRequest { range, now }
    }

    #[test]
    fn windows_are_aligned_and_end_with_the_current_bucket() {
        let w = ActivityWindow::new(&req(ActivityRange::LastHour, 10_000_030));
        assert_eq!(w.step, 60);
        assert_eq!(w.buckets, 60);
        assert_eq!(w.end(), 10_000_080);
        assert_eq!(w.start, 10_000_080 - 3600);
        assert_eq!(w.elapsed_in(59), 10);
        assert_eq!(w.elapsed_in(0), 60);
        let d = ActivityWindow::new(&req(ActivityRange::LastDay, 900 * 1000));
        assert_eq!((d.step, d.buckets), (900, 96));
        assert_eq!(d.end(), 900 * 1001);
        assert_eq!(ActivityRange::LastWeek.buckets(), 168);
        for r in ActivityRange::ALL {
            assert_eq!(ActivityRange::parse(r.as_str()), Some(r));
        }
        assert_eq!(ActivityRange::parse("2h"), None);
    }

    #[test]
    fn builder_folds_transitions_into_levels() {
        let mut b = ActivityBuilder::new(&req(ActivityRange::LastHour, 3600 * 100));
        b.transition(-1, "ready", None, 3);
        b.transition(-1, "running", Some("ready"), 1);
        b.transition(2, "done", Some("running"), 1);
        b.transition(3, "ready", Some("ready"), 5);
        b.transition(4, "nonsense", Some("ready"), 1);
        b.transition(60, "ready", None, 1);
        let a = b.finish();
        let depth = |s: Status| {
            a.queue_depth
                .iter()
                .find(|(x, _)| *x == s)
                .unwrap()
                .1
                .clone()
        };
        assert_eq!(depth(Status::Ready)[0], 2);
        assert_eq!(depth(Status::Ready)[4], 1);
        assert_eq!(depth(Status::Running)[1..3], [1, 0]);
        assert_eq!(depth(Status::Done)[59], 1);
        assert_eq!(a.queue_depth.len(), Status::ALL.len());
    }

    #[test]
    fn latency_bins_and_percentiles() {
        let mut b = ActivityBuilder::new(&req(ActivityRange::LastHour, 0));
        b.pickup(0, 2);
        b.pickup(4, 1);
        b.pickup(70, 1);
        b.pickup(100_000, 1);
        b.pickup(-3, 1);
        let a = b.finish();
        let counts: Vec<i64> = a.latency_histogram().iter().map(|b| b.count).collect();
        assert_eq!(counts, vec![3, 1, 0, 0, 1, 0, 0, 0, 1]);
        assert_eq!(a.latency_histogram()[8].max_seconds, None);
        assert_eq!(a.pickups(), 6);
        assert_eq!(a.latency_percentile(50), Some(0));
        assert_eq!(a.latency_percentile(90), Some(100_000));
        assert_eq!(a.latency_percentile(66), Some(4));
        assert_eq!(a.latency_percentile(67), Some(70));
    }

    #[test]
    fn the_status_case_names_every_status_event() {
        let sql = status_case_sql("P");
        for (kind, _) in STATUS_EVENTS {
            assert!(sql.contains(&format!("WHEN '{}'", kind.as_str())), "{kind}");
        }
        assert!(sql.contains("WHEN 'unblocked' THEN COALESCE(P, 'ready')"));
        assert!(sql.contains("WHEN 'created' THEN P WHEN"));
        assert_eq!(STATUS_COUNT, Status::ALL.len());
    }
}
