//! A model-based property test of the task state machine.
//!
//! [`Model`] is a small in-memory copy of what the store keeps about each
//! task: its status, parents, who holds the claim, its runs (open or with
//! their outcome) and its block kind and count (the loop breaker). Random
//! sequences of [`Op`]s from a few simulated callers (each its own store
//! handle and claim lock, presenting current, missing or stale run ids)
//! are applied to the model and to a real board; after every step the
//! board must show what the model predicts: the result, the event kinds
//! appended per task, and every task's status, claim, runs and links
//! (`sut.rs`). Independently of the model, a task entering ready or
//! running must have every parent done or archived (an operator reclaim
//! excepted: it returns a running task to ready as it is, and the next
//! claim demotes it).
//!
//! The rules are the store's, read from `kanban_core::transitions` and
//! the SQLite backend: what a rule does not cover (free-form edits,
//! comments, attachments, the dispatcher's releases) is left out rather
//! than modelled loosely.

mod rules;
mod sut;

use kanban_core::{BlockKind, EventKind, Status};
use proptest::prelude::*;
use proptest::strategy::Union;
use proptest_state_machine::ReferenceStateMachine;

pub use sut::state_machine_matches_the_model;

/// Tasks a sequence creates at most: few tasks, many interactions.
pub const MAX_TASKS: usize = 8;
/// Simulated callers (store handles and claim locks).
pub const CALLERS: usize = 3;
/// Steps per generated sequence (shrinking may cut it shorter).
pub const STEPS: std::ops::RangeInclusive<usize> = 20..=40;
/// Sequences per run (`PROPTEST_CASES` overrides).
pub const CASES: u32 = 64;

/// The run id a caller presents with a fenced operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fence {
    /// No run id (an operator, or a worker of an older version).
    None,
    /// The task's open run, if it has one (else no run id).
    Current,
    /// A run id that is not the task's current one: an earlier run of the
    /// task, or an id no run has.
    Stale,
}

/// One operation of one caller. Tasks are named by creation order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    Create {
        caller: usize,
        parents: Vec<usize>,
        blocked: bool,
    },
    Link {
        caller: usize,
        parent: usize,
        child: usize,
    },
    /// With `cap`, a `max_running` ceiling.
    Claim {
        caller: usize,
        task: usize,
        cap: Option<i64>,
    },
    /// With `own_lock`, the caller's claim lock is presented too.
    Heartbeat {
        caller: usize,
        task: usize,
        fence: Fence,
        own_lock: bool,
    },
    Complete {
        caller: usize,
        task: usize,
        fence: Fence,
        summary: bool,
    },
    Block {
        caller: usize,
        task: usize,
        kind: Option<BlockKind>,
        fence: Fence,
        reason: bool,
    },
    Unblock {
        caller: usize,
        task: usize,
    },
    Schedule {
        caller: usize,
        task: usize,
    },
    Reclaim {
        caller: usize,
        task: usize,
    },
    Archive {
        caller: usize,
        task: usize,
    },
    Delete {
        caller: usize,
        task: usize,
        require_archived: bool,
    },
    /// `promote_task` without force.
    Promote {
        caller: usize,
        task: usize,
    },
    /// `recompute_ready`: the dispatcher's promotion pass.
    Recompute {
        caller: usize,
    },
}

impl Op {
    pub fn caller(&self) -> usize {
        match self {
            Op::Create { caller, .. }
            | Op::Link { caller, .. }
            | Op::Claim { caller, .. }
            | Op::Heartbeat { caller, .. }
            | Op::Complete { caller, .. }
            | Op::Block { caller, .. }
            | Op::Unblock { caller, .. }
            | Op::Schedule { caller, .. }
            | Op::Reclaim { caller, .. }
            | Op::Archive { caller, .. }
            | Op::Delete { caller, .. }
            | Op::Promote { caller, .. }
            | Op::Recompute { caller } => *caller,
        }
    }

