//! `triage_aux_unavailable`: a triage task only leaves triage through an
//! auxiliary model — the decomposer (`auxiliary.kanban_decomposer`) when
//! auto-decompose is on, `kanban specify` (`auxiliary.triage_specifier`)
//! otherwise. A slot has a model when its own entry or `auxiliary.default`
//! names an endpoint or a command (the model client's own rule), so the
//! rule fires exactly when the step that should move the task cannot run.

use serde_json::json;

use super::{Diagnostic, DiagnosticAction, RuleInput, Severity, data};
use crate::Status;

pub const TRIAGE_AUX_UNAVAILABLE: &str = "triage_aux_unavailable";

const DECOMPOSER_SLOT: &str = "auxiliary.kanban_decomposer";
const SPECIFIER_SLOT: &str = "auxiliary.triage_specifier";
/// The check that names what is wrong with each configured model.
const DOCTOR_COMMAND: &str = "kanban doctor";

/// Which triage helpers have a model, as the model client resolves them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TriageAuxStatus {
    /// `kanban.auto_decompose` (default on).
    pub auto_decompose: bool,
    /// `auxiliary.kanban_decomposer`, else `auxiliary.default`, names an
    /// endpoint (base URL and model) or a command.
    pub decomposer_available: bool,
    pub specifier_available: bool,
}

/// Warning: the task is in triage and the step that should move it on has
/// no model.
pub fn triage_aux_unavailable(input: &RuleInput<'_>) -> Option<Diagnostic> {
    if input.task.status != Status::Triage {
        return None;
    }
    let s = input.config.triage?;
    let id = &input.task.id;
    let (primary, primary_ok, fallback, fallback_ok, fallback_verb, what, path) =
        if s.auto_decompose {
            (
                DECOMPOSER_SLOT,
                s.decomposer_available,
                SPECIFIER_SLOT,
                s.specifier_available,
                "specify",
                "decomposer",
                "With auto-decompose on, the gateway splits triage tasks with \
                 auxiliary.kanban_decomposer.",
            )
        } else {
            (
                SPECIFIER_SLOT,
                s.specifier_available,
                DECOMPOSER_SLOT,
                s.decomposer_available,
                "decompose",
                "specifier",
                "With auto-decompose off, triage tasks wait for `kanban specify`, which \
                 uses auxiliary.triage_specifier.",
            )
        };
    if primary_ok {
        return None;
    }
    let mut actions = vec![
        DiagnosticAction::hint(
            format!(
                "Give {primary} (or auxiliary.default) a base_url and model, or a command, \
                 in config.yaml; kanban doctor checks it"
            ),
            DOCTOR_COMMAND,
        )
        .suggested(),
    ];
    if fallback_ok {
        actions.push(DiagnosticAction::hint(
            format!("Or move it by hand with {fallback}: kanban {fallback_verb} {id}"),
            format!("kanban {fallback_verb} {id}"),
        ));
    }
    Some(Diagnostic {
        kind: TRIAGE_AUX_UNAVAILABLE,
        severity: Severity::Warning,
        title: format!("No model for the triage {what}"),
        detail: format!(
            "This task sits in triage and no auxiliary model can move it on. {path} \
             Neither {primary} nor auxiliary.default names an endpoint (base_url and \
             model) or a command."
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
            ("fallback_available", json!(fallback_ok)),
        ]),
    })
}
