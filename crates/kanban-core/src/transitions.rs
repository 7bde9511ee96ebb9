//! The task state machine (reference §2.2 with the fixes of SPEC §4) as pure
//! functions. A store reads the facts inside its write transaction, asks the
//! rule, and writes the row and the event the rule names in that same
//! transaction. No other code decides a status.

use crate::defaults::BLOCK_RECURRENCE_LIMIT;
use crate::{BlockKind, EventKind, Status};

/// What an actor wants to do to one task.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Dispatcher or `kanban claim`: ready → running.
    Claim,
    /// Dispatcher review pass: review → running.
    ClaimReview,
    Complete,
    Block(Option<BlockKind>),
    Unblock,
    Schedule,
    Promote {
        force: bool,
    },
    /// Operator reclaim: abort the claim, back to ready.
    Reclaim,
    Archive,
    /// Hard delete, allowed only once archived (`archive --rm`).
    DeleteArchived,
    /// Change of assignee; refused while a worker holds the claim.
    Assign,
}

impl Action {
    pub fn verb(self) -> &'static str {
        match self {
            Action::Claim | Action::ClaimReview => "claim",
            Action::Complete => "complete",
            Action::Block(_) => "block",
            Action::Unblock => "unblock",
            Action::Schedule => "schedule",
            Action::Promote { .. } => "promote",
            Action::Reclaim => "reclaim",
            Action::Archive => "archive",
            Action::DeleteArchived => "delete",
            Action::Assign => "assign",
        }
    }

    /// Every action, for exhaustive tables.
    pub fn all() -> Vec<Action> {
        let mut v = vec![
            Action::Claim,
            Action::ClaimReview,
            Action::Complete,
            Action::Block(None),
        ];
        v.extend(BlockKind::ALL.iter().map(|k| Action::Block(Some(*k))));
        v.extend([
            Action::Unblock,
            Action::Schedule,
            Action::Promote { force: false },
            Action::Promote { force: true },
            Action::Reclaim,
            Action::Archive,
            Action::DeleteArchived,
            Action::Assign,
        ]);
        v
    }
}

/// What the rule needs to know about the task, read in the transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskFacts {
    pub status: Status,
    /// Every parent is done or archived (vacuously true without parents).
    pub parents_satisfied: bool,
    /// `claim_lock` is set.
    pub claimed: bool,
    /// Stored `block_kind` (survives unblock).
    pub block_kind: Option<BlockKind>,
    pub block_recurrences: i64,
}

impl TaskFacts {
    pub fn new(status: Status) -> Self {
        TaskFacts {
            status,
            parents_satisfied: true,
            claimed: status == Status::Running,
            block_kind: None,
            block_recurrences: 0,
        }
    }
}

/// An allowed transition: the new status, the event to append, and the
/// side facts a store must write with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub to: Status,
    pub event: EventKind,
    /// New `block_recurrences` value when the action sets it.
    pub block_recurrences: Option<i64>,
}

impl Decision {
    fn to(to: Status, event: EventKind) -> Self {
        Decision {
            to,
            event,
            block_recurrences: None,
        }
    }
}

/// Why an action was refused. `Stays` refusals change nothing; a claim of a
/// ready task with unfinished parents demotes it (`Demote`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// The action does not apply in this status.
    WrongStatus { allowed: &'static [Status] },
    /// Parents are not all done/archived.
    ParentsPending,
    /// Ready task claimed while parents are pending: demote to todo and
    /// record `claim_rejected`.
    Demote { to: Status, event: EventKind },
    /// A worker holds the claim.
    Claimed,
}

const COMPLETABLE: &[Status] = &[Status::Running, Status::Ready, Status::Blocked];
const BLOCKABLE: &[Status] = &[Status::Running, Status::Ready];
const UNBLOCKABLE: &[Status] = &[Status::Blocked, Status::Scheduled];
const SCHEDULABLE: &[Status] = &[
    Status::Todo,
    Status::Ready,
    Status::Running,
    Status::Blocked,
];
const PROMOTABLE: &[Status] = &[Status::Todo, Status::Blocked];
const RECLAIMABLE: &[Status] = &[Status::Running, Status::Ready, Status::Blocked];
const ARCHIVABLE: &[Status] = &[
    Status::Triage,
    Status::Todo,
    Status::Scheduled,
    Status::Ready,
    Status::Running,
    Status::Blocked,
    Status::Review,
    Status::Done,
];

fn require(status: Status, allowed: &'static [Status]) -> Result<(), Refusal> {
    if allowed.contains(&status) {
        Ok(())
    } else {
        Err(Refusal::WrongStatus { allowed })
    }
}

