//! Diagnostics: structured, actionable distress signals about tasks
//! (reference `kanban_diagnostics`), as pure functions.
//!
//! A rule looks at a task row, the compact [`TaskFacts`] folded from the
//! task's history (the event kinds and run outcomes the rules read) and the
//! current time, and returns at most one [`Diagnostic`]. Rules never write;
//! a diagnostic clears itself once the condition behind it is gone (a clean
//! completion, an unblock, a claim), while the audit events stay.
//!
//! Facts depend only on the history, never on the clock, so a caller can
//! keep them per task and refold only the tasks whose history changed; the
//! time-based rules apply `now` when they run.

mod facts;
mod failures;
mod hallucination;
mod stalls;
mod triage;

#[cfg(test)]
mod tests;

use std::str::FromStr;

use serde::Serialize;
use serde_json::{Map, Value};

use crate::{CoreError, Task};

pub use facts::{
    HitSet, RunSummary, TaskFacts, TaskHistory, fact_event_kinds, fact_run_outcomes,
    payload_event_kinds,
};
pub use triage::TriageAuxStatus;

/// Default of `failure_threshold` (the dispatcher's default failure limit).
pub const FAILURE_THRESHOLD_DEFAULT: i64 = crate::defaults::FAILURE_LIMIT;
/// Consecutive crashed runs before `repeated_crashes` fires.
pub const CRASH_THRESHOLD_DEFAULT: i64 = 2;
/// Hours a blocked task may sit without a comment or unblock.
pub const BLOCKED_STALE_HOURS_DEFAULT: f64 = 24.0;
/// Block-after-unblock cycles within the window before `block_unblock_cycling` fires.
pub const BLOCK_CYCLE_THRESHOLD_DEFAULT: i64 = 3;
/// The sliding window block cycles are counted in.
pub const BLOCK_CYCLE_WINDOW_SECONDS_DEFAULT: i64 = 24 * 3600;
/// Seconds an assigned ready task may wait unclaimed before it counts as stranded.
pub const STRANDED_THRESHOLD_SECONDS_DEFAULT: i64 = 30 * 60;
/// Characters of a recorded error quoted in a failure diagnostic.
pub const ERROR_SNIPPET_CHARS: usize = 500;
/// Characters of the error's first line put in a failure title.
pub const ERROR_TITLE_CHARS: usize = 160;

/// How urgent a diagnostic is, least to most.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Warning,
    Error,
    Critical,
}

impl Severity {
    pub const ALL: [Severity; 3] = [Severity::Warning, Severity::Error, Severity::Critical];

    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Warning => "warning",
            Severity::Error => "error",
            Severity::Critical => "critical",
        }
    }

    /// The CLI's marker in front of a diagnostic line.
    pub fn marker(self) -> &'static str {
        match self {
            Severity::Warning => "⚠",
            Severity::Error => "!!",
            Severity::Critical => "!!!",
        }
    }
}

impl std::fmt::Display for Severity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Severity {
    type Err = CoreError;
    fn from_str(s: &str) -> Result<Self, CoreError> {
        match s.trim().to_ascii_lowercase().as_str() {
            "warning" => Ok(Severity::Warning),
            "error" => Ok(Severity::Error),
            "critical" => Ok(Severity::Critical),
            _ => Err(CoreError::invalid(format!(
                "invalid severity {s:?}: use one of warning, error, critical"
            ))),
        }
    }
}

/// What an action does when the operator takes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ActionKind {
    /// Release the claim (`POST /tasks/:id/reclaim`).
    Reclaim,
    /// Give the task to another assignee (`POST /tasks/:id/reassign`).
    Reassign,
    /// Send a blocked task back to ready.
    Unblock,
    /// A shell command to run (`payload.command`); no side effect.
    CliHint,
    /// A documentation link (`payload.url`).
    OpenDocs,
    /// Ask the operator to answer with a comment.
    Comment,
}

/// One recovery step offered with a diagnostic.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DiagnosticAction {
    pub kind: ActionKind,
    pub label: String,
    pub payload: Map<String, Value>,
    /// The recommended first step.
    pub suggested: bool,
}

