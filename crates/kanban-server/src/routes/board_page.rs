//! The paged board view: `GET /board?limit=N` answers, per column, the
//! first N cards in the column's display order (priority, then age; Done and
//! Archived newest completion first) with the column's total and a keyset
//! cursor; `&column=S&cursor=C` answers the next page of one column. The
//! dashboard draws one page per column and fetches the next when a column
//! is scrolled near its end, so a 5,000-task board costs the browser what a
//! few pages cost. Without `limit`, `column` and `cursor` the route keeps
//! answering the whole board (older clients, the reference's bundle).
//!
//! `q` (every word, case-insensitive, in id, title, assignee, tenant or
//! body) and `assignee` (`(unassigned)` = none) filter on the server, so a
//! search finds cards that were never fetched.

use std::cmp::Ordering;
use std::collections::{BTreeSet, HashMap};

use kanban_core::{Status, Task};
use kanban_store::{CardFacts, TaskQuery};
use serde::Serialize;

use crate::api::*;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

/// Cards per column when a page is asked for without `limit`.
pub const DEFAULT_PAGE_LIMIT: usize = 50;
/// Most cards per column in one answer.
pub const MAX_PAGE_LIMIT: usize = 500;
/// The `assignee` filter value that means "no assignee".
pub const UNASSIGNED: &str = "(unassigned)";

/// One column of the paged view.
#[derive(Debug, Serialize)]
pub struct PagedColumn {
    pub name: String,
    /// This page, in display order.
    pub tasks: Vec<BoardCard>,
    /// Cards of the column matching the filters, on every page.
    pub total: usize,
    /// Pass as `cursor` (with `column`) for the next page; null on the last.
    pub next_cursor: Option<String>,
}

/// `GET /board?limit=…`: the first page of every column (or the next page
/// of one column).
#[derive(Debug, Serialize)]
pub struct BoardPageView {
    pub columns: Vec<PagedColumn>,
    pub tenants: Vec<String>,
    pub assignees: Vec<String>,
    pub latest_event_id: i64,
    pub now: i64,
    pub limit: usize,
}

/// Position of a card in its column: ascending order of this key is the
/// display order (the dashboard sorts the same way).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct SortKey {
    first: i64,
    second: i64,
    id: String,
}

/// A key sorting `x` in descending order: bitwise NOT (`-x - 1`), which,
/// unlike negation, cannot overflow (a priority of `i64::MIN` is accepted)
/// and keeps every value distinct.
fn descending(x: i64) -> i64 {
    !x
}

impl SortKey {
    /// Done and Archived: newest completion first; else highest priority,
    /// then oldest first; ties by id.
    pub fn of(task: &Task, column: Status) -> SortKey {
        match column {
            Status::Done | Status::Archived => SortKey {
                first: descending(task.completed_at.unwrap_or(task.created_at)),
                second: 0,
                id: task.id.clone(),
            },
            _ => SortKey {
                first: descending(task.priority),
                second: task.created_at,
                id: task.id.clone(),
            },
        }
    }

    /// The opaque cursor text (`first:second:id`).
    pub fn cursor(&self) -> String {
        format!("{}:{}:{}", self.first, self.second, self.id)
    }

    pub fn parse(cursor: &str) -> Option<SortKey> {
        let mut parts = cursor.splitn(3, ':');
        let first = parts.next()?.parse().ok()?;
        let second = parts.next()?.parse().ok()?;
        let id = parts.next()?;
        (!id.is_empty()).then(|| SortKey {
            first,
            second,
            id: id.to_string(),
        })
    }

    fn cmp_task(&self, task: &Task, column: Status) -> Ordering {
        SortKey::of(task, column).cmp(self)
    }
}

/// Whether the query asks for the paged view.
pub fn is_paged(q: &BoardViewQuery) -> bool {
    q.limit.is_some() || q.column.is_some() || q.cursor.is_some()
}

