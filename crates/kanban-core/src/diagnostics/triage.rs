//! `triage_aux_unavailable`: a triage task can only leave triage through an
//! auxiliary model (the decomposer with auto-decompose on, the specifier
//! otherwise). The default slot (`provider: auto`) falls back to the main
//! model, so the rule fires only when the slot is not set explicitly and no
//! main model is configured either.

use serde_json::json;

use super::{Diagnostic, DiagnosticAction, RuleInput, Severity, data};
use crate::Status;

pub const TRIAGE_AUX_UNAVAILABLE: &str = "triage_aux_unavailable";

const DECOMPOSER_SLOT: &str = "auxiliary.kanban_decomposer";
const SPECIFIER_SLOT: &str = "auxiliary.triage_specifier";

/// How the triage helpers look in the configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TriageAuxStatus {
    /// `kanban.auto_decompose` (default on).
    pub auto_decompose: bool,
    /// The decomposer slot names a provider other than `auto`, a model, a
    /// base URL or a key.
    pub decomposer_explicit: bool,
    pub specifier_explicit: bool,
    /// A main model (provider and model) is configured for `auto` to use.
    pub main_model_visible: bool,
}

/// Warning: the task is in triage and no helper model is usable.
pub fn triage_aux_unavailable(input: &RuleInput<'_>) -> Option<Diagnostic> {
    if input.task.status != Status::Triage {
        return None;
    }
    let s = input.config.triage?;
    let (primary, primary_explicit, fallback, fallback_explicit, what, path) = if s.auto_decompose {
        (
            DECOMPOSER_SLOT,
            s.decomposer_explicit,
            SPECIFIER_SLOT,
            s.specifier_explicit,
            "decomposer",
            "With auto-decompose on, the dispatcher splits triage tasks with \
                 auxiliary.kanban_decomposer and falls back to auxiliary.triage_specifier \
                 for tasks that do not fan out.",
        )
    } else {
        (
            SPECIFIER_SLOT,
            s.specifier_explicit,
            DECOMPOSER_SLOT,
            s.decomposer_explicit,
            "specifier",
            "With auto-decompose off, triage tasks wait for `kanban specify`, which \
                 uses auxiliary.triage_specifier.",
        )
    };
    if primary_explicit || s.main_model_visible {
        return None;
    }
    let id = &input.task.id;
    let mut actions = vec![
        DiagnosticAction::hint(
            format!("Set up {primary}"),
            format!("hermes config set {primary}.provider auto"),
        )
        .suggested(),
    ];
    if !fallback_explicit {
        actions.push(DiagnosticAction::hint(
            format!("Or set up the fallback {fallback}"),
            format!("hermes config set {fallback}.provider auto"),
        ));
    }
    if !s.auto_decompose {
        actions.push(DiagnosticAction::hint(
            format!("Specify it by hand: kanban specify {id}"),
            format!("kanban specify {id}"),
        ));
    }
    Some(Diagnostic {
        kind: TRIAGE_AUX_UNAVAILABLE,
        severity: Severity::Warning,
        title: format!("No usable model for the triage {what}"),
        detail: format!(
            "This task sits in triage and the dispatcher sees no auxiliary model that \
             could move it on. {path} The default slot (`provider: auto`) would use the \
             main model, but none is configured. Configure the slot itself, or a main \
             model for the fallback to use."
        ),
        actions,
        first_seen_at: input.now,
        last_seen_at: input.now,
        count: 1,
        run_id: None,
        data: data(vec![
            ("task_id", json!(id)),
            ("auto_decompose", json!(s.auto_decompose)),
            ("primary_slot", json!(primary)),
            ("main_model_visible", json!(s.main_model_visible)),
        ]),
    })
}
