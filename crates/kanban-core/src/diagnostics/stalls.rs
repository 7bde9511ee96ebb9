//! Tasks that stopped moving: blocked with nobody answering
//! (`stuck_in_blocked`), blocked again after every unblock
//! (`block_unblock_cycling`), and ready with no worker ever claiming them
//! (`stranded_in_ready`). These are the time-based rules.

use serde_json::json;

use super::{ActionKind, Diagnostic, DiagnosticAction, RuleInput, Severity, data};
use crate::Status;

pub const STUCK_IN_BLOCKED: &str = "stuck_in_blocked";
pub const BLOCK_UNBLOCK_CYCLING: &str = "block_unblock_cycling";
pub const STRANDED_IN_READY: &str = "stranded_in_ready";

const SECONDS_PER_HOUR: f64 = 3600.0;
/// Multiples of the stranded threshold at which the severity rises.
const STRANDED_ERROR_FACTOR: i64 = 2;
const STRANDED_CRITICAL_FACTOR: i64 = 6;

/// Warning: blocked for `blocked_stale_hours` or longer, with no comment
/// and no unblock since the newest block.
pub fn stuck_in_blocked(input: &RuleInput<'_>) -> Option<Diagnostic> {
    if input.task.status != Status::Blocked {
        return None;
    }
    let blocked_at = input.facts.last_blocked_at;
    if blocked_at == 0 {
        return None;
    }
    let age_hours = (input.now - blocked_at) as f64 / SECONDS_PER_HOUR;
    if age_hours < input.config.blocked_stale_hours {
        return None;
    }
    if input.facts.last_answered_at > blocked_at {
        return None;
    }
    let hours = age_hours as i64;
    Some(Diagnostic {
        kind: STUCK_IN_BLOCKED,
        severity: Severity::Warning,
        title: format!("Blocked for {hours}h with no answer"),
        detail: format!(
            "The task was blocked {hours}h ago and nobody has commented or unblocked it \
             since. A blocked task waits for a person: read why it blocked, then unblock it \
             with guidance or reply in a comment."
        ),
        actions: vec![
            DiagnosticAction::new(ActionKind::Comment, "Answer with a comment or unblock")
                .suggested(),
        ],
        first_seen_at: blocked_at,
        last_seen_at: blocked_at,
        count: 1,
        run_id: None,
        data: data(vec![
            ("blocked_at", json!(blocked_at)),
            ("age_hours", json!((age_hours * 10.0).round() / 10.0)),
        ]),
    })
}

/// Warning: within the window, the task was blocked again after an unblock
/// `block_cycle_threshold` times or more.
pub fn block_unblock_cycling(input: &RuleInput<'_>) -> Option<Diagnostic> {
    let threshold = input.config.block_cycle_threshold.max(1);
    let window = input.config.block_cycle_window_seconds;
    let cutoff = input.now - window;
    let mut cycles = 0;
    let mut unblocked_since_cycle = false;
    let mut first_block = 0;
    let mut last_cycle = 0;
    for &(at, is_block) in input.facts.block_toggles.iter().filter(|t| t.0 >= cutoff) {
        if !is_block {
            unblocked_since_cycle = true;
            continue;
        }
        if first_block == 0 {
            first_block = at;
        }
        if unblocked_since_cycle {
            cycles += 1;
            last_cycle = at;
            unblocked_since_cycle = false;
        }
    }
    if cycles < threshold {
        return None;
    }
    let id = &input.task.id;
    let window_hours = window / 3600;
    Some(Diagnostic {
        kind: BLOCK_UNBLOCK_CYCLING,
        severity: Severity::Warning,
        title: format!("Blocked again after unblock {cycles}x in {window_hours}h"),
        detail: format!(
            "Every unblock has been followed by a new block ({cycles} times), so the \
             unblocks are not fixing what stops the worker. Read the block reasons in the \
             history; the task may need another assignee, a narrower scope or archiving."
        ),
        actions: vec![
            DiagnosticAction::hint(
                format!("Read the block reasons: kanban show {id}"),
                format!("kanban show {id}"),
            )
            .suggested(),
        ],
        first_seen_at: if first_block == 0 {
            input.now
        } else {
            first_block
        },
        last_seen_at: if last_cycle == 0 {
            input.now
        } else {
            last_cycle
        },
        count: cycles,
        run_id: None,
        data: data(vec![
            ("cycles", json!(cycles)),
            ("window_seconds", json!(window)),
        ]),
    })
}

/// Age as the largest sensible unit: `1.5h` or `42m`.
fn age_text(seconds: i64) -> String {
    if seconds >= 3600 {
        format!("{:.1}h", seconds as f64 / SECONDS_PER_HOUR)
    } else {
        format!("{}m", seconds / 60)
    }
}

/// Warning, error at 2x and critical at 6x the threshold: an assigned,
/// unclaimed task has been ready for `stranded_threshold_seconds` or longer.
/// Unassigned tasks are left to the dispatcher's own "unassigned" signal.
pub fn stranded_in_ready(input: &RuleInput<'_>) -> Option<Diagnostic> {
    let task = input.task;
    if task.status != Status::Ready || task.claim_lock.as_deref().is_some_and(|c| !c.is_empty()) {
        return None;
    }
    let assignee = task.assignee.as_deref().unwrap_or("");
    if assignee.trim().is_empty() {
        return None;
    }
    let ready_since = match input.facts.last_ready_at {
        0 => task.created_at,
        at => at,
    };
    if ready_since == 0 {
        return None;
    }
    let threshold = input.config.stranded_threshold_seconds;
    let age = input.now - ready_since;
    if age < threshold {
        return None;
    }
    let severity = if age >= threshold * STRANDED_CRITICAL_FACTOR {
        Severity::Critical
    } else if age >= threshold * STRANDED_ERROR_FACTOR {
        Severity::Error
    } else {
        Severity::Warning
    };
    let age_s = age_text(age);
    Some(Diagnostic {
        kind: STRANDED_IN_READY,
        severity,
        title: format!("Ready for {age_s}, no worker has claimed it"),
        detail: format!(
            "Nothing has picked this task up in the {age_s} it has been ready. Usual \
             reasons: the assignee '{assignee}' is misspelt or its profile was removed, or \
             no worker for that lane is running. Check the assignee and that a worker polls \
             for it."
        ),
        actions: vec![
            DiagnosticAction::new(ActionKind::Reassign, "Reassign to another worker")
                .with("current_assignee", assignee),
            DiagnosticAction::hint("See what the dispatcher reports", "kanban diagnostics"),
        ],
        first_seen_at: ready_since,
        last_seen_at: ready_since,
        count: 1,
        run_id: None,
        data: data(vec![
            ("ready_since", json!(ready_since)),
            ("age_seconds", json!(age)),
            ("assignee", json!(assignee)),
            ("threshold_seconds", json!(threshold)),
        ]),
    })
}
