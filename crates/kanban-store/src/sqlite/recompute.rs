//! Dependency promotion (`recompute_ready`): set-based, one query for the
//! candidates, the rule itself from `kanban_core::transitions`.

use kanban_core::EventKind;
use kanban_core::defaults::FAILURE_LIMIT;
use kanban_core::transitions::auto_promotes;
use rusqlite::{Connection, params};

use super::row::status_of;
use super::txn::{DbResult, Tx};

/// Which tasks a recompute looks at (`None` = the whole board).
pub(crate) enum Scope<'a> {
    /// Children of one task (after it completed / was archived).
    ChildrenOf(&'a str),
    /// These tasks.
    Ids(&'a [String]),
}

/// Candidates whose parents are all done/archived, with what the
/// auto-promotion rule needs: one set-based query, no per-task lookups.
const RECOMPUTE_SQL: &str = "SELECT t.id, t.status, t.consecutive_failures, t.max_retries, \
     CASE WHEN t.status = 'blocked' THEN (SELECT e.kind FROM task_events e WHERE e.task_id = t.id \
       AND e.kind IN ('blocked', 'gave_up', 'unblocked') ORDER BY e.id DESC LIMIT 1) END \
     FROM tasks t WHERE t.status IN ('todo', 'blocked') \
     AND NOT EXISTS (SELECT 1 FROM task_links l JOIN tasks p ON p.id = l.parent_id \
       WHERE l.child_id = t.id AND p.status NOT IN ('done', 'archived'))";

type Cand = (String, String, i64, Option<i64>, Option<String>);

/// The candidates of `scope` whose parents are all done/archived.
fn candidates(conn: &Connection, scope: Option<Scope<'_>>) -> DbResult<Vec<Cand>> {
    let map = |r: &rusqlite::Row<'_>| -> rusqlite::Result<Cand> {
        Ok((
            r.get(0)?,
            r.get(1)?,
            r.get::<_, Option<i64>>(2)?.unwrap_or(0),
            r.get(3)?,
            r.get(4)?,
        ))
    };
    let mut cands: Vec<Cand> = Vec::new();
    match scope {
        None => {
            let mut st = conn.prepare_cached(RECOMPUTE_SQL)?;
            cands = st.query_map([], map)?.collect::<rusqlite::Result<_>>()?;
        }
        Some(Scope::ChildrenOf(p)) => {
            let sql = format!(
                "{RECOMPUTE_SQL} AND t.id IN (SELECT child_id FROM task_links WHERE parent_id = ?1)"
            );
            let mut st = conn.prepare_cached(&sql)?;
            cands = st.query_map([p], map)?.collect::<rusqlite::Result<_>>()?;
        }
        Some(Scope::Ids(ids)) => {
            let sql = format!("{RECOMPUTE_SQL} AND t.id = ?1");
            let mut st = conn.prepare_cached(&sql)?;
            for id in ids {
                cands.extend(
                    st.query_map([id], map)?
                        .collect::<rusqlite::Result<Vec<_>>>()?,
                );
            }
        }
    }
    Ok(cands)
}

/// The auto-promotion rule on one candidate.
fn promotes(c: &Cand, default_limit: i64) -> bool {
    let (_, status, failures, max_retries, last_block) = c;
    // A human/worker block and a circuit-breaker trip both hold until an
    // explicit unblock: the reference re-queues a tripped task as soon as
    // its counter looks low (a raised limit, a protocol-violation streak),
    // which respawns work the breaker just stopped (SPEC §4).
    let sticky = matches!(last_block.as_deref(), Some("blocked" | "gave_up"));
    auto_promotes(
        status_of(status),
        true,
        sticky,
        *failures,
        max_retries.unwrap_or(default_limit),
    )
}

/// Ids `recompute_ready` would promote in `scope`, read-only: lets a
/// caller skip the write transaction when nothing is promotable (the
/// write re-checks, so a change in between is harmless).
pub(crate) fn promotable(
    conn: &Connection,
    failure_limit: Option<i64>,
    scope: Option<Scope<'_>>,
) -> DbResult<Vec<String>> {
    let default_limit = failure_limit.unwrap_or(FAILURE_LIMIT);
    Ok(candidates(conn, scope)?
        .into_iter()
        .filter(|c| promotes(c, default_limit))
        .map(|c| c.0)
        .collect())
}

/// Promote todo tasks (and non-sticky blocked tasks under their failure
/// limit) whose parents are all done or archived; `promoted` event each.
/// Limit precedence: task `max_retries` › `failure_limit` › default.
pub(crate) fn recompute_ready(
    tx: &Tx<'_>,
    failure_limit: Option<i64>,
    scope: Option<Scope<'_>>,
) -> DbResult<usize> {
    let default_limit = failure_limit.unwrap_or(FAILURE_LIMIT);
    let mut promoted = 0;
    let mut upd = tx
        .conn
        .prepare_cached("UPDATE tasks SET status = 'ready' WHERE id = ?1 AND status = ?2")?;
    for c in candidates(tx.conn, scope)? {
        if !promotes(&c, default_limit) {
            continue;
        }
        let (id, status, ..) = c;
        if upd.execute(params![id, status])? == 1 {
            tx.append_event(&id, EventKind::Promoted, None, None)?;
            promoted += 1;
        }
    }
    Ok(promoted)
}
