//! The model's transition rules: what each operation does to the board,
//! written from `kanban_core::transitions::decide` and the order in which
//! the store checks things (task exists, status allows the action, run id
//! matches, ceilings).

use kanban_core::defaults::BLOCK_RECURRENCE_LIMIT;
use kanban_core::{BlockKind, EventKind, Status};

use super::{Expect, Fence, Model, Op, Outcome, RunState, TaskModel};

/// A refused or failed step: nothing written.
fn only(result: Expect) -> Outcome {
    Outcome {
        result,
        events: Vec::new(),
    }
}

impl Model {
    fn live(&self, i: usize) -> Option<&TaskModel> {
        self.tasks.get(i).filter(|t| t.status.is_some())
    }

    fn status(&self, i: usize) -> Option<Status> {
        self.live(i).and_then(|t| t.status)
    }

    /// Every parent is done or archived (deleted parents are unlinked).
    pub fn parents_satisfied(&self, i: usize) -> bool {
        self.tasks[i]
            .parents
            .iter()
            .all(|p| self.status(*p).is_some_and(Status::satisfies_children))
    }

    fn children(&self, i: usize) -> Vec<usize> {
        (0..self.tasks.len())
            .filter(|c| self.live(*c).is_some() && self.tasks[*c].parents.contains(&i))
            .collect()
    }

    fn running(&self) -> i64 {
        (0..self.tasks.len())
            .filter(|i| self.status(*i) == Some(Status::Running))
            .count() as i64
    }

    /// `to` is reachable from `from` following child links.
    fn reaches(&self, from: usize, to: usize) -> bool {
        let mut stack = vec![from];
        let mut seen = vec![false; self.tasks.len()];
        while let Some(i) = stack.pop() {
            if i == to {
                return true;
            }
            if !std::mem::replace(&mut seen[i], true) {
                stack.extend(self.children(i));
            }
        }
        false
    }

    /// Close the open run with `outcome`; without one, record a closed
    /// run when the caller left handoff text (`keep`).
    fn end_run(&mut self, i: usize, outcome: &'static str, keep: bool) {
        let t = &mut self.tasks[i];
        if t.open_run() {
            *t.runs.last_mut().expect("open run") = RunState::Ended(outcome);
        } else if keep {
            t.runs.push(RunState::Ended(outcome));
        }
    }

    /// Todo tasks among `scope` whose parents are all done/archived become
    /// ready (a blocked task never does here: every block this model makes
    /// is sticky). Returns the `promoted` events.
    fn promote(&mut self, scope: Vec<usize>) -> Vec<(usize, EventKind)> {
        let mut events = Vec::new();
        for i in scope {
            if self.status(i) == Some(Status::Todo) && self.parents_satisfied(i) {
                self.tasks[i].status = Some(Status::Ready);
                events.push((i, EventKind::Promoted));
            }
        }
        events
    }

    fn set(&mut self, i: usize, status: Status) {
        self.tasks[i].status = Some(status);
    }

    /// The task's status, or the NotFound / wrong-status refusal.
    fn require(&self, i: usize, allowed: &[Status]) -> Result<Status, Expect> {
        let status = self.status(i).ok_or(Expect::NotFound)?;
        if allowed.contains(&status) {
            Ok(status)
        } else {
            Err(Expect::Refused)
        }
    }

    /// A run id the caller presents that is not the current run.
    fn fenced_out(fence: Fence) -> Result<(), Expect> {
        match fence {
            Fence::Stale => Err(Expect::Stale),
            Fence::None | Fence::Current => Ok(()),
        }
    }

    /// Apply `op`; the result and events the store must show.
    pub fn step(&mut self, op: &Op) -> Outcome {
        match self.try_step(op) {
            Ok(outcome) => outcome,
            Err(result) => only(result),
        }
    }