impl DiagnosticAction {
    pub fn new(kind: ActionKind, label: impl Into<String>) -> DiagnosticAction {
        DiagnosticAction {
            kind,
            label: label.into(),
            payload: Map::new(),
            suggested: false,
        }
    }
    pub fn suggested(mut self) -> DiagnosticAction {
        self.suggested = true;
        self
    }
    pub fn with(mut self, key: &str, value: impl Into<Value>) -> DiagnosticAction {
        self.payload.insert(key.into(), value.into());
        self
    }
    /// A `cli_hint` action that offers `command`.
    pub fn hint(label: impl Into<String>, command: impl Into<String>) -> DiagnosticAction {
        DiagnosticAction::new(ActionKind::CliHint, label).with("command", command.into())
    }
    /// The command of a `cli_hint`.
    pub fn command(&self) -> Option<&str> {
        self.payload.get("command").and_then(Value::as_str)
    }
}

/// One active distress signal on a task (reference JSON shape).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Diagnostic {
    pub kind: &'static str,
    pub severity: Severity,
    pub title: String,
    pub detail: String,
    pub actions: Vec<DiagnosticAction>,
    pub first_seen_at: i64,
    pub last_seen_at: i64,
    pub count: i64,
    /// The run the diagnostic concerns; `None`: the whole task.
    pub run_id: Option<i64>,
    /// Structured details for the UI, in the order the rule wrote them.
    pub data: Map<String, Value>,
}

/// Every diagnostic kind, in rule order (ties in severity and recency keep it).
pub const DIAGNOSTIC_KINDS: [&str; 8] = [
    hallucination::HALLUCINATED_CARDS,
    triage::TRIAGE_AUX_UNAVAILABLE,
    hallucination::PROSE_PHANTOM_REFS,
    failures::REPEATED_FAILURES,
    failures::REPEATED_CRASHES,
    stalls::STUCK_IN_BLOCKED,
    stalls::BLOCK_UNBLOCK_CYCLING,
    stalls::STRANDED_IN_READY,
];

/// Thresholds of the rules (reference `kanban.diagnostics` config).
#[derive(Debug, Clone, PartialEq)]
pub struct DiagnosticsConfig {
    /// Consecutive failures before `repeated_failures` fires.
    pub failure_threshold: i64,
    /// The dispatcher's circuit breaker, quoted in the detail.
    pub failure_limit: i64,
    pub crash_threshold: i64,
    pub blocked_stale_hours: f64,
    pub block_cycle_threshold: i64,
    pub block_cycle_window_seconds: i64,
    pub stranded_threshold_seconds: i64,
    /// Whether triage helpers look configured; `None` keeps
    /// `triage_aux_unavailable` silent (no config context).
    pub triage: Option<TriageAuxStatus>,
}

impl Default for DiagnosticsConfig {
    fn default() -> Self {
        DiagnosticsConfig {
            failure_threshold: FAILURE_THRESHOLD_DEFAULT,
            failure_limit: FAILURE_THRESHOLD_DEFAULT,
            crash_threshold: CRASH_THRESHOLD_DEFAULT,
            blocked_stale_hours: BLOCKED_STALE_HOURS_DEFAULT,
            block_cycle_threshold: BLOCK_CYCLE_THRESHOLD_DEFAULT,
            block_cycle_window_seconds: BLOCK_CYCLE_WINDOW_SECONDS_DEFAULT,
            stranded_threshold_seconds: STRANDED_THRESHOLD_SECONDS_DEFAULT,
            triage: None,
        }
    }
}

impl DiagnosticsConfig {
    /// The defaults with the threshold following the dispatcher's
    /// `failure_limit`, so the signal never lags the circuit breaker.
    pub fn with_failure_limit(limit: i64) -> DiagnosticsConfig {
        let limit = if limit >= 1 {
            limit
        } else {
            FAILURE_THRESHOLD_DEFAULT
        };
        DiagnosticsConfig {
            failure_threshold: limit,
            failure_limit: limit,
            ..DiagnosticsConfig::default()
        }
    }
}

