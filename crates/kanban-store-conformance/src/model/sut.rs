//! Runs generated sequences against a real board and compares it with the
//! model after every step.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use kanban_core::{EventKind, Status};
use kanban_store::*;
use proptest::test_runner::{Config, TestCaseResult, TestRunner};
use proptest_state_machine::ReferenceStateMachine;

use super::{
    BoardMachine, CALLERS, CASES, Expect, Fence, Model, Op, Outcome, RunState, STEPS, lock_of,
};
use crate::{Backend, SuiteStore};

/// A run id no board of this suite reaches.
const UNKNOWN_RUN_ID: i64 = 1 << 40;

fn config() -> Config {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(CASES);
    Config {
        cases,
        // Never write regression files into the source tree.
        failure_persistence: None,
        // Each shrink step replays a whole sequence on a new board.
        max_shrink_iters: 512,
        ..Config::default()
    }
}

/// Random sequences of operations from several callers, each step checked
/// against the model (see the module docs of `model`).
pub fn state_machine_matches_the_model(backend: &Backend) {
    let mut runner = TestRunner::new(config());
    let strategy = BoardMachine::sequential_strategy(STEPS);
    let result = runner.run(&strategy, |(initial, ops, seen)| {
        run_sequence(backend, initial, &ops, seen)
    });
    if let Err(e) = result {
        panic!("the store departed from the model: {e}");
    }
}

/// One board, its callers' handles, and what it has shown so far.
struct Sut {
    callers: Vec<Box<dyn SuiteStore>>,
    observer: Box<dyn SuiteStore>,
    /// Task ids by model index (creation order).
    ids: Vec<String>,
    /// Highest event id seen: new events are those after it.
    cursor: i64,
}

fn run_sequence(
    backend: &Backend,
    mut model: Model,
    ops: &[Op],
    seen: Option<Arc<AtomicUsize>>,
) -> TestCaseResult {
    let board = backend.board();
    let observer = board.open();
    let mut sut = Sut {
        callers: (0..CALLERS).map(|_| board.open()).collect(),
        observer,
        ids: Vec::new(),
        cursor: 0,
    };
    for (step, op) in ops.iter().enumerate() {
        // Tells the shrinker how far the sequence got.
        if let Some(seen) = &seen {
            seen.fetch_add(1, Ordering::SeqCst);
        }
        let before = model.clone();
        let expected = model.step(op);
        let got = sut.apply(op, &before);
        let context = || format!("step {step}: {op:?}\nmodel before: {before:?}");
        assert_eq!(got, expected.result, "result of {}", context());
        sut.check_events(&expected, &context);
        sut.check_tasks(&model, &context);
        sut.check_gating(&before, &model, &expected, &context);
    }
    Ok(())
}

fn classify(e: StoreError) -> Expect {
    match e {
        StoreError::Refused { .. } => Expect::Refused,
        StoreError::Stale { .. } => Expect::Stale,
        StoreError::TaskNotFound(_) => Expect::NotFound,
        StoreError::Invalid(_) => Expect::Invalid,
        other => panic!("unexpected store failure: {other}"),
    }
}

fn status_of<T>(r: Result<T>) -> Expect {
    r.map_or_else(classify, |_| Expect::Ok)
}

impl Sut {
    fn id(&self, i: usize) -> &str {
        &self.ids[i]
    }

    /// The run id a fence presents for task `i`.
    fn run_id(&self, i: usize, fence: Fence) -> Option<i64> {
        let task = self.observer.get_task(self.id(i)).expect("get task");
        let current = task.as_ref().and_then(|t| t.current_run_id);
        match fence {
            Fence::None => None,
            Fence::Current => current,
            Fence::Stale => {
                let runs = match &task {
                    Some(t) => self.observer.runs(&t.id).expect("runs"),
                    None => Vec::new(),
                };
                let older = runs
                    .iter()
                    .rev()
                    .map(|r| r.id)
                    .find(|r| Some(*r) != current);
                Some(older.unwrap_or(UNKNOWN_RUN_ID))
            }
        }
    }

