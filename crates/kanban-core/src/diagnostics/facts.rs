//! The part of a task's history the rules read, folded into a few numbers.
//!
//! A store answers [`TaskHistory`] with only the event kinds of
//! [`fact_event_kinds`] (payloads only for [`payload_event_kinds`]) and the
//! runs whose outcome is one of [`fact_run_outcomes`], both oldest first;
//! [`TaskFacts::fold`] turns that into what the rules need. Nothing here
//! depends on the clock.

use serde_json::Value;

use crate::{Event, EventKind};

/// Events that clear the hallucination signals: a clean completion or an edit.
const CLEARING_KINDS: [EventKind; 2] = [EventKind::Completed, EventKind::Edited];
/// Events that put a task (back) into ready.
const READY_KINDS: [EventKind; 4] = [
    EventKind::Created,
    EventKind::Promoted,
    EventKind::Reclaimed,
    EventKind::Unblocked,
];
/// Events that answer a block.
const ANSWER_KINDS: [EventKind; 2] = [EventKind::Commented, EventKind::Unblocked];

/// Every event kind the rules read.
pub fn fact_event_kinds() -> Vec<&'static str> {
    let mut kinds: Vec<&'static str> = [
        EventKind::Completed,
        EventKind::Edited,
        EventKind::CompletionBlockedHallucination,
        EventKind::SuspectedHallucinatedReferences,
        EventKind::Blocked,
        EventKind::Unblocked,
        EventKind::Commented,
        EventKind::Created,
        EventKind::Promoted,
        EventKind::Reclaimed,
    ]
    .iter()
    .map(|k| k.as_str())
    .collect();
    kinds.dedup();
    kinds
}

/// The event kinds whose payload the rules read (the phantom id lists).
pub fn payload_event_kinds() -> [&'static str; 2] {
    [
        EventKind::CompletionBlockedHallucination.as_str(),
        EventKind::SuspectedHallucinatedReferences.as_str(),
    ]
}

/// Run outcomes the failure rules read: the three failures and the two
/// outcomes that end a crash streak.
pub fn fact_run_outcomes() -> [&'static str; 5] {
    [
        "crashed",
        "spawn_failed",
        "timed_out",
        "completed",
        "reclaimed",
    ]
}

/// One ended run, as the failure rules see it.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RunSummary {
    pub id: i64,
    pub outcome: Option<String>,
    /// The run's error, possibly cut to a little over
    /// [`super::ERROR_SNIPPET_CHARS`] characters by the store.
    pub error: Option<String>,
}

/// What a store returns for one task.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TaskHistory {
    pub task_id: String,
    /// Events of [`fact_event_kinds`], oldest (lowest id) first.
    pub events: Vec<Event>,
    /// Runs with an outcome of [`fact_run_outcomes`], oldest first.
    pub runs: Vec<RunSummary>,
}

/// Hallucination events not yet cleared by a completion or an edit.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct HitSet {
    pub count: i64,
    pub first_at: i64,
    pub last_at: i64,
    /// The phantom ids the events named, first mention first, no repeats.
    pub ids: Vec<String>,
}

impl HitSet {
    fn add(&mut self, at: i64, payload: &Value, key: &str) {
        if self.count == 0 {
            self.first_at = at;
        }
        self.count += 1;
        self.last_at = at;
        let named = payload.get(key).and_then(Value::as_array);
        for id in named.into_iter().flatten().filter_map(Value::as_str) {
            if !self.ids.iter().any(|i| i == id) {
                self.ids.push(id.to_string());
            }
        }
    }
}

/// The rules' view of one task's history.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TaskFacts {
    /// Active `completion_blocked_hallucination` events.
    pub blocked_completions: HitSet,
    /// Active `suspected_hallucinated_references` events.
    pub phantom_refs: HitSet,
    /// Newest `blocked` event (0: none).
    pub last_blocked_at: i64,
    /// Newest `commented` or `unblocked` event (0: none).
    pub last_answered_at: i64,
    /// `(time, is_block)` of every `blocked` / `unblocked` event, oldest first.
    pub block_toggles: Vec<(i64, bool)>,
    /// Newest event that put the task into ready (0: none).
    pub last_ready_at: i64,
    /// Outcome of the newest run that spawn-failed, timed out or crashed.
    pub last_failure_outcome: Option<String>,
    /// Crashed runs since the last completed or reclaimed one.
    pub trailing_crashes: i64,
    /// Newest error recorded among those crashes.
    pub last_crash_error: Option<String>,
}

impl TaskFacts {
    /// Fold a task's history (events and runs oldest first).
    pub fn fold(history: &TaskHistory) -> TaskFacts {
        let mut f = TaskFacts::default();
        for e in &history.events {
            f.add_event(e);
        }
        f.add_runs(&history.runs);
        f
    }

    fn add_event(&mut self, e: &Event) {
        let kind = e.kind.as_str();
        let at = e.created_at;
        let is = |k: EventKind| kind == k.as_str();
        if CLEARING_KINDS.iter().any(|k| is(*k)) {
            self.blocked_completions = HitSet::default();
            self.phantom_refs = HitSet::default();
        } else if is(EventKind::CompletionBlockedHallucination) {
            self.blocked_completions
                .add(at, &e.payload, "phantom_cards");
        } else if is(EventKind::SuspectedHallucinatedReferences) {
            self.phantom_refs.add(at, &e.payload, "phantom_refs");
        }
        if is(EventKind::Blocked) {
            self.last_blocked_at = self.last_blocked_at.max(at);
            self.block_toggles.push((at, true));
        }
        if is(EventKind::Unblocked) {
            self.block_toggles.push((at, false));
        }
        if ANSWER_KINDS.iter().any(|k| is(*k)) {
            self.last_answered_at = self.last_answered_at.max(at);
        }
        if READY_KINDS.iter().any(|k| is(*k)) {
            self.last_ready_at = self.last_ready_at.max(at);
        }
    }

    fn add_runs(&mut self, runs: &[RunSummary]) {
        let mut ordered: Vec<&RunSummary> = runs.iter().collect();
        ordered.sort_by_key(|r| r.id);
        self.last_failure_outcome = ordered
            .iter()
            .rev()
            .filter_map(|r| r.outcome.as_deref())
            .find(|o| matches!(*o, "spawn_failed" | "timed_out" | "crashed"))
            .map(str::to_string);
        for r in ordered.iter().rev() {
            match r.outcome.as_deref() {
                Some("crashed") => {
                    if self.last_crash_error.is_none() {
                        self.last_crash_error = r.error.clone();
                    }
                    self.trailing_crashes += 1;
                }
                Some("completed" | "reclaimed") => break,
                // Other failures neither count nor end the streak.
                _ => {}
            }
        }
    }
}
