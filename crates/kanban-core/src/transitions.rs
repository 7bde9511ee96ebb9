//! The task state machine (reference §2.2 with the fixes of SPEC §4) as pure
//! functions. A store reads the facts inside its write transaction, asks the
//! rule, and writes the row and the event the rule names in that same
//! transaction. No other code decides a status: every write of
//! `tasks.status` in a backend follows a [`Decision`] of [`decide`],
//! [`creation_status`] or [`promotion::auto_promotion`].

use crate::defaults::BLOCK_RECURRENCE_LIMIT;
use crate::{BlockKind, EventKind, Status};

/// The circuit breaker: failure limits, their source, the `gave_up` trip.
pub mod breaker;
/// Concurrency ceilings a claim must fit under.
pub mod ceilings;
/// The dispatcher's own rules: spawn-retry backoff, which worker deaths
/// count toward the breaker.
pub mod dispatcher;
/// Automatic promotion (`recompute_ready`) and sticky blocks.
pub mod promotion;
/// The review flow (request-review, request-changes, reopen-review).
pub mod review;

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
    /// The dashboard's drag-and-drop move to one of [`DIRECT_TARGETS`]
    /// (reference `_set_status_direct`).
    Move(Status),
    /// The dispatcher ends a running attempt (crash, timeout, expired
    /// claim, stale heartbeat, rate limit, spawn failure): back to ready,
    /// recorded with this event. The breaker may block it right after
    /// ([`Action::GiveUp`]).
    Release(EventKind),
    /// The circuit breaker trips: blocked until unblocked, `gave_up`.
    GiveUp,
    /// A parent was linked to this task: a ready task whose new parent is
    /// unfinished waits again (todo). Recorded by the `linked` event.
    Link {
        parent_finished: bool,
    },
    /// A parent moved out of done/archived: a ready child waits again.
    ParentReopened,
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
            Action::Move(_) => "move",
            Action::Release(_) => "release",
            Action::GiveUp => "give up",
            Action::Link { .. } => "link",
            Action::ParentReopened => "demote",
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
        v.extend(Status::ALL.iter().map(|s| Action::Move(*s)));
        v.extend([
            Action::Release(EventKind::Crashed),
            Action::GiveUp,
            Action::Link {
                parent_finished: false,
            },
            Action::Link {
                parent_finished: true,
            },
            Action::ParentReopened,
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
    /// `current_run_id` is set (an attempt is open).
    pub open_run: bool,
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
            open_run: status == Status::Running,
            block_kind: None,
            block_recurrences: 0,
        }
    }
}

/// What a transition implies beyond the task's own row and event.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Effects {
    /// Nothing to write: the task already is where the action puts it.
    pub unchanged: bool,
    /// The task stopped satisfying its children: ready ones go back to todo
    /// ([`Action::ParentReopened`] each).
    pub demote_ready_children: bool,
    /// The task satisfies its children now: re-gate them (automatic
    /// promotion).
    pub regate_children: bool,
}

/// An allowed transition: the new status, the event to append, and the
/// side facts a store must write with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub to: Status,
    pub event: EventKind,
    /// New `block_recurrences` value when the action sets it.
    pub block_recurrences: Option<i64>,
    pub effects: Effects,
}

impl Decision {
    fn to(to: Status, event: EventKind) -> Self {
        Decision {
            to,
            event,
            block_recurrences: None,
            effects: Effects::default(),
        }
    }

