//! The Activity view's aggregates (`kanban_store::activity`): one query
//! per chart, all in one read snapshot. What the charts mean comes from
//! the shared module; this file is only the PostgreSQL spelling of the
//! SQLite backend's `activity.rs` (`GREATEST`/`LEAST` for SQLite's
//! scalar `MAX`/`MIN`, `generate_series` for its recursive bucket list,
//! a regular expression for `json_extract`).

use std::sync::OnceLock;

use kanban_store::Result;
use kanban_store::activity::{
    Activity, ActivityBuilder, ActivityRequest, ActivityStore, FINISHED_KIND, PICKUP_KIND,
    failure_kinds_sql, status_case_sql, status_kinds_sql, statuses_sql,
};

use crate::PgStore;
use crate::db::{Db, DbResult};
use crate::row::{i64_or, opt_str, str_or_empty};

/// The payload's top-level `status` string, NULL when absent. A pattern
/// rather than a `::jsonb` cast, which fails the whole query on one
/// payload that is not JSON (PostgreSQL 15 has no `IS JSON` test).
/// Status names are lowercase words, and the payloads that carry one
/// name no nested `status`, so it finds what SQLite's `json_extract` does.
const PAYLOAD_STATUS: &str = r#"substring(payload from '"status"\s*:\s*"([a-z_]+)"')"#;

/// `completed` events per bucket. $1 start, $2 end, $3 step.
fn finished_sql() -> &'static str {
    static SQL: OnceLock<String> = OnceLock::new();
    SQL.get_or_init(|| {
        format!(
            "SELECT (created_at - $1::bigint) / $3::bigint, COUNT(*) FROM task_events \
             WHERE kind = '{}' AND created_at >= $1::bigint AND created_at < $2::bigint \
             GROUP BY 1",
            FINISHED_KIND.as_str()
        )
    })
}

/// Status events with the status each follows (per task, in id order),
/// counted per bucket (-1: before the window) and (status, previous).
/// $1 start, $2 end, $3 step.
fn transitions_sql() -> &'static str {
    static SQL: OnceLock<String> = OnceLock::new();
    SQL.get_or_init(|| {
        format!(
            "WITH s AS (SELECT task_id, id, created_at, {case} AS status FROM task_events \
               WHERE kind IN ({kinds}) AND created_at < $2::bigint), \
             d AS (SELECT created_at, status, \
               LAG(status) OVER (PARTITION BY task_id ORDER BY id) AS prev \
               FROM s WHERE status IN ({statuses})) \
             SELECT CASE WHEN created_at < $1::bigint THEN -1::bigint \
               ELSE (created_at - $1::bigint) / $3::bigint END, \
               status, prev, COUNT(*) FROM d WHERE prev IS NULL OR prev <> status \
             GROUP BY 1, 2, 3",
            case = status_case_sql(PAYLOAD_STATUS),
            kinds = status_kinds_sql(),
            statuses = statuses_sql(),
        )
    })
}

/// Seconds from the status event before a claim (the one that made the
/// task ready) to the claim, for the claims in the window. $1 start, $2 end.
fn pickups_sql() -> &'static str {
    static SQL: OnceLock<String> = OnceLock::new();
    SQL.get_or_init(|| {
        format!(
            "WITH s AS (SELECT task_id, id, kind, created_at, {case} AS status FROM task_events \
               WHERE kind IN ({kinds}) AND created_at < $2::bigint AND task_id IN \
               (SELECT task_id FROM task_events WHERE kind = '{claim}' \
                AND created_at >= $1::bigint AND created_at < $2::bigint)), \
             d AS (SELECT kind, created_at, status, LAG(status) OVER w AS prev, \
               LAG(created_at) OVER w AS prev_at FROM s WHERE status IN ({statuses}) \
               WINDOW w AS (PARTITION BY task_id ORDER BY id)) \
             SELECT created_at - prev_at, COUNT(*) FROM d \
             WHERE kind = '{claim}' AND prev = 'ready' AND created_at >= $1::bigint GROUP BY 1",
            case = status_case_sql(PAYLOAD_STATUS),
            kinds = status_kinds_sql(),
            statuses = statuses_sql(),
            claim = PICKUP_KIND.as_str(),
        )
    })
}

/// Seconds attempts ran within each bucket, by profile; open attempts run
/// until now. $1 start, $2 end, $3 step, $4 now, $5 buckets.
const BUSY_SQL: &str = "WITH r AS (SELECT COALESCE(profile, '') AS profile, \
       GREATEST(started_at, $1::bigint) AS s, \
       LEAST(COALESCE(ended_at, $4::bigint), $2::bigint) AS e FROM task_runs \
       WHERE started_at < $2::bigint AND COALESCE(ended_at, $4::bigint) > $1::bigint) \
     SELECT b.i, r.profile, SUM(LEAST(r.e, $1::bigint + (b.i + 1) * $3::bigint) \
       - GREATEST(r.s, $1::bigint + b.i * $3::bigint))::bigint \
     FROM r JOIN generate_series(0::bigint, $5::bigint - 1) AS b(i) \
       ON b.i BETWEEN (r.s - $1::bigint) / $3::bigint AND (r.e - 1 - $1::bigint) / $3::bigint \
     WHERE r.e > r.s GROUP BY 1, 2";

/// Failure events per bucket and kind. $1 start, $2 end, $3 step.
fn failures_sql() -> &'static str {
    static SQL: OnceLock<String> = OnceLock::new();
    SQL.get_or_init(|| {
        format!(
            "SELECT (created_at - $1::bigint) / $3::bigint, kind, COUNT(*) FROM task_events \
             WHERE kind IN ({}) AND created_at >= $1::bigint AND created_at < $2::bigint \
             GROUP BY 1, 2",
            failure_kinds_sql()
        )
    })
}

fn read_activity(db: &Db<'_>, req: &ActivityRequest) -> DbResult<Activity> {
    let mut b = ActivityBuilder::new(req);
    let w = *b.window();
    let (start, end, step) = (w.start, w.end(), w.step);

    for r in db.query(finished_sql(), &[&start, &end, &step])? {
        b.finished(i64_or(&r, 0, -1)?, i64_or(&r, 1, 0)?);
    }
    for r in db.query(transitions_sql(), &[&start, &end, &step])? {
        let (bucket, n) = (i64_or(&r, 0, -1)?, i64_or(&r, 3, 0)?);
        b.transition(bucket, &str_or_empty(&r, 1)?, opt_str(&r, 2)?.as_deref(), n);
    }
    for r in db.query(pickups_sql(), &[&start, &end])? {
        b.pickup(i64_or(&r, 0, 0)?, i64_or(&r, 1, 0)?);
    }
    for r in db.query(BUSY_SQL, &[&start, &end, &step, &w.now, &w.buckets])? {
        b.busy(i64_or(&r, 0, -1)?, &str_or_empty(&r, 1)?, i64_or(&r, 2, 0)?);
    }
    for r in db.query(failures_sql(), &[&start, &end, &step])? {
        b.failure(i64_or(&r, 0, -1)?, &str_or_empty(&r, 1)?, i64_or(&r, 2, 0)?);
    }
    Ok(b.finish())
}

impl ActivityStore for PgStore {
    fn activity(&self, req: &ActivityRequest) -> Result<Activity> {
        self.read_snapshot(|db| read_activity(db, req))
    }
}