    /// Every task index the operation names.
    fn tasks(&self) -> Vec<usize> {
        match self {
            Op::Create { parents, .. } => parents.clone(),
            Op::Link { parent, child, .. } => vec![*parent, *child],
            Op::Claim { task, .. }
            | Op::Heartbeat { task, .. }
            | Op::Complete { task, .. }
            | Op::Block { task, .. }
            | Op::Unblock { task, .. }
            | Op::Schedule { task, .. }
            | Op::Reclaim { task, .. }
            | Op::Archive { task, .. }
            | Op::Delete { task, .. }
            | Op::Promote { task, .. } => vec![*task],
            Op::Recompute { .. } => Vec::new(),
        }
    }
}

/// One run as the model sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunState {
    Open,
    /// Closed with this outcome.
    Ended(&'static str),
}

/// What the model knows of one task.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskModel {
    /// `None` once deleted.
    pub status: Option<Status>,
    pub parents: Vec<usize>,
    /// The caller whose claim lock the task holds.
    pub holder: Option<usize>,
    pub runs: Vec<RunState>,
    pub block_kind: Option<BlockKind>,
    pub block_recurrences: i64,
}

impl TaskModel {
    pub fn open_run(&self) -> bool {
        self.runs.last() == Some(&RunState::Open)
    }
}

/// The expected result of an operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    Ok,
    Claimed,
    Lost,
    ParentsPending,
    CeilingReached,
    /// `recompute_ready`'s count.
    Promoted(usize),
    Refused,
    Stale,
    NotFound,
    Invalid,
}

/// The result and the events (task, kind) an operation appends, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub result: Expect,
    pub events: Vec<(usize, EventKind)>,
}

/// The whole board, as the model sees it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Model {
    pub tasks: Vec<TaskModel>,
}

/// The claim lock of a simulated caller.
pub fn lock_of(caller: usize) -> String {
    format!("caller:{caller}")
}

/// A task index, mostly one of the tasks in `statuses` (where the
/// operation does something), sometimes any (where it is refused).
fn pick(state: &Model, statuses: &[Status]) -> BoxedStrategy<usize> {
    let n = state.tasks.len();
    let fitting: Vec<usize> = (0..n)
        .filter(|i| {
            state.tasks[*i]
                .status
                .is_some_and(|s| statuses.contains(&s))
        })
        .collect();
    if fitting.is_empty() {
        return (0..n).boxed();
    }
    prop_oneof![3 => proptest::sample::select(fitting), 1 => 0..n].boxed()
}

/// The proptest reference machine over [`Model`].
pub struct BoardMachine;

fn fence() -> impl Strategy<Value = Fence> {
    prop_oneof![
        2 => Just(Fence::None),
        3 => Just(Fence::Current),
        1 => Just(Fence::Stale),
    ]
}

fn block_kind() -> impl Strategy<Value = Option<BlockKind>> {
    prop_oneof![
        2 => Just(None),
        2 => Just(Some(BlockKind::NeedsInput)),
        1 => Just(Some(BlockKind::Capability)),
        2 => Just(Some(BlockKind::Dependency)),
    ]
}

impl ReferenceStateMachine for BoardMachine {
    type State = Model;
    type Transition = Op;

    fn init_state() -> BoxedStrategy<Model> {
        Just(Model::default()).boxed()
    }

