//! The Activity view: `GET /activity`, the board's history aggregated per
//! time bucket by the store ([`kanban_store::activity`]: one query per
//! chart), shaped for the dashboard's charts.
//!
//! Answers are cached per board and range, keyed by the board's latest
//! event id, the hub's change generation and the current bucket: opening
//! the page often, from many tabs, costs one cheap `latest_event_id` read
//! per request and one aggregation per change (or per bucket when idle).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, header::HeaderName};
use axum::response::{IntoResponse, Response};
use kanban_store::activity::{Activity, ActivityRange, ActivityRequest, ActivityWindow};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::api::{ApiQuery, blocking};
use crate::error::{ApiResult, ErrorBody};
use crate::state::AppState;

/// Header saying whether the answer came from the cache (RFC 9211 style:
/// `kanban; hit` or `kanban; fwd=miss; stored`).
pub const CACHE_STATUS_HEADER: &str = "cache-status";
const CACHE_HIT: &str = "kanban; hit";
const CACHE_MISS: &str = "kanban; fwd=miss; stored";
/// Most cached answers (board × range); past it the cache starts over.
pub const ACTIVITY_CACHE_MAX_ENTRIES: usize = 64;
/// Label of attempts whose run names no profile.
pub const NO_PROFILE_LABEL: &str = "(none)";

/// `?range=`: how far back, and so how coarse the buckets are.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Deserialize, Serialize, ToSchema)]
pub enum RangeParam {
    /// The last hour, 1-minute buckets.
    #[default]
    #[serde(rename = "1h")]
    LastHour,
    /// The last 24 hours, 15-minute buckets.
    #[serde(rename = "24h")]
    LastDay,
    /// The last 7 days, 1-hour buckets.
    #[serde(rename = "7d")]
    LastWeek,
}

impl From<RangeParam> for ActivityRange {
    fn from(r: RangeParam) -> ActivityRange {
        match r {
            RangeParam::LastHour => ActivityRange::LastHour,
            RangeParam::LastDay => ActivityRange::LastDay,
            RangeParam::LastWeek => ActivityRange::LastWeek,
        }
    }
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ActivityQuery {
    pub board: Option<String>,
    /// `1h` (default; 1-minute buckets), `24h` (15-minute) or `7d` (1-hour).
    pub range: Option<RangeParam>,
}

/// One value per bucket.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CountSeries {
    /// A status (queue depth) or an event kind (failures).
    pub name: String,
    pub values: Vec<i64>,
    /// Sum of `values` (failures) or the last value (queue depth).
    pub total: i64,
}

/// Attempts of one profile running, per bucket.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct WorkerSeries {
    /// The run's profile, or `(none)`.
    pub profile: String,
    /// Average attempts running during the bucket (busy seconds over the
    /// seconds of the bucket that have passed).
    pub values: Vec<f64>,
    pub busy_seconds: Vec<i64>,
}

/// One bar of the pick-up latency histogram: `[min_seconds, max_seconds)`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct LatencyBinView {
    pub label: String,
    pub min_seconds: i64,
    /// Absent for the last, open-ended bin.
    pub max_seconds: Option<i64>,
    pub count: i64,
}

/// How long ready tasks waited to be claimed (claims in the window).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct LatencyView {
    pub bins: Vec<LatencyBinView>,
    pub claims: i64,
    pub p50_seconds: Option<i64>,
    pub p90_seconds: Option<i64>,
}

/// `GET /activity`: every chart of the Activity view over one window.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ActivityView {
    pub board: String,
    /// `1h`, `24h` or `7d`.
    pub range: String,
    pub bucket_seconds: i64,
    /// Start of the first bucket and end of the last (Unix seconds).
    pub start: i64,
    pub end: i64,
    /// The clock when this answer was computed (cached answers keep it).
    pub generated_at: i64,
    /// The board's latest event when it was computed.
    pub latest_event_id: i64,
    /// Start of each bucket: the x axis of every series.
    pub times: Vec<i64>,
    /// Tasks completed per bucket.
    pub finished: CountSeries,
    /// Tasks per status at the end of each bucket, in column order.
    pub queue_depth: Vec<CountSeries>,
    /// Attempts running per profile.
    pub running_workers: Vec<WorkerSeries>,
    pub pickup_latency: LatencyView,
    /// Failure events (crashed, timed_out, blocked, ...) per kind.
    pub failures: Vec<CountSeries>,
}

/// A duration as a count and a unit: `(5, "s")`, `(15, "m")`, `(4, "h")`.
fn count_and_unit(secs: i64) -> (i64, &'static str) {
    match secs {
        s if s < 60 => (s, "s"),
        s if s < 3600 => (s / 60, "m"),
        s => (s / 3600, "h"),
    }
}

/// A bin's label, short enough for nine under one chart: `<1s`, `1-5s`,
/// `15s-1m`, `4h+`.
fn bin_label(min: i64, max: Option<i64>) -> String {
    let (lo, lo_unit) = count_and_unit(min);
    match max {
        None => format!("{lo}{lo_unit}+"),
        Some(max) => {
            let (hi, hi_unit) = count_and_unit(max);
            if min == 0 {
                format!("<{hi}{hi_unit}")
            } else if lo_unit == hi_unit {
                format!("{lo}-{hi}{hi_unit}")
            } else {
                format!("{lo}{lo_unit}-{hi}{hi_unit}")
            }
        }
    }
}