    fn with(mut self, effects: Effects) -> Self {
        self.effects = effects;
        self
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
    /// [`Action::Move`] to a status that is not one of [`DIRECT_TARGETS`]
    /// (running belongs to the dispatcher; done, blocked and archived have
    /// their own verbs).
    NotDirectTarget,
}

/// Columns a direct move may target. Everything else has its own verb
/// (complete, block, archive) or belongs to the dispatcher (running).
pub const DIRECT_TARGETS: &[Status] = &[
    Status::Triage,
    Status::Todo,
    Status::Scheduled,
    Status::Ready,
];

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
const RELEASABLE: &[Status] = &[Status::Running];
/// The breaker trips on a released attempt (ready, or review for a review
/// attempt) or while recording a failure of a running one.
const TRIPPABLE: &[Status] = &[Status::Ready, Status::Running, Status::Review];
const DEMOTABLE: &[Status] = &[Status::Ready];

fn require(status: Status, allowed: &'static [Status]) -> Result<(), Refusal> {
    if allowed.contains(&status) {
        Ok(())
    } else {
        Err(Refusal::WrongStatus { allowed })
    }
}

/// Whether `to` may be the target of a direct move at all, whatever the
/// task: checked first, so a bad target is refused as such.
pub fn check_direct_target(to: Status) -> Result<(), Refusal> {
    if DIRECT_TARGETS.contains(&to) {
        Ok(())
    } else {
        Err(Refusal::NotDirectTarget)
    }
}

/// Children of a task leaving `from` for `to` need attention: demoted when
/// it stops satisfying them, re-gated when it starts to.
fn children_effects(from: Status, to: Status) -> Effects {
    Effects {
        demote_ready_children: from.satisfies_children() && !to.satisfies_children(),
        regate_children: to.satisfies_children(),
        ..Effects::default()
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
            Ok(Decision::to(Status::Done, EventKind::Completed)
                .with(children_effects(f.status, Status::Done)))
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
                block_recurrences: Some(recurrences),
                ..Decision::to(to, event)
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
            Ok(Decision::to(Status::Archived, EventKind::Archived)
                .with(children_effects(f.status, Status::Archived)))
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
        Action::Move(to) => {
            check_direct_target(to)?;
            // Moving an idle task to its own column changes nothing.
            if f.status == to && !f.claimed && !f.open_run {
                return Ok(Decision::to(to, EventKind::StatusChanged).with(Effects {
                    unchanged: true,
                    ..Effects::default()
                }));
            }
            if to == Status::Ready && !f.parents_satisfied {
                return Err(Refusal::ParentsPending);
            }
            Ok(Decision::to(to, EventKind::StatusChanged).with(children_effects(f.status, to)))
        }
        Action::Release(event) => {
            require(f.status, RELEASABLE)?;
            Ok(Decision::to(Status::Ready, event))
        }
        Action::GiveUp => {
            require(f.status, TRIPPABLE)?;
            Ok(Decision::to(Status::Blocked, EventKind::GaveUp))
        }
        Action::Link { parent_finished } => {
            let to = if f.status == Status::Ready && !parent_finished {
                Status::Todo
            } else {
                f.status
            };
            Ok(Decision::to(to, EventKind::Linked))
        }
        Action::ParentReopened => {
            require(f.status, DEMOTABLE)?;
            Ok(Decision::to(Status::Todo, EventKind::StatusChanged))
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

/// Events a new task in `status` is created with, in order: `created`,
/// and for a parked (`blocked`) task a `blocked` event, which the reference
/// does not write, so its recompute silently re-queues the task (#39609);
/// with it the block sticks for both implementations.
pub fn creation_events(status: Status) -> &'static [EventKind] {
    if status == Status::Blocked {
        &[EventKind::Created, EventKind::Blocked]
    } else {
        &[EventKind::Created]
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
                    (Action::Move(to), _) if DIRECT_TARGETS.contains(&to) => {
                        Some((to, EventKind::StatusChanged))
                    }
                    (Action::Release(ev), Running) => Some((Ready, ev)),
                    (Action::GiveUp, Ready | Running | Review) => {
                        Some((Blocked, EventKind::GaveUp))
                    }
                    (
                        Action::Link {
                            parent_finished: false,
                        },
                        Ready,
                    ) => Some((Todo, EventKind::Linked)),
                    (Action::Link { .. }, s) => Some((s, EventKind::Linked)),
                    (Action::ParentReopened, Ready) => Some((Todo, EventKind::StatusChanged)),
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
    fn direct_moves() {
        assert_eq!(check_direct_target(Running), Err(Refusal::NotDirectTarget));
        assert_eq!(check_direct_target(Done), Err(Refusal::NotDirectTarget));
        // An idle task moved to its own column: nothing to write.
        let same = decide(Action::Move(Todo), &TaskFacts::new(Todo)).unwrap();
        assert!(same.effects.unchanged);
        // A claimed or running one is still moved (its claim is cleared).
        let claimed = TaskFacts {
            claimed: true,
            ..TaskFacts::new(Ready)
        };
        assert!(
            !decide(Action::Move(Ready), &claimed)
                .unwrap()
                .effects
                .unchanged
        );
        let pending = TaskFacts {
            parents_satisfied: false,
            ..TaskFacts::new(Todo)
        };
        assert_eq!(
            decide(Action::Move(Ready), &pending),
            Err(Refusal::ParentsPending)
        );
        assert_eq!(decide(Action::Move(Triage), &pending).unwrap().to, Triage);
        // Reopening a finished task demotes its ready children.
        for from in [Done, Archived] {
            let d = decide(Action::Move(Todo), &TaskFacts::new(from)).unwrap();
            assert!(d.effects.demote_ready_children && !d.effects.regate_children);
        }
        let d = decide(Action::Move(Scheduled), &TaskFacts::new(Blocked)).unwrap();
        assert_eq!(d.effects, Effects::default());
    }

    #[test]
    fn finishing_regates_children() {
        for (action, from) in [
            (Action::Complete, Running),
            (Action::Complete, Blocked),
            (Action::Archive, Todo),
            (Action::Archive, Done),
        ] {
            let d = decide(action, &TaskFacts::new(from)).unwrap();
            assert!(d.effects.regate_children, "{action:?} from {from}");
            assert!(!d.effects.demote_ready_children);
        }
        let d = decide(Action::Block(None), &TaskFacts::new(Running)).unwrap();
        assert!(!d.effects.regate_children);
    }

    #[test]
    fn created_blocked_writes_a_sticky_block() {
        assert_eq!(
            creation_events(Blocked),
            &[EventKind::Created, EventKind::Blocked]
        );
        for s in [Ready, Todo, Triage] {
            assert_eq!(creation_events(s), &[EventKind::Created]);
        }
    }
}