/// What every rule receives besides the task.
pub struct RuleInput<'a> {
    pub task: &'a Task,
    pub facts: &'a TaskFacts,
    pub now: i64,
    pub config: &'a DiagnosticsConfig,
}

type Rule = fn(&RuleInput<'_>) -> Option<Diagnostic>;

/// The rules in the order they render when severity and recency tie.
const RULES: [Rule; 8] = [
    hallucination::hallucinated_cards,
    triage::triage_aux_unavailable,
    hallucination::prose_phantom_refs,
    failures::repeated_failures,
    failures::repeated_crashes,
    stalls::stuck_in_blocked,
    stalls::block_unblock_cycling,
    stalls::stranded_in_ready,
];

/// Every active diagnostic of one task, most severe first, then most
/// recent (`last_seen_at`), then rule order.
pub fn task_diagnostics(
    task: &Task,
    facts: &TaskFacts,
    now: i64,
    config: &DiagnosticsConfig,
) -> Vec<Diagnostic> {
    let input = RuleInput {
        task,
        facts,
        now,
        config,
    };
    let mut out: Vec<Diagnostic> = RULES.iter().filter_map(|rule| rule(&input)).collect();
    out.sort_by_key(|d| {
        (
            std::cmp::Reverse(d.severity),
            std::cmp::Reverse(d.last_seen_at),
        )
    });
    out
}

/// Keep the diagnostics at or above `min` (all when `None`).
pub fn at_or_above(diagnostics: Vec<Diagnostic>, min: Option<Severity>) -> Vec<Diagnostic> {
    match min {
        None => diagnostics,
        Some(min) => diagnostics
            .into_iter()
            .filter(|d| d.severity >= min)
            .collect(),
    }
}

/// The card badge's summary of a task's diagnostics (`warnings`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WarningsSummary {
    /// Sum of the diagnostics' counts.
    pub count: i64,
    /// Count per kind.
    pub kinds: Map<String, Value>,
    pub latest_at: i64,
    pub highest_severity: Option<Severity>,
}

/// `None` when there is nothing to summarise.
pub fn warnings_summary(diagnostics: &[Diagnostic]) -> Option<WarningsSummary> {
    if diagnostics.is_empty() {
        return None;
    }
    let mut kinds = Map::new();
    let mut count = 0;
    for d in diagnostics {
        let n = kinds.get(d.kind).and_then(Value::as_i64).unwrap_or(0);
        kinds.insert(d.kind.into(), (n + d.count).into());
        count += d.count;
    }
    Some(WarningsSummary {
        count,
        kinds,
        latest_at: diagnostics
            .iter()
            .map(|d| d.last_seen_at)
            .max()
            .unwrap_or(0),
        highest_severity: diagnostics.iter().map(|d| d.severity).max(),
    })
}

/// `data` as `k=v | k=v` (lists joined with commas), the CLI's compact line.
pub fn data_line(data: &Map<String, Value>) -> String {
    data.iter()
        .map(|(k, v)| {
            let v = match v {
                Value::Array(items) => items.iter().map(plain).collect::<Vec<_>>().join(","),
                other => plain(other),
            };
            format!("{k}={v}")
        })
        .collect::<Vec<_>>()
        .join(" | ")
}

fn plain(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "None".into(),
        Value::Bool(true) => "True".into(),
        Value::Bool(false) => "False".into(),
        other => other.to_string(),
    }
}

/// The baseline recovery steps: reclaim (only while running), then reassign.
pub(crate) fn recovery_actions(task: &Task) -> Vec<DiagnosticAction> {
    let running = task.status == crate::Status::Running;
    let mut out = Vec::new();
    if running {
        out.push(DiagnosticAction::new(
            ActionKind::Reclaim,
            "Reclaim the task",
        ));
    }
    out.push(
        DiagnosticAction::new(ActionKind::Reassign, "Reassign to another profile")
            .with("reclaim_first", running),
    );
    out
}

/// `data` from `(key, value)` pairs, order kept.
pub(crate) fn data(pairs: Vec<(&str, Value)>) -> Map<String, Value> {
    pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
}