    fn apply(&mut self, op: &Op, model: &Model) -> Expect {
        let s = &*self.callers[op.caller()];
        match op {
            Op::Create {
                parents, blocked, ..
            } => {
                let req = NewTask {
                    title: format!("task {}", model.tasks.len()),
                    assignee: Some(format!("profile{}", op.caller())),
                    parents: parents.iter().map(|p| self.ids[*p].clone()).collect(),
                    initial_blocked: *blocked,
                    ..Default::default()
                };
                match s.create_task(&req) {
                    Ok(created) => {
                        self.ids.push(created.task.id);
                        Expect::Ok
                    }
                    Err(e) => classify(e),
                }
            }
            Op::Link { parent, child, .. } => {
                status_of(s.link_tasks(self.id(*parent), self.id(*child)))
            }
            Op::Claim { caller, task, cap } => {
                let req = ClaimRequest {
                    task_id: self.id(*task).to_string(),
                    claim_lock: lock_of(*caller),
                    ttl_seconds: 900,
                    review: false,
                    ceilings: Ceilings {
                        max_running: *cap,
                        ..Default::default()
                    },
                };
                match s.claim_task(&req) {
                    Ok(ClaimOutcome::Claimed { .. }) => Expect::Claimed,
                    Ok(ClaimOutcome::Lost { .. }) => Expect::Lost,
                    Ok(ClaimOutcome::ParentsPending) => Expect::ParentsPending,
                    Ok(ClaimOutcome::CeilingReached(_)) => Expect::CeilingReached,
                    Err(e) => classify(e),
                }
            }
            Op::Heartbeat {
                caller,
                task,
                fence,
                own_lock,
            } => status_of(s.heartbeat(&HeartbeatRequest {
                task_id: self.id(*task).to_string(),
                run_id: self.run_id(*task, *fence),
                claim_lock: own_lock.then(|| lock_of(*caller)),
                ..Default::default()
            })),
            Op::Complete {
                task,
                fence,
                summary,
                ..
            } => status_of(s.complete_task(&CompleteRequest {
                task_id: self.id(*task).to_string(),
                summary: summary.then(|| "handed over".to_string()),
                expected_run_id: self.run_id(*task, *fence),
                ..Default::default()
            })),
            Op::Block {
                task,
                kind,
                fence,
                reason,
                ..
            } => status_of(s.block_task(&BlockRequest {
                task_id: self.id(*task).to_string(),
                reason: reason.then(|| "waiting".to_string()),
                kind: *kind,
                expected_run_id: self.run_id(*task, *fence),
            })),
            Op::Unblock { task, .. } => status_of(s.unblock_task(self.id(*task), None)),
            Op::Schedule { task, .. } => status_of(s.schedule_task(self.id(*task), None)),
            Op::Reclaim { task, .. } => status_of(s.reclaim_task(self.id(*task), Some("model"))),
            Op::Archive { task, .. } => status_of(s.archive_task(self.id(*task))),
            Op::Delete {
                task,
                require_archived,
                ..
            } => status_of(s.delete_task(self.id(*task), *require_archived)),
            Op::Promote { task, .. } => status_of(s.promote_task(&PromoteRequest {
                task_id: self.id(*task).to_string(),
                ..Default::default()
            })),
            Op::Recompute { .. } => match s.recompute_ready(None) {
                Ok(n) => Expect::Promoted(n),
                Err(e) => classify(e),
            },
        }
    }

