//! The demo's opening: a board that already uses every column the store
//! lets a task reach when the first page loads (done history, a task graph
//! waiting in todo, a queue in ready, a question for a human, an idea in
//! triage, a nightly job in scheduled), before the feeder's trickle.
//!
//! Tasks that start anywhere but ready are created unassigned, moved, then
//! assigned: the dispatcher never sees them ready with a worker.

use kanban_core::BlockKind;
use kanban_store::{AssignTask, BlockRequest, CompleteRequest, NewTask, Store, TaskQuery};

use super::plan::{Plan, Twist};
use super::{CODER, DEMO_AUTHOR, DemoError, FLAKY_API, RESEARCHER, REVIEWER, role_of};

/// Where an opening task starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Start {
    /// Created for its worker (ready, or todo behind its parents).
    Queued,
    /// Already done: the board's history.
    Done(&'static str),
    Triage,
    Scheduled(&'static str),
    /// Blocked on a question for a human (answered by the feeder).
    AskingHuman(&'static str),
}

struct Step {
    key: &'static str,
    title: &'static str,
    assignee: &'static str,
    /// Indexes of its parents in [`OPENING`].
    parents: &'static [usize],
    priority: i64,
    plan: Plan,
    start: Start,
}

const fn step(key: &'static str, title: &'static str, assignee: &'static str) -> Step {
    Step {
        key,
        title,
        assignee,
        parents: &[],
        priority: 0,
        plan: Plan::new(2, Twist::None),
        start: Start::Queued,
    }
}

/// History, the greeting-service graph (design → API + page → test →
/// release), a queue, an idea, a nightly job and a question.
const OPENING: [Step; 14] = [
    Step {
        start: Start::Done("coder: repository, CI and lint set up"),
        ..step("repo", "Set up the repository", CODER)
    },
    Step {
        start: Start::Done("researcher: 12 requirements collected"),
        ..step(
            "requirements",
            "Collect the greeting requirements",
            RESEARCHER,
        )
    },
    Step {
        start: Start::Done("reviewer: style guide agreed"),
        ..step("style", "Agree on the code style", REVIEWER)
    },
    Step {
        priority: 2,
        plan: Plan::new(3, Twist::None),
        ..step("design", "Design the greeting service", RESEARCHER)
    },
    Step {
        parents: &[3],
        plan: Plan::new(4, Twist::FailOnce),
        ..step("api", "Implement the greeting API", CODER)
    },
    Step {
        parents: &[3],
        plan: Plan::new(3, Twist::None),
        ..step("web", "Implement the greeting page", CODER)
    },
    Step {
        parents: &[4, 5],
        plan: Plan::new(3, Twist::None),
        ..step("test", "Test the service end to end", REVIEWER)
    },
    Step {
        parents: &[6],
        ..step("release", "Release v1.0", CODER)
    },
    Step {
        plan: Plan::new(4, Twist::None),
        ..step(
            "tickets",
            "Summarise last week's support tickets",
            RESEARCHER,
        )
    },
    Step {
        priority: 1,
        plan: Plan::new(2, Twist::RateLimitOnce),
        ..step("prices", "Sync prices from the partner API", FLAKY_API)
    },
    Step {
        plan: Plan::new(3, Twist::None),
        ..step(
            "rates",
            "Fetch exchange rates from the partner API",
            FLAKY_API,
        )
    },
    Step {
        start: Start::Triage,
        ..step(
            "idea",
            "Idea: greet users in their own language?",
            RESEARCHER,
        )
    },
    Step {
        start: Start::Scheduled("waits for the nightly window"),
        ..step("nightly", "Nightly: refresh the dependency report", CODER)
    },
    Step {
        start: Start::AskingHuman(
            "researcher: which language should greet first-time visitors, English or the \
             browser's?",
        ),
        ..step(
            "language",
            "Choose the default greeting language",
            RESEARCHER,
        )
    },
];

/// Prefix of every opening task's idempotency key.
pub(crate) const OPENING_KEY_PREFIX: &str = "kanban-demo:round-";

/// How many tasks an opening creates.
pub const OPENING_TASKS: usize = OPENING.len();

/// The round an opening key names (`kanban-demo:round-3:design` → 3).
pub(crate) fn round_of(key: &str) -> Option<usize> {
    key.strip_prefix(OPENING_KEY_PREFIX)?
        .split(':')
        .next()?
        .parse()
        .ok()
}

/// Create round `round`'s opening; the ids in [`OPENING`] order. Keys name
/// the round, so a repeated call cannot duplicate it.
pub(crate) fn create_opening(store: &dyn Store, round: usize) -> Result<Vec<String>, DemoError> {
    let mut ids: Vec<String> = Vec::with_capacity(OPENING.len());
    for s in &OPENING {
        // Queued and triage tasks are not dispatched yet: assigned at once.
        let assign_now = matches!(s.start, Start::Queued | Start::Triage);
        let req = NewTask {
            title: s.title.into(),
            body: Some(s.plan.body(role_of(s.assignee))),
            assignee: assign_now.then(|| s.assignee.into()),
            created_by: Some(DEMO_AUTHOR.into()),
            parents: s.parents.iter().map(|&i| ids[i].clone()).collect(),
            priority: s.priority,
            triage: s.start == Start::Triage,
            idempotency_key: Some(format!("{OPENING_KEY_PREFIX}{round}:{}", s.key)),
            ..NewTask::default()
        };
        let created = store.create_task(&req)?;
        let id = created.task.id;
        if !created.existing && !assign_now {
            place(store, &id, s)?;
        }
        ids.push(id);
    }
    Ok(ids)
}

/// Move an unassigned, just-created task to where it starts, then give it
/// its worker.
fn place(store: &dyn Store, id: &str, s: &Step) -> Result<(), DemoError> {
    match s.start {
        Start::Queued | Start::Triage => return Ok(()),
        Start::Done(summary) => {
            store.complete_task(&CompleteRequest {
                task_id: id.into(),
                result: None,
                summary: Some(summary.into()),
                metadata: None,
                created_cards: Vec::new(),
                expected_run_id: None,
                files: None,
            })?;
        }
        Start::Scheduled(reason) => {
            store.schedule_task(id, Some(reason))?;
        }
        Start::AskingHuman(question) => {
            store.block_task(&BlockRequest {
                task_id: id.into(),
                reason: Some(question.into()),
                kind: Some(BlockKind::NeedsInput),
                expected_run_id: None,
            })?;
            store.add_comment(id, s.assignee, &format!("BLOCKED: {question}"))?;
        }
    }
    store.assign_task(&AssignTask {
        task_id: id.into(),
        assignee: Some(s.assignee.into()),
        source: Some(DEMO_AUTHOR.into()),
        reclaim_first: false,
        reason: None,
    })?;
    Ok(())
}

/// The next opening round: one past the highest found on the board.
pub(crate) fn next_round(store: &dyn Store) -> Result<usize, DemoError> {
    let all = store.list_tasks(&TaskQuery {
        include_archived: true,
        ..TaskQuery::default()
    })?;
    let last = all
        .iter()
        .filter_map(|t| t.idempotency_key.as_deref().and_then(round_of))
        .max()
        .unwrap_or(0);
    Ok(last + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parents_come_before_their_children() {
        for (i, s) in OPENING.iter().enumerate() {
            assert!(s.parents.iter().all(|&p| p < i), "{}", s.key);
            let unique = OPENING.iter().filter(|o| o.key == s.key).count();
            assert_eq!(unique, 1, "{}", s.key);
        }
        assert_eq!(round_of("kanban-demo:round-12:design"), Some(12));
        assert_eq!(round_of("kanban-demo:feed-3"), None);
    }
}