/// The single source of truth for task transitions.
pub fn decide(action: Action, f: &TaskFacts) -> Result<Decision, Refusal> {
    match action {
        Action::Claim => {
            require(f.status, &[Status::Ready])?;
            if f.claimed {
                return Err(Refusal::Claimed);
            }
            if !f.parents_satisfied {
                return Err(Refusal::Demote {
                    to: Status::Todo,
                    event: EventKind::ClaimRejected,
                });
            }
            Ok(Decision::to(Status::Running, EventKind::Claimed))
        }
        Action::ClaimReview => {
            require(f.status, &[Status::Review])?;
            if f.claimed {
                return Err(Refusal::Claimed);
            }
            Ok(Decision::to(Status::Running, EventKind::Claimed))
        }
        Action::Complete => {
            require(f.status, COMPLETABLE)?;
            Ok(Decision::to(Status::Done, EventKind::Completed))
        }
        Action::Block(kind) => {
            require(f.status, BLOCKABLE)?;
            if kind == Some(BlockKind::Dependency) {
                return Ok(Decision::to(Status::Todo, EventKind::DependencyWait));
            }
            let recurrences = if f.block_kind == kind {
                f.block_recurrences + 1
            } else {
                1
            };
            let (to, event) = if recurrences >= BLOCK_RECURRENCE_LIMIT {
                (Status::Triage, EventKind::BlockLoopDetected)
            } else {
                (Status::Blocked, EventKind::Blocked)
            };
            Ok(Decision {
                to,
                event,
                block_recurrences: Some(recurrences),
            })
        }
        Action::Unblock => {
            require(f.status, UNBLOCKABLE)?;
            let to = if f.parents_satisfied {
                Status::Ready
            } else {
                Status::Todo
            };
            Ok(Decision::to(to, EventKind::Unblocked))
        }
        Action::Schedule => {
            require(f.status, SCHEDULABLE)?;
            Ok(Decision::to(Status::Scheduled, EventKind::Scheduled))
        }
        Action::Promote { force } => {
            require(f.status, PROMOTABLE)?;
            if !f.parents_satisfied && !force {
                return Err(Refusal::ParentsPending);
            }
            Ok(Decision::to(Status::Ready, EventKind::PromotedManual))
        }
        Action::Reclaim => {
            require(f.status, RECLAIMABLE)?;
            if f.status != Status::Running && !f.claimed {
                return Err(Refusal::WrongStatus {
                    allowed: &[Status::Running],
                });
            }
            Ok(Decision::to(Status::Ready, EventKind::Reclaimed))
        }
        Action::Archive => {
            require(f.status, ARCHIVABLE)?;
            Ok(Decision::to(Status::Archived, EventKind::Archived))
        }
        Action::DeleteArchived => {
            require(f.status, &[Status::Archived])?;
            Ok(Decision::to(Status::Archived, EventKind::Archived))
        }
        Action::Assign => {
            if f.status == Status::Running && f.claimed {
                return Err(Refusal::Claimed);
            }
            Ok(Decision::to(f.status, EventKind::Assigned))
        }
    }
}

/// Status of a newly created task (reference §2.1, fixed: archived parents
/// satisfy too, and `blocked` sticks because the store writes a `blocked`
/// event with it).
pub fn creation_status(initial_blocked: bool, triage: bool, parents: &[Status]) -> Status {
    if initial_blocked {
        Status::Blocked
    } else if triage {
        Status::Triage
    } else if parents.iter().all(|p| p.satisfies_children()) {
        Status::Ready
    } else {
        Status::Todo
    }
}