/// The search and assignee filters of the paged view.
struct Filter {
    words: Vec<String>,
    assignee: Option<String>,
}

impl Filter {
    fn of(q: &BoardViewQuery) -> Filter {
        Filter {
            words: q
                .q
                .as_deref()
                .unwrap_or("")
                .split_whitespace()
                .map(str::to_lowercase)
                .collect(),
            assignee: q.assignee.clone().filter(|a| !a.is_empty()),
        }
    }

    fn matches(&self, t: &Task) -> bool {
        match self.assignee.as_deref() {
            Some(UNASSIGNED) if t.assignee.is_some() => return false,
            Some(UNASSIGNED) | None => {}
            Some(a) if t.assignee.as_deref() != Some(a) => return false,
            Some(_) => {}
        }
        if self.words.is_empty() {
            return true;
        }
        let hay = format!(
            "{} {} {} {} {}",
            t.id,
            t.title,
            t.assignee.as_deref().unwrap_or(""),
            t.tenant.as_deref().unwrap_or(""),
            t.body.as_deref().unwrap_or("")
        )
        .to_lowercase();
        self.words.iter().all(|w| hay.contains(w.as_str()))
    }
}

/// One card of the board view from its task and the board-wide facts.
pub fn board_card(
    task: Task,
    facts: &HashMap<String, CardFacts>,
    diagnostics: &mut HashMap<String, Vec<kanban_core::diagnostics::Diagnostic>>,
    now: i64,
) -> BoardCard {
    let none = CardFacts::default();
    let f = facts.get(&task.id).unwrap_or(&none);
    let (card_diagnostics, warnings) =
        super::diagnostics::card_fields(diagnostics.remove(&task.id));
    BoardCard {
        diagnostics: card_diagnostics,
        warnings,
        age: TaskAge::of(&task, now),
        latest_summary: f.latest_summary.clone(),
        link_counts: LinkCounts {
            parents: f.parents,
            children: f.children,
        },
        comment_count: f.comments,
        progress: (f.children > 0).then_some(Progress {
            done: f.children_done,
            total: f.children,
        }),
        task,
    }
}