    fn transitions(state: &Model) -> BoxedStrategy<Op> {
        let n = state.tasks.len();
        let caller = 0..CALLERS;
        let create = (
            caller.clone(),
            proptest::sample::subsequence((0..n).collect::<Vec<_>>(), 0..=n.min(2)),
            proptest::bool::weighted(0.1),
        )
            .prop_map(|(caller, parents, blocked)| Op::Create {
                caller,
                parents,
                blocked,
            });
        if n == 0 {
            return create.boxed();
        }
        let any_task = || (0..n).boxed();
        let pick = |statuses: &[Status]| pick(state, statuses);
        let mut arms: Vec<(u32, BoxedStrategy<Op>)> = vec![
            (
                4,
                (caller.clone(), any_task(), 1..n.max(2), 0..10u8)
                    .prop_map(move |(caller, a, offset, shape)| {
                        // Mostly older parent -> newer child (never a
                        // cycle), sometimes any direction, rarely itself.
                        let b = (a + offset) % n;
                        let (parent, child) = match shape {
                            0 => (a, a),
                            1 | 2 => (a, b),
                            _ => (a.min(b), a.max(b)),
                        };
                        Op::Link {
                            caller,
                            parent,
                            child,
                        }
                    })
                    .boxed(),
            ),
            (
                6,
                (
                    caller.clone(),
                    pick(&[Status::Ready]),
                    proptest::option::weighted(0.3, 1..3i64),
                )
                    .prop_map(|(caller, task, cap)| Op::Claim { caller, task, cap })
                    .boxed(),
            ),
            (
                3,
                (
                    caller.clone(),
                    pick(&[Status::Running]),
                    fence(),
                    any::<bool>(),
                )
                    .prop_map(|(caller, task, fence, own_lock)| Op::Heartbeat {
                        caller,
                        task,
                        fence,
                        own_lock,
                    })
                    .boxed(),
            ),
            (
                2,
                (
                    caller.clone(),
                    pick(&[Status::Running, Status::Ready, Status::Blocked]),
                    fence(),
                    any::<bool>(),
                )
                    .prop_map(|(caller, task, fence, summary)| Op::Complete {
                        caller,
                        task,
                        fence,
                        summary,
                    })
                    .boxed(),
            ),
            (
                3,
                (
                    caller.clone(),
                    pick(&[Status::Running, Status::Ready]),
                    block_kind(),
                    fence(),
                    any::<bool>(),
                )
                    .prop_map(|(caller, task, kind, fence, reason)| Op::Block {
                        caller,
                        task,
                        kind,
                        fence,
                        reason,
                    })
                    .boxed(),
            ),
        ];
        type ByTask = fn(usize, usize) -> Op;
        let by_task: [(u32, &[Status], ByTask); 5] = [
            (2, &[Status::Blocked, Status::Scheduled], |caller, task| {
                Op::Unblock { caller, task }
            }),
            (
                1,
                &[Status::Todo, Status::Ready, Status::Running],
                |caller, task| Op::Schedule { caller, task },
            ),
            (3, &[Status::Running], |caller, task| Op::Reclaim {
                caller,
                task,
            }),
            (1, &[], |caller, task| Op::Archive { caller, task }),
            (1, &[Status::Todo, Status::Blocked], |caller, task| {
                Op::Promote { caller, task }
            }),
        ];
        for (weight, statuses, make) in by_task {
            let arm = (caller.clone(), pick(statuses)).prop_map(move |(c, t)| make(c, t));
            arms.push((weight, arm.boxed()));
        }
        arms.push((
            1,
            (
                caller.clone(),
                pick(&[Status::Archived]),
                proptest::bool::weighted(0.5),
            )
                .prop_map(|(caller, task, require_archived)| Op::Delete {
                    caller,
                    task,
                    require_archived,
                })
                .boxed(),
        ));
        arms.push((
            2,
            caller
                .clone()
                .prop_map(|caller| Op::Recompute { caller })
                .boxed(),
        ));
        if n < MAX_TASKS {
            arms.push((4, create.boxed()));
        }
        Union::new_weighted(arms).boxed()
    }

    fn apply(mut state: Model, op: &Op) -> Model {
        state.step(op);
        state
    }

    /// Shrinking may drop the creation of a task a later step names.
    fn preconditions(state: &Model, op: &Op) -> bool {
        let n = state.tasks.len();
        let fits = op.tasks().iter().all(|t| *t < n);
        match op {
            Op::Create { .. } => fits && n < MAX_TASKS,
            _ => fits,
        }
    }
}