/// Automatic promotion by `recompute_ready`: a todo task whose parents are
/// satisfied becomes ready; a blocked task only when the block was not
/// sticky (no worker/human block is the latest block event) and its failure
/// counter is below the effective limit.
pub fn auto_promotes(
    status: Status,
    parents_satisfied: bool,
    sticky_block: bool,
    failures: i64,
    failure_limit: i64,
) -> bool {
    match status {
        Status::Todo => parents_satisfied,
        Status::Blocked => parents_satisfied && !sticky_block && failures < failure_limit,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Status::*;

    /// Every status × every action, with the expected result. A change to
    /// the state machine must change this table.
    #[test]
    fn every_status_and_action() {
        for status in Status::ALL.iter().copied() {
            for action in Action::all() {
                let facts = TaskFacts::new(status);
                let got = decide(action, &facts);
                let expected: Option<(Status, EventKind)> = match (action, status) {
                    (Action::Claim, Ready) => Some((Running, EventKind::Claimed)),
                    (Action::ClaimReview, Review) => Some((Running, EventKind::Claimed)),
                    (Action::Complete, Running | Ready | Blocked) => {
                        Some((Done, EventKind::Completed))
                    }
                    (Action::Block(Some(BlockKind::Dependency)), Running | Ready) => {
                        Some((Todo, EventKind::DependencyWait))
                    }
                    (Action::Block(_), Running | Ready) => Some((Blocked, EventKind::Blocked)),
                    (Action::Unblock, Blocked | Scheduled) => Some((Ready, EventKind::Unblocked)),
                    (Action::Schedule, Todo | Ready | Running | Blocked) => {
                        Some((Scheduled, EventKind::Scheduled))
                    }
                    (Action::Promote { .. }, Todo | Blocked) => {
                        Some((Ready, EventKind::PromotedManual))
                    }
                    (Action::Reclaim, Running) => Some((Ready, EventKind::Reclaimed)),
                    (Action::Archive, s) if s != Archived => Some((Archived, EventKind::Archived)),
                    (Action::DeleteArchived, Archived) => Some((Archived, EventKind::Archived)),
                    (Action::Assign, Running) => None,
                    (Action::Assign, s) => Some((s, EventKind::Assigned)),
                    _ => None,
                };
                match (expected, got) {
                    (Some((to, ev)), Ok(d)) => {
                        assert_eq!((d.to, d.event), (to, ev), "{action:?} from {status}")
                    }
                    (None, Err(_)) => {}
                    (e, g) => panic!("{action:?} from {status}: expected {e:?}, got {g:?}"),
                }
            }
        }
    }

    #[test]
    fn claim_with_pending_parents_demotes() {
        let facts = TaskFacts {
            parents_satisfied: false,
            ..TaskFacts::new(Ready)
        };
        assert_eq!(
            decide(Action::Claim, &facts),
            Err(Refusal::Demote {
                to: Todo,
                event: EventKind::ClaimRejected
            })
        );
        let claimed = TaskFacts {
            claimed: true,
            ..TaskFacts::new(Ready)
        };
        assert_eq!(decide(Action::Claim, &claimed), Err(Refusal::Claimed));
    }

    #[test]
    fn block_loop_routes_to_triage_on_second_same_kind_block() {
        let first = decide(
            Action::Block(Some(BlockKind::NeedsInput)),
            &TaskFacts::new(Running),
        )
        .unwrap();
        assert_eq!((first.to, first.block_recurrences), (Blocked, Some(1)));
        let again = TaskFacts {
            block_kind: Some(BlockKind::NeedsInput),
            block_recurrences: 1,
            ..TaskFacts::new(Running)
        };
        let second = decide(Action::Block(Some(BlockKind::NeedsInput)), &again).unwrap();
        assert_eq!(
            (second.to, second.event),
            (Triage, EventKind::BlockLoopDetected)
        );
        let other = decide(Action::Block(Some(BlockKind::Capability)), &again).unwrap();
        assert_eq!((other.to, other.block_recurrences), (Blocked, Some(1)));
    }

    #[test]
    fn unblock_and_promote_respect_parents() {
        let pending = |s| TaskFacts {
            parents_satisfied: false,
            ..TaskFacts::new(s)
        };
        assert_eq!(decide(Action::Unblock, &pending(Blocked)).unwrap().to, Todo);
        assert_eq!(
            decide(Action::Promote { force: false }, &pending(Todo)),
            Err(Refusal::ParentsPending)
        );
        assert_eq!(
            decide(Action::Promote { force: true }, &pending(Todo))
                .unwrap()
                .to,
            Ready
        );
    }

    #[test]
    fn reclaim_of_claimed_ready_task_is_allowed() {
        let f = TaskFacts {
            claimed: true,
            ..TaskFacts::new(Ready)
        };
        assert_eq!(decide(Action::Reclaim, &f).unwrap().to, Ready);
    }

    #[test]
    fn creation_status_inference() {
        assert_eq!(creation_status(false, false, &[]), Ready);
        assert_eq!(creation_status(false, false, &[Done, Archived]), Ready);
        assert_eq!(creation_status(false, false, &[Done, Running]), Todo);
        assert_eq!(creation_status(false, true, &[]), Triage);
        assert_eq!(creation_status(true, true, &[Running]), Blocked);
    }

    #[test]
    fn auto_promotion_respects_sticky_blocks_and_breaker() {
        assert!(auto_promotes(Todo, true, false, 0, 2));
        assert!(!auto_promotes(Todo, false, false, 0, 2));
        assert!(!auto_promotes(Blocked, true, true, 0, 2));
        assert!(!auto_promotes(Blocked, true, false, 2, 2));
        assert!(auto_promotes(Blocked, true, false, 1, 2));
        for s in [Triage, Ready, Running, Scheduled, Review, Done, Archived] {
            assert!(!auto_promotes(s, true, false, 0, 2));
        }
    }
}
