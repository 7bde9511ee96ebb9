//! Attempts that keep failing: the task's failure counter climbing
//! (`repeated_failures`) and runs that keep crashing (`repeated_crashes`).
//! Done, archived and running tasks are exempt: finished work has nothing
//! left to retry, and a fresh attempt in flight hides the old streak until
//! it fails too.

use serde_json::{Value, json};

use super::{
    Diagnostic, DiagnosticAction, ERROR_SNIPPET_CHARS, ERROR_TITLE_CHARS, RuleInput, Severity,
    data, recovery_actions,
};
use crate::Status;

pub const REPEATED_FAILURES: &str = "repeated_failures";
pub const REPEATED_CRASHES: &str = "repeated_crashes";

/// The profile name that means "no profile of its own".
const DEFAULT_PROFILE: &str = "default";

fn exempt(status: Status) -> bool {
    matches!(status, Status::Done | Status::Archived | Status::Running)
}

/// The recorded error trimmed and cut to [`ERROR_SNIPPET_CHARS`] (with `…`
/// when cut); `None` when there is none.
pub(crate) fn error_snippet(error: Option<&str>) -> Option<String> {
    let text = error?.trim();
    if text.is_empty() {
        return None;
    }
    let mut cut: String = text.chars().take(ERROR_SNIPPET_CHARS).collect();
    if text.chars().count() > ERROR_SNIPPET_CHARS {
        cut.push('…');
    }
    Some(cut)
}

/// First line of a snippet, cut for a title.
fn title_line(snippet: &str) -> String {
    snippet
        .lines()
        .next()
        .unwrap_or("")
        .chars()
        .take(ERROR_TITLE_CHARS)
        .collect()
}

fn log_hint(task_id: &str) -> DiagnosticAction {
    DiagnosticAction::hint(
        format!("Read the worker log: kanban log {task_id}"),
        format!("kanban log {task_id}"),
    )
    .suggested()
}

/// Error (critical at twice the threshold): `consecutive_failures` reached
/// `failure_threshold`, whatever the failure mode.
pub fn repeated_failures(input: &RuleInput<'_>) -> Option<Diagnostic> {
    let task = input.task;
    if exempt(task.status) {
        return None;
    }
    let threshold = input.config.failure_threshold.max(1);
    let limit = if input.config.failure_limit >= 1 {
        input.config.failure_limit
    } else {
        threshold
    };
    let failures = task.consecutive_failures;
    if failures < threshold {
        return None;
    }
    let outcome = input.facts.last_failure_outcome.as_deref();
    let mut actions = Vec::new();
    match (outcome, task.assignee.as_deref()) {
        (Some("spawn_failed"), Some(a)) if !a.is_empty() && a != DEFAULT_PROFILE => {
            actions.push(
                DiagnosticAction::hint(
                    format!("Check the profile: hermes -p {a} doctor"),
                    format!("hermes -p {a} doctor"),
                )
                .suggested(),
            );
            actions.push(DiagnosticAction::hint(
                format!("Repair the profile's credentials: hermes -p {a} auth"),
                format!("hermes -p {a} auth"),
            ));
        }
        (Some("timed_out" | "crashed"), _) => actions.push(log_hint(&task.id)),
        _ => {}
    }
    actions.extend(recovery_actions(task));
    let severity = if failures >= threshold * 2 {
        Severity::Critical
    } else {
        Severity::Error
    };
    let label = match outcome {
        Some("spawn_failed") => "spawn",
        Some("timed_out") => "timeout",
        Some("crashed") => "crash",
        _ => "failure",
    };
    let snippet = error_snippet(task.last_failure_error.as_deref());
    let (title, detail) = match &snippet {
        Some(s) => (
            format!("Agent {label} x{failures}: {}", title_line(s)),
            format!(
                "{failures} attempts in a row have failed (latest: {label}). Last error:\n\n{s}\n\n\
                 The dispatcher stops retrying after {limit} consecutive failed attempts. \
                 Fix the cause, then reclaim or unblock the task to try again."
            ),
        ),
        None => (
            format!("Agent {label} x{failures} (no error recorded)"),
            format!(
                "{failures} attempts in a row have failed (latest: {label}) and no error text \
                 was kept. The suggested command or the worker log should tell why."
            ),
        ),
    };
    Some(Diagnostic {
        kind: REPEATED_FAILURES,
        severity,
        title,
        detail,
        actions,
        first_seen_at: input.now,
        last_seen_at: input.now,
        count: failures,
        run_id: None,
        data: data(vec![
            ("consecutive_failures", json!(failures)),
            ("most_recent_outcome", json!(outcome)),
            ("last_error", json!(task.last_failure_error)),
            ("failure_threshold", json!(threshold)),
            ("failure_limit", json!(limit)),
        ]),
    })
}

/// Error (critical at twice the threshold): the newest runs crashed
/// `crash_threshold` times since the last completed or reclaimed one.
/// Stays quiet when `repeated_failures` covers the task already.
pub fn repeated_crashes(input: &RuleInput<'_>) -> Option<Diagnostic> {
    let task = input.task;
    if exempt(task.status) {
        return None;
    }
    if task.consecutive_failures >= input.config.failure_threshold {
        return None;
    }
    let threshold = input.config.crash_threshold;
    let crashes = input.facts.trailing_crashes;
    if crashes < threshold {
        return None;
    }
    let mut actions = vec![log_hint(&task.id)];
    actions.extend(recovery_actions(task));
    let severity = if crashes >= threshold * 2 {
        Severity::Critical
    } else {
        Severity::Error
    };
    let last_error = input.facts.last_crash_error.as_deref();
    let (title, detail) = match error_snippet(last_error) {
        Some(s) => (
            format!("Agent crashed {crashes}x: {}", title_line(&s)),
            format!("Each of the last {crashes} runs ended as crashed. Last error:\n\n{s}"),
        ),
        None => (
            format!("Agent crashed {crashes}x (no error recorded)"),
            format!(
                "Each of the last {crashes} runs ended as crashed, and none kept an error \
                 text. The worker log has the details."
            ),
        ),
    };
    Some(Diagnostic {
        kind: REPEATED_CRASHES,
        severity,
        title,
        detail,
        actions,
        first_seen_at: input.now,
        last_seen_at: input.now,
        count: crashes,
        run_id: None,
        data: data(vec![
            ("consecutive_crashes", json!(crashes)),
            (
                "last_error",
                last_error.map_or(Value::Null, |e| Value::String(e.into())),
            ),
        ]),
    })
}
