//! Diagnostics facts kept current at the cost of what changed.
//!
//! The rules (`kanban_core::diagnostics`) read a task row and the facts
//! folded from its history. A [`DiagnosticsIndex`] keeps those facts per task
//! together with the event id they were read at; a refresh asks the store
//! which tasks have events after that id (an index range on the event ids)
//! and refolds only those. Event ids follow commit order (see the
//! [`Store`] contract), so a task whose history changed always has a newer
//! event and no change is missed; a board whose latest id went backwards
//! (replaced, restored) is read again in full.
//!
//! Facts do not depend on the clock, so the time-based rules stay exact: the
//! caller applies `now` every time it diagnoses.

use std::collections::HashMap;

use kanban_core::diagnostics::{
    Diagnostic, DiagnosticsConfig, RunSummary, TaskFacts, TaskHistory, task_diagnostics,
};
use kanban_core::{Event, Task};

use crate::{Result, Store};

/// Group rows read oldest first into one history per task (tasks in the
/// order their first row came).
pub fn group_histories(events: Vec<Event>, runs: Vec<(String, RunSummary)>) -> Vec<TaskHistory> {
    let mut order: Vec<String> = Vec::new();
    let mut by_task: HashMap<String, TaskHistory> = HashMap::new();
    for e in events {
        let h = by_task.entry(e.task_id.clone()).or_insert_with(|| {
            order.push(e.task_id.clone());
            TaskHistory {
                task_id: e.task_id.clone(),
                ..Default::default()
            }
        });
        h.events.push(e);
    }
    for (task_id, r) in runs {
        let h = by_task.entry(task_id.clone()).or_insert_with(|| {
            order.push(task_id.clone());
            TaskHistory {
                task_id,
                ..Default::default()
            }
        });
        h.runs.push(r);
    }
    order
        .into_iter()
        .filter_map(|id| by_task.remove(&id))
        .collect()
}

/// What one [`DiagnosticsIndex::refresh`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Refreshed {
    /// Every task's history was read.
    pub full: bool,
    /// Tasks whose facts were read again.
    pub refolded: usize,
    /// The event id the facts are current with.
    pub cursor: i64,
}

/// Per-task diagnostic facts of one board, refreshed incrementally.
#[derive(Debug, Default)]
pub struct DiagnosticsIndex {
    cursor: Option<i64>,
    facts: HashMap<String, TaskFacts>,
}

impl DiagnosticsIndex {
    pub fn new() -> DiagnosticsIndex {
        DiagnosticsIndex::default()
    }

    /// Bring the facts up to the board's latest event: everything on the
    /// first call, then only the tasks with newer events.
    pub fn refresh(&mut self, store: &dyn Store) -> Result<Refreshed> {
        // Read the cursor before the histories: what commits in between
        // is read now and again next time, never skipped.
        let latest = store.latest_event_id()?;
        match self.cursor {
            Some(cursor) if cursor <= latest => {
                if cursor == latest {
                    return Ok(Refreshed {
                        full: false,
                        refolded: 0,
                        cursor,
                    });
                }
                let changed = store.tasks_with_events_after(cursor)?;
                if !changed.is_empty() {
                    let histories = store.diagnostic_histories(Some(&changed))?;
                    for id in &changed {
                        self.facts.remove(id);
                    }
                    for h in &histories {
                        self.facts.insert(h.task_id.clone(), TaskFacts::fold(h));
                    }
                }
                self.cursor = Some(latest);
                Ok(Refreshed {
                    full: false,
                    refolded: changed.len(),
                    cursor: latest,
                })
            }
            _ => {
                let histories = store.diagnostic_histories(None)?;
                self.facts = histories
                    .iter()
                    .map(|h| (h.task_id.clone(), TaskFacts::fold(h)))
                    .collect();
                self.cursor = Some(latest);
                Ok(Refreshed {
                    full: true,
                    refolded: self.facts.len(),
                    cursor: latest,
                })
            }
        }
    }

    /// Facts of one task (empty when it has no history the rules read).
    pub fn facts(&self, task_id: &str) -> Option<&TaskFacts> {
        self.facts.get(task_id)
    }

    /// Active diagnostics of one task (archived tasks have none).
    pub fn diagnose(&self, task: &Task, now: i64, config: &DiagnosticsConfig) -> Vec<Diagnostic> {
        if task.status == kanban_core::Status::Archived {
            return Vec::new();
        }
        let empty = TaskFacts::default();
        let facts = self.facts.get(&task.id).unwrap_or(&empty);
        task_diagnostics(task, facts, now, config)
    }
}

/// Diagnostics of one task read straight from the store (no index): the
/// CLI's `show` and `diagnostics --task`.
pub fn task_diagnostics_of(
    store: &dyn Store,
    task: &Task,
    now: i64,
    config: &DiagnosticsConfig,
) -> Result<Vec<Diagnostic>> {
    if task.status == kanban_core::Status::Archived {
        return Ok(Vec::new());
    }
    let ids = [task.id.clone()];
    let facts = store
        .diagnostic_histories(Some(&ids))?
        .first()
        .map(TaskFacts::fold)
        .unwrap_or_default();
    Ok(task_diagnostics(task, &facts, now, config))
}
