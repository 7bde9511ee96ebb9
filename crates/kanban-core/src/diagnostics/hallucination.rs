//! Phantom task ids: a completion refused because it declared cards that do
//! not exist (`hallucinated_cards`), and a completion summary naming ids
//! that do not resolve (`prose_phantom_refs`). Both clear on the next clean
//! completion or edit.

use serde_json::json;

use super::{
    ActionKind, Diagnostic, DiagnosticAction, RuleInput, Severity, data, recovery_actions,
};

pub const HALLUCINATED_CARDS: &str = "hallucinated_cards";
pub const PROSE_PHANTOM_REFS: &str = "prose_phantom_refs";

/// Error: the completion gate refused phantom `created_cards`; the task
/// stayed where it was.
pub fn hallucinated_cards(input: &RuleInput<'_>) -> Option<Diagnostic> {
    let hits = &input.facts.blocked_completions;
    if hits.count == 0 {
        return None;
    }
    let mut actions = vec![DiagnosticAction::new(
        ActionKind::Comment,
        "Comment with instructions for the worker",
    )];
    actions.extend(recovery_actions(input.task));
    Some(Diagnostic {
        kind: HALLUCINATED_CARDS,
        severity: Severity::Error,
        title: "Completion named cards that do not exist".into(),
        detail: "The worker's completion listed created_cards that are missing from the board \
                 or were made by another profile, so the completion was refused and the task \
                 kept its status. Typically the worker invented ids instead of using the ones \
                 kanban_create returned."
            .into(),
        actions,
        first_seen_at: hits.first_at,
        last_seen_at: hits.last_at,
        count: hits.count,
        run_id: None,
        data: data(vec![("phantom_ids", json!(hits.ids))]),
    })
}

/// Warning: the completion went through, but its summary mentions task ids
/// the board does not know.
pub fn prose_phantom_refs(input: &RuleInput<'_>) -> Option<Diagnostic> {
    let hits = &input.facts.phantom_refs;
    if hits.count == 0 {
        return None;
    }
    Some(Diagnostic {
        kind: PROSE_PHANTOM_REFS,
        severity: Severity::Warning,
        title: "Completion summary mentions unknown task ids".into(),
        detail: "Task ids quoted in the completion summary are not on this board. The \
                 completion itself was accepted, but anything reading the summary may follow \
                 ids of cards that never existed."
            .into(),
        actions: recovery_actions(input.task),
        first_seen_at: hits.first_at,
        last_seen_at: hits.last_at,
        count: hits.count,
        run_id: None,
        data: data(vec![("phantom_refs", json!(hits.ids))]),
    })
}