/// The paged board view of `q` (see the module doc): `board_columns` left
/// to right (Archived added on request), ages counted to `now`.
pub fn page(
    st: &AppState,
    q: &BoardViewQuery,
    board_columns: &[Status],
    now: i64,
) -> ApiResult<BoardPageView> {
    let limit = q.limit.unwrap_or(DEFAULT_PAGE_LIMIT);
    if limit > MAX_PAGE_LIMIT {
        return Err(ApiError::bad_request(format!(
            "limit must be between 0 and {MAX_PAGE_LIMIT}"
        )));
    }
    let mut statuses: Vec<Status> = board_columns.to_vec();
    if q.include_archived {
        statuses.push(Status::Archived);
    }
    let only = match q.column.as_deref() {
        None => None,
        Some(c) => match c.parse::<Status>() {
            Ok(s) if statuses.contains(&s) => Some(s),
            _ => {
                return Err(ApiError::bad_request(format!(
                    "column must be one of {}",
                    statuses
                        .iter()
                        .map(|s| s.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                )));
            }
        },
    };
    let after =
        match q.cursor.as_deref() {
            None => None,
            Some(_) if only.is_none() => {
                return Err(ApiError::bad_request("cursor needs column"));
            }
            Some(c) => Some(SortKey::parse(c).ok_or_else(|| {
                ApiError::bad_request("cursor must be a next_cursor of this route")
            })?),
        };
    let board = st.hub.board(q.board.as_deref())?;
    let store = board.store.as_ref();
    let tasks = store.list_tasks(&TaskQuery {
        tenant: q.tenant.clone(),
        include_archived: q.include_archived,
        workflow_template_id: q.workflow_template_id.clone(),
        current_step_key: q.current_step_key.clone(),
        ..Default::default()
    })?;
    let tenants: BTreeSet<String> = tasks.iter().filter_map(|t| t.tenant.clone()).collect();
    let filter = Filter::of(q);
    let mut columns: Vec<(Status, Vec<Task>)> = statuses
        .iter()
        .filter(|s| only.is_none_or(|o| o == **s))
        .map(|s| (*s, Vec::new()))
        .collect();
    for t in tasks {
        if !filter.matches(&t) {
            continue;
        }
        if let Some((_, v)) = columns.iter_mut().find(|(s, _)| *s == t.status) {
            v.push(t);
        }
    }
    // Each column: its total, then the page after the cursor.
    let mut pages: Vec<(Status, usize, Vec<Task>, Option<String>)> = Vec::new();
    for (status, mut list) in columns {
        let total = list.len();
        if let Some(after) = &after {
            list.retain(|t| after.cmp_task(t, status) == Ordering::Greater);
        }
        list.sort_by_cached_key(|t| SortKey::of(t, status));
        let more = list.len() > limit;
        list.truncate(limit);
        let next = if more {
            list.last().map(|t| SortKey::of(t, status).cursor())
        } else {
            None
        };
        pages.push((status, total, list, next));
    }
    let facts = store.card_facts(Some(CARD_SUMMARY_PREVIEW_CHARS))?;
    let mut diagnostics = super::diagnostics::of_tasks(
        &board,
        pages.iter().flat_map(|(_, _, l, _)| l.iter()),
        now,
        &super::diagnostics::config(&st.hub),
    )?;
    let (tenants, assignees) = filter_menus(store, q.tenant.is_some(), tenants)?;
    Ok(BoardPageView {
        columns: pages
            .into_iter()
            .map(|(status, total, list, next_cursor)| PagedColumn {
                name: status.as_str().into(),
                tasks: list
                    .into_iter()
                    .map(|t| board_card(t, &facts, &mut diagnostics, now))
                    .collect(),
                total,
                next_cursor,
            })
            .collect(),
        tenants: tenants.into_iter().collect(),
        assignees: assignees.into_iter().collect(),
        latest_event_id: store.latest_event_id()?,
        now,
        limit,
    })
}

/// The filter menus of a board view: the tenants (every tenant of the
/// board when one is chosen, else those `shown`) and the assignees.
pub(super) fn filter_menus(
    store: &dyn kanban_store::dispatch_ops::DispatchStore,
    tenant_chosen: bool,
    shown: BTreeSet<String>,
) -> ApiResult<(BTreeSet<String>, BTreeSet<String>)> {
    let tenants = if tenant_chosen {
        // The filter menu lists every tenant, not just the chosen one.
        store
            .list_task_lines(&TaskQuery {
                include_archived: true,
                ..Default::default()
            })?
            .into_iter()
            .filter_map(|t| t.tenant)
            .collect()
    } else {
        shown
    };
    let assignees = store
        .assignee_counts()?
        .into_iter()
        .map(|(a, _, _)| a)
        .collect();
    Ok((tenants, assignees))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn descending_keys_never_overflow_and_keep_the_order() {
        let values = [i64::MIN, i64::MIN + 1, -1, 0, 1, i64::MAX];
        let keys: Vec<i64> = values.iter().map(|v| descending(*v)).collect();
        assert!(keys.windows(2).all(|w| w[0] > w[1]), "{keys:?}");
        assert_eq!(descending(i64::MIN), i64::MAX);
    }

    #[test]
    fn cursor_round_trips_and_rejects_garbage() {
        let k = SortKey {
            first: -3,
            second: 1_700_000_000,
            id: "t_ab12".into(),
        };
        assert_eq!(SortKey::parse(&k.cursor()), Some(k));
        for bad in ["", "x", "1:2", "1:2:", "a:2:t_1", "1:b:t_1"] {
            assert_eq!(SortKey::parse(bad), None, "{bad:?}");
        }
    }
}
