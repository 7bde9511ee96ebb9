//! Automatic promotion (`recompute_ready`): which todo and blocked tasks
//! become ready on their own once their parents are finished.
//!
//! A store gathers the facts of each candidate (its status, whether every
//! parent is done or archived, its latest block-related event, its failure
//! counter and limit) with one query and asks [`auto_promotion`] per task.

use super::breaker::FailureLimit;
use super::{Decision, Effects};
use crate::{EventKind, Status};

/// Event kinds that tell whether a blocked task's block is sticky: the
/// newest of them is [`BlockHistory`]. A store reads the latest event of
/// these kinds (and, for `created`, whether its payload's status is
/// `blocked`).
pub const BLOCK_HISTORY_KINDS: [EventKind; 4] = [
    EventKind::Blocked,
    EventKind::GaveUp,
    EventKind::Unblocked,
    EventKind::Created,
];

/// The newest block-related event of a blocked task.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlockHistory {
    /// A worker or a human blocked it (`blocked`).
    Blocked,
    /// The circuit breaker tripped (`gave_up`).
    GaveUp,
    /// It was unblocked since (`unblocked`).
    Unblocked,
    /// Its `created` event is the newest; `parked` when it was created with
    /// status `blocked` (`--initial-status blocked`).
    Created { parked: bool },
}

impl BlockHistory {
    /// From the stored event kind (one of [`BLOCK_HISTORY_KINDS`]) and, for
    /// `created`, whether its payload's status is `blocked`; `None` for any
    /// other kind.
    pub fn from_event(kind: &str, created_blocked: bool) -> Option<BlockHistory> {
        Some(match kind {
            k if k == EventKind::Blocked.as_str() => BlockHistory::Blocked,
            k if k == EventKind::GaveUp.as_str() => BlockHistory::GaveUp,
            k if k == EventKind::Unblocked.as_str() => BlockHistory::Unblocked,
            k if k == EventKind::Created.as_str() => BlockHistory::Created {
                parked: created_blocked,
            },
            _ => return None,
        })
    }

    /// A human/worker block and a circuit-breaker trip both hold until an
    /// explicit unblock: the reference re-queues a tripped task as soon as
    /// its counter looks low (a raised limit, a protocol-violation streak),
    /// which respawns work the breaker just stopped (SPEC §4). A task parked
    /// at creation holds the same way: `initial_status=blocked` sticks even
    /// on a board whose `created` event has no `blocked` event after it
    /// (written by the reference).
    pub fn is_sticky(self) -> bool {
        matches!(
            self,
            BlockHistory::Blocked | BlockHistory::GaveUp | BlockHistory::Created { parked: true }
        )
    }
}

/// What automatic promotion needs to know about one task.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PromotionFacts {
    pub status: Status,
    /// Every parent is done or archived.
    pub parents_satisfied: bool,
    /// Newest block-related event (read for blocked tasks only).
    pub block_history: Option<BlockHistory>,
    /// `consecutive_failures`.
    pub failures: i64,
    /// The breaker limit that applies to the task.
    pub failure_limit: FailureLimit,
}

/// The promotion of one task, if it is due: a todo task whose parents are
/// satisfied becomes ready; a blocked task only when its block was not
/// sticky and its failure counter is below its limit.
pub fn auto_promotion(f: &PromotionFacts) -> Option<Decision> {
    let due = f.parents_satisfied
        && match f.status {
            Status::Todo => true,
            Status::Blocked => {
                !f.block_history.is_some_and(BlockHistory::is_sticky)
                    && f.failures < f.failure_limit.limit
            }
            _ => false,
        };
    due.then(|| Decision {
        to: Status::Ready,
        event: EventKind::Promoted,
        block_recurrences: None,
        effects: Effects::default(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use Status::*;

    fn facts(status: Status, history: Option<BlockHistory>, failures: i64) -> PromotionFacts {
        PromotionFacts {
            status,
            parents_satisfied: true,
            block_history: history,
            failures,
            failure_limit: FailureLimit::effective(None, 2),
        }
    }

    #[test]
    fn todo_promotes_once_parents_are_finished() {
        let d = auto_promotion(&facts(Todo, None, 0)).unwrap();
        assert_eq!((d.to, d.event), (Ready, EventKind::Promoted));
        let pending = PromotionFacts {
            parents_satisfied: false,
            ..facts(Todo, None, 0)
        };
        assert_eq!(auto_promotion(&pending), None);
    }

    #[test]
    fn sticky_blocks_and_the_breaker_hold() {
        use BlockHistory::*;
        for sticky in [Blocked, GaveUp, Created { parked: true }] {
            assert!(sticky.is_sticky());
            assert_eq!(
                auto_promotion(&facts(Status::Blocked, Some(sticky), 0)),
                None
            );
        }
        for loose in [Unblocked, Created { parked: false }] {
            assert!(!loose.is_sticky());
            assert!(auto_promotion(&facts(Status::Blocked, Some(loose), 1)).is_some());
        }
        assert!(auto_promotion(&facts(Status::Blocked, None, 1)).is_some());
        // At the limit the breaker holds it.
        assert_eq!(auto_promotion(&facts(Status::Blocked, None, 2)), None);
        let raised = PromotionFacts {
            failure_limit: FailureLimit::effective(Some(5), 2),
            ..facts(Status::Blocked, None, 2)
        };
        assert!(auto_promotion(&raised).is_some());
        for s in [Triage, Ready, Running, Scheduled, Review, Done, Archived] {
            assert_eq!(auto_promotion(&facts(s, None, 0)), None, "{s}");
        }
    }

    #[test]
    fn block_history_from_stored_events() {
        assert_eq!(
            BlockHistory::from_event("blocked", false),
            Some(BlockHistory::Blocked)
        );
        assert_eq!(
            BlockHistory::from_event("gave_up", false),
            Some(BlockHistory::GaveUp)
        );
        assert_eq!(
            BlockHistory::from_event("unblocked", true),
            Some(BlockHistory::Unblocked)
        );
        assert_eq!(
            BlockHistory::from_event("created", true),
            Some(BlockHistory::Created { parked: true })
        );
        assert_eq!(BlockHistory::from_event("commented", false), None);
        for k in BLOCK_HISTORY_KINDS {
            assert!(BlockHistory::from_event(k.as_str(), false).is_some());
        }
    }
}