impl ActivityView {
    fn of(board: &str, range: ActivityRange, a: &Activity, latest_event_id: i64) -> ActivityView {
        let w = &a.window;
        let counts = |name: &str, values: &[i64], total: i64| CountSeries {
            name: name.to_string(),
            values: values.to_vec(),
            total,
        };
        let running_workers = a
            .running_workers()
            .into_iter()
            .map(|(profile, values)| WorkerSeries {
                busy_seconds: a.busy_seconds.get(&profile).cloned().unwrap_or_default(),
                profile: if profile.is_empty() {
                    NO_PROFILE_LABEL.to_string()
                } else {
                    profile
                },
                values,
            })
            .collect();
        let bins = a
            .latency_histogram()
            .into_iter()
            .map(|b| LatencyBinView {
                label: bin_label(b.min_seconds, b.max_seconds),
                min_seconds: b.min_seconds,
                max_seconds: b.max_seconds,
                count: b.count,
            })
            .collect();
        ActivityView {
            board: board.to_string(),
            range: range.as_str().to_string(),
            bucket_seconds: w.step,
            start: w.start,
            end: w.end(),
            generated_at: w.now,
            latest_event_id,
            times: (0..a.finished.len()).map(|i| w.bucket_start(i)).collect(),
            finished: counts("completed", &a.finished, a.finished.iter().sum()),
            queue_depth: a
                .queue_depth
                .iter()
                .map(|(s, v)| counts(s.as_str(), v, v.last().copied().unwrap_or(0)))
                .collect(),
            running_workers,
            pickup_latency: LatencyView {
                bins,
                claims: a.pickups(),
                p50_seconds: a.latency_percentile(50),
                p90_seconds: a.latency_percentile(90),
            },
            failures: a
                .failures
                .iter()
                .map(|(k, v)| counts(k, v, v.iter().sum()))
                .collect(),
        }
    }
}

/// What a cached answer was computed from: any change makes it stale.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    latest_event_id: i64,
    generation: u64,
    window_end: i64,
}

type CacheKey = (String, ActivityRange);
type Cache = Mutex<HashMap<CacheKey, (Stamp, Arc<ActivityView>)>>;

/// Answers by (board location, range). Process-wide: one gateway serves
/// a board from one hub, and a location names one board.
fn cache() -> &'static Cache {
    static CACHE: OnceLock<Cache> = OnceLock::new();
    CACHE.get_or_init(Default::default)
}

fn cached(key: &CacheKey, stamp: Stamp) -> Option<Arc<ActivityView>> {
    let cache = cache().lock().unwrap_or_else(|p| p.into_inner());
    cache
        .get(key)
        .filter(|(s, _)| *s == stamp)
        .map(|(_, v)| v.clone())
}

fn store(key: CacheKey, stamp: Stamp, view: Arc<ActivityView>) {
    let mut cache = cache().lock().unwrap_or_else(|p| p.into_inner());
    if cache.len() >= ACTIVITY_CACHE_MAX_ENTRIES && !cache.contains_key(&key) {
        cache.clear();
    }
    cache.insert(key, (stamp, view));
}

/// The board's activity over the last hour, day or week: tasks finished,
/// queue depth by status, attempts running per profile, pick-up latency
/// and failures by kind, per time bucket.
#[utoipa::path(get, path = "/api/v1/activity", params(ActivityQuery), tag = "board",
    responses(
        (status = 200, body = ActivityView, headers(
            ("cache-status" = String, description = "`kanban; hit` when served from the cache")
        )),
        (status = 400, description = "Unknown range or bad board slug", body = ErrorBody),
        (status = 404, description = "No such board", body = ErrorBody)))]
pub async fn activity(
    State(st): State<AppState>,
    ApiQuery(q): ApiQuery<ActivityQuery>,
) -> ApiResult<Response> {
    let (view, hit) = blocking(move || {
        let board = st.hub.board(q.board.as_deref())?;
        let range = ActivityRange::from(q.range.unwrap_or_default());
        let req = ActivityRequest {
            range,
            now: board.store.now(),
        };
        // Read before aggregating: a commit in between makes the stamp
        // older than the answer, never newer, so it is recomputed.
        let stamp = Stamp {
            latest_event_id: board.store.latest_event_id()?,
            generation: board.change_generation(),
            window_end: ActivityWindow::new(&req).end(),
        };
        let key = (board.location().redacted(), range);
        if let Some(view) = cached(&key, stamp) {
            return Ok((view, true));
        }
        let activity = board.handle().activity().activity(&req)?;
        let view = Arc::new(ActivityView::of(
            &board.slug,
            range,
            &activity,
            stamp.latest_event_id,
        ));
        store(key, stamp, view.clone());
        Ok((view, false))
    })
    .await?;
    let mut resp = Json(&*view).into_response();
    resp.headers_mut().insert(
        HeaderName::from_static(CACHE_STATUS_HEADER),
        HeaderValue::from_static(if hit { CACHE_HIT } else { CACHE_MISS }),
    );
    Ok(resp)
}
