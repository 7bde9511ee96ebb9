//! Dependency promotion (`recompute_ready`): set-based, one query gathers
//! the facts of every candidate, and the rule itself is
//! `kanban_core::transitions::promotion::auto_promotion`.

use kanban_core::defaults::FAILURE_LIMIT;
use kanban_core::transitions::Decision;
use kanban_core::transitions::breaker::FailureLimit;
use kanban_core::transitions::promotion::{BlockHistory, PromotionFacts, auto_promotion};
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

/// Todo and blocked tasks whose parents are all done/archived, with the
/// facts the promotion rule needs: one set-based query, no per-task
/// lookups. For a blocked task, the newest of its block-related events
/// (`promotion::BLOCK_HISTORY_KINDS`) and, when that is `created`, whether
/// it was created with status `blocked`.
pub(crate) const RECOMPUTE_SQL: &str = "SELECT t.id, t.status, t.consecutive_failures, t.max_retries, \
     b.kind, CASE WHEN b.kind = 'created' AND json_valid(b.payload) \
       THEN COALESCE(json_extract(b.payload, '$.status') = 'blocked', 0) ELSE 0 END \
     FROM tasks t LEFT JOIN task_events b ON b.id = CASE WHEN t.status = 'blocked' THEN \
       (SELECT e.id FROM task_events e WHERE e.task_id = t.id \
        AND e.kind IN ('blocked', 'gave_up', 'unblocked', 'created') ORDER BY e.id DESC LIMIT 1) END \
     WHERE t.status IN ('todo', 'blocked') \
     AND NOT EXISTS (SELECT 1 FROM task_links l JOIN tasks p ON p.id = l.parent_id \
       WHERE l.child_id = t.id AND p.status NOT IN ('done', 'archived'))";

/// Whether a task has a child at all (see `candidates`).
const HAS_CHILD_SQL: &str = "SELECT 1 FROM task_links WHERE parent_id = ?1 LIMIT 1";

/// One candidate: its id, the status read, and the rule's facts.
struct Candidate {
    id: String,
    status: String,
    facts: PromotionFacts,
}

impl Candidate {
    fn decision(&self) -> Option<Decision> {
        auto_promotion(&self.facts)
    }
}

/// The candidates of `scope` whose parents are all done/archived.
fn candidates(
    conn: &Connection,
    dispatcher_limit: i64,
    scope: Option<Scope<'_>>,
) -> DbResult<Vec<Candidate>> {
    let map = |r: &rusqlite::Row<'_>| -> rusqlite::Result<Candidate> {
        let status: String = r.get(1)?;
        let kind: Option<String> = r.get(4)?;
        let created_blocked: bool = r.get(5)?;
        Ok(Candidate {
            id: r.get(0)?,
            facts: PromotionFacts {
                status: status_of(&status),
                parents_satisfied: true,
                block_history: kind
                    .as_deref()
                    .and_then(|k| BlockHistory::from_event(k, created_blocked)),
                failures: r.get::<_, Option<i64>>(2)?.unwrap_or(0),
                failure_limit: FailureLimit::effective(r.get(3)?, dispatcher_limit),
            },
            status,
        })
    };
    let mut cands: Vec<Candidate> = Vec::new();
    match scope {
        None => {
            let mut st = conn.prepare_cached(RECOMPUTE_SQL)?;
            cands = st.query_map([], map)?.collect::<rusqlite::Result<_>>()?;
        }
        Some(Scope::ChildrenOf(p)) => {
            // Most finished tasks have no children: a one-line probe spares
            // parsing the candidate query (a tenth of a `kanban complete`).
            if !conn.prepare_cached(HAS_CHILD_SQL)?.exists([p])? {
                return Ok(cands);
            }
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

/// Ids `recompute_ready` would promote in `scope`, read-only: lets a
/// caller skip the write transaction when nothing is promotable (the
/// write re-checks, so a change in between is harmless).
pub(crate) fn promotable(
    conn: &Connection,
    failure_limit: Option<i64>,
    scope: Option<Scope<'_>>,
) -> DbResult<Vec<String>> {
    let limit = failure_limit.unwrap_or(FAILURE_LIMIT);
    Ok(candidates(conn, limit, scope)?
        .into_iter()
        .filter(|c| c.decision().is_some())
        .map(|c| c.id)
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
    let limit = failure_limit.unwrap_or(FAILURE_LIMIT);
    let mut promoted = 0;
    for c in candidates(tx.conn, limit, scope)? {
        let Some(d) = c.decision() else {
            continue;
        };
        let mut upd = tx
            .conn
            .prepare_cached("UPDATE tasks SET status = ?1 WHERE id = ?2 AND status = ?3")?;
        if upd.execute(params![d.to.as_str(), c.id, c.status])? == 1 {
            tx.append_event(&c.id, d.event, None, None)?;
            promoted += 1;
        }
    }
    Ok(promoted)
}