    fn try_step(&mut self, op: &Op) -> Result<Outcome, Expect> {
        let ok = |events| Outcome {
            result: Expect::Ok,
            events,
        };
        match *op {
            Op::Create {
                ref parents,
                blocked,
                ..
            } => {
                if parents.iter().any(|p| self.live(*p).is_none()) {
                    return Err(Expect::Invalid);
                }
                let i = self.tasks.len();
                let ready = parents
                    .iter()
                    .all(|p| self.status(*p).is_some_and(Status::satisfies_children));
                let status = match (blocked, ready) {
                    (true, _) => Status::Blocked,
                    (false, true) => Status::Ready,
                    (false, false) => Status::Todo,
                };
                self.tasks.push(TaskModel {
                    status: Some(status),
                    parents: parents.clone(),
                    holder: None,
                    runs: Vec::new(),
                    block_kind: None,
                    block_recurrences: 0,
                });
                let mut events = vec![(i, EventKind::Created)];
                if blocked {
                    events.push((i, EventKind::Blocked));
                }
                Ok(ok(events))
            }
            Op::Link { parent, child, .. } => {
                if parent == child || self.live(parent).is_none() || self.live(child).is_none() {
                    return Err(Expect::Invalid);
                }
                if self.reaches(child, parent) {
                    return Err(Expect::Invalid);
                }
                if self.tasks[child].parents.contains(&parent) {
                    return Ok(ok(Vec::new()));
                }
                self.tasks[child].parents.push(parent);
                let gating = !self.status(parent).is_some_and(Status::satisfies_children);
                if gating && self.status(child) == Some(Status::Ready) {
                    self.set(child, Status::Todo);
                }
                Ok(ok(vec![(child, EventKind::Linked)]))
            }
            Op::Claim { caller, task, cap } => {
                if self.require(task, &[Status::Ready]).is_err() {
                    return match self.status(task) {
                        None => Err(Expect::NotFound),
                        Some(_) => Err(Expect::Lost),
                    };
                }
                if !self.parents_satisfied(task) {
                    self.set(task, Status::Todo);
                    return Ok(Outcome {
                        result: Expect::ParentsPending,
                        events: vec![(task, EventKind::ClaimRejected)],
                    });
                }
                if cap.is_some_and(|cap| self.running() >= cap) {
                    return Err(Expect::CeilingReached);
                }
                self.set(task, Status::Running);
                let t = &mut self.tasks[task];
                t.holder = Some(caller);
                t.runs.push(RunState::Open);
                Ok(Outcome {
                    result: Expect::Claimed,
                    events: vec![(task, EventKind::Claimed)],
                })
            }
            Op::Heartbeat {
                caller,
                task,
                fence,
                own_lock,
            } => {
                self.require(task, &[Status::Running])?;
                Self::fenced_out(fence)?;
                if own_lock && self.tasks[task].holder != Some(caller) {
                    return Err(Expect::Stale);
                }
                Ok(ok(vec![(task, EventKind::Heartbeat)]))
            }
            Op::Complete {
                task,
                fence,
                summary,
                ..
            } => {
                self.require(task, &[Status::Running, Status::Ready, Status::Blocked])?;
                Self::fenced_out(fence)?;
                self.set(task, Status::Done);
                let t = &mut self.tasks[task];
                t.holder = None;
                t.block_kind = None;
                t.block_recurrences = 0;
                self.end_run(task, "completed", summary);
                let mut events = vec![(task, EventKind::Completed)];
                let children = self.children(task);
                events.extend(self.promote(children));
                Ok(ok(events))
            }
            Op::Block {
                task,
                kind,
                fence,
                reason,
                ..
            } => {
                self.require(task, &[Status::Running, Status::Ready])?;
                Self::fenced_out(fence)?;
                let t = &mut self.tasks[task];
                let (to, event) = if kind == Some(BlockKind::Dependency) {
                    (Status::Todo, EventKind::DependencyWait)
                } else {
                    // The same kind as the last block (no kind counts as a
                    // kind) counts up; the limit routes to triage.
                    t.block_recurrences = if t.block_kind == kind {
                        t.block_recurrences + 1
                    } else {
                        1
                    };
                    if t.block_recurrences >= BLOCK_RECURRENCE_LIMIT {
                        (Status::Triage, EventKind::BlockLoopDetected)
                    } else {
                        (Status::Blocked, EventKind::Blocked)
                    }
                };
                t.block_kind = kind;
                t.holder = None;
                self.set(task, to);
                self.end_run(task, "blocked", reason);
                Ok(ok(vec![(task, event)]))
            }
            Op::Unblock { task, .. } => {
                self.require(task, &[Status::Blocked, Status::Scheduled])?;
                let to = if self.parents_satisfied(task) {
                    Status::Ready
                } else {
                    Status::Todo
                };
                self.set(task, to);
                Ok(ok(vec![(task, EventKind::Unblocked)]))
            }
            Op::Schedule { task, .. } => {
                let allowed = [
                    Status::Todo,
                    Status::Ready,
                    Status::Running,
                    Status::Blocked,
                ];
                self.require(task, &allowed)?;
                self.set(task, Status::Scheduled);
                self.tasks[task].holder = None;
                self.end_run(task, "scheduled", false);
                Ok(ok(vec![(task, EventKind::Scheduled)]))
            }
            Op::Reclaim { task, .. } => {
                // Ready/blocked are reclaimable only while claimed, which
                // no operation here leaves behind.
                self.require(task, &[Status::Running])?;
                self.set(task, Status::Ready);
                self.tasks[task].holder = None;
                self.end_run(task, "reclaimed", false);
                Ok(ok(vec![(task, EventKind::Reclaimed)]))
            }
            Op::Archive { task, .. } => {
                let status = self.status(task).ok_or(Expect::NotFound)?;
                if status == Status::Archived {
                    return Err(Expect::Refused);
                }
                self.set(task, Status::Archived);
                self.tasks[task].holder = None;
                self.end_run(task, "reclaimed", false);
                let mut events = vec![(task, EventKind::Archived)];
                let children = self.children(task);
                events.extend(self.promote(children));
                Ok(ok(events))
            }
            Op::Delete {
                task,
                require_archived,
                ..
            } => {
                if require_archived {
                    self.require(task, &[Status::Archived])?;
                }
                self.status(task).ok_or(Expect::NotFound)?;
                let children = self.children(task);
                let t = &mut self.tasks[task];
                t.status = None;
                t.parents.clear();
                t.holder = None;
                t.runs.clear();
                for c in &children {
                    self.tasks[*c].parents.retain(|p| *p != task);
                }
                Ok(ok(self.promote(children)))
            }
            Op::Promote { task, .. } => {
                self.require(task, &[Status::Todo, Status::Blocked])?;
                if !self.parents_satisfied(task) {
                    return Err(Expect::Refused);
                }
                self.set(task, Status::Ready);
                Ok(ok(vec![(task, EventKind::PromotedManual)]))
            }
            Op::Recompute { .. } => {
                let all = (0..self.tasks.len()).collect();
                let events = self.promote(all);
                Ok(Outcome {
                    result: Expect::Promoted(events.len()),
                    events,
                })
            }
        }
    }
}
