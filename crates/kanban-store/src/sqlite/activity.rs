//! The Activity view's aggregates (`kanban_store::activity`): one query
//! per chart, all in one read transaction. What the charts mean (which
//! kinds set which status, bucketing) comes from the shared module; this
//! file is only the SQLite spelling. Mirrored by the PostgreSQL backend's
//! `activity.rs`.

use std::sync::OnceLock;

use rusqlite::{Connection, params};

use super::SqliteStore;
use super::row::{i64_or, opt_str, str_or_empty};
use super::txn::DbResult;
use crate::Result;
use crate::activity::{
    Activity, ActivityBuilder, ActivityRequest, ActivityStore, FINISHED_KIND, PICKUP_KIND,
    failure_kinds_sql, status_case_sql, status_kinds_sql, statuses_sql,
};

/// The payload's `status` key; NULL when the payload is NULL or not JSON
/// (a foreign writer's odd row must not fail the whole view).
const PAYLOAD_STATUS: &str =
    "CASE WHEN json_valid(payload) THEN json_extract(payload, '$.status') END";

/// `completed` events per bucket. ?1 start, ?2 end, ?3 step.
fn finished_sql() -> &'static str {
    static SQL: OnceLock<String> = OnceLock::new();
    SQL.get_or_init(|| {
        format!(
            "SELECT (created_at - ?1) / ?3, COUNT(*) FROM task_events \
             WHERE kind = '{}' AND created_at >= ?1 AND created_at < ?2 GROUP BY 1",
            FINISHED_KIND.as_str()
        )
    })
}

/// Status events with the status each follows (per task, in id order),
/// counted per bucket (-1: before the window) and (status, previous).
/// ?1 start, ?2 end, ?3 step.
fn transitions_sql() -> &'static str {
    static SQL: OnceLock<String> = OnceLock::new();
    SQL.get_or_init(|| {
        format!(
            "WITH s AS (SELECT task_id, id, created_at, {case} AS status FROM task_events \
               WHERE kind IN ({kinds}) AND created_at < ?2), \
             d AS (SELECT created_at, status, \
               LAG(status) OVER (PARTITION BY task_id ORDER BY id) AS prev \
               FROM s WHERE status IN ({statuses})) \
             SELECT CASE WHEN created_at < ?1 THEN -1 ELSE (created_at - ?1) / ?3 END, \
               status, prev, COUNT(*) FROM d WHERE prev IS NULL OR prev <> status \
             GROUP BY 1, 2, 3",
            case = status_case_sql(PAYLOAD_STATUS),
            kinds = status_kinds_sql(),
            statuses = statuses_sql(),
        )
    })
}

/// Seconds from the status event before a claim (the one that made the
/// task ready) to the claim, for the claims in the window. ?1 start, ?2 end.
fn pickups_sql() -> &'static str {
    static SQL: OnceLock<String> = OnceLock::new();
    SQL.get_or_init(|| {
        format!(
            "WITH s AS (SELECT task_id, id, kind, created_at, {case} AS status FROM task_events \
               WHERE kind IN ({kinds}) AND created_at < ?2 AND task_id IN \
               (SELECT task_id FROM task_events WHERE kind = '{claim}' \
                AND created_at >= ?1 AND created_at < ?2)), \
             d AS (SELECT kind, created_at, status, LAG(status) OVER w AS prev, \
               LAG(created_at) OVER w AS prev_at FROM s WHERE status IN ({statuses}) \
               WINDOW w AS (PARTITION BY task_id ORDER BY id)) \
             SELECT created_at - prev_at, COUNT(*) FROM d \
             WHERE kind = '{claim}' AND prev = 'ready' AND created_at >= ?1 GROUP BY 1",
            case = status_case_sql(PAYLOAD_STATUS),
            kinds = status_kinds_sql(),
            statuses = statuses_sql(),
            claim = PICKUP_KIND.as_str(),
        )
    })
}

/// Seconds attempts ran within each bucket, by profile; open attempts run
/// until now. ?1 start, ?2 end, ?3 step, ?4 now, ?5 buckets.
const BUSY_SQL: &str = "WITH RECURSIVE b(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM b \
       WHERE i + 1 < ?5), \
     r AS (SELECT COALESCE(profile, '') AS profile, MAX(started_at, ?1) AS s, \
       MIN(COALESCE(ended_at, ?4), ?2) AS e FROM task_runs \
       WHERE started_at < ?2 AND COALESCE(ended_at, ?4) > ?1) \
     SELECT b.i, r.profile, SUM(MIN(r.e, ?1 + (b.i + 1) * ?3) - MAX(r.s, ?1 + b.i * ?3)) \
     FROM r JOIN b ON b.i BETWEEN (r.s - ?1) / ?3 AND (r.e - 1 - ?1) / ?3 \
     WHERE r.e > r.s GROUP BY 1, 2";

/// Failure events per bucket and kind. ?1 start, ?2 end, ?3 step.
fn failures_sql() -> &'static str {
    static SQL: OnceLock<String> = OnceLock::new();
    SQL.get_or_init(|| {
        format!(
            "SELECT (created_at - ?1) / ?3, kind, COUNT(*) FROM task_events \
             WHERE kind IN ({}) AND created_at >= ?1 AND created_at < ?2 GROUP BY 1, 2",
            failure_kinds_sql()
        )
    })
}

fn read_activity(conn: &Connection, req: &ActivityRequest) -> DbResult<Activity> {
    let mut b = ActivityBuilder::new(req);
    let w = *b.window();
    let (start, end, step) = (w.start, w.end(), w.step);

    let mut st = conn.prepare_cached(finished_sql())?;
    let mut rows = st.query(params![start, end, step])?;
    while let Some(r) = rows.next()? {
        b.finished(i64_or(r, 0, -1)?, i64_or(r, 1, 0)?);
    }

    let mut st = conn.prepare_cached(transitions_sql())?;
    let mut rows = st.query(params![start, end, step])?;
    while let Some(r) = rows.next()? {
        let (bucket, n) = (i64_or(r, 0, -1)?, i64_or(r, 3, 0)?);
        b.transition(bucket, &str_or_empty(r, 1)?, opt_str(r, 2)?.as_deref(), n);
    }

    let mut st = conn.prepare_cached(pickups_sql())?;
    let mut rows = st.query(params![start, end])?;
    while let Some(r) = rows.next()? {
        b.pickup(i64_or(r, 0, 0)?, i64_or(r, 1, 0)?);
    }

    let mut st = conn.prepare_cached(BUSY_SQL)?;
    let mut rows = st.query(params![start, end, step, w.now, w.buckets])?;
    while let Some(r) = rows.next()? {
        b.busy(i64_or(r, 0, -1)?, &str_or_empty(r, 1)?, i64_or(r, 2, 0)?);
    }

    let mut st = conn.prepare_cached(failures_sql())?;
    let mut rows = st.query(params![start, end, step])?;
    while let Some(r) = rows.next()? {
        b.failure(i64_or(r, 0, -1)?, &str_or_empty(r, 1)?, i64_or(r, 2, 0)?);
    }
    Ok(b.finish())
}

impl ActivityStore for SqliteStore {
    fn activity(&self, req: &ActivityRequest) -> Result<Activity> {
        self.read_snapshot(|conn| read_activity(conn, req))
    }
}