    /// The events appended by the step, per task, are the model's.
    fn check_events(&mut self, expected: &Outcome, context: &dyn Fn() -> String) {
        let new = self
            .observer
            .events(&EventQuery {
                after_id: Some(self.cursor),
                ..Default::default()
            })
            .expect("events");
        let index: BTreeMap<&str, usize> = self
            .ids
            .iter()
            .enumerate()
            .map(|(i, id)| (id.as_str(), i))
            .collect();
        let mut got: BTreeMap<usize, Vec<String>> = BTreeMap::new();
        for e in &new {
            let i = *index
                .get(e.task_id.as_str())
                .unwrap_or_else(|| panic!("event on an unknown task: {e:?}"));
            got.entry(i).or_default().push(e.kind.clone());
        }
        let mut want: BTreeMap<usize, Vec<String>> = BTreeMap::new();
        for (i, kind) in &expected.events {
            want.entry(*i).or_default().push(kind.as_str().to_string());
        }
        assert_eq!(got, want, "events appended at {}", context());
        if let Some(last) = new.last() {
            self.cursor = last.id;
        }
    }

    /// Every task shows the model's status, claim, runs and parents.
    fn check_tasks(&self, model: &Model, context: &dyn Fn() -> String) {
        let s = &*self.observer;
        for (i, want) in model.tasks.iter().enumerate() {
            let id = self.id(i);
            let got = s.get_task(id).expect("get task");
            let Some(status) = want.status else {
                assert!(got.is_none(), "task {i} is deleted at {}", context());
                let left = s
                    .events(&EventQuery {
                        task_id: Some(id.to_string()),
                        ..Default::default()
                    })
                    .expect("events");
                assert!(left.is_empty(), "a deleted task's events remain");
                continue;
            };
            let task = got.unwrap_or_else(|| panic!("task {i} is missing at {}", context()));
            let what = |field: &str| format!("task {i} {field} at {}", context());
            assert_eq!(task.status, status, "{}", what("status"));
            assert_eq!(
                task.claim_lock,
                want.holder.map(lock_of),
                "{}",
                what("claim lock")
            );
            let runs: Vec<RunState> = s
                .runs(id)
                .expect("runs")
                .iter()
                .map(|r| match (&r.ended_at, r.outcome.as_deref()) {
                    (None, None) => RunState::Open,
                    (Some(_), Some(o)) => RunState::Ended(known_outcome(o)),
                    other => panic!("run {} is half closed: {other:?}", r.id),
                })
                .collect();
            assert_eq!(runs, want.runs, "{}", what("runs"));
            let open = s.runs(id).expect("runs").last().map(|r| r.id);
            let current = want.open_run().then_some(open).flatten();
            assert_eq!(task.current_run_id, current, "{}", what("current run"));
            let mut parents: Vec<&str> = want.parents.iter().map(|p| self.id(*p)).collect();
            parents.sort_unstable();
            let mut got_parents = s.parents_of(id).expect("parents");
            got_parents.sort_unstable();
            assert_eq!(got_parents, parents, "{}", what("parents"));
        }
    }

    /// Model-independent: a task that entered ready or running in this
    /// step has every parent done or archived on the board (a reclaim
    /// excepted, see the module docs).
    fn check_gating(
        &self,
        before: &Model,
        after: &Model,
        expected: &Outcome,
        context: &dyn Fn() -> String,
    ) {
        let reclaimed: Vec<usize> = expected
            .events
            .iter()
            .filter(|(_, k)| *k == EventKind::Reclaimed)
            .map(|(i, _)| *i)
            .collect();
        let s = &*self.observer;
        for (i, t) in after.tasks.iter().enumerate() {
            let was = before.tasks.get(i).and_then(|b| b.status);
            let entered =
                matches!(t.status, Some(Status::Ready | Status::Running)) && was != t.status;
            if !entered || reclaimed.contains(&i) {
                continue;
            }
            for p in s.parents_of(self.id(i)).expect("parents") {
                let parent = s.get_task(&p).expect("get parent").expect("parent exists");
                assert!(
                    parent.status.satisfies_children(),
                    "task {i} became {:?} with parent {p} {} at {}",
                    t.status,
                    parent.status,
                    context()
                );
            }
        }
    }
}

/// Run outcomes as the model names them.
fn known_outcome(o: &str) -> &'static str {
    match o {
        "completed" => "completed",
        "blocked" => "blocked",
        "scheduled" => "scheduled",
        "reclaimed" => "reclaimed",
        other => panic!("run outcome {other:?} is outside the model"),
    }
}
