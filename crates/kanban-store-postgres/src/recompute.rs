//! Dependency promotion (`recompute_ready`): set-based, one query gathers
//! the facts of every candidate, and the rule itself is
//! `kanban_core::transitions::promotion::auto_promotion`.

use kanban_core::defaults::FAILURE_LIMIT;
use kanban_core::transitions::Decision;
use kanban_core::transitions::breaker::FailureLimit;
use kanban_core::transitions::promotion::{BlockHistory, PromotionFacts, auto_promotion};
use postgres::Row;
use serde_json::Value;

use crate::db::{Db, DbResult, Tx};
use crate::row::{opt_i64, opt_str, status_of};

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
/// (`promotion::BLOCK_HISTORY_KINDS`) with its payload: whether a
/// `created` event was created with status `blocked` is read in Rust,
/// where invalid JSON simply counts as "no" (SQLite's `json_valid` guard).
const RECOMPUTE_SQL: &str = "SELECT t.id, t.status, t.consecutive_failures, t.max_retries, \
     b.kind, b.payload \
     FROM tasks t LEFT JOIN task_events b ON b.id = CASE WHEN t.status = 'blocked' THEN \
       (SELECT e.id FROM task_events e WHERE e.task_id = t.id \
        AND e.kind IN ('blocked', 'gave_up', 'unblocked', 'created') ORDER BY e.id DESC LIMIT 1) END \
     WHERE t.status IN ('todo', 'blocked') \
     AND NOT EXISTS (SELECT 1 FROM task_links l JOIN tasks p ON p.id = l.parent_id \
       WHERE l.child_id = t.id AND p.status NOT IN ('done', 'archived'))";

/// Rows in the order SQLite returns them (its table order is insertion).
const ORDER: &str = " ORDER BY t.created_at, t.id";

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

/// `payload.status == "blocked"` of a `created` event.
fn created_blocked(kind: Option<&str>, payload: Option<&str>) -> bool {
    kind == Some("created")
        && payload
            .and_then(|p| serde_json::from_str::<Value>(p).ok())
            .is_some_and(|v| v.get("status").and_then(Value::as_str) == Some("blocked"))
}

fn candidate(r: &Row, dispatcher_limit: i64) -> DbResult<Candidate> {
    let status: String = r.try_get(1)?;
    let kind = opt_str(r, 4)?;
    let payload = opt_str(r, 5)?;
    let created_blocked = created_blocked(kind.as_deref(), payload.as_deref());
    Ok(Candidate {
        id: r.try_get(0)?,
        facts: PromotionFacts {
            status: status_of(&status),
            parents_satisfied: true,
            block_history: kind
                .as_deref()
                .and_then(|k| BlockHistory::from_event(k, created_blocked)),
            failures: opt_i64(r, 2)?.unwrap_or(0),
            failure_limit: FailureLimit::effective(opt_i64(r, 3)?, dispatcher_limit),
        },
        status,
    })
}

/// The candidates of `scope` whose parents are all done/archived.
fn candidates(
    db: &Db<'_>,
    dispatcher_limit: i64,
    scope: Option<Scope<'_>>,
) -> DbResult<Vec<Candidate>> {
    let rows = match scope {
        None => db.query(&format!("{RECOMPUTE_SQL}{ORDER}"), &[])?,
        Some(Scope::ChildrenOf(p)) => {
            let sql = format!(
                "{RECOMPUTE_SQL} AND t.id IN (SELECT child_id FROM task_links WHERE parent_id = $1)\
                 {ORDER}"
            );
            db.query(&sql, &[&p])?
        }
        Some(Scope::Ids(ids)) => {
            let sql = format!("{RECOMPUTE_SQL} AND t.id = $1");
            let mut rows = Vec::new();
            for id in ids {
                rows.extend(db.query(&sql, &[id])?);
            }
            rows
        }
    };
    rows.iter()
        .map(|r| candidate(r, dispatcher_limit))
        .collect()
}

/// Ids `recompute_ready` would promote in `scope`, read-only: lets a
/// caller skip the write transaction when nothing is promotable (the
/// write re-checks, so a change in between is harmless).
pub(crate) fn promotable(
    db: &Db<'_>,
    failure_limit: Option<i64>,
    scope: Option<Scope<'_>>,
) -> DbResult<Vec<String>> {
    let limit = failure_limit.unwrap_or(FAILURE_LIMIT);
    Ok(candidates(db, limit, scope)?
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
    for c in candidates(tx, limit, scope)? {
        let Some(d) = c.decision() else {
            continue;
        };
        let n = tx.execute(
            "UPDATE tasks SET status = $1 WHERE id = $2 AND status = $3",
            &[&d.to.as_str(), &c.id, &c.status],
        )?;
        if n == 1 {
            tx.append_event(&c.id, d.event, None, None)?;
            promoted += 1;
        }
    }
    Ok(promoted)
}
